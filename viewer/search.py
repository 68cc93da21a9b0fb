"""Search over names, categories and args: case-insensitive substring, or a regex as /pattern/.

Names and categories are matched once per distinct string (then spread to events with NumPy); args
need a pass over the events that have any, which is the slow part, so it runs only when asked.
"""

from __future__ import annotations

import re

import numpy as np

from .model import Trace


class SearchError(ValueError):
    pass


def compile_query(query: str):
    q = query.strip()
    if len(q) >= 2 and q.startswith("/") and q.endswith("/"):
        try:
            rx = re.compile(q[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise SearchError(f"bad regex: {exc}") from None
        return rx.search
    low = q.lower()
    return lambda s: low in s.lower()


def _args_text(ev) -> str:
    args = ev.get("args") if isinstance(ev, dict) else None
    if not args:
        return ""
    if isinstance(args, dict):
        return " ".join(f"{k}={v}" for k, v in args.items())
    return str(args)


def search(trace: Trace, query: str, include_args: bool = True) -> np.ndarray:
    """Indices of matching events, in time order."""
    if not query.strip():
        return np.zeros(0, dtype=np.int64)
    match = compile_query(query)
    name_hit = np.array([bool(match(n)) for n in trace.names], dtype=bool)
    cat_hit = np.array([bool(match(c)) for c in trace.cats], dtype=bool)
    mask = np.zeros(len(trace), dtype=bool)
    if len(trace):
        mask = name_hit[trace.name_id] | cat_hit[trace.cat_id]
        if include_args:
            rest = np.flatnonzero(~mask)
            raw = trace.raw
            hits = [i for i in rest.tolist() if match(_args_text(raw[i]))]
            mask[hits] = True
    idx = np.flatnonzero(mask)
    return idx[np.argsort(trace.ts[idx], kind="stable")]
