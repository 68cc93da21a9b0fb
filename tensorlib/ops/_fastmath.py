"""exp and tanh of large float32 NumPy arrays by tensorlib._cmath's AVX2 loops, where NumPy's own are scalar loops;
layer_norm's forward and backward on small arrays by its loops over rows (see layer_norm); exact GELU's float32
forward and backward by loops doing unary_math.normal_cdf32's steps per element (see gelu).

NumPy vectorises its float32 exp only on CPUs with the whole x86-64-v3 set; on one that lacks a part of it (some
cloud VMs report AVX2 and FMA without the rest) np.exp costs about 2 ns an element, 3-4x the vector loop, and a
language model's softmax over its vocabulary spends most of its time there (torch's exp is vectorised on any AVX2
CPU). `exp(x, out=None)` is np.exp(x) (into `out` when given), computed by tensorlib/_cmath.c for a C-contiguous
float32 array of at least MIN_SIZE elements when the extension is built, the CPU has AVX2 and FMA and NumPy's own
exp is not vectorised on it (VECTOR_LOOPS): the same
values within 1 ulp of the correctly rounded result (NumPy's are within 3), inf, NaN, overflow and values below
FLT_MIN as libm's expf gives them; no warning for an overflow (NumPy's ufunc warns, where it is not silenced).
`TENSORLIB_NATIVE=0` turns it off with the other C parts (tensorlib/_native.py)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import _dtype as D
from .._native import load

__all__ = ["exp", "tanh", "vml", "sigmoid", "nll_sum", "add_rows", "bind_adam_sqrt", "addcdiv_", "fma", "FMA_ADD",
           "FMA_LERP", "FMA_ADDCMUL", "FMA_TANH_BACKWARD", "threshold_backward", "copy_", "astype", "gelu",
           "gelu_backward", "layer_norm", "layer_norm_backward", "batch_norm", "batch_norm_backward",
           "log_softmax_backward_rows", "lstm_step", "lstm_step_backward", "transposed", "MIN_SIZE", "LN_MAX", "FAST",
           "VECTOR_LOOPS", "ADAM", "ADAM_MAX", "stamps", "fused_adam", "HAS_FUSED_ADAM", "cascade_sum", "add_reduce",
           "silu"]

_M = load("tensorlib._cmath")
FAST = _M is not None and bool(_M.available())


def _numpy_vectorises() -> bool:
    """Whether NumPy runs its SIMD float32 exp and tanh on this CPU: it dispatches them to x86-64-v3 and later."""
    import importlib
    f: dict = {}
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):     # NumPy 2.x, 1.x
        try:
            f = importlib.import_module(name).__cpu_features__
            break
        except (ImportError, AttributeError):
            continue
    if "X86_V3" in f:
        return bool(f["X86_V3"])
    return bool(f.get("AVX512_SKX")) or all(f.get(k) for k in ("AVX", "AVX2", "FMA3", "F16C", "BMI", "BMI2", "LZCNT",
                                                                "MOVBE"))


# exp and tanh on the C loops: where they are built and NumPy's own are scalar. Where NumPy's are vectorised they are
# as quick or quicker (AVX-512: 6.5M float32, exp 3.2 against 3.4 ms, tanh 1.9 against 4.9).
VECTOR_LOOPS = FAST and not _numpy_vectorises()
MIN_SIZE = 2048     # below it the call's fixed cost (~1 µs) eats the gain (measured: 2048 float32, 3.1 -> 1.7 µs)
_F32 = np.dtype(np.float32)
_FLOATS = (_F32, np.dtype(np.float64))     # the dtypes of the loops that take both


def _apply(fast, slow, x, out):
    if VECTOR_LOOPS and type(x) is np.ndarray and x.dtype == _F32 and x.size >= MIN_SIZE and x.flags.c_contiguous:
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
    tanh within 1 too but a scalar loop here: 64x32000, 17.6 -> 1.9 ms). (The TANH op itself takes MKL VML's first,
    see vml; the recurrent layers' and mish's kernels this.)"""
    return _apply(_TANH, np.tanh, x, out)


_VML = getattr(_M, "vml", None) if _M is not None else None


def vml(name, x, out=None):
    """f(x) into `out` (a new array when None) by MKL VML's v?<name> (Exp, Ln, Sqrt, Tanh, Sin, Cos, Tan, Asin, Acos,
    Atan, Log2, Log10, Erf, Erfc, ErfInv), for a C-contiguous NumPy float32/float64 array below 2**31 elements where
    MKL is loaded (_blas.vml_function: the mkl wheel, not TENSORLIB_BLAS=numpy); None elsewhere (the caller runs
    NumPy's); torch's values need torch's MKL release line (the `mkl` extra's pin: 2026.2's exp differed). torch's
    CPU build computes these functions of contiguous float tensors by VML (ATen/cpu/vml.h), whose results are not
    all correctly rounded (tanh, sin, cos, tan, log2 and log10 float32 differed from NumPy's in 13-48% of elements,
    sqrt in 0.7%): through the same functions the values are torch's to the bit (tests/tensorlib/test_fastmath.py;
    devtools/torch_compat checks them against torch). The checks are the C call's (a refused buffer: None), the
    address looked up once per name and dtype: ~0.9 µs a call on a small array, np.tanh's 0.4."""
    if _VML is None or type(x) is not np.ndarray:
        return None
    dt = x.dtype
    table = _VML32 if dt is _F32 else _VML64 if dt is _F64 else None
    if table is None:
        return None
    fn = table.get(name, False)
    if fn is False:
        from .. import _blas
        fn = table[name] = _blas.vml_function(name, dt)
    if fn is None:
        return None
    o = np.empty(x.shape, dt) if out is None else out
    try:
        _VML(fn, x, o)
    except (ValueError, BufferError, TypeError):     # (strided, read-only out, another dtype, 2**31 elements)
        return None
    return o


_VML32: dict = {}      # VML name -> its vs function's address (None: not loaded), looked up on first use
_VML64: dict = {}


_SIGMOID: Any = getattr(_M, "sigmoid_f32", None) if FAST and _M is not None else None
_CAPABILITY = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()     # torch's own override of its vector width
if FAST and _M is not None and _CAPABILITY in ("avx2", "avx512"):
    _M.torch_lanes(8 if _CAPABILITY == "avx2" else 16)


def float_lanes() -> int:
    """The float32 lanes of torch's Vectorized<float> on this CPU (16 with AVX-512, 8 with AVX2), whose vectorised
    loops take chunks of twice their vector size and leave the rest to their scalar lambda."""
    return _M.torch_lanes() if FAST and _M is not None and hasattr(_M, "torch_lanes") else 8


_SUM_CASCADE: Any = getattr(_M, "sum_cascade", None) if FAST and _M is not None else None


def cascade_sum(a, ax=None, keepdim=False):
    """a.sum(axis=ax, keepdims=keepdim) in torch's order (tensorlib/_cmath.c sum_cascade: its cascade of partial sums
    on its AVX2 build's lanes, to the bit at 1 thread), or None where that does not apply: a C-contiguous,
    non-empty float32/float64 NumPy array whose reduced axes (ax a tuple of non-negative ints, None for all), size-1
    axes aside, are adjacent (NumPy's pairwise sums differ from torch's in the last bits: a bias gradient's sum
    over a batch of 100 in 7 of 10 columns)."""
    if _SUM_CASCADE is None or type(a) is not np.ndarray or not a.size or not a.flags.c_contiguous:
        return None
    dt = a.dtype
    if dt != _F32 and dt != _F64:
        return None
    shape = a.shape
    outer = red = inner = 1
    state = 0       # 0: before the reduced block, 1: in it, 2: past it
    for d, n in enumerate(shape):
        if ax is None or d in ax:
            if n != 1:
                if state == 2:
                    return None
                state = 1
                red *= n
        elif n != 1:
            if state == 0:
                outer *= n
            else:
                state = 2
                inner *= n
    if red == 1:
        return None
    if ax is None:
        out_shape = (1,) * len(shape) if keepdim else ()
    elif keepdim:
        out_shape = tuple(1 if d in ax else n for d, n in enumerate(shape))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in ax)
    out = np.empty(out_shape, dt)
    _SUM_CASCADE(a, out, outer, red, inner)
    return out


def add_reduce(a, axis=None, dtype=None, out=None, keepdims=False):
    """np.add.reduce(a, axis, dtype, out, keepdims)'s value in torch's summation order where `cascade_sum` takes the
    array (dtype and out None), else NumPy's (a 0-d array for a full sum where NumPy gives a scalar)."""
    if dtype is None and out is None and type(a) is np.ndarray:
        if type(axis) is int:
            axis = (axis % a.ndim,) if a.ndim else None
        r = cascade_sum(a, axis, keepdims)
        if r is not None:
            return r
    return np.add.reduce(a, axis, dtype, out, keepdims)


_FUSED_ADAM: Any = getattr(_M, "fused_adam", None) if FAST and _M is not None else None
HAS_FUSED_ADAM = _FUSED_ADAM is not None        # (fused_adam below runs)


def fused_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps, adamw,
               maximize):
    """torch's fused Adam / AdamW step (fused=True: _fused_adam_ / _fused_adamw_, its CPU kernel FusedAdamKernel.cpp)
    on lists of the parameters' NumPy arrays, in place, to the bit (tensorlib/_cmath.c fused_adam: float32 arithmetic,
    each result rounded once where stored, in the vector loop and scalar rest of torch's AVX2 build):
    max_exp_avg_sqs None without amsgrad, steps the counts (floats) after this step's increment. The caller has
    checked the arrays: C-contiguous, each parameter's of one shape and dtype, float32, bfloat16, or float16 (through
    float32 copies, rounded back once). False where the extension is missing (nothing written)."""
    if _FUSED_ADAM is None:
        return False
    lanes = 8       # (torch's AVX2 build: its fused kernel is registered without AVX-512, 8 floats, 16 halves)
    lists = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if max_exp_avg_sqs is not None else [])
    dt = params[0].dtype if params else _F32
    if dt == _F32 and all(x.dtype == _F32 for x in params):
        _FUSED_ADAM(*lists, *([] if max_exp_avg_sqs is not None else [None]), steps, lr, beta1, beta2, weight_decay,
                    eps, adamw, maximize, lanes)
        return True
    for k, x in enumerate(params):          # parameter by parameter: each one's dtype
        one = [[a[k]] for a in lists]
        if x.dtype == _F32:
            arrays, back = one, None
        elif x.dtype == D.BF16:
            arrays, back = [[a[0].view(np.uint16)] for a in one], None
        else:                               # float16: float32 copies, the results rounded back once
            arrays = [[a[0].astype(np.float32)] for a in one]
            back = [(one[i][0], arrays[i][0]) for i in (0, 2, 3, 4) if i < len(one)]
        _FUSED_ADAM(*arrays, *([] if max_exp_avg_sqs is not None else [None]), [steps[k]], lr, beta1, beta2,
                    weight_decay, eps, adamw, maximize, 2 * lanes if x.dtype != _F32 else lanes)
        for a, b in back or ():
            a[...] = b
    return True


def sigmoid(x, out=None):
    """torch's float32 sigmoid to the bit (tensorlib/_cmath.c sigmoid_f32: Sleef's vectorised exp as torch's
    Vectorized<float>::exp, libm's over the scalar tail its kernel leaves, on torch's lane count for this CPU) into
    `out` (x itself for in place) or a new array, which it returns, for a C-contiguous float32 NumPy array where
    the AVX2 path runs; None elsewhere (the caller runs its NumPy formula, within an ulp)."""
    if _SIGMOID is None or type(x) is not np.ndarray or x.dtype != _F32 or not x.flags.c_contiguous:
        return None
    if out is None:
        out = np.empty(x.shape, _F32)
    _SIGMOID(x, out)
    return out


_SILU: Any = getattr(_M, "silu_f32", None) if FAST and _M is not None else None


def silu(x, g=None):
    """torch's float32 silu (g None) or silu_backward(g, x) to the bit (tensorlib/_cmath.c silu_f32: Sleef's
    vectorised exp, libm's over the scalar tail, on torch's lane count for this CPU; the backward's
    1 + x * (1 - s) one fused multiply-add, as GCC builds torch's kernel), as a new array, for C-contiguous float32
    NumPy arrays of one shape where the AVX2 path runs; None elsewhere (the caller runs its NumPy formula)."""
    if _SILU is None or type(x) is not np.ndarray or x.dtype != _F32 or not x.flags.c_contiguous:
        return None
    if g is not None and (type(g) is not np.ndarray or g.dtype != _F32 or g.shape != x.shape
                          or not g.flags.c_contiguous):
        return None
    out = np.empty(x.shape, _F32)
    return out if _SILU(g, x, out, float_lanes()) else None


_ADD_ROWS: Any = getattr(_M, "add_rows", None) if _M is not None else None


def add_rows(out, index, src) -> bool:
    """np.add.at(out, index, src) along dim 0 in one C pass (tensorlib/_cmath.c add_rows: out[index[i]] += src[i] in
    order, the same additions in the same order as add.at's), for a C-contiguous writable float32/float64 NumPy `out`
    of a dim at least, an integer `index` array (negative entries wrap) and a `src` of out's dtype and shape
    index.shape + out.shape[1:] (copied C-contiguous first where it is not). True where it ran; False with nothing
    written where it does not apply or an index is out of range (the caller runs add.at, which says so)."""
    if _ADD_ROWS is None or type(out) is not np.ndarray or type(index) is not np.ndarray \
            or type(src) is not np.ndarray or out.dtype not in _FLOATS or src.dtype != out.dtype or out.ndim == 0 \
            or index.ndim == 0 \
            or index.dtype.kind not in "iu" or not index.size or src.shape != index.shape + out.shape[1:] \
            or not out.flags.c_contiguous or not out.flags.writeable:
        return False
    if not src.flags.c_contiguous:      # (a slice of a wider gradient: one copy, still far below add.at's cost)
        src = np.ascontiguousarray(src)
    index = index.reshape(-1)           # (an index of any shape: its entries in order, src's rows likewise)
    size = out.shape[0]
    if index.dtype != _I64:             # (an unsigned index past int64's range must not wrap on the cast)
        if index.dtype.kind == "u" and int(index.max()) >= size:
            return False
        index = index.astype(_I64)
    try:
        _ADD_ROWS(out, index, src)      # (its checks run before any addition: range, overlap)
    except ValueError:
        if not -size <= int(index.min()) < 0 or int(index.max()) >= size:
            return False                # (out of range, or out and src overlapping)
        try:
            _ADD_ROWS(out, np.where(index < 0, index + size, index), src)     # negative entries wrap, as add.at's
        except ValueError:
            return False
    return True


_NLL_SUM: Any = getattr(_M, "nll_sum", None) if _M is not None else None


def nll_sum(picked, w=None, keep=None):
    """(-sum(picked * w), sum(w)) over the rows where `keep` is not 0, as torch's nll_loss sums a batch's picked
    log-probabilities and their class weights (its cascade of partial sums, skipping ignored rows: tensorlib/_cmath.c
    nll_sum), as NumPy scalars of picked's dtype; w None: no class weights (the count of kept rows), keep None: every
    row. For C-contiguous float32/float64 NumPy arrays of one dtype and length; None elsewhere (the caller sums as
    NumPy does)."""
    if _NLL_SUM is None or type(picked) is not np.ndarray or picked.dtype not in _FLOATS \
            or not picked.flags.c_contiguous:
        return None
    for a in (w, keep):
        if a is not None and (type(a) is not np.ndarray or a.dtype != picked.dtype or a.shape != picked.shape
                              or not a.flags.c_contiguous):
            return None
    t = picked.dtype.type
    loss, total = _NLL_SUM(picked, w, keep)
    return t(loss), t(total)


_EXP = _M.exp_f32 if _M is not None else None
_TANH = _M.tanh_f32 if _M is not None else None


_ADDCDIV = getattr(_M, "addcdiv_", None) if _M is not None else None
_LEAKY: Any = getattr(_M, "leaky_f32", None) if FAST and _M is not None else None


def leaky(x, a, s):
    """where(x > 0, a, a * s) in one AVX2 pass (tensorlib/_cmath.c) -- leaky_relu's kernel (a is x) and its backward's
    (a the gradient), torch's values for every slope --, as a new array, where x and a are C-contiguous float32
    arrays of one shape and at least MIN_SIZE elements; None where not (the caller then runs NumPy's)."""
    if _LEAKY is None or type(x) is not np.ndarray or type(a) is not np.ndarray or x.dtype != _F32 \
            or a.dtype != _F32 or x.shape != a.shape or x.size < MIN_SIZE \
            or not (x.flags.c_contiguous and a.flags.c_contiguous):
        return None
    out = np.empty(x.shape, _F32)
    _LEAKY(x, a, out, s)
    return out


def _adam_loops():
    """tensorlib/_cmath.c's Adam step (adam_step, adam_moments, adam_update: see optim/adam.py) once its reading of
    NumPy's array struct is checked against what NumPy reports of a few arrays (data address, size, dtype and
    flags, among them a strided view and a read-only array); None where that check fails or C is not built."""
    if _M is None or not hasattr(_M, "adam_setup"):
        return None
    ro = np.zeros(4)
    ro.flags.writeable = False
    arrays = (np.empty((3, 5), np.float32), np.empty(11), np.zeros(()), np.empty((4, 6), np.float32)[:, ::2],
              np.empty(3, np.int64), ro, np.empty((0, 2), np.float32))
    probes = tuple((a, a.ctypes.data, a.size, a.dtype, a.flags.num) for a in arrays)
    if not _M.adam_setup(np.ndarray, probes, np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)):
        return None
    return _M


_TRANSPOSE = _M.transpose_scaled if _M is not None else None


def transposed(w, scale=None):
    """(w * scale[:, None]).T as a new C-contiguous array (scale None: w.T) by tensorlib/_cmath.c's tiled loop, for
    a C-contiguous 2-d float32/float64 NumPy array (scale of its dtype and rows); None where that does not apply.
    NumPy's copy of a transposed view walks one array a column at a time: 4096 x 1024 float32 19-30 ms."""
    if _TRANSPOSE is None or type(w) is not np.ndarray or w.ndim != 2 or w.dtype not in _FLOATS \
            or not w.flags.c_contiguous:
        return None
    if scale is not None and not (type(scale) is np.ndarray and scale.dtype == w.dtype and scale.shape == w.shape[:1]
                                  and scale.flags.c_contiguous):
        return None
    out = np.empty((w.shape[1], w.shape[0]), w.dtype)
    _TRANSPOSE(w, scale, out)
    return out


# Adam's per-parameter step in C on parameters of at most ADAM_MAX elements; those larger keep the NumPy kernels
ADAM = _adam_loops()
ADAM_MAX = ADAM.ADAM_MAX if ADAM is not None else 0
_adam_sqrt_bound = False


def bind_adam_sqrt():
    """The C step's update sqrt bound to MKL VML's vsSqrt/vdSqrt where MKL is loaded (the SQRT op's, torch's values:
    see vml), once; before the first C step (not at import: it loads MKL)."""
    global _adam_sqrt_bound
    if ADAM is not None and not _adam_sqrt_bound and hasattr(ADAM, "adam_vml"):
        from .. import _blas
        ADAM.adam_vml(_blas.vml_function("Sqrt", _F32), _blas.vml_function("Sqrt", np.dtype(np.float64)))
    _adam_sqrt_bound = True


_FMA = getattr(_M, "fma_", None) if _M is not None else None
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
FMA_ADD, FMA_LERP, FMA_ADDCMUL, FMA_TANH_BACKWARD = 0, 1, 2, 3


def fma(kind, a, b, c, s, out=None):
    """torch's fused multiply-add kernels (vec::fmadd: one rounding where NumPy's passes take two), as a new array or
    into `out` (which may be `a`): FMA_ADD `a + s * b` (add/sub with alpha), FMA_LERP lerp(a, b, s) in torch's
    two-sided form (|s| < 0.5: a + s (b - a), else b + (s - 1)(b - a)), FMA_ADDCMUL `a + (b * s) * c`,
    FMA_TANH_BACKWARD `a * (1 - b * b)` (torch's tanh_backward: GCC fuses its 1 - y * y; c None, s unused); s a Python
    number, rounded to the arrays' dtype first (torch's opmath). tensorlib/_cmath.c's loop (fma_) where the arrays
    are NumPy float32/float64 ones of one dtype and shape, C-contiguous (torch's values to the bit); else NumPy:
    float32 through float64, where the product is exact and the sum rounded once more (a double rounding, which
    differs from the fused result only where the sum falls on a float32 tie: none in 10^5 elements against torch),
    other dtypes by NumPy's two roundings. None where an operand is not a NumPy array (the caller runs its own
    formula)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or (c is not None and type(c) is not np.ndarray):
        return None
    dt = a.dtype
    shape = a.shape
    # (the C call checks the rest: one float32/float64 format, C-contiguous buffers, out writable, no partial overlap)
    if _FMA is not None and (type(s) is float or type(s) is int) and (dt is _F32 or dt is _F64) \
            and b.shape == shape and (c is None or c.shape == shape) and (out is None or out.shape == shape):
        o = np.empty(shape, dt) if out is None else out
        try:
            _FMA(kind, o, a, b, c, s)
            return o
        except (ValueError, OverflowError, BufferError, TypeError):   # (refused buffers; an int beyond a double)
            pass
    r = _fma_numpy(kind, a, b, c, s)
    if out is None:
        return r
    np.copyto(out, r, casting="unsafe")
    return out


def _fma_numpy(kind, a, b, c, s):
    dt = np.result_type(a, b) if c is None else np.result_type(a, b, c)
    wide = dt == _F32
    f = dt.type
    if kind == FMA_LERP:
        d = np.subtract(b, a, dtype=dt)
        small = abs(f(s)) < 0.5
        coef, base = (f(s), a) if small else (f(s) - f(1), b)
        if wide:
            return (base.astype(_F64) + np.float64(coef) * d.astype(_F64)).astype(dt)
        return base + coef * d
    if kind == FMA_TANH_BACKWARD:
        if wide:
            return np.multiply(a, (1.0 - np.multiply(b, b, dtype=_F64)).astype(dt), dtype=dt)
        return a * (1 - b * b)
    p = b if kind == FMA_ADD else np.multiply(b, f(s), dtype=dt)
    q = f(s) if kind == FMA_ADD else c
    if wide:
        return (a.astype(_F64) + np.multiply(p, q, dtype=_F64)).astype(dt)
    return a + p * q


def addcdiv_(a, t1, t2, value) -> bool:
    """`a += t1 * value / t2` in one pass by tensorlib/_cmath.c's loop: NumPy's three passes' values (t1 * value,
    then over t2, then added to a; no FMA, as torch's addcdiv) without their temporary. True where it
    ran: NumPy arrays of float32 or float64 with one dtype and shape (the caller checks those), C-contiguous, of
    at least MIN_SIZE elements, `value` a float or an int below 2**24 (the dtype's own value), t1 and t2 each a
    itself or apart from it; else False, and the caller runs NumPy's passes."""
    if _ADDCDIV is None or a.size < MIN_SIZE or a.dtype not in _FLOATS:
        return False
    tv = type(value)
    if not (tv is float or (tv is int and -(1 << 24) < value < (1 << 24))):
        return False
    if not (a.flags.c_contiguous and a.flags.writeable and t1.flags.c_contiguous and t2.flags.c_contiguous):
        return False
    try:
        _ADDCDIV(a, t1, t2, value)
    except ValueError:      # an operand overlapping a in part
        return False
    return True



_LOG_SOFTMAX: Any = _M.log_softmax_rows if FAST and _M is not None else None
_SOFTMAX: Any = _M.softmax_rows if FAST and _M is not None else None
LOG_SOFTMAX_MIN = 8     # row length from which the C rows run (measured faster from there: (4, 16) 6.8 -> 1.8 us)
SHORT_ROWS_MAX = 1024   # and shorter rows up to this many elements in all, where NumPy's five passes cost more than
                        # the C loop's scalar exp: (8, 4) 5.6 -> 0.4 us, (256, 4) 8.5 -> 7.4; (1024, 4) 17.6 against 29


def rows_apply(x) -> bool:
    """Whether the C softmax rows take x: a C-contiguous float32 array whose rows (its last dim) have at least
    LOG_SOFTMAX_MIN elements, where the vector path runs, or of at most SHORT_ROWS_MAX elements."""
    return _SOFTMAX is not None and x.dtype == _F32 and x.ndim > 0 and x.shape[-1] > 0 and x.flags.c_contiguous \
        and (x.shape[-1] >= LOG_SOFTMAX_MIN or x.size <= SHORT_ROWS_MAX)


def log_softmax_rows(x):
    """log_softmax over the last dim of x in one C pass per statistic (tensorlib/_cmath.c: no array of
    exponentials made) where `rows_apply`; None where not (the caller then runs NumPy's)."""
    if not rows_apply(x):
        return None
    out = np.empty_like(x)
    _LOG_SOFTMAX(x, out, x.shape[-1])
    return out



_SOFTMAX_BWD: Any = getattr(_M, "softmax_backward_rows", None) if FAST and _M is not None else None
_LOG_SOFTMAX_BWD: Any = getattr(_M, "log_softmax_backward_rows", None) if FAST and _M is not None else None


def log_softmax_backward_rows(g, y):
    """torch's _log_softmax_backward_data over the last dim, g - exp(y) * sum(g), in C as torch's kernel computes it
    (tensorlib/_cmath.c: its lane-order sum, Sleef's exp, one fused multiply-subtract: torch's values to the bit), as
    a new array, where g and y are C-contiguous float32 NumPy arrays of one shape whose rows `rows_apply` takes; None
    where not (the caller runs its formula)."""
    if _LOG_SOFTMAX_BWD is None or type(g) is not np.ndarray or type(y) is not np.ndarray or not rows_apply(g) \
            or y.dtype != _F32 or y.shape != g.shape or not y.flags.c_contiguous:
        return None
    out = np.empty_like(g)
    _LOG_SOFTMAX_BWD(g, y, out, g.shape[-1])
    return out


def softmax_backward_rows(p, dp, out):
    """torch's _softmax_backward_data over the last dim, p * (dp - sum(dp * p)), in C (tensorlib/_cmath.c: each row
    read once for its sum and again, in cache, for the result) into `out` (dp itself for in place; not p), which it
    returns, where p, dp and out are C-contiguous float32 NumPy arrays of one shape (a dim at least); None where not
    (CuPy's, others: the caller then runs its formula)."""
    if _SOFTMAX_BWD is None or type(p) is not np.ndarray or type(dp) is not np.ndarray or type(out) is not np.ndarray \
            or p.dtype != _F32 or dp.dtype != _F32 or out.dtype != _F32 or p.ndim == 0 \
            or p.shape != dp.shape or p.shape != out.shape or not p.shape[-1] \
            or not (p.flags.c_contiguous and dp.flags.c_contiguous and out.flags.c_contiguous) \
            or np.may_share_memory(out, p):
        return None
    _SOFTMAX_BWD(p, dp, out, p.shape[-1])
    return out


def softmax_rows(x, out=None, dead_zero=False):
    """softmax over the last dim of x in C (tensorlib/_cmath.c: exp(x - max) written once, summed in registers,
    divided) where `rows_apply`; into `out` (x itself for in place) or a new array, which it returns; rows all
    -inf give 0 with `dead_zero` (attention's fully masked rows), else NaN as NumPy's path. None where it does not
    apply (the caller then runs NumPy's)."""
    if not rows_apply(x):
        return None
    if out is None:
        out = np.empty_like(x)
    _SOFTMAX(x, out, x.shape[-1], dead_zero)
    return out


_CLIP_NORMS: Any = _M.clip_norms if _M is not None else None
_CLIP_SCALE: Any = _M.clip_scale if _M is not None else None


def clip_norms(arrays, out, times=None) -> bool:
    """out[i] = the 2-norm of arrays[i] over all its elements, NORM's kernel (p=2) to the bit, every array in one C
    call (clip_grad_norm_'s _foreach_norm); `times` None or an int64 array that gets each norm's (start, end)
    perf_counter_ns. True where it ran: out a float32/float64 array of len(arrays) elements, the arrays aligned,
    C-contiguous, of its dtype; else False with nothing written (the caller runs the kernels)."""
    return ADAM is not None and _CLIP_NORMS(arrays, out, times)


def clip_scale(arrays, coef, times=None, before=None) -> bool:
    """arrays[i] *= coef for each array in turn (mul_'s kernel with a 0-d operand of their dtype, to the bit), in
    one C call (clip_grad_norm_'s _foreach_mul_); times as clip_norms'; `before` None, or, with arrays a tuple, a
    tuple (fn, *args): fn(*args) called before each product (a profile's step between the muls), or an int64 array
    that gets the (start, end) of an empty step before each product (such a step that computes nothing, its region
    recorded by the caller). True where it ran: coef a 0-d float32/float64 array, the arrays aligned, C-contiguous,
    writable, of its dtype; else False with nothing written or called."""
    return ADAM is not None and _CLIP_SCALE(arrays, coef, times, before)


_STAMPS: Any = getattr(_M, "stamps", None) if _M is not None else None


def stamps(out) -> bool:
    """out (an int64 array of 2n elements) filled with n (start, end) pairs of perf_counter_ns reads, one after
    another: the times of n steps that compute nothing (clip_grad_norm_'s `to` of each norm), whose regions the
    caller records (_hooks.op_steps_at). False where the C module is not used (nothing written)."""
    return _STAMPS is not None and _STAMPS(out)


_THRESHOLD_BWD = _M.threshold_backward if _M is not None else None


def threshold_backward(g, y, threshold):
    """torch's threshold_backward, `where(y <= threshold, 0, g)` (a NaN y passes g; an inf or NaN g where
    y <= threshold gives 0), in one pass by tensorlib/_cmath.c's branchless loop: g and y NumPy arrays of one
    float32/float64 dtype and shape, C-contiguous, threshold a Python number; None where it does not apply."""
    if _THRESHOLD_BWD is None or g.dtype not in _FLOATS or y.dtype != g.dtype or y.shape != g.shape \
            or not (g.flags.c_contiguous and y.flags.c_contiguous) or type(threshold) not in (int, float):
        return None
    out = np.empty(g.shape, g.dtype)
    _THRESHOLD_BWD(g, y, out, threshold)
    return out


_COPY = _M.copy_ if _M is not None else None


def copy_(dst, src):
    """np.copyto(dst, src) for NumPy arrays of one shape and dtype that do not overlap (conv_ops' im2col buffers),
    by tensorlib/_cmath.c's loop: one memcpy per contiguous inner run, where np.copyto's iterator costs a few ns
    per run (a 3x3 conv's windows over a 32x32 plane: runs of 30 floats)."""
    if _COPY is None or dst.shape != src.shape or dst.dtype != src.dtype or src.ndim > 16:
        np.copyto(dst, src)
    else:
        _COPY(dst, src)


_F2BF = _M.f32_to_bf16 if _M is not None else None


def astype(a, dtype):
    """a.astype(dtype); a C-contiguous float32 array of at least MIN_SIZE elements to bfloat16 by tensorlib/_cmath.c's
    loop (rounded to nearest even, NaN to the quiet NaN of its sign: ml_dtypes' bits; its own cast took 1.9 ns an
    element, the loop 0.65)."""
    if _F2BF is not None and a.dtype == _F32 and a.size >= MIN_SIZE and a.flags.c_contiguous \
            and np.dtype(dtype) == D.BF16:
        out = np.empty(a.shape, D.BF16)
        _F2BF(a, out.view(np.uint16))
        return out
    return a.astype(dtype)

_LN = _M.layer_norm_rows if _M is not None else None
_LN_BWD = _M.layer_norm_rows_backward if _M is not None else None
# elements up to which layer_norm's C loops run: NumPy's rows path makes a dozen calls of about a microsecond each,
# most of a small layer_norm's time; its passes are BLAS and vector ufuncs, which the loops (plain C, sums in double)
# do not beat on large arrays. Measured (forward, float32, 1 thread, best of 20-200): [4, 16, 32] NumPy 18.9 us, the
# loops 6.8; [64, 128] 25.3 / 15.8; [64, 512] 49.8 / 51.6; [128, 512] 83.7 / 100; [2240, 512] 1150 / 1784
LN_MAX = 1 << 14


def _norm_operand(a, n, dtype):
    """An operand of the norm loops over n positions or channels (a weight, a bias, running statistics): None, or a
    C-contiguous NumPy array of n elements of dtype."""
    return a is None or (type(a) is np.ndarray and a.dtype == dtype and a.size == n and a.flags.c_contiguous)


def layer_norm(x, w, b, k, eps):
    """(y, mean, rstd) of layer_norm over x's last k dims (the statistics shaped as the kernel's: x's leading dims,
    then k ones), by the C loops: x a C-contiguous float32/float64 NumPy array of at most LN_MAX elements, w and
    b None or arrays of its dtype over those dims (C-contiguous); None where it does not apply (NumPy's path
    runs). Sums in double; the values within float rounding of NumPy's path."""
    if _LN is None or type(x) is not np.ndarray or x.dtype not in _FLOATS or not 0 < x.size <= LN_MAX \
            or not x.flags.c_contiguous or k < 1 or k > x.ndim:
        return None
    lead = x.shape[:x.ndim - k]
    m = 1
    for s in lead:
        m *= s
    n = x.size // m
    if not (_norm_operand(w, n, x.dtype) and _norm_operand(b, n, x.dtype)):
        return None
    y = np.empty(x.shape, x.dtype)
    stat = lead + (1,) * k
    mu, rstd = np.empty(stat, x.dtype), np.empty(stat, x.dtype)
    _LN(x, w, b, float(eps), y, mu, rstd)
    return y, mu, rstd


def layer_norm_backward(g, x, mu, rstd, w, k, need):
    """(gx, gw, gb) of layer_norm's inputs (each a 0-d zero where `need` says it is not wanted, as
    LAYER_NORM_BACKWARD's kernel gives them) from the output's gradient g and the saved mean and rstd, by the C
    loops; None where they do not apply (the arrays as layer_norm above asks, g of x's shape and dtype; a g of
    another layout, a sum's expanded gradient, copied into C order first)."""
    if _LN_BWD is None or type(g) is not np.ndarray or type(x) is not np.ndarray or x.dtype not in _FLOATS \
            or g.dtype != x.dtype or g.shape != x.shape or not 0 < x.size <= LN_MAX or k < 1 or k > x.ndim \
            or not x.flags.c_contiguous:
        return None
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    n = 1
    for s in x.shape[x.ndim - k:]:
        n *= s
    m = x.size // n
    if not (_norm_operand(w, n, x.dtype) and _norm_operand(mu, m, x.dtype) and _norm_operand(rstd, m, x.dtype)):
        return None
    tail = x.shape[x.ndim - k:]
    zero = np.zeros((), x.dtype)
    gx = np.empty(x.shape, x.dtype) if need[0] else None
    gw = np.empty(tail, x.dtype) if need[1] else None
    gb = np.empty(tail, x.dtype) if need[2] else None
    _LN_BWD(g, x, mu, rstd, w, gx, gw, gb)
    return (zero if gx is None else gx), (zero if gw is None else gw), (zero if gb is None else gb)


_BN = getattr(_M, "batch_norm_channels", None)
_BN_BWD = getattr(_M, "batch_norm_channels_backward", None)


# the loops read a channel's elements run by run (M positions an image): from BN_MIN_RUN positions on they beat
# NumPy's passes ((8, 16, 32, 32) float32: forward 174 -> 78 us, backward 289 -> 101; (100, 16, 32, 32) 2921 -> 1221
# and 4630 -> 1530), while a 2-d (N, C) input, one element a run, is read across rows: slower than NumPy's from a few
# thousand elements ((256, 1024): 306 against 1820 us), faster below ((8, 32): 11.3 -> 3.2)
BN_MIN_RUN = 4
BN_SMALL = 4096


def _bn_applies(x):
    m = x.size // (x.shape[0] * x.shape[1])
    return m >= BN_MIN_RUN or x.size <= BN_SMALL


def batch_norm(x, w, b, running_mean, running_var, training, momentum, eps):
    """(y, mean, rstd) of batch_norm over x's channels (dim 1; the statistics shaped (1, C, 1, ...)), by the C loops
    (tensorlib/_cmath.c: two passes for the statistics in double, one for the output), the running statistics
    updated in training as the kernel's NumPy path updates them (the unbiased variance); x a C-contiguous
    float32/float64 NumPy array of two or more dims, the others None or C-long vectors of its dtype (the running
    ones given in eval). None where that does not hold (NumPy's path runs)."""
    if _BN is None or type(x) is not np.ndarray or x.dtype not in _FLOATS or x.ndim < 2 or not x.size \
            or not x.flags.c_contiguous or (running_mean is None) != (running_var is None) \
            or (not training and running_mean is None):
        return None
    c = x.shape[1]
    if not all(_norm_operand(a, c, x.dtype) for a in (w, b, running_mean, running_var)) or not _bn_applies(x):
        return None
    y = np.empty(x.shape, x.dtype)
    stat = (1, c) + (1,) * (x.ndim - 2)
    mu, rstd = np.empty(stat, x.dtype), np.empty(stat, x.dtype)
    _BN(x, w, b, running_mean, running_var, bool(training), float(momentum), float(eps), y, mu, rstd, x.shape[0])
    return y, mu, rstd


def batch_norm_backward(g, x, mu, rstd, w, training, need):
    """(gx, gw, gb) of batch_norm's inputs (each a 0-d zero where `need` says it is not wanted, as
    BATCH_NORM_BACKWARD's kernel gives them) from the output's gradient g and the saved mean and rstd, by the C
    loops (per channel: one pass for the two sums, one for gx); None where they do not apply (x as batch_norm above
    asks, g of its shape and dtype, copied into C order if need be)."""
    if _BN_BWD is None or type(g) is not np.ndarray or type(x) is not np.ndarray or x.dtype not in _FLOATS \
            or g.dtype != x.dtype or g.shape != x.shape or x.ndim < 2 or not x.size or not x.flags.c_contiguous:
        return None
    c = x.shape[1]
    if not all(type(a) is np.ndarray and a.dtype == x.dtype and a.size == c for a in (mu, rstd)) \
            or not _norm_operand(w, c, x.dtype) or not _bn_applies(x):
        return None
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    zero = np.zeros((), x.dtype)
    gx = np.empty(x.shape, x.dtype) if need[0] else None
    gw = np.empty(c, x.dtype) if need[1] else None
    gb = np.empty(c, x.dtype) if need[2] else None
    _BN_BWD(g, x, np.ascontiguousarray(mu).reshape(c), np.ascontiguousarray(rstd).reshape(c), w, gx, gw, gb,
            bool(training), x.shape[0])
    return (zero if gx is None else gx), (zero if gw is None else gw), (zero if gb is None else gb)


_GELU = _M.gelu_f32 if _M is not None else None
_GELU_BWD = _M.gelu_backward_f32 if _M is not None else None


def gelu(x, px, qx, clip):
    """x * normal_cdf32(x) (activation.GELU's float32 result, approximate="none") by the C loop: the CDF's steps
    per element, px and qx its polynomials' float32 coefficients (highest power first), clip its input's bound,
    so that the values are NumPy's path's (float32 rounding at each step, in its order); None unless x is a
    C-contiguous float32 NumPy array with elements (NumPy's 28 passes run). Measured (1 thread, AVX2): [4, 16, 128]
    forward 54 -> 7.0 us, backward 104 -> 12.5; [64, 3072] 1510 -> 224 and 2022 -> 525."""
    if _GELU is None or type(x) is not np.ndarray or x.dtype != _F32 or not x.size or not x.flags.c_contiguous:
        return None
    out = np.empty(x.shape, _F32)
    _GELU(x, out, px, qx, clip)
    return out


def gelu_backward(g, x, px, qx, clip):
    """g * (cdf(x) + x exp(-x²/2) / sqrt(2 pi)), activation.GELU_BACKWARD's float32 steps (exp by libm's expf),
    by the C loop; None unless g and x are C-contiguous float32 NumPy arrays of one shape."""
    if _GELU_BWD is None or type(x) is not np.ndarray or type(g) is not np.ndarray or x.dtype != _F32 \
            or g.dtype != _F32 or g.shape != x.shape or not x.size \
            or not (x.flags.c_contiguous and g.flags.c_contiguous):
        return None
    out = np.empty(x.shape, _F32)
    _GELU_BWD(g, x, out, px, qx, clip)
    return out


# lstm_step(gates, x, halve, acts, c, c_out, h_out, hidden[, bias]): an LSTM step's pointwise part after its product,
# in one C call (tensorlib/_cmath.c; recurrent.LSTM_LAYER's loop, float32 C-contiguous arrays, where FAST); its ten
# NumPy calls cost about 11 us a step at a language model's [4, 4x16] gates, the call 1.1 (measured, 1 thread). With
# `bias` (b_hh, or None) x is the step's raw input projection and the loop makes (x + b_hh) * half itself, the
# values LSTM_LAYER's NumPy path prepares in two passes over the whole sequence (28x100x512: 5.6 -> 4.5 ms a layer)
lstm_step = _M.lstm_step if _M is not None else None
# lstm_step_backward(dh, dc, g_out, acts, c_prev, tanh_c, d, hidden): LSTM_LAYER_BACKWARD's loop body before its
# product (six NumPy calls) with the gates' slopes (recurrent._lstm_gate_slopes, ten passes over the whole sequence
# before the loop) made per element in the loop: the same operations, so the same values; float32 or float64, any
# CPU (a 28x100x128 layer's backward 10.8 -> 8.4 ms)
lstm_step_backward = _M.lstm_step_backward if _M is not None else None
