"""export_stacks: folded stacks (``frame;frame;...;name value``) for flamegraph.pl, speedscope, inferno.

Each event with self time contributes one line: the chain of enclosing ranges and ops down to it, led
(with_stack=True) by the user's Python frames at the outermost event; the value is its self time in
µs, so the graph's widths add up to the profiled time. Frames of identical paths are summed. Without
with_stack the event tree still gives a flame graph, so the file is never empty when anything was
recorded (torch #100253 wrote an empty one).
"""
from __future__ import annotations

import numpy as np

from ._nogc import no_gc
from ._atomic import write_bytes

METRICS = ("self_cpu_time_total", "self_cuda_time_total")


def _clean(s: str) -> str:
    return s.replace(";", ":").replace("\n", " ")


@no_gc
def folded_lines(store, metric="self_cpu_time_total"):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    values = store.self_ns if metric == "self_cpu_time_total" else store.self_dev_ns
    us = np.rint(values / 1e3).astype(np.int64)
    paths: dict[int, str] = {}
    parent = store.parent.tolist()
    names = [_clean(n) for n in store.names]
    name_id = store.name_id.tolist()
    totals: dict[str, int] = {}
    extra = store.extra
    for i in range(len(store)):                 # pre-order: a parent's path is made before its children's
        p = parent[i]
        if p >= 0:
            paths[i] = paths[p] + ";" + names[name_id[i]]
        else:                                   # a root: the user's frames (with_stack) lead to it
            st = extra[i][1] if extra is not None else None
            paths[i] = (";".join(_clean(f) for f in st) + ";" if st else "") + names[name_id[i]]
    for i in np.flatnonzero(us > 0).tolist():
        path = paths[i]
        totals[path] = totals.get(path, 0) + int(us[i])
    return [f"{k} {v}" for k, v in totals.items()]


def export_stacks(store, path, metric="self_cpu_time_total"):
    lines = folded_lines(store, metric)
    text = "\n".join(lines) + ("\n" if lines else "")
    # a lone surrogate (a name from record_function, a file name) is written as the text \udXXX
    write_bytes(path, text.encode("utf-8", "backslashreplace"), what="stacks")
    return path
