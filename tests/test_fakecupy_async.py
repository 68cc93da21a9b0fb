"""The fake CuPy's asynchrony and devices (tests/fakecupy/cupy/cuda/_sim.py): work completes only when the
host waits for it, kernels queue behind each other and never start before their launch, several devices
with a current device per thread and CuPy's refusal of an operand on another device."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.cuda


@pytest.fixture
def cp():
    import tensorlib as tl
    cupy = tl._device.cupy()
    if not getattr(cupy, "__fake__", False):
        pytest.skip("checks the fake CuPy's simulation (tests/fakecupy); the real device is checked by "
                    "devtools/gpu_check.py")
    return cupy


@pytest.fixture
def two_devices(cp, monkeypatch):
    monkeypatch.setattr(cp.cuda.runtime, "_COUNT", 2)
    return cp


def test_an_event_is_not_complete_until_the_host_waits_for_it(cp):
    s, e = cp.cuda.Event(), cp.cuda.Event()
    assert e.done                                       # never recorded: done, as cudaEventQuery says
    s.record()
    cp.cuda._sim.launch(duration_ns=300_000_000)        # a 300 ms kernel: longer than the asserts below take
    e.record()                                          # on a loaded machine (2 xdist workers on 2 cores)
    assert not e.done and not cp.cuda.get_current_stream().done
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="^cudaErrorNotReady: device not ready$") as ei:
        cp.cuda.get_elapsed_time(s, e)
    assert ei.value.status == 600
    t0 = time.perf_counter_ns()
    e.synchronize()
    assert time.perf_counter_ns() - t0 >= 1_000_000     # the host waited for the kernel
    assert e.done and s.done
    assert cp.cuda.get_elapsed_time(s, e) >= 300.0


def test_kernels_queue_behind_each_other_and_never_start_before_their_launch(cp):
    stream = cp.cuda.Stream()
    with stream:
        launched = time.perf_counter_ns()
        a = cp.cuda._sim.launch(duration_ns=1_000_000)
        b = cp.cuda._sim.launch(nbytes=4000)
    assert a[0] >= launched and b[0] == a[1] and b[1] - b[0] == cp.cuda._sim.kernel_ns + 4
    before = cp.cuda._sim.syncs[0]
    x = cp.ones(4)
    (x + 1).sum().item()                                # a blocking read waits for the stream
    assert cp.cuda._sim.syncs[0] == before + 1
    stream.synchronize()
    assert stream.done


def test_elapsed_time_is_a_c_float_of_milliseconds(cp):
    s, e = cp.cuda.Event(), cp.cuda.Event()
    s.record()
    cp.cuda._sim.launch(duration_ns=20_000_001_000)     # 20 s of queued work: float32 loses the microsecond
    e.record()
    e._t = s._t + 20_000_001_000
    cp.cuda._sim._done[e._device] = e._t                # completed, without waiting 20 s here
    ms = cp.cuda.get_elapsed_time(s, e)
    assert ms == float(np.float32(20_000.001)) and ms != 20_000.001


def test_two_devices_current_per_thread_and_arrays_keep_theirs(two_devices):
    cp = two_devices
    assert cp.cuda.runtime.getDeviceCount() == 2
    with cp.cuda.Device(1):
        x = cp.ones(3)
        assert cp.cuda.Device().id == 1
        seen = []
        t = threading.Thread(target=lambda: seen.append(cp.cuda.runtime.getDevice()))
        t.start()
        t.join()
        assert seen == [0]                              # another thread has its own current device
    assert x.device.id == 1 and cp.cuda.Device().id == 0
    with pytest.raises(ValueError, match=r"^The device where the array resides \(1\) is different from the current "
                                         r"device \(0\)\. Peer access is unavailable between these devices\.$"):
        x + 1
    with pytest.raises(ValueError, match="resides"):
        x.sum()
    y = cp.asarray(x)                                   # an explicit copy to the current device
    assert y.device.id == 0 and y.sum().item() == 3
    with cp.cuda.Device(1):
        assert (x * 2).device.id == 1
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorInvalidDevice: invalid device ordinal"):
        with cp.cuda.Device(2):
            pass


def test_each_device_has_its_own_clock_and_pool(two_devices):
    cp = two_devices
    with cp.cuda.Device(1):
        cp.cuda._sim.launch(duration_ns=2_000_000)
        e1 = cp.cuda.Event()
        e1.record()
    e0 = cp.cuda.Event()
    e0.record()
    cp.cuda.Device(0).synchronize()
    assert e0.done and not e1.done                      # waiting for device 0 does not finish device 1
    cp.cuda.Device(1).synchronize()
    assert e1.done
    pool = cp.get_default_memory_pool()
    with cp.cuda.Device(1):
        used1 = pool.used_bytes()
        keep = cp.zeros(1024, np.float32)
        assert pool.used_bytes() == used1 + 4096
    assert keep.data.device_id == 1


def test_the_fake_waits_where_cupy_waits_inside_a_call(cp):
    """CuPy reads a count or a value back inside these calls (its source: `int(scan[-1])  # synchronize!`);
    the fake makes the same waits, so sync counts can be checked against it."""
    syncs = cp.cuda._sim.syncs
    a = cp.asarray(np.array([3, 0, 1, 1, 0]))
    mask = a > 0
    for call, n in [(lambda: a[mask], 1), (lambda: a[:0][mask[:0]], 0),
                    (lambda: a.__setitem__(mask, 7), 1), (lambda: cp.nonzero(a), 1), (lambda: a.nonzero(), 1),
                    (lambda: cp.where(mask), 1), (lambda: cp.where(mask, a, 0), 0), (lambda: cp.flatnonzero(a), 1),
                    (lambda: cp.unique(a), 1), (lambda: cp.unique(a, return_index=True, return_counts=True), 3),
                    (lambda: cp.bincount(a), 2), (lambda: a.put(cp.asarray(np.array([0])), 1, mode="raise"), 1),
                    (lambda: a.sum(), 0), (lambda: a.sum().item(), 1)]:
        before = syncs[0]
        call()
        assert syncs[0] - before == n
