"""The recording paths in C (tensorlib/_crecorded.c, profiler/_crecord.c; tensorlib/_native.py) write what their
Python twins write: the same events, tree, sequence numbers, Input Dims/types and memory records, for every
option set, on training steps of several kinds (tests/profiler/test_same_tree_any_options.py's), and in the
corner cases (an op that raises, threads, a forked child, the max_events bound)."""
import gc
import os
import sys
import threading

import numpy as np
import pytest

import profiler
import tensorlib as tl
from profiler import memory_record, recorder
from tensorlib import _native, _state, dispatch

from .test_same_tree_any_options import _detailed, _step

OPTIONS = [{}, {"record_shapes": True}, {"profile_memory": True}, {"record_shapes": True, "profile_memory": True},
           {"profile_memory": True, "with_stack": True}, {"record_shapes": True, "with_flops": True}]
NATIVE = dispatch._crecorded is not None and recorder.crecord is not None


def _python_only(monkeypatch):
    """Record through the Python twins from here on (as TENSORLIB_NATIVE=0 does at import)."""
    monkeypatch.setattr(recorder, "crecord", None)
    monkeypatch.setattr(memory_record, "crecord", None)
    monkeypatch.setattr(dispatch, "_crecorded", None)
    dispatch.refresh_hooks()


def test_the_native_recorders_are_built_and_used_on_linux():
    """`pip install` builds both modules on Linux (setup.py); a silent build failure would leave every profile on
    the slower Python path, so it fails here (TENSORLIB_NATIVE=0 turns them off on purpose)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the C recorders are built on Linux only (setup.py)")
    if os.environ.get("TENSORLIB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        assert not NATIVE and _native.status()["tensorlib._crecorded"].startswith("off")
        return
    assert _native.status() == {"tensorlib._crecorded": "on", "tensorlib._cexecute": "on", "profiler._crecord": "on",
                                "tensorlib.autograd._cengine": "on", "tensorlib._cmath": "on",
                                "tensorlib._cstate": "on"}
    assert NATIVE
    assert type(vars(type(_state.STATE))["phase"]).__name__ == "Field"     # STATE's phase and seq in C
    with profiler.profile(record_shapes=True, profile_memory=True) as prof:
        assert type(prof._recorder.native).__name__ == "OpHooks"
        assert dispatch._rec_run is not None and dispatch._rec_run.__name__ == "pair"
        assert dispatch.run_recorded.target is dispatch._rec_run.__self__    # the sink formulas' ops in C too
        tl.ones(3) + 1
    with profiler.profile():
        assert dispatch._rec_run.__name__ == "sink"
        assert dispatch.run_recorded.target is dispatch._rec_run.__self__
    assert dispatch._rec_run is None and dispatch.run_recorded.target is None


def test_run_recorded_falls_back_to_its_python_twin(monkeypatch):
    """With the C recorders off (as TENSORLIB_NATIVE=0 at import), dispatch.run_recorded, imported by name by the
    op modules, runs the Python function; and it records what that function records when they are on."""
    if not NATIVE:
        pytest.skip("the C recorders are off (TENSORLIB_NATIVE=0, or not Linux): run_recorded is the Python function")
    from tensorlib.ops.arithmetic import ADD

    def run(python):
        a, b = np.arange(4.0), np.ones(4)
        with profiler.profile() as prof:
            if python:
                assert dispatch.run_recorded.target is None
            out = dispatch.run_recorded(ADD, a, b, alpha=2)
            with pytest.raises(TypeError):
                dispatch.run_recorded(ADD, a, b, no_such_attr=1)
        np.testing.assert_array_equal(out, a + 2 * b)
        return [e.name for e in prof.events()]
    native = run(False)
    _python_only(monkeypatch)
    assert native == run(True) == ["aten::add", "aten::add"]


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_run_as_records_what_run_recorded_does(monkeypatch):
    """run_recorded.run_as(op, fn, *arrays): fn's call standing for op's kernel where the op sink alone records (a
    default profile), run_recorded itself otherwise (an op_arrays hook's detailed profile, nothing recording, the
    Python twin): the same values and records as run_recorded's in each case, Input Shapes and memory included."""
    from tensorlib.ops.arithmetic import DIV, MUL
    a, b = np.arange(1.0, 5.0), np.full(4, 2.0)
    called = []

    def mul(x, y):
        called.append(1)
        return np.multiply(x, y)

    def run(options, python=False):
        called.clear()
        with profiler.profile(**options) as prof:
            if python:
                assert dispatch.run_recorded.target is None
            outs = [dispatch.run_recorded.run_as(MUL, mul, a, b), dispatch.run_recorded.run_as(DIV, np.true_divide,
                                                                                                a, 4.0),
                    dispatch.run_recorded.run_as(MUL, mul, a[:1].reshape(()), b[:1].reshape(()))]     # (a scalar)
            with pytest.raises(TypeError):
                dispatch.run_recorded.run_as(MUL)
        np.testing.assert_array_equal(outs[0], a * b)
        np.testing.assert_array_equal(outs[1], a / 4.0)
        assert outs[2] == 2.0 and type(outs[2]) is (np.ndarray if options.get("profile_memory") else np.float64)
        shapes = [(e.input_shapes, e.cpu_memory_usage) for e in prof.events()] if options else None
        return [e.name for e in prof.events()], shapes, len(called)
    assert run({}) == (["aten::mul", "aten::div", "aten::mul"], None, 2)      # (fn itself ran)
    detailed = run({"record_shapes": True, "profile_memory": True})
    assert detailed == (["aten::mul", "aten::div", "aten::mul"],                # (the hook ran the kernel)
                        [([[4], [4]], 32), ([[4], []], 32), ([[], []], 8)], 0)
    assert run({"record_shapes": True})[1:] == ([([[4], [4]], 0), ([[4], []], 0), ([[], []], 0)], 0)
    np.testing.assert_array_equal(dispatch.run_recorded.run_as(MUL, mul, a, b), a * b)     # nothing records
    _python_only(monkeypatch)
    assert run({}, python=True)[:2] == (["aten::mul", "aten::div", "aten::mul"], None)
    assert run({"record_shapes": True, "profile_memory": True}, python=True)[:2] == detailed[:2]


def _records(kind, options, tmp_path, name):
    step = _step(kind)
    step(False)         # Adam's state exists: the profiled steps run the same ops
    gc.collect()        # the live bytes a profile_memory profile starts from: not an earlier test's garbage
    with profiler.profile(**options) as prof:
        step(True)
        with profiler.record_function("user range"):
            step(False)
    rows, mem = _detailed(prof, tmp_path / f"{name}.json")
    if options.get("with_stack"):       # each event's user frames (the stack key is taken in C: frames_key)
        evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
        # (the workload's frames: the caller's differ in line between the two runs)
        rows = [(*r, tuple(f for f in e.stack if "test_same_tree_any_options" in f)) for r, e in zip(rows, evs)]
        assert any(r[-1] for r in rows)
    return rows, mem, [(n, k) for k, n in sorted(_count(prof).items())]


def _count(prof):
    out: dict = {}
    for e in prof.events():
        out[e.name] = out.get(e.name, 0) + 1
    return out


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see test above)")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o) or "default")
@pytest.mark.parametrize("kind", ["mlp", "transformer", "gru", "cells", "conv", "policy"])
def test_the_c_recorders_record_what_the_python_ones_do(kind, options, monkeypatch, tmp_path):
    native = _records(kind, options, tmp_path, "c")
    _python_only(monkeypatch)
    python = _records(kind, options, tmp_path, "py")
    assert native[2] == python[2]          # the same events, by name and count
    assert native[0] == python[0]          # ... in the same tree, with the same sequence numbers, shapes, memory
    assert native[1] == python[1]          # the [memory] records: bytes and running totals, in order
    if options.get("record_shapes"):
        assert any(r[3] for r in native[0])
    if options.get("profile_memory"):
        assert native[1] and sum(b for b, _ in native[1]) <= sum(abs(b) for b, _ in native[1])


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
@pytest.mark.parametrize("options", OPTIONS[:4], ids=lambda o: "+".join(o) or "default")
def test_an_op_that_raises_is_recorded_and_its_error_kept(options, monkeypatch):
    def run():
        a, b = tl.ones(2, 3), tl.ones(4, 5)
        with profiler.profile(**options) as prof:
            with pytest.raises(RuntimeError, match="size of tensor a"):
                a + b
            with pytest.raises(RuntimeError):
                tl.matmul(a, b)
            c = a * 2
        return [e.name for e in prof.events()], c
    native, c = run()
    assert c.tolist() == [[2.0] * 3] * 2
    _python_only(monkeypatch)
    assert run()[0] == native
    assert native[:2] == ["aten::add", "aten::matmul"]


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
@pytest.mark.parametrize("options", OPTIONS[:2], ids=lambda o: "+".join(o) or "default")
def test_a_composite_region_is_one_c_call_that_records_what_the_python_one_does(options, monkeypatch):
    """tensorlib._hooks.op_region is the recorder's C op_region while it records without stacks: the composite's
    region (its Input Shapes with record_shapes) around what it dispatches, also when the composite raises (the
    region recorded, the error kept); the same events as the Python twins record."""
    from tensorlib import _hooks
    import tensorlib.nn.functional as F
    x, w, b = tl.ones(2, 3), tl.ones(4, 3), tl.ones(4)

    def boom(t):
        t * 2
        raise ValueError("boom")

    def run(native):
        with profiler.profile(**options) as prof:
            assert (type(_hooks.op_region).__name__ == "builtin_function_or_method") is native
            y = F.linear(x, w, b)
            with pytest.raises(ValueError, match="boom"):
                _hooks.op_region("my_composite", (x,), boom, x)
            F.layer_norm(y, (4,))
        assert _hooks.op_region is _hooks._op_region       # (unbound again at the profile's end)
        evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
        return [(e.name, e.input_shapes if options else None, sum(1 for c in evs if c is not e and
                 e.time_range.start <= c.time_range.start and c.time_range.end <= e.time_range.end)) for e in evs], y
    native, y = run(True)
    assert y.tolist() == [[4.0] * 4] * 2
    _python_only(monkeypatch)
    assert run(False)[0] == native
    names = [n for n, _, _ in native]
    assert names[0] == "aten::linear" and names.count("aten::my_composite") == 1
    assert [k for n, _, k in native if n == "aten::my_composite"] == [1]        # its mul inside it
    if options:
        assert [s for n, s, _ in native if n == "aten::linear"] == [[[2, 3], [4, 3], [4]]]


@pytest.mark.parametrize("options", [{}, {"record_shapes": True, "profile_memory": True}, {"with_stack": True}],
                         ids=["default", "detailed", "with_stack"])
def test_a_finished_profile_lets_its_recorder_and_records_go(options):
    """Once a profile has stopped and its object is dropped, its recorder and the records it kept are freed (the
    C region capsule, the last-buffer cache and the registry held references the cyclic GC cannot see or kept
    after the hooks went: each profile's records stayed alive for the life of the process)."""
    import weakref
    refs = []
    for _ in range(2):
        with profiler.profile(**options) as prof:
            (tl.ones(3, requires_grad=True) * 2).sum().backward()
            refs.append(weakref.ref(prof._recorder))
            refs.append(weakref.ref(prof._recorder.tls))
            bufs = [b for _, _, b in prof._recorder.buffers]
        assert prof.events()
        del prof
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    assert bufs and all(sys.getrefcount(b) == 3 for b in bufs)     # (the list's, the loop's and the call's)


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_threads_record_into_their_own_lists_with_their_native_ids():
    out = {}

    def work():
        out["tid"] = threading.get_native_id()
        x = tl.ones(64)
        for _ in range(5):
            x = x * 2
        out["x"] = x

    with profiler.profile(record_shapes=True, profile_memory=True) as prof:
        t = threading.Thread(target=work)
        t.start()
        t.join()
        y = tl.ones(8) + 1
    tids = {e.thread for e in prof.events() if e.name == "aten::mul"}
    assert tids == {out["tid"]} != {threading.get_native_id()}
    assert {e.thread for e in prof.events() if e.name == "aten::add"} == {threading.get_native_id()}
    mem = prof.store.mem_events
    assert set(mem["tid"].tolist()) == {out["tid"], threading.get_native_id()}
    assert out["x"].tolist() == [32.0] * 64 and y.tolist() == [2.0] * 8


@pytest.mark.parametrize("options", [{}, {"record_shapes": True, "profile_memory": True}], ids=["default", "detailed"])
def test_threads_started_one_after_another_record_as_themselves(options):
    """Threads that run one after another (each started once the last ended, as a pool made per step does) often get
    the same thread identifier (pthread's are reused): each one's ops are still recorded into its own buffer, under
    its own native id (the C buffer cache is per thread, not per identifier)."""
    x = tl.ones(3)
    seen = []

    def work():
        seen.append((threading.get_ident(), threading.get_native_id()))
        x + 1

    with profiler.profile(**options) as prof:
        for _ in range(4):      # (a worker records first: the cache's first entry is a worker's)
            t = threading.Thread(target=work)
            t.start()
            t.join()
        x + 1
    workers = {tid for _, tid in seen}
    assert len(workers) == 4
    assert sorted(e.thread for e in prof.events() if e.name == "aten::add") == \
        sorted([threading.get_native_id(), *workers])


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
@pytest.mark.parametrize("opts", [{}, {"record_shapes": True}], ids=["default", "shapes"])
def test_each_profile_keeps_its_own_records_though_buffers_come_and_go(opts):
    """The C recorders find a thread's buffer through the thread's attribute dict of the recorder's local, cached per
    thread (tensorlib/_crecorded.c local_buf): a profile's local dies with it and the next one's is often made at
    the same address, so a stale entry would put a profile's records into a dead one's buffer. Each of many short
    profiles, in this thread and in a thread that profiles twice, keeps exactly its own ops (a backward pass's
    AccumulateGrad regions and region records too)."""
    def session(k):
        x = tl.ones(4, requires_grad=True)
        with profiler.profile(**opts) as prof:
            y = x
            for _ in range(k):
                y = y * 2
            y.sum().backward()
        names = [e.name for e in prof.events()]
        return names.count("aten::mul"), names.count("torch::autograd::AccumulateGrad")

    for k in range(1, 40):
        assert session(k) == (k + k, 1)      # k forward muls, k in the backward nodes
        if k % 7 == 0:
            gc.collect()
    out = []
    t = threading.Thread(target=lambda: out.extend([session(3), session(5)]))
    t.start()
    t.join()
    assert out == [(6, 1), (10, 1)] and session(2) == (4, 1)


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_a_local_made_where_a_dead_one_was_gets_its_own_records():
    """The per-thread cache of a local's attribute dict (tensorlib/_crecorded.c local_buf) is checked against a weak
    reference to its local: a local made at a dead one's address, while the dead one's dict's memory holds another
    dict with a `buf`, still gets its records (a cache that compared addresses would push them into that dict's)."""
    from tensorlib import _execute
    neg = dispatch.op_named("neg")
    x = tl.ones(3)

    def sink_into(tls):
        r = dispatch._crecorded.Recorded(_execute.execute, _state.backward_passes, _state.seq_counter, np,
                                         tls, None, None, None)
        r.sink(neg, (x,), {})

    reused = 0
    for attempt in range(300):
        a = threading.local()
        a.buf = []
        sink_into(a)
        assert len(a.buf) == 1
        addr = id(a)
        del a
        junk = [{"buf": []} for _ in range(20)]     # the dead local's dict's memory, taken by dicts with a `buf`
        b = threading.local()
        b.buf = []
        reused += id(b) == addr
        sink_into(b)
        assert len(b.buf) == 1 and not any(j["buf"] for j in junk), attempt
        del b, junk
    assert reused        # (the case this is about happened)


@pytest.mark.skipif(not NATIVE or not hasattr(os, "fork"), reason="the C recorders are not built here, or no fork")
def test_a_forked_child_stamps_its_own_thread_id():
    from profiler import _crecord
    assert _crecord.native_id() == threading.get_native_id()     # the parent's, now cached
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:        # the child: the cache was forgotten at the fork
        try:
            ok = _crecord.native_id() == threading.get_native_id() != os.getppid()
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"1"


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
@pytest.mark.parametrize("options", OPTIONS[:4], ids=lambda o: "+".join(o) or "default")
def test_the_max_events_bound_counts_what_it_drops(options):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = tl.ones(4)
        with profiler.profile(max_events=50, **options) as prof:
            for _ in range(500):
                x = x + 1
    kept = len(prof.events())
    assert kept <= 50
    assert kept + prof.dropped_events == 500


def _memory_recorder(native):
    """A MemoryRecorder on the C recording (native) or on the Python twin's."""
    from profiler.memory_record import MemoryRecorder
    saved = memory_record.crecord
    if not native:
        memory_record.crecord = None
    try:
        mem = MemoryRecorder()
    finally:
        memory_record.crecord = saved
    assert (mem._native is not None) == native
    return mem


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_memory_records_of_arrays_and_frees_are_the_python_ones():
    """CpuMemory directly: the cases of test_memory_attribution's record_outputs test and record_arrays, then the
    frees as the arrays die."""
    from profiler.memory_record import CPU
    recs = {}
    for native in (True, False):
        mem = _memory_recorder(native)
        mem.start()
        a, b = tl.ones(2, 3), tl.ones(4)
        mem.record_outputs(b, (a, b), 1)
        mem.record_outputs(tl.from_numpy(b.numpy()), (a, b), 2)
        fresh = tl.ones(5)
        mem.record_outputs(fresh, (a, b), 3)
        mem.record_outputs(fresh, (a,), 4)
        mem.record_outputs((fresh, a), (a, 1.0), 5)
        v = np.ones(6)
        mem.record_arrays((v, v[2:], np.float32(1.0)), (a.numpy(),), 6)
        mem.record_arrays(v.reshape(2, 3), (v,), 7)
        mem.record_outputs(a[1:], (a,), 8)
        del fresh, v
        mem.stop()
        arr = mem.array()
        assert set(arr["dev_type"].tolist()) == {CPU}
        recs[native] = (arr["t"].tolist(), arr["bytes"].tolist(), mem.live_count())
    assert recs[True][1] == recs[False][1] == [20, 48, -20, -48]
    assert recs[True][0][:2] == recs[False][0][:2] == [3, 6]
    assert recs[True][2] == recs[False][2] == 0


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_the_c_table_of_counted_arrays_grows_and_forgets_as_the_dict_does():
    """CpuMemory's table of the arrays counted and alive (open addressing keyed by address, backward-shift
    deletion) against the Python twin's dict: thousands of arrays counted (the table grows from 1024 slots several
    times), some counted twice or as views, freed in a shuffled order while recording, then more after stop (no
    free record, still forgotten): the same records, nothing left counted, and the same again once re-filled."""
    recs = {}
    for native in (True, False):
        mem = _memory_recorder(native)
        mem.start()
        arrays = [np.empty(1 + i % 7, np.float32) for i in range(5000)]
        for i, a in enumerate(arrays):
            mem.record_arrays(a, (), i)
            mem.record_arrays(a[1:] if i % 3 else a, (), i)       # counted already: its root is a
        del a
        assert mem.live_count() == 5000
        order = np.random.default_rng(0).permutation(5000)
        for j in order[:4000]:
            arrays[j] = None
        assert mem.live_count() == 1000
        mem.stop()
        arrays = None
        assert mem.live_count() == 0
        mem.start()
        again = [np.empty(3) for _ in range(3000)]
        for i, a in enumerate(again):
            mem.record_arrays(a, (), 10_000 + i)
        del a
        assert mem.live_count() == 3000
        again = None
        mem.stop()
        arr = mem.array()
        recs[native] = arr["bytes"].tolist()
        assert mem.live_count() == 0
    assert recs[True] == recs[False]
    assert sum(b > 0 for b in recs[True]) == 8000 and sum(b < 0 for b in recs[True]) == 7000


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_the_live_tensor_walk_counts_what_the_python_one_does(monkeypatch, tmp_path):
    """tensorlib.memory_allocated("cpu") (a profile_memory profile's starting total) walks the live tensors in C:
    the same bytes, tensors and buffers as the Python loop, views, detached tensors and foreign memory included."""
    from tensorlib import memory
    xs = [tl.ones(10 * (k + 1)) for k in range(20)]
    views = [x[2:] for x in xs[:5]] + [xs[6].view(2, -1), xs[7].t() if xs[7].dim() == 2 else xs[7][::2]]
    det = [x.detach() for x in xs[:3]]
    arr = np.ones(7)
    shared = [tl.from_numpy(arr), tl.from_numpy(arr[1:])]       # a NumPy array's memory, seen once
    mm = np.memmap(tmp_path / "m.bin", dtype=np.float32, mode="w+", shape=(16,))
    mapped = tl.from_numpy(mm)                                   # memory NumPy did not allocate: its own key
    native = memory._walk()
    monkeypatch.setattr(memory, "_native", None)
    assert memory._walk() == native
    assert native[1] >= len(xs) + len(views) + len(det) + len(shared) + 1
    del xs, views, det, shared, mapped


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_free_records_are_sane_under_the_debug_allocator():
    """The weak reference reaches its free callback borrowed, and the callback's pop from `live` frees it: a
    callback that read the reference's address and bytes after the pop wrote whatever the freed memory held.
    CPython's debug allocator fills freed memory with 0xDD, so such a read cannot pass unseen here."""
    import subprocess
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from tests.profiler.test_same_tree_any_options import _step\n"
        "import profiler, numpy as np\n"
        "step = _step('mlp'); step(False)\n"
        "with profiler.profile(profile_memory=True) as prof:\n"
        "    step(True)\n"
        "mem = prof.store.mem_events\n"
        "assert len(mem) and (mem['bytes'] < 0).any(), 'no free records'\n"
        "bad = (np.abs(mem['bytes']) >= 1 << 32) | (mem['addr'] <= 0)\n"
        "assert not bad.any(), mem[bad]\n"
        "print('ok', len(mem))\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONMALLOC": "debug", "PYTHONPATH": root}
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr[-3000:]


def _signatures():
    """Ops whose inputs differ only where a signature key may confuse them: dtype alone, shape order, a
    dimension's count, a number's type, a list argument against a tensor list, tensor lists of other lengths,
    shapes or dtypes, a Parameter, a 0-d tensor, a view, an empty tensor; forward (keys of tensors) and backward
    (cat's and stack's too) under a detailed profile (keys of arrays)."""
    a32, a64 = tl.ones(2, 3), tl.ones(2, 3, dtype=tl.float64)
    b, c = tl.ones(3, 2), tl.ones(6)
    p = tl.nn.Parameter(tl.ones(2, 3))
    z, e = tl.tensor(2.0), tl.ones(0, 3)
    w = tl.ones(3, 3, requires_grad=True)
    a32 + a32, a64 + a64, a32 + a64, b.t() + a32, c.view(2, 3) + a32, c.view((2, 3)) + a32
    a32 + 1, a32 + 1.0, a32 + True, p * a32, a32 * p, z * a32, a32 * z, e + e
    tl.cat([a32, a32]), tl.cat((a32, a32)), tl.cat([a32, b.t()]), a32.sum(0), a32.sum((0, 1)), a32.sum([0, 1])
    tl.stack([c, c, c]), tl.stack([c, c]), tl.stack([a32, a32], 1), tl.cat([a64, a64]), tl.cat([p, a32])
    for h in ([c.view(1, 6)] * 3, [c.view(6, 1)] * 3):     # a recurrent loop's growing list of states
        for k in range(1, 4):
            tl.cat(h[:k], 1 if h[0].shape[0] == 1 else 0)
    a32[:, ::2] + tl.ones(2, 2), a32.int() + a32.int(), a32.reshape(3, 2) @ a32
    (a32 @ w).sum().backward()
    (a64 @ w.double()).sum().backward()
    (b.t() @ w * z).sum().backward()
    tl.cat([a32 @ w, (a32 @ w).exp()]).sum().backward()
    tl.stack([w, w * 2]).sum().backward()


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
def test_the_signature_cache_keeps_every_signature_apart(monkeypatch):
    """profiler/_crecord.c files each op's inputs' key (shapes, dtypes, argument types) as machine words read
    off NumPy's array struct: every event's Input Dims and types are still the Python recorder's, in a first
    round (keys filed) and a second (keys found)."""
    from profiler import _crecord
    assert _crecord.signature_cache()["on"]         # NumPy's array struct read as expected
    _signatures()

    def rows():
        with profiler.profile(record_shapes=True, profile_memory=True) as prof:
            _signatures()
        return [(e.name, e.input_shapes, e.input_dtypes) for e in prof.events()]
    first = rows()
    filed = _crecord.signature_cache()["filed"]
    second = rows()
    assert _crecord.signature_cache()["filed"] == filed and filed > 0     # the second round found every key
    _python_only(monkeypatch)
    python = rows()
    assert first == python and second == python
    assert ("aten::add", [[2, 3], [2, 3]], ["float", "double"]) in python
    assert ("aten::add", [[2, 3], []], ["float", "Scalar"]) in python


def _stacked(x, depth=0):
    """Ops on two lines of one function, reached through other callers and recursion depths (the stack cache's
    keys: per frame its code and instruction)."""
    if depth:
        return _stacked(x, depth - 1)
    y = x + 1
    z = y * 2
    return z


def _stack_workload():
    xs = [tl.ones(3), tl.ones(2, 2), tl.ones(3, dtype=tl.float64)]
    x = xs[0]
    for _ in range(3):          # the second and third rounds find each stack in the cache
        for y in xs:            # one call site, three signatures (record_shapes: an id per signature and stack)
            _stacked(y)
        for d in (1, 2, 3):
            _stacked(x, d)
        x + x                   # the loop's own frame
        (lambda: x - 1)()
        _stacked(x, 110)        # deeper than the cache keys (STACK_DEPTH): Recorder._stack's path


@pytest.mark.skipif(not NATIVE, reason="the C recorders are not built here (see the first test)")
@pytest.mark.parametrize("options", [{"with_stack": True}, {"with_stack": True, "record_shapes": True},
                                     {"with_stack": True, "profile_memory": True}],
                         ids=lambda o: "+".join(o))
def test_the_stack_cache_gives_each_call_site_its_stack(options, monkeypatch):
    """profiler/_crecord.c keys with_stack's stacks by machine words (per frame its code object and instruction) and
    caches each stack's extra id: every event's stack is the Python recorder's, call site by call site, through
    recursion and repeated rounds."""
    def rows():
        with profiler.profile(**options) as prof:
            _stack_workload()
        return [(e.name, tuple(f for f in e.stack if "test_native_recording" in f), e.input_shapes)
                for e in prof.events() if e.name.startswith("aten::")]
    out = []
    for twins in (False, True):         # (rows() called from one line: the stacks' outer frames alike)
        if twins:
            _python_only(monkeypatch)
        out.append(rows())
    native, python = out
    assert native == python
    adds = {r[1] for r in native if r[0] == "aten::add"}
    assert len(adds) >= 5       # _stacked's add at depths 0-3, and the loop's own
    if options.get("record_shapes"):
        assert len({str(r[2]) for r in native if r[0] == "aten::mul"}) >= 2     # one site, several signatures
    body = native[9:]                   # (after the three ones, each an empty and a fill_) three rounds alike
    assert body[:len(body) // 3] * 3 == body
