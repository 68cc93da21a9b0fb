"""Memory over time: Kineto's `[memory]` instant events and `ph: C` counter tracks, per device.

Each series is a step function (a sample holds until the next one). The plot shows, per terminal
column, the highest value in its time bucket, so a short spike is never averaged away; the peak is
marked and named with the op that was running when it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from safeio import literal

from .model import KIND_SPAN, Trace
from .text import fmt_bytes, fmt_ns

_DEVICE_TYPES = {0: "CPU", 1: "CUDA"}
_BLOCKS = " ▁▂▃▄▅▆▇█"
PLOT_ROWS = 6


@dataclass
class Series:
    title: str
    ts: np.ndarray
    values: np.ndarray
    is_bytes: bool
    peak_index: int
    peak_op: str


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


def memory_series(trace: Trace) -> list[Series]:
    out: list[Series] = []
    mem_id = trace.names.index("[memory]") if "[memory]" in trace.names else -1
    if mem_id >= 0:
        idx = np.flatnonzero(trace.name_id == mem_id)
        groups: dict[str, list[tuple[int, float, float, int]]] = {}
        for i in idx:
            a = trace.args_of(int(i))
            alloc, reserved = _number(a.get("Total Allocated")), _number(a.get("Total Reserved"))
            if np.isnan(alloc):
                continue
            dt, did = a.get("Device Type"), a.get("Device Id")
            # Any JSON value may stand here (a list is unhashable): look up only what can be a key.
            known = _DEVICE_TYPES.get(dt) if type(dt) is int else None
            dev = (known or f"device type {dt}") + (f":{did}" if dt != 0 and did is not None else "")
            res = reserved
            groups.setdefault(dev, []).append((int(trace.ts[i]), alloc, res, int(i)))
        for dev, pts in sorted(groups.items()):
            pts.sort()
            ts = np.array([p[0] for p in pts], dtype=np.int64)
            for col, label in ((1, "allocated"), (2, "reserved")):
                vals = np.array([p[col] for p in pts])
                if np.isnan(vals).all():
                    continue
                k = int(np.nanargmax(vals))
                out.append(Series(f"{dev} {label} ([memory] events)", ts, vals, True, k,
                                  _op_at(trace, int(ts[k]), hint=pts[k][3])))
    for track in trace.counters:
        for sname, (ts, vals) in track.series.items():
            if not len(vals):
                continue
            k = int(np.argmax(vals))
            is_bytes = any(w in (track.name + sname).lower() for w in ("byte", "mem", "alloc"))
            out.append(Series(f"{track.name} · {sname} (counter, pid {track.pid})", ts, vals, is_bytes, k,
                              _op_at(trace, int(ts[k]), pid=track.pid)))
    return out


def _number(v: Any) -> float:
    """A finite number, or NaN for anything else (a string, a bool, inf, 1e400)."""
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
        seg = np.maximum.reduceat(vals[: last[cells[-1]]], first[cells])
        out[cells] = np.fmax(out[cells], seg)
    return out


class MemoryView(Widget, can_focus=True):
    DEFAULT_CSS = "MemoryView { height: 1fr; width: 1fr; }"

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.series = memory_series(trace)
        self.t0, self.t1 = (float(x) for x in trace.home)

    def _fmt(self, s: Series, v: float) -> str:
        return fmt_bytes(v) if s.is_bytes else f"{v:.6g}"

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.series) * (PLOT_ROWS + 2))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not self.series:
            text = "No memory data: the trace has no [memory] events and no counter tracks." if y == 0 else ""
            return Strip([Segment(text.ljust(width))], width)
        block = PLOT_ROWS + 2
        si, r = divmod(y, block)
        if si >= len(self.series):
            return Strip([Segment(" " * width)], width)
        s = self.series[si]
        origin = self.trace.home[0]
        if r == 0:
            pk = s.values[s.peak_index]
            at = fmt_ns(s.ts[s.peak_index] - origin)
            op = f" in {literal(s.peak_op[:width])}" if s.peak_op else ""
            text = f"{literal(s.title[:width])} — peak {self._fmt(s, pk)} at +{at}{op}"
            return Strip([Segment(set_cell_size(text, width), Style(bold=True))], width)
        if r == block - 1:
            return Strip([Segment(" " * width)], width)
        W = max(width - 12, 1)
        cols = column_max(s.ts, s.values, self.t0, self.t1, W)
        top = float(np.nanmax(s.values)) or 1.0
        level = np.nan_to_num(cols / top * PLOT_ROWS * 8, nan=0.0)
        row_from_bottom = PLOT_ROWS - r  # r = 1..PLOT_ROWS
        fill = np.clip(level - row_from_bottom * 8, 0, 8).astype(int)
        chars = "".join(_BLOCKS[f] for f in fill)
        peak_col = int((s.ts[s.peak_index] - self.t0) / max(self.t1 - self.t0, 1) * W)
        axis = self._fmt(s, top * (row_from_bottom + 1) / PLOT_ROWS) if r in (1, PLOT_ROWS) else ""
        segs = [Segment(axis[:11].rjust(11) + "┤", Style(color="#a0a0a0"))]
        if r == 1 and 0 <= peak_col < W:
            segs += [Segment(chars[:peak_col], Style(color="#4fa3ff")), Segment("▼", Style(color="#ff4040", bold=True)),
                     Segment(chars[peak_col + 1:], Style(color="#4fa3ff"))]
        else:
            segs.append(Segment(chars, Style(color="#4fa3ff")))
        return Strip(segs, width)
