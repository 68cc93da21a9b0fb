"""What a time range holds (Perfetto's area selection), and writing tables out as CSV or JSON.

Every span overlapping the range counts with the part of it inside the range; its self time inside
the range is that part less the parts of its direct children inside the range, so the self times of
a lane add up to the time it was busy within the range. Kernels (device activity) are summed apart,
with the union over streams as GPU busy time.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

from safeio import atomic_open

from .device import ENVELOPE_CATS, GPU_CATS, cat_mask
from .model import KIND_SPAN, Trace
from .steps import STEPS_STAR, covered, union_intervals, step_name_ids

Row = dict[str, str | int | float | None]


@dataclass
class RangeSummary:
    t0: int
    t1: int
    rows: list[Row] = field(default_factory=list)  # per (cat, name), by time in range, descending
    cpu_busy: int = 0
    kernels: int = 0
    kernel_ns: int = 0
    gpu_busy: int = 0


def range_summary(trace: Trace, t0: float, t1: float) -> RangeSummary:
    a, b = int(min(t0, t1)), int(max(t0, t1))
    out = RangeSummary(a, b)
    span = trace.kind == KIND_SPAN
    clip = np.clip(np.minimum(trace.ts + trace.dur, b) - np.maximum(trace.ts, a), 0, None)
    clip = np.where(span, clip, 0)
    hit = np.flatnonzero(span & (trace.ts < b) & (trace.ts + trace.dur > a))
    if not len(hit):
        return out
    par = trace.parent[hit]
    has = par >= 0
    in_children = np.bincount(par[has], weights=clip[hit[has]], minlength=len(trace)).astype(np.int64)
    self_in = clip - in_children
    gpu = cat_mask(trace, GPU_CATS)
    envelope = cat_mask(trace, ENVELOPE_CATS)
    k = hit[gpu[hit]]
    out.kernels = len(k)
    out.kernel_ns = int(clip[k].sum())
    lo, hi = union_intervals(trace.ts[k], trace.ts[k] + trace.dur[k])
    out.gpu_busy = covered(lo, hi, a, b)
    lane_gpu = np.zeros(len(trace.lanes), dtype=bool)
    lane_gpu[trace.lane[gpu]] = True
    cpu = hit[~lane_gpu[trace.lane[hit]] & ~envelope[hit]]
    out.cpu_busy = int(self_in[cpu].sum())
    nid = trace.name_id[hit].astype(np.int64)
    steps = step_name_ids(trace)
    if len(steps):
        nid = np.where(np.isin(nid, steps), len(trace.names), nid)
    key = trace.cat_id[hit].astype(np.int64) * (len(trace.names) + 1) + nid
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    count = np.bincount(inv, minlength=len(uniq))
    tot = np.bincount(inv, weights=clip[hit], minlength=len(uniq)).astype(np.int64)
    slf = np.bincount(inv, weights=self_in[hit], minlength=len(uniq)).astype(np.int64)
    for j in np.lexsort((uniq, -tot)).tolist():
        i = int(hit[first[j]])
        name = STEPS_STAR if nid[first[j]] == len(trace.names) else trace.name_of(i)
        out.rows.append({"name": name, "cat": trace.cat_of(i), "count": int(count[j]),
                         "time_in_range_ns": int(tot[j]), "self_in_range_ns": int(slf[j]),
                         "device": "gpu" if gpu[i] else "cpu"})
    return out


FORMATS = ("csv", "json")


def format_of(path: str) -> str:
    """The export format from the file name's extension; a clear error for any other."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError("cannot tell the format from the file name: end it in .csv or .json")
    return ext


def write_rows(path: str, rows: list[Row], meta: dict[str, object] | None = None) -> int:
    """Write rows to path (CSV or JSON by its extension) through safeio.atomic_open; returns the count.

    JSON is {"meta": ..., "rows": [...]} when meta is given, else the list of rows; CSV has a header line
    (the keys of all rows, in first-seen order) and no meta."""
    fmt = format_of(path)
    if fmt == "json":
        doc: object = {"meta": meta, "rows": rows} if meta is not None else rows
        data = json.dumps(doc, indent=1, ensure_ascii=True).encode() + b"\n"
    else:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        data = buf.getvalue().encode("utf-8")
    with atomic_open(path, what="export") as f:
        f.write(data)
    return len(rows)
