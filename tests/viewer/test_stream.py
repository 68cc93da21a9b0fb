"""The piecewise decode (viewer/stream.py) reads a file exactly as one decode of it would, wherever the
pieces are cut: cut points inside strings and inside events are refused, epoch-scale timestamps late in
the file turn the whole decode exact, and X events keep no record yet still give theirs on demand."""

import json

import numpy as np
import pytest

from viewer import stream
from viewer.events import Drawn, Event, args_dict
from viewer.model import from_events, load_trace
from viewer.stream import LazyEvents

from .test_fast_path import assert_same, load_both


@pytest.fixture(autouse=True)
def tiny_pieces(monkeypatch):
    monkeypatch.setattr(stream, "CHUNK_BYTES", 48)


def mixed_events(n=60):
    ev = []
    for i in range(n):
        ev.append({"ph": "X", "name": f"op{i % 4}", "cat": "c", "pid": 1, "tid": i % 3, "ts": i, "dur": 3,
                   "args": {"s": '},{"ph":"X"}, {', "objs": [{"a": 1}, {"b": [{"c": 2}]}]}})
        if i % 7 == 0:
            ev.append({"ph": "B", "name": "b", "pid": 1, "ts": i + 0.5})  # no tid: the pid's thread
        if i % 11 == 0:
            ev.append({"ph": "X", "name": "bound", "pid": 1, "tid": 1, "ts": i, "dur": 1, "bind_id": i,
                       "flow_out": True})
            ev.append({"ph": "X", "name": "dest", "pid": 1, "tid": 2, "ts": i + 2, "dur": 1, "bind_id": i,
                       "flow_in": True})
        if i % 13 == 0:
            ev.append({"ph": "X", "name": "bad_ts", "pid": 1, "tid": 1, "ts": "soon", "dur": 1})
            ev.append({"ph": "X", "name": "str_ts", "pid": 1, "tid": 1, "ts": "12.5", "dur": "2"})
    ev.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}})
    return ev


@pytest.mark.parametrize("indent", [None, 1])
def test_pieces_read_as_one_decode(tmp_path, indent):
    fast, slow = load_both(tmp_path, mixed_events(), indent=indent)
    assert isinstance(fast.events, LazyEvents)
    assert_same(fast, slow)
    assert len(fast.flow_src) > 0
    by_name = {fast.name_of(i): i for i in range(len(fast))}
    rec = fast.record(by_name["op1"])  # an X event's record, decoded again from its bytes
    assert rec.name == "op1" and fast.args_of(by_name["op1"])["objs"][1] == {"b": [{"c": 2}]}


def test_epoch_timestamps_late_in_the_file_make_every_piece_exact(tmp_path):
    base = 1.7e15
    ev = [{"ph": "X", "name": f"e{i}", "pid": 1, "tid": 1, "ts": i + 0.001, "dur": 0.0015} for i in range(40)]
    ev += [{"ph": "X", "name": "outer", "pid": 1, "tid": 2, "ts": base + 0.001, "dur": 0.05},
           {"ph": "X", "name": "inner", "pid": 1, "tid": 2, "ts": base + 0.026, "dur": 0.024}]
    fast, slow = load_both(tmp_path, ev)
    assert_same(fast, slow)
    assert fast.events.exact
    inner = [i for i in range(len(fast)) if fast.name_of(i) == "inner"][0]
    assert fast.depth[inner] == 1


def test_a_bad_entry_late_in_the_file_takes_the_slow_path(tmp_path):
    ev = mixed_events(30)
    text = json.dumps({"traceEvents": ev})[:-2] + ', 5, {"ph": "X", "name": "z", "ts": NaN, "pid": 1}]}'
    p = tmp_path / "t.json"
    p.write_text(text)
    t = load_trace(str(p))
    assert not isinstance(t.events, LazyEvents)
    assert any("not objects" in w for w in t.warnings)
    assert len(t) > 30


def test_records_of_every_event_match_the_slow_path(tmp_path):
    fast, slow = load_both(tmp_path, mixed_events(25))
    assert [r.name for r in fast.records()] == [r.name for r in slow.records()]
    assert [r.tid for r in fast.records()] == [r.tid for r in slow.records()]
    np.testing.assert_array_equal(fast.src, slow.src)


def test_kept_records_have_every_field_though_pieces_are_decoded_lean(tmp_path):
    # Pieces of X events only (decoded into the lean Drawn records) between pieces holding events whose
    # records are kept: those must come out whole (every field, args), as the slow path reads them.
    ev = []
    for i in range(120):
        ev.append({"ph": "X", "name": "op", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 2, "tts": i,
                   "args": {"k": i}})
        if i % 17 == 5:
            ev.append({"ph": "i", "name": "mark", "pid": 1, "tid": 1, "ts": 10 * i + 1, "s": "g", "cname": "red",
                       "tts": 7, "args": {"why": i}})
            ev.append({"ph": "C", "name": "mem", "pid": 1, "ts": 10 * i + 1, "args": {"bytes": i}})
        if i % 23 == 3:
            ev.append({"ph": "X", "name": "bound", "pid": 1, "tid": 1, "ts": 10 * i + 3, "dur": 1, "bind_id": i,
                       "flow_out": True, "sf": 4, "args": {"b": i}})
    ev.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}})
    fast, slow = load_both(tmp_path, ev)
    assert_same(fast, slow)
    kept = fast.events.kept  # by file index, as the slow path's records are listed
    assert {rec.ph for rec in kept.values()} == {"i", "C", "X", "M"}
    for i, rec in kept.items():
        want = slow.events[i]
        for f in rec.__struct_fields__:
            if f != "args":
                assert getattr(rec, f) == getattr(want, f), (i, f)
        assert args_dict(rec) == args_dict(want) != {}


@pytest.mark.parametrize("indent", [None, 1])
def test_an_object_led_by_its_events_is_split_while_they_are_decoded(tmp_path, indent):
    # Members after the array that look like more events (objects in a list, "]},{" in a string): cut
    # points among them never decode, and they come out as the trace's metadata.
    doc = {"traceEvents": mixed_events(30), "deviceProperties": [{"a": 1}, {"b": [{"c": "]},{"}]}],
           "displayTimeUnit": "ms"}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc, indent=indent))
    fast = load_trace(str(p))
    assert isinstance(fast.events, LazyEvents)
    assert fast.meta == {k: v for k, v in doc.items() if k != "traceEvents"}
    slow = from_events(doc["traceEvents"], fast.meta)
    slow.path = fast.path
    assert_same(fast, slow)


def test_a_second_trace_events_member_counts_as_one_decode_reads_it(tmp_path):
    first = [{"ph": "X", "name": "first", "pid": 1, "tid": 1, "ts": i, "dur": 1} for i in range(20)]
    last = [{"ph": "X", "name": "last", "pid": 1, "tid": 1, "ts": 0, "dur": 1}]
    p = tmp_path / "t.json"
    p.write_text('{"traceEvents": %s, "x": 1, "traceEvents": %s}' % (json.dumps(first), json.dumps(last)))
    t = load_trace(str(p))
    assert t.names == ["last"] and len(t) == 1 and t.meta == {"x": 1}


def test_flow_points_without_a_tid_bind_on_their_pids_thread(tmp_path):
    # Flow points are read through their (ph, name, cat, pid, tid) combination: one without a tid is on
    # the thread whose tid is its pid, bp "e" binds to the enclosing slice, an unhashable bp stands alone.
    ev = []
    for i in range(40):
        ev.append({"ph": "X", "name": "op", "cat": "c", "pid": 7, "tid": 7, "ts": 10 * i, "dur": 5})
        ev.append({"ph": "X", "name": "k", "cat": "c", "pid": 7, "tid": 9, "ts": 10 * i + 6, "dur": 2})
        ev.append({"ph": "s", "name": f"f{i % 3}", "cat": "ac2g", "id": i, "pid": 7, "ts": 10 * i + 1})
        end = {"ph": "f", "name": f"f{i % 3}", "cat": "ac2g", "id": i, "pid": 7, "tid": 9, "ts": 10 * i + 6}
        if i % 2:
            end["bp"] = "e"
        if i == 5:
            end["bp"] = ["e"]
        ev.append(end)
    fast, slow = load_both(tmp_path, ev)
    assert_same(fast, slow)
    assert len(fast.flow_src) >= 30


def test_the_lean_record_has_the_full_records_fields_and_defaults():
    # Drawn's 11 fields are decoded alone; Event derives from it, and a field redefined there with another
    # default would make a lean piece read differently from a whole one.
    full = dict(zip(Event.__struct_fields__, Event.__struct_defaults__))
    lean = dict(zip(Drawn.__struct_fields__, Drawn.__struct_defaults__))
    assert set(lean) <= set(full)
    assert all(lean[f] is full[f] or lean[f] == full[f] for f in lean)
