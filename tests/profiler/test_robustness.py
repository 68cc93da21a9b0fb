"""Exceptions and KeyboardInterrupt keep what was recorded; one profiler at a time; max_events."""
from __future__ import annotations

import threading
import warnings

import pytest

import tensorlib as tl
from tensorlib import dispatch
from profiler import profile, record_function


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_exception_in_block_stops_and_keeps_events(tmp_path, exc):
    hooks = dispatch.hooks()
    with pytest.raises(exc):
        with profile() as prof:
            with record_function("work"):
                tl.ones(3) + 1
                raise exc()
    assert dispatch.hooks() == hooks
    assert [e.name for e in prof.events()] == ["work", "aten::ones", "aten::empty", "aten::fill_", "aten::add"]
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    assert (tmp_path / "t.json").stat().st_size > 0
    with profile():           # the next profiler may start
        pass


def test_exception_inside_an_op_still_records_the_op():
    with pytest.raises(RuntimeError):
        with profile() as prof:
            tl.ones(2, 3) @ tl.ones(2, 3)
    assert [e.name for e in prof.events()][-1] == "aten::matmul"


def test_second_concurrent_profile_is_refused():
    with profile() as p1:
        with pytest.raises(RuntimeError, match="already running"):
            with profile():
                pass
        tl.ones(1)
    assert [e.name for e in p1.events()] == ["aten::ones", "aten::empty", "aten::fill_"]
    started = threading.Event()
    release = threading.Event()
    errors = []

    def other():
        started.wait()
        try:
            profile().start()
        except RuntimeError as e:
            errors.append(str(e))
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with profile():
        started.set()
        release.wait(10)
    t.join()
    assert errors and "already running" in errors[0]


def test_max_events_stops_recording_with_one_warning():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t = tl.ones(2)
        with profile(max_events=50) as prof:
            for _ in range(101):
                t = t + 1
    msgs = [str(x.message) for x in w if "max_events" in str(x.message)]
    assert len(msgs) == 1
    assert "max_events=50" in msgs[0] and "51 later events were dropped" in msgs[0]   # 101 adds
    assert len(prof.events()) == 50
    assert prof.dropped_events == 51
    with pytest.raises(ValueError, match="max_events"):
        profile(max_events=0)


@pytest.mark.parametrize("lists", [True, False])
def test_max_events_bounds_memory_while_running(lists, monkeypatch):
    """A forgotten profiler stops growing while it runs (not only at stop()). Lists (the Python twins): the
    dispatcher appends without a length check, so the recorder's watchdog must notice the limit and switch the
    sink to counting. A C Records buffer bounds itself: it never holds more than max_events, counting the rest,
    and no watchdog wakes the recording thread."""
    import time
    from profiler import recorder
    if lists:
        monkeypatch.setattr(recorder, "_RECORDS", None)
    native = recorder._bounded_buffers()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        t = tl.ones(2)
        with profile(max_events=200) as prof:
            rec = prof._recorder
            n = 0
            if native:
                assert recorder._WATCHDOG._rec is None          # (not watching this recorder)
                for _ in range(300):
                    t = t + 1
                n = 300
            else:
                deadline = time.monotonic() + 10
                while rec._counting is None and time.monotonic() < deadline:
                    t = t + 1
                    n += 1
                assert rec._counting is not None, "the watchdog never switched the sink to counting"
            held = rec.total_records()
            assert held == 200 if native else held >= 200
            for _ in range(5000):
                t = t + 1
            n += 5000
            assert rec.total_records() == held          # nothing more kept after the switch
    assert len(prof.events()) == 200
    assert prof.dropped_events == n - 200               # every op past the limit is counted, none twice


def test_step_on_stopped_profiler_is_a_clear_error():
    prof = profile()
    with pytest.raises(RuntimeError, match="not running"):
        prof.step()


def test_ranges_left_open_after_stop_are_ignored():
    tok = None
    prof = profile().start()
    tok = dispatch.range_enter("straddles", "user")
    tl.ones(1)
    prof.stop()
    dispatch.range_exit(tok)
    assert [e.name for e in prof.events()] == ["aten::ones", "aten::empty", "aten::fill_"]


def _run_until_frozen(prof, first, deadline_s=10.0):
    """Record adds (on `first`) until the watchdog has moved a chunk of records out of this thread's list."""
    import time
    rec = prof._recorder
    t, n = first, 0
    deadline = time.monotonic() + deadline_s
    while not any(rec._chunks.values()) and time.monotonic() < deadline:
        for _ in range(1000):
            t = t + 1
        n += 1000
    assert any(rec._chunks.values()), "the watchdog never froze a chunk of records"
    return n


@pytest.mark.parametrize("kw", [{}, {"record_shapes": True, "profile_memory": True}])
def test_the_watchdog_moves_old_records_out_of_the_gcs_way(kw, monkeypatch):
    """Past recorder.CHUNK records a thread's older records move into tuples that the cyclic GC untracks, so a
    full collection no longer walks every record kept (a million records added 22 ms to each, 84 more for their
    memory records, which are packed bytes now); the events, their order, a nested profile's share and the memory
    records are unchanged."""
    import gc
    from profiler import recorder
    monkeypatch.setattr(recorder, "_RECORDS", None)     # (lists: the C recorders' buffers are never frozen)
    with profile(**kw) as prof:
        prof.hosts_nested = True            # as `python -m profiler run`'s: a script's profile() nests in it
        tl.ones(2) * 3
        with profile() as inner:            # a nested profile reads its share of the host's records
            n = _run_until_frozen(prof, tl.ones(2))
        rec = prof._recorder
        chunks = [c for cs in rec._chunks.values() for c in cs]
        gc.collect()        # the newest records are untracked in this pass; a chunk that held them, in the next
        gc.collect()
        assert chunks and not any(gc.is_tracked(c) for c in chunks)
        assert sum(map(len, chunks)) >= recorder.CHUNK
        assert rec.total_records() == sum(rec.counts()) >= n
        if kw:      # memory records are packed bytes from the start (12 int64 per add): nothing for the GC
            mem = prof._memory
            assert type(mem.records) is bytearray and not gc.is_tracked(mem.records)
            assert len(mem.fields()) >= 2 * n
        tl.ones(2) * 4
    names = [e.name for e in prof.events()]
    ones = ["aten::ones", "aten::empty", "aten::fill_"]        # (torch's ones: an empty, then its fill)
    assert names[:4] == ones + ["aten::mul"] and names[-4:] == ones + ["aten::mul"]
    assert names[4:-4] == ones + ["aten::add"] * n
    starts = [e.time_range.start for e in prof.events()]
    assert starts == sorted(starts)
    inner_names = [e.name for e in inner.events()]
    assert inner_names == ones + ["aten::add"] * n
    if kw:      # one new array per op, freed later: every allocation has its record, in time order
        mem = prof._memory.array()
        assert (mem["bytes"] > 0).sum() >= n and (mem["t"][1:] >= mem["t"][:-1]).all()


@pytest.mark.parametrize("lists", [True, False])
def test_max_events_cuts_across_frozen_chunks(lists, monkeypatch):
    """The limit counts a thread's frozen records too: the snapshot keeps the first max_events, in order; a C
    record buffer (recorder._RECORDS, never frozen) is cut alike."""
    import warnings as w
    from profiler import recorder
    if lists:
        monkeypatch.setattr(recorder, "_RECORDS", None)
    limit = recorder.CHUNK + 100
    with w.catch_warnings(record=True):
        w.simplefilter("always")
        with profile(max_events=limit) as prof:
            rec = prof._recorder
            t = tl.ones(2)
            for _ in range(recorder.CHUNK + 10):
                t = t + 1
            rec.freeze()
            assert any(rec._chunks.values()) == (lists or recorder._RECORDS is None or recorder.crecord is None)
            for _ in range(500):
                t = t + 1
    names = [e.name for e in prof.events()]
    assert len(names) == limit and names[:3] == ["aten::ones", "aten::empty", "aten::fill_"]
    assert set(names[3:]) == {"aten::add"}
    assert prof.dropped_events == (recorder.CHUNK + 10 + 500 + 3) - limit


def test_c_record_buffers_hold_no_python_records():
    """With the C recorders a thread's buffer is tensorlib._crecorded.Records: records pushed from C are kept without
    tuples (none for the GC to count or walk), the buffer itself untracked; reading it gives the tuples a list
    would hold (the Python twins' lists: test_native_recording compares their events), Python appends included."""
    import gc
    from profiler import recorder
    if recorder._RECORDS is None or recorder.crecord is None:
        pytest.skip("the C recorders are off (TENSORLIB_NATIVE=0, or not Linux): buffers are lists")
    x = tl.ones(3, requires_grad=True)
    with profile(record_shapes=True) as prof:
        (x * 2).sum().backward()
        with record_function("mine"):
            pass
        bufs = [b for _, _, b in prof._recorder.buffers]
        assert bufs and all(type(b) is recorder._RECORDS and not gc.is_tracked(b) for b in bufs)
        recs = list(bufs[0])
        assert recs == bufs[0][:] == [bufs[0][i] for i in range(len(bufs[0]))] and len(recs) == len(bufs[0])
        assert all(type(r) is tuple and len(r) in (5, 6) and type(r[-1]) is int for r in recs)
        assert bufs[0][-1] == recs[-1] and bufs[0][1:3] == recs[1:3]
        with pytest.raises(IndexError):
            bufs[0][len(recs)]
    names = [e.name for e in prof.events()]
    assert "aten::mul" in names and "mine" in names


def test_c_record_buffer_across_its_blocks():
    """A Records buffer keeps its entries in fixed blocks (never moved as it grows; a dead buffer's blocks reused by
    the next): indexing, negative indices and slices with steps read across block boundaries as a list's would,
    in a buffer made after another's blocks were freed too."""
    from profiler import recorder
    if recorder._RECORDS is None:
        pytest.skip("the C recorders are off (TENSORLIB_NATIVE=0, or not Linux): buffers are lists")
    for n in (10000, 4096, 4097):
        objs = [("rec", i) for i in range(n)]
        buf = recorder._RECORDS()
        for o in objs:
            buf.append(o)
        assert len(buf) == n and list(buf) == objs
        assert buf[4095] == objs[4095] and buf[-1] == objs[-1] and buf[-n] == objs[0]
        assert buf[4000:4200] == objs[4000:4200] and buf[::-7] == objs[::-7] and buf[n:] == []
        with pytest.raises(IndexError):
            buf[n]
        del buf


def test_c_records_keep_int_fields_inline_and_read_them_back(monkeypatch):
    """A Records buffer keeps a record's int fields (sequence numbers, -1, extra ids) in their slots, not as
    references (the op sink's sequence number is freed after its op); reading gives the same ints, across the
    inline range's end (2**61) too, where they are kept as references."""
    import itertools
    from profiler import recorder
    from tensorlib import dispatch
    if recorder._RECORDS is None or recorder.crecord is None:
        pytest.skip("the C recorders are off (TENSORLIB_NATIVE=0, or not Linux): buffers are lists")
    start = 2 ** 61 - 3
    monkeypatch.setattr(dispatch, "seq_counter", itertools.count(start))
    x = tl.ones(2)
    with profile() as prof:
        for _ in range(6):
            x = x + 1
    monkeypatch.undo()
    dispatch.refresh_hooks()
    recs = [r for _, _, rs in prof._snapshots[-1][0] for r in rs if r[0] in ("add", "aten::add")]
    assert [r[2] for r in recs] == list(range(start, start + 6))
    assert all(type(r[2]) is int and type(r[-1]) is int and r[-2] <= r[-1] for r in recs)
    assert [e.name for e in prof.events()] == ["aten::add"] * 6


def test_c_record_blocks_are_touched_ahead_once():
    """prefault(n) makes spare record blocks (written through, so a profile's first records land on touched pages)
    up to n of them, none where the spares hold n already; a profile's start asks for recorder.PREFAULT_BLOCKS."""
    from profiler import recorder
    from tensorlib import dispatch
    if not recorder._bounded_buffers():
        pytest.skip("the C recorders are off (TENSORLIB_NATIVE=0, or not Linux): buffers are lists")
    pre = dispatch._crecorded.prefault
    assert 0 <= pre(3) <= 3 and pre(3) == 0 and pre(0) == 0 and pre(-5) == 0
    with profile() as prof:
        made = pre(recorder.PREFAULT_BLOCKS)       # (none: the profile's start made them, no record taken one yet)
        tl.ones(2) + 1
    assert made == 0 and [e.name for e in prof.events()][-1] == "aten::add"
