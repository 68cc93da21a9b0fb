"""Nesting on adversarial shapes: a stack as deep as the trace, a staircase of partial overlaps, and
random lanes checked against the plain definition (the innermost open event containing an event is
its parent; it goes on the first free row below that parent)."""


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.calltree import build_call_tree
from viewer.model import from_events
from viewer.nesting import _nest_greedy, _nest_lane, _TakenRows


def reference_greedy(ts, end):
    """The definition, one event at a time with a scan of every open event (quadratic; small inputs)."""
    n = len(ts)
    depth, parent = [0] * n, [-1] * n
    open_rows: dict[int, int] = {}  # row -> event holding it
    opened: list[int] = []
    for i in range(n):
        t, e = ts[i], end[i]

        def still(j, t=t):
            return end[j] > t or end[j] == t == ts[j]
        opened = [j for j in opened if still(j)]
        for r, j in list(open_rows.items()):
            if not still(j):
                del open_rows[r]
        parent[i] = next((j for j in reversed(opened) if end[j] >= e), -1)
        r = depth[parent[i]] + 1 if parent[i] >= 0 else 0
        while r in open_rows:
            r += 1
        depth[i] = r
        open_rows[r] = i
        opened.append(i)
    return depth, parent


lanes = st.lists(st.tuples(st.integers(0, 30), st.one_of(st.just(0), st.integers(0, 20))), max_size=40)


def sorted_lane(pairs):
    ts = np.array([p[0] for p in pairs], dtype=np.int64)
    dur = np.array([p[1] for p in pairs], dtype=np.int64)
    o = np.lexsort((-dur, ts))
    return ts[o], dur[o]


@settings(max_examples=300, deadline=None)
@given(lanes)
def test_greedy_rows_and_parents_follow_the_definition(pairs):
    ts, dur = sorted_lane(pairs)
    end = ts + dur
    depth, parent = _nest_greedy(ts, end)
    assert (depth.tolist(), parent.tolist()) == reference_greedy(ts.tolist(), end.tolist())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 20)), max_size=40))
def test_vectorised_nesting_agrees_with_the_definition_where_spans_nest(pairs):
    ts, dur = sorted_lane(pairs)
    end = ts + dur
    depth, parent = _nest_lane(ts, end, dur)
    if depth is not None:  # properly nested: the vectorised path must give the definition's rows
        assert (depth.tolist(), parent.tolist()) == reference_greedy(ts.tolist(), end.tolist())


def test_taken_rows_find_the_first_free_row_across_levels():
    top = (1 << 20) + 5000  # past a million rows: a level-1 word full, so the search climbs to level 2
    rows = _TakenRows(top + 70_000)  # three levels of 1024-bit words
    assert len(rows.levels) == 3
    for r in range(top):
        rows.take(r)
    taken = set(range(top))
    rng = np.random.default_rng(0)
    for r in [*rng.integers(0, 5000, 2000).tolist(), *rng.integers(top - 3000, top, 500).tolist()]:
        if r in taken:
            rows.free(r)
            taken.discard(r)
    free_low = min(set(range(top)) - taken)
    for r in range(free_low, top):  # every row below `top` taken again, then a few freed
        if r not in taken:
            rows.take(r)
            taken.add(r)
    for r in [0, 1023, 1024, 777_777, top - 1]:
        rows.free(r)
        taken.discard(r)
    for lo in [0, 1, 63, 64, 1023, 1024, 1025, 4095, 4096, 777_000, 777_778, 1 << 20, top - 1, top,
               top + 69_999, *rng.integers(0, top + 100, 200).tolist()]:
        want = next(r for r in range(lo, top + 80_000) if r not in taken)
        assert rows.first_free(lo) == want


def test_a_stack_as_deep_as_the_trace():
    n = 20_000
    tr = from_events([{"ph": "X", "name": "op", "ts": 0, "dur": 1, "pid": 1, "tid": 1}] * n)
    assert tr.depth.tolist() == list(range(n))
    assert tr.parent.tolist() == list(range(-1, n - 1))
    assert tr.self_ns.tolist() == [0] * (n - 1) + [1000]
    tree = build_call_tree(tr)
    assert len(tree.total) == n and tree.count.tolist() == [1] * n
    assert int(tree.self.sum()) == 1000


def test_unclosed_begins_nest_to_the_end():
    n = 5000
    tr = from_events([{"ph": "B", "name": f"b{i}", "ts": i, "pid": 1, "tid": 1} for i in range(n)])
    # Each is drawn to the last B's ts, so the last one is an instant there, after the others end.
    assert tr.depth.tolist()[: n - 1] == list(range(n - 1))
    assert tr.parent.tolist()[: n - 1] == list(range(-1, n - 2))


def test_a_staircase_of_partial_overlaps():
    n, width = 5000, 100
    tr = from_events([{"ph": "X", "name": "s", "ts": i, "dur": width, "pid": 1, "tid": 1} for i in range(n)])
    # No event contains another: no parents; the rows cycle through `width` rows as events end.
    assert (tr.parent == -1).all()
    assert tr.depth.tolist() == [i % width for i in range(n)]
    assert tr.lanes[0].rows == width
