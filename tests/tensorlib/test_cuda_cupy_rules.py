"""CUDA paths that only the real CuPy's rules show (issue 12): each test failed against the strict fake
(tests/fakecupy under FAKECUPY_RULES=13 and 14) before its fix. Run on a GPU by `make test-gpu`, and on
the CPU against the fake by `make test` (once per CuPy major)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

pytestmark = pytest.mark.cuda


def _grid_ops(name):
    # scatter with a repeated index keeps one of the values, which one undefined (torch's docs; a GPU kept
    # the first of two where NumPy keeps the last): its grid has none; the summing ops keep a repeat
    idx = tl.tensor([[0, 2, 1], [1, 0, 2]] if name == "scatter" else [[0, 2, 1], [1, 0, 0]])
    src = tl.arange(6.0).reshape(2, 3)
    return {
        "scatter": lambda x, i, s: x.scatter(1, i, s),
        "scatter_add": lambda x, i, s: x.scatter_add(1, i, s),
        "gather_backward": lambda x, i, s: tl.autograd.grad(x.gather(1, i).sum(), x)[0],
    }, idx, src


@pytest.mark.parametrize("name", ["scatter", "scatter_add", "gather_backward"])
def test_index_grids_need_no_sparse_indices(name):
    """CuPy's indices() has no sparse=: scatter forward and gather backward built their grid with it."""
    ops, idx, src = _grid_ops(name)
    x = tl.zeros(2, 3, requires_grad=True)
    want = ops[name](x, idx, src)
    xc = x.detach().cuda().requires_grad_()
    got = ops[name](xc, idx.cuda(), src.cuda())
    np.testing.assert_array_equal(got.cpu().detach().numpy(), want.detach().numpy())


@pytest.mark.parametrize("n", [-1, 5])
def test_one_hot_without_put_along_axis(n):
    """CuPy 13 has no put_along_axis; one_hot is one comparison kernel and one host sync."""
    a = tl.tensor([[0, 3], [1, 1]])
    from profiler.debug import sync_watch
    with sync_watch("count") as w:
        got = tl.nn.functional.one_hot(a.cuda(), n)
    assert w.count == 1
    np.testing.assert_array_equal(got.cpu().numpy(), tl.nn.functional.one_hot(a, n).numpy())
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes."):
        tl.nn.functional.one_hot(a.cuda(), 3)
    with pytest.raises(RuntimeError, match="Can not infer total number of classes from empty tensor."):
        tl.nn.functional.one_hot(tl.zeros(0, dtype=tl.int64).cuda())


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint8", "bool", "int32", "int64", "float16"])
def test_scatter_add_and_index_add_take_every_dtype(dtype):
    """cupyx.scatter_add refuses int8/int16/uint8/bool (and int64 on CuPy 13); tensorlib sums those in
    uint64, exactly and wrapping as the CPU does."""
    dt = getattr(tl, dtype)
    big = 100 if dtype in ("int8", "uint8") else 7          # int8/uint8 wrap around, as on the CPU
    x = tl.ones(4, dtype=dt)
    idx = tl.tensor([1, 1, 3, 1])
    src = tl.full((4,), big, dtype=dt) if dtype != "bool" else tl.tensor([True, False, True, True])
    for f in (lambda x, i, s: x.scatter_add(0, i, s), lambda x, i, s: x.index_add(0, i, s)):
        want = f(x, idx, src)
        got = f(x.cuda(), idx.cuda(), src.cuda())
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


def test_detect_anomaly_sees_nan_in_cuda_gradients():
    """cupy.ndarray has no __array_namespace__: the NaN test found none on CUDA."""
    x = tl.tensor([0.0, 1.0]).cuda().requires_grad_()
    with tl.autograd.detect_anomaly():
        z = (x.sqrt() * 0).sum()
        with pytest.warns(RuntimeWarning, match="Error detected in SqrtBackward0"):
            with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan values in its 0th output."):
                z.backward()


def test_cudnn_says_why_it_is_off():
    """cupy.cudnn is CuPy 13's deprecated alias of cupyx.cudnn, which needs cuDNN 8's libcudnn.so.8 (no
    wheel brings it), and CuPy 14 has none: the cuDNN path was off without a word."""
    import warnings

    import cupy

    from tensorlib.backends import cudnn
    cudnn.clear_cache()
    try:
        x, w = tl.randn(1, 2, 5, 5).cuda(), tl.randn(3, 2, 3, 3).cuda()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            tl.nn.functional.conv2d(x, w)
            tl.nn.functional.conv2d(x, w)
        why = cudnn.why_unavailable()
        if cudnn.is_available():                     # a GPU machine with CuPy 13 and cuDNN 8
            assert why is None
            return
        assert why
        mine = [str(m.message) for m in seen if "cuDNN is off" in str(m.message)]
        if cupy.__version__.startswith("13."):       # bindings that do not load: said once, with the error
            assert len(mine) == 1 and "libcudnn.so.8" in mine[0] and "libcudnn.so.8" in why
        else:                                        # CuPy 14 has none: said when asked, no warning
            assert not mine and "has no cuDNN bindings" in why
    finally:
        cudnn.clear_cache()


def test_profiled_cuda_out_of_memory_records_no_block():
    """CuPy calls malloc_postprocess after a failed allocation too (mem_ptr=0): each OOM was recorded as
    a block that is never freed, so the profile's CUDA memory drifted up by every failed request."""
    import cupy

    from profiler import ProfilerActivity, profile
    pool = cupy.get_default_memory_pool()
    limit = pool.get_limit()
    pool.free_all_blocks()                          # no cached block can serve the request
    pool.set_limit(size=pool.total_bytes() + (1 << 20))
    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], profile_memory=True) as prof:
            with pytest.raises(MemoryError):
                tl.zeros(1 << 22, device="cuda")       # 16 MiB over a 1 MiB headroom
        mem = prof.store.mem_events
        assert not (mem["bytes"] > (1 << 20)).any() and not (mem["addr"][mem["dev_type"] == 1] == 0).any()
    finally:
        pool.set_limit(size=limit)


def _fake_syncs():
    """The synchronisations the fake CuPy made so far (None on a real GPU: gpu_check measures those)."""
    import cupy
    return cupy.cuda._sim.syncs[0] if getattr(cupy, "__fake__", False) else None


def _counted(fn):
    """(sync_watch's count, the fake's count) of running fn()."""
    from profiler.debug import sync_watch
    before = _fake_syncs()
    with sync_watch("count") as w:
        fn()
    after = _fake_syncs()
    return w, None if before is None else after - before


def _view_inplace(x):
    c = x.detach().requires_grad_() * 1
    c[0:2].mul_(2.0)                                 # the layout proves no overlap: no unique() on the device


@pytest.mark.parametrize("name, fn, syncs", [
    ("boolean mask", lambda x: x[x > 0], 1),
    ("empty boolean mask", lambda x: x[:0][x[:0] > 0], 0),     # CuPy reads no count for an empty mask
    ("nonzero", lambda x: x.nonzero(), 1),
    ("masked_select", lambda x: x.masked_select(x > 0), 1),
    ("masked_scatter", lambda x: x.masked_scatter(x > 0, tl.zeros(6).cuda()), 1),
    ("boolean mask assignment", lambda x: x.clone().__setitem__(x > 0, 0.0), 1),
    ("one_hot", lambda x: tl.nn.functional.one_hot((x > 0).long()), 1),
    ("unique", lambda x: tl.unique(x), 1),
    ("bincount", lambda x: tl.bincount((x > 0).long()), 3),    # its min check, then CuPy's own two
    ("median", lambda x: x.median(), 0),           # NaN is chosen on the device, as in torch
    ("in-place op on a view", _view_inplace, 0),
])
def test_sync_watch_counts_the_syncs_inside_ops(name, fn, syncs):
    """Ops that read a count or a value back from the GPU synchronise; sync_watch (and so the pytest
    plugin's max_syncs) saw only the tensor's own item/tolist/bool/cpu calls, and missed those inside
    index assignment, bincount and the overlap check of an in-place op on a view. The fake CuPy makes a
    wait wherever CuPy does (cupy.cuda._sim): both counts must agree, op by op."""
    x = tl.tensor([1.0, -2.0, 3.0, -4.0, 5.0, 0.5]).cuda()
    w, made = _counted(lambda: fn(x))
    assert w.count == syncs, [e.what for e in w.events]
    assert made in (None, syncs), f"the fake CuPy synchronised {made} times, sync_watch counted {w.count}"


def test_sync_watch_counts_every_sync_of_every_op_forward_and_backward():
    """Every op of the shared sample cases, forward and backward, on CUDA: sync_watch's count is the
    number of synchronisations the (fake) CuPy made."""
    import cupy
    if not getattr(cupy, "__fake__", False):
        pytest.skip("counts CuPy's synchronisations through the fake's counter; devtools/gpu_check.py does it on a GPU")
    from tests.tensorlib.op_cases import CPU_ONLY, all_cases
    wrong = []
    for name, case in sorted(all_cases().items()):
        if name in ("from_numpy", "alias_dtype", "pin_memory") or name in CPU_ONLY:     # (sparse: refused on CUDA)
            continue
        fn, inputs = case()
        cu = [t.detach().cuda().requires_grad_(t.requires_grad) if isinstance(t, tl.Tensor) else t for t in inputs]
        out = []
        try:
            w, made = _counted(lambda: out.append(fn(*cu)))
        except RuntimeError:
            continue                              # the case mixes a CPU index into the op (test_cuda.py)
        if w.count != made:
            wrong.append((name, made, [e.what for e in w.events]))
        outs = out[0] if isinstance(out[0], tuple) else out
        o = next((o for o in outs if isinstance(o, tl.Tensor) and o.requires_grad and o.dtype.is_floating_point),
                 None)
        if o is not None:
            loss = o.sum()
            w, made = _counted(loss.backward)
            if w.count != made:
                wrong.append((name + " backward", made, [e.what for e in w.events]))
    assert not wrong, f"(op, syncs the fake CuPy made, what sync_watch saw): {wrong}"


def test_grad_scaler_makes_one_sync_per_step():
    """torch's GradScaler reads found_inf once per step (in step()); update() read it again, and the
    growth tracker and the scale: 3-4 syncs per step. The fake CuPy's count agrees."""
    model = tl.nn.Linear(4, 2).cuda()
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler(growth_interval=2)
    x = tl.randn(3, 4).cuda()
    for step in range(3):
        opt.zero_grad()
        scaler.scale(model(x).sum()).backward()
        w, made = _counted(lambda: (scaler.step(opt), scaler.update()))
        assert w.count == 1 and made in (None, 1), (step, made, [e.what for e in w.events])
    assert scaler.get_scale() == 2.0 ** 17 and scaler._get_growth_tracker() == 1
    opt.zero_grad()
    scaler.scale(model(x).sum() * float("inf")).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 16 and scaler._get_growth_tracker() == 0
