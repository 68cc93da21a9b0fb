"""The fake CuPy's cupy.cuda.nccl (tests/fakecupy/cupy/cuda/nccl.py): CuPy 14's names and signatures, every
collective against NumPy, and NCCL's strictness on datatypes, ops, pointers, devices, streams and calls that
disagree. Two fake devices in this process, one communicator each (NcclCommunicator.initAll), driven in
groups as NCCL's single-process use is; tests/tensorlib/distributed/test_nccl.py runs ranks as processes."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.cuda


@pytest.fixture
def two(monkeypatch):
    from tests.conftest import fake_cupy
    if not fake_cupy():
        pytest.skip("checks the fake CuPy (PYTHONPATH=tests/fakecupy)")
    import cupy
    from cupy.cuda import nccl
    monkeypatch.setattr(cupy.cuda.runtime, "_COUNT", 2)
    comms = nccl.NcclCommunicator.initAll(2)
    yield cupy, nccl, comms
    for c in comms:
        c.destroy()


def on(cp, d, a):
    with cp.cuda.Device(d):
        return cp.asarray(a)


def grouped(nccl, *calls):
    nccl.groupStart()
    for c in calls:
        c()
    nccl.groupEnd()


def test_names_and_signatures_are_cupys(two):
    cp, nccl, comms = two
    assert (nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64, nccl.NCCL_INT64, nccl.NCCL_SUM, nccl.NCCL_AVG) == (7, 8, 4, 0, 4)
    uid = nccl.get_unique_id()
    if os.environ.get("FAKECUPY_RULES") == "13":      # CuPy 13: the id is a tuple of 128 ints
        assert isinstance(uid, tuple) and len(uid) == 128
        assert [c.rank_id() for c in comms] == [0, 1]
        return
    assert isinstance(uid, bytes) and len(uid) == 128     # CuPy 14: bytes, and a tuple is refused
    assert [c.rank_id() for c in comms] == [0, 1] and [c.device_id() for c in comms] == [0, 1]
    assert comms[0].size() == 2
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'stream'"):
        comms[0].allReduce(0, 0, 1, nccl.NCCL_FLOAT32, nccl.NCCL_SUM)
    with pytest.raises(TypeError, match="commId"):
        nccl.NcclCommunicator(2, tuple(nccl.get_unique_id()), 0)
    with pytest.raises(ValueError, match="commId length 3 != 128"):
        nccl.NcclCommunicator(2, b"abc", 0)
    with pytest.raises(AttributeError):
        nccl.allReduce          # noqa: B018 - a method of the communicator, not of the module


def test_every_collective_against_numpy(two):
    cp, nccl, comms = two
    x = [np.arange(6, dtype=np.float32) + 10 * d for d in range(2)]
    xs = [on(cp, d, x[d]) for d in range(2)]
    ys = [on(cp, d, np.zeros(6, np.float32)) for d in range(2)]
    f32 = nccl.NCCL_FLOAT32
    for op, ref in ((nccl.NCCL_SUM, x[0] + x[1]), (nccl.NCCL_MAX, np.maximum(x[0], x[1])),
                    (nccl.NCCL_PROD, x[0] * x[1]), (nccl.NCCL_AVG, (x[0] + x[1]) / 2)):
        grouped(nccl, *[lambda d=d: comms[d].allReduce(xs[d].data.ptr, ys[d].data.ptr, 6, f32, op, 0)
                        for d in range(2)])
        for d in range(2):
            np.testing.assert_allclose(ys[d].get(), ref)
    grouped(nccl, *[lambda d=d: comms[d].broadcast(xs[d].data.ptr, ys[d].data.ptr, 6, f32, 1, 0) for d in range(2)])
    assert ys[0].get().tolist() == x[1].tolist()
    grouped(nccl, *[lambda d=d: comms[d].reduce(xs[d].data.ptr, ys[d].data.ptr, 6, f32, nccl.NCCL_MIN, 0, 0)
                    for d in range(2)])
    assert ys[0].get().tolist() == np.minimum(x[0], x[1]).tolist()
    big = [on(cp, d, np.zeros(12, np.float32)) for d in range(2)]
    grouped(nccl, *[lambda d=d: comms[d].allGather(xs[d].data.ptr, big[d].data.ptr, 6, f32, 0) for d in range(2)])
    assert big[1].get().tolist() == np.concatenate(x).tolist()
    half = [on(cp, d, np.zeros(3, np.float32)) for d in range(2)]
    grouped(nccl, *[lambda d=d: comms[d].reduceScatter(xs[d].data.ptr, half[d].data.ptr, 3, f32, nccl.NCCL_SUM, 0)
                    for d in range(2)])
    assert half[1].get().tolist() == (x[0] + x[1])[3:].tolist()
    grouped(nccl, lambda: comms[0].send(xs[0].data.ptr + 8, 3, f32, 1, 0),
            lambda: comms[1].recv(half[1].data.ptr, 3, f32, 0, 0))
    assert half[1].get().tolist() == x[0][2:5].tolist()          # an interior pointer: 2 floats in


def test_strict_where_nccl_is(two, capfd):
    cp, nccl, comms = two
    a0 = on(cp, 0, np.zeros(6, np.float32))
    a1 = on(cp, 1, np.zeros(6, np.float32))
    f32, add = nccl.NCCL_FLOAT32, nccl.NCCL_SUM
    bad = [lambda: comms[0].allReduce(a1.data.ptr, a0.data.ptr, 6, f32, add, 0),      # buffer on another device
           lambda: comms[0].allReduce(a0.data.ptr, a0.data.ptr, 600, f32, add, 0),    # past the allocation
           lambda: comms[0].allReduce(a0.data.ptr, a0.data.ptr, 6, 42, add, 0),       # no such datatype
           lambda: comms[0].allReduce(a0.data.ptr, a0.data.ptr, 6, f32, 9, 0),        # no such op
           lambda: comms[0].allReduce(12345, a0.data.ptr, 6, f32, add, 0),            # not a device pointer
           lambda: comms[0].allReduce(a0.data.ptr, a0.data.ptr, 6, f32, add, 0x1234),  # not a stream
           lambda: comms[0].bcast(a0.data.ptr, 6, f32, 2, 0)]                         # root outside the comm
    for call in bad:
        with pytest.raises(nccl.NcclError, match="NCCL_ERROR_INVALID_ARGUMENT: invalid argument"):
            call()
    assert capfd.readouterr().err.count("NCCL WARN") == len(bad)
    with cp.cuda.Device(1):
        s1 = cp.cuda.Stream()
    with pytest.raises(nccl.NcclError, match="INVALID_ARGUMENT"):                    # a stream of device 1
        comms[0].allReduce(a0.data.ptr, a0.data.ptr, 6, f32, add, s1.ptr)
    nccl.groupStart()
    comms[0].allReduce(a0.data.ptr, a0.data.ptr, 6, f32, add, 0)
    comms[1].allReduce(a1.data.ptr, a1.data.ptr, 5, f32, add, 0)
    with pytest.raises(nccl.NcclError, match="NCCL_ERROR_INVALID_USAGE"):
        nccl.groupEnd()
    assert "rank 1 calls allReduce of 5 elements" in capfd.readouterr().err
    comms[1].destroy()
    with pytest.raises(nccl.NcclError, match="INVALID_ARGUMENT"):
        comms[1].allReduce(a1.data.ptr, a1.data.ptr, 6, f32, add, 0)
