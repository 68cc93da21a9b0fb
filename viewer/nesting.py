"""Nesting depth (the row an event is drawn on), parent and self time of every event in a lane.

Kept apart from the loader because it is the one subtle algorithm of the model: a vectorised path for
lanes that nest properly, and a greedy one that gives partially overlapping events extra rows.
"""

from __future__ import annotations

import bisect
import heapq
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .model import Lane


def nest(ts: NDArray[np.int64], dur: NDArray[np.int64], kind: NDArray[np.int8],
         lanes: list[Lane]) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
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
        if d is None or p is None:  # both or neither
            d, p = _nest_greedy(ts[a:b], end[a:b])
        depth[a:b] = d
        if a:
            p[p >= 0] += a
        parent[a:b] = p
    return depth, parent


def _nest_lane(ts: NDArray[np.int64], end: NDArray[np.int64], dur: NDArray[np.int64]
               ) -> tuple[NDArray[np.int32], NDArray[np.int64]] | tuple[None, None]:
    """Depth and parent of a properly nested lane; (None, None) where two events partially overlap.

    Written to keep few lane-sized temporaries alive at once (each is 8 MB per million events)."""
    is_span = dur > 0
    # Spans: open intervals started earlier (their ends are > ts, and all earlier-ending spans began
    # strictly before, since dur > 0).
    span_ends = np.sort(end[is_span])
    closed_before = np.searchsorted(span_ends, ts, "right")
    del span_ends
    # For a span, spans that start at the same ts but sort earlier (longer) also enclose it; an
    # instant is inside every span that starts at or before it.
    depth64 = np.cumsum(is_span, dtype=np.int64)
    depth64 -= is_span
    inst = np.flatnonzero(~is_span)
    if len(inst):
        depth64[inst] = np.searchsorted(ts[is_span], ts[inst], "right")
    del inst, is_span
    depth64 -= closed_before
    del closed_before
    if len(depth64) and depth64.min() < 0:
        return None, None
    depth = depth64.astype(np.int32)
    del depth64
    # Same-row overlap check, rows in turn (a stable sort by depth keeps each row in ts order).
    o = np.argsort(depth, kind="stable")
    for a in range(0, len(o) - 1, _BLOCK):  # in blocks: small temporaries
        here, nxt = o[a : a + _BLOCK], o[a + 1 : a + _BLOCK + 1]
        if ((depth[here[: len(nxt)]] == depth[nxt]) & (ts[nxt] < end[here[: len(nxt)]])).any():
            return None, None
    key = _row_keys(depth, o)
    del o
    parent = _nested_parents(depth, end, key)
    if ((parent < 0) & (depth > 0)).any():  # a row below one it is not inside: a partial overlap
        return None, None
    return depth, parent


def _row_keys(depth: NDArray[np.int32], by_row: NDArray[np.intp]) -> NDArray[np.int64]:
    """depth * n + position, in (depth, position) order: sorted. `by_row`: the positions in that order."""
    key = depth[by_row].astype(np.int64)
    key *= len(depth)
    key += by_row
    return key


def _nested_parents(depth: NDArray[np.int32], end: NDArray[np.int64],
                    key: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
    """In a properly nested lane, an event's parent is the last event before it one row up (-1 where
    that one ends first: the lane does not nest after all): one searchsorted over (depth, position) keys for
    all rows at once, not a pass over the lane per depth (which made a stack a million deep take a quarter
    of an hour). `key`: `_row_keys`, if already known."""
    n = len(depth)
    if not n:
        return np.full(0, -1, dtype=np.int64)
    if key is None:
        key = _row_keys(depth, np.argsort(depth, kind="stable"))
    # Per event (in blocks, to keep the temporaries small): query = (depth - 1) * n + position; its
    # candidate is the key just before the query's place.
    out = np.empty(n, dtype=np.int64)
    for a in range(0, n, _BLOCK):
        b = min(n, a + _BLOCK)
        d = depth[a:b].astype(np.int64)
        d -= 1
        query = d * n
        query += np.arange(a, b, dtype=np.int64)
        j = np.searchsorted(key, query)
        j -= 1
        found = (d >= 0) & (j >= 0)
        np.maximum(j, 0, out=j)
        cand = key[j]
        found &= cand // n == d
        cand %= n
        found &= end[cand] >= end[a:b]
        cand[~found] = -1
        out[a:b] = cand
    return out


_BLOCK = 1 << 16


class _TakenRows:
    """Which rows of a lane are taken, as a 64-ary tree of bit masks: the first free row at or after
    r is found, and a row taken or freed, in O(log64 rows) (a linear scan made partial overlaps
    quadratic: a staircase of 100k overlapping events took 19 s)."""

    FULL = (1 << 64) - 1

    def __init__(self, capacity: int) -> None:
        self.levels: list[list[int]] = []
        size = max(capacity, 1)
        while True:
            size = (size + 63) >> 6
            self.levels.append([0] * size)
            if size == 1:
                break

    def first_free(self, r: int, level: int = 0) -> int:
        """The first index >= r whose bit is clear at `level` (past the end: the end, or beyond)."""
        words = self.levels[level]
        w, b = r >> 6, r & 63
        if w >= len(words):
            return r
        free = ~words[w] & self.FULL & (self.FULL << b)
        if free:
            return (w << 6) | ((free & -free).bit_length() - 1)
        if level + 1 == len(self.levels):
            return len(words) << 6
        w = self.first_free(w + 1, level + 1)
        if w >= len(words):
            return w << 6
        free = ~words[w] & self.FULL
        return (w << 6) | ((free & -free).bit_length() - 1)

    def set(self, r: int, taken: bool) -> None:
        for words in self.levels:
            w, bit = r >> 6, 1 << (r & 63)
            was_full = words[w] == self.FULL
            words[w] = words[w] | bit if taken else words[w] & ~bit
            if (words[w] == self.FULL) == was_full:
                return
            r = w  # the word turned full or stopped being full: say so one level up


def _nest_greedy(ts: NDArray[np.int64], end: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Events in (ts, -dur) order; each goes on the first free row below its host, the innermost
    open event that contains it. Hosts are kept on a stack of strictly decreasing ends: an event
    that ends no later than one opened after it can never be a host again, so each is pushed and
    popped once and the host is found by bisection. O(n log n) in all."""
    n = len(ts)
    depth = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    ts_l, end_l = ts.tolist(), end.tolist()
    rows = _TakenRows(n)
    open_: list[tuple[int, int]] = []  # heap of (end, index) of events holding a row
    hosts: list[int] = []  # indices; their ends strictly decrease
    neg_ends: list[int] = []  # -end of each host, increasing (for bisect)
    depth_l = [0] * n
    parent_l = [-1] * n
    for i in range(n):
        t, e = ts_l[i], end_l[i]
        # A span ending at t is over; an instant at t is still open for events starting at t.
        while open_ and (open_[0][0] < t or (open_[0][0] == t and ts_l[open_[0][1]] < t)):
            rows.set(depth_l[heapq.heappop(open_)[1]], False)
        while hosts and (neg_ends[-1] > -t or (neg_ends[-1] == -t and ts_l[hosts[-1]] < t)):
            hosts.pop()
            neg_ends.pop()
        k = bisect.bisect_right(neg_ends, -e)  # hosts[:k] end at or after e; hosts[k-1] is innermost
        host = hosts[k - 1] if k else -1
        r = rows.first_free(depth_l[host] + 1 if host >= 0 else 0)
        depth_l[i], parent_l[i] = r, host
        rows.set(r, True)
        heapq.heappush(open_, (e, i))
        while neg_ends and neg_ends[-1] >= -e:
            hosts.pop()
            neg_ends.pop()
        hosts.append(i)
        neg_ends.append(-e)
    depth[:] = depth_l
    parent[:] = parent_l
    return depth, parent


def self_time(dur: NDArray[np.int64], parent: NDArray[np.int64]) -> NDArray[np.int64]:
    has = parent >= 0
    at, weights = parent[has], dur[has]  # (bincount takes the weights as doubles itself)
    del has
    child_sum = np.bincount(at, weights=weights, minlength=len(dur))
    del at, weights
    own: NDArray[np.int64] = child_sum.astype(np.int64)
    del child_sum  # one temporary of every event's size at a time (a million-deep stack: tens of MB)
    np.subtract(dur, own, out=own)
    np.maximum(own, 0, out=own)
    return own
