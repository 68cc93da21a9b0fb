"""Turning untrusted JSON values into columns: numbers to float64 (NaN when not a number), anything
to a hashable key or a display string. Shared by the model and the flow binder.
"""

from __future__ import annotations


import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Timestamps beyond this (in ns, about 146 years) cannot be meant and would overflow arithmetic.
TS_LIMIT = float(2**62)

# Below this many µs, a float64 of a decimal with at most 3 decimals, times 1000, rounds to its exact
# nanoseconds (each of the two roundings is off by under 1/8 ns). Above it (epoch-scale timestamps:
# 1.7e15 µs) float64 cannot hold the nanoseconds, and the decimal text must be read exactly.
EXACT_US = 2.0**50 / 1000


def epoch_floats(ts: list[Any]) -> bool:
    """Whether some ts is a float too large for float64 to hold its nanoseconds (cheap when none is):
    the loader then decodes the file again with exact decimals."""
    try:
        with np.errstate(invalid="ignore"):
            big = bool((np.abs(np.array(ts, dtype=np.float64)) >= EXACT_US).any())
    except (TypeError, ValueError, OverflowError):
        big = True
    return big and any(type(t) is float and abs(t) >= EXACT_US for t in ts)


def ns_array(values: list[Any]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Microsecond values as exact int64 nanoseconds, and which were usable: numbers, Decimals (what
    the loader decodes epoch-scale floats into) and numeric strings (Perfetto reads them), each on its
    own, so one bad value does not spoil the rest. Vectorised when everything is a number or a
    numeric string below EXACT_US; exact per value otherwise."""
    types = set(map(type, values))
    if Decimal in types:  # epoch-scale floats decoded exactly: read every one exactly
        if types <= {Decimal, int}:
            return _exact_ns(values)
    else:
        try:
            us = np.array(values, dtype=np.float64)
            if us.ndim == 1:
                ok = np.isfinite(us)  # NaN: a missing ts (None), "nan", or NaN itself, all unusable
                if (np.abs(us[ok]) < EXACT_US).all():
                    return np.where(ok, np.rint(us * 1000.0), 0).astype(np.int64), ok
        except (TypeError, ValueError, OverflowError):
            pass
    ns = list(map(value_ns, values))
    ok = np.fromiter((v is not None for v in ns), dtype=bool, count=len(ns))
    out = np.fromiter((0 if v is None else v for v in ns), dtype=np.int64, count=len(ns))
    return out, ok


def _exact_ns(values: list[Any]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Decimals and ints (all finite) as exact ns, in one tight loop: an epoch-scale trace has a million."""
    try:
        out = np.array([int((v * 1000).to_integral_value(ROUND_HALF_EVEN)) if type(v) is Decimal else v * 1000
                        for v in values], dtype=np.int64)
    except (OverflowError, ValueError, InvalidOperation):  # beyond int64, or a NaN Decimal: one at a time
        ns = list(map(value_ns, values))
        ok = np.fromiter((v is not None for v in ns), dtype=bool, count=len(ns))
        return np.fromiter((0 if v is None else v for v in ns), dtype=np.int64, count=len(ns)), ok
    ok = np.abs(out) < 2**62
    return np.where(ok, out, 0), ok


def value_ns(v: Any) -> int | None:
    """One µs value as exact integer ns (half to even), or None: not a number, or beyond TS_LIMIT."""
    t = type(v)
    if t is int:
        ns = v * 1000
    elif t is float:
        if not math.isfinite(v):
            return None
        ns = round(v * 1000.0) if abs(v) < EXACT_US else _decimal_ns(Decimal(repr(v)))
    elif t is Decimal:
        ns = _decimal_ns(v)
    elif t is str:
        ns = _decimal_ns(_decimal(v))
    else:
        return None
    return ns if ns is not None and abs(ns) < TS_LIMIT else None


def number(v: Any) -> float | None:
    """A number, Decimal or numeric string as a finite float (a counter's value), else None."""
    t = type(v)
    if t is int or t is float or t is Decimal:
        f = float(v)
    elif t is str:
        d = _decimal(v)
        if d is None:
            return None
        f = float(d)
    else:
        return None
    return f if math.isfinite(f) else None


def _decimal(s: str) -> Decimal | None:
    try:
        return Decimal(s.strip())
    except (InvalidOperation, ValueError):
        return None


def _decimal_ns(d: Decimal | None) -> int | None:
    if d is None or not d.is_finite() or abs(d) >= 2**62:
        return None
    return int((d * 1000).to_integral_value(ROUND_HALF_EVEN))


def num_array(values: list[Any]) -> NDArray[np.float64]:
    """Numbers as float64; anything that is not a number becomes NaN (and is reported later)."""
    try:
        arr = np.array(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr
    except (TypeError, ValueError, OverflowError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out[i] = math.nan
        else:
            try:
                out[i] = float(v)
            except OverflowError:
                out[i] = math.inf
    return out


def hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def pairs(pids: list[Any], tids: list[Any]) -> list[tuple[Any, Any]]:
    keys = list(zip(pids, tids))
    try:
        dict.fromkeys(keys)  # hashability check at C speed
        return keys
    except TypeError:
        return [(hashable(p), hashable(t)) for p, t in keys]


def unique(a: NDArray[Any]) -> NDArray[Any]:
    """np.unique(a) by a sort: NumPy 2.4's np.unique hashes, 10 to 50 times slower on these columns."""
    s = np.sort(a, kind="stable")
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_inverse(a: NDArray[Any], first: bool = False) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """(np.unique(a), where each element of a is in it); with `first`, where each distinct value first
    occurs in a instead (np.unique's return_index). By a stable sort (see unique)."""
    o = np.argsort(a, kind="stable")
    s = a[o]
    new = np.empty(len(s), bool)
    if len(s):
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
    if first:
        return s[new], o[new]
    inv = np.empty(len(a), np.intp)
    inv[o] = np.cumsum(new) - 1
    return s[new], inv


def first_seen_ids(a: NDArray[Any]) -> NDArray[np.int64]:
    """Each element's id: equal elements share one, numbered in order of first appearance (a dict's
    interning, by a stable sort)."""
    o = np.argsort(a, kind="stable")
    s = a[o]
    new = np.empty(len(s), bool)
    if len(s):
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
    group = np.cumsum(new) - 1  # per sorted position: its distinct value's rank by value
    rank = np.empty(int(new.sum()), np.int64)
    rank[np.argsort(o[new], kind="stable")] = np.arange(len(rank))
    out = np.empty(len(a), np.int64)
    out[o] = rank[group]
    return out


def floats_in_place(doc: Any) -> None:
    """Every Decimal inside lists and dicts replaced by its float, in place, without recursion (a document
    may nest deeper than Python's stack). The slow path reads an epoch-scale trace with exact decimals for its
    timestamps' nanoseconds; its records keep them, as the fast path's do, while the originals (details
    pane, args, metadata) then hold the floats the fast path's originals hold."""
    todo = [doc]
    while todo:
        c = todo.pop()
        items = c.items() if type(c) is dict else enumerate(c) if type(c) is list else ()
        for k, v in items:
            t = type(v)
            if t is Decimal:
                c[k] = float(v)
            elif t is dict or t is list:
                todo.append(v)


def text(v: Any) -> str:
    """A field as text; a number read exactly (Decimal, in an epoch-scale trace) reads as the float it is, so
    a label does not depend on which reader decoded the file ('1e+16', never '1E+16')."""
    if type(v) is str:
        return v
    if v is None:
        return ""
    return str(float(v)) if type(v) is Decimal else str(v)
