"""torch-like printing: tensor([1., 2.]), 4 decimals when needed, suffixes for device/dtype/grad."""
from __future__ import annotations

import sys

import numpy as np

from . import _dtype as D
from ._sparse import SparseCOO


class _PrintOptions:
    """torch's PRINT_OPTS: what torch.set_printoptions sets and every repr reads (process-wide, as torch's)."""
    precision = 4
    threshold: float = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrintOptions()

_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, float("inf"), 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """torch.set_printoptions: a profile ("default", "short", "full"; any other name is ignored, as torch
    ignores it) first, then each option given; `sci_mode` is always set (None: chosen from the values), as
    torch's, so a call without it turns a forced mode off."""
    o = PRINT_OPTS
    if profile in _PROFILES:
        o.precision, o.threshold, o.edgeitems, o.linewidth = _PROFILES[profile]
    if precision is not None:
        o.precision = precision
    if threshold is not None:
        o.threshold = threshold
    if edgeitems is not None:
        o.edgeitems = edgeitems
    if linewidth is not None:
        o.linewidth = linewidth
    o.sci_mode = sci_mode


def get_printoptions() -> dict:
    """torch.get_printoptions: the current options as a dict."""
    o = PRINT_OPTS
    return {"precision": o.precision, "threshold": o.threshold, "edgeitems": o.edgeitems,
            "linewidth": o.linewidth, "sci_mode": o.sci_mode}


def _threshold() -> int:
    t = PRINT_OPTS.threshold
    return sys.maxsize if t == float("inf") else int(t)


def _summarized(a: np.ndarray) -> np.ndarray:
    """The elements torch prints of a large array (the first and last `edgeitems` along every dim): what it
    sizes the columns from."""
    if a.size <= PRINT_OPTS.threshold:
        return a
    edge = PRINT_OPTS.edgeitems
    for axis in range(a.ndim):
        if a.shape[axis] > 2 * edge:
            a = np.concatenate([a.take(range(edge), axis), a.take(range(a.shape[axis] - edge, a.shape[axis]),
                                                                  axis)], axis)
    return a


def _float_formatter(a: np.ndarray):
    """torch's _Formatter for floating tensors: integer mode ("3."), fixed ("3.1416") or scientific
    ("3.1416e+00", when the nonzero finite magnitudes span more than 1000x, exceed 1e8, or one is below
    1e-4, unless set_printoptions(sci_mode=) forces it), every element right-aligned to the widest."""
    prec = PRINT_OPTS.precision
    vals = _summarized(a).reshape(-1)
    vals = vals[np.isfinite(vals) & (vals != 0)].astype(np.float64)
    int_mode, sci, width = True, False, 1
    if vals.size:
        mags = np.abs(vals)
        lo, hi = mags.min(), mags.max()
        int_mode = bool(np.all(vals == np.ceil(vals)))
        sci = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if PRINT_OPTS.sci_mode is None \
            else bool(PRINT_OPTS.sci_mode)
        spec = "{:.%de}" % prec if sci else "{:.0f}" if int_mode else "{:.%df}" % prec
        width = max(len(spec.format(v)) for v in vals) + (1 if int_mode and not sci else 0)

    def fmt(x) -> str:
        x = float(x)
        if sci:
            ret = ("{:.%de}" % prec).format(x)
        elif int_mode:
            ret = f"{x:.0f}" + ("" if np.isinf(x) or np.isnan(x) else ".")
        else:
            ret = ("{:.%df}" % prec).format(x)
        return ret.rjust(width)
    return fmt, width


def _int_formatter(a: np.ndarray):
    """torch's _Formatter for integer and bool tensors: str() of each value, right-aligned to the widest."""
    width = max([len(str(v)) for v in _summarized(a).reshape(-1).tolist()] or [1])
    return lambda x: str(x).rjust(width), width


def _vector(a, indent: int, summarize: bool, fmt, width: int) -> str:
    """torch's _vector_str: as many elements a line as fit `linewidth` (each its width plus ", "), the
    middle of a long summarized row as " ..."."""
    o = PRINT_OPTS
    per_line = max(1, (o.linewidth - indent) // (width + 2))
    if summarize and not o.edgeitems:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * o.edgeitems:
        data = [fmt(v) for v in a[:o.edgeitems].tolist()] + [" ..."] + \
            [fmt(v) for v in a[a.shape[0] - o.edgeitems:].tolist()]
    else:
        data = [fmt(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a, indent: int, summarize: bool, fmt, width: int) -> str:
    """torch's _tensor_str_with_formatter: rows of rows, a blank line between blocks per extra dim."""
    if a.ndim == 0:
        return fmt(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt, width)
    edge = PRINT_OPTS.edgeitems
    if summarize and a.shape[0] > 2 * edge:
        rows = list(range(edge)) + [None] + list(range(a.shape[0] - edge, a.shape[0]))
    else:
        rows = list(range(a.shape[0]))
    slices = ["..." if i is None else _nested(a[i], indent + 1, summarize, fmt, width) for i in rows]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _fmt_array(a: np.ndarray, indent: int = 7) -> str:
    """The body of the repr, laid out as torch's _tensor_str (summarized past `threshold` elements)."""
    if a.size == 0:
        return "[]"
    if a.dtype == D.BF16:
        a = a.astype(np.float32)        # printed from its float32 value, as torch prints bfloat16
    if a.dtype.kind == "c":
        fmt, width = _complex_formatter(a)
    else:
        fmt, width = _float_formatter(a) if a.dtype.kind == "f" else _int_formatter(a)
    return _nested(a, indent, a.size > PRINT_OPTS.threshold, fmt, width)


def _complex_formatter(a: np.ndarray):
    """torch's complex printing: one _Formatter for the real parts and one for the imaginary parts, an element
    "re+imj" (the imaginary part's own sign, left-stripped), its width both formatters' and the "j"."""
    fre, wre = _float_formatter(np.ascontiguousarray(a.real))
    fim, wim = _float_formatter(np.ascontiguousarray(a.imag))

    def fmt(x) -> str:
        x = complex(x)
        im = (fim(x.imag) + "j").lstrip()
        return fre(x.real) + (im if im[0] in "+-" else "+" + im)
    return fmt, wre + wim + 1


def _add_suffixes(text: str, suffixes: list, indent: int = 7, force_newline: bool = False) -> str:
    """torch's _add_suffixes: ", device=..." on the last line while it fits `linewidth`, else on its own
    line under the first bracket (the first suffix always there with force_newline: a sparse tensor's)."""
    parts = [text]
    last = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if force_newline or last + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
            force_newline = False
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(parts) + ")"


def _sparse_part(a, indent: int) -> str:
    """An inner tensor of a sparse tensor's repr (its indices or values): torch's _tensor_str at `indent`,
    with the size of an empty one."""
    body = _fmt_array(a, indent)
    return body + (f", size={tuple(a.shape)}" if a.size == 0 else "")


def _sparse_repr(t) -> str:
    """torch's repr of a sparse COO tensor: its indices and values, then size, nnz, dtype and layout."""
    d = t._data
    idx, vals = d.indices, d.values
    if type(vals) is not np.ndarray:
        from ._sync import note_sync
        note_sync(t, "print")
        idx, vals = idx.get(), vals.get()
    text = ("tensor(indices=tensor(" + _sparse_part(idx, 7 + len("indices=tensor(")) + "),\n" + " " * 7
            + "values=tensor(" + _sparse_part(vals, 7 + len("values=tensor(")) + ")")
    extras = [f"size={tuple(d.shape)}", f"nnz={d.nnz}"]
    if type(d.values) is not np.ndarray:
        extras.append(f"device='{t.device}'")
    dt = D.from_np(d.dtype)
    if dt not in (D.get_default_dtype(), D.int64, D.bool_):
        extras.append(f"dtype={dt}")
    extras.append("layout=torch.sparse_coo")
    if t._grad_fn is not None:
        extras.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return _add_suffixes(text, extras, force_newline=True)


def tensor_repr(t) -> str:
    d = t._data
    if type(d) is SparseCOO:
        return _sparse_repr(t)
    if type(d) is not np.ndarray:
        from ._sync import note_sync
        note_sync(t, "print")
    host = d if type(d) is np.ndarray else d.get()
    body = _fmt_array(host)
    extras = []
    if type(d) is not np.ndarray:
        extras.append(f"device='{t.device}'")
    dt = D.from_np(d.dtype)
    default_shown = dt in (D.get_default_dtype(), D.default_complex(), D.int64, D.bool_)
    if d.size == 0:
        if d.ndim != 1:
            extras.append(f"size={tuple(d.shape)}")      # torch: tensor([]) for shape (0,) only
        default_shown = dt is D.get_default_dtype()
    elif not PRINT_OPTS.edgeitems:
        extras.append(f"size={tuple(d.shape)}")          # torch: nothing of the values shows, the size does
    if not default_shown:
        extras.append(f"dtype={dt}")
    if t._grad_fn is not None:
        extras.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return _add_suffixes("tensor(" + body, extras)
