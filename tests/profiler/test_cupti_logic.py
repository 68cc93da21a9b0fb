"""cuda_timing="cupti" without a GPU: profiler/cupti.py driven by a stand-in for ``cupti.cupti``
(_fake_cupti.FakeCupti, injected with monkeypatch) that delivers synthetic activity records with
known timestamps and correlation ids.

These check the profiler's own logic for real — clock alignment, attribution of kernels to ops by
external correlation id (and by launch thread/time when there is none), per-op self/total CUDA time,
the table's CUDA columns, the Chrome trace's Kineto events, lanes and flows — but not that the real
CUPTI calls behave as the stand-in does; that is test_cupti_gpu.py's job, on a GPU."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from profiler.torch_names import OP_TAGS

import profiler.cupti as pcupti
import tensorlib as tl
from profiler import ProfilerActivity, profile, record_function
from profiler.cupti import ClockMap, CuptiError, CuptiTimer, CuptiUnavailable, demangle
from profiler.events import build
from tensorlib import dispatch

from ._fake_cupti import ActivityKind, FakeCupti, Record

pprofile = importlib.import_module("profiler.profile")   # the module (the package exports the class under its name)
TORCH_CUDA_TRACE = Path(__file__).resolve().parents[1] / "viewer" / "data" / "torch_cuda_mlp.json"


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA "available", cupti.cupti replaced by a FakeCupti, every op treated as a GPU op."""
    fake = FakeCupti()
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: True)
    monkeypatch.setattr(pcupti, "load_cupti", lambda: fake)
    monkeypatch.setattr(pcupti, "_on_gpu", lambda inputs, attrs: True)
    return fake


def _plan(durations):
    """on_pop: the k-th op to close launches one kernel of durations[k] ns (3 µs after its launch call)."""
    k = iter(range(10_000))

    def on_pop(fake, ext_id):
        i = next(k)
        fake.launch(name=f"kernel_{i}", dur=durations[i % len(durations)], delay=3_000)
    return on_pop


def _names(store):
    return [store.names[store.name_id[i]] for i in range(len(store))]


def test_records_fill_cuda_columns_table_and_trace(fake_cuda, tmp_path):
    fake_cuda.on_pop = _plan([1000, 2000, 3000, 4000])
    # a call that is not a launch (cudaGetDevice): recorded by CUPTI, left out of the trace
    with profile(cuda_timing="cupti") as prof:
        with record_function("block"):
            fake_cuda.api_call(17)
            tl.ones(4) + 1
            tl.ones(4) * 2
    assert fake_cuda.pushes == fake_cuda.pops == 4 and fake_cuda.flushes == 1
    assert fake_cuda.enabled == set()                                  # disabled at stop
    assert fake_cuda.thread_id_type == 1                              # SYSTEM: OS thread ids
    store = prof.store
    ops = [i for i in range(len(store)) if store.tags[store.tag_id[i]] in OP_TAGS]     # (dispatched ops, not steps)
    assert [_names(store)[i] for i in ops] == ["aten::ones", "aten::add", "aten::ones", "aten::mul"]
    # each op's own CUDA time is its kernel's duration; the range has none of its own, all in total
    assert [int(store.self_dev_ns[i]) for i in ops] == [1000, 2000, 3000, 4000]
    assert [int(store.dev_ns[i]) for i in ops] == [1000, 2000, 3000, 4000]
    block = _names(store).index("block")
    assert store.self_dev_ns[block] == 0 and store.dev_ns[block] == 10_000
    # alignment: CUPTI's clock is perf_counter_ns + offset; the kernel started 3 µs after its call
    for i, launch in zip(ops, fake_cuda.launches):
        assert abs(int(store.dev_start[i]) - launch["gpu_host"]) < 2_000
        assert store.dev_stream[i] == 7 and store.dev_index[i] == 0
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["aten::mul"].self_cuda_time_total == 4.0 and rows["aten::ones"].cuda_time_total == 4.0
    assert rows["block"].cuda_time_total == 10.0
    table = prof.key_averages().table(sort_by="self_cuda_time_total")
    assert "Self CUDA" in table.splitlines()[1] and "CUDA total" in table.splitlines()[1]
    assert "Self CUDA time total: 10.000us" in table

    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    evs = json.loads(path.read_text())["traceEvents"]
    kernels = [e for e in evs if e.get("cat") == "kernel"]
    calls = [e for e in evs if e.get("cat") == "cuda_runtime"]
    cpu = {e["args"]["External id"]: e for e in evs if e.get("cat") == "cpu_op"}
    assert len(kernels) == 4 and len(calls) == 4
    assert all(e["name"] == "cudaLaunchKernel" for e in calls)      # version suffix dropped, cudaGetDevice left out
    for e in kernels:
        assert e["pid"] == 0 and e["tid"] == 7
        assert list(e["args"]) == ["External id", "queued", "device", "context", "stream", "correlation",
                                   "registers per thread", "shared memory", "grid", "block"]   # Kineto's order
        assert e["args"]["shared memory"] == 768 and e["args"]["grid"] == [4, 1, 1]
        assert cpu[e["args"]["External id"]]["cat"] == "cpu_op"
    by_corr = {e["args"]["correlation"]: e for e in calls}
    for k in kernels:
        call = by_corr[k["args"]["correlation"]]
        op = cpu[call["args"]["External id"]]
        assert k["args"]["External id"] == call["args"]["External id"]
        assert op["tid"] == call["tid"] and op["pid"] == call["pid"]
        assert op["ts"] <= call["ts"] and call["ts"] + call["dur"] <= op["ts"] + op["dur"] + 1e-3   # nested
        assert abs(k["ts"] - call["ts"] - 3.0) < 1.0
    flows = [e for e in evs if e.get("cat") == "ac2g"]
    assert len(flows) == 8
    for k in kernels:
        s, f = sorted((e for e in flows if e["id"] == k["args"]["correlation"]), key=lambda e: e["ph"] != "s")
        call = by_corr[k["args"]["correlation"]]
        assert (s["ph"], s["pid"], s["tid"], s["ts"]) == ("s", call["pid"], call["tid"], call["ts"])
        assert (f["ph"], f["pid"], f["tid"], f["ts"], f["bp"]) == ("f", 0, 7, k["ts"], "e")
    assert any(e.get("ph") == "M" and e["pid"] == 0 and e.get("tid") == 7 for e in evs)   # the stream lane is named


def test_ids_of_our_own_kind_beside_kinetos(fake_cuda):
    """Our external ids are CUSTOM2: torch.profiler (Kineto) pushing its CUSTOM0 ids around the same
    work neither steals our kernels nor has its ids taken for ours."""
    fake_cuda.on_pop = _plan([1000, 2000])
    fake_cuda.activity_push_external_correlation_id(3, 777)        # Kineto's op id, around everything
    try:
        with profile(cuda_timing="cupti") as prof:
            tl.ones(4) + 1
    finally:
        fake_cuda.activity_pop_external_correlation_id(3)
    kinds = {r._fields["external_kind"] for r in fake_cuda.delivered
             if int(r._fields["kind"]) == int(ActivityKind.EXTERNAL_CORRELATION)}
    assert kinds == {3, 5}                                          # both tools' records came
    store = prof.store
    ops = [i for i in range(len(store)) if store.tags[store.tag_id[i]] in OP_TAGS]     # (dispatched ops, not steps)
    assert [int(store.self_dev_ns[i]) for i in ops] == [1000, 2000]


def test_trace_matches_kineto_names_and_loads_in_the_viewer(fake_cuda, tmp_path):
    """Arguments and categories against a real torch (Kineto) trace from an H100, and the viewer binds
    the flows: launch call -> kernel / memcpy / memset on the GPU lane."""
    launches = iter(["kernel", "memcpy", "memset", "kernel"])

    def on_pop(fake, ext_id):
        what = next(launches, "kernel")
        fake.launch(what=what, name="void add_kernel<float>(float*, float const*, int)", dur=1500)
    fake_cuda.on_pop = on_pop
    with profile(cuda_timing="cupti") as prof:
        x = tl.ones(8)
        x = x + 1
        x = x * 3
        x.sum()
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    ours = json.loads(path.read_text())["traceEvents"]
    torch = json.loads(TORCH_CUDA_TRACE.read_text())["traceEvents"]

    def keys(evs, cat):
        return [set(e["args"]) for e in evs if e.get("cat") == cat and e.get("ph") == "X"]

    for cat in ("kernel", "cuda_runtime", "gpu_memset"):
        theirs = set.union(*keys(torch, cat))
        assert keys(ours, cat) and all(k <= theirs for k in keys(ours, cat)), cat
    memcpy = [e for e in ours if e.get("cat") == "gpu_memcpy"]
    assert [e["name"] for e in memcpy] == ["Memcpy HtoD (Pageable -> Device)"]
    assert memcpy[0]["args"]["bytes"] == 4096 and memcpy[0]["args"]["memory bandwidth (GB/s)"] == 4096 / 1500
    assert [e["name"] for e in ours if e.get("cat") == "gpu_memset"] == ["Memset (Device)"]
    for ph in ("s", "f"):
        theirs = {tuple(sorted(e)) for e in torch if e.get("cat") == "ac2g" and e["ph"] == ph}
        assert {tuple(sorted(e)) for e in ours if e.get("cat") == "ac2g" and e["ph"] == ph} <= theirs

    from viewer.model import load_trace
    t = load_trace(str(path))
    assert not [w for w in t.warnings if "flow" in w], t.warnings
    gpu = [i for i in range(len(t)) if t.cat_of(i) in ("kernel", "gpu_memcpy", "gpu_memset")]
    assert len(gpu) == 4 and all(t.lanes[t.lane[i]].pid == 0 and t.lanes[t.lane[i]].tid == 7 for i in gpu)
    pairs = [(t.cat_of(s), t.cat_of(d)) for s, d, c in zip(*t.flows) if c == "ac2g"]
    assert sorted(pairs) == sorted([("cuda_runtime", "kernel")] * 2 + [("cuda_runtime", "gpu_memcpy"),
                                                                       ("cuda_runtime", "gpu_memset")])
    for s, d, c in zip(*t.flows):
        if c == "ac2g":      # the launch call sits inside the op that launched it
            assert t.cat_of(int(t.parent[s])) == "cpu_op"


def _store(tid):
    # step (user range) > outer op > inner op, plus a later "tail" op; records (name, tag, seq, t0, t1)
    recs = [("inner", "forward", 2, 200, 300), ("outer", "forward", 1, 100, 1000), ("tail", "forward", 3, 1800, 1900),
            ("step", "r:user", -1, 50, 2000)]
    return build([(tid, "main", recs)], False, 0, 0)


def _kernel(corr, start, dur, stream=7, name="k"):
    return Record(kind=ActivityKind.CONCURRENT_KERNEL, name=name, device_id=0, context_id=1, stream_id=stream,
                  correlation_id=corr, start=start, end=start + dur, grid_x=1, grid_y=1, grid_z=1, block_x=32,
                  block_y=1, block_z=1, registers_per_thread=8, static_shared_memory=0, dynamic_shared_memory=0)


def _call(corr, tid, start, dur=10, cbid=211):
    return Record(kind=ActivityKind.RUNTIME, cbid=cbid, start=start, end=start + dur, process_id=1, thread_id=tid,
                  correlation_id=corr, return_value=0)


def _ext(corr, eid, kind=5):
    return Record(kind=ActivityKind.EXTERNAL_CORRELATION, external_kind=kind, external_id=eid, correlation_id=corr)


def test_nested_ops_self_and_total_and_fallback_attribution():
    """Hand-made records on a hand-made store (CUPTI clock = host clock here): an op's own time is
    what it launched itself, totals add the nested op's; a launch with no external id goes to the
    innermost event open at the call; a kernel with neither is drawn but counted nowhere."""
    tid = threading.get_native_id()
    store = _store(tid)
    fake = FakeCupti(offset=0)
    timer = CuptiTimer(fake, select=lambda i, a: True, sync=lambda: None)
    timer.clock_start = (0, 0)
    timer.ops = [(1, tid, 150), (2, tid, 250), (3, tid, 1850)]
    timer._on_buffer([
        _ext(10, 1), _call(10, tid, 160), _kernel(10, 400, 400),            # outer: 400
        _ext(11, 2), _call(11, tid, 260), _kernel(11, 900, 100),            # inner: 100 ...
        _ext(12, 2), _call(12, tid, 270),                                   # ... + a memset of 50
        Record(kind=ActivityKind.MEMSET, memory_kind=3, value=0, bytes=64, device_id=0, context_id=1, stream_id=9,
               correlation_id=12, start=1000, end=1050),
        _call(13, tid, 1500), _kernel(13, 1600, 30),                        # no external id: step's own
        _ext(14, 3, kind=3), _ext(14, 1, kind=4),                           # Kineto's ids (CUSTOM0/1) ...
        _call(14, tid, 1810), _kernel(14, 1820, 5),                         # ... are not ours: by time
        _kernel(99, 1700, 7),                                               # no call, no id: nobody's
        _call(15, tid, 40, cbid=17),                                        # cudaGetDevice: dropped
    ])
    timer.resolve(store)
    names = _names(store)          # (after resolve: the launch calls are events now, rows have moved)
    outer, inner, tail, step = (names.index(n) for n in ("aten::outer", "aten::inner", "aten::tail", "step"))
    assert store.has_device_time
    assert (int(store.self_dev_ns[outer]), int(store.self_dev_ns[inner]), int(store.self_dev_ns[step]),
            int(store.self_dev_ns[tail])) == (400, 150, 30, 5)
    assert (int(store.dev_ns[outer]), int(store.dev_ns[inner]), int(store.dev_ns[step])) == (550, 150, 585)
    assert store.self_dev_ns.sum() == store.dev_ns[step]                 # nothing counted twice; the stray 7 ns nowhere
    assert int(store.dev_start[inner]) == 900 and int(store.dev_start[outer]) == 400
    owners = {r[5]: r[8] for r in store.gpu_records}
    assert owners == {10: outer, 11: inner, 12: inner, 13: step, 14: tail, 99: -1}
    assert [r[1] for r in store.api_records] == ["cudaLaunchKernel"] * 5


def test_launch_calls_are_clipped_into_their_op():
    """A call that clock alignment placed across its op's edge is clipped into the op, so the CPU
    lane still nests strictly."""
    tid = threading.get_native_id()
    store = _store(tid)
    timer = CuptiTimer(FakeCupti(offset=0), select=lambda i, a: True, sync=lambda: None)
    timer.clock_start = (0, 0)
    timer.ops = [(2, tid, 250)]
    timer._on_buffer([_ext(20, 2), _call(20, tid, 190, dur=30), _ext(21, 2), _call(21, tid, 290, dur=30),
                      _kernel(20, 500, 10), _kernel(21, 600, 10)])
    timer.resolve(store)
    inner = _names(store).index("aten::inner")
    spans = sorted((r[5], r[6]) for r in store.api_records)
    assert spans == [(200, 220), (290, 300)]
    assert all(r[7] == inner for r in store.api_records)


def test_synchronize_calls_are_drawn_but_not_the_profilers_own(fake_cuda, monkeypatch):
    syncs = []
    # start()'s and stop()'s cudaDeviceSynchronize (start's makes CUPTI's first record, and its first buffer,
    # before the first op: on an H200 that cost the first op 4-5 ms)
    monkeypatch.setattr(pcupti, "_default_sync", lambda: syncs.append(fake_cuda.api_call(165)))
    with profile(cuda_timing="cupti") as prof:
        assert len(syncs) == 1
        with record_function("wait"):
            fake_cuda.api_call(131)                                           # the user's cudaStreamSynchronize
    assert len(syncs) == 2
    calls = prof.store.api_records
    assert [(c[0], c[1]) for c in calls] == [("cuda_runtime", "cudaStreamSynchronize")]
    assert calls[0][7] == _names(prof.store).index("wait")


def test_clock_map_offset_and_rate():
    m = ClockMap((1_000, 5_000_000))
    assert m([5_000_000, 5_000_500]).tolist() == [1_000, 1_500]
    # CUPTI's clock running 0.05% fast: fitted from the start and stop samples
    m = ClockMap((0, 0), (1_000_000_000, 1_000_500_000))
    assert abs(int(m([1_000_500_000])[0]) - 1_000_000_000) <= 1 and abs(int(m([500_250_000])[0]) - 500_000_000) <= 1
    m = ClockMap((0, 0), (1_000, 1_000_000))       # samples too close (or absurd): offset only
    assert m.slope == 1.0


def test_records_are_copied_inside_the_callback(fake_cuda):
    """The stand-in invalidates each record once its callback returns; nothing is read later."""
    fake_cuda.on_pop = _plan([100])
    with profile(cuda_timing="cupti") as prof:
        for _ in range(5):
            tl.ones(2)
    assert len(fake_cuda.delivered) >= 15
    assert prof.store.self_dev_ns.sum() == 500


def test_demangles_cxx_kernel_names():
    assert demangle("cupy_add__float32") == "cupy_add__float32"
    out = demangle("_Z3addPfPKfi")
    assert out in ("add(float*, float const*, int)", "_Z3addPfPKfi")     # the latter where libstdc++ is absent


def test_missing_cupti_python_is_a_clear_error(monkeypatch):
    """Where cupti-python does not import, cuda_timing="cupti" says what to install."""
    monkeypatch.setitem(sys.modules, "cupti", None)      # `from cupti import cupti` raises ImportError
    with pytest.raises(CuptiUnavailable, match=r"pip install 'tensorlib-profiler\[cupti\]'") as info:
        pcupti.load_cupti()
    assert "cupti-python>=13.0.1,<13.1" in str(info.value) and isinstance(info.value, ImportError)
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: True)
    with pytest.raises(ImportError, match=r"cuda_timing='cupti' needs NVIDIA's cupti-python"):
        profile(cuda_timing="cupti")


def test_cupti_without_cuda_warns_and_profiles_the_cpu(monkeypatch):
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: False)
    monkeypatch.setattr(pcupti, "load_cupti", lambda: pytest.fail("cupti must not be imported without CUDA"))
    with pytest.warns(UserWarning, match=r"CUDA is not available.*pip install 'tensorlib-profiler\[cuda13,cupti\]'"):
        prof = profile(cuda_timing="cupti")
    with prof:
        tl.ones(2) + 1
    assert not prof.store.has_device_time and prof.store.gpu_records is None


def test_bad_cuda_timing_arguments(monkeypatch):
    with pytest.raises(ValueError, match="cuda_timing must be 'events'.*or 'cupti'"):
        profile(cuda_timing="nsys")
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: True)
    with pytest.raises(ValueError, match="add ProfilerActivity.CUDA"):
        profile(activities=[ProfilerActivity.CPU], cuda_timing="cupti")


def test_cupti_that_refuses_to_start_leaves_nothing_behind(fake_cuda):
    fake_cuda.fail_enable = True
    prof = profile(cuda_timing="cupti")
    hooks_before = dispatch.hooks()
    with pytest.raises(CuptiError, match="cuda_timing='events'"):
        prof.start()
    assert dispatch.hooks() == hooks_before and pcupti._receiver is None
    fake_cuda.fail_enable = False
    with profile(cuda_timing="cupti") as again:           # the process can profile again
        tl.ones(2)
    assert [e.name for e in again.events()] == ["aten::ones", "aten::empty", "aten::fill_"]


def test_run_cli_cuda_timing_option(tmp_path, capsys, monkeypatch):
    from profiler._cli import main
    script = tmp_path / "s.py"
    script.write_text("import tensorlib as tl\ntl.ones(3) + 1\n")
    monkeypatch.setitem(sys.modules, "cupti", None)
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: True)
    rc = main(["run", "-o", str(tmp_path / "t.json"), "--cuda-timing", "cupti", str(script)])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'tensorlib-profiler[cupti]'" in err
    assert not (tmp_path / "t.json").exists()
    fake = FakeCupti(on_pop=_plan([250]))
    monkeypatch.setattr(pcupti, "load_cupti", lambda: fake)
    monkeypatch.setattr(pcupti, "_on_gpu", lambda inputs, attrs: True)
    rc = main(["run", "-o", str(tmp_path / "t.json"), "--cuda-timing", "cupti", str(script)])
    out = capsys.readouterr().out
    assert rc == 0 and "Self CUDA time total: 0.500us" in out
    evs = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert sum(e.get("cat") == "kernel" for e in evs) == 2


class _CuptiNvtxDomain:
    """An nvtx.Domain whose ranges go to the stand-in CUPTI as MARKER records (CUPTI as the NVTX tool)."""

    def __init__(self, fake, name="tensorlib"):
        self.fake, self.name = fake, name

    def get_category_id(self, category):
        return hash(category) & 0xFFFF

    def get_event_attributes(self, message=None, color=None, category=None, payload=None):
        import types
        return types.SimpleNamespace(message=message, color=color, category=category, payload=payload)

    def push_range(self, attrs):
        self.fake.nvtx_push(self.name, attrs.message)

    def pop_range(self):
        self.fake.nvtx_pop()


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).resolve().parents[2] / "devtools"
                                                  / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_marker_records_pair_into_nvtx_ranges_on_the_host_clock():
    """MARKER records (ActivityMarker2): START with domain, name and thread, END with only the id, possibly
    in another buffer; instantaneous marks; a range still open at stop; other domains filtered out."""
    fake = FakeCupti(chunk=2)
    timer = CuptiTimer(fake, markers=True, sync=lambda: None)
    timer.start()
    assert int(ActivityKind.MARKER) in fake.enabled
    t0 = __import__("time").perf_counter_ns()
    fake.nvtx_push("tensorlib", "outer")
    fake.nvtx_push("tensorlib", "inner")
    fake.nvtx_pop()
    fake.nvtx_mark("tensorlib", "here")
    fake.nvtx_pop()
    fake.nvtx_push("other", "theirs")
    fake.nvtx_pop()
    fake.nvtx_push("tensorlib", "open")
    timer.stop()
    t1 = __import__("time").perf_counter_ns()
    rs = timer.nvtx_ranges("tensorlib")
    assert [r.name for r in rs] == ["outer", "inner", "here", "open"]
    outer, inner, here, still = rs
    assert outer.start <= inner.start <= inner.end <= here.start == here.end <= outer.end and still.end is None
    assert t0 - 1_000_000 <= outer.start and outer.end <= t1 + 1_000_000          # host clock, not CUPTI's
    assert {r.thread_id for r in rs} == {threading.get_native_id()}
    assert [r.domain for r in timer.nvtx_ranges()].count("other") == 1
    assert int(ActivityKind.MARKER) not in fake.enabled


def test_markers_are_not_collected_unless_asked():
    fake = FakeCupti()
    timer = CuptiTimer(fake, sync=lambda: None).start()
    fake.nvtx_push("tensorlib", "x")
    fake.nvtx_pop()
    timer.stop()
    assert fake.delivered == [] and timer.nvtx_ranges() == []


def test_a_marker_of_a_device_has_no_thread():
    """object_id is a union: on a device marker (object_kind DEVICE) its ``pt`` view reads the device's
    fields, which are no thread id."""
    union = Record(pt=Record(process_id=0, thread_id=123), dcs=Record(device_id=0, context_id=1, stream_id=7))
    common = dict(flags_=2, id=5, domain=None, name="sync", object_id=union, timestamp=10)
    assert pcupti._marker(Record(object_kind=3, **common)) == (2, 5, "", "sync", -1, 10)
    assert pcupti._marker(Record(object_kind=2, **common)) == (2, 5, "", "sync", 123, 10)


def test_gpu_check_judges_every_ops_nvtx_range_and_its_nesting():
    """devtools/gpu_check.py's claim, on the stand-in: profiler.nvtx's hook pushing into CUPTI while a
    forward and backward run; then the same ranges with one lost and with two crossing."""
    from profiler.nvtx import NvtxEmitter, NvtxHook
    gc = _gpu_check()
    fake = FakeCupti()
    timer = CuptiTimer(fake, markers=True, sync=lambda: None).start()
    log = gc.OpLog()
    hook = NvtxHook(emitter=NvtxEmitter(domain=_CuptiNvtxDomain(fake)))
    dispatch.add_hook(log)
    dispatch.add_hook(hook)
    try:
        x = tl.ones(3, requires_grad=True)
        ((x * 2).exp().sum()).backward()
    finally:
        dispatch.remove_hook(hook)
        dispatch.remove_hook(log)
        timer.stop()
    ranges = timer.nvtx_ranges()
    n = len(log.entries)
    assert n >= 5 and any(p >= 0 for _, p, _ in log.entries)           # backward ops nest in their node
    assert gc.judge_nvtx(ranges, log.entries) == (f"{n}/{n} ranges seen, {n} named as their op, "
                                                  f"{n} nested as the ops", gc.PASS)
    assert gc.judge_nvtx(ranges[:-1], log.entries)[1] == gc.FAIL
    child = next(i for i, (_, p, _) in enumerate(log.entries) if p >= 0)
    crossed = list(ranges)
    crossed[child] = crossed[child]._replace(end=ranges[log.entries[child][1]].end + 1)
    assert gc.judge_nvtx(crossed, log.entries)[1] == gc.FAIL
    assert gc.nesting([(0, 10), (2, 5), (5, 9), (10, 12)]) == [-1, 0, 0, -1]
    assert gc.nesting([(0, 10), (2, 11)]) is None and gc.nesting([(0, None)]) is None


def test_route_nvtx_to_cupti_sets_the_injection_path_once(tmp_path, monkeypatch):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 0:1 5 /usr/lib/libc.so.6\n"
                    "7f02-7f03 r-xp 0 0:1 6 /venv/nvidia/cuda_cupti/lib/libcupti.so.13\n")
    monkeypatch.delenv("NVTX_INJECTION64_PATH", raising=False)
    assert pcupti.route_nvtx_to_cupti(str(maps), FakeCupti()) == "/venv/nvidia/cuda_cupti/lib/libcupti.so.13"
    assert os.environ["NVTX_INJECTION64_PATH"] == "/venv/nvidia/cuda_cupti/lib/libcupti.so.13"
    monkeypatch.setenv("NVTX_INJECTION64_PATH", "/mine/libtool.so")
    assert pcupti.route_nvtx_to_cupti(str(maps)) == "/mine/libtool.so"


def test_libcupti_is_loaded_by_a_first_call_when_import_did_not(tmp_path):
    """cupti-python loads libcupti at its first call, not at import."""
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 0:1 5 /usr/lib/libc.so.6\n")
    fake = FakeCupti()
    real_ts = fake.get_timestamp

    def first_call():
        maps.write_text(maps.read_text() + "7f02-7f03 r-xp 0 0:1 6 /x/libcupti.so.13\n")
        return real_ts()
    fake.get_timestamp = first_call
    assert pcupti.libcupti_path(str(maps), fake) == "/x/libcupti.so.13"
    maps.write_text("7f00-7f01 r-xp 0 0:1 5 /usr/lib/libc.so.6\n")
    with pytest.raises(CuptiError, match="libcupti is not loaded"):
        pcupti.libcupti_path(str(maps))


def _trace_self_us(evs):
    """Self time per name (µs) from a trace's CPU lanes, as a trace viewer nests them: an X event's
    duration less its direct children's, cpu_op, user_annotation and cuda_runtime events alike."""
    out = {}
    lanes = {}
    for e in evs:
        if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation", "cuda_runtime"):
            lanes.setdefault((e["pid"], e["tid"]), []).append(e)
    for lane in lanes.values():
        lane.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in lane:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - 1e-9 and e["dur"] > 0:
                stack.pop()
            e["_self"] = e["dur"]
            if stack:
                stack[-1]["_self"] -= e["dur"]
            stack.append(e)
        for e in lane:
            out[e["name"]] = out.get(e["name"], 0.0) + e["_self"]
    return out


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_launch_calls_are_table_rows_and_leave_the_ops_self_cpu(fake_cuda, tmp_path, device):
    """torch's table has a cudaLaunchKernel row per name and an op's Self CPU excludes its launch calls:
    ours agree with the trace, where the cuda_runtime calls nest inside their ops."""
    fake_cuda.on_pop = _plan([1000, 2000])
    with profile(cuda_timing="cupti") as prof:
        with record_function("block"):
            a = tl.ones(64, device=device)
            b = (a + 1) * 2
            b.sum()
    launches = len(fake_cuda.launches)
    assert launches >= 4
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["cudaLaunchKernel"].count == launches
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    evs = json.loads(path.read_text())["traceEvents"]
    calls = [e for e in evs if e.get("cat") == "cuda_runtime"]
    assert len(calls) == launches                                  # written once, by the CUPTI writer
    assert not [e for e in evs if e.get("cat") == "user_annotation" and e["name"] == "cudaLaunchKernel"]
    trace_self = _trace_self_us(evs)
    assert set(trace_self) == set(rows)
    for name, r in rows.items():
        assert r.self_cpu_time_total == pytest.approx(trace_self[name], abs=0.002 * r.count + 0.002), name
    add = rows["aten::add"]
    assert add.self_cpu_time_total < add.cpu_time_total             # the call's time is not the op's own
    assert sum(r.self_cpu_time_total for r in rows.values()) == pytest.approx(rows["block"].cpu_time_total, abs=0.01)


def test_a_second_profile_after_another_cupti_client_still_gets_records(fake_cuda):
    """CUPTI has one pair of buffer callbacks per process: torch.profiler's Kineto registering its own between
    two of our profiles took every record of the second (seen on an H200). Ours register again at each start,
    and a profile whose CUDA ops got no records at all says so."""
    fake_cuda.on_pop = _plan([1000])
    for _ in range(2):
        with profile(cuda_timing="cupti") as prof:
            tl.ones(4) + 1
        assert sum(1 for r in prof.store.gpu_records if r[0] == "kernel") == 2
        fake_cuda.callbacks = (lambda: (1024, 0), lambda activities: None)   # Kineto's, say
    real = fake_cuda.activity_register_callbacks
    fake_cuda.activity_register_callbacks = lambda *a: None                # this time ours do not take
    try:
        with pytest.warns(RuntimeWarning, match=r"CUPTI delivered no records for the 2 CUDA ops recorded: another "
                                                 r"CUPTI client in this process \(torch.profiler, Nsight\)"):
            with profile(cuda_timing="cupti") as prof:
                tl.ones(4) + 1
    finally:
        fake_cuda.activity_register_callbacks = real
    assert not prof.store.gpu_records
