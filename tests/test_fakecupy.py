"""The fake CuPy (tests/fakecupy) is as strict as CuPy where tensorlib could go wrong, and keeps the
pool's books. Runs only under the fake (`make test`'s second run)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def cp():
    from tests.conftest import fake_cupy
    if not fake_cupy():
        pytest.skip("checks the fake CuPy (PYTHONPATH=tests/fakecupy)")
    import cupy
    return cupy


def test_no_implicit_conversion_and_no_host_operands(cp):
    a = cp.arange(3.0)
    msg = "Implicit conversion to a NumPy array is not allowed"
    for f in (np.asarray, np.array, lambda x: np.ones(3) * 0 + np.asarray(x)):
        with pytest.raises(TypeError, match=msg):
            f(a)
    for f in (lambda: a + np.ones(3), lambda: np.ones(3) + a, lambda: cp.add(a, [1, 2, 3]),
              lambda: cp.concatenate([a, np.ones(3)]), lambda: cp.copyto(np.ones(3), a)):
        with pytest.raises(TypeError, match="Unsupported type <class '(numpy.ndarray|list)'>"):
            f()
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[:] = np.ones(3)
    assert type(a * np.float32(2)) is cp.ndarray and type(cp.asarray(np.ones(2))) is cp.ndarray


def test_numpy_calls_dispatch_and_reductions_give_0d_arrays(cp):
    a = cp.arange(6.0).reshape(2, 3)
    for r in (np.sum(a), a.sum(), a[0, 1], np.exp(a)[1, 2], cp.linalg.norm(a)):
        assert type(r) is cp.ndarray
    assert np.sum(a).ndim == 0 and float(np.sum(a)) == 15.0
    assert type(np.concatenate([a, a])) is cp.ndarray
    assert cp.asarray(a) is a and a.get().__class__ is np.ndarray
    with pytest.raises(AttributeError):
        cp.matrix


def test_pool_tracks_every_buffer_and_hooks_see_them(cp):
    from cupy.cuda import memory_hook
    pool = cp.get_default_memory_pool()
    gc.collect()
    seen = []

    class Hook(memory_hook.MemoryHook):
        name = "test"

        def malloc_postprocess(self, **kw):
            seen.append(("malloc", kw["size"], kw["mem_size"], kw["mem_ptr"]))

        def free_postprocess(self, **kw):
            seen.append(("free", kw["mem_size"], kw["mem_ptr"]))

    used = pool.used_bytes()
    with Hook():
        a = cp.zeros(1000, np.float32)
        v = a[10:].reshape(10, 99)
        assert pool.used_bytes() - used == 4096 and v.data.ptr == a.data.ptr + 40
        del a
        assert pool.used_bytes() - used == 4096         # the view keeps the buffer
        del v
    assert pool.used_bytes() == used
    assert seen[0][:3] == ("malloc", 4000, 4096) and seen[-1] == ("free", 4096, seen[0][3])


def test_events_time_host_intervals(cp):
    s, e = cp.cuda.Event(), cp.cuda.Event()
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        cp.cuda.get_elapsed_time(s, e)
    s.record(cp.cuda.get_current_stream())
    e.record()
    e.synchronize()
    assert cp.cuda.get_elapsed_time(s, e) >= 0.0
    assert cp.cuda.runtime.getDeviceProperties(0)["name"].startswith(b"Fake")


def _rules():
    import os
    return os.environ.get("FAKECUPY_RULES", "14")


def test_namespace_and_signatures_are_the_real_cupys(cp):
    """Names and keyword arguments come from the real CuPy's table, under FAKECUPY_RULES' major."""
    assert cp.__version__.split(".")[0] == _rules()
    for name in ("matrix", "char", "frompyfunc", "datetime64"):      # NumPy has them, CuPy does not
        with pytest.raises(AttributeError):
            getattr(cp, name)
    assert hasattr(cp, "put_along_axis") is (_rules() != "13")
    assert hasattr(cp.ndarray, "mT") is (_rules() != "13")
    with pytest.raises(TypeError, match="unexpected keyword argument 'sparse'"):
        cp.indices((2, 3), sparse=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        cp.sum(cp.ones(3), where=True)
    a = cp.arange(6.0)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        a.sort(kind="stable") if _rules() == "13" else a.reshape(2, 3, bogus=1)
    assert float(cp.sum(a, axis=0)) == 15.0 and cp.indices((2, 3)).shape == (2, 2, 3)


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint8", "uint16", "bool", "int64", "int32", "float32"])
def test_scatter_add_takes_cupys_dtypes_only(cp, dtype):
    import cupyx
    a = cp.zeros(3, dtype)
    refused = dtype in ("int8", "int16", "uint8", "uint16", "bool") or (dtype == "int64" and _rules() == "13")
    if refused:
        with pytest.raises(TypeError, match="scatter_add only supports"):
            cupyx.scatter_add(a, cp.asarray([1, 1]), cp.ones(2, dtype))
        with pytest.raises(TypeError, match="scatter_add only supports"):
            cp.add.at(a, cp.asarray([1, 1]), cp.ones(2, dtype))
    else:
        cupyx.scatter_add(a, cp.asarray([1, 1]), cp.ones(2, dtype))
        assert a.get().tolist() == [0, 2, 0]


def test_base_identity_allocator_none_runtime_error_and_hook_names(cp):
    from cupy.cuda import memory_hook
    from cupy_backends.cuda.api.runtime import CUDARuntimeError
    a = cp.arange(6.0)
    v = a[1:]
    assert v.base is a and v[1:].base is a and a.reshape(2, 3).base is a and a.base is None
    assert v.base is v.base
    assert cp.cuda.runtime.CUDARuntimeError is CUDARuntimeError
    with pytest.raises(CUDARuntimeError):
        cp.cuda.runtime.setDevice(99)
    pool = cp.get_default_memory_pool()
    before = pool.used_bytes()
    saved = cp.cuda.get_allocator()
    cp.cuda.set_allocator(None)               # CuPy: the raw allocator, the pool off
    try:
        b = cp.zeros(1000)
        assert pool.used_bytes() == before and b.data.ptr
    finally:
        cp.cuda.set_allocator(saved)
    del b

    class H(memory_hook.MemoryHook):
        name = "dup"
    with H():
        with pytest.raises(KeyError, match="memory hook dup already exists"):
            H().__enter__()


def test_the_pool_splits_and_merges_chunks_as_cupys(cp):
    """A malloc takes the smallest free chunk that fits and splits off the rest; frees merge neighbours;
    free_all_blocks gives back only allocations free as a whole (CuPy's SingleDeviceMemoryPool)."""
    pool = cp.cuda.memory.SingleDeviceMemoryPool()
    big = pool.malloc(64 * 1024)
    assert (pool.used_bytes(), pool.total_bytes()) == (64 * 1024, 64 * 1024)
    del big
    gc.collect()
    small = pool.malloc(4000)                      # 4096 of the cached 64 KiB chunk; the rest stays free
    assert (pool.used_bytes(), pool.total_bytes(), pool.n_free_blocks()) == (4096, 64 * 1024, 1)
    pool.free_all_blocks()
    assert pool.total_bytes() == 64 * 1024         # split with a live part: stays reserved
    second = pool.malloc(8192)                     # from the remainder: no new allocation
    assert pool.total_bytes() == 64 * 1024 and second.ptr == small.ptr + 4096
    del small, second
    gc.collect()
    assert pool.n_free_blocks() == 1               # merged back into one chunk
    pool.free_all_blocks()
    assert (pool.used_bytes(), pool.total_bytes(), pool.n_free_blocks()) == (0, 0, 0)
