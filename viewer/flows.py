"""Flow events (s/t/f) bound to the slices they connect, as catapult and Perfetto bind them.

Kineto writes `ac2g` flows from a CUDA launch to its kernel and `fwdbwd` flows from a forward op to
its backward; these are what `[` `]` follow and what highlights the kernels a CPU op launched.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from itertools import compress, repeat
from operator import eq
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .convert import first_seen_ids, hashable, pairs, text, unique

if TYPE_CHECKING:
    from .model import Trace
    from .stream import FlowPoints

# Per flow: the event it leaves, the event it enters, its category.
Flows = tuple[np.ndarray, np.ndarray, list[str]]


def bind_flows(trace: Trace, flows: FlowPoints, warnings: list[str]) -> Flows:
    """Bind s/t/f points to slices with catapult's rules and chain them per (cat, id).

    s and t bind to the enclosing slice on their thread; f binds to the next slice that begins at or
    after it, unless `bp: "e"`, which binds it to the enclosing slice (what Kineto writes). Vectorised
    per lane: a searchsorted for the candidate, then a few passes up the parent chain.
    """
    none: Flows = (np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    # What decides a point's lane, category and kind is one (cat, pid, tid, ph, bp) of a few distinct ones.
    t_ns, good, ids = flows.ts_ns, flows.ts_ok, flows.ids
    at: NDArray[np.integer[Any]] = flows.combo
    if not good.all():
        warnings.append(f"{int((~good).sum())} flow events without a valid ts; skipped")
        ids = list(compress(ids, good.tolist()))
        t_ns, at = t_ns[good], at[good]
    n = len(t_ns)
    if not n:
        return none
    distinct = flows.combos
    cats, pids, tids, phs, bps = (list(col) for col in zip(*distinct))
    cat_id, cat_names = _intern_cats(cats)
    cat_key = cat_id[at]
    key_id = _flow_keys(cat_key, ids)
    lane = _lanes_of(trace, pids, tids)[at]
    ph = np.fromiter(map({"s": 0, "t": 1, "f": 2}.__getitem__, phs), dtype=np.int8, count=len(phs))[at]
    next_slice = (ph == 2) & ~np.fromiter(map(eq, bps, repeat("e")), dtype=bool, count=len(bps))[at]
    del at, distinct, cats, pids, tids, phs, bps
    ev = np.full(n, -1, dtype=np.int64)
    end = trace.ts + trace.dur
    for li in unique(lane[lane >= 0]).tolist():
        ln = trace.lanes[li]
        at = np.flatnonzero(lane == li)
        lts = trace.ts[ln.start:ln.stop]
        if not len(lts):
            continue
        t = t_ns[at]
        nxt = next_slice[at]
        j = np.searchsorted(lts, t, "left")
        ev_next = np.where(j < len(lts), ln.start + j, -1)
        j = ln.start + np.searchsorted(lts, t, "right") - 1
        # Walk up from the last slice starting at or before t until one contains t.
        for _ in range(int(ln.rows) + 2):
            ok = j >= ln.start
            jj = np.maximum(j, 0)
            contains = ok & (trace.dur[jj] > 0) & (end[jj] >= t)
            todo = ok & ~contains
            if not todo.any():
                break
            j = np.where(todo, trace.parent[jj], j)
        jj = np.maximum(j, 0)
        enclosing = np.where((j >= ln.start) & (trace.dur[jj] > 0) & (end[jj] >= t), j, -1)
        ev[at] = np.where(nxt, ev_next, enclosing)
    unbound = int((ev < 0).sum())
    order = np.lexsort((ph, t_ns, key_id))
    k_, p_, e_ = key_id[order], ph[order], ev[order]
    pair = (k_[1:] == k_[:-1]) & (p_[:-1] != 2) & (p_[1:] != 0) & (e_[:-1] >= 0) & (e_[1:] >= 0)
    src, dst = e_[:-1][pair], e_[1:][pair]
    starts = int(((p_ == 0) & (e_ >= 0)).sum())
    ends = int(((p_ == 2) & (e_ >= 0)).sum())
    done = int((pair & (p_[1:] == 2)).sum())
    unmatched = (starts - done) + (ends - done)
    if unbound:
        warnings.append(f"{unbound} flow events are not on any slice; skipped")
    if unmatched > 0:
        warnings.append(f"{unmatched} flows have only one end; not drawn")
    cat_of_point = cat_key[order]
    return src.astype(np.int64), dst.astype(np.int64), [cat_names[c] for c in cat_of_point[:-1][pair].tolist()]


def _intern_cats(cats: list[Any]) -> tuple[NDArray[np.int64], list[str]]:
    """Each flow's category as an id (the few distinct ones), and their texts."""
    try:
        table = dict(zip(dict.fromkeys(cats), itertools.count()))
    except TypeError:
        cats = [text(c) for c in cats]
        table = dict(zip(dict.fromkeys(cats), itertools.count()))
    ids = np.fromiter(map(table.__getitem__, cats), dtype=np.int64, count=len(cats))
    return ids, [text(c) for c in table]


def _flow_keys(cat_key: NDArray[np.int64], ids: list[Any]) -> NDArray[np.int64]:
    """Per flow point, a number equal for equal (cat, id), larger for a pair first seen later: by a sort
    of the ids where they are all int64 integers (Kineto's correlation ids: no tuple per point), else by
    interning (cat, id) pairs."""
    if set(map(type, ids)) <= {int}:
        try:
            num = np.array(ids, dtype=np.int64)
        except OverflowError:
            pass
        else:
            return cat_key * len(ids) + first_seen_ids(num)
    keyed = list(zip(cat_key.tolist(), ids))
    try:
        keys = dict(zip(dict.fromkeys(keyed), itertools.count()))
    except TypeError:
        keyed = [(c, repr(i) if isinstance(i, (dict, list)) else hashable(i)) for c, i in keyed]
        keys = dict(zip(dict.fromkeys(keyed), itertools.count()))
    return np.fromiter(map(keys.__getitem__, keyed), dtype=np.int64, count=len(keyed))


def _lanes_of(trace: Trace, pids: list[Any], tids: list[Any]) -> NDArray[np.int64]:
    """Each point's lane (-1: none), through its pid and tid interned apart (a few distinct values each)."""
    try:
        pid_ix = dict(zip(dict.fromkeys(pids), itertools.count()))
        tid_ix = dict(zip(dict.fromkeys(tids), itertools.count()))
    except TypeError:
        lane_of = defaultdict(lambda: -1, {(ln.pid, ln.tid): i for i, ln in enumerate(trace.lanes)})
        return np.fromiter(map(lane_of.__getitem__, pairs(pids, tids)), dtype=np.int64, count=len(pids))
    table = np.full((len(pid_ix), len(tid_ix)), -1, np.int64)
    for i, ln in enumerate(trace.lanes):
        p, t = pid_ix.get(ln.pid), tid_ix.get(ln.tid)
        if p is not None and t is not None:
            table[p, t] = i
    p_at = np.fromiter(map(pid_ix.__getitem__, pids), dtype=np.int64, count=len(pids))
    t_at = np.fromiter(map(tid_ix.__getitem__, tids), dtype=np.int64, count=len(tids))
    lane: NDArray[np.int64] = table[p_at, t_at]
    return lane


def bind_flows_v2(trace: Trace, file_idx: list[int], warnings: list[str]) -> Flows:
    """Flow events v2 (catapult, Perfetto): a slice with `bind_id` and `flow_out: true` is the source of a
    flow that enters the next slice, in time, with the same `bind_id` and `flow_in: true`. The flows
    join the slices themselves, so no binding to an enclosing slice is needed. `file_idx` lists the
    (few) X and B events that carry a bind_id."""
    none: Flows = (np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    if not file_idx:
        return none
    pos = np.full(len(trace.events), -1, dtype=np.int64)
    pos[trace.src] = np.arange(len(trace.src), dtype=np.int64)
    chains: dict[object, list[tuple[int, int]]] = defaultdict(list)
    for f in file_idx:
        i = int(pos[f])
        if i >= 0:  # not dropped for a bad ts
            chains[hashable(trace.events[f].bind_id)].append((int(trace.ts[i]), i))
    src: list[int] = []
    dst: list[int] = []
    cats: list[str] = []
    loose = 0
    for points in chains.values():
        points.sort()
        waiting = -1  # the slice whose flow_out waits for the next flow_in
        for _, i in points:
            rec = trace.record(i)
            if rec.flow_in is True:
                if waiting >= 0:
                    src.append(waiting)
                    dst.append(i)
                    cats.append(text(trace.record(waiting).cat))
                    waiting = -1
                else:
                    loose += 1
            if rec.flow_out is True:
                loose += waiting >= 0
                waiting = i
        loose += waiting >= 0
    if loose:
        warnings.append(f"{loose} flow v2 ends (flow_in / flow_out with a bind_id) without a partner; not drawn")
    return np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), cats


def join_flows(a: Flows, b: Flows) -> Flows:
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), a[2] + b[2]
