"""The vectorised B/E pairing (model._Builder.pair_begin_end) pairs exactly as catapult's stack does:
per thread, in time order (file order among equal times), an E closes the most recent open B, an E on
an empty stack is skipped, and a B never closed ends at its thread's last timestamp."""

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.model import from_events

event = st.tuples(st.sampled_from("BE"), st.integers(0, 2), st.integers(0, 6))  # ph, tid, ts


def reference(evs):
    stacks, durs, unmatched = defaultdict(list), {}, 0
    order = sorted(range(len(evs)), key=lambda i: evs[i]["ts"])
    last = defaultdict(int)
    for i in order:
        e = evs[i]
        last[e["tid"]] = max(last[e["tid"]], e["ts"])
        if e["ph"] == "B":
            stacks[e["tid"]].append(i)
        elif stacks[e["tid"]]:
            b = stacks[e["tid"]].pop()
            durs[evs[b]["name"]] = (e["ts"] - evs[b]["ts"]) * 1000
        else:
            unmatched += 1
    for tid, s in stacks.items():
        for b in s:
            durs[evs[b]["name"]] = max(last[tid] - evs[b]["ts"], 0) * 1000
    return durs, unmatched


@settings(max_examples=150, deadline=None)
@given(st.lists(event, max_size=40))
def test_pairs_as_a_stack_per_thread(spec):
    evs = [{"ph": ph, "name": f"n{k}", "pid": 1, "tid": tid, "ts": ts} for k, (ph, tid, ts) in enumerate(spec)]
    for e in evs:
        if e["ph"] == "E":
            del e["name"]
    trace = from_events(evs)
    got = {trace.name_of(i): int(trace.dur[i]) for i in range(len(trace))}
    want, unmatched = reference(evs)
    assert got == want
    assert any(f"{unmatched} E events without" in w for w in trace.warnings) == (unmatched > 0)


def test_merged_spans_are_columns_and_their_records_are_made_on_demand(tmp_path):
    """A file's B/E spans keep no record each (a million unclosed B used to hold a million): the merged
    record (ph X, dur, B's args updated with E's) is made when asked for, the same one by one or all at once."""
    import json

    from viewer.model import load_trace
    from viewer.stream import LazyEvents

    evs = [{"ph": "B", "name": "outer", "cat": "c", "pid": 1, "tid": 1, "ts": 0, "args": {"a": 1}},
           {"ph": "B", "name": "inner", "pid": 1, "tid": 1, "ts": 1, "args": {"a": 1, "k": "b"}},
           {"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 2, "dur": 1},
           {"ph": "E", "pid": 1, "tid": 1, "ts": 4, "args": {"k": "e"}},
           {"ph": "B", "name": "open", "pid": 1, "tid": 2, "ts": 5}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(evs))
    trace = load_trace(str(path))
    assert isinstance(trace.events, LazyEvents) and not trace.events.kept  # no B/E record kept from the file
    assert not trace.overrides.extra and len(trace.overrides) == 3
    by = {trace.name_of(i): i for i in range(len(trace))}
    inner = trace.record(by["inner"])
    assert (inner.ph, inner.dur, trace.args_of(by["inner"])) == ("X", 3.0, {"a": 1, "k": "e"})
    assert trace.event_dict(by["inner"])["dur"] == 3.0
    assert trace.record(by["outer"]).dur == 4.0  # closed at its thread's last timestamp
    assert trace.record(by["open"]).dur == 0.0
    assert trace.records() == [trace.record(i) for i in range(len(trace))]
    assert 0 in trace.overrides and 2 not in trace.overrides
