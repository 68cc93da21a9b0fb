"""Malformed traces: a clear message and whatever could be read, never a traceback."""

import gzip
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer.__main__ import main
from viewer.loader import TraceError
from viewer.model import from_events, load_trace
from viewer.summary import ops_table


def write(tmp_path, text, name="t.json"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def X(name, ts, dur, tid=1, **kw):
    return dict(ph="X", name=name, ts=ts, dur=dur, pid=1, tid=tid, **kw)


def test_missing_file_is_one_line(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err


def test_not_a_trace(tmp_path, capsys):
    assert main(["summary", write(tmp_path, '{"hello": 1}')]) == 1
    assert "not a Chrome trace" in capsys.readouterr().err
    assert main(["summary", write(tmp_path, "42")]) == 1
    assert main(["summary", write(tmp_path, b"\x00\x01binary")]) == 1
    assert main(["summary", str(tmp_path)]) == 1


def test_invalid_json_says_where(tmp_path):
    with pytest.raises(TraceError, match=r"line 2 column"):
        load_trace(write(tmp_path, '{"traceEvents": [\n  {"ph": "X" "name": "a"}]}'))


def test_truncated_array_is_repaired(tmp_path):
    text = json.dumps([X("a", 1, 2), X("b", 4, 2), X("c", 8, 2)])
    trace = load_trace(write(tmp_path, text[:-30]))
    assert sorted(trace.names) == ["a", "b"]
    assert any("truncated" in w for w in trace.warnings)


def test_truncated_object_form_is_repaired(tmp_path):
    text = json.dumps({"traceEvents": [X("a", 1, 2), X("b", 4, 2)], "displayTimeUnit": "ms"})
    cut = text.index("\"displayTimeUnit\"") - 3  # keeps the last event, loses "], "
    trace = load_trace(write(tmp_path, text[:cut]))
    assert sorted(trace.names) == ["a", "b"]


def test_gzip_and_bare_array(tmp_path):
    data = json.dumps([X("a", 1, 2)]).encode()
    trace = load_trace(write(tmp_path, gzip.compress(data), "t.json.gz"))
    assert trace.names == ["a"]
    assert int(trace.dur[0]) == 2000


def test_truncated_gzip_shows_what_was_read(tmp_path):
    data = json.dumps([X(f"e{i}", i * 10, 5) for i in range(2000)]).encode()
    gz = gzip.compress(data)
    trace = load_trace(write(tmp_path, gz[: len(gz) * 2 // 3], "t.json.gz"))
    assert 0 < len(trace) < 2000
    assert any("gzip" in w for w in trace.warnings)


def test_empty_file_and_empty_trace(tmp_path):
    with pytest.raises(TraceError, match="empty"):
        load_trace(write(tmp_path, ""))
    trace = load_trace(write(tmp_path, '{"traceEvents": []}'))
    assert len(trace) == 0 and any("no events" in w for w in trace.warnings)


def test_bad_fields_are_reported_and_the_rest_kept():
    events = [
        X("ok", 1, 2),
        X("negative", 5, -3),
        X("nan", 6, float("nan")),
        X("no_ts", None, 3),
        X("string_ts", "abc", 3),
        X("future", 1e300, 1),
        {"ph": "Z", "name": "unknown"},
        {"name": "no phase"},
        "not an object",
        X("huge_dur", 10, 1e30),
        X({"weird": "name"}, 20, 1),
        dict(X("list_pid", 30, 1), pid=[1, 2]),
    ]
    trace = from_events(events)
    names = set(trace.names)
    assert {"ok", "negative", "nan", "huge_dur", "{'weird': 'name'}"} <= names
    assert "no_ts" not in names and "future" not in names
    text = " ".join(trace.warnings)
    for needle in ("unknown phase 'Z'", "missing", "not objects", "negative", "out-of-range"):
        assert needle in text
    assert (trace.dur >= 0).all()


def test_begin_end_pairing():
    events = [
        dict(ph="B", name="outer", ts=0, pid=1, tid=1),
        dict(ph="B", name="inner", ts=1, pid=1, tid=1, args={"a": 1}),
        dict(ph="E", ts=3, pid=1, tid=1, args={"b": 2}),
        dict(ph="E", ts=10, pid=1, tid=1),
        dict(ph="E", ts=11, pid=1, tid=1),  # unmatched
        dict(ph="B", name="open", ts=12, pid=1, tid=2),  # never ended
        dict(ph="X", name="last", ts=20, dur=1, pid=1, tid=2),
    ]
    trace = from_events(events)
    by = {trace.name_of(i): i for i in range(len(trace))}
    assert int(trace.dur[by["outer"]]) == 10_000
    assert int(trace.dur[by["inner"]]) == 2_000
    assert trace.args_of(by["inner"]) == {"a": 1, "b": 2}
    assert trace.parent[by["inner"]] == by["outer"]
    assert int(trace.self_ns[by["outer"]]) == 8_000
    assert any("without a matching B" in w for w in trace.warnings)
    assert any("never ended" in w for w in trace.warnings)


def test_partial_overlap_goes_to_an_extra_row():
    trace = from_events([X("a", 0, 10), X("b", 5, 10), X("c", 12, 10), X("d", 6, 1)])
    by = {trace.name_of(i): i for i in range(len(trace))}
    rows = {n: int(trace.depth[i]) for n, i in by.items()}
    assert rows["a"] == 0
    assert rows["b"] == 1 and rows["d"] == 2  # d nests in b, b overlaps a
    assert rows["b"] != rows["c"]  # they overlap, so they cannot share a row
    for i in range(len(trace)):
        for j in range(len(trace)):
            if i < j and trace.depth[i] == trace.depth[j]:
                assert trace.ts[i] + trace.dur[i] <= trace.ts[j] or trace.ts[j] + trace.dur[j] <= trace.ts[i]


def test_metadata_names_sort_and_duplicates():
    events = [
        dict(ph="M", name="process_name", pid=2, args={"name": "late"}),
        dict(ph="M", name="process_sort_index", pid=2, args={"sort_index": -1}),
        dict(ph="M", name="thread_name", pid=2, tid=5, args={"name": "worker"}),
        dict(ph="M", name="thread_name", pid=2, tid=5, args={"name": "renamed"}),
        dict(X("a", 0, 1), pid=1),
        dict(X("b", 0, 1), pid=2, tid=5),
    ]
    trace = from_events(events)
    assert trace.lanes[0].pid == 2
    assert trace.lanes[0].name == "renamed" and trace.lanes[0].process.startswith("late")
    assert any("duplicate thread_name" in w for w in trace.warnings)


def test_instants_counters_async_and_flows():
    events = [
        X("parent", 0, 100),
        X("launch", 10, 5),
        dict(ph="s", id=1, cat="c", ts=11, pid=1, tid=1),
        X("kernel", 40, 20, tid=2),
        dict(ph="f", id=1, cat="c", ts=30, pid=1, tid=2),  # no bp:e -> next slice (kernel)
        dict(ph="i", name="mark", ts=50, pid=1, tid=1, s="t"),
        dict(ph="i", name="global", ts=50, s="g"),
        dict(ph="C", name="mem", ts=0, pid=1, args={"used": 1, "free": 9}),
        dict(ph="C", name="mem", ts=10, pid=1, args={"used": 5, "free": 5}),
        dict(ph="b", name="req", cat="a", id=7, ts=5, pid=1),
        dict(ph="e", name="req", cat="a", id=7, ts=25, pid=1),
    ]
    trace = from_events(events)
    by = {trace.name_of(i): i for i in range(len(trace))}
    assert list(zip(trace.flow_src, trace.flow_dst)) == [(by["launch"], by["kernel"])]
    assert trace.launched(by["parent"]) == [by["kernel"]]
    assert trace.lanes[trace.lane[by["global"]]].name == "global instants"
    assert int(trace.dur[by["req"]]) == 20_000
    assert trace.parent[by["mark"]] == by["parent"]
    (track,) = trace.counters
    assert list(track.series["used"][1]) == [1.0, 5.0]


def test_summary_excludes_instants_and_sorts():
    trace = from_events([X("a", 0, 10), X("a", 20, 30), X("b", 100, 5), dict(ph="i", name="i", ts=1, pid=1, tid=1)])
    t = ops_table(trace)
    assert sorted(t.name) == ["a", "b"]
    i = t.name.index("a")
    assert (int(t.count[i]), int(t.total[i]), int(t.min[i]), int(t.max[i])) == (2, 40_000, 10_000, 30_000)
    assert [t.name[r] for r in t.rows("total")] == ["a", "b"]
    assert [t.name[r] for r in t.rows("total", descending=False)] == ["b", "a"]
    assert [t.name[r] for r in t.rows("max", contains="B")] == ["b"]


# ---- property-based: any JSON-ish garbage gives a Trace (with warnings) or a TraceError ----

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                      max_leaves=6)
phases = st.sampled_from(["X", "B", "E", "i", "I", "C", "M", "s", "t", "f", "b", "e", "n", "Z", "", None])
event = st.fixed_dictionaries(
    {"ph": phases},
    optional={
        "name": st.one_of(st.text(max_size=10), values), "cat": st.one_of(st.text(max_size=5), values),
        "ts": st.one_of(st.floats(), st.integers(), values), "dur": st.one_of(st.floats(), st.integers(), values),
        "pid": st.one_of(st.integers(-3, 3), st.text(max_size=3), values), "tid": st.one_of(st.integers(0, 3), values),
        "id": values, "bp": st.sampled_from(["e", "x"]), "s": st.sampled_from(["g", "p", "t", "?"]),
        "args": st.one_of(st.dictionaries(st.text(max_size=5), values, max_size=3), values),
    },
)


def check_invariants(trace):
    assert len(trace.ts) == len(trace.dur) == len(trace.raw) == len(trace.depth)
    assert (trace.dur >= 0).all()
    assert (trace.self_ns >= 0).all() and (trace.self_ns <= trace.dur).all()
    for lane in trace.lanes:
        assert (np.diff(trace.ts[lane.start:lane.stop]) >= 0).all()
    ops_table(trace)
    for i in range(min(len(trace), 20)):
        trace.parents(i), trace.launched(i)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(event, values), max_size=25))
def test_any_events_load(events):
    check_invariants(from_events(events))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(event, max_size=10), st.integers(0, 400), st.booleans())
def test_any_bytes_load_or_fail_cleanly(tmp_path, events, cut, wrap):
    doc = {"traceEvents": events} if wrap else events
    text = json.dumps(doc, default=str)
    text = text[: max(len(text) - cut, 0)]
    p = tmp_path / "h.json"
    p.write_text(text)
    try:
        trace = load_trace(str(p))
    except TraceError as exc:
        assert "\n" not in str(exc)
    else:
        check_invariants(trace)


def test_nan_and_infinity_tokens_are_read(tmp_path):
    trace = load_trace(write(tmp_path, '[{"ph":"X","name":"a","ts":NaN,"dur":1},'
                                       '{"ph":"X","name":"b","ts":1,"dur":Infinity}]'))
    assert trace.names == ["b"]
    assert math.isfinite(float(trace.dur[0]))


def test_events_far_in_the_future_do_not_squash_the_home_view():
    events = [X(f"e{i}", i * 10, 5) for i in range(100)] + [X("far", 4e12, 1)]
    trace = from_events(events)
    assert "far" in trace.names  # kept and reachable
    lo, hi = trace.home
    assert hi - lo < 2_000_000  # the home view is the bulk (1 ms), not 4e12 µs
    assert any("far outside" in w for w in trace.warnings)


def test_open_missing_file_from_cli_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {str(tmp_path / 'missing.json')!r}: no such file"
