"""The profiler's CUDA paths end to end: CUDA event timing resolved into the device columns, table and
trace; CuPy pool memory records against tensorlib.cuda's counters; the debug hooks on CUDA tensors.
Run on a GPU by `make test-gpu`, and on the CPU against the fake CuPy (tests/fakecupy) by `make test`."""
from __future__ import annotations

import gc
import json
import threading
import weakref

import numpy as np
import pytest

import tensorlib as tl
from profiler import ProfilerActivity, profile, record_function
from profiler.memory_record import CUDA, timeline

pytestmark = pytest.mark.cuda


def test_event_timing_fills_device_columns_and_a_gpu_lane(tmp_path):
    a = tl.randn(64, 64, device="cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("block"):
            for _ in range(3):
                tl.matmul(a, a).relu()
        tl.ones(3) + 1                     # a CPU op: no GPU span
    store = prof.store
    assert store.has_device_time
    evs = prof.events()
    gpu_ops = [e for e in evs if e.name in ("aten::matmul", "aten::relu")]
    assert len(gpu_ops) == 6 and all(e.device_time_ns >= 0 for e in gpu_ops)
    assert all(e.device_time_ns == 0 for e in evs if e.name == "aten::add")
    block = [e for e in evs if e.name == "block"][0]
    assert block.device_time_ns == sum(e.device_time_ns for e in gpu_ops)
    table = prof.key_averages().table(sort_by="self_cuda_time_total")
    assert "Self CUDA" in table
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    doc = json.loads(path.read_text())
    kernels = [e for e in doc["traceEvents"] if e.get("cat") == "kernel"]
    assert len(kernels) == 6
    dev = tl.cuda.current_device()
    assert all(k["pid"] == dev for k in kernels)
    assert doc["deviceProperties"][0]["name"] == tl.cuda.get_device_name(dev)
    flows = [e for e in doc["traceEvents"] if e.get("cat") == "ac2g"]
    assert len(flows) == 2 * len(kernels)
    # as Kineto writes them (HTA keeps a kernel only when a launch call carries its correlation): one
    # cudaLaunchKernel per kernel on the launching op's thread, the default stream as CUPTI's id 7
    launches = {e["args"]["correlation"]: e for e in doc["traceEvents"] if e.get("cat") == "cuda_runtime"}
    ops = {e["args"]["External id"]: e for e in doc["traceEvents"] if e.get("cat") == "cpu_op"}
    for k in kernels:
        call = launches[k["args"]["correlation"]]
        assert call["name"] == "cudaLaunchKernel" and call["args"]["External id"] == k["args"]["External id"]
        op = ops[k["args"]["External id"]]
        assert call["tid"] == op["tid"] and op["ts"] <= call["ts"] <= call["ts"] + call["dur"] <= op["ts"] + op["dur"]
        assert k["tid"] == k["args"]["stream"] == 7 and k["args"]["device"] == k["pid"]


def _fake_sim():
    import cupy
    if not getattr(cupy, "__fake__", False):
        pytest.skip("drives the fake CuPy's device clock (tests/fakecupy); on a GPU devtools/gpu_check.py checks this")
    return cupy.cuda._sim


def test_a_dry_event_pool_grows_instead_of_waiting_for_the_gpu():
    from profiler.cuda_timing import GpuTimer
    sim = _fake_sim()
    a = tl.ones(8, device="cuda")
    timer = GpuTimer(pool_size=8)
    syncs = sim.syncs[0]
    tl.dispatch.add_hook(timer)
    try:
        sim.launch(duration_ns=5_000_000)       # the GPU is behind: no event completes while recording
        for _ in range(50):
            a + 1
    finally:
        tl.dispatch.remove_hook(timer)
    assert sim.syncs[0] == syncs                # the program never waited for the GPU
    assert len(timer.spans) == 50
    with profile() as prof:
        pass
    timer.resolve(prof.store)
    assert len(timer.spans) == 0 and len(timer._devices[0].free) >= 100     # all back in the (grown) pool


def test_gpu_spans_never_start_before_their_launch_when_the_queue_is_busy_at_start():
    sim = _fake_sim()
    a = tl.ones(64, device="cuda")
    sim.launch(duration_ns=30_000_000)          # 30 ms of work queued before profiling starts
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            a * 2
    store = prof.store
    ops = [i for i in range(len(store)) if store.names[store.name_id[i]] == "aten::mul"]
    assert len(ops) == 5
    for i in ops:
        assert store.dev_start[i] >= store.t0[i], "a GPU span drawn before its op was launched"
    assert "CUDA time: stream time from each op's entry to its exit" in prof.key_averages().table()


def test_ops_on_cuda1_are_timed_on_device_1():
    _fake_sim()
    import cupy as cp
    cp.cuda.runtime._COUNT = 2
    try:
        a = tl.ones(64, device="cuda:1")
        cp.cuda._sim.launch(duration_ns=20_000_000)      # device 0 is busy; device 1 is not
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                a + 1
        store = prof.store
        ops = [i for i in range(len(store)) if store.names[store.name_id[i]] == "aten::add"]
        assert [int(store.dev_index[i]) for i in ops] == [1, 1, 1]
        assert all(0 < store.dev_ns[i] < 10_000_000 for i in ops)      # not behind device 0's queue
    finally:
        cp.cuda.runtime._COUNT = 1
        tl.random._cuda_generators.pop(1, None)


def test_cuda_memory_records_match_tensorlib_counters():
    gc.collect()
    tl.cuda.reset_peak_memory_stats()
    keep = tl.zeros(256, device="cuda")            # allocated before profiling: the base
    base = tl.cuda.memory_allocated()
    with profile(profile_memory=True) as prof:
        with record_function("alloc"):
            x = tl.zeros(1000, device="cuda")      # 4000 -> 4096
            y = x * 2                              # another 4096
        with record_function("free"):
            del x, y
            gc.collect()
        z = tl.ones(10, device="cuda")
    store = prof.store
    mem = store.mem_events
    cuda = mem[mem["dev_type"] == CUDA]
    assert cuda["bytes"][cuda["bytes"] > 0].sum() >= 2 * 4096
    names = {store.names[store.name_id[i]]: i for i in range(len(store))}
    assert store.self_cuda_mem[names["alloc"]] + store.cuda_mem[names["alloc"]] >= 2 * 4096
    assert store.cuda_mem[names["free"]] == -2 * 4096
    (t, total), = timeline(cuda, store.cuda_base).values()
    assert int(total.max()) == tl.cuda.max_memory_allocated() == base + 2 * 4096
    assert int(total[-1]) == tl.cuda.memory_allocated()
    assert "cuda:0: peak" in prof.memory_summary()
    del keep, z


def test_profile_memory_sees_allocations_and_frees_on_other_threads():
    """CuPy's MemoryHooks are thread-local: a hook entered on the profiling thread never heard of a
    DataLoader worker's or a user thread's allocations. The allocator tensorlib installs is process-wide."""
    gc.collect()
    tl.cuda.reset_peak_memory_stats()
    base = tl.cuda.memory_allocated()
    kept, tids = [], []

    def work(fn):
        t = threading.Thread(target=lambda: (tids.append(threading.get_native_id()), fn()))
        t.start()
        t.join()

    with profile(profile_memory=True) as prof:
        work(lambda: kept.append(tl.zeros(1000, device="cuda")))     # 4000 -> 4096 bytes
        work(kept.clear)
    mem = prof.store.mem_events
    cuda = mem[mem["dev_type"] == CUDA]
    assert cuda["bytes"].tolist() == [4096, -4096] and cuda["tid"].tolist() == tids
    assert cuda["addr"][0] == cuda["addr"][1]
    (t, total), = timeline(cuda, prof.store.cuda_base).values()
    assert total.tolist() == [base + 4096, base]
    assert int(total.max()) == tl.cuda.max_memory_allocated() and int(total[-1]) == tl.cuda.memory_allocated()


def test_nan_watch_finds_a_nan_made_on_cuda():
    from profiler.debug.nan_watch import NanInfError, nan_watch
    x = tl.tensor([1.0, 0.0], device="cuda")
    with pytest.raises(NanInfError, match="op 'div'.*produced NaN"):
        with nan_watch():
            x / x
    with nan_watch(mode="warn", batch=1) as w:
        with pytest.warns(RuntimeWarning, match="produced Inf"):
            tl.ones(2, device="cuda") / x
    assert w.hook.findings[0].op == "div"


def test_nan_watch_keeps_no_cuda_array_alive_until_its_batch_resolves():
    """The watch held each op's outputs (and, through the op's record, its inputs) until 64 had queued:
    a training step's activations lived on. Now an op leaves a 0-d code on the device and its metadata."""
    from profiler.debug.nan_watch import NanInfError, nan_watch
    gc.collect()
    base = tl.cuda.memory_allocated()
    with pytest.raises(NanInfError, match=r"op 'div' \(forward, seq \d+\) produced NaN in output 0 of shape \(1000,\)"):
        with nan_watch(batch=64) as w:
            a = tl.ones(1000, device="cuda")
            b = (a - 1) / (a - 1)                       # NaN, found when the batch resolves
            refs = [weakref.ref(a._data), weakref.ref(b._data)]
            del a, b
            assert all(r() is None for r in refs), "an output or input array is still alive"
            assert 0 < len(w.hook._pending) < 64
            assert tl.cuda.memory_allocated() - base <= len(w.hook._pending) * 512     # only the codes
    assert w.hook.findings[0].input_shapes == [(1000,), (1000,)]


def test_sync_watch_counts_cuda_syncs():
    from profiler.debug.sync_watch import sync_watch
    x = tl.ones(2, device="cuda")
    with sync_watch(mode="count") as w:
        x.tolist()
        x.sum().item()
        x.cpu()
        tl.ones(2).tolist()                    # CPU: no sync
    assert [e.what for e in w.events][:2] == ["tolist", "item"] and w.count >= 3


def test_schedule_brackets_active_steps_with_cuda_profiler_api():
    import cupy
    from profiler import schedule
    seen = []
    orig_start, orig_stop = cupy.cuda.runtime.profilerStart, cupy.cuda.runtime.profilerStop
    cupy.cuda.runtime.profilerStart = lambda: seen.append("start")
    cupy.cuda.runtime.profilerStop = lambda: seen.append("stop")
    try:
        with profile(schedule=schedule(wait=0, warmup=0, active=1, repeat=1)) as prof:
            for _ in range(2):
                tl.ones(2, device="cuda") + 1
                prof.step()
    finally:
        cupy.cuda.runtime.profilerStart, cupy.cuda.runtime.profilerStop = orig_start, orig_stop
    assert seen and seen[0] == "start" and seen.count("start") == seen.count("stop")


def test_cuda_profiler_range_calls_the_runtime():
    from profiler import nvtx as pnvtx
    with pnvtx.cuda_profiler_range() as active:
        tl.ones(1, device="cuda")
    assert active is True


def test_device_watch_quiet_for_a_model_fully_on_cuda():
    from profiler.debug.device_watch import device_watch
    m = tl.nn.Linear(3, 2).cuda()
    with device_watch() as dw:
        m(tl.ones(4, 3, device="cuda")).sum().backward()
    assert dw.findings == []
    np.testing.assert_equal(m.weight.grad.shape, (2, 3))


def test_toggling_cuda_collection_leaves_out_the_gpu_times_meanwhile():
    """toggle_collection_dynamic(False, [CUDA]): ops still recorded on the CPU, without GPU spans; back on,
    the GPU timer is registered again after the recorder (its stamp inside the op's)."""
    from tensorlib import dispatch
    a = tl.randn(16, 16, device="cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        tl.matmul(a, a)
        prof.toggle_collection_dynamic(False, [ProfilerActivity.CUDA])
        assert prof._gpu not in dispatch.hooks()
        a.relu()
        prof.toggle_collection_dynamic(True, [ProfilerActivity.CUDA])
        hooks = dispatch.hooks()
        assert hooks.index(prof._recorder) < hooks.index(prof._gpu)
        a.exp()
    evs = {e.name: e for e in prof.events()}
    assert evs["aten::matmul"].device_time_ns > 0 and evs["aten::exp"].device_time_ns > 0
    assert evs["aten::relu"].device_time_ns == 0
