"""Nesting depth (the row an event is drawn on), parent and self time of every event in a lane.

Kept apart from the loader because it is the one subtle algorithm of the model: a vectorised path for
lanes that nest properly, and a greedy one that gives partially overlapping events extra rows.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np


def nest(ts: np.ndarray, dur: np.ndarray, kind: np.ndarray, lanes: list) -> tuple[np.ndarray, np.ndarray]:
    """Depth (the row drawn) and parent of each event.

    Vectorised for the common case where events nest properly; a lane where two events at the same
    depth overlap (partial overlap, which Perfetto drops) is redone with a greedy pass that pushes the
    later one to a free row below, so nothing is hidden.
    """
    n = len(ts)
    depth = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    end = ts + dur
    for lane in lanes:
        a, b = lane.start, lane.stop
        if b <= a:
            continue
        d, p = _nest_lane(ts[a:b], end[a:b], dur[a:b])
        if d is None:
            d, p = _nest_greedy(ts[a:b], end[a:b])
        depth[a:b] = d
        parent[a:b] = np.where(p >= 0, p + a, -1)
    return depth, parent


def _nest_lane(ts: np.ndarray, end: np.ndarray, dur: np.ndarray):
    n = len(ts)
    pos = np.arange(n)
    is_span = dur > 0
    span_ends = np.sort(end[is_span])
    span_ts = ts[is_span]  # already sorted
    # Spans: open intervals started earlier (their ends are > ts, and all earlier-ending spans began
    # strictly before, since dur > 0).
    closed_before = np.searchsorted(span_ends, ts, "right")
    started_before = np.searchsorted(span_ts, ts, "left")
    # For a span, spans that start at the same ts but sort earlier (longer) also enclose it.
    span_rank = np.cumsum(is_span) - is_span
    depth = np.where(is_span, span_rank - closed_before, np.searchsorted(span_ts, ts, "right") - closed_before)
    del started_before
    depth = depth.astype(np.int32)
    if (depth < 0).any():
        return None, None
    # Same-row overlap check (sorted by depth then ts).
    o = np.lexsort((ts, depth))
    same = depth[o][1:] == depth[o][:-1]
    if (same & (ts[o][1:] < end[o][:-1])).any():
        return None, None
    parent = np.full(n, -1, dtype=np.int64)
    for d in range(1, int(depth.max()) + 1 if n else 0):
        child = pos[depth == d]
        up = pos[depth == d - 1]
        j = np.searchsorted(up, child, "left") - 1
        ok = j >= 0
        cand = up[np.maximum(j, 0)]
        ok &= end[cand] >= end[child]
        parent[child] = np.where(ok, cand, -1)
    return depth, parent


def _nest_greedy(ts: np.ndarray, end: np.ndarray):
    n = len(ts)
    depth = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    open_: list[tuple[int, int]] = []  # heap of (end, index)
    rows_open: Counter = Counter()
    stack: list[int] = []
    for i in range(n):
        t, e = int(ts[i]), int(end[i])
        while open_ and (open_[0][0] < t or (open_[0][0] == t and end[open_[0][1]] > ts[open_[0][1]])):
            _, j = heapq.heappop(open_)
            rows_open[int(depth[j])] -= 1
        # Open events, innermost last; the parent is the innermost one containing i entirely.
        stack = [j for j in stack if int(end[j]) > t or int(end[j]) == t == int(ts[j])]
        host = next((j for j in reversed(stack) if int(end[j]) >= e), -1)
        parent[i] = host
        lo = int(depth[host]) + 1 if host >= 0 else 0
        r = lo
        while rows_open[r] > 0:
            r += 1
        depth[i] = r
        rows_open[r] += 1
        heapq.heappush(open_, (e, i))
        stack.append(i)
    return depth, parent


def self_time(dur: np.ndarray, parent: np.ndarray) -> np.ndarray:
    has = parent >= 0
    child_sum = np.bincount(parent[has], weights=dur[has].astype(np.float64), minlength=len(dur))
    return np.maximum(dur - child_sum.astype(np.int64), 0)
