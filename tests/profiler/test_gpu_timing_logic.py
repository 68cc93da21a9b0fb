"""GPU time per op, resolution logic, without a GPU: a stand-in for the few CuPy calls GpuTimer makes
(events that remember a clock, elapsed time between them) lets the resolution, the CUDA columns, the
table and the trace's GPU lanes be checked here; the real thing runs under @pytest.mark.cuda."""
from __future__ import annotations

import contextlib
import json
import time
import types

import numpy as np

import tensorlib as tl
from profiler import profile, record_function
from profiler.cuda_timing import GpuTimer
from profiler.torch_names import OP_TAGS


class FakeEvent:
    def __init__(self):
        self.t = None

    def record(self, stream=None):
        self.t = FakeCupy.gpu_clock

    def synchronize(self):
        FakeCupy.done_clock = max(FakeCupy.done_clock, self.t)

    @property
    def done(self):
        return self.t is None or self.t <= FakeCupy.done_clock


class FakeCupy:
    gpu_clock = 0      # ns on the "GPU"; tests move it to say when work ran
    done_clock = 0     # the GPU has completed everything up to here

    def __init__(self):
        stream = types.SimpleNamespace(ptr=7)
        self.syncs = 0

        def sync():
            self.syncs += 1
            FakeCupy.done_clock = FakeCupy.gpu_clock

        self.cuda = types.SimpleNamespace(
            Event=FakeEvent, get_current_stream=lambda: stream, Device=lambda i: contextlib.nullcontext(),
            get_elapsed_time=lambda a, b: float(np.float32((b.t - a.t) / 1e6)),     # a C float of ms, as CUDA
            runtime=types.SimpleNamespace(getDevice=lambda: 0, deviceSynchronize=sync, getDeviceCount=lambda: 1))


def _timer(host=lambda: 1_000, pool_size=8):
    FakeCupy.gpu_clock = FakeCupy.done_clock = 0
    return GpuTimer(pool_size=pool_size, cupy=FakeCupy(), clock=host)


def test_spans_resolve_into_device_time_columns_table_and_trace(tmp_path):
    with profile() as prof:
        with record_function("block"):
            tl.ones(4) + 1
            tl.ones(4) * 2
    store = prof.store
    origin = int(store.t0.max()) + 10                # the first anchor: host stamp after every op's enter
    g = _timer(host=lambda: origin)
    ops = [i for i in range(len(store)) if store.tags[store.tag_id[i]] in OP_TAGS]     # (dispatched ops, not steps)
    # each op: GPU work of 1000 * (k + 1) ns, starting 5000 ns apart on the GPU clock
    for k, i in enumerate(ops):
        start, end = FakeEvent(), FakeEvent()
        start.t, end.t = 5000 * k, 5000 * k + 1000 * (k + 1)
        host = int(store.t0[i]) + 1                 # the timer's enter stamp falls inside the op
        g.spans.append((host, int(store.tid[i]), 7, 0, 0, start, end))
    g.resolve(store)
    assert store.has_device_time
    assert [int(store.dev_ns[i]) for i in ops] == [1000 * (k + 1) for k in range(len(ops))]
    block = [i for i in range(len(store)) if store.names[store.name_id[i]] == "block"][0]
    assert store.dev_ns[block] == sum(1000 * (k + 1) for k in range(len(ops)))      # ranges: sum of their ops
    assert store.self_dev_ns[block] == 0
    assert store.self_dev_ns.sum() == store.dev_ns[block]                            # nothing counted twice
    assert [int(store.dev_start[i]) for i in ops] == [origin + 5000 * k for k in range(len(ops))]
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["aten::add"].self_device_time_total == 2.0 and rows["aten::add"].cuda_time_total == 2.0   # the 2nd op
    t = prof.key_averages().table(sort_by="self_cuda_time_total")
    assert "Self CUDA" in t.splitlines()[1] and "Self CUDA time total: 10.000us" in t
    assert t.rstrip().splitlines()[-1].startswith("CUDA time: stream time from each op's entry to its exit")
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    evs = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    kernels = [e for e in evs if e.get("cat") == "kernel"]
    # stream pointer 7 is not the default stream (pointer 0, CUPTI's id 7): the first other stream is 8
    assert len(kernels) == len(ops) and all(e["pid"] == 0 and e["tid"] == e["args"]["stream"] == 8 for e in kernels)
    flows = [e for e in evs if e.get("cat") == "ac2g"]
    assert len(flows) == 2 * len(ops)
    for k in kernels:
        f = [e for e in flows if e["id"] == k["args"]["correlation"]]
        assert {e["ph"] for e in f} == {"s", "f"}
    assert len(g.spans) == 0 and len(g._devices[0].free) == 8 + 2 * len(ops)      # events go back to the pool


def test_a_dry_pool_takes_back_completed_events_and_never_waits():
    g = _timer()
    for k in range(10):
        FakeCupy.gpu_clock = 100 * k
        FakeCupy.done_clock = 100 * k - 200        # the GPU completes work two ops behind the host
        tok = g.op_enter(types.SimpleNamespace(name="zeros"), (), {"device": "cuda"}, "forward", k)
        FakeCupy.gpu_clock = 100 * k + 10 + k
        g.op_exit(tok, None)
    assert g._cp.syncs == 1                        # the one at start, none while recording
    assert len(g.resolved) + len(g.spans) == 10
    assert g.resolved                              # completed spans were resolved to refill the pool
    assert all(s[5].t > FakeCupy.done_clock for s in list(g.spans)[-1:])
    assert [d for *_, d in g.resolved] == [10 + k for k in range(len(g.resolved))]


def test_spans_stay_exact_to_the_microsecond_after_ten_minutes():
    """cudaEventElapsedTime's float of ms loses microseconds after ~16 s from one reference; anchors
    re-recorded every half second keep integer ns offsets exact."""
    def run(anchor_every_ns):
        clock = [0]
        g = _timer(host=lambda: clock[0] - 1_000)     # the host stamps each op 1 us before the GPU runs it
        g.anchor_every_ns = anchor_every_ns
        for k in range(1, 1501):                       # one op each 0.4 s for 10 minutes
            FakeCupy.gpu_clock = clock[0] = k * 400_000_123
            tok = g.op_enter(types.SimpleNamespace(name="zeros"), (), {"device": "cuda"}, "forward", k)
            FakeCupy.gpu_clock += 2_000
            g.op_exit(tok, None)
        g._cp.cuda.runtime.deviceSynchronize()
        g._take(wait=True)
        r = np.array(g.resolved, np.int64)
        return np.abs(g._starts(r) - r[:, 0]).max()     # placed at the launch: a lower bound
    assert run(GpuTimer.anchor_every_ns) <= 100
    assert run(10 ** 15) > 1_000                      # one reference for the whole run: off by microseconds


def test_threads_lose_no_span_while_the_pool_is_reaped():
    import sys
    import threading
    g = _timer(pool_size=4)
    FakeCupy.done_clock = 1 << 62                  # everything completes: reaps happen all the time
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        def work():
            for k in range(2000):
                g.op_exit(g.op_enter(types.SimpleNamespace(name="zeros"), (), {"device": "cuda"}, "forward", k), None)
        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert len(g.resolved) + len(g.spans) == 8000


def test_timer_hook_skips_cpu_ops():
    g = _timer()
    assert g.op_enter(types.SimpleNamespace(name="add"), (tl.ones(2),), {}, "forward", 1) is None
    g.op_exit(None, None)
    assert len(g.spans) == 0
    tok = g.op_enter(types.SimpleNamespace(name="zeros"), (), {"device": "cuda:0"}, "forward", 2)
    FakeCupy.gpu_clock = 500
    g.op_exit(tok, None)
    assert len(g.spans) == 1 and g.spans[0][2] == 7 and g.spans[0][3] == 0
    assert g.spans[0][0] <= time.perf_counter_ns()


def test_cuda_pool_allocator_records_mallocs_and_frees(monkeypatch):
    """MemoryRecorder hears tensorlib's tracking allocator (tensorlib.cuda.memory.Tracker), here over a
    stand-in pool that already holds 4096 bytes when profiling starts."""
    import numpy as np
    from profiler.memory_record import CUDA, MemoryRecorder, attribute, timeline
    from tensorlib.cuda import memory as M

    class Pool:
        used = 4096

        def malloc(self, size):
            Pool.used += size
            return types.SimpleNamespace(mem=types.SimpleNamespace(size=size), ptr=0xA0 + Pool.used)

        def used_bytes(self):
            return Pool.used

        def total_bytes(self):
            return 1 << 20

    tracker = M.Tracker(Pool(), lambda: 0, wrap=lambda ptr, size, owner, dev: owner)
    monkeypatch.setattr(M, "_tracker", tracker)
    rec = MemoryRecorder(cuda=True)
    with profile() as prof:
        rec.start()
        with record_function("alloc"):
            a = tracker.malloc(1024)
            b = tracker.malloc(512)     # held past stop(): its free is not recorded
        with record_function("free"):
            del a
        rec.stop()
    del b
    assert tracker.listeners == ()
    mem = rec.array()
    assert mem["bytes"].tolist() == [1024, 512, -1024] and (mem["dev_type"] == CUDA).all()
    store = prof.store
    attribute(store, mem)
    evs = {store.names[store.name_id[i]]: i for i in range(len(store))}
    assert store.self_cuda_mem[evs["alloc"]] == 1536 and store.self_cuda_mem[evs["free"]] == -1024
    (t, total), = timeline(mem, rec.cuda_base).values()
    assert total.tolist() == [4096 + 1024, 4096 + 1536, 4096 + 512]      # from the bytes in use at start
    assert np.all(np.diff(t) >= 0)
