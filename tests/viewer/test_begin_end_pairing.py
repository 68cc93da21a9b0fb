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
