"""Call tree: inclusive and self time per call path (lane → step → module → op → ...).

Paths are interned level by level with NumPy (the key of a node is (parent path, name)), so building
the tree for a million events is a few dozen vectorised passes, not a Python walk per event. The
widget adds a node's children only when it is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.widgets import Tree

from .model import KIND_SPAN, Trace
from .text import fmt_ns, literal


@dataclass
class CallTree:
    parent: np.ndarray  # path -> parent path (-1 for lane roots' children)
    name_id: np.ndarray
    lane: np.ndarray
    total: np.ndarray
    self: np.ndarray
    count: np.ndarray
    children: dict[int, np.ndarray]
    roots: dict[int, np.ndarray]  # lane -> top-level paths


def build_call_tree(trace: Trace) -> CallTree:
    n = len(trace)
    span = trace.kind == KIND_SPAN
    path = np.full(n, -1, dtype=np.int64)
    par = trace.parent
    # Events whose parent is not a span (or none) start a path at their lane.
    level = np.flatnonzero(span & ((par < 0) | ~span[np.maximum(par, 0)]))
    p_parent, p_name, p_lane = [], [], []
    count = 0
    key_parent = -1 - trace.lane[level].astype(np.int64)
    done = np.zeros(n, dtype=bool)
    guard = 0
    while len(level) and guard < 10_000:
        guard += 1
        names = trace.name_id[level].astype(np.int64)
        keys = np.stack([key_parent, names], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        ids = np.arange(count, count + len(uniq))
        path[level] = ids[inv]
        p_parent.append(uniq[:, 0])
        p_name.append(uniq[:, 1])
        lanes = np.empty(len(uniq), dtype=np.int64)
        lanes[inv] = trace.lane[level]
        p_lane.append(lanes)
        count += len(uniq)
        done[level] = True
        nxt = np.flatnonzero(span & (par >= 0) & ~done)
        nxt = nxt[done[par[nxt]] & (path[par[nxt]] >= 0)]
        key_parent = path[par[nxt]]
        level = nxt
    parent = np.concatenate(p_parent) if p_parent else np.zeros(0, np.int64)
    name_id = np.concatenate(p_name) if p_name else np.zeros(0, np.int64)
    lane = np.concatenate(p_lane) if p_lane else np.zeros(0, np.int64)
    has = path >= 0
    total = np.bincount(path[has], weights=trace.dur[has], minlength=count).astype(np.int64)
    selft = np.bincount(path[has], weights=trace.self_ns[has], minlength=count).astype(np.int64)
    cnt = np.bincount(path[has], minlength=count)
    children: dict[int, np.ndarray] = {}
    roots: dict[int, np.ndarray] = {}
    order = np.argsort(-total, kind="stable")
    for p in order:
        q = int(parent[p])
        if q < 0:
            roots.setdefault(-1 - q, []).append(int(p))
        else:
            children.setdefault(q, []).append(int(p))
    return CallTree(parent, name_id, lane, total, selft, cnt,
                    {k: np.array(v) for k, v in children.items()}, {k: np.array(v) for k, v in roots.items()})


class CallTreeView(Tree):
    DEFAULT_CSS = "CallTreeView { height: 1fr; }"

    def __init__(self, trace: Trace, **kw) -> None:
        super().__init__(Text(f"{literal(trace.path or 'trace')}"), **kw)
        self.trace = trace
        self.tree_data = build_call_tree(trace)
        self.show_root = False

    def _label(self, p: int) -> Text:
        t = self.tree_data
        label = Text(literal(self.trace.names[int(t.name_id[p])])[:90], style="bold")
        label.append(f"  total {fmt_ns(t.total[p])}  self {fmt_ns(t.self[p])}  ×{int(t.count[p])}", style="dim")
        return label

    def on_mount(self) -> None:
        t = self.tree_data
        for lane_i, paths in sorted(t.roots.items()):
            lane = self.trace.lanes[lane_i]
            tot = int(t.total[paths].sum())
            node = self.root.add(Text(f"{literal(lane.title)}  total {fmt_ns(tot)}", style="bold cyan"), data=None)
            self._add_children(node, paths)
        self.root.expand()

    def _add_children(self, node, paths) -> None:
        for p in paths[:500]:
            has_kids = int(p) in self.tree_data.children
            node.add(self._label(int(p)), data=int(p), allow_expand=has_kids)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        p = node.data
        if p is None or node.children:
            return
        self._add_children(node, self.tree_data.children.get(p, []))
