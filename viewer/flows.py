"""Flow events (s/t/f) bound to the slices they connect, as catapult and Perfetto bind them.

Kineto writes `ac2g` flows from a CUDA launch to its kernel and `fwdbwd` flows from a forward op to
its backward; these are what `[` `]` follow and what highlights the kernels a CPU op launched.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from msgspec import UNSET

from .convert import TS_LIMIT, hashable, num_array, pairs, text
from .events import Event

if TYPE_CHECKING:
    from .model import Trace

# Per flow: the event it leaves, the event it enters, its category.
Flows = tuple[np.ndarray, np.ndarray, list[str]]


def bind_flows(trace: Trace, flows: list[Event], warnings: list[str]) -> Flows:
    """Bind s/t/f points to slices with catapult's rules and chain them per (cat, id).

    s and t bind to the enclosing slice on their thread; f binds to the next slice that begins at or
    after it, unless `bp: "e"`, which binds it to the enclosing slice (what Kineto writes). Vectorised
    per lane: a searchsorted for the candidate, then a few passes up the parent chain.
    """
    none: Flows = (np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    if not flows:
        return none
    # One attribute per pass (records have slots: cheaper than tuples transposed by zip).
    c_ts = [e.ts for e in flows]
    cats = [e.cat for e in flows]
    ids = [e.id2 if e.id is UNSET else e.id for e in flows]  # event_id, inlined
    pids = [e.pid for e in flows]
    tids = [e.tid for e in flows]
    phs = [e.ph for e in flows]
    bps = [e.bp for e in flows]
    t_us = num_array(c_ts)
    good = np.isfinite(t_us) & (np.abs(t_us) < TS_LIMIT / 1000.0)
    if not good.all():
        warnings.append(f"{int((~good).sum())} flow events without a valid ts; skipped")
        g = good.tolist()
        cols = (cats, ids, pids, tids, phs, bps)
        cats, ids, pids, tids, phs, bps = ([x for x, k in zip(col, g) if k] for col in cols)
        t_us = t_us[good]
    n = len(t_us)
    if not n:
        return none
    lane_index = {(ln.pid, ln.tid): i for i, ln in enumerate(trace.lanes)}
    keyed = list(zip(cats, ids))
    # map()/dict built-ins rather than comprehensions: this runs once per flow event.
    try:
        keys = dict(zip(dict.fromkeys(keyed), itertools.count()))
    except TypeError:
        keyed = [(text(c), repr(i) if isinstance(i, (dict, list)) else hashable(i)) for c, i in keyed]
        keys = dict(zip(dict.fromkeys(keyed), itertools.count()))
    key_id = np.fromiter(map(keys.__getitem__, keyed), dtype=np.int64, count=n)
    lane_of = defaultdict(lambda: -1, lane_index)
    lane = np.fromiter(map(lane_of.__getitem__, pairs(pids, tids)), dtype=np.int64, count=n)
    ph = np.fromiter(map({"s": 0, "t": 1, "f": 2}.__getitem__, phs), dtype=np.int8, count=n)
    t_ns = np.rint(t_us * 1000.0).astype(np.int64)
    next_slice = (ph == 2) & (np.array(bps, dtype=object) != "e")
    ev = np.full(n, -1, dtype=np.int64)
    end = trace.ts + trace.dur
    for li in np.unique(lane[lane >= 0]).tolist():
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
    # Category per flow: map the few distinct category strings, not every key.
    try:
        cat_ids = dict(zip(dict.fromkeys(cats), itertools.count()))
    except TypeError:
        cats = [text(c) for c in cats]
        cat_ids = dict(zip(dict.fromkeys(cats), itertools.count()))
    cat_of_point = np.fromiter(map(cat_ids.__getitem__, cats), dtype=np.int64, count=n)[order]
    cat_names = [text(c) for c in cat_ids]
    return src.astype(np.int64), dst.astype(np.int64), [cat_names[c] for c in cat_of_point[:-1][pair].tolist()]
