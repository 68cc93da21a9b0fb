"""Turning untrusted JSON values into columns: numbers to float64 (NaN when not a number), anything
to a hashable key or a display string. Shared by the model and the flow binder.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Timestamps beyond this (in ns, about 146 years) cannot be meant and would overflow arithmetic.
TS_LIMIT = float(2**62)


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


def text(v: Any) -> str:
    return v if type(v) is str else ("" if v is None else str(v))
