"""torch-like printing: tensor([1., 2.]), 4 decimals when needed, suffixes for device/dtype/grad."""
from __future__ import annotations

import numpy as np

from . import _dtype as D


def _fmt_array(a: np.ndarray) -> str:
    if a.dtype == D.BF16:
        a = a.astype(np.float32)        # printed from its float32 value, as torch prints bfloat16
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)]
        ints = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        big = finite.size and (np.abs(finite).max() >= 1e8 or (np.abs(finite[finite != 0]).min() < 1e-4
                                                               if np.any(finite != 0) else False))
        if big:
            spec = "{:.4e}"
        elif ints:
            spec = "{:.0f}."
        else:
            spec = "{:.4f}"
        return np.array2string(a, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
                               formatter={"float_kind": lambda x: spec.format(x) if big or np.isfinite(x) else str(x)},
                               max_line_width=80)
    if a.dtype == np.bool_:
        return np.array2string(a, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3, max_line_width=80)
    return np.array2string(a, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3, max_line_width=80)


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
        extras.append(f"size={tuple(d.shape)}")
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
