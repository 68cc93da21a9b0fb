"""Nesting depth (the row an event is drawn on), parent and self time of every event in a lane.

Kept apart from the loader because it is the one subtle algorithm of the model: a vectorised path for
lanes that nest properly, and a greedy one that gives partially overlapping events extra rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from itertools import chain
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


_SHIFT = 10  # rows per word of _TakenRows: 1024 (Python ints of that size cost little more than 64-bit ones)
_WORD = 1 << _SHIFT
_LOW = _WORD - 1
_FULL = (1 << _WORD) - 1


def _lowest_clear(x: int) -> int:
    """The index of the lowest clear bit of x >= 0."""
    return ((x + 1) & ~x).bit_length() - 1


class _TakenRows:
    """Which rows of a lane are taken, as a tree of 1024-bit masks: level 0 has a bit per row, each level
    above a bit per word of the one below, set while that word is full. The first free row at or after r
    is found, and a row taken or freed, in O(log rows) (a linear scan made partial overlaps quadratic: a
    staircase of 100k overlapping events took 19 s). Wide words keep the tree two levels deep up to a
    million rows, so most operations touch one word (`_nest_greedy` does that part inline)."""

    def __init__(self, capacity: int) -> None:
        self.levels: list[list[int]] = []
        size = max(capacity, 1)
        while True:
            size = (size + _LOW) >> _SHIFT
            self.levels.append([0] * size)
            if size == 1:
                break

    def first_free(self, r: int) -> int:
        """The first row >= r that is not taken (past the end: the end, or beyond)."""
        levels = self.levels
        k = 0
        while True:  # up, until a word with a clear bit at or after r's
            words = levels[k]
            w, b = r >> _SHIFT, r & _LOW
            if w >= len(words):
                return r << (_SHIFT * k)
            z = _lowest_clear(words[w] >> b) + b
            if z < _WORD:
                r = (w << _SHIFT) | z
                break
            k += 1
            if k == len(levels):
                return len(words) << (_SHIFT * k)
            r = w + 1
        while k:  # down: r is a word of level k - 1 that is not full
            k -= 1
            r = (r << _SHIFT) | _lowest_clear(levels[k][r])
        return r

    def take(self, r: int) -> None:
        words, w = self.levels[0], r >> _SHIFT
        words[w] |= 1 << (r & _LOW)
        if words[w] == _FULL:
            self.filled(w)

    def free(self, r: int) -> None:
        words, w = self.levels[0], r >> _SHIFT
        was = words[w]
        words[w] = was & ~(1 << (r & _LOW))
        if was == _FULL:
            self.emptied(w)

    def filled(self, w: int) -> None:
        """Word w of level 0 turned full: say so in the levels above."""
        for words in self.levels[1:]:
            i = w >> _SHIFT
            words[i] |= 1 << (w & _LOW)
            if words[i] != _FULL:
                return
            w = i

    def emptied(self, w: int) -> None:
        """Word w of level 0 stopped being full: say so in the levels above."""
        for words in self.levels[1:]:
            i = w >> _SHIFT
            was = words[i]
            words[i] = was & ~(1 << (w & _LOW))
            if was != _FULL:
                return
            w = i


def _items(a: NDArray[np.int64]) -> Iterator[int]:
    """a's values as Python ints, a block at a time: list speed without a list of them all (a list of a
    million ints is 36 MB; array.array's or memoryview's would make a new int object on every access)."""
    return chain.from_iterable(a[s : s + _BLOCK].tolist() for s in range(0, len(a), _BLOCK))


def _nest_greedy(ts: NDArray[np.int64], end: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Events in (ts, -dur) order; each goes on the first free row below its host, the innermost
    open event that contains it. Hosts are kept on a stack of strictly decreasing ends: an event
    that ends no later than one opened after it can never be a host again, so each is pushed and
    popped once and the host is found by bisection. Rows are given back in one order sorted up front
    (by end; at the same end a span before an instant: a span ending at t is over for an event starting at
    t, an instant at t is not), `over[i]` of them before event i. O(n log n) in all; the one Python pass
    is kept lean (1M partially overlapping events: about 2 s)."""
    n = len(ts)
    inst = ts == end
    next_over = _items(np.lexsort((inst, end))).__next__
    over = np.searchsorted(np.sort(end[~inst]), ts, "right")
    over += np.searchsorted(np.sort(end[inst]), ts, "left")
    del inst
    rows = _TakenRows(n)
    row_words = rows.levels[0]
    hosts: list[int] = []  # indices; their ends strictly decrease
    neg_ends: list[int] = []  # -end of each host, increasing (for bisect)
    depth = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    depth_l, parent_l = depth.data, parent.data  # a value at a time, no list of them all
    closed = 0
    for i, t, e, k in zip(range(n), _items(ts), _items(end), _items(over)):
        while closed < k:  # rows.free(depth of each event over by t), inline
            r = depth_l[next_over()]
            closed += 1
            w = r >> _SHIFT
            was = row_words[w]
            row_words[w] = was ^ (1 << (r & _LOW))
            if was == _FULL:
                rows.emptied(w)
        k = bisect.bisect_right(neg_ends, -e)  # hosts[:k] end at or after e; hosts[k-1] is innermost
        if k and neg_ends[k - 1] == -t and ts[hosts[k - 1]] < t:  # a span that ended at t: over
            k -= 1
        r = 0
        if k:
            parent_l[i] = host = hosts[k - 1]
            r = depth_l[host] + 1
        w, b = r >> _SHIFT, r & _LOW
        z = _lowest_clear(row_words[w] >> b) + b  # rows.first_free(r), its first step inline
        if z < _WORD:
            r = (w << _SHIFT) | z
        else:
            r = rows.first_free(r)
            w = r >> _SHIFT
        depth_l[i] = r
        row_words[w] |= 1 << (r & _LOW)  # rows.take(r), inline
        if row_words[w] == _FULL:
            rows.filled(w)
        while neg_ends and neg_ends[-1] >= -e:
            hosts.pop()
            neg_ends.pop()
        hosts.append(i)
        neg_ends.append(-e)
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
