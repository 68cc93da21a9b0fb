"""The ops table: per (category, name) aggregates of every span, computed with NumPy group-bys.

Shared by the TUI's Ops tab, `python -m viewer summary` and the diff, so all three agree on what
"total" and "self" mean: total is the sum of durations, self subtracts time spent in nested children
(computed from nesting in model.py), % is a row's total as a share of all self time in the table,
so it reads like torch's "CPU total %".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .model import KIND_SPAN, Trace
from .text import fmt_ns, literal

COLUMNS = ("name", "cat", "count", "total", "self", "avg", "min", "max", "pct")
NUMERIC = ("count", "total", "self", "avg", "min", "max", "pct")


@dataclass
class OpsTable:
    name: list[str]
    cat: list[str]
    shapes: list[str]
    count: np.ndarray
    total: np.ndarray
    self: np.ndarray
    avg: np.ndarray
    min: np.ndarray
    max: np.ndarray
    pct: np.ndarray
    name_id: np.ndarray
    cat_id: np.ndarray

    def __len__(self) -> int:
        return len(self.count)

    def order(self, column: str = "total", descending: bool = True) -> np.ndarray:
        if column not in COLUMNS:
            raise ValueError(f"unknown column {column!r}; choose from {', '.join(COLUMNS)}")
        if column in ("name", "cat"):
            keys = getattr(self, column)
            idx = sorted(range(len(self)), key=lambda i: (keys[i].lower(), self.shapes[i]), reverse=descending)
            return np.array(idx, dtype=np.int64)
        values = getattr(self, column)
        # Stable tie-break by name so the output is deterministic.
        names = np.array([n.lower() for n in self.name]) if len(self) else np.zeros(0)
        o = np.lexsort((names, -values if descending else values))
        return o

    def rows(self, column: str = "total", descending: bool = True, limit: int | None = None,
             contains: str = "") -> list[int]:
        order = self.order(column, descending)
        needle = contains.lower()
        out = [int(i) for i in order if not needle or needle in self.name[i].lower() or needle in self.cat[i].lower()]
        return out[:limit] if limit else out

    def as_dicts(self, rows: list[int]) -> list[dict]:
        out = []
        for i in rows:
            d = {"name": self.name[i], "cat": self.cat[i]}
            if self.shapes[i]:
                d["input_dims"] = self.shapes[i]
            d.update(count=int(self.count[i]), total_ns=int(self.total[i]), self_ns=int(self.self[i]),
                     avg_ns=float(self.avg[i]), min_ns=int(self.min[i]), max_ns=int(self.max[i]),
                     pct=round(float(self.pct[i]), 4))
            out.append(d)
        return out


def ops_table(trace: Trace, by_shape: bool = False, mask: np.ndarray | None = None) -> OpsTable:
    sel = trace.kind == KIND_SPAN
    if mask is not None:
        sel &= mask
    idx = np.flatnonzero(sel)
    n_names = max(len(trace.names), 1)
    key = trace.cat_id[idx].astype(np.int64) * n_names + trace.name_id[idx]
    shape_ids = np.zeros(len(idx), dtype=np.int64)
    shape_table: list[str] = [""]
    if by_shape:
        lookup: dict[str, int] = {"": 0}
        shape_ids = np.array([lookup.setdefault(_dims(trace.raw[i]), len(lookup)) for i in idx], dtype=np.int64)
        shape_table = list(lookup)
        key = key * len(shape_table) + shape_ids
    uniq, inv = np.unique(key, return_inverse=True)
    dur = trace.dur[idx]
    self_ns = trace.self_ns[idx]
    count = np.bincount(inv, minlength=len(uniq))
    total = np.bincount(inv, weights=dur, minlength=len(uniq)).astype(np.int64)
    selft = np.bincount(inv, weights=self_ns, minlength=len(uniq)).astype(np.int64)
    o = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[o], np.arange(len(uniq)))
    mn = np.minimum.reduceat(dur[o], starts) if len(uniq) else np.zeros(0, np.int64)
    mx = np.maximum.reduceat(dur[o], starts) if len(uniq) else np.zeros(0, np.int64)
    first = idx[o[starts]] if len(uniq) else np.zeros(0, np.int64)
    all_self = max(int(self_ns.sum()), 1)
    shapes = [shape_table[int(shape_ids[o[s]])] for s in starts] if by_shape else [""] * len(uniq)
    return OpsTable(
        name=[trace.names[trace.name_id[i]] for i in first],
        cat=[trace.cats[trace.cat_id[i]] for i in first],
        shapes=shapes, count=count, total=total, self=selft,
        avg=total / np.maximum(count, 1), min=mn, max=mx, pct=100.0 * total / all_self,
        name_id=trace.name_id[first].astype(np.int64), cat_id=trace.cat_id[first].astype(np.int64),
    )


def _dims(ev: dict) -> str:
    args = ev.get("args") if isinstance(ev, dict) else None
    if not isinstance(args, dict) or "Input Dims" not in args:
        return ""
    return json.dumps(args["Input Dims"], separators=(",", ":"), default=str)


def format_table(table: OpsTable, rows: list[int], width_name: int = 48) -> str:
    head = f"{'name':<{width_name}} {'cat':<16} {'count':>8} {'total':>10} {'self':>10} {'avg':>10} {'min':>10} {'max':>10} {'%':>6}"
    lines = [head, "-" * len(head)]
    for i in rows:
        name = literal(table.name[i])
        if table.shapes[i]:
            name = f"{name} {table.shapes[i]}"
        if len(name) > width_name:
            name = name[: width_name - 1] + "…"
        lines.append(
            f"{name:<{width_name}} {literal(table.cat[i])[:16]:<16} {int(table.count[i]):>8} "
            f"{fmt_ns(table.total[i]):>10} {fmt_ns(table.self[i]):>10} {fmt_ns(table.avg[i]):>10} "
            f"{fmt_ns(table.min[i]):>10} {fmt_ns(table.max[i]):>10} {table.pct[i]:>6.2f}"
        )
    return "\n".join(lines)
