"""exp and tanh of large float32 NumPy arrays by tensorlib._cmath's AVX2 loops, where NumPy's own are scalar loops.

NumPy vectorises its float32 exp only on CPUs with the whole x86-64-v3 set; on one that lacks a part of it (some
cloud VMs report AVX2 and FMA without the rest) np.exp costs about 2 ns an element, 3-4x the vector loop, and a
language model's softmax over its vocabulary spends most of its time there (torch's exp is vectorised on any AVX2
CPU). `exp(x, out=None)` is np.exp(x) (into `out` when given), computed by tensorlib/_cmath.c for a C-contiguous
float32 array of at least MIN_SIZE elements when the extension is built and the CPU has AVX2 and FMA: the same
values within 1 ulp of the correctly rounded result (NumPy's are within 3), inf, NaN, overflow and values below
FLT_MIN as libm's expf gives them; no warning for an overflow (NumPy's ufunc warns, where it is not silenced).
`TENSORLIB_NATIVE=0` turns it off with the other C parts (tensorlib/_native.py)."""
from __future__ import annotations

import numpy as np

from .._native import load

__all__ = ["exp", "tanh", "MIN_SIZE", "FAST"]

_M = load("tensorlib._cmath")
FAST = _M is not None and bool(_M.available())
MIN_SIZE = 2048     # below it the call's fixed cost (~1 µs) eats the gain (measured: 2048 float32, 3.1 -> 1.7 µs)
_F32 = np.dtype(np.float32)


def _apply(fast, slow, x, out):
    if FAST and type(x) is np.ndarray and x.dtype == _F32 and x.size >= MIN_SIZE and x.flags.c_contiguous:
        if out is None:
            out = np.empty(x.shape, _F32)
            fast(x, out)
            return out
        if type(out) is np.ndarray and out.dtype == _F32 and out.shape == x.shape and out.flags.c_contiguous \
                and out.flags.writeable:
            fast(x, out)
            return out
    return slow(x) if out is None else slow(x, out=out)


def exp(x, out=None):
    """np.exp(x) (in `out`, when given), by the AVX2 loop where it applies (see the module's docstring)."""
    return _apply(_EXP, np.exp, x, out)


def tanh(x, out=None):
    """np.tanh(x) (in `out`, when given), likewise (Cephes' tanhf on the vector exp: within 1 ulp, NumPy's float32
    tanh within 1 too but a scalar loop here: 64x32000, 17.6 -> 1.9 ms)."""
    return _apply(_TANH, np.tanh, x, out)


_EXP = _M.exp_f32 if _M is not None else None
_TANH = _M.tanh_f32 if _M is not None else None
