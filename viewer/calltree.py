"""Call tree: inclusive and self time per call path (lane → step → module → op → ...).

Steps (`ProfilerStep#N`) are merged into one `ProfilerStep*` path, shown as the average step (every
time under it divided by the number of steps); its last child lists the steps one by one, each
expandable to that step's own tree.

Paths are interned level by level with NumPy (the key of a node is (parent path, name)), so building
the tree for a million events is a few dozen vectorised passes, not a Python walk per event. The
widget adds a node's children only when it is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from safeio import literal

from .model import KIND_SPAN, Trace
from .steps import STEPS_STAR, step_events, step_name_ids, step_number
from .text import fmt_ns


# Tree levels narrower than this are interned in one Python pass: a NumPy pass per level costs more
# than the level itself once a stack is deep and thin (a million-deep stack has a million levels).
_NARROW = 64


@dataclass
class CallTree:
    parent: np.ndarray  # path -> parent path (-1 - lane for a lane's top-level paths)
    name_id: np.ndarray
    lane: np.ndarray
    total: np.ndarray
    self: np.ndarray
    count: np.ndarray
    kids: np.ndarray  # paths sorted by (parent, -total): a path's children are one slice of it
    kids_parent: np.ndarray  # parent[kids], for searchsorted
    roots: dict[int, np.ndarray]  # lane -> top-level paths
    steps: int = 0  # how many ProfilerStep#N events the ProfilerStep* paths merge (name id len(names))
    event_path: np.ndarray | None = None  # per event: its path (-1 for an event in none)

    def children_of(self, p: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.kids_parent, [p, p + 1])
        return self.kids[lo:hi]

    def has_children(self, p: int) -> bool:
        lo = int(np.searchsorted(self.kids_parent, p))
        return lo < len(self.kids_parent) and int(self.kids_parent[lo]) == p


def _span_levels(up: np.ndarray) -> np.ndarray:
    """How many span ancestors each event has, by pointer jumping: log2(depth) vectorised passes."""
    level = (up >= 0).astype(np.int64)
    jump = up.copy()
    has = np.flatnonzero(jump >= 0)
    while len(has):
        nxt = jump[has]
        level[has] += level[nxt]
        jump[has] = jump[nxt]
        has = has[jump[has] >= 0]
    return level


def build_call_tree(trace: Trace, mask: np.ndarray | None = None, merge_steps: bool = True) -> CallTree:
    """Intern call paths level by level (a path is (parent path, name)), each level one np.unique; the
    thin tail of a deep stack in one Python pass. O(n log n) whatever the depth.

    mask: only these events (their nesting among themselves). merge_steps: every ProfilerStep#N is
    one name, ProfilerStep* (name id len(trace.names))."""
    n = len(trace)
    span = trace.kind == KIND_SPAN
    if mask is not None:
        span = span & mask
    name_of = trace.name_id.astype(np.int64)
    steps = 0
    if merge_steps:
        ids = step_name_ids(trace)
        if len(ids):
            is_step = np.isin(name_of, ids)
            steps = int((is_step & span).sum())
            name_of = np.where(is_step, len(trace.names), name_of)
    par = trace.parent
    up = np.where(span & (par >= 0) & span[np.maximum(par, 0)], par, -1)  # the parent, if a span
    idx = np.flatnonzero(span)
    levels = _span_levels(up)[idx]
    order = idx[np.argsort(levels, kind="stable")]
    bounds = np.searchsorted(np.sort(levels), np.arange(int(levels.max(initial=-1)) + 2))
    path = np.full(n, -1, dtype=np.int64)
    lane_of = trace.lane.astype(np.int64)
    p_parent: list[np.ndarray] = []
    p_name: list[np.ndarray] = []
    p_lane: list[np.ndarray] = []
    count = 0
    for lv in range(len(bounds) - 1):
        level = order[bounds[lv]:bounds[lv + 1]]
        if len(level) < _NARROW:
            count = _intern_thin(order[bounds[lv]:], up, path, name_of, lane_of, count,
                                 p_parent, p_name, p_lane)
            break
        u = up[level]
        key_parent = np.where(u >= 0, path[np.maximum(u, 0)], -1 - lane_of[level])
        keys = np.stack([key_parent, name_of[level]], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        path[level] = count + inv
        p_parent.append(uniq[:, 0])
        p_name.append(uniq[:, 1])
        lanes = np.empty(len(uniq), dtype=np.int64)
        lanes[inv] = lane_of[level]
        p_lane.append(lanes)
        count += len(uniq)
    parent = np.concatenate(p_parent) if p_parent else np.zeros(0, np.int64)
    name_id = np.concatenate(p_name) if p_name else np.zeros(0, np.int64)
    lane = np.concatenate(p_lane) if p_lane else np.zeros(0, np.int64)
    has = path >= 0
    total = np.bincount(path[has], weights=trace.dur[has], minlength=count).astype(np.int64)
    selft = np.bincount(path[has], weights=trace.self_ns[has], minlength=count).astype(np.int64)
    cnt = np.bincount(path[has], minlength=count)
    kids = np.lexsort((np.arange(count), -total, parent))
    kids_parent = parent[kids]
    tree = CallTree(parent, name_id, lane, total, selft, cnt, kids, kids_parent, {}, steps, path)
    for q in np.unique(parent[parent < 0]).tolist():
        tree.roots[-1 - q] = tree.children_of(q)
    return tree


def _intern_thin(events: np.ndarray, up: np.ndarray, path: np.ndarray, name_id: np.ndarray,
                 lane_of: np.ndarray, count: int, p_parent: list[np.ndarray], p_name: list[np.ndarray],
                 p_lane: list[np.ndarray]) -> int:
    """The remaining levels (parents before children), one dict lookup per event."""
    table: dict[tuple[int, int], int] = {}
    paths = path.tolist()
    new_parent, new_name, new_lane = [], [], []
    ev = events.tolist()
    for i, u, name, ln in zip(ev, up[events].tolist(), name_id[events].tolist(), lane_of[events].tolist()):
        key = (paths[u] if u >= 0 else -1 - ln, name)
        p = table.get(key)
        if p is None:
            p = table[key] = count
            count += 1
            new_parent.append(key[0])
            new_name.append(name)
            new_lane.append(ln)
        paths[i] = p
    path[events] = np.array(paths, dtype=np.int64)[events]
    p_parent.append(np.array(new_parent, dtype=np.int64))
    p_name.append(np.array(new_name, dtype=np.int64))
    p_lane.append(np.array(new_lane, dtype=np.int64))
    return count


@dataclass(frozen=True)
class Node:
    """What a tree node stands for: a call path of `tree` (times divided by `per`, the step count,
    under a merged step), the list of single steps, or one step (its own tree built on expansion)."""
    kind: Literal["path", "steps", "step"]
    tree: CallTree
    path: int = -1
    per: int = 1
    event: int = -1


# Single steps listed under ProfilerStep* at most.
MAX_STEPS_LISTED = 500


class CallTreeView(Tree[Node | None]):
    """A node's data is a Node (None for a lane's node)."""
    DEFAULT_CSS = "CallTreeView { height: 1fr; }"

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Tree's (id, classes, ...)
        super().__init__(Text(f"{literal(trace.path or 'trace')}"), **kw)
        self.trace = trace
        self.tree_data = build_call_tree(trace)
        self.show_root = False

    def _path_name(self, name_id: int) -> str:
        return STEPS_STAR if name_id >= len(self.trace.names) else self.trace.names[name_id]

    def _label(self, t: CallTree, p: int, per: int) -> Text:
        nid = int(t.name_id[p])
        label = Text(literal(self._path_name(nid)[:90])[:90], style="bold")
        if nid >= len(self.trace.names):
            label.append(f"  average of {t.steps} steps: total {fmt_ns(t.total[p] / max(t.steps, 1))}  "
                         f"self {fmt_ns(t.self[p] / max(t.steps, 1))}", style="dim")
        elif per > 1:
            label.append(f"  per step: total {fmt_ns(t.total[p] / per)}  self {fmt_ns(t.self[p] / per)}  "
                         f"×{int(t.count[p]) / per:.3g}", style="dim")
        else:
            label.append(f"  total {fmt_ns(t.total[p])}  self {fmt_ns(t.self[p])}  ×{int(t.count[p])}",
                         style="dim")
        return label

    def on_mount(self) -> None:
        t = self.tree_data
        for lane_i, paths in sorted(t.roots.items()):
            lane = self.trace.lanes[lane_i]
            tot = int(t.total[paths].sum())
            node = self.root.add(Text(f"{literal(lane.title[:200])}  total {fmt_ns(tot)}", style="bold cyan"),
                                 data=None)
            self._add_paths(node, t, paths, 1)
            if len(t.roots) <= 8:  # a few threads: open them, and the average step in each
                node.expand()
                for child in node.children:
                    d = child.data
                    if d is not None and d.kind == "path" and int(t.name_id[d.path]) >= len(self.trace.names):
                        child.expand()
        self.root.expand()

    # Not `_add_children`: that name is textual's (DOMNode._add_children(*widgets)), which this overrode.
    def _add_paths(self, node: TreeNode[Node | None], t: CallTree, paths: np.ndarray, per: int) -> None:
        for p in paths[:500].tolist():
            merged = int(t.name_id[p]) >= len(self.trace.names)
            node.add(self._label(t, p, per), data=Node("path", t, p, max(t.steps, 1) if merged else per),
                     allow_expand=merged or t.has_children(p))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Node | None]) -> None:
        node = event.node
        d = node.data
        if d is None or node.children:
            return
        if d.kind == "path":
            self._add_paths(node, d.tree, d.tree.children_of(d.path), d.per)
            if int(d.tree.name_id[d.path]) >= len(self.trace.names):
                node.add(Text(f"one step at a time ({d.tree.steps} steps)", style="italic"),
                         data=Node("steps", d.tree, d.path))
        elif d.kind == "steps":
            lane = int(d.tree.lane[d.path])
            evs = step_events(self.trace)
            evs = evs[self.trace.lane[evs] == lane]
            for i in evs[:MAX_STEPS_LISTED].tolist():
                label = Text(f"ProfilerStep#{step_number(self.trace, i)}", style="bold")
                label.append(f"  total {fmt_ns(self.trace.dur[i])}  self {fmt_ns(self.trace.self_ns[i])}",
                             style="dim")
                node.add(label, data=Node("step", d.tree, event=i))
            if len(evs) > MAX_STEPS_LISTED:
                node.add_leaf(Text(f"… and {len(evs) - MAX_STEPS_LISTED} more steps", style="dim"), data=None)
        else:
            i = d.event
            mask = np.zeros(len(self.trace), dtype=bool)
            mask[i] = True
            mask[self.trace.descendants(i)] = True
            one = build_call_tree(self.trace, mask=mask, merge_steps=False)
            for paths in one.roots.values():
                for p in paths.tolist():
                    self._add_paths(node, one, one.children_of(p), 1)
