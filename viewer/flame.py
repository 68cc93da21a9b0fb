"""The Flame tab: an icicle graph of the aggregated call paths (the call tree's, steps merged), the
width of each path its total time; lanes on top, callees below their callers.

`b` switches to memory: the same paths, each as wide as the bytes allocated under it (the `Bytes` of
the `[memory]` events with a positive amount, each given to the op enclosing it on its thread), one
device at a time; `b` again goes on to the next device, then back to time.

Each path's horizontal place is the sum of its ancestors' offsets among their siblings, computed by
pointer jumping (log2(depth) vectorised passes), and a row draws only the paths of its level that the
view overlaps (two searchsorted per row), as the timeline does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from safeio import literal

from .calltree import CallTree, _span_levels, build_call_tree
from .memory_tab import memory_samples
from .model import Trace
from .steps import STEPS_STAR
from .text import fmt_bytes, fmt_ns
from .timeline import _SELECTED, _color

_LANE = Style(color="#ffffff", bgcolor="#202020", bold=True)
_INFO = Style(color="#e0e0e0", bgcolor="#101010")


def icicle_layout(tree: CallTree, n_lanes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, level, lane offsets): each path's left edge in ns of aggregated time, its depth, and
    where each lane's block starts."""
    n = len(tree.parent)
    lane_total = np.zeros(n_lanes + 1, dtype=np.int64)
    for ln, roots in tree.roots.items():
        lane_total[ln + 1] = int(tree.total[roots].sum())
    lane_off = np.cumsum(lane_total)
    kids = tree.kids  # by (parent, -total): siblings are contiguous, biggest first
    t = tree.total[kids]
    cs = np.cumsum(t) - t  # exclusive
    par = tree.kids_parent
    first = np.searchsorted(par, par, "left")
    excl = np.empty(n, dtype=np.int64)
    excl[kids] = cs - cs[first]
    up = np.where(tree.parent >= 0, tree.parent, -1)
    roots = tree.parent < 0
    acc = excl + np.where(roots, lane_off[np.clip(-1 - tree.parent, 0, n_lanes)], 0)
    jump = up.copy()
    has = np.flatnonzero(jump >= 0)
    while len(has):  # pointer jumping: acc[i] becomes the sum of excl along i's ancestors
        nxt = jump[has]
        acc[has] += acc[nxt]
        jump[has] = jump[nxt]
        has = has[jump[has] >= 0]
    return acc, _span_levels(up), lane_off


def memory_trees(trace: Trace, tree: CallTree) -> dict[str, tuple[CallTree, float]]:
    """Per device: the call tree's paths weighted by the bytes allocated in them (total: under them;
    count: allocations), and the bytes allocated outside any op. A path's children stay sorted by
    (parent, -total), so the icicle draws the biggest allocator first."""
    out: dict[str, tuple[CallTree, float]] = {}
    n = len(tree.parent)
    event_path = tree.event_path
    if event_path is None:
        return out
    level = _span_levels(np.where(tree.parent >= 0, tree.parent, -1))
    by_level = np.argsort(-level, kind="stable")
    for dev, (_ts, _alloc, _res, nbytes, ev) in sorted(memory_samples(trace).items()):
        pos = ~np.isnan(nbytes) & (nbytes > 0)
        if not pos.any():
            continue
        b, e = nbytes[pos], ev[pos]
        par = trace.parent[e]
        path = np.where(par >= 0, event_path[np.maximum(par, 0)], -1)
        got = path >= 0
        selfb = np.rint(np.bincount(path[got], weights=b[got], minlength=n)[:n]).astype(np.int64)
        count = np.bincount(path[got], minlength=n)[:n]
        total = selfb.copy()
        for lv in range(int(level.max(initial=0)), 0, -1):  # children into parents, deepest level first
            at = by_level[level[by_level] == lv]
            np.add.at(total, tree.parent[at], total[at])
        kids = np.lexsort((np.arange(n), -total, tree.parent))
        t = CallTree(tree.parent, tree.name_id, tree.lane, total, selfb, count, kids, tree.parent[kids], {},
                     tree.steps, event_path)
        for q in np.unique(tree.parent[tree.parent < 0]).tolist():
            t.roots[-1 - q] = t.children_of(q)
        out[dev] = (t, float(b[~got].sum()))
    return out


class FlameView(Widget, can_focus=True):
    BINDINGS = [
        Binding("b", "switch_mode", "Bytes allocated by call path ⇄ time (per device)"),
        Binding("enter", "zoom_selected", "Zoom to the selected path"),
        Binding("escape,backspace", "zoom_out", "Show every path"),
        Binding("up", "parent", "Caller", show=False),
        Binding("down", "child", "Biggest callee", show=False),
        Binding("left", "sibling(-1)", "Path to the left", show=False),
        Binding("right", "sibling(1)", "Path to the right", show=False),
        Binding("pagedown", "scroll(1)", "Scroll down", show=False),
        Binding("pageup", "scroll(-1)", "Scroll up", show=False),
    ]
    DEFAULT_CSS = "FlameView { height: 1fr; }"

    selected: reactive[int] = reactive(-1)
    top: reactive[int] = reactive(0)

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.time_paths = build_call_tree(trace)
        self._memory: dict[str, tuple[CallTree, float]] | None = None  # built the first time b is pressed
        self.mode = "time"  # or a device's name: memory mode
        self.note = ""
        self.outside = 0.0  # memory mode: bytes allocated outside any op
        self._use(self.time_paths)

    def _use(self, paths: CallTree) -> None:
        trace = self.trace
        self.paths = paths
        self.start, self.level, self.lane_off = icicle_layout(self.paths, len(trace.lanes))
        self.end = self.start + self.paths.total
        self.all = (0.0, float(max(int(self.lane_off[-1]), 1)))
        self.v0, self.v1 = self.all
        self.depth = int(self.level.max(initial=-1)) + 1
        order = np.lexsort((self.start, self.level))
        bounds = np.searchsorted(self.level[order], np.arange(self.depth + 1))
        self.rows = [order[bounds[d]:bounds[d + 1]] for d in range(self.depth)]
        self._owners: dict[int, np.ndarray] = {}
        self.set_reactive(FlameView.top, 0)
        self.set_reactive(FlameView.selected, -1)
        if self.paths.total[self.paths.parent < 0].max(initial=0) > 0:
            self.set_reactive(FlameView.selected, int(np.argmax(np.where(self.paths.parent < 0, self.paths.total, -1))))

    # ---- drawing ----
    def _path_name(self, p: int) -> str:
        nid = int(self.paths.name_id[p])
        return STEPS_STAR if nid >= len(self.trace.names) else self.trace.names[nid]

    def owners(self, d: int, W: int) -> np.ndarray:
        paths = self.rows[d]
        s, e = self.start[paths], self.end[paths]
        per = (self.v1 - self.v0) / W
        mid = self.v0 + (np.arange(W) + 0.5) * per
        k = np.searchsorted(s, mid, "right") - 1
        kk = np.maximum(k, 0)
        hit = (k >= 0) & (mid < e[kk]) if len(paths) else np.zeros(W, dtype=bool)
        return np.where(hit, paths[kk] if len(paths) else -1, -1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == self.size.height - 1:
            return Strip([Segment(set_cell_size(self._info(), width), _INFO)], width)
        if y == 0:
            return self._lanes_line(width)
        d = self.top + y - 1
        if d >= self.depth:
            return Strip([Segment(" " * width)], width)
        owner = self.owners(d, width)
        self._owners[y] = owner
        segs: list[Segment] = []
        change = np.flatnonzero(np.diff(owner)) + 1
        bounds = [0, *change.tolist(), width]
        for a, b in zip(bounds[:-1], bounds[1:]):
            p, n = int(owner[a]), b - a
            if p < 0:
                segs.append(Segment(" " * n))
                continue
            name = literal(self._path_name(p)[:n + 1])
            if n > 2:
                cut = cell_len(name) > n - 1
                text = (set_cell_size(name, n - 2) + "…" if cut else set_cell_size(name, n - 1)) + " "
            else:
                text = "▌" + " " * (n - 1)
            style = _SELECTED if p == self.selected else _color(int(self.paths.name_id[p]), self._path_name(p))
            segs.append(Segment(text, style))
        return Strip(segs, width)

    def _lanes_line(self, width: int) -> Strip:
        per = (self.v1 - self.v0) / max(width, 1)
        mid = self.v0 + (np.arange(width) + 0.5) * per
        lane = np.searchsorted(self.lane_off, mid, "right") - 1
        segs: list[Segment] = []
        change = np.flatnonzero(np.diff(lane)) + 1
        bounds = [0, *change.tolist(), width]
        for a, b in zip(bounds[:-1], bounds[1:]):
            ln = int(lane[a])
            n = b - a
            title = literal(self.trace.lanes[ln].title[:n + 1]) if 0 <= ln < len(self.trace.lanes) else ""
            if cell_len(title) > n - 1 and n > 2:
                title = set_cell_size(title, n - 2) + "…"
            segs.append(Segment(set_cell_size(title, max(n - 1, 0)) + "│"[: n], _LANE))
        return Strip(segs, width)

    def _info(self) -> str:
        p = self.selected
        mode = "time" if self.mode == "time" else f"memory {literal(self.mode)}"
        keys = "b memory/time, Enter zoom, Esc all, arrows move"
        if self.note:
            return f" [{mode}] {self.note} · {keys}"
        if p < 0:
            return f" [{mode}] no call paths in this trace · {keys}"
        t = self.paths
        share = 100.0 * float(t.total[p]) / max(self.all[1], 1.0)
        chain: list[str] = []
        q = p
        while q >= 0 and len(chain) < 4:
            chain.append(literal(self._path_name(q)[:40]))
            q = int(t.parent[q])
        where = " ← ".join(chain) + (" ← …" if q >= 0 else "")
        if self.mode == "time":
            return (f" [{mode}] {where} · total {fmt_ns(t.total[p])} ({share:.1f}% of all) · self "
                    f"{fmt_ns(t.self[p])} · ×{int(t.count[p])} · {keys}")
        outside = f" · {fmt_bytes(self.outside)} outside any op" if self.outside else ""
        return (f" [{mode}] {where} · allocated {fmt_bytes(t.total[p])} ({share:.1f}% of all) · self "
                f"{fmt_bytes(t.self[p])} in {int(t.count[p])} allocations{outside} · {keys}")

    def action_switch_mode(self) -> None:
        """time → memory of the first device → … → the last device → time."""
        if self._memory is None:
            self._memory = memory_trees(self.trace, self.time_paths)
        devices = list(self._memory)
        self.note = ""
        if not devices:
            self.note = "no memory to show: no [memory] events with Bytes (profile with profile_memory=True)"
            self._changed()
            return
        k = devices.index(self.mode) + 1 if self.mode in devices else 0
        if k < len(devices):
            self.mode = devices[k]
            tree, self.outside = self._memory[self.mode]
            self._use(tree)
        else:
            self.mode = "time"
            self._use(self.time_paths)
        self._changed()

    # ---- navigation ----
    def _changed(self) -> None:
        self._owners.clear()
        self.refresh()

    def watch_selected(self) -> None:
        p = self.selected
        if p >= 0:
            lv = int(self.level[p])
            rows = max(self.size.height - 2, 1)
            if not self.top <= lv < self.top + rows:
                self.top = max(0, lv - rows // 2)
            if self.end[p] <= self.v0 or self.start[p] >= self.v1:
                self.v0, self.v1 = self.all
        self._changed()

    def watch_top(self) -> None:
        self._changed()

    def action_zoom_selected(self) -> None:
        p = self.selected
        if p >= 0 and self.paths.total[p] > 0:
            self.v0, self.v1 = float(self.start[p]), float(self.end[p])
            self._changed()

    def action_zoom_out(self) -> None:
        self.v0, self.v1 = self.all
        self._changed()

    def action_parent(self) -> None:
        if self.selected >= 0 and self.paths.parent[self.selected] >= 0:
            self.selected = int(self.paths.parent[self.selected])

    def action_child(self) -> None:
        if self.selected >= 0:
            kids = self.paths.children_of(self.selected)
            if len(kids):
                self.selected = int(kids[0])

    def action_sibling(self, step: int) -> None:
        p = self.selected
        if p < 0:
            return
        row = self.rows[int(self.level[p])]
        k = int(np.flatnonzero(row == p)[0]) + step
        if 0 <= k < len(row):
            self.selected = int(row[k])

    def action_scroll(self, step: int) -> None:
        self.top = max(0, min(self.top + step * max((self.size.height - 2) // 2, 1), max(self.depth - 1, 0)))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        owner = self._owners.get(event.y)
        if owner is not None and 0 <= event.x < len(owner) and owner[event.x] >= 0:
            self.selected = int(owner[event.x])
