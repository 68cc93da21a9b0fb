"""torch.cuda.memory's snapshot API on tensorlib's allocator: _record_memory_history (torch's arguments and its
legacy boolean form), _snapshot's segments, blocks and trace (sizes, states, the Python frames of the test's
own lines), the trace's ring buffer, recording off, _dump_snapshot and memory_snapshot; without CUDA, the
"CUDA is not available" error. Run on the fake CuPy by `make test` and on a GPU by `make test-gpu`;
devtools/torch_compat/test_memory_viz_against_torch.py feeds the dump to torch.cuda._memory_viz."""
from __future__ import annotations

import gc
import inspect
import pickle
import sys

import pytest

import tensorlib as tl
from tensorlib.cuda import memory as M


def _line():
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


@pytest.fixture
def recording():
    """Recording on (fresh: its trace cleared), and off again after the test."""
    tl.cuda.init()
    M._record_memory_history(None)
    gc.collect()
    M._record_memory_history()
    yield
    M._record_memory_history(None)


def _block(snapshot, addr):
    for seg in snapshot["segments"]:
        for b in seg["blocks"]:
            if b["address"] == addr:
                return seg, b
    return None, None


def _entries(snapshot, addr):
    return [(e["action"], e["size"]) for e in snapshot["device_traces"][tl.cuda.current_device()] if e["addr"] == addr]


def _consistent(snapshot):
    """Each segment's blocks tile it, in address order, and its sizes add up (torch's _memory_viz.segsum
    checks the same)."""
    for seg in snapshot["segments"]:
        at = seg["address"]
        for b in seg["blocks"]:
            assert b["address"] == at and b["size"] > 0
            at += b["size"]
        assert at == seg["address"] + seg["total_size"]
        active = [b for b in seg["blocks"] if b["state"] == "active_allocated"]
        assert seg["allocated_size"] == sum(b["size"] for b in active)
        assert seg["requested_size"] == sum(b["requested_size"] for b in active)
        assert seg["segment_type"] in ("small", "large") and seg["device"] == tl.cuda.current_device()


@pytest.mark.cuda
def test_snapshot_has_the_block_its_frames_and_its_trace(recording):
    a = tl.zeros(1000, device="cuda"); line = _line()      # noqa: E702 - the frame's line is this one
    s = M._snapshot()
    _consistent(s)
    seg, b = _block(s, a.data_ptr())
    assert b["state"] == "active_allocated" and b["size"] == 4096 and b["requested_size"] == 4000
    assert seg["address"] <= b["address"] < seg["address"] + seg["total_size"]
    assert {"filename": __file__, "line": line, "name": "test_snapshot_has_the_block_its_frames_and_its_trace"} \
        in b["frames"]
    assert b["frames"][0]["filename"] != M.__file__         # innermost first, the allocator's own left out
    assert ("alloc", 4096) in _entries(s, a.data_ptr())
    alloc = [e for e in s["device_traces"][tl.cuda.current_device()] if e["action"] == "alloc"][-1]
    assert set(alloc) == {"action", "addr", "size", "stream", "time_us", "frames"}
    assert any(f["filename"] == __file__ and f["line"] == line for f in alloc["frames"])

    addr = a.data_ptr()
    del a; line = _line()                                   # noqa: E702
    gc.collect()
    s = M._snapshot()
    _consistent(s)
    assert _entries(s, addr)[-3:] == [("alloc", 4096), ("free_requested", 4096), ("free_completed", 4096)]
    free = [e for e in s["device_traces"][tl.cuda.current_device()] if e["action"] == "free_requested"][-1]
    assert any(f["filename"] == __file__ and f["line"] == line for f in free["frames"])   # context="all"
    seg, b = _block(s, addr)
    assert b is None or b["state"] == "inactive"


@pytest.mark.cuda
def test_a_new_segment_is_recorded_and_given_back_by_empty_cache(recording):
    tl.cuda.empty_cache()
    n = (3 << 20) + 1000                                    # 3 MiB and some: no cached block serves it
    a = tl.empty(n, dtype=tl.uint8, device="cuda")
    addr = a.data_ptr()
    s = M._snapshot()
    seg, b = _block(s, addr)
    rounded = (n + 511) // 512 * 512
    assert seg["address"] == addr and seg["total_size"] == rounded and seg["segment_type"] == "large"
    assert _entries(s, addr) == [("segment_alloc", rounded), ("alloc", rounded)]
    del a, b
    gc.collect()
    tl.cuda.empty_cache()
    s = M._snapshot()
    assert _entries(s, addr)[-3:] == [("free_requested", rounded), ("free_completed", rounded),
                                      ("segment_free", rounded)]
    assert all(seg["address"] != addr for seg in s["segments"])
    assert tl.cuda.memory_snapshot() == s["segments"] and "memory_snapshot" in tl.cuda.__all__


@pytest.mark.cuda
def test_memory_cached_before_recording_is_a_segment_over_its_blocks():
    tl.cuda.init()
    M._record_memory_history(None)
    tl.cuda.empty_cache()
    x = tl.empty(1 << 16, dtype=tl.uint8, device="cuda")   # a segment the history never sees allocated
    keep = tl.empty(512, dtype=tl.uint8, device="cuda")
    del x
    gc.collect()
    M._record_memory_history()
    try:
        a = tl.empty(4096, dtype=tl.uint8, device="cuda")   # from the cached block: the pool does not grow
        b = tl.empty(8192, dtype=tl.uint8, device="cuda")
        s = M._snapshot()
        _consistent(s)
        assert _block(s, a.data_ptr())[1]["size"] == 4096 and _block(s, b.data_ptr())[1]["size"] == 8192
        assert not any(e["action"] == "segment_alloc" for e in s["device_traces"][tl.cuda.current_device()])
        del keep
    finally:
        M._record_memory_history(None)


@pytest.mark.cuda
def test_max_entries_keeps_the_newest_entries():
    tl.cuda.init()
    M._record_memory_history(None)
    M._record_memory_history(max_entries=3)
    try:
        xs = [tl.zeros(10 * (i + 1), device="cuda") for i in range(6)]
        trace = M._snapshot()["device_traces"][tl.cuda.current_device()]
        assert len(trace) == 3 and trace[-1] == {**trace[-1], "action": "alloc", "addr": xs[-1].data_ptr()}
        M._record_memory_history(max_entries=1)             # a new size keeps the newest
        assert M._snapshot()["device_traces"][tl.cuda.current_device()] == trace[-1:]
        M._record_memory_history(clear_history=True)
        assert M._snapshot()["device_traces"][tl.cuda.current_device()] == []
    finally:
        M._record_memory_history(None)


@pytest.mark.cuda
def test_off_records_nothing_and_state_records_no_trace():
    tl.cuda.init()
    M._record_memory_history(None)
    assert M._tracker.history is None                       # the allocator's one check
    a = tl.zeros(100, device="cuda")
    s = M._snapshot()
    assert s["segments"] == [] and all(t == [] for t in s["device_traces"])
    assert len(s["device_traces"]) == tl.cuda.device_count()
    assert set(s["allocator_settings"]) >= {"expandable_segments", "max_split_size"}
    M._record_memory_history("state")
    try:
        b = tl.zeros(100, device="cuda"); line = _line()    # noqa: E702
        s = M._snapshot()
        assert all(t == [] for t in s["device_traces"])
        _, blk = _block(s, b.data_ptr())
        assert any(f["filename"] == __file__ and f["line"] == line for f in blk["frames"])
        assert _block(s, a.data_ptr())[1] is None           # allocated before recording: not known
        M._record_memory_history(context=None)
        c = tl.zeros(100, device="cuda")
        s = M._snapshot()
        assert _block(s, c.data_ptr())[1]["frames"] == []
        assert [e["frames"] for e in s["device_traces"][tl.cuda.current_device()]] == [[]]
    finally:
        M._record_memory_history(None)


@pytest.mark.cuda
def test_legacy_boolean_form_and_skip_actions():
    tl.cuda.init()
    M._record_memory_history(None)
    M._record_memory_history(True, trace_alloc_max_entries=10, trace_alloc_record_context=True)
    try:
        a = tl.zeros(100, device="cuda"); line = _line()    # noqa: E702
        del a
        gc.collect()
        trace = M._snapshot()["device_traces"][tl.cuda.current_device()]
        assert [e["action"] for e in trace][-3:] == ["alloc", "free_requested", "free_completed"]
        assert any(f["line"] == line for f in trace[-3]["frames"]) and trace[-2]["frames"] == []  # context "alloc"
        M._record_memory_history(False)
        assert M._tracker.history is None
        M._record_memory_history(skip_actions=["free_requested", "free_completed"])
        a = tl.zeros(100, device="cuda")
        del a
        gc.collect()
        assert [e["action"] for e in M._snapshot()["device_traces"][tl.cuda.current_device()]] == ["alloc"]
    finally:
        M._record_memory_history(None)


@pytest.mark.cuda
def test_record_stream_shows_the_block_awaiting_its_free(recording):
    side = tl.cuda.Stream()
    x = tl.ones(1000, device="cuda")
    addr = x.data_ptr()
    x.record_stream(side)
    del x
    gc.collect()
    s = M._snapshot()
    _, b = _block(s, addr)
    if b is not None:                                       # a fake or idle stream may be done already
        assert b["state"] in ("active_awaiting_free", "inactive")
    tl.cuda.synchronize()
    s = M._snapshot()
    assert _entries(s, addr)[-2:] == [("free_requested", 4096), ("free_completed", 4096)]
    _, b = _block(s, addr)
    assert b is None or b["state"] == "inactive"


@pytest.mark.cuda
def test_dump_snapshot_pickles_the_snapshot(recording, tmp_path):
    a = tl.zeros(10, device="cuda")
    path = tmp_path / "snap.pickle"
    M._dump_snapshot(str(path))
    with open(path, "rb") as f:
        s = pickle.load(f)
    assert set(s) == {"segments", "device_traces", "allocator_settings"}
    assert _block(s, a.data_ptr())[1]["state"] == "active_allocated"


@pytest.mark.cuda
def test_memory_viz_plots_embed_the_snapshot(recording):
    import base64
    import json
    a = tl.zeros(10, device="cuda")
    b = tl.zeros(20, device="cuda")
    del b
    gc.collect()
    s = M._snapshot()
    for html, kind in ((tl.cuda._memory_viz.trace_plot(s), "'Active Memory Timeline'"),
                       (tl.cuda._memory_viz.segment_plot(s), "'Allocator State History'")):
        assert f"add_local_files(local_files, {kind})" in html
        files = json.loads(html.split("const local_files = ")[1].split("\n")[0])
        assert pickle.loads(base64.b64decode(files[0]["base64"])) == s
    html = tl.cuda._memory_viz.trace_plot(s, filter_freed=True)
    files = json.loads(html.split("const local_files = ")[1].split("\n")[0])
    kept = pickle.loads(base64.b64decode(files[0]["base64"]))["device_traces"][tl.cuda.current_device()]
    assert [e["addr"] for e in kept if e["action"] == "alloc"] == [a.data_ptr()]    # b's alloc/free pair left out
    assert not any(e["action"].startswith("free") for e in kept)


@pytest.mark.cuda
@pytest.mark.parametrize("kwargs, match", [
    ({"stacks": "cpp"}, "'cpp'"), ({"enabled": "yes"}, "'yes'"), ({"context": "free"}, "'free'"),
    ({"max_entries": -1}, "-1"), ({"skip_actions": ["malloc"]}, "'malloc'")])
def test_values_not_supported_are_refused_by_name(kwargs, match):
    tl.cuda.init()
    with pytest.raises(ValueError, match=match):
        M._record_memory_history(**kwargs)
    with pytest.raises(NotImplementedError, match="compile_context=True"):
        M._record_memory_history(compile_context=True)
    with pytest.raises(NotImplementedError, match="augment_with_fx_traces"):
        M._snapshot(augment_with_fx_traces=True)
    assert M._tracker.history is None


def test_signature_is_torchs():
    assert list(inspect.signature(M._record_memory_history).parameters) == [
        "enabled", "context", "stacks", "max_entries", "device", "clear_history", "compile_context",
        "global_record_annotations", "skip_actions"]
    assert inspect.signature(M._record_memory_history).parameters["max_entries"].default == sys.maxsize


def test_without_cuda_the_snapshot_api_raises():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here")
    for fn in (M._record_memory_history, M._snapshot, M._dump_snapshot, tl.cuda.memory_snapshot):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            fn()
