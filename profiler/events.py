"""The event store: every recorded op and range as NumPy columns, with the tree derived after stop().

Built once per profiling cycle from the recorder's per-thread records (`build`); aggregation, the
table, the Chrome trace, the folded stacks and the memory timeline all read this one store.

Order: thread by thread, each thread's events in pre-order (start ascending, enclosing event first).
The tree is derived without a Python loop: an event's depth is the number of events that started
before it minus those that had already ended, and its parent is the last event one level up that
started before it. Self time is the duration minus the children's durations, in integer nanoseconds,
so self times are never negative and add up exactly to the roots' durations (one thread's children
run one after another inside their parent). Should the clock ever give ambiguous stamps, a checked
stack walk takes over.
"""
from __future__ import annotations

from operator import itemgetter

import numpy as np

from ._nogc import no_gc
from .recorder import EXTRA, NAME, SEQ, T0, T1, TAG, format_extras
from .torch_names import AUTOGRAD_TAGS, ENGINE_TAG, FLOPS_ON_COMPOSITE, NODE_TAG, OP_TAGS, profiled_name


def _dev_col(name: str) -> property:
    """An EventStore column kept in its ``_dev_cols`` dict, made (all -1) on first read."""
    def get(self):
        col = self._dev_cols.get(name)
        if col is None or len(col) != len(self.t0):
            col = self._dev_cols[name] = np.full(len(self.t0), -1, np.int64)
        return col

    def set_(self, value):
        self._dev_cols[name] = np.asarray(value, np.int64)
    return property(get, set_, doc=f"{name} per event, -1 where none (see cuda_timing.py)")


class EventStore:
    """Columns (one entry per event) plus small lookup tables; see the module docstring for order."""

    def __init__(self):
        n = 0
        self.names: list[str] = []
        self.tags: list[str] = []
        self.name_id = np.zeros(n, np.int32)
        self.tag_id = np.zeros(n, np.int16)
        self.seq = np.zeros(n, np.int64)
        self.tid = np.zeros(n, np.int64)
        self.t0 = np.zeros(n, np.int64)
        self.t1 = np.zeros(n, np.int64)
        self.parent = np.zeros(n, np.int64)
        self.depth = np.zeros(n, np.int32)
        self.self_ns = np.zeros(n, np.int64)
        self.extra: list | None = None                 # per event (shapes_dtypes, stack, flops) or None
        # (the `extra` list it describes, its distinct entries, each event's index among them): extra_table
        self._extra_table: tuple | None = None
        self.thread_names: dict[int, str] = {}
        # memory (bytes), per event: allocated by the event itself / by it and its descendants
        self.self_cpu_mem = np.zeros(n, np.int64)
        self.cpu_mem = np.zeros(n, np.int64)
        self.self_cuda_mem = np.zeros(n, np.int64)
        self.cuda_mem = np.zeros(n, np.int64)
        self.mem_events = None                         # structured array, see memory.py
        self.mem_owner: np.ndarray | None = None       # per mem_events row, the event it belongs to (-1: none)
        self.has_memory = False
        # device time (ns) per event, -1 start where unknown; see cuda_timing.py
        self.dev_ns = np.zeros(n, np.int64)
        self.self_dev_ns = np.zeros(n, np.int64)
        self._dev_cols: dict = {}                       # dev_start, dev_stream, dev_index: made on first use
        self.has_device_time = False
        self.device_time_note = None      # what the CUDA columns measure, printed under the table (cuda_timing)
        # with cuda_timing="cupti" (see cupti.py): the GPU activities and their launch calls, host ns,
        # each with the index of the event it belongs to (-1 where none); None in events mode
        self.gpu_records: list | None = None
        self.api_records: list | None = None
        self.t_base = 0                                # perf_counter_ns at start()
        self.wall_base_ns = 0                          # time.time_ns() at start()

    def __len__(self):
        return len(self.t0)

    # -- GPU placement columns (-1 where none), allocated only when read or filled: a CPU-only profile
    # of millions of events would otherwise pay for three columns of -1 it never looks at
    dev_start = _dev_col("dev_start")
    dev_stream = _dev_col("dev_stream")
    dev_index = _dev_col("dev_index")

    # -- derived columns ---------------------------------------------------------------------------
    @property
    def dur(self):
        return self.t1 - self.t0

    def is_op(self):
        ops = np.array([t in OP_TAGS for t in self.tags], bool)
        return ops[self.tag_id] if len(self.tags) else np.zeros(len(self), bool)

    def kind_of(self, i) -> str:
        tag = self.tags[self.tag_id[i]]
        return "op" if tag in OP_TAGS else "backward" if tag in AUTOGRAD_TAGS else tag[2:]

    def phase_of(self, i) -> str:
        tag = self.tags[self.tag_id[i]]
        return tag if tag in OP_TAGS else "backward" if tag in AUTOGRAD_TAGS else "forward"

    def flops(self):
        if self.extra is None:
            return np.zeros(len(self), np.int64)
        table, eid = extra_table(self)
        return np.fromiter((e[2] for e in table), np.int64, len(table))[eid] if len(table) else eid

    def self_total_ns(self) -> int:
        return int(self.self_ns.sum())

    def children_lists(self):
        """Children of every event (indices), built once on demand."""
        order = np.argsort(self.parent, kind="stable")
        p = self.parent[order]
        first = np.searchsorted(p, np.arange(len(self)), "left")
        last = np.searchsorted(p, np.arange(len(self)), "right")
        return order, first, last

    def levels(self):
        """Event indices grouped by depth, shallowest first."""
        by_depth = np.argsort(self.depth, kind="stable")
        counts = np.bincount(self.depth, minlength=1) if len(self) else np.zeros(1, np.int64)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        return [by_depth[bounds[d]:bounds[d + 1]] for d in range(len(counts))]

    def subtree_sum(self, values):
        """values summed over each event's subtree (the event and its descendants)."""
        total = values.astype(np.int64, copy=True)
        for level in reversed(self.levels()[1:]):
            if len(level):
                np.add.at(total, self.parent[level], total[level])
        return total

    def innermost_at(self, tid, t):
        """Index of the innermost event on thread `tid` open at each time in `t` (-1 where none)."""
        out = np.full(len(t), -1, np.int64)
        rows = np.flatnonzero(self.tid == tid)
        if not len(rows) or not len(t):
            return out
        lo = rows[0]
        t0 = self.t0[rows]
        idx = np.searchsorted(t0, t, "right") - 1 + lo
        idx[idx < lo] = -1
        pending = idx >= 0
        while pending.any():
            at = np.flatnonzero(pending)
            cand = idx[at]
            inside = self.t1[cand] >= t[at]
            cand = np.where(inside, cand, self.parent[cand])
            idx[at] = cand
            pending[at] = ~inside & (cand >= 0)
        return idx


class _FirstSeen(dict):
    """key -> its index in order of first lookup: ``index[key]`` assigns the next one to a key not seen yet
    (a hit is a plain dict lookup, in C, as ``map(index.__getitem__, column)`` makes it)."""

    def __missing__(self, key):
        v = self[key] = len(self)
        return v


@no_gc
def build(snapshot, extended: bool, t_base: int = 0, wall_base_ns: int = 0) -> EventStore:
    """EventStore from the recorder's snapshot: [(thread id, thread name, [records...]), ...]."""
    store = EventStore()
    store.t_base = t_base
    store.wall_base_ns = wall_base_ns
    name_index: dict[str, int] = _FirstSeen()
    tag_index: dict[str, int] = _FirstSeen()
    parts = []
    offset = 0
    merged: dict[int, tuple[str, list]] = {}
    for tid, tname, recs in snapshot:     # a thread id the OS reused: one lane, as the threads never overlap
        if tid in merged:
            merged[tid] = (merged[tid][0], merged[tid][1] + list(recs))
        else:
            merged[tid] = (tname, recs)
    for tid, (tname, recs) in merged.items():
        n = len(recs)
        if not n:
            continue
        store.thread_names.setdefault(tid, tname)
        # one column at a time through C-level itemgetters: transposing with zip(*recs) costs twice as much;
        # a name's or tag's index is assigned on its first lookup (_FirstSeen), so one pass makes each column
        name_id = np.fromiter(map(name_index.__getitem__, map(itemgetter(NAME), recs)), np.int32, n)
        tag_id = np.fromiter(map(tag_index.__getitem__, map(itemgetter(TAG), recs)), np.int16, n)
        seq = np.fromiter(map(itemgetter(SEQ), recs), np.int64, n)
        t0 = np.fromiter(map(itemgetter(T0), recs), np.int64, n)
        t1 = np.fromiter(map(itemgetter(T1), recs), np.int64, n)
        # with extended records, each one's extra's id (recorder.EXTRAS)
        eid = np.fromiter(map(itemgetter(EXTRA), recs), np.int64, n) if extended else np.zeros(n, np.int64)
        nodes = np.flatnonzero(tag_id == tag_index[ENGINE_TAG]) if ENGINE_TAG in tag_index else ()
        if len(nodes):
            name_id, tag_id, seq, t0, t1, eid = _split_nodes(nodes, tag_index, name_id, tag_id, seq, t0, t1, eid)
            n = len(t0)
        order = _preorder(t0, t1)
        if order is not None:
            t0, t1 = t0[order], t1[order]
            name_id, tag_id, seq, eid = name_id[order], tag_id[order], seq[order], eid[order]
        parent, depth = _tree(t0, t1, order)
        if offset:
            parent = np.where(parent >= 0, parent + offset, -1)
        parts.append((name_id, tag_id, seq, np.full(n, tid, np.int64), t0, t1, parent, depth, eid))
        offset += n
    store.names = list(name_index)
    store.tags = list(tag_index)
    eids = np.zeros(0, np.int64)
    if parts:
        (store.name_id, store.tag_id, store.seq, store.tid, store.t0, store.t1, store.parent,
         store.depth, eids) = (np.concatenate(c) if len(c) > 1 else c[0] for c in zip(*parts))
    if extended:
        table, index = format_extras(eids)
        store.extra = list(map(table.__getitem__, index.tolist()))
        store._extra_table = (store.extra, table, index)
    _rename(store)
    _flops_to_composites(store)
    n = len(store.t0)
    dur = store.t1 - store.t0
    has = store.parent >= 0
    child = np.bincount(store.parent[has], weights=dur[has], minlength=n) if n else np.zeros(0)
    store.self_ns = dur - np.rint(child).astype(np.int64)
    for name in ("self_cpu_mem", "cpu_mem", "self_cuda_mem", "cuda_mem", "dev_ns", "self_dev_ns"):
        setattr(store, name, np.zeros(n, np.int64))
    _backward_seq(store)
    return store


def extra_table(store: EventStore):
    """(the distinct entries of ``store.extra``, the index of each event's among them), by identity: `build`
    gives events with equal extras one shared tuple, so the exports and the grouping work per distinct
    extra (a few hundred in a long profile) and index the result by the events' ids with NumPy. `build`
    leaves the answer for its list; a list set or changed afterwards (whoever changes one in place drops
    ``store._extra_table``) is read again."""
    cached = store._extra_table
    if cached is not None and cached[0] is store.extra:
        return cached[1], cached[2]
    extra = store.extra or []
    ids = list(map(id, extra))
    first = dict(zip(ids, extra))
    pos = dict(zip(first, range(len(first))))
    table, index = list(first.values()), np.fromiter(map(pos.__getitem__, ids), np.int64, len(ids))
    store._extra_table = (store.extra, table, index)
    return table, index


def _split_nodes(nodes, tag_index, name_id, tag_id, seq, t0, t1, eid):
    """An autograd node's range becomes two events with the same stamps, as torch's engine writes them:
    the recorded one is the node itself (NODE_TAG), and a copy appended after every record (so it
    counts as exited last and encloses its twin, see _preorder) is the engine's evaluate_function
    (ENGINE_TAG). The columns with the copies appended (the extra ids too)."""
    tag_id = tag_id.copy()
    tag_id[nodes] = tag_index.setdefault(NODE_TAG, len(tag_index))
    outer = np.full(len(nodes), tag_index[ENGINE_TAG], np.int16)
    cat = np.concatenate
    return (cat((name_id, name_id[nodes])), cat((tag_id, outer)), cat((seq, seq[nodes])), cat((t0, t0[nodes])),
            cat((t1, t1[nodes])), cat((eid, eid[nodes])))


def _rename(store):
    """Every event's name becomes the one torch's profiler gives it (torch_names.py), by (name, tag):
    one lookup per distinct pair, the columns remapped by NumPy."""
    if not len(store.t0):
        return
    ntag = max(len(store.tags), 1)
    pairs, inv = dense_unique(store.name_id.astype(np.int64) * ntag + store.tag_id, len(store.names) * ntag)
    index: dict[str, int] = {}
    lut = np.fromiter((index.setdefault(profiled_name(store.names[p // ntag], store.tags[p % ntag]), len(index))
                       for p in pairs.tolist()), np.int32, len(pairs))
    store.names = list(index)
    store.name_id = lut[inv.reshape(-1)]


def dense_unique(key, bound):
    """np.unique(key, return_inverse=True) for non-negative keys below `bound`, by counting rather than
    sorting when the key space is small (names x tags x threads nearly always is)."""
    if bound > 4 * len(key) + 1_000_000:
        uk, inv = np.unique(key, return_inverse=True)
        return uk, inv.reshape(-1)
    present = np.bincount(key, minlength=bound) > 0
    lut = np.cumsum(present) - 1
    return np.flatnonzero(present), lut[key]


def _flops_to_composites(store):
    """torch counts a convolution's FLOPs on the composite that called it (aten::conv2d), not on the op
    doing the work (aten::convolution: 0): the same here, for the pairs in torch_names.FLOPS_ON_COMPOSITE."""
    extra = store.extra
    if extra is None or not len(store.t0):
        return
    index = {n: k for k, n in enumerate(store.names)}
    for op, composite in FLOPS_ON_COMPOSITE.items():
        if op not in index or composite not in index:
            continue
        for i in np.flatnonzero(store.name_id == index[op]).tolist():
            p = int(store.parent[i])
            ex = extra[i]
            if p >= 0 and store.name_id[p] == index[composite] and ex is not None and ex[2]:
                extra[p] = (*extra[p][:2], extra[p][2] + ex[2], *extra[p][3:])
                extra[i] = (*ex[:2], 0, *ex[3:])
                store._extra_table = None         # changed in place: extra_table reads it again


def _preorder(t0, t1):
    """Records (in exit order) sorted into pre-order: start ascending, the enclosing event first (later
    end), exit order breaking exact ties. Records come nearly sorted by start, so a stable sort of the
    starts alone (timsort: linear on such input) does it whenever no two starts are equal; only then is
    the three-key lexsort needed. None when the records are already in pre-order (nothing nested:
    exit order is start order), so the columns need no permutation."""
    if len(t0) < 2 or (t1[:-1] < t0[1:]).all():
        return None
    order = np.argsort(t0, kind="stable")
    s = t0[order]
    if len(s) > 1 and (s[1:] == s[:-1]).any():
        order = np.lexsort((-np.arange(len(t0)), -t1, t0))
    return order


def _tree(t0, t1, exit_order):
    """(parent, depth) for one thread's events in pre-order (t0 ascending, enclosing first)."""
    n = len(t0)
    if exit_order is None:                          # nothing nested (see _preorder): all roots
        return np.full(n, -1, np.int64), np.zeros(n, np.int32)
    pos = np.arange(n)
    ended = np.searchsorted(np.sort(t1, kind="stable"), t0, "left")   # events that ended before each started
    depth = (pos - ended).astype(np.int32)
    parent = np.full(n, -1, np.int64)
    if n and depth.min() >= 0:
        by_depth = np.argsort(depth, kind="stable")
        counts = np.bincount(depth)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        for d in range(1, len(counts)):
            cur = by_depth[bounds[d]:bounds[d + 1]]
            prev = by_depth[bounds[d - 1]:bounds[d]]
            k = np.searchsorted(prev, cur) - 1
            parent[cur] = np.where(k >= 0, prev[np.maximum(k, 0)], -1)
        ok = (parent >= 0) == (depth > 0)
        p = parent[depth > 0]
        c = pos[depth > 0]
        if ok.all() and (t0[p] <= t0[c]).all() and (t1[p] >= t1[c]).all():
            return parent, depth
    return _tree_by_stack(t0, t1, exit_order)


def _tree_by_stack(t0, t1, exit_order):
    """Exact walk for the rare case of equal stamps: an open event encloses the next one if it ends
    later (or at the same stamp but was exited later)."""
    n = len(t0)
    parent = np.full(n, -1, np.int64)
    depth = np.zeros(n, np.int32)
    t1l = t1.tolist()
    exl = exit_order.tolist()
    stack: list[int] = []
    for i in range(n):
        while stack and (t1l[stack[-1]] < t1l[i] or (t1l[stack[-1]] == t1l[i] and exl[stack[-1]] < exl[i])):
            stack.pop()
        if stack:
            parent[i] = stack[-1]
            depth[i] = len(stack)
        stack.append(i)
    return parent, depth


def _backward_seq(store: EventStore):
    """An autograd node and the engine's evaluate_function around it take the sequence number the
    node's backward-phase ops carry (the forward op's), as torch's events do."""
    try:
        node = store.tags.index(NODE_TAG)
        bw_op = store.tags.index("backward")
    except ValueError:
        return
    kids = np.flatnonzero((store.tag_id == bw_op) & (store.parent >= 0))
    p = store.parent[kids]
    p, kids = p[store.tag_id[p] == node], kids[store.tag_id[p] == node]
    store.seq[p] = store.seq[kids]
    engine = store.parent[p]
    m = engine >= 0
    store.seq[engine[m]] = store.seq[kids[m]]


CALL_TAGS = ("r:cuda_runtime", "r:cuda_driver")     # CUDA API calls CUPTI recorded (cuda_timing="cupti")


def add_calls(store: EventStore, calls) -> np.ndarray:
    """Insert CUDA API calls [(category, name, thread id, t0, t1), ...] as events (leaves: a call runs no
    op), as torch's profiler has a ``cudaLaunchKernel`` event inside the op that launched: the tree is
    re-derived so each call's time leaves its op's self time, as in the trace where the calls nest
    inside ops. Returns the new index of every old event (callers remap indices they hold)."""
    n, m = len(store), len(calls)
    if not m:
        return np.arange(n)
    tag_of = {t: i for i, t in enumerate(store.tags)}
    name_of = {nm: i for i, nm in enumerate(store.names)}
    new_tag = np.fromiter((tag_of.setdefault("r:" + c[0], len(tag_of)) for c in calls), np.int16, m)
    new_name = np.fromiter((name_of.setdefault(c[1], len(name_of)) for c in calls), np.int32, m)
    store.tags, store.names = list(tag_of), list(name_of)
    c_tid = np.fromiter((c[2] for c in calls), np.int64, m)
    c_t0 = np.fromiter((c[3] for c in calls), np.int64, m)
    c_t1 = np.maximum(np.fromiter((c[4] for c in calls), np.int64, m), c_t0)
    for t in np.unique(c_tid).tolist():
        store.thread_names.setdefault(t, "")
    cat = np.concatenate
    tid = cat((store.tid, c_tid))
    t0, t1 = cat((store.t0, c_t0)), cat((store.t1, c_t1))
    threads = list(dict.fromkeys(tid.tolist()))       # the store's thread order, new threads last
    # pre-order per thread; a call after an event with its very stamps (clipped to its op) is inside it
    order = np.lexsort((np.arange(n + m) >= n, -t1, t0, _thread_rank(tid, threads)))
    new_index = np.empty(n + m, np.int64)
    new_index[order] = np.arange(n + m)
    fill = {"seq": -1}
    added: dict[str, np.ndarray] = {"name_id": new_name, "tag_id": new_tag, "tid": c_tid, "t0": c_t0, "t1": c_t1}
    for col in ("name_id", "tag_id", "seq", "tid", "t0", "t1", "self_cpu_mem", "cpu_mem", "self_cuda_mem",
                "cuda_mem", "dev_ns", "self_dev_ns"):
        old = getattr(store, col)
        extra = added.get(col)
        if extra is None:
            extra = np.full(m, fill.get(col, 0), old.dtype)
        setattr(store, col, cat((old, extra.astype(old.dtype)))[order])
    for col, v in list(store._dev_cols.items()):
        if len(v) == n:
            store._dev_cols[col] = cat((v, np.full(m, -1, np.int64)))[order]
    if store.extra is not None:
        ex = store.extra + [(None, None, 0)] * m
        store.extra = [ex[i] for i in order.tolist()]
    if store.mem_owner is not None:
        mo = store.mem_owner
        store.mem_owner = np.where(mo >= 0, new_index[np.maximum(mo, 0)], -1)
    _retree(store)
    return new_index[:n]


def _thread_rank(tid, threads):
    """Each event's thread's position in `threads` (the order threads are laid out in the store)."""
    pos = {t: k for k, t in enumerate(threads)}
    return np.fromiter((pos[t] for t in tid.tolist()), np.int64, len(tid))


def _retree(store: EventStore):
    """parent, depth and self_ns again, for a store whose rows are in pre-order per thread (an earlier
    row with the same stamps encloses a later one)."""
    n = len(store)
    parent = np.full(n, -1, np.int64)
    depth = np.zeros(n, np.int32)
    bounds = np.flatnonzero(np.diff(store.tid)) + 1
    for lo, hi in zip(np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [n])).tolist()):
        p, d = _tree(store.t0[lo:hi], store.t1[lo:hi], np.arange(hi - lo)[::-1].copy())
        parent[lo:hi] = np.where(p >= 0, p + lo, -1)
        depth[lo:hi] = d
    store.parent, store.depth = parent, depth
    dur = store.t1 - store.t0
    has = parent >= 0
    child = np.bincount(parent[has], weights=dur[has], minlength=n) if n else np.zeros(0)
    store.self_ns = dur - np.rint(child).astype(np.int64)
