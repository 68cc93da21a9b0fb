"""The timeline: one lane per thread / GPU stream, one terminal row per nesting depth, and one row
per counter series (`ph: C`), drawn as a sparkline after the lanes of its process.

Drawn with Textual's Line API: `render_line` only computes the rows on screen, and within a row only
the events overlapping the view (two searchsorted calls on the row's sorted arrays). Each cell then
shows the event covering most of its time bucket (level of detail), computed with vectorised
group-bys, so a row holding a million events costs about as much as one holding a hundred.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from typing import Any

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from safeio import literal

from .memory_tab import column_max
from .model import CounterTrack, Trace
from .steps import step_events, step_number
from .text import fmt_bytes, fmt_ns

GUTTER = 22
_PALETTE = [
    "#3b6ea5", "#8e5ea2", "#3e9651", "#cc6f30", "#6b4c9a", "#2a8c8c", "#a33f5a", "#7a7a2e",
    "#4f6bd1", "#9c5b2e", "#2e7d5b", "#8a3b8f",
]
_STYLES = [Style(color="#ffffff", bgcolor=c) for c in _PALETTE]
_SELECTED = Style(color="#000000", bgcolor="#ffffff", bold=True)
_MATCH = Style(color="#000000", bgcolor="#ffd21f", bold=True)
_RELATED = Style(color="#000000", bgcolor="#7cfc00", bold=True)
_EMPTY = Style()
_GUTTER = Style(color="#c0c0c0", bgcolor="#202020")
_GUTTER_FIRST = Style(color="#ffffff", bgcolor="#202020", bold=True)
_RULER = Style(color="#a0a0a0", bgcolor="#101010")
_CURSOR = Style(bgcolor="#303030")
_SPARK = Style(color="#4fa3ff")
_STEP_STYLES = [Style(color="#ffffff", bgcolor="#2b3d55", bold=True),
                Style(color="#ffffff", bgcolor="#3c5474", bold=True)]
_RANGE = Style(color="#000000", bgcolor="#9ad0ff")
_BLOCKS = " ▁▂▃▄▅▆▇█"

ZOOM_STEP = 1.5
PAN_FRACTION = 0.2


def _color(name_id: int, name: str) -> Style:
    return _STYLES[zlib.crc32(name.encode("utf-8", "replace")) % len(_STYLES)]


def _valid_view(t0: float, t1: float) -> tuple[float, float]:
    """A view at least 10 ns wide, and wide enough to be distinct floats far from zero."""
    t0, t1 = float(t0), float(t1)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        return 0.0, 1000.0
    mid = (t0 + t1) / 2
    least = max(10.0, abs(mid) * 1e-12)
    if t1 - t0 < least:
        t0, t1 = mid - least / 2, mid + least / 2
    return t0, t1


def _counter_value(v: float, is_bytes: bool) -> str:
    return fmt_bytes(v).replace(" ", "") if is_bytes else f"{v:.3g}"


def counter_label(track: CounterTrack, series: str, width: int) -> str:
    """`name series  lo–hi` in `width` cells: the value range is kept, the name is cut if need be."""
    name = track.name if series in ("", track.name) else f"{track.name} {series}"
    vals = track.series[series][1]
    is_bytes = any(w in name.lower() for w in ("byte", "mem", "alloc"))
    rng = f"{_counter_value(float(vals.min()), is_bytes)}–{_counter_value(float(vals.max()), is_bytes)}"
    room = width - cell_len(rng) - 1
    if room < 3:
        return set_cell_size(rng, width)
    name = literal(name[:width])
    if cell_len(name) > room:
        name = set_cell_size(name, room - 1) + "…"
    return set_cell_size(name, room) + " " + rng


def sparkline(ts: np.ndarray, vals: np.ndarray, t0: float, t1: float, width: int) -> str:
    """One block character per cell: the highest value held in the cell's time bucket, scaled between
    the series' minimum (▁) and maximum (█); blank before the first sample."""
    cols = column_max(ts, vals, t0, t1, width)
    lo, hi = float(vals.min()), float(vals.max())
    # Halved first: hi - lo of values near +-1e308 overflows to inf (and inf / inf is NaN).
    span = hi / 2 - lo / 2
    level = np.rint((cols / 2 - lo / 2) / span * 7) + 1 if span > 0 else np.full(width, 4.0)
    level = np.where(np.isnan(cols), 0, np.clip(level, 1, 8)).astype(np.int64)
    return "".join(_BLOCKS[k] for k in level.tolist())


def nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    if raw <= 0:
        return 1.0
    mag: float = 10 ** math.floor(math.log10(raw))  # an int from 10**0 up, a float below
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def fmt_tick(t: float, step: float, scale: float) -> str:
    """t (ns) in the unit of `scale` with as many decimals as the tick step needs to tell ticks apart."""
    unit = next(u for sc, u in _UNITS if sc == scale)
    decimals = max(0, math.ceil(-math.log10(step / scale) - 1e-9)) if step < scale else 0
    return f"{t / scale:.{decimals}f}{unit}"


def ruler_ticks(t0: float, t1: float, width: int, origin: float) -> list[tuple[int, str]]:
    """(cell, label) of the ruler's ticks: a round step, labels in one unit, each label distinct and
    clear of the next one (the step grows until they fit)."""
    span = max(t1 - t0, 1e-9)
    per_cell = span / max(width, 1)
    target = max(width // 12, 1)
    while True:
        step = nice_step(span, target)
        first = math.ceil((t0 - origin) / step)
        last = math.floor((t1 - origin) / step)
        ks = range(first, last + 1) if last - first < 10_000 else range(0)
        top = max([abs(k * step) for k in (first, last)] + [step])
        scale = next(sc for sc, _ in _UNITS if top >= sc or sc == 1.0)
        ticks = [(int((origin + k * step - t0) / per_cell), fmt_tick(k * step, step, scale)) for k in ks]
        room = step / per_cell
        labels = [lb for _, lb in ticks]
        if target == 1 or (len(set(labels)) == len(labels) and all(len(lb) + 2 <= room for lb in labels)):
            return ticks
        target = max(target // 2, 1)


class Timeline(Widget, can_focus=True):
    """Keys follow Perfetto's (w/s/a/d, f, 0, [ ], arrows); `?` lists them all."""

    BINDINGS = [
        Binding("w", "zoom_in", "Zoom in"),
        Binding("s", "zoom_out", "Zoom out"),
        Binding("a", "pan_left", "Pan left"),
        Binding("d", "pan_right", "Pan right"),
        Binding("f", "fit", "Fit selection"),
        Binding("0", "reset", "Reset zoom"),
        Binding("left,comma", "prev_event", "Previous event", show=False),
        Binding("right,full_stop", "next_event", "Next event", show=False),
        Binding("up", "parent", "Parent event", show=False),
        Binding("down", "child", "First child", show=False),
        Binding("right_square_bracket", "flow_next", "Follow flow out", show=False),
        Binding("left_square_bracket", "flow_prev", "Follow flow in", show=False),
        Binding("escape", "deselect", "Deselect", show=False),
        Binding("pagedown,shift+down", "scroll_rows(1)", "Scroll down", show=False),
        Binding("pageup,shift+up", "scroll_rows(-1)", "Scroll up", show=False),
        Binding("v", "mark", "Mark range start / end (sums what is in it)"),
        Binding("V", "clear_range", "Clear the range", show=False),
    ]

    # As tall as the lanes need (the details pane below gets the rest), at most 3/4 of the room.
    DEFAULT_CSS = """
    Timeline { height: auto; max-height: 75%; min-height: 3; }
    """

    class RangeChanged(Message):
        def __init__(self, t0: float | None, t1: float | None) -> None:
            super().__init__()
            self.t0, self.t1 = t0, t1

    top: reactive[int] = reactive(0)
    selected: reactive[int] = reactive(-1)

    class Selected(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.t0, self.t1 = (float(x) for x in trace.home)
        self._pad_home()
        self.origin = float(trace.home[0])  # the ruler's zero (the side-by-side diff moves it)
        # (lane, depth) per row; a counter series is (-1 - k, 0) for counter_rows[k].
        self.counter_rows: list[tuple[CounterTrack, str]] = []
        self._counter_labels: dict[int, str] = {}
        self.rows: list[tuple[int, int]] = self._layout()
        self._row_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lane_order: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._owners: dict[int, np.ndarray] = {}
        self.match_mask: np.ndarray | None = None
        self.related: set[int] = set()
        self.mouse_x: int | None = None
        self._drag_from: tuple[int, float, float] | None = None
        self._dragged = False
        self._range_drag = False
        self._end = trace.ts + trace.dur
        # Steps: a row of markers under the ruler (click or . , on it to pick a step).
        self.steps = step_events(trace)
        self._step_end = trace.ts[self.steps] + trace.dur[self.steps]
        self.header = 2 if len(self.steps) else 1
        self.range_marks: list[float] = []

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self.header + max(len(self.rows), 1)

    @property
    def time_range(self) -> tuple[float, float] | None:
        """The marked range (v twice), if both ends are set."""
        if len(self.range_marks) == 2:
            a, b = sorted(self.range_marks)
            return a, b
        return None

    def _layout(self) -> list[tuple[int, int]]:
        """Each lane's rows; a process's counter series right after its last lane (or at the end)."""
        lanes = self.trace.lanes
        series: dict[Any, list[tuple[CounterTrack, str]]] = defaultdict(list)
        for track in self.trace.counters:
            series[track.pid].extend((track, s) for s in track.series if len(track.series[s][1]))
        rows: list[tuple[int, int]] = []

        def add_counters(pid: Any) -> None:
            for item in series.pop(pid, []):
                rows.append((-1 - len(self.counter_rows), 0))
                self.counter_rows.append(item)

        for li, ln in enumerate(lanes):
            rows.extend((li, d) for d in range(ln.rows))
            if li + 1 == len(lanes) or lanes[li + 1].pid != ln.pid:
                add_counters(ln.pid)
        for pid in list(series):
            add_counters(pid)
        return rows

    def _pad_home(self) -> None:
        span = self.t1 - self.t0
        self.t0, self.t1 = _valid_view(self.t0 - span * 0.01, self.t1 + span * 0.01)

    # ---- geometry ----
    @property
    def track_width(self) -> int:
        return max(self.size.width - GUTTER, 1)

    @property
    def visible_rows(self) -> int:
        return max(self.size.height - self.header, 1)

    def time_at(self, x: int) -> float:
        return self.t0 + (x - GUTTER + 0.5) * (self.t1 - self.t0) / self.track_width

    def _row_events(self, lane_i: int, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (lane_i, depth)
        hit = self._row_cache.get(key)
        if hit is not None:
            return hit
        lane = self.trace.lanes[lane_i]
        if lane_i not in self._lane_order:
            d = self.trace.depth[lane.start:lane.stop]
            order = np.argsort(d, kind="stable")
            bounds = np.searchsorted(d[order], np.arange(lane.rows + 1))
            self._lane_order[lane_i] = (order + lane.start, bounds)
        order, bounds = self._lane_order[lane_i]
        idx = order[bounds[depth]:bounds[depth + 1]]
        hit = (idx, self.trace.ts[idx], self._end[idx])
        self._row_cache[key] = hit
        return hit

    def owners(self, lane_i: int, depth: int, width: int | None = None) -> np.ndarray:
        """For each cell of the row, the event covering most of that cell's time, or -1."""
        W = width or self.track_width
        idx, ts, end = self._row_events(lane_i, depth)
        t0, t1 = self.t0, self.t1
        out = np.full(W, -1, dtype=np.int64)
        lo = int(np.searchsorted(end, t0, "left"))
        hi = int(np.searchsorted(ts, t1, "right"))
        if hi <= lo:
            return out
        vts, vend, vidx = ts[lo:hi], end[lo:hi], idx[lo:hi]
        bucket = max((t1 - t0) / W, 1e-12)
        edges = t0 + bucket * np.arange(W + 1)
        first = np.searchsorted(vts, edges[:-1], "left")  # first event starting in or after cell
        nxt = np.searchsorted(vts, edges[1:], "left")
        # Candidate 1: the event started before the cell that runs into it.
        k = first - 1
        kk = np.maximum(k, 0)
        cover_prev = np.where(k >= 0, np.minimum(vend[kk], edges[1:]) - edges[:-1], -1.0)
        best = np.where(cover_prev > 0, vidx[kk], -1)
        best_cover = np.where(cover_prev > 0, cover_prev, -1.0)
        # Candidate 2: the event starting inside the cell that covers most of it (instants count a little).
        has = nxt > first
        if has.any():
            cells = np.flatnonzero(has)
            starts = first[cells]
            cell_of = np.clip(((vts - t0) / bucket).astype(np.int64), 0, W - 1)
            cover = np.minimum(vend, t0 + bucket * (cell_of + 1)) - vts + 1e-9
            seg = np.maximum.reduceat(cover[starts[0]:], starts - starts[0])
            lens = np.diff(np.append(starts, len(cover)))
            is_max = cover[starts[0]:] >= np.repeat(seg, lens)
            pos = np.flatnonzero(is_max) + starts[0]
            arg = pos[np.searchsorted(pos, starts)]
            take = seg > best_cover[cells]
            best[cells[take]] = vidx[arg[take]]
        out[:] = best
        return out

    # ---- drawing ----
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._ruler(width)
        if y == 1 and self.header == 2:
            return self._steps_line(width)
        row_i = self.top + y - self.header
        if not self.rows and y == self.header:
            return Strip([Segment(" No events to show; the Warnings tab (e) says why.".ljust(width)[:width])], width)
        if row_i >= len(self.rows):
            return Strip([Segment(" " * GUTTER, _GUTTER), Segment(" " * max(width - GUTTER, 0))], width)
        lane_i, depth = self.rows[row_i]
        if lane_i < 0:
            return self._counter_line(-1 - lane_i, width)
        lane = self.trace.lanes[lane_i]
        # Thread / stream name on the lane's first row, its process on the second.
        label = literal((lane.name if depth == 0 else (lane.process if depth == 1 else ""))[:GUTTER])
        if cell_len(label) > GUTTER - 1:
            label = set_cell_size(label, GUTTER - 2) + "…"
        # Sizes in terminal cells, not characters: CJK and emoji names are two cells wide.
        segs = [Segment(set_cell_size(label, GUTTER - 1) + "│", _GUTTER_FIRST if depth == 0 else _GUTTER)]
        W = max(width - GUTTER, 0)
        if W == 0:
            return Strip(segs, width)
        owner = self.owners(lane_i, depth, W)
        self._owners[y] = owner
        segs.extend(self._runs(owner, W))
        return Strip(segs, width)

    def _counter_line(self, k: int, width: int) -> Strip:
        track, series = self.counter_rows[k]
        label = self._counter_labels.get(k)
        if label is None:  # fixed for the trace: min and max of the whole series
            label = self._counter_labels[k] = counter_label(track, series, GUTTER - 1) + "│"
        segs = [Segment(label, _GUTTER_FIRST)]
        W = max(width - GUTTER, 0)
        if W:
            ts, vals = track.series[series]
            segs.append(Segment(sparkline(ts, vals, self.t0, self.t1, W), _SPARK))
        return Strip(segs, width)

    def _style_for(self, ev: int) -> Style:
        if ev == self.selected:
            return _SELECTED
        if ev in self.related:
            return _RELATED
        if self.match_mask is not None and self.match_mask[ev]:
            return _MATCH
        tr = self.trace
        return _color(int(tr.name_id[ev]), tr.names[tr.name_id[ev]])

    def _runs(self, owner: np.ndarray, W: int) -> list[Segment]:
        segs: list[Segment] = []
        change = np.flatnonzero(np.diff(owner)) + 1
        bounds = [0, *change.tolist(), W]
        tr = self.trace
        cursor = None if self.mouse_x is None else self.mouse_x - GUTTER
        rng = self._range_cells(W)
        if rng is not None:  # the marked range: split runs at its edges, blank cells shaded
            bounds = sorted(set(bounds) | {c for c in rng if 0 < c < W})
        for a, b in zip(bounds[:-1], bounds[1:]):
            ev = int(owner[a])
            n = b - a
            if ev < 0:
                if rng is not None and rng[0] <= a < rng[1]:
                    segs.append(Segment("░" * n, _RANGE))
                    continue
                if cursor is not None and a <= cursor < b:
                    segs += [Segment(" " * (cursor - a)), Segment("│", _CURSOR), Segment(" " * (b - cursor - 1))]
                else:
                    segs.append(Segment(" " * n))
                continue
            name = literal(tr.names[tr.name_id[ev]][:n])  # cut first: a name can be 50 MB
            if tr.dur[ev] == 0 and n == 1:
                text = "◆"
            elif n > 2:
                # The last cell stays blank so that back-to-back events read as two names; a name cut
                # short ends in an ellipsis.
                cut = cell_len(name) > n - 1
                text = (set_cell_size(name, n - 2) + "…" if cut else set_cell_size(name, n - 1)) + " "
            else:
                text = "▌" + " " * (n - 1)
            segs.append(Segment(text, self._style_for(ev)))
        return segs

    def _ruler(self, width: int) -> Strip:
        W = max(width - GUTTER, 1)
        span = max(self.t1 - self.t0, 1e-9)
        per_cell = span / W
        head = f" {fmt_ns(per_cell)}/cell"[: GUTTER - 1].ljust(GUTTER - 1) + "│"
        chars = [" "] * W
        for x, label in ruler_ticks(self.t0, self.t1, W, self.origin):
            if x + len(label) + 1 > W:  # a label cut at the edge would lose its unit
                continue
            for j, c in enumerate("▏" + label):
                if 0 <= x + j < W:
                    chars[x + j] = c
        rng = self._range_cells(W)
        if rng is not None:
            for x in (rng[0], rng[1] - 1):
                if 0 <= x < W:
                    chars[x] = "┃"
        return Strip([Segment(head, _RULER), Segment("".join(chars), _RULER)], width)

    def _range_cells(self, W: int) -> tuple[int, int] | None:
        """The marked range's first and past-the-last cell (clipped to the view), if it is in view."""
        r = self.time_range
        if r is None:
            return None
        per_cell = max(self.t1 - self.t0, 1e-9) / W
        a = int(math.floor((r[0] - self.t0) / per_cell))
        b = int(math.ceil((r[1] - self.t0) / per_cell))
        if b <= 0 or a >= W:
            return None
        return max(a, 0), min(max(b, a + 1), W)

    def step_owners(self, W: int) -> np.ndarray:
        """Per cell of the steps row, the step event covering the cell's middle, or -1."""
        if not len(self.steps):
            return np.full(W, -1, dtype=np.int64)
        per_cell = max(self.t1 - self.t0, 1e-9) / W
        mid = self.t0 + (np.arange(W) + 0.5) * per_cell
        ts = self.trace.ts[self.steps]
        k = np.searchsorted(ts, mid, "right") - 1
        kk = np.maximum(k, 0)
        hit = (k >= 0) & (mid < self._step_end[kk])
        return np.where(hit, self.steps[kk], -1)

    def _steps_line(self, width: int) -> Strip:
        label = f" steps ({len(self.steps)})"[: GUTTER - 1].ljust(GUTTER - 1) + "│"
        segs = [Segment(label, _GUTTER_FIRST)]
        W = max(width - GUTTER, 0)
        if not W:
            return Strip(segs, width)
        owner = self.step_owners(W)
        self._owners[1] = owner
        change = np.flatnonzero(np.diff(owner)) + 1
        bounds = [0, *change.tolist(), W]
        for a, b in zip(bounds[:-1], bounds[1:]):
            ev = int(owner[a])
            n = b - a
            if ev < 0:
                segs.append(Segment(" " * n))
                continue
            num = step_number(self.trace, ev)
            text = f"▎#{num}" if n > len(str(num)) + 2 else "▎"
            style = _SELECTED if ev == self.selected else _STEP_STYLES[num % 2]
            segs.append(Segment(set_cell_size(text, n), style))
        return Strip(segs, width)

    # ---- view changes ----
    def _changed(self) -> None:
        self._owners.clear()
        self.refresh()

    def redraw(self) -> None:
        """For other views that changed what is highlighted (match_mask)."""
        self._changed()

    def set_view(self, t0: float, t1: float) -> None:
        self.t0, self.t1 = _valid_view(t0, t1)
        self._changed()

    def _anchor(self) -> float:
        if self.mouse_x is not None and self.mouse_x >= GUTTER:
            return self.time_at(self.mouse_x)
        if self.selected >= 0:
            t = float(self.trace.ts[self.selected] + self.trace.dur[self.selected] / 2)
            if self.t0 <= t <= self.t1:
                return t
        return (self.t0 + self.t1) / 2

    def zoom(self, factor: float, anchor: float | None = None) -> None:
        a = self._anchor() if anchor is None else anchor
        self.set_view(a - (a - self.t0) * factor, a + (self.t1 - a) * factor)

    def action_zoom_in(self) -> None:
        self.zoom(1 / ZOOM_STEP)

    def action_zoom_out(self) -> None:
        self.zoom(ZOOM_STEP)

    def action_pan_left(self) -> None:
        d = (self.t1 - self.t0) * PAN_FRACTION
        self.set_view(self.t0 - d, self.t1 - d)

    def action_pan_right(self) -> None:
        d = (self.t1 - self.t0) * PAN_FRACTION
        self.set_view(self.t0 + d, self.t1 + d)

    def action_reset(self) -> None:
        self.t0, self.t1 = (float(x) for x in self.trace.home)
        self._pad_home()
        self._changed()

    def action_fit(self) -> None:
        if self.selected < 0:
            return
        ts, dur = float(self.trace.ts[self.selected]), float(self.trace.dur[self.selected])
        pad = max(dur * 0.05, 50.0)
        self.set_view(ts - pad, ts + dur + pad)

    def action_scroll_rows(self, direction: int) -> None:
        self.top = max(0, min(self.top + direction * max(self.visible_rows // 2, 1), max(len(self.rows) - 1, 0)))

    def watch_top(self) -> None:
        self._changed()

    # ---- selection ----
    def select(self, ev: int, reveal: bool = True) -> None:
        self.selected = ev
        tr = self.trace
        self.related = set(tr.launched(ev)) | set(tr.flows_in(ev)) if ev >= 0 else set()
        if ev >= 0 and reveal:
            self.reveal(ev)
        self._changed()
        self.post_message(self.Selected(ev))

    def reveal(self, ev: int) -> None:
        """Scroll so the event's row is on screen and pan (keeping the zoom) so the event is."""
        tr = self.trace
        row = self.rows.index((int(tr.lane[ev]), int(tr.depth[ev])))
        if not self.top <= row < self.top + self.visible_rows:
            self.top = max(0, row - self.visible_rows // 2)
        ts, end = float(tr.ts[ev]), float(tr.ts[ev] + tr.dur[ev])
        span = self.t1 - self.t0
        if end < self.t0 or ts > self.t1:
            mid = (ts + end) / 2
            self.t0, self.t1 = _valid_view(mid - span / 2, mid + span / 2)

    def action_deselect(self) -> None:
        self.select(-1, reveal=False)

    def mark_time(self) -> float:
        """Where `v` marks: the pointer if it is over the lanes, else the selected event's start (its
        end when the start is marked already), else the middle of the view."""
        if self.mouse_x is not None and self.mouse_x >= GUTTER:
            return self.time_at(self.mouse_x)
        if self.selected >= 0:
            ts = float(self.trace.ts[self.selected])
            if len(self.range_marks) == 1 and self.range_marks[0] == ts:
                return ts + float(self.trace.dur[self.selected])
            return ts
        return (self.t0 + self.t1) / 2

    def set_range(self, t0: float | None, t1: float | None = None) -> None:
        self.range_marks = [x for x in (t0, t1) if x is not None]
        self._changed()
        r = self.time_range
        self.post_message(self.RangeChanged(*(r if r else (None, None))))

    def action_mark(self) -> None:
        t = self.mark_time()
        if len(self.range_marks) == 1:
            self.set_range(self.range_marks[0], t)
        else:
            self.set_range(t)

    def action_clear_range(self) -> None:
        self.set_range(None)

    def _neighbour(self, step: int) -> int:
        ev = self.selected
        if ev < 0:
            return -1
        idx, _, _ = self._row_events(int(self.trace.lane[ev]), int(self.trace.depth[ev]))
        pos = int(np.flatnonzero(idx == ev)[0])
        pos += step
        return int(idx[pos]) if 0 <= pos < len(idx) else ev

    def action_prev_event(self) -> None:
        if self.selected < 0:
            self._select_first_visible()
        else:
            self.select(self._neighbour(-1))

    def action_next_event(self) -> None:
        if self.selected < 0:
            self._select_first_visible()
        else:
            self.select(self._neighbour(1))

    def _select_first_visible(self) -> None:
        for row_i in range(self.top, min(self.top + self.visible_rows, len(self.rows))):
            if self.rows[row_i][0] < 0:  # a counter
                continue
            owner = self.owners(*self.rows[row_i])
            hit = owner[owner >= 0]
            if len(hit):
                self.select(int(hit[0]))
                return

    def action_parent(self) -> None:
        if self.selected >= 0 and self.trace.parent[self.selected] >= 0:
            self.select(int(self.trace.parent[self.selected]))

    def action_child(self) -> None:
        if self.selected >= 0:
            kids = np.flatnonzero(self.trace.parent == self.selected)
            if len(kids):
                self.select(int(kids[0]))

    def action_flow_next(self) -> None:
        if self.selected >= 0:
            out = self.trace.flows_out(self.selected) or self.trace.launched(self.selected)
            if out:
                self.select(out[0])

    def action_flow_prev(self) -> None:
        if self.selected >= 0:
            src = self.trace.flows_in(self.selected)
            if src:
                self.select(src[0])

    # ---- mouse ----
    def event_at(self, x: int, y: int) -> int:
        if y < 1 or x < GUTTER:
            return -1
        owner = self._owners.get(y)
        if owner is None:
            if y == 1 and self.header == 2:
                owner = self.step_owners(self.track_width)
            else:
                row_i = self.top + y - self.header
                if row_i >= len(self.rows) or self.rows[row_i][0] < 0:
                    return -1
                owner = self.owners(*self.rows[row_i])
        c = x - GUTTER
        return int(owner[c]) if 0 <= c < len(owner) else -1

    def on_mouse_move(self, event: events.MouseMove) -> None:
        moved = event.x != self.mouse_x
        self.mouse_x = event.x
        if self._drag_from is not None and event.button and self._range_drag:
            if event.x != self._drag_from[0] and self.range_marks:
                self._dragged = True
                self.set_range(self.range_marks[0], self.time_at(event.x))
        elif self._drag_from is not None and event.button:
            x0, t0, t1 = self._drag_from
            dt = (event.x - x0) * (t1 - t0) / self.track_width
            if event.x != x0:
                self._dragged = True
                self.t0, self.t1 = _valid_view(t0 - dt, t1 - dt)
        if moved:  # vertical moves change nothing drawn (the cursor line spans all rows)
            self._changed()

    def on_leave(self, _event: events.Leave) -> None:
        self.mouse_x = None
        self._changed()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._drag_from = (event.x, self.t0, self.t1)
        self._dragged = False
        self._range_drag = event.shift and event.x >= GUTTER
        if self._range_drag:  # shift+drag marks a range (Perfetto's area selection), not a pan
            self.set_range(self.time_at(event.x))
        self.capture_mouse()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self.release_mouse()
        was_drag = self._dragged
        self._drag_from = None
        self._dragged = False
        if self._range_drag:
            self._range_drag = False
            return
        if not was_drag:
            ev = self.event_at(event.x, event.y)
            self.select(ev, reveal=False)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        if event.shift or event.x < GUTTER:
            self.top = max(0, self.top - 1)
        else:
            self.mouse_x = event.x
            self.zoom(1 / ZOOM_STEP)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        if event.shift or event.x < GUTTER:
            self.top = min(max(len(self.rows) - 1, 0), self.top + 1)
        else:
            self.mouse_x = event.x
            self.zoom(ZOOM_STEP)
