"""A trace as columnar NumPy arrays, sorted by (lane, start), so every view is a vectorised query.

Why columns rather than objects: a 1M-event trace must load in seconds and redraw in milliseconds;
one Python object per event is too slow to sort, bucket and aggregate, and too large to hold. The
event records (`events.Event`, in file order: `trace.events`) serve what columns do not hold: args
(left as raw bytes until asked for) and, through the trace's `source`, every original field of the one
event selected. Read from a file, only the records the builder needs are kept (every event but the X
ones); an X event's record is decoded again from its bytes when asked for (`stream.LazyEvents`).

Times are int64 nanoseconds. Events of a lane are contiguous (`lane_start[l]:lane_start[l+1]`) and
sorted by (ts, -dur, file order), which makes nesting depth, parents and self time computable with
searchsorted.
"""

from __future__ import annotations

import gc
import itertools
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import eq
from typing import Any, overload

import msgspec
import numpy as np
from numpy.typing import NDArray
from msgspec import UNSET

from .convert import epoch_floats, hashable, number, pairs, text, unique
from .events import (NOT_OBJECT_PH, Event, EventSource, FileSource, args_dict, args_value, decode_events_exact,
                     event_id)
from .flows import Flows, bind_flows, bind_flows_v2, join_flows
from .loader import InputOptions, Progress, RawTrace, _noop, load_raw, raw_trace
from .stream import (Columns, FlowPoints, LaneKey, LazyEvents, columns_of_records, fill_tid_from_pid, intern_lane_keys,
                     intern_values)
from .names import Names
from .nesting import nest, self_time


KIND_SPAN = 0
KIND_INSTANT = 1

# Below this many non-X events a Python dispatch per event is as quick as one pass per distinct phase.
_GROUP_MIN = 64
# (B and E events never reach it: they are columns, see stream.Columns.)
# (Flow points, s/t/f, are columns of their own: stream.FlowPoints.)
_PHASE_KIND = {"i": "i", "I": "i", "R": "i", "M": "M", "C": "C", "b": "async", "e": "async", "n": "async",
               "S": "async", "T": "async", "F": "async"}
_SKIPPED_PHASES = {"P", "O", "N", "D", "p", "(", ")", "V", "v", "c"}
# Async phases as begin / end / instant: nestable b/e/n, and the legacy S/F with T (a step, drawn as an
# instant on the slice's lane). Legacy and nestable ones with the same id are not paired together.
_ASYNC_ROLE = {"b": ("b", False), "e": ("e", False), "n": ("n", False),
               "S": ("b", True), "F": ("e", True), "T": ("n", True)}

# `_order`'s key: numbers first, by value, then everything else by text.
_OrderKey = tuple[int, float, str]
# A table of distinct names: raw values, or texts in a blob.
_Table = list[Any] | Names
# A lane's place: (process sort index, pid, thread sort index, tid).
_LaneSortKey = tuple[float, _OrderKey, float, _OrderKey]


@dataclass
class Lane:
    """One horizontal track: a thread, a GPU stream, an async group, or the global instants."""

    pid: Any
    tid: Any
    name: str
    process: str
    start: int = 0
    stop: int = 0
    rows: int = 1
    sort_key: tuple[object, ...] = ()  # a _LaneSortKey for the lanes the builder makes

    @property
    def title(self) -> str:
        return f"{self.process} / {self.name}" if self.process else self.name


@dataclass
class CounterTrack:
    """A `ph: C` counter: one named series per key of its args, each sorted by time."""

    pid: Any
    name: str
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class Trace:
    path: str
    meta: dict[str, Any]
    warnings: list[str]
    names: Sequence[str]  # a list, or Names (a blob: a trace of very many distinct names)
    cats: list[str]
    ts: NDArray[np.int64]
    dur: NDArray[np.int64]
    name_id: NDArray[np.int32]
    cat_id: NDArray[np.int32]
    lane: NDArray[np.int32]
    depth: NDArray[np.int32]
    parent: NDArray[np.int64]
    self_ns: NDArray[np.int64]
    kind: NDArray[np.int8]
    # Event i's record is events[src[i]], unless the builder made a new one for it (a B/E or b/e
    # pair merged into one span, an async instant moved to its lane): overrides.get(src[i]).
    events: Sequence[Event]
    src: NDArray[np.int64]
    overrides: Overrides
    source: EventSource  # source[src[i]]: the original event, every field (details pane)
    lanes: list[Lane]
    counters: list[CounterTrack]
    home: tuple[int, int] = (0, 1)
    # (source event, destination event, category) per flow, replaced in one assignment so that a
    # reader on the UI thread never sees a half-bound state; see bind_pending_flows.
    flows: Flows = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64), []))
    pending_flows: FlowPoints | None = None

    @property
    def flow_src(self) -> np.ndarray:
        return self.flows[0]

    @property
    def flow_dst(self) -> np.ndarray:
        return self.flows[1]

    @property
    def flow_cat(self) -> list[str]:
        return self.flows[2]

    def bind_pending_flows(self) -> bool:
        """Bind flows left for later by load_trace(defer_flows=True); True if there were any."""
        pending, self.pending_flows = self.pending_flows, None
        if pending is None:
            return False
        with _gc_paused():
            self.flows = join_flows(self.flows, bind_flows(self, pending, self.warnings))
        return True

    @property
    def end(self) -> np.ndarray:
        return self.ts + self.dur

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def t_min(self) -> int:
        return int(self.ts.min()) if len(self.ts) else 0

    @property
    def t_max(self) -> int:
        return int((self.ts + self.dur).max()) if len(self.ts) else 1

    def name_of(self, i: int) -> str:
        return self.names[int(self.name_id[i])]

    def cat_of(self, i: int) -> str:
        return self.cats[int(self.cat_id[i])]

    def record(self, i: int) -> Event:
        s = int(self.src[i])
        r = self.overrides.get(s)
        return self.events[s] if r is None else r

    def release_text(self) -> None:
        """Let go of the file's text where the events are read from it (see FileSource.release): for a
        caller done with every event's own fields (records, details, raw dicts)."""
        if isinstance(self.source, FileSource):
            self.source.release()

    def records(self) -> list[Event]:
        """Every event's record in the trace's (sorted) order; one pass, for whole-trace scans."""
        events = self.events.all() if isinstance(self.events, LazyEvents) else self.events
        recs = list(map(events.__getitem__, self.src.tolist()))
        if self.overrides:
            get = self.overrides.get
            for pos in np.flatnonzero(np.isin(self.src, self.overrides.keys_array())).tolist():
                r = get(int(self.src[pos]), events)
                assert r is not None  # a key of overrides
                recs[pos] = r
        return recs

    def args_of(self, i: int) -> dict[Any, Any]:
        return args_dict(self.record(i))

    def event_dict(self, i: int) -> Any:
        """Event i as the file had it (every field), with what merging changed (ph, dur, args, tid)."""
        s = int(self.src[i])
        orig = self.source[s]
        merged = self.overrides.get(s)
        if merged is None:
            return orig
        base = self.events[s]
        out = dict(orig) if isinstance(orig, dict) else {}
        for f in ("ph", "dur", "args", "tid"):
            v, was = getattr(merged, f), getattr(base, f)
            # A tid equal to the one decoded is unchanged (a file-backed trace decodes `base` afresh, so a
            # list-valued tid, filled from a list pid, is never the same object); ph, dur and args written by
            # the merge are new objects, to be shown even where equal (a B's default dur)
            if v is not was and not (f == "tid" and type(v) is type(was) and v == was):
                out[f] = args_value(merged) if f == "args" else v
        return out

    @property
    def raw(self) -> "RawEvents":
        return RawEvents(self)

    def parents(self, i: int) -> list[int]:
        chain: list[int] = []
        p = int(self.parent[i])
        while p >= 0 and len(chain) < 10_000:
            chain.append(p)
            p = int(self.parent[p])
        return chain

    def flows_out(self, i: int) -> list[int]:
        src, dst, _ = self.flows
        return [int(x) for x in dst[src == i]]

    def flows_in(self, i: int) -> list[int]:
        src, dst, _ = self.flows
        return [int(x) for x in src[dst == i]]

    def descendants(self, i: int) -> NDArray[np.intp]:
        """Events nested under i: same lane, deeper, starting within it (a range by sort order)."""
        lane = self.lanes[int(self.lane[i])]
        end = self.ts[i] + self.dur[i]
        hi = lane.start + int(np.searchsorted(self.ts[lane.start : lane.stop], end, "right"))
        idx = np.arange(i + 1, hi)
        nested: NDArray[np.intp] = idx[(self.depth[idx] > self.depth[i]) & (self.ts[idx] + self.dur[idx] <= end)]
        return nested

    def launched(self, i: int) -> list[int]:
        """What a CPU op started elsewhere: flow targets of it and of everything nested in it."""
        srcs = np.concatenate([[i], self.descendants(i)])
        src, dst, _ = self.flows
        return sorted({int(x) for x in dst[np.isin(src, srcs)]} - {i})


class Overrides:
    """The records the builder made, by the file index of the event each stands for: B/E pairs merged
    into one span, async b/e pairs and instants moved to their lanes (`extra`). A B/E span's record is
    made only when asked for, from its B and E records and its duration (`span_*` columns): a million
    unclosed B used to be a million records held for the life of the trace."""

    def __init__(self, events: Sequence[Event], b: list[NDArray[np.int64]], e: list[NDArray[np.int64]],
                 dur_ns: list[NDArray[np.int64]], extra: dict[int, Event]) -> None:
        """b, e, dur_ns: the span columns in pieces, emptied here as each is joined and sorted by b (one
        column at a time: a million spans hold no second copy of every column at once)."""
        self.events = events
        self.b = _cat(b, np.int64)
        b.clear()
        order = None if bool((self.b[1:] >= self.b[:-1]).all()) else np.argsort(self.b, kind="stable")
        if order is not None:
            self.b = self.b[order]
        self.e = _sorted_cat(e, order)
        self.dur_ns = _sorted_cat(dur_ns, order)
        self.extra = extra

    def __len__(self) -> int:
        return len(self.b) + len(self.extra)

    def __contains__(self, s: object) -> bool:
        return isinstance(s, (int, np.integer)) and (s in self.extra or self._at(int(s)) >= 0)

    def _at(self, s: int) -> int:
        j = int(np.searchsorted(self.b, s))
        return j if j < len(self.b) and int(self.b[j]) == s else -1

    def get(self, s: int, events: Sequence[Event] | None = None) -> Event | None:
        """The record that stands for file event s, or None; `events`: every record in file order, when
        the caller has them all at hand (a whole-trace scan), else they are looked up one by one."""
        r = self.extra.get(s)
        if r is not None:
            return r
        j = self._at(s)
        if j < 0:
            return None
        ev = self.events if events is None else events
        e = int(self.e[j])
        return _merge(ev[s], ev[e] if e >= 0 else None, int(self.dur_ns[j]) / 1000.0)

    def keys_array(self) -> NDArray[np.int64]:
        if not self.extra:
            return self.b
        return np.concatenate([self.b, np.fromiter(self.extra, np.int64, len(self.extra))])


class RawEvents(Sequence[Any]):
    """`trace.raw[i]`: event i's original dict, built on access (see Trace.event_dict)."""

    def __init__(self, trace: Trace):
        self._trace = trace

    def __len__(self) -> int:
        return len(self._trace.src)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._trace.event_dict(i)


def _intern(values: Sequence[Any], table: dict[str, int]) -> np.ndarray:
    """Strings to ids with dict/map built-ins (C speed); odd values (None, numbers, lists) as text."""
    try:
        first = dict(zip(dict.fromkeys(values), itertools.count()))
    except TypeError:
        values = [v if type(v) is str else text(v) for v in values]
        first = dict(zip(dict.fromkeys(values), itertools.count()))
    ids = np.fromiter(map(first.__getitem__, values), dtype=np.int32, count=len(values))
    if not table and set(map(type, first)) <= {str}:  # all text already, a fresh table: it is `first`
        table.update(first)
        return ids
    # Distinct raw values can share a text (5 and "5"): remap onto one table entry per text.
    remap = np.array([table.setdefault(v if type(v) is str else text(v), len(table)) for v in first],
                     dtype=np.int32)
    return remap[ids] if len(ids) else ids


class _Builder:
    """One pass over the raw events, splitting them by phase; then vectorised assembly."""

    def __init__(self, raw: RawTrace, path: str, progress: Progress, defer_flows: bool = False,
                 keep_text: bool = True):
        self.defer_flows = defer_flows
        self.keep_text = keep_text
        self.raw = raw
        self.path = path
        self.progress = progress
        self.warnings = raw.warnings
        self.events = raw.events
        # B/E pairs merged into one span each, as columns (a list of arrays per column, one per batch):
        # the B's file index, the E's (-1: never ended), dur (ns), name and (cat, pid, tid) ids.
        self.span_b: list[NDArray[np.int64]] = []
        self.span_e: list[NDArray[np.int64]] = []
        self.span_dur: list[NDArray[np.int64]] = []
        self.span_name: list[NDArray[np.int32]] = []
        self.span_key: list[NDArray[np.int32]] = []
        # Async b/e pairs merged into one record each.
        self.async_spans: list[Event] = []
        self.async_src: list[int] = []
        self.async_dur: list[int] = []
        self.x_src = np.zeros(0, np.int64)
        self.x_name: NDArray[np.int32] = np.zeros(0, np.int32)  # each X event's name, into names_raw
        self.x_key: NDArray[np.int32] = np.zeros(0, np.int32)  # its (cat, pid, tid), into lane_keys
        self.be_src = np.zeros(0, np.int64)  # the B and E events, as columns (see stream.Columns)
        self.be_is_b = np.zeros(0, bool)
        self.be_name: NDArray[np.int32] = np.zeros(0, np.int32)
        self.be_key: NDArray[np.int32] = np.zeros(0, np.int32)
        self.names_raw: list[Any] | Names = []
        self.names_distinct = True  # names_raw: the keys of one table
        self.lane_keys: list[LaneKey] = []
        self.instants: list[Event] = []
        self.inst_src: list[int] = []
        self.overrides: dict[int, Event] = {}
        self.async_events: list[int] = []
        self.counters: list[Event] = []
        self.counter_src: list[int] = []
        self.counter_ts: list[int] = []  # ns, per counter event (valid where counter_ok)
        self.counter_ok: list[bool] = []
        self.flows = FlowPoints(src=np.zeros(0, np.int64), ts_ns=np.zeros(0, np.int64), ts_ok=np.zeros(0, bool),
                                ids=[], combo=np.zeros(0, np.int32), combos=[])  # the flow points (s/t/f)
        self.flow_v2: list[int] = []  # file indices of the X and B events with a bind_id (flow v2)
        self.ts_ns = np.zeros(0, np.int64)  # every event's ts in ns, file order (valid where ts_ok)
        self.ts_ok = np.zeros(0, bool)
        self.x_dur = np.zeros(0, np.int64)  # the X events' dur in ns (valid where x_dur_ok)
        self.x_dur_ok = np.zeros(0, bool)
        self.proc_names: dict[Any, str] = {}
        self.thread_names: dict[tuple[Any, Any], str] = {}
        self.proc_sort: dict[Any, float] = {}
        self.proc_labels: dict[Any, str] = {}
        self.thread_sort: dict[tuple[Any, Any], float] = {}
        self.unknown: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.not_objects = 0

    def split(self) -> None:
        instants, inst_src, asy, ctr = self.instants, self.inst_src, self.async_events, self.counters
        cols = self.raw.columns
        if cols is None:  # records in memory (the slow path, from_events): their columns, in one batch
            cols = self._columns_of_records()
            self.kept: Any = self.events  # a list, or a dict of the kept records (below)
        else:  # every record the builder reads is a kept one: looked up at C speed, not through LazyEvents
            self.kept = cols.kept
        events = self.kept
        self.ts_ns, self.ts_ok = cols.ts_ns, cols.ts_ok
        self.x_src, self.x_dur, self.x_dur_ok = cols.x_src, cols.x_dur, cols.x_dur_ok
        self.x_name, self.x_key = cols.x_name, cols.x_key
        self.be_src, self.be_is_b, self.be_name, self.be_key = cols.be_src, cols.be_is_b, cols.be_name, cols.be_key
        self.names_raw, self.lane_keys = cols.names, cols.lane_keys
        self.flow_v2 = list(cols.bind)
        self.flows = cols.flows
        others, other_phs = cols.others, cols.other_phs
        try:
            groups = list(dict.fromkeys(other_phs)) if len(others) > _GROUP_MIN else None
        except TypeError:  # a list or an object as ph: take them one at a time
            groups = None
        if groups is None:
            picked = [(ph, [i]) for i, ph in zip(others, other_phs)]
        else:
            # One C-speed pass per distinct phase rather than a Python dispatch per event.
            picked = [(ph, list(compress(others, map(eq, other_phs, repeat(ph))))) for ph in groups]
            if sum(len(idx) for _, idx in picked) != len(others):  # NaN is not equal to itself
                picked = [(ph, [i]) for i, ph in zip(others, other_phs)]
        by_kind: dict[str, list[int]] = defaultdict(list)
        for ph, idx in picked:
            kind = _PHASE_KIND.get(ph) if type(ph) is str else None
            if kind is not None:
                by_kind[kind].extend(idx)
            elif ph is NOT_OBJECT_PH:
                self.not_objects += len(idx)
            elif type(ph) is str and ph in _SKIPPED_PHASES:
                self.skipped[ph] += len(idx)
            else:  # equal phases of different types (1, 1.0, True) share a group but not a text
                for i in idx:
                    ph_i = events[i].ph
                    self.unknown[text(ph_i) if ph_i is not None else "(missing)"] += 1
        # Each kind in file order, as one pass over the events would have listed them.
        get = events.__getitem__
        for i in sorted(by_kind["M"]):
            self._metadata(events[i])
        inst_src.extend(sorted(by_kind["i"]))
        instants.extend(map(get, inst_src))
        self.counter_src = sorted(by_kind["C"])
        ctr.extend(map(get, self.counter_src))
        asy.extend(sorted(by_kind["async"]))
        if self.not_objects:
            self.warnings.append(f"{self.not_objects} entries of traceEvents are not objects; skipped")
        for ph, n in sorted(self.unknown.items()):
            self.warnings.append(f"{n} events with unknown phase {ph!r}; skipped")
        for ph, n in sorted(self.skipped.items()):
            self.warnings.append(f"{n} events of phase {ph!r} (not drawn by this viewer); skipped")

    def _columns_of_records(self) -> Columns:
        """Records in memory as columns. Where float timestamps are epoch-scale (beyond EXACT_US) and the
        records were decoded from the file's bytes, they are decoded again with exact decimals first."""
        events = self.events
        source = self.raw.source
        exact = False
        if isinstance(source, FileSource) and epoch_floats([e.ts for e in events]):
            self.events = self.raw.events = events = decode_events_exact(source.buf)
            exact = True
        fill_tid_from_pid(events)
        return columns_of_records(events, exact)

    def _metadata(self, e: Event) -> None:
        name = e.name
        args = args_dict(e)
        pid, tid = hashable(e.pid), hashable(e.tid)
        if name == "process_name":
            self._set(self.proc_names, pid, text(args.get("name")), f"process_name of pid {pid}")
        elif name == "thread_name":
            self._set(self.thread_names, (pid, tid), text(args.get("name")), f"thread_name of {pid}/{tid}")
        elif name == "process_labels":
            self.proc_labels[pid] = text(args.get("labels"))
        elif name == "process_sort_index":
            v = args.get("sort_index")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.proc_sort[pid] = v
        elif name == "thread_sort_index":
            v = args.get("sort_index")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.thread_sort[(pid, tid)] = v

    def _set(self, table: dict[Any, str], key: Any, value: str, what: str) -> None:
        old = table.get(key)
        if old is not None and old != value:
            self.warnings.append(f"duplicate {what}: {old!r} then {value!r}; using the last")
        table[key] = value

    def _add_async_span(self, b: int, e: Event, dur_ns: int, tid: str) -> None:
        rec = _merge(self.kept[b], e, dur_ns / 1000.0)
        rec.tid = tid
        self.async_spans.append(rec)
        self.async_src.append(b)
        self.async_dur.append(dur_ns)
        self.overrides[b] = rec

    def _add_spans(self, at: NDArray[np.intp], b: NDArray[np.int64], e: NDArray[np.int64],
                   dur_ns: NDArray[np.int64]) -> None:
        """B/E spans: `at`, the B's place in the be_* columns; b and e, the B's and E's file indices."""
        self.span_b.append(b)
        self.span_e.append(e)
        self.span_dur.append(dur_ns)
        self.span_name.append(self.be_name[at])
        self.span_key.append(self.be_key[at])

    def _valid_by_time(self, idx: list[int]) -> list[int]:
        """The events among `idx` with a usable ts, by time (file order among equal times)."""
        v = np.asarray(idx, dtype=np.int64)
        v = v[self.ts_ok[v]]
        valid: list[int] = v[np.argsort(self.ts_ns[v], kind="stable")].tolist()
        return valid

    def pair_begin_end(self) -> None:
        """B/E per thread on a stack, as catapult does: an E closes the most recent open B.

        Vectorised on the B/E columns (a million B/E took 15 s one by one, and a million merged records
        1.4 GB): per thread, in time order, the stack's depth is
        the running sum of +1 per B and -1 per E floored at 0 (an E on an empty stack is skipped), which
        is that sum less its running minimum (when negative). A B pushed to depth L is then closed by the
        next E that pops from depth L on its thread: in each (thread, depth) group, in time order, B and
        E alternate, and each B pairs with the E right after it, if any."""
        ts = self.ts_ns
        ok = self.ts_ok[self.be_src]
        vpos = np.flatnonzero(ok)
        if len(vpos) < len(ok):
            self.warnings.append(f"{len(ok) - len(vpos)} B/E events without a valid ts; skipped")
        del ok
        vpos = vpos[np.argsort(ts[self.be_src[vpos]], kind="stable")]  # by time, file order among equal ones
        n = len(vpos)
        if not n:
            return
        v = self.be_src[vpos]
        is_b = self.be_is_b[vpos]
        # Each (cat, pid, tid) key's thread (pid, tid), numbered in order of first appearance.
        key_threads = pairs([k[1] for k in self.lane_keys], [k[2] for k in self.lane_keys])
        key_index = dict(zip(dict.fromkeys(key_threads), itertools.count()))
        thread_of_key = np.fromiter(map(key_index.__getitem__, key_threads), dtype=np.int32, count=len(key_threads))
        thread = thread_of_key[self.be_key[vpos]]
        del key_threads, thread_of_key
        o = np.argsort(thread, kind="stable")  # by thread, then time
        t_o = thread[o]
        del thread
        # Depths and segment numbers are below n: int32 halves the pairing's peak memory.
        new_seg = np.r_[False, t_o[1:] != t_o[:-1]]
        starts = np.flatnonzero(np.r_[True, new_seg[1:]])
        seg = np.cumsum(new_seg, dtype=np.int32)  # segment number per position
        del new_seg
        step = np.where(is_b[o], 1, -1).astype(np.int32)
        total = np.cumsum(step, dtype=np.int32)
        before = np.repeat(total[starts] - step[starts], np.diff(np.r_[starts, n]))
        walk = total - before  # the running sum within the thread
        del total, before, step
        big = 2 * n + 2
        shift = (len(starts) - seg).astype(np.int64)
        shift *= big
        low64 = np.minimum.accumulate(walk + shift)
        low64 -= shift
        del shift
        low = np.minimum(low64, 0).astype(np.int32)
        del low64
        depth = walk - low  # after each event
        del walk, low
        prev = np.empty_like(depth)  # before each event: the one before it on its thread, 0 at the first
        prev[1:] = depth[:-1]
        prev[starts] = 0
        e_pos = ~is_b[o]
        unmatched = e_pos & (prev <= 0)
        level = np.where(e_pos, prev, depth)
        del depth, prev
        n_unmatched = int(unmatched.sum())
        pos = np.flatnonzero(~unmatched)
        del unmatched
        # By (thread, level), in time order: one stable sort of a combined key (pos is in time order).
        grp_key = seg[pos].astype(np.int64)
        grp_key *= n + 1
        grp_key += level[pos]
        g = np.argsort(grp_key, kind="stable")
        del grp_key
        grp_pos = pos[g]
        del pos, g
        same = (seg[grp_pos][1:] == seg[grp_pos][:-1]) & (level[grp_pos][1:] == level[grp_pos][:-1])
        pair_at = np.flatnonzero(same & ~e_pos[grp_pos][:-1] & e_pos[grp_pos][1:])
        del same, level
        b_o, e_o = grp_pos[pair_at], grp_pos[pair_at + 1]
        del grp_pos, pair_at
        closed = np.zeros(n, bool)
        closed[b_o] = True
        by_e = np.argsort(o[e_o], kind="stable")  # in the order the E events come (time order)
        b_at, e_at = o[b_o[by_e]], o[e_o[by_e]]
        del b_o, e_o, by_e
        b_file, e_file = v[b_at], v[e_at]
        if len(b_file):
            self._add_spans(vpos[b_at], b_file, e_file, ts[e_file] - ts[b_file])
        del b_at, e_at, b_file, e_file
        if n_unmatched:
            self.warnings.append(f"{n_unmatched} E events without a matching B; skipped")
        open_pos = np.flatnonzero(is_b[o] & ~closed)
        if len(open_pos):
            threads = list(key_index)
            open_threads = unique(t_o[open_pos])
            # The B/E events' own latest ts per thread, at C speed; the X events and instants in _thread_ends.
            be_last = np.full(len(threads), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(be_last, t_o, ts[v[o]])
            last = self._thread_ends({threads[t] for t in open_threads.tolist()},
                                     {threads[t]: int(be_last[t]) for t in open_threads.tolist()})
            self.warnings.append(f"{len(open_pos)} B events never ended; each closed at its thread's last timestamp")
            # Per thread in order of first appearance, each in file order (the outer one first).
            at = o[open_pos]
            b_all = v[at]
            order = np.lexsort((b_all, t_o[open_pos]))
            at, b_all, t_all = at[order], b_all[order], t_o[open_pos][order]
            last_of = np.array([last.get(t, 0) for t in threads], dtype=np.int64)
            durs = np.maximum(last_of[t_all] - ts[b_all], 0)
            self._add_spans(vpos[at], b_all, np.full(len(b_all), -1, np.int64), durs)

    def _thread_ends(self, keys: set[tuple[Any, Any]],
                     be_last: dict[tuple[Any, Any], int]) -> dict[tuple[Any, Any], int]:
        """The last timestamp (ns) of each of these threads: the latest end of its X events and time of
        its B, E (`be_last`, already known) and thread instants, as catapult closes a B that never ended."""
        events, ok = self.kept, self.ts_ok
        x_ok = self.x_dur_ok & ok[self.x_src]
        x = self.x_src[x_ok]
        last: dict[tuple[Any, Any], int] = {}
        if len(x):  # the X events' latest end per (cat, pid, tid), then per thread
            key = self.x_key[x_ok]
            ends = np.full(len(self.lane_keys), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(ends, key, self.ts_ns[x] + self.x_dur[x_ok])
            present = np.zeros(len(self.lane_keys), bool)
            present[key] = True
            used = np.flatnonzero(present).tolist()
            thread = pairs([self.lane_keys[c][1] for c in used], [self.lane_keys[c][2] for c in used])
            for k, t in zip(thread, ends[used].tolist()):
                if k in keys and t > last.get(k, t - 1):
                    last[k] = t
        for k, t in be_last.items():
            if k in keys and t > last.get(k, t - 1):
                last[k] = t
        idx = [i for i in self.inst_src if ok[i] and events[i].s not in ("g", "p") and events[i].ph in ("i", "I")]
        end = self.ts_ns[idx].tolist()
        thread = pairs([events[i].pid for i in idx], [events[i].tid for i in idx])
        for k, t in zip(thread, end):
            if k in keys and t > last.get(k, t - 1):
                last[k] = t
        return last

    def pair_async(self) -> None:
        """Nestable async b/e, paired by (pid, cat, id, name); each name gets its own lane."""
        events, ts = self.kept, self.ts_ns
        open_: dict[tuple[Any, str, Any, str, bool], list[int]] = defaultdict(list)
        unmatched = 0
        for i in self._valid_by_time(self.async_events):
            e = events[i]
            ident = hashable(event_id(e))
            name = text(e.name)
            role, legacy = _ASYNC_ROLE[e.ph]
            key = (hashable(e.pid), text(e.cat), ident, name, legacy)
            tid = f"async: {name}"
            if role == "n":
                inst = msgspec.structs.replace(e, tid=tid)
                self.instants.append(inst)
                self.inst_src.append(i)
                self.overrides[i] = inst
            elif role == "b":
                open_[key].append(i)
            elif open_[key]:
                b = open_[key].pop()
                self._add_async_span(b, e, int(ts[i] - ts[b]), tid)
            else:
                unmatched += 1
        left = sum(len(v) for v in open_.values())
        if unmatched or left:
            self.warnings.append(f"{unmatched + left} async b/e (or S/F) events without a partner; skipped")

    def _release_text(self) -> None:
        """Without keep_text, the file's text goes (Trace.release_text) once no record is read from it."""
        if not self.keep_text and isinstance(self.raw.source, FileSource):
            self.raw.source.release()

    def build(self) -> Trace:
        self.split()
        if not self.flow_v2:  # (the rest reads kept records only; flow v2 reads spans' merged records)
            self._release_text()
        self.progress(0.6, "pairing B/E")
        self.pair_begin_end()
        self.pair_async()
        self.progress(0.65, "building columns")
        ts, dur, src, name_raw, key_raw, kind = self._columns()
        overrides = Overrides(self.events, self.span_b, self.span_e, self.span_dur, self.overrides)
        # The X and B/E events' columns are in the ones above now: free them before sorting and nesting
        # (and every event's ts, once the counters' own are taken).
        self.raw.columns = None
        self.counter_ts = self.ts_ns[self.counter_src].tolist()
        self.counter_ok = self.ts_ok[self.counter_src].tolist()
        self.ts_ns, self.ts_ok = np.zeros(0, np.int64), np.zeros(0, bool)
        self.x_src = self.x_dur = self.be_src = np.zeros(0, np.int64)
        self.x_name = self.x_key = self.be_name = self.be_key = np.zeros(0, np.int32)
        self.x_dur_ok = self.be_is_b = np.zeros(0, bool)
        self.progress(0.8, "sorting lanes")
        names: dict[str, int] = {}
        cats: dict[str, int] = {}
        # Only the names and keys of events drawn (not those of E events, or of events with a bad ts).
        raw_names, name_raw = _used(self.names_raw, name_raw)
        self.names_raw = []
        if self.names_distinct and (isinstance(raw_names, Names) or set(map(type, raw_names)) <= {str}):
            # Distinct strings already (a table's keys): the names as they are, without a dict of a
            # million entries built to find that out.
            name_list, name_id = raw_names, name_raw
        else:
            name_id = _intern(raw_names, names)[name_raw]
            name_list = list(names)
            names.clear()
        del raw_names, name_raw
        lane_keys, key_raw = _used(self.lane_keys, key_raw)
        cat_id = _intern([k[0] for k in lane_keys], cats)[key_raw]
        lanes, lane_of_key = self._lanes([(k[1], k[2]) for k in lane_keys])
        lane_id = lane_of_key[key_raw]
        del key_raw, lane_keys
        # File order breaks ties (catapult's rule): of slices with the same start and end the first in
        # the file is the parent, even where B/E pairs were merged in the order they closed.
        neg_dur = -dur
        order = np.lexsort((src, kind, neg_dur, ts, lane_id))
        del neg_dur
        # One column at a time, each old one freed as its sorted copy replaces it.
        ts = ts[order]
        dur = dur[order]
        name_id = name_id[order]
        cat_id = cat_id[order]
        lane_id = lane_id[order]
        kind = kind[order]
        src = src[order]
        del order
        bounds = np.searchsorted(lane_id, np.arange(len(lanes) + 1))
        for li, lane in enumerate(lanes):
            lane.start, lane.stop = int(bounds[li]), int(bounds[li + 1])
        self.progress(0.85, "nesting")
        depth, parent = nest(ts, dur, kind, lanes)
        for lane in lanes:
            lane.rows = int(depth[lane.start : lane.stop].max()) + 1 if lane.stop > lane.start else 1
        self_ns = self_time(dur, parent)
        source = self.raw.source
        assert source is not None  # RawTrace.__post_init__ sets it
        trace = Trace(
            path=self.path, meta=self.raw.meta, warnings=self.warnings,
            names=name_list, cats=list(cats), ts=ts, dur=dur, name_id=name_id, cat_id=cat_id,
            lane=lane_id, depth=depth, parent=parent, self_ns=self_ns, kind=kind, events=self.events, src=src,
            overrides=overrides, source=source, lanes=lanes, counters=[],
        )
        trace.flows = bind_flows_v2(trace, self.flow_v2, self.warnings)
        self._release_text()
        if self.defer_flows:
            trace.pending_flows = self.flows
        else:
            self.progress(0.92, "binding flows")
            trace.flows = join_flows(trace.flows, bind_flows(trace, self.flows, self.warnings))
        trace.counters = self._counters()
        trace.home = _home(trace, self.warnings)
        if not len(trace) and not trace.counters:
            self.warnings.append("the trace has no events to show")
        self.progress(1.0, "done")
        return trace

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """ts, dur (ns), file index, name id (into names_raw), (cat, pid, tid) id (into lane_keys) and
        kind of every drawable event: the X events, the B/E spans, then the async spans and instants
        (records, whose names and keys are added to names_raw and lane_keys here)."""
        asyncs, instants = self.async_spans, self.instants
        recs = asyncs + instants  # records of everything but the X events and B/E spans
        n_x, n_sp, n_as, n_inst = len(self.x_src), sum(map(len, self.span_b)), len(asyncs), len(instants)
        if n_sp or recs:
            src = np.concatenate([self.x_src, *self.span_b, np.array(self.async_src + self.inst_src, dtype=np.int64)])
            dur = np.concatenate([self.x_dur, *self.span_dur, np.array(self.async_dur, dtype=np.int64),
                                  np.zeros(n_inst, np.int64)])
            dur_ok = np.concatenate([self.x_dur_ok, np.ones(n_sp + n_as + n_inst, bool)])
        else:  # X events only: their columns as they are (no second copy of each)
            src, dur, dur_ok = self.x_src, self.x_dur, self.x_dur_ok
        ts = self.ts_ns[src]
        kind = np.concatenate([np.full(n_x + n_sp + n_as, KIND_SPAN, np.int8), np.full(n_inst, KIND_INSTANT, np.int8)])
        bad_ts = ~self.ts_ok[src]
        if bad_ts.any():
            self.warnings.append(f"{int(bad_ts.sum())} events with a missing, non-numeric or out-of-range ts; skipped")
        bad_dur = ~dur_ok | (dur < 0)
        bad_dur &= ~bad_ts
        if bad_dur.any():
            self.warnings.append(
                f"{int(bad_dur.sum())} X events with a missing, negative, NaN or huge dur; drawn as instants"
            )
            dur[bad_dur] = 0
        keep = ~bad_ts
        del bad_ts, bad_dur, dur_ok
        name_raw, key_raw = self._record_ids(recs, n_as)
        if n_sp or recs:
            name_raw = np.concatenate([self.x_name, *self.span_name, name_raw])
            key_raw = np.concatenate([self.x_key, *self.span_key, key_raw])
        else:
            name_raw, key_raw = self.x_name, self.x_key
        self.span_name, self.span_key = [], []
        if keep.all():
            ts_ns, dur_ns = ts, dur
        else:
            ts_ns, dur_ns = ts[keep], dur[keep]
            name_raw, key_raw = name_raw[keep], key_raw[keep]
            src, kind = src[keep], kind[keep]
        del ts, dur, keep
        end_over = ts_ns + dur_ns
        if (np.abs(end_over) >= 2**62).any():
            dur_ns = np.where(np.abs(end_over) >= 2**62, 0, dur_ns)
        del end_over
        return ts_ns, dur_ns, src, name_raw, key_raw, kind

    def _record_ids(self, recs: list[Event], n_async: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Each record's name and (cat, pid, tid) as ids into names_raw and lane_keys, which grow by
        the new ones: instants of global or process scope go on their own lanes."""
        keys: list[LaneKey] = [(e.cat, e.pid, e.tid) for e in recs]
        for j in range(n_async, len(recs)):
            e = recs[j]
            if e.ph in ("i", "I", "R"):
                scope = e.s
                if scope == "g" or e.ph == "R":
                    keys[j] = (e.cat, "", "global instants")
                elif scope == "p":
                    keys[j] = (e.cat, e.pid, "process instants")
        # Tables of their own, numbered after the columns' ones (a name both in a column and here gets
        # two ids, which _intern maps onto one text).
        name_table: dict[Any, int] = {}
        name_ids = intern_values([e.name for e in recs], name_table)
        name_ids += len(self.names_raw)
        if name_table:  # (no longer distinct from one another: see _intern)
            self.names_distinct = False
            self.names_raw = [*self.names_raw, *name_table]
        key_table = dict(zip(self.lane_keys, itertools.count()))
        key_ids = intern_lane_keys(keys, key_table)
        self.lane_keys = list(key_table)
        return name_ids, key_ids

    def _lanes(self, laneky: list[tuple[Any, Any]]) -> tuple[list[Lane], np.ndarray]:
        index = dict(zip(dict.fromkeys(laneky), itertools.count()))
        ids = np.fromiter(map(index.__getitem__, laneky), dtype=np.int32, count=len(laneky))
        keys = list(index)
        order = sorted(range(len(keys)), key=lambda i: self._lane_sort(keys[i]))
        remap = np.empty(len(keys), dtype=np.int32)
        remap[order] = np.arange(len(keys), dtype=np.int32)
        lanes = []
        for i in order:
            pid, tid = keys[i]
            pname = self.proc_names.get(pid)
            process = f"{pname} ({pid})" if pname else (f"pid {pid}" if pid != "" else "")
            if self.proc_labels.get(pid):
                process += f" · {self.proc_labels[pid]}"
            tname = self.thread_names.get((pid, tid))
            name = tname.strip() if tname else (tid if isinstance(tid, str) else f"tid {tid}")
            lanes.append(Lane(pid=pid, tid=tid, name=name, process=process, sort_key=self._lane_sort(keys[i])))
        lane_id = remap[ids] if len(ids) else np.zeros(0, np.int32)
        return lanes, lane_id.astype(np.int32)

    def _lane_sort(self, key: tuple[Any, Any]) -> _LaneSortKey:
        pid, tid = key
        return (
            self.proc_sort.get(pid, 0), _order(pid), self.thread_sort.get((pid, tid), 0), _order(tid),
        )

    def _counters(self) -> list[CounterTrack]:
        points: dict[tuple[Any, str], dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        bad = 0
        for t_ns, t_ok, e in zip(self.counter_ts, self.counter_ok, self.counters):
            args = args_value(e)
            if not isinstance(args, dict) or not t_ok:
                bad += 1
                continue
            ts = t_ns  # exact ns (an int): a float64 loses them at epoch scale, as for every other event
            key = (hashable(e.pid), text(e.name) + (f" {e.id}" if e.id is not UNSET else ""))
            for series, v in args.items():
                value = number(v)  # numbers and numeric strings, as Perfetto reads them
                if value is not None:
                    points[key][text(series)].append((ts, value))
                else:
                    bad += 1
        if bad:
            self.warnings.append(f"{bad} counter samples without a numeric ts/value; skipped")
        tracks = []
        for (pid, name), series in sorted(points.items(), key=lambda kv: (_order(kv[0][0]), kv[0][1])):
            track = CounterTrack(pid=pid, name=name)
            for sname, pts in series.items():
                pts.sort()
                track.series[sname] = (np.fromiter((p[0] for p in pts), np.int64, len(pts)),
                                       np.fromiter((p[1] for p in pts), np.float64, len(pts)))
            tracks.append(track)
        return tracks


def _used(table: _Table, ids: NDArray[np.int32]) -> tuple[_Table, NDArray[np.int32]]:
    """The entries of `table` that `ids` refer to, in table order, and the ids renumbered into them."""
    present = np.bincount(ids, minlength=len(table)) > 0
    if present.all():
        return table, ids
    used = np.flatnonzero(present)
    renum = np.zeros(len(table), np.int32)
    renum[used] = np.arange(len(used), dtype=np.int32)
    return (table.take(used) if isinstance(table, Names) else [table[k] for k in used.tolist()]), renum[ids]


def _cat(parts: list[NDArray[Any]], dtype: Any) -> NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _sorted_cat(parts: list[NDArray[np.int64]], order: NDArray[np.intp] | None) -> NDArray[np.int64]:
    """The pieces joined and put in `order` (None: as they are); `parts` is emptied."""
    joined = _cat(parts, np.int64)
    parts.clear()
    return joined if order is None else joined[order]


def _order(v: Any) -> _OrderKey:
    """Sort ints numerically and everything else after them, by text: pids can be both."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, text(v))


def _merge(b: Event, e: Event | None, dur_us: float) -> Event:
    """A B/E (or b/e) pair as one X record; E's args are merged in, as catapult does."""
    changes: dict[str, Any] = {"ph": "X", "dur": dur_us}
    e_args = args_value(e) if e is not None else None
    if isinstance(e_args, dict):
        b_args = args_value(b)
        args = dict(b_args) if isinstance(b_args, dict) else {}
        args.update(e_args)
        changes["args"] = args
    return msgspec.structs.replace(b, **changes)


def _home(trace: Trace, warnings: list[str]) -> tuple[int, int]:
    """The range `0` resets to: everything, unless a few events lie absurdly far from the rest."""
    if not len(trace):
        return (0, 1)
    ts, end = trace.ts, trace.ts + trace.dur
    lo, hi = int(ts.min()), int(end.max())
    if len(ts) >= 20:
        p1, p99 = np.percentile(ts, [1, 99])
        width = max(p99 - p1, 1000.0)
        far = (ts > p99 + 1000 * width) | (ts < p1 - 1000 * width)
        if far.any():
            inside = ~far
            lo, hi = int(ts[inside].min()), int(end[inside].max())
            warnings.append(
                f"{int(far.sum())} events lie far outside the rest of the trace; the home view (0) leaves them out"
            )
    return (lo, max(hi, lo + 1))


def build_trace(raw: RawTrace, path: str = "", progress: Progress = _noop, defer_flows: bool = False,
                keep_text: bool = True) -> Trace:
    return _Builder(raw, path, progress, defer_flows, keep_text).build()


@contextmanager
def _gc_paused(freeze: bool = False) -> Iterator[None]:
    """The cyclic GC would rescan millions of fresh objects over and over (tripling the load time).

    With freeze, everything alive is moved out of the GC's sight before it is enabled again: the
    first collection after a pause would otherwise scan every object allocated during it (a second
    for a million dicts).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


def load_trace(path: str | list[str], progress: Progress = _noop, defer_flows: bool = False,
               options: InputOptions = InputOptions(), keep_text: bool = True) -> Trace:
    """Open a trace file; raises loader.TraceError (one-line message) only when nothing is readable.

    A directory, or a list of several files, is a distributed job: its ranks' traces merged on one clock
    (viewer/job.py). The result is frozen out of the GC's sight afterwards. With defer_flows, flows are
    bound later by `trace.bind_pending_flows()` (the app does it after the first paint). Without keep_text,
    the file's text is let go as soon as the build is done reading records from it (see Trace.release_text:
    for a caller that reads no event's own fields; a third less memory at the peak of a large file).
    """
    paths = [path] if isinstance(path, str) else list(path)
    if len(paths) == 1 and not os.path.isdir(paths[0]):
        with _gc_paused(freeze=True):
            return build_trace(load_raw(paths[0], progress, options), paths[0], progress, defer_flows, keep_text)
    from .job import load_job

    with _gc_paused(freeze=True):
        trace = build_trace(load_job(paths, progress), os.pathsep.join(paths), progress, defer_flows, keep_text)
    return trace


def from_events(events: list[Any], meta: dict[str, Any] | None = None) -> Trace:
    """Build from in-memory events (tests, synthetic benchmarks)."""
    return build_trace(raw_trace(list(events), dict(meta or {}), []), "<memory>")
