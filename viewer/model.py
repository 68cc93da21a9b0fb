"""A trace as columnar NumPy arrays, sorted by (lane, start), so every view is a vectorised query.

Why columns rather than objects: a 1M-event trace must load in seconds and redraw in milliseconds;
one Python object per event is too slow to sort, bucket and aggregate. The raw event dicts are kept
(in the same order) only so the details pane can show every field of the one event selected.

Times are int64 nanoseconds. Events of a lane are contiguous (`lane_start[l]:lane_start[l+1]`) and
sorted by (ts, -dur), which makes nesting depth, parents and self time computable with searchsorted.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .convert import TS_LIMIT, hashable, num_array, pairs, text
from .flows import bind_flows
from .loader import Progress, RawTrace, _noop, load_raw
from .nesting import nest, self_time


KIND_SPAN = 0
KIND_INSTANT = 1

_NOT_OBJECT = object()
_SKIPPED_PHASES = {"P", "O", "N", "D", "S", "T", "F", "p", "(", ")", "V", "v", "c"}


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
    sort_key: tuple = ()

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
    names: list[str]
    cats: list[str]
    ts: np.ndarray
    dur: np.ndarray
    name_id: np.ndarray
    cat_id: np.ndarray
    lane: np.ndarray
    depth: np.ndarray
    parent: np.ndarray
    self_ns: np.ndarray
    kind: np.ndarray
    raw: list[Any]
    lanes: list[Lane]
    counters: list[CounterTrack]
    home: tuple[int, int] = (0, 1)
    # (source event, destination event, category) per flow, replaced in one assignment so that a
    # reader on the UI thread never sees a half-bound state; see bind_pending_flows.
    flows: tuple[np.ndarray, np.ndarray, list[str]] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64), []))
    pending_flows: list[dict] | None = None

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
            self.flows = bind_flows(self, pending, self.warnings)
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
        return self.names[self.name_id[i]]

    def cat_of(self, i: int) -> str:
        return self.cats[self.cat_id[i]]

    def args_of(self, i: int) -> dict:
        ev = self.raw[i]
        args = ev.get("args") if isinstance(ev, dict) else None
        return args if isinstance(args, dict) else {}

    def parents(self, i: int) -> list[int]:
        chain = []
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

    def descendants(self, i: int) -> np.ndarray:
        """Events nested under i: same lane, deeper, starting within it (a range by sort order)."""
        lane = self.lanes[int(self.lane[i])]
        end = self.ts[i] + self.dur[i]
        hi = lane.start + int(np.searchsorted(self.ts[lane.start : lane.stop], end, "right"))
        idx = np.arange(i + 1, hi)
        return idx[(self.depth[idx] > self.depth[i]) & (self.ts[idx] + self.dur[idx] <= end)]

    def launched(self, i: int) -> list[int]:
        """What a CPU op started elsewhere: flow targets of it and of everything nested in it."""
        srcs = np.concatenate([[i], self.descendants(i)])
        src, dst, _ = self.flows
        return sorted({int(x) for x in dst[np.isin(src, srcs)]} - {i})


def _intern(values: list[Any], table: dict[str, int]) -> np.ndarray:
    """Strings to ids with dict/map built-ins (C speed); odd values (None, numbers, lists) as text."""
    try:
        first = dict(zip(dict.fromkeys(values), itertools.count()))
    except TypeError:
        values = [v if type(v) is str else text(v) for v in values]
        first = dict(zip(dict.fromkeys(values), itertools.count()))
    ids = np.fromiter(map(first.__getitem__, values), dtype=np.int32, count=len(values))
    # Distinct raw values can share a text (5 and "5"): remap onto one table entry per text.
    remap = np.array([table.setdefault(v if type(v) is str else text(v), len(table)) for v in first],
                     dtype=np.int32)
    return remap[ids] if len(ids) else ids


class _Builder:
    """One pass over the raw events, splitting them by phase; then vectorised assembly."""

    def __init__(self, raw: RawTrace, path: str, progress: Progress, defer_flows: bool = False):
        self.defer_flows = defer_flows
        self.raw = raw
        self.path = path
        self.progress = progress
        self.warnings = raw.warnings
        self.spans: list[dict] = []  # X events and synthesised B/E, b/e pairs
        self.instants: list[dict] = []
        self.lane_of_instant: list[tuple] = []
        self.begins_ends: list[dict] = []
        self.async_events: list[dict] = []
        self.counters: list[dict] = []
        self.flows: list[dict] = []
        self.proc_names: dict[Any, str] = {}
        self.thread_names: dict[tuple, str] = {}
        self.proc_sort: dict[Any, float] = {}
        self.proc_labels: dict[Any, str] = {}
        self.thread_sort: dict[tuple, float] = {}
        self.unknown: Counter = Counter()
        self.skipped: Counter = Counter()
        self.not_objects = 0

    def split(self) -> None:
        spans, instants, be, asy, ctr, flows = (
            self.spans, self.instants, self.begins_ends, self.async_events, self.counters, self.flows
        )
        events = self.raw.events
        phs = [e.get("ph") if type(e) is dict else _NOT_OBJECT for e in events]
        # X dominates real traces: one C-speed filter for it, a Python dispatch for the rest.
        spans.extend([e for e, ph in zip(events, phs) if ph == "X"])
        for e, ph in zip(events, phs):
            if ph == "X":
                continue
            if ph is _NOT_OBJECT:
                self.not_objects += 1
            elif ph == "B" or ph == "E":
                be.append(e)
            elif ph == "i" or ph == "I" or ph == "R":
                instants.append(e)
            elif ph == "M":
                self._metadata(e)
            elif ph == "s" or ph == "t" or ph == "f":
                flows.append(e)
            elif ph == "C":
                ctr.append(e)
            elif ph == "b" or ph == "e" or ph == "n":
                asy.append(e)
            elif ph in _SKIPPED_PHASES:
                self.skipped[ph] += 1
            else:
                self.unknown[text(ph) if ph is not None else "(missing)"] += 1
        if self.not_objects:
            self.warnings.append(f"{self.not_objects} entries of traceEvents are not objects; skipped")
        for ph, n in sorted(self.unknown.items()):
            self.warnings.append(f"{n} events with unknown phase {ph!r}; skipped")
        for ph, n in sorted(self.skipped.items()):
            self.warnings.append(f"{n} events of phase {ph!r} (not drawn by this viewer); skipped")

    def _metadata(self, e: dict) -> None:
        name = e.get("name")
        args = e.get("args") if isinstance(e.get("args"), dict) else {}
        pid, tid = hashable(e.get("pid")), hashable(e.get("tid"))
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

    def _set(self, table: dict, key: Any, value: str, what: str) -> None:
        old = table.get(key)
        if old is not None and old != value:
            self.warnings.append(f"duplicate {what}: {old!r} then {value!r}; using the last")
        table[key] = value

    def pair_begin_end(self) -> None:
        """B/E per thread on a stack, as catapult does: an E closes the most recent open B."""
        stacks: dict[tuple, list[dict]] = defaultdict(list)
        unmatched_e = 0
        valid = [e for e in self.begins_ends if _finite(e.get("ts"))]
        if len(valid) < len(self.begins_ends):
            self.warnings.append(f"{len(self.begins_ends) - len(valid)} B/E events without a valid ts; skipped")
        valid.sort(key=lambda e: float(e["ts"]))
        for e in valid:
            key = (hashable(e.get("pid")), hashable(e.get("tid")))
            if e["ph"] == "B":
                stacks[key].append(e)
                continue
            stack = stacks[key]
            if not stack:
                unmatched_e += 1
                continue
            b = stack.pop()
            self.spans.append(_merge(b, e, float(e["ts"]) - float(b["ts"])))
        open_b = [b for s in stacks.values() for b in s]
        if unmatched_e:
            self.warnings.append(f"{unmatched_e} E events without a matching B; skipped")
        if open_b:
            last = max((float(e["ts"]) for e in valid), default=0.0)
            self.warnings.append(f"{len(open_b)} B events never ended; drawn up to the end of the trace")
            for b in open_b:
                self.spans.append(_merge(b, None, last - float(b["ts"])))

    def pair_async(self) -> None:
        """Nestable async b/e, paired by (pid, cat, id, name); each name gets its own lane."""
        open_: dict[tuple, list[dict]] = defaultdict(list)
        unmatched = 0
        valid = [e for e in self.async_events if _finite(e.get("ts"))]
        valid.sort(key=lambda e: float(e["ts"]))
        for e in valid:
            ident = hashable(e.get("id", e.get("id2")))
            name = text(e.get("name"))
            key = (hashable(e.get("pid")), text(e.get("cat")), ident, name)
            tid = f"async: {name}"
            if e["ph"] == "n":
                inst = dict(e, tid=tid)
                self.instants.append(inst)
            elif e["ph"] == "b":
                open_[key].append(e)
            elif open_[key]:
                b = open_[key].pop()
                span = _merge(b, e, float(e["ts"]) - float(b["ts"]))
                span["tid"] = tid
                self.spans.append(span)
            else:
                unmatched += 1
        left = sum(len(v) for v in open_.values())
        if unmatched or left:
            self.warnings.append(f"{unmatched + left} async b/e events without a partner; skipped")

    def build(self) -> Trace:
        self.split()
        self.progress(0.6, "pairing B/E")
        self.pair_begin_end()
        self.pair_async()
        self.progress(0.65, "building columns")
        ts, dur, raw, laneky, kind = self._columns()
        self.progress(0.8, "sorting lanes")
        names: dict[str, int] = {}
        cats: dict[str, int] = {}
        name_id = _intern(self.c_name, names)
        cat_id = _intern(self.c_cat, cats)
        del self.c_name, self.c_cat
        lanes, lane_id = self._lanes(laneky)
        order = np.lexsort((kind, -dur, ts, lane_id))  # lexsort is stable: file order breaks ties
        ts, dur, name_id, cat_id, lane_id, kind = (a[order] for a in (ts, dur, name_id, cat_id, lane_id, kind))
        raw = [raw[i] for i in order.tolist()]
        bounds = np.searchsorted(lane_id, np.arange(len(lanes) + 1))
        for li, lane in enumerate(lanes):
            lane.start, lane.stop = int(bounds[li]), int(bounds[li + 1])
        self.progress(0.85, "nesting")
        depth, parent = nest(ts, dur, kind, lanes)
        for lane in lanes:
            lane.rows = int(depth[lane.start : lane.stop].max()) + 1 if lane.stop > lane.start else 1
        self_ns = self_time(dur, parent)
        trace = Trace(
            path=self.path, meta=self.raw.meta, warnings=self.warnings,
            names=list(names), cats=list(cats), ts=ts, dur=dur, name_id=name_id, cat_id=cat_id,
            lane=lane_id, depth=depth, parent=parent, self_ns=self_ns, kind=kind, raw=raw, lanes=lanes,
            counters=[],
        )
        if self.defer_flows:
            trace.pending_flows = self.flows
        else:
            self.progress(0.92, "binding flows")
            trace.flows = bind_flows(trace, self.flows, self.warnings)
        trace.counters = self._counters()
        trace.home = _home(trace, self.warnings)
        if not len(trace) and not trace.counters:
            self.warnings.append("the trace has no events to show")
        self.progress(1.0, "done")
        return trace

    def _columns(self):
        spans, instants = self.spans, self.instants
        raw = spans + instants
        # One pass reading six fields costs about a third of six passes reading one.
        rows = [(e.get("ts"), e.get("dur", 0.0), e.get("name"), e.get("cat"), e.get("pid"), e.get("tid")) for e in raw]
        c_ts, c_dur, c_name, c_cat, c_pid, c_tid = (list(c) for c in zip(*rows)) if rows else ([],) * 6
        del rows
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308 µs becomes inf, then a warning
            ts = num_array(c_ts) * 1000.0
            dur = num_array(c_dur[: len(spans)]) * 1000.0
        dur = np.concatenate([dur, np.zeros(len(instants))])
        kind = np.concatenate([np.full(len(spans), KIND_SPAN, np.int8), np.full(len(instants), KIND_INSTANT, np.int8)])
        bad_ts = ~np.isfinite(ts) | (np.abs(ts) >= TS_LIMIT)
        if bad_ts.any():
            self.warnings.append(f"{int(bad_ts.sum())} events with a missing, non-numeric or out-of-range ts; skipped")
        bad_dur = ~np.isfinite(dur) | (dur < 0) | (dur >= TS_LIMIT)
        bad_dur &= ~bad_ts
        if bad_dur.any():
            self.warnings.append(
                f"{int(bad_dur.sum())} X events with a missing, negative, NaN or huge dur; drawn as instants"
            )
            dur[bad_dur] = 0.0
        keep = ~bad_ts
        ts_ns = np.rint(ts[keep]).astype(np.int64)
        dur_ns = np.rint(dur[keep]).astype(np.int64)
        end_over = ts_ns + dur_ns
        if (np.abs(end_over) >= 2**62).any():
            dur_ns = np.where(np.abs(end_over) >= 2**62, 0, dur_ns)
        if not keep.all():
            kl = keep.tolist()
            raw, c_name, c_cat, c_pid, c_tid = ([x for x, k in zip(col, kl) if k]
                                                for col in (raw, c_name, c_cat, c_pid, c_tid))
        kind = kind[keep]
        self.c_name, self.c_cat = c_name, c_cat
        laneky = pairs(c_pid, c_tid)
        for j in np.flatnonzero(kind == KIND_INSTANT).tolist():
            e = raw[j]
            if e.get("ph") in ("i", "I", "R"):
                scope = e.get("s")
                if scope == "g" or e.get("ph") == "R":
                    laneky[j] = ("", "global instants")
                elif scope == "p":
                    laneky[j] = (laneky[j][0], "process instants")
        return ts_ns, dur_ns, raw, laneky, kind

    def _lanes(self, laneky: list[tuple]) -> tuple[list[Lane], np.ndarray]:
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

    def _lane_sort(self, key: tuple) -> tuple:
        pid, tid = key
        return (
            self.proc_sort.get(pid, 0), _order(pid), self.thread_sort.get((pid, tid), 0), _order(tid),
        )

    def _counters(self) -> list[CounterTrack]:
        points: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        bad = 0
        for e in self.counters:
            args, ts = e.get("args"), e.get("ts")
            if not isinstance(args, dict) or not _finite(ts):
                bad += 1
                continue
            key = (hashable(e.get("pid")), text(e.get("name")) + (f" {e['id']}" if "id" in e else ""))
            for series, v in args.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    points[key][text(series)].append((float(ts) * 1000.0, float(v)))
                else:
                    bad += 1
        if bad:
            self.warnings.append(f"{bad} counter samples without a numeric ts/value; skipped")
        tracks = []
        for (pid, name), series in sorted(points.items(), key=lambda kv: (_order(kv[0][0]), kv[0][1])):
            track = CounterTrack(pid=pid, name=name)
            for sname, pts in series.items():
                pts.sort()
                arr = np.array(pts, dtype=np.float64)
                track.series[sname] = (np.rint(arr[:, 0]).astype(np.int64), arr[:, 1])
            tracks.append(track)
        return tracks


def _order(v: Any) -> tuple:
    """Sort ints numerically and everything else after them, by text: pids can be both."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, text(v))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < TS_LIMIT / 1000.0


def _merge(b: dict, e: dict | None, dur_us: float) -> dict:
    """A B/E (or b/e) pair as one X event; E's args are merged in, as catapult does."""
    out = dict(b)
    out["ph"] = "X"
    out["dur"] = dur_us
    if e is not None and isinstance(e.get("args"), dict):
        args = dict(b.get("args") or {}) if isinstance(b.get("args"), dict) else {}
        args.update(e["args"])
        out["args"] = args
    return out


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


def build_trace(raw: RawTrace, path: str = "", progress: Progress = _noop, defer_flows: bool = False) -> Trace:
    return _Builder(raw, path, progress, defer_flows).build()


@contextmanager
def _gc_paused():
    """The cyclic GC would rescan millions of fresh dicts over and over (tripling the load time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_trace(path: str, progress: Progress = _noop, defer_flows: bool = False) -> Trace:
    """Open a trace file; raises loader.TraceError (one-line message) only when nothing is readable.

    The result is frozen out of the GC's sight afterwards. With defer_flows, flows are bound later by
    `trace.bind_pending_flows()` (the app does it after the first paint).
    """
    with _gc_paused():
        trace = build_trace(load_raw(path, progress), path, progress, defer_flows)
    gc.freeze()
    return trace


def from_events(events: list[Any], meta: dict | None = None) -> Trace:
    """Build from in-memory events (tests, synthetic benchmarks)."""
    return build_trace(RawTrace(list(events), dict(meta or {}), []), "<memory>")
