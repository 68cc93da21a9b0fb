"""Property test: for random programs of nested ranges, recursion and ops on one or two threads, the
profiler's numbers stay honest (self >= 0, self times sum to the total, children inside parents,
per-row CPU total never above the profiled time, counts equal to what ran)."""
from __future__ import annotations

import threading
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from profiler import profile, record_function

names = st.sampled_from(["a", "b", "c"])
program = st.recursive(st.just(("op",)), lambda inner: st.tuples(st.just("range"), names, st.lists(inner, max_size=4)),
                       max_leaves=25)
programs = st.lists(program, min_size=1, max_size=4)


def run(prog, t, counts):
    for node in prog:
        if node[0] == "op":
            t = t + 1
            counts["aten::add"] += 1
        else:
            counts[node[1]] += 1
            with record_function(node[1]):
                t = run(node[2], t, counts)
    return t


@settings(max_examples=40, deadline=None)
@given(programs, st.booleans())
def test_numbers_stay_honest(prog, two_threads):
    counts = Counter()
    other = Counter()
    with profile() as prof:
        if two_threads:
            th = threading.Thread(target=run, args=(prog, tl.ones(2), other))
            th.start()
        run(prog, tl.ones(2), counts)
        if two_threads:
            th.join()
    ones = ("aten::ones", "aten::empty", "aten::fill_")     # (torch's zeros/ones: an empty, then the fill)
    counts.update(ones)
    if two_threads:
        counts.update(other)
        counts.update(ones)
    store = prof.store
    assert (store.self_ns >= 0).all()
    assert store.self_ns.sum() == (store.t1 - store.t0)[store.parent < 0].sum()
    p = store.parent[store.parent >= 0]
    c = (store.parent >= 0).nonzero()[0]
    assert (store.t0[p] <= store.t0[c]).all() and (store.t1[c] <= store.t1[p]).all()
    assert (store.tid[p] == store.tid[c]).all()
    rows = prof.key_averages()
    total = rows.self_cpu_time_total
    assert {r.key: r.count for r in rows} == dict(counts)
    for r in rows:
        assert 0 <= r.self_cpu_time_total <= r.cpu_time_total + 1e-9
        assert r.cpu_time_total <= total + 1e-6
    assert abs(sum(r.self_cpu_time_total for r in rows) - total) < 1e-6
