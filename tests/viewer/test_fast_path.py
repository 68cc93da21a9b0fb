"""The msgspec fast path reads a file exactly as the slow path (parsed dicts) reads the same events.

Every trace here is loaded twice: from a file (decoded by msgspec into records, args left as raw
bytes, originals cut out of the file on demand) and from the same events parsed by the stdlib
(`from_events`, the path that odd files take). Columns, lanes, warnings, flows, counters, args and
the details pane's view of every event must agree.
"""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer.details import describe
from viewer.events import FileSource
from viewer import model
from viewer.model import from_events, load_trace
from viewer.search import search
from viewer.summary import ops_table


def write(tmp_path, data, name="t.json"):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


def assert_same(a, b):
    assert a.names == b.names and a.cats == b.cats
    for col in ("ts", "dur", "depth", "parent", "lane", "kind", "self_ns", "flow_src", "flow_dst"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col), err_msg=col)
    assert a.flow_cat == b.flow_cat
    assert [ln.title for ln in a.lanes] == [ln.title for ln in b.lanes]
    assert a.warnings == b.warnings
    assert a.meta == b.meta
    assert a.home == b.home
    def counters(t):
        return [(c.pid, c.name, sorted(c.series)) for c in t.counters]
    assert counters(a) == counters(b)
    for ca, cb in zip(a.counters, b.counters):
        for k in ca.series:
            np.testing.assert_array_equal(ca.series[k][0], cb.series[k][0])
            np.testing.assert_array_equal(ca.series[k][1], cb.series[k][1])
    assert len(a.raw) == len(b.raw) == len(a)
    for i in range(len(a)):
        assert a.raw[i] == b.raw[i]
        assert a.args_of(i) == b.args_of(i)


def load_both(tmp_path, events, wrap=True, **dump):
    doc = {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"k": [1, 2]}} if wrap else events
    text = json.dumps(doc, **dump)
    fast = load_trace(write(tmp_path, text))
    parsed = json.loads(text)
    slow = from_events(parsed["traceEvents"] if wrap else parsed, {k: v for k, v in parsed.items()
                                                                   if k != "traceEvents"} if wrap else None)
    slow.path = fast.path
    return fast, slow


def test_torch_traces_read_the_same(tmp_path, cpu_path, cuda_path):
    for path in (cpu_path, cuda_path):
        fast = load_trace(path)
        assert isinstance(fast.source, FileSource)
        doc = json.loads(open(path, encoding="utf-8").read())
        slow = from_events(doc["traceEvents"], {k: v for k, v in doc.items() if k != "traceEvents"})
        assert_same(fast, slow)
        for by_shape in (False, True):
            ta, tb = ops_table(fast, by_shape=by_shape), ops_table(slow, by_shape=by_shape)
            assert (ta.name, ta.cat, ta.shapes) == (tb.name, tb.cat, tb.shapes)
            np.testing.assert_array_equal(ta.total, tb.total)
        assert any(s.startswith("[[") for s in ops_table(fast, by_shape=True).shapes)
        for q in ("aten", "correlation", "/Input Dims.*\\[\\[/"):
            np.testing.assert_array_equal(search(fast, q), search(slow, q))


def test_originals_are_found_across_strides_and_whitespace(tmp_path):
    n = 3 * FileSource.STRIDE + 7
    events = [{"ph": "X", "name": f"e{i}", "ts": i, "dur": 0.5, "pid": 1, "tid": i % 3, "extra": {"i": [i, "x"]}}
              for i in range(n)]
    for wrap in (True, False):
        fast, slow = load_both(tmp_path, events, wrap=wrap, indent=2)
        assert isinstance(fast.source, FileSource)
        assert_same(fast, slow)
        # Every original, with its non-standard field, in file order through src.
        assert [fast.source[k] for k in range(n)] == events
        assert fast.source._all is None  # found through the kept offsets, not a list of every event
    fast, _ = load_both(tmp_path, events, separators=(",", ":"))
    assert fast.raw[len(fast) - 1]["extra"]["i"][1] == "x"


def test_details_show_every_field_and_merged_pairs(tmp_path):
    events = [
        {"ph": "B", "name": "outer", "ts": 0, "pid": 1, "tid": 1, "args": {"a": 1}, "tts": 5, "custom": [1, 2]},
        {"ph": "E", "ts": 10, "pid": 1, "tid": 1, "args": {"b": 2}},
        {"ph": "X", "name": "op", "ts": 1, "dur": 2, "pid": 1, "tid": 1, "cname": "good", "my_field": "hello"},
        {"ph": "b", "name": "req", "cat": "a", "id": 7, "ts": 3, "pid": 1, "note": "async!"},
        {"ph": "e", "name": "req", "cat": "a", "id": 7, "ts": 8, "pid": 1},
    ]
    fast, slow = load_both(tmp_path, events)
    assert_same(fast, slow)
    by = {fast.name_of(i): i for i in range(len(fast))}
    outer = fast.raw[by["outer"]]
    assert outer["ph"] == "X" and outer["dur"] == 10 and outer["args"] == {"a": 1, "b": 2}
    assert outer["custom"] == [1, 2] and outer["tts"] == 5
    assert fast.raw[by["req"]]["tid"] == "async: req" and fast.raw[by["req"]]["note"] == "async!"
    text = str(describe(fast, by["op"]))
    assert "my_field: hello" in text and "cname: good" in text
    text = str(describe(fast, by["outer"]))
    assert "custom: [1, 2]" in text and "a: 1" in text and "b: 2" in text


def test_missing_and_null_keep_their_meanings(tmp_path):
    events = [
        {"ph": "X", "name": "no_dur", "ts": 0, "pid": 1, "tid": 1},
        {"ph": "X", "name": "null_dur", "ts": 1, "dur": None, "pid": 1, "tid": 1},
        {"ph": "C", "name": "c", "ts": 0, "pid": 1, "args": {"v": 1}},
        {"ph": "C", "name": "c", "ts": 0, "pid": 1, "id": None, "args": {"v": 2}},
        {"ph": "C", "name": "c", "ts": 0, "pid": 1, "id": 3, "args": {"v": 3}},
        {"ph": "s", "id2": 9, "cat": "f", "ts": 1.5, "pid": 1, "tid": 1},
        {"ph": "f", "id2": 9, "cat": "f", "ts": 2, "pid": 1, "tid": 2, "bp": "e"},
        {"ph": "X", "name": "tail", "ts": 1.2, "dur": 1, "pid": 1, "tid": 1},
        {"ph": "X", "name": "kernel", "ts": 1, "dur": 5, "pid": 1, "tid": 2},
    ]
    fast, slow = load_both(tmp_path, events)
    assert_same(fast, slow)
    assert sorted(c.name for c in fast.counters) == ["c", "c 3", "c None"]
    assert sum("dur" in w for w in fast.warnings) == 1  # null_dur only; a missing dur is a 0-length span
    assert len(fast.flow_src) == 1  # id2 stands in for a missing id


def test_non_ascii_args_are_searchable_whatever_the_escaping(tmp_path):
    events = [{"ph": "X", "name": f"e{i}", "ts": i, "dur": 1, "pid": 1, "tid": 1, "args": {"text": t}}
              for i, t in enumerate(["café", "σύνολο", "plain", "a\\u00e9 literal"])]
    for ascii_only in (True, False):
        fast, slow = load_both(tmp_path, events, ensure_ascii=ascii_only)
        for q in ("café", "CAFÉ", "σύν", "plain", "\\u00e9", '"text":"plain"'):
            np.testing.assert_array_equal(search(fast, q), search(slow, q), err_msg=q)
        assert search(fast, "café").tolist() == [0]
        assert search(fast, "σύν").tolist() == [1]


def test_what_msgspec_refuses_takes_the_slow_path(tmp_path):
    # Entries that are not objects, NaN tokens, a cut-off file: read as before, originals kept.
    t = load_trace(write(tmp_path, '[1, {"ph":"X","name":"a","ts":1,"dur":1,"zz":2}]'))
    assert t.names == ["a"] and t.raw[0]["zz"] == 2 and not isinstance(t.source, FileSource)
    assert any("not objects" in w for w in t.warnings)
    t = load_trace(write(tmp_path, '[{"ph":"X","name":"a","ts":1,"dur":NaN,"q":1}]'))
    assert t.raw[0]["q"] == 1 and any("dur" in w for w in t.warnings)
    t = load_trace(write(tmp_path, '[{"ph":"X","name":"a","ts":1,"dur":1,"q":1},{"ph":"X","na'))
    assert t.raw[0]["q"] == 1 and any("truncated" in w for w in t.warnings)


def test_invalid_utf8_is_read_as_replacement_characters_and_located(tmp_path):
    # msgspec would not look inside args (kept raw) and orjson rejects the whole file: one bad byte
    # late in a file used to lose the events around it under "invalid JSON at ... (byte 0)".
    good = b'[{"ph":"X","name":"a","ts":1,"dur":1,"args":{"k":"caf\xc3\xa9"}}]'
    assert load_trace(write(tmp_path, good)).args_of(0) == {"k": "café"}
    bad = good[:-1] + b"".join(b',{"ph":"X","name":"e%d","ts":%d,"dur":1}' % (i, i) for i in range(50)) + b"]"
    bad = bad.replace(b"\xc3\xa9", b"\xff").replace(b'"e40"', b'"e4\xc3"')
    t = load_trace(write(tmp_path, bad))
    a = next(i for i in range(len(t)) if t.name_of(i) == "a")
    assert len(t) == 51 and t.args_of(a) == {"k": "caf\ufffd"} and "e4\ufffd" in t.names
    at = bad.index(b"\xff")
    assert [w for w in t.warnings if "UTF-8" in w] == [
        f"invalid UTF-8 at byte {at} (and maybe after); each bad byte is read as U+FFFD"]


# ---- property-based: any events JSON can carry read the same on both paths ----

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
# Integers within 64 bits: beyond that orjson (the slow path for files) reads floats, the stdlib exact ints.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), text)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=6)
event = st.fixed_dictionaries(
    {"ph": st.sampled_from(["X", "B", "E", "i", "I", "C", "M", "s", "t", "f", "b", "e", "n", "Z", "", None])},
    optional={
        "name": st.one_of(st.sampled_from(["a", "b", "process_name", "thread_name"]), values),
        "cat": st.one_of(st.sampled_from(["c", "d"]), values),
        "ts": st.one_of(st.integers(-5, 50), st.floats(-5, 50), values),
        "dur": st.one_of(st.integers(0, 20), values), "pid": st.one_of(st.integers(0, 2), values),
        "tid": st.one_of(st.integers(0, 2), values), "id": values, "id2": values,
        "bp": st.sampled_from(["e", "x"]), "s": st.sampled_from(["g", "p", "t", "?"]),
        "args": st.one_of(st.dictionaries(st.sampled_from(["name", "sort_index", "v", "Input Dims"]), values,
                                          max_size=3), values),
        "extra": values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(event, event, event, values), max_size=20), st.booleans())
def test_both_paths_agree_on_any_events(tmp_path, events, wrap):
    fast, slow = load_both(tmp_path, events, wrap=wrap)
    assert isinstance(fast.source, FileSource) == all(isinstance(e, dict) for e in events)
    assert_same(fast, slow)
    for by_shape in (False, True):
        ta, tb = ops_table(fast, by_shape=by_shape), ops_table(slow, by_shape=by_shape)
        assert (ta.name, ta.shapes) == (tb.name, tb.shapes)
    for q in ("a", '"v"', "/[0-9]/"):
        np.testing.assert_array_equal(search(fast, q), search(slow, q))


def test_an_unclosed_b_with_a_list_pid_shows_the_same_original_on_both_paths(tmp_path):
    # Found by the property test above: the file-backed path decodes the B afresh for its original, and its
    # tid (filled from the list pid) was a new list, so "changed by merging" added a tid the file lacks.
    for events in ([{"ph": "B", "ts": 0, "pid": []}],
                   [{"ph": "B", "ts": 0, "pid": [1], "tid": [2]}, {"ph": "X", "ts": 0, "dur": 1, "name": "a"}]):
        fast, slow = load_both(tmp_path, events)
        assert_same(fast, slow)
        assert {**events[0], "ph": "X", "dur": 0.0} in [fast.raw[i] for i in range(len(fast))]


def test_integers_beyond_64_bits_are_read_exactly(tmp_path):
    # As the stdlib reads them (orjson, the slow path, would round them to floats).
    events = [{"ph": "X", "name": "a", "ts": 1, "dur": 1, "pid": 123456789012345678901234567890, "tid": 1,
               "args": {"big": -(2**70)}}]
    fast, slow = load_both(tmp_path, events)
    assert isinstance(fast.source, FileSource)
    assert_same(fast, slow)
    assert fast.lanes[0].process == "pid 123456789012345678901234567890"
    assert fast.args_of(0) == {"big": -(2**70)}


def test_unhashable_phases_are_unknown_phases():
    # A list or an object as ph used to raise TypeError out of the loader.
    events = [{"ph": [], "name": "a"}, {"ph": {"k": 1}}, {"ph": []}, {"ph": "X", "name": "x", "ts": 0, "dur": 1}]
    trace = from_events(events)
    assert trace.names == ["x"]
    assert "2 events with unknown phase '[]'; skipped" in trace.warnings
    assert "1 events with unknown phase \"{'k': 1}\"; skipped" in trace.warnings


phase_values = st.one_of(st.sampled_from(["X", "B", "E", "i", "s", "f", "M", "C", "b", "e", "n", "P", "Z", "", None,
                                          1, 1.0, True, float("nan")]), values)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(event, st.fixed_dictionaries({"ph": phase_values}, optional={"ts": st.integers(0, 9)})),
                max_size=40))
def test_one_pass_per_phase_splits_as_one_event_at_a_time(events):
    # Big traces split by phase with one C-speed pass per distinct phase; small ones per event.
    saved = model._GROUP_MIN
    try:
        model._GROUP_MIN = 0
        grouped = from_events(events)
        model._GROUP_MIN = 10**9
        single = from_events(events)
    finally:
        model._GROUP_MIN = saved
    assert_same(grouped, single)


def typed(v):
    """A value with the type of every number in it spelled out (Decimal('2.5') == 2.5 in Python)."""
    if isinstance(v, dict):
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [typed(x) for x in v]
    return (type(v).__name__, v)


def test_epoch_scale_traces_give_the_same_values_on_both_paths(tmp_path):
    # Epoch-scale float timestamps are read with exact decimals on both paths (for their nanoseconds); the
    # originals, args and metadata must still hold what the JSON says, a float, on both: the slow path (here
    # a trailing comma that msgspec refuses) used to hand out Decimals, and to ignore a float sort_index.
    t0 = 1700000000000000.0
    events = [
        {"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": 2, "args": {"sort_index": -1.5}},
        {"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": t0, "dur": 10.5, "args": {"v": 1.5e16, "w": [0.1]}},
        {"ph": "B", "name": "b", "pid": 1, "tid": 2, "ts": t0 + 1, "args": {"a": 0.25}},
        {"ph": "E", "pid": 1, "tid": 2, "ts": t0 + 2, "args": {"e": 2.5}},
        {"ph": "i", "name": "i", "pid": 1, "tid": 1, "ts": t0 + 3, "s": "t", "args": {"z": 3.75}},
        {"ph": "C", "name": "c", "pid": 1, "ts": t0 + 4, "args": {"v": 0.5}},
    ]
    doc = {"traceEvents": events, "otherData": {"f": 0.5}}
    text = json.dumps(doc).replace("1700000000000000.0,", "1700000000000000.024,", 1)  # x's ts
    fast = load_trace(write(tmp_path, text, "fast.json"))
    end = text.rindex("]")  # traceEvents' own
    slow = load_trace(write(tmp_path, text[:end] + "," + text[end:], "slow.json"))
    assert isinstance(fast.source, FileSource) and not isinstance(slow.source, FileSource)
    assert [ln.title for ln in fast.lanes] == [ln.title for ln in slow.lanes] == ["pid 1 / tid 2", "pid 1 / tid 1"]
    assert typed(fast.meta) == typed(slow.meta) == {"otherData": {"f": ("float", 0.5)}}
    assert len(fast) == len(slow) == 3
    for i in range(len(fast)):
        assert typed(fast.raw[i]) == typed(slow.raw[i])
        assert typed(fast.args_of(i)) == typed(slow.args_of(i))
        assert type(fast.record(i).ts) is type(slow.record(i).ts)
    np.testing.assert_array_equal(fast.ts, slow.ts)
    x = next(i for i in range(len(fast)) if fast.name_of(i) == "x")
    assert int(fast.ts[x]) == 1700000000000000024


def test_falsy_scalar_args_are_not_searched_on_either_path(tmp_path):
    # Found by the property test above: `"args": false` (five bytes) was kept in the file path's search text, so
    # "a" matched it there and not on the in-memory path, which leaves out every args value `not` calls empty.
    for falsy in (False, None, 0, 0.0, -0.0, "", [], {}):
        fast, slow = load_both(tmp_path, [{"ph": "X", "ts": 0, "cat": "c", "args": falsy},
                                          {"ph": "X", "ts": 1, "name": "x", "args": {"a": "false"}}])
        for q in ("a", "f", "0", "/[0-9]/", "null"):
            np.testing.assert_array_equal(search(fast, q), search(slow, q))
        assert search(fast, "fa").tolist() == [1]
