"""Memory over time: Kineto's `[memory]` instant events and `ph: C` counter tracks, per device.

What is drawn, and why:

- One plot per distinct series. A `[memory]` device gives `allocated`, and `reserved` only where it
  differs (our CPU traces write the same number twice; torch's CPU traces write 0 for reserved); a
  counter track that repeats a `[memory]` series sample for sample (our `Memory (cpu)` counter) is
  not drawn again.
- A zero baseline (the y axis starts at 0, or below it for a counter that goes negative) and a time
  axis with the timeline's ticks (`timeline.ruler_ticks`: distinct labels in one unit).
- The memory alive at profile start: the first sample's `Total Allocated` less its own `Bytes` is what
  was allocated before profiling began (parameters, optimizer state). It is drawn as a band (░) under
  the bars and named in the plot's legend line.
- Each series is a step function (a sample holds until the next one); the plot shows, per terminal
  column, the highest value in its time bucket, so a short spike is never averaged away.
- The peak: the `[memory]` event at the peak, the op enclosing it on its thread, that op's call path
  and its Python stack (the `Call stack` arg, or the enclosing `python_function` events), in the
  details below the plots and in `python -m viewer summary TRACE --memory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from safeio import literal

from .model import KIND_SPAN, Trace
from .text import fmt_bytes, fmt_ns

_DEVICE_TYPES = {0: "CPU", 1: "CUDA"}
_BLOCKS = " ▁▂▃▄▅▆▇█"
_BAND = "░"  # a cell wholly under the alive-at-start line
PLOT_ROWS = 6
AXIS = 11  # the y axis' label width; the plot starts after it and its "┤"
# Header, legend, the plot rows, the zero axis, the tick labels, a blank line.
BLOCK = PLOT_ROWS + 5
_BAR = Style(color="#4fa3ff")
_BASE = Style(color="#8a8a8a")
_AXIS = Style(color="#a0a0a0")
_PEAK = Style(color="#ff4040", bold=True)
# Stack frames listed at most in the details.
MAX_FRAMES = 30


@dataclass
class Peak:
    """What was running when a series peaked."""

    event: int = -1  # the [memory] event at the peak (-1: a counter sample, no event)
    op: int = -1  # the innermost span enclosing it on its thread
    path: list[str] = field(default_factory=list)  # the op and the spans around it, outermost first
    stack: list[str] = field(default_factory=list)  # its Python stack, innermost frame first
    stack_from: str = ""  # "Call stack" or "python_function"


@dataclass
class Series:
    title: str
    ts: np.ndarray
    values: np.ndarray
    is_bytes: bool
    peak_index: int
    peak_op: str
    device: str = ""
    kind: str = "counter"  # "allocated", "reserved" or "counter"
    alive_at_start: float | None = None  # bytes alive when profiling began (allocated series only)
    notes: list[str] = field(default_factory=list)
    peak: Peak = field(default_factory=Peak)

    @property
    def peak_value(self) -> float:
        return float(self.values[self.peak_index])

    @property
    def lowest(self) -> float:
        """The plot's baseline: 0, or the lowest value when a counter goes below it."""
        return min(0.0, float(np.nanmin(self.values)))


def _innermost_span(trace: Trace, i: int) -> int:
    for p in [i, *trace.parents(i)]:
        if trace.kind[p] == KIND_SPAN:
            return p
    return -1


def _peak(trace: Trace, event: int) -> Peak:
    """The op around a [memory] event, its call path and its Python stack."""
    op = _innermost_span(trace, event)
    if op < 0:
        return Peak(event=event)
    chain = [op, *trace.parents(op)]
    spans = [i for i in chain if trace.kind[i] == KIND_SPAN]
    py = [i for i in spans if trace.cat_of(i) == "python_function"]
    ops = [i for i in spans if trace.cat_of(i) != "python_function"]
    if ops:
        op = ops[0]
    path = [trace.name_of(i) for i in reversed(ops)]
    stack: list[str] = []
    stack_from = ""
    for i in ops:
        cs = trace.args_of(i).get("Call stack")
        if isinstance(cs, str) and cs:
            stack, stack_from = [f for f in cs.split(";") if f], "Call stack"
            break
    if not stack and py:
        stack, stack_from = [trace.name_of(i) for i in py], "python_function"
    return Peak(event, op, path, stack, stack_from)


def _op_at(trace: Trace, t: int, pid: Any = None, hint: int = -1) -> str:
    """The innermost span running at t: the parent chain of the hint event, else any lane of pid."""
    if hint >= 0:
        chain = [hint, *trace.parents(hint)]
        for i in chain:
            if trace.kind[i] == KIND_SPAN:
                return trace.name_of(i)
    best, best_depth = "", -1
    for lane in trace.lanes:
        if pid is not None and lane.pid != pid:
            continue
        ts = trace.ts[lane.start:lane.stop]
        j = int(np.searchsorted(ts, t, "right")) - 1
        while j >= 0:
            i = lane.start + j
            if trace.kind[i] == KIND_SPAN and trace.ts[i] + trace.dur[i] >= t:
                if trace.depth[i] > best_depth:
                    best, best_depth = trace.name_of(i), int(trace.depth[i])
                break
            p = int(trace.parent[i])
            j = p - lane.start if p >= 0 else -1
    return best


def _device(a: dict[Any, Any]) -> str:
    dt, did = a.get("Device Type"), a.get("Device Id")
    # Any JSON value may stand here (a list is unhashable): look up only what can be a key.
    known = _DEVICE_TYPES.get(dt) if type(dt) is int else None
    return (known or f"device type {dt}") + (f":{did}" if dt != 0 and did is not None else "")


def memory_samples(trace: Trace) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per device: the [memory] events' (ts, Total Allocated, Total Reserved, Bytes, event index), by
    time; a value that is not a finite number is NaN (an event without a numeric total is left out)."""
    mem_id = trace.names.index("[memory]") if "[memory]" in trace.names else -1
    if mem_id < 0:
        return {}
    groups: dict[str, list[tuple[int, float, float, float, int]]] = {}
    for i in np.flatnonzero(trace.name_id == mem_id).tolist():
        a = trace.args_of(i)
        alloc = _number(a.get("Total Allocated"))
        if np.isnan(alloc):
            continue
        groups.setdefault(_device(a), []).append(
            (int(trace.ts[i]), alloc, _number(a.get("Total Reserved")), _number(a.get("Bytes")), i))
    out = {}
    for dev, pts in groups.items():
        pts.sort()
        out[dev] = (np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts]),
                    np.array([p[2] for p in pts]), np.array([p[3] for p in pts]),
                    np.array([p[4] for p in pts], dtype=np.int64))
    return out


def alive_at_start(alloc: np.ndarray, nbytes: np.ndarray) -> float | None:
    """The first sample's total less what that sample itself allocated; None when it has no Bytes."""
    if not len(alloc) or np.isnan(nbytes[0]):
        return None
    return float(alloc[0] - nbytes[0])


def memory_series(trace: Trace) -> list[Series]:
    out: list[Series] = []
    for dev, (ts, alloc, reserved, nbytes, ev) in sorted(memory_samples(trace).items()):
        k = int(np.nanargmax(alloc))
        peak = _peak(trace, int(ev[k]))
        s = Series(f"{dev} allocated", ts, alloc, True, k, trace.name_of(peak.op) if peak.op >= 0 else "",
                   device=dev, kind="allocated", alive_at_start=alive_at_start(alloc, nbytes), peak=peak)
        out.append(s)
        has_res = ~np.isnan(reserved)
        if not has_res.any():
            s.notes.append("reserved: not in the trace")
        elif np.array_equal(reserved[has_res], alloc[has_res]):
            s.notes.append("reserved: the same")
        elif not reserved[has_res].any():
            s.notes.append("reserved: 0 throughout (not recorded)")
        else:
            vals = np.where(has_res, reserved, np.nan)
            kr = int(np.nanargmax(vals))
            pr = _peak(trace, int(ev[kr]))
            out.append(Series(f"{dev} reserved", ts, vals, True, kr, trace.name_of(pr.op) if pr.op >= 0 else "",
                              device=dev, kind="reserved", peak=pr))
    for track in trace.counters:
        for sname, (ts, vals) in track.series.items():
            if not len(vals):
                continue
            twin = next((s for s in out if s.kind != "counter" and len(s.ts) == len(ts)
                         and np.array_equal(s.ts, ts) and np.array_equal(s.values, vals)), None)
            if twin is not None:  # the same samples as a [memory] series: one plot, a note
                twin.notes.append(f"counter {track.name} · {sname}: the same")
                continue
            k = int(np.argmax(vals))
            is_bytes = any(w in (track.name + sname).lower() for w in ("byte", "mem", "alloc"))
            out.append(Series(f"{track.name} · {sname} (counter, pid {track.pid})", ts, vals, is_bytes, k,
                              _op_at(trace, int(ts[k]), pid=track.pid)))
    return out


def _number(v: Any) -> float:
    """A finite number, or NaN for anything else (a string, a bool, inf, 1e400)."""
    t = type(v)
    if t is float:  # the common cases first: this runs three times per [memory] event
        return v if v - v == 0.0 else np.nan  # inf - inf and nan - nan are nan
    if t is int and -(1 << 53) <= v <= 1 << 53:
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:
            return np.nan
        return f if np.isfinite(f) else np.nan
    return np.nan


def column_max(ts: np.ndarray, vals: np.ndarray, t0: float, t1: float, width: int) -> np.ndarray:
    """Per column: the highest value held at any time in the column's bucket (NaN before the first sample)."""
    edges = t0 + (t1 - t0) / width * np.arange(width + 1)
    held = np.searchsorted(ts, edges[:-1], "right") - 1
    out = np.where(held >= 0, vals[np.maximum(held, 0)], np.nan)
    first = np.searchsorted(ts, edges[:-1], "right")
    last = np.searchsorted(ts, edges[1:], "right")
    has = last > first
    if has.any():
        cells = np.flatnonzero(has)
        # Samples inside consecutive cells are contiguous, so reduceat segments are exactly per cell.
        seg = np.fmax.reduceat(vals[: last[cells[-1]]], first[cells])
        out[cells] = np.fmax(out[cells], seg)
    return out


# ---- the report: the same figures for the details pane and `summary --memory` ----

def memory_report(trace: Trace, series: list[Series] | None = None) -> list[dict[str, Any]]:
    """Per series: peak, when, alive at start, the op at the peak with its path and stack. Every string
    is as the file has it (callers make it literal)."""
    origin = trace.home[0]
    rows: list[dict[str, Any]] = []
    for s in memory_series(trace) if series is None else series:
        pk = s.peak
        row: dict[str, Any] = {
            "series": s.title, "device": s.device or None, "kind": s.kind, "bytes": s.is_bytes,
            "samples": len(s.values), "peak": s.peak_value,
            "peak_at_ns": int(s.ts[s.peak_index] - origin),
            "alive_at_start": s.alive_at_start,
            "allocated_during_profile_at_peak": (s.peak_value - s.alive_at_start
                                                 if s.alive_at_start is not None else None),
            "event_at_peak_bytes": _event_bytes(trace, pk.event),
            "op_at_peak": s.peak_op or None,
            "op_category": trace.cat_of(pk.op) if pk.op >= 0 else None,
            "op_duration_ns": int(trace.dur[pk.op]) if pk.op >= 0 else None,
            "op_path": pk.path, "stack": pk.stack, "stack_from": pk.stack_from or None,
            "notes": list(s.notes),
        }
        rows.append(row)
    return rows


def _event_bytes(trace: Trace, event: int) -> float | None:
    """The Bytes of the [memory] event at a peak (what that allocation or free was)."""
    if event < 0:
        return None
    b = _number(trace.args_of(event).get("Bytes"))
    return None if np.isnan(b) else b


def _val(row: dict[str, Any], v: float) -> str:
    return fmt_bytes(v) if row["bytes"] else f"{v:.6g}"


def _start_note(row: dict[str, Any]) -> str:
    if row["alive_at_start"] is None:
        return "unknown (the first sample has no Bytes)"
    note = "allocated before profiling began"
    if row["alive_at_start"] == 0 and str(row["device"]).startswith("CPU"):
        note = "the trace counts CPU memory from 0 when profiling began"
    return f"{_val(row, row['alive_at_start'])} ({note})"


def report_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs for one series, the text already literal."""
    peak = f"{_val(row, row['peak'])} at +{fmt_ns(row['peak_at_ns'])}"
    if row["event_at_peak_bytes"] is not None:
        b = row["event_at_peak_bytes"]
        peak += f", when {'+' if b >= 0 else '-'}{fmt_bytes(abs(b))} was {'allocated' if b >= 0 else 'freed'}"
    out = [("peak", peak)]
    if row["kind"] == "allocated":
        out.append(("alive at start", _start_note(row)))
        if row["allocated_during_profile_at_peak"] is not None:
            out.append(("allocated during the profile, at the peak",
                        _val(row, row["allocated_during_profile_at_peak"])))
    if row["op_at_peak"]:
        extra = ""
        if row["op_category"] is not None:
            extra = f"  ({literal(row['op_category'])}, {fmt_ns(row['op_duration_ns'])})"
        out.append(("op at peak", literal(row["op_at_peak"]) + extra))
    else:
        out.append(("op at peak", "none (no op was running)"))
    if len(row["op_path"]) > 1:
        out.append(("op path", " > ".join(literal(p) for p in row["op_path"])))
    if row["stack"]:
        frames = row["stack"][:MAX_FRAMES]
        more = f"  … and {len(row['stack']) - MAX_FRAMES} more" if len(row["stack"]) > MAX_FRAMES else ""
        out.append((f"stack ({literal(row['stack_from'])}, innermost first)", ""))
        out += [("", literal(f)) for f in frames]
        if more:
            out.append(("", more.strip()))
    elif row["kind"] != "counter":
        out.append(("stack", "not recorded (profile with with_stack=True)"))
    for n in row["notes"]:
        out.append(("note", literal(n)))
    return out


def format_report(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no memory data: the trace has no [memory] events and no counter tracks"
    out: list[str] = []
    for row in rows:
        out.append(literal(row["series"]))
        for label, text in report_lines(row):
            out.append(f"  {label}: {text}".rstrip() if label else f"      {text}")
        out.append("")
    return "\n".join(out).rstrip()


# ---- the widgets ----

class MemoryPlots(Widget):
    """Every series' plot, one block of BLOCK rows each."""

    DEFAULT_CSS = "MemoryPlots { height: auto; width: 1fr; }"

    def __init__(self, trace: Trace, series: list[Series], **kw: Any) -> None:  # kw: Widget's (id, ...)
        super().__init__(**kw)
        self.trace = trace
        self.series = series
        self.t0, self.t1 = (float(x) for x in trace.home)
        self._levels: dict[tuple[int, int], np.ndarray] = {}  # (series, width) -> each column's level

    def _fmt(self, s: Series, v: float) -> str:
        return fmt_bytes(v) if s.is_bytes else f"{v:.6g}"

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.series) * BLOCK)

    def render_line(self, y: int) -> Strip:
        return self.line(y, self.size.width)

    def line(self, y: int, width: int) -> Strip:
        """Row y of the plots at this width."""
        if not self.series:
            text = "No memory data: the trace has no [memory] events and no counter tracks." if y == 0 else ""
            return Strip([Segment(set_cell_size(text, width))], width)
        si, r = divmod(y, BLOCK)
        if si >= len(self.series):
            return Strip([Segment(" " * width)], width)
        s = self.series[si]
        W = max(width - AXIS - 1, 1)
        if r == 0:
            return self._header(s, width)
        if r == 1:
            return self._legend(s, width)
        if r < 2 + PLOT_ROWS:
            return self._plot_row(s, self._level(si, W), r - 2, W, width)
        if r == 2 + PLOT_ROWS:
            return self._zero_axis(s, W, width)
        if r == 3 + PLOT_ROWS:
            return self._tick_labels(W, width)
        return Strip([Segment(" " * width)], width)

    def _header(self, s: Series, width: int) -> Strip:
        at = fmt_ns(s.ts[s.peak_index] - self.trace.home[0])
        op = f" in {literal(s.peak_op[:width])}" if s.peak_op else ""
        text = f"{literal(s.title[:width])} — peak {self._fmt(s, s.peak_value)} at +{at}{op}"
        return Strip([Segment(set_cell_size(text, width), Style(bold=True))], width)

    def _legend(self, s: Series, width: int) -> Strip:
        segs = [Segment(" " * (AXIS + 1))]
        if s.alive_at_start is not None:
            more = self._fmt(s, s.peak_value - s.alive_at_start)
            segs += [Segment(_BAND, _BASE), Segment(f" alive at start: {self._fmt(s, s.alive_at_start)}  "),
                     Segment("█", _BAR), Segment(f" allocated while profiling (peak +{more})")]
        else:
            segs += [Segment("█", _BAR), Segment(f" {s.kind if s.kind != 'counter' else 'value'}")]
        if s.notes:
            segs.append(Segment(" · " + "; ".join(literal(n[:60]) for n in s.notes), Style(dim=True)))
        return Strip(segs, width).adjust_cell_length(width).crop(0, width)

    def _scale(self, s: Series) -> tuple[float, float]:
        lo = s.lowest
        hi = float(np.nanmax(s.values))
        if not np.isfinite(hi - lo) or hi <= lo:  # 1e308 - -1e308 overflows; a flat series
            return lo, (hi if hi > lo else lo + 1.0)
        return lo, hi

    def _level(self, si: int, W: int) -> np.ndarray:
        """Each column's height in eighths of a row (the plot's rows draw from it; computed once per width)."""
        got = self._levels.get((si, W))
        if got is None:
            s = self.series[si]
            lo, hi = self._scale(s)
            span = hi / 2 - lo / 2  # halves: hi - lo overflows for ±1e308
            cols = column_max(s.ts, s.values, self.t0, self.t1, W)
            got = np.nan_to_num((cols / 2 - lo / 2) / span * PLOT_ROWS * 8, nan=0.0, posinf=0.0, neginf=0.0)
            if len(self._levels) > 64:
                self._levels.clear()
            self._levels[(si, W)] = got
        return got

    def _plot_row(self, s: Series, level: np.ndarray, k: int, W: int, width: int) -> Strip:
        """Row k of the plot, 0 at the top."""
        lo, hi = self._scale(s)
        span = hi / 2 - lo / 2
        row_from_bottom = PLOT_ROWS - 1 - k
        fill = np.clip(level - row_from_bottom * 8, 0, 8).astype(int)
        base = -1.0
        if s.alive_at_start is not None and s.alive_at_start > lo:
            base = (s.alive_at_start / 2 - lo / 2) / span * PLOT_ROWS * 8
        in_band = (fill == 8) & ((row_from_bottom + 1) * 8 <= base + 0.5)
        if k == 0:
            label = self._fmt(s, hi)
        elif k == PLOT_ROWS // 2:
            label = self._fmt(s, lo + (hi - lo) * (row_from_bottom + 1) / PLOT_ROWS)
        else:
            label = ""
        segs = [Segment(label[:AXIS].rjust(AXIS) + "┤", _AXIS)]
        peak_col = int((s.ts[s.peak_index] - self.t0) / max(self.t1 - self.t0, 1) * W)
        chars = [_BAND if b else _BLOCKS[f] for f, b in zip(fill.tolist(), in_band.tolist())]
        if k == 0 and 0 <= peak_col < W:
            chars[peak_col] = "▼"
        # Runs of one style: the band, the bars, the peak marker.
        style_of = [(_PEAK if (k == 0 and x == peak_col) else _BASE if in_band[x] else _BAR) for x in range(W)]
        a = 0
        for x in range(1, W + 1):
            if x == W or style_of[x] is not style_of[a]:
                segs.append(Segment("".join(chars[a:x]), style_of[a]))
                a = x
        return Strip(segs, width).adjust_cell_length(width)

    def _ticks(self, W: int) -> list[tuple[int, str]]:
        from .timeline import ruler_ticks  # timeline imports column_max from here

        return ruler_ticks(self.t0, self.t1, W, self.trace.home[0])

    def _zero_axis(self, s: Series, W: int, width: int) -> Strip:
        lo, _ = self._scale(s)
        axis = ["─"] * W
        for x, _label in self._ticks(W):
            if 0 <= x < W:
                axis[x] = "┬"
        head = self._fmt(s, lo)[:AXIS].rjust(AXIS) + "┼"
        return Strip([Segment(head, _AXIS), Segment("".join(axis), _AXIS)], width).adjust_cell_length(width)

    def _tick_labels(self, W: int, width: int) -> Strip:
        chars = [" "] * W
        for x, label in self._ticks(W):
            if x < 0 or x + len(label) > W:  # a label cut at the edge would lose its unit
                continue
            if any(c != " " for c in chars[max(x - 1, 0):x + len(label) + 1]):
                continue
            chars[x:x + len(label)] = label
        head = "time".rjust(AXIS) + " "
        return Strip([Segment(head, _AXIS), Segment("".join(chars), _AXIS)], width).adjust_cell_length(width)


def details_text(trace: Trace, rows: list[dict[str, Any]] | None = None) -> Text:
    """The peak of each series: the op and its stack, and what was alive at start (every string literal)."""
    rows = memory_report(trace) if rows is None else rows
    t = Text()
    if not rows:
        return t
    t.append("Peaks (the op at each peak, its call path and stack)\n", style="bold underline")
    for row in rows:
        t.append(literal(row["series"]) + "\n", style="bold cyan")
        for label, text in report_lines(row):
            if label:
                t.append(f"  {label}: ", style="bold")
                t.append(text + "\n")
            else:
                t.append(f"      {text}\n")
    return t


class MemoryView(VerticalScroll, can_focus=True):
    """The plots, then the details of each peak; the arrow keys and page keys scroll."""

    DEFAULT_CSS = "MemoryView { height: 1fr; width: 1fr; } MemoryView > #memory-details { height: auto; }"

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.series = memory_series(trace)
        self.report = memory_report(trace, self.series)

    def compose(self) -> ComposeResult:
        yield MemoryPlots(self.trace, self.series, id="memory-plots")
        yield Static(details_text(self.trace, self.report), id="memory-details")
