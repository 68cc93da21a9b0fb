"""torch-like printing: tensor([1., 2.]), 4 decimals when needed, suffixes for device/dtype/grad."""
from __future__ import annotations

import numpy as np

from . import _dtype as D


_THRESHOLD, _EDGE, _PRECISION = 1000, 3, 4


def _summarized(a: np.ndarray) -> np.ndarray:
    """The elements torch prints of a large array (the first and last 3 along every dim): what it sizes
    the columns from."""
    if a.size <= _THRESHOLD:
        return a
    for axis in range(a.ndim):
        if a.shape[axis] > 2 * _EDGE:
            a = np.concatenate([a.take(range(_EDGE), axis), a.take(range(a.shape[axis] - _EDGE, a.shape[axis]),
                                                                   axis)], axis)
    return a


def _float_formatter(a: np.ndarray):
    """torch's _Formatter for floating tensors: integer mode ("3."), fixed ("3.1416") or scientific
    ("3.1416e+00", when the nonzero finite magnitudes span more than 1000x, exceed 1e8, or a fraction is
    below 1e-4), every element right-aligned to the widest."""
    vals = _summarized(a).reshape(-1)
    vals = vals[np.isfinite(vals) & (vals != 0)].astype(np.float64)
    int_mode, sci, width = True, False, 1
    if vals.size:
        mags = np.abs(vals)
        lo, hi = mags.min(), mags.max()
        int_mode = bool(np.all(vals == np.ceil(vals)))
        sci = hi / lo > 1000.0 or hi > 1.0e8 or (not int_mode and lo < 1.0e-4)
        spec = "{:.%de}" % _PRECISION if sci else "{:.0f}" if int_mode else "{:.%df}" % _PRECISION
        width = max(len(spec.format(v)) for v in vals) + (1 if int_mode and not sci else 0)

    def fmt(x) -> str:
        x = float(x)
        if sci:
            ret = ("{:.%de}" % _PRECISION).format(x)
        elif int_mode:
            ret = f"{x:.0f}" + ("" if np.isinf(x) or np.isnan(x) else ".")
        else:
            ret = ("{:.%df}" % _PRECISION).format(x)
        return ret.rjust(width)
    return fmt


def _fmt_array(a: np.ndarray) -> str:
    if a.dtype == D.BF16:
        a = a.astype(np.float32)        # printed from its float32 value, as torch prints bfloat16
    text = np.array2string(a, separator=", ", prefix="tensor(", threshold=_THRESHOLD, edgeitems=_EDGE,
                           formatter={"float_kind": _float_formatter(a)} if a.dtype.kind == "f" else None,
                           max_line_width=80)
    return text.replace(", ...,", ",  ...,") if a.size > _THRESHOLD else text     # torch's " ..." column


def tensor_repr(t) -> str:
    d = t._data
    if type(d) is not np.ndarray:
        from ._sync import note_sync
        note_sync(t, "print")
    host = d if type(d) is np.ndarray else d.get()
    body = _fmt_array(host)
    extras = []
    if type(d) is not np.ndarray:
        extras.append(f"device='{t.device}'")
    dt = D.from_np(d.dtype)
    default_shown = dt in (D.get_default_dtype(), D.int64, D.bool_)
    if d.size == 0:
        if d.ndim != 1:
            extras.append(f"size={tuple(d.shape)}")      # torch: tensor([]) for shape (0,) only
        default_shown = dt is D.get_default_dtype()
    if not default_shown:
        extras.append(f"dtype={dt}")
    if t._grad_fn is not None:
        extras.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    s = "tensor(" + body
    for e in extras:
        s += ", " + e
    return s + ")"
