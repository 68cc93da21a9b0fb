"""Sums and maxima over the trailing dims of a NumPy array, for the short rows of a training
step's kernels (layer_norm, log_softmax, softmax and their backwards).

NumPy's ufunc reduce over a contiguous last axis pays per row: 64 rows of 32 floats take 5-6 µs to sum
and 9-16 µs to max. The same sums as one BLAS matrix-vector product with a vector of ones take about 1 µs
(float accumulation, as torch's CPU kernels accumulate float32: at::opmath_type<float> is float), and
the max of short rows is cheaper over the transposed copy (the same values: a max is exact). Other
dtypes, empty arrays and CuPy arrays take the plain reductions.
"""
from __future__ import annotations

import importlib

import numpy as np

from .._device import cuda_index
from . import _fastmath as _FM

BLAS_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_SHORT_ROW = 64     # rows up to this length reduce faster transposed (measured: 64x32 3 µs vs 9; 64x128 even)
_FEW_ROWS = 4       # up to this many rows the ufunc's own reduce (one call) beats the transposed copy (five)
_CONSTANTS: dict = {}     # the read-only vectors below, by (n, dtype) and by n


def ones_vector(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones (cached: a step asks for the same few)."""
    o = _CONSTANTS.get((n, dtype))
    return o if o is not None else _keep((n, dtype), np.ones(n, dtype))


def mean_vector(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n entries 1/n (cached), so that `rows @ mean_vector` is the rows' means in one
    BLAS product, without a division after it: the sum of x/n, bit for bit sum(x)/n where n is a power of two
    (layer_norm's usual widths), else within an ulp of it."""
    key = ("mean", n, dtype)
    v = _CONSTANTS.get(key)
    return v if v is not None else _keep(key, np.full(n, 1 / n, dtype))


def row_index(n: int) -> np.ndarray:
    """np.arange(n), read-only (cached: the row numbers nll_loss picks its entries by, twice a step)."""
    r = _CONSTANTS.get(n)
    return r if r is not None else _keep(n, np.arange(n))


def open_grid(xp, index, dim):
    """The index tuple that puts element i of `index` at (i0, .., index[i], .., in): an open grid of aranges, each
    shaped to broadcast along its own axis, with `index` itself along dim. (What NumPy's indices(shape,
    sparse=True) gives; CuPy's indices has no sparse= and would build the dense grid.) gather's and scatter's."""
    nd = index.ndim
    return tuple(index if d == dim else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - d - 1))
                 for d, n in enumerate(index.shape))


def take_along(a, index, dim):
    """np.take_along_axis(a, index, axis=dim) of NumPy arrays, `index` of a's ndim and no larger apart from dim:
    its own indexing by the open grid, without its Python checks; of a 2-d array (gather's q.gather(1, actions),
    max(1)'s values) by the cached row or column numbers."""
    if a.ndim == 2:
        return a[row_index(index.shape[0])[:, None], index] if dim == 1 else a[index, row_index(index.shape[1])]
    return a[open_grid(np, index, dim)]


def rows_on(xp, n: int, like):
    """The row numbers 0..n-1 on `like`'s backend and device: row_index(n) for NumPy; for CuPy a cached
    device vector too (each arange is a kernel launch, and nll_loss picks by rows twice a step)."""
    if xp is np:
        return row_index(n)
    key = ("cuda", cuda_index(like), n)
    r = _CONSTANTS.get(key)
    return r if r is not None else _keep(key, xp.arange(n))


def _keep(key, a: np.ndarray) -> np.ndarray:
    if len(_CONSTANTS) > 64:
        _CONSTANTS.clear()
    if type(a) is np.ndarray:
        a.flags.writeable = False       # CuPy arrays have no such flag: the device vectors are internal only
    _CONSTANTS[key] = a
    return a


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def as_rows(x, k=1):
    """(x as a 2-d array of rows over its last k dims, a vector of ones as long as a row) for the BLAS
    sums (`rows @ ones`), or None when x is not a non-empty float32/float64 NumPy array."""
    if type(x) is not np.ndarray or x.dtype not in BLAS_DTYPES or x.size == 0:
        return None
    m = x.shape[-1] if k == 1 and x.ndim else _size(x.shape[x.ndim - k:])
    return x.reshape(-1, m), ones_vector(m, x.dtype)


def row_sum(x, k=1):
    """x summed over its last k dims, kept as size-1 dims (np.add.reduce(x, those dims, keepdims=True))."""
    cut = x.ndim - k
    r = as_rows(x, k)
    if r is None:
        return x.sum(axis=tuple(range(cut, x.ndim)), keepdims=True)
    rows, ones = r
    return rows.dot(ones).reshape(x.shape[:cut] + (1,) * k)    # (the method: np.dot's dispatcher costs a call)


def row_max(x):
    """x's max over its last dim, kept as a size-1 dim (a non-empty array)."""
    c = x.shape[-1]
    if type(x) is not np.ndarray:
        return x.max(axis=-1, keepdims=True)
    if c > _SHORT_ROW or x.ndim < 2 or x.size <= _FEW_ROWS * c:
        return np.maximum.reduce(x, -1, keepdims=True)     # (ndarray.max's Python wrapper costs a call)
    m = np.maximum.reduce(x.reshape(-1, c).T.copy(), 0)
    return m.reshape(x.shape[:-1] + (1,))


def softmax_backward_rows(p, dp, out=None):
    """torch's _softmax_backward_data over the last dimension of NumPy arrays, p * (dp - sum(dp * p)), into `out`
    (None: in place in dp, which the caller then owns): float32 rows in C (_fastmath.softmax_backward_rows), others
    by NumPy."""
    if out is None:
        out = dp
    if _FM.softmax_backward_rows(p, dp, out) is not None:
        return out
    np.subtract(dp, row_sum(dp * p), out=out)
    out *= p
    return out


# --- maximum and minimum against 0 -----------------------------------------------------------------------------
# NumPy's maximum/minimum of an array and a scalar runs a scalar loop here, its clip ufunc with two bounds a SIMD
# one (65536 float32: maximum(x, 0) 33 us, clip(x, 0, inf) 13, an add 11; torch's relu 13). The ufunc itself:
# np.clip's Python wrapper costs 1.7 us more per call.
def _clip_ufunc():
    for name in ("numpy._core.umath", "numpy.core.umath"):      # NumPy >= 2, NumPy 1.26
        try:
            return importlib.import_module(name).clip
        except (ImportError, AttributeError):
            continue
    return np.clip                                               # pragma: no cover


clip_ufunc = _clip_ufunc()


def clamp_array(xp, a, lo, hi, out=None):
    """a clamped to [lo, hi] (number bounds, None for an open end) as torch's clamp: NaN kept, and -0.0 (NumPy's
    maximum(-0.0, 0) and one-bound clip give 0.0). A float NumPy array by the clip ufunc's two-bound loop, an open
    end infinite: SIMD, where NumPy's maximum/minimum against a scalar (and so its one-bound clip) is a scalar loop
    here at 2.5x the time; other arrays by xp.clip."""
    if xp is np and a.dtype.kind == "f":
        return clip_ufunc(a, -np.inf if lo is None else lo, np.inf if hi is None else hi, out=out)
    r = xp.clip(a, lo, hi, out=out)
    return r if out is not None or r.dtype == a.dtype or a.dtype.kind != "V" else r.astype(a.dtype)   # bfloat16's


def max0(xp, a, out=None):
    """maximum(a, 0) as torch's clamp_min(a, 0) (relu's kernel)."""
    return clamp_array(xp, a, 0, None, out)


def min0(xp, a, out=None):
    """minimum(a, 0) as torch's clamp_max(a, 0)."""
    return clamp_array(xp, a, None, 0, out)
