"""Unary math: sign and magnitude, exponentials and logarithms, powers, trigonometry, rounding, erf.

Most are one table line (`unary`): the kernel, the backward, and the function/method/in-place names that
follow from the op's name. Integer inputs of float functions compute in the default float dtype, as in torch.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .. import _dtype as D
from .comparison import isfinite, where
from .._opdef import OpDef, with_defaults
from ._define import (F16, dispatch, half_in_float32, np, op, public, refuse_complex, special_functions, torch_op,
                      unary, write_out)
from .._graph import quiet_op, tensor_of
from ..dispatch import STATE, run_recorded, run_recorded_op
from .broadcast import QUIET, SINK, quiet_arrays
from ._fastmath import FMA_TANH_BACKWARD, exp as fast_exp, fma, tanh as fast_tanh, vml

# The backward formulas below call functions the declarations further down make (read at call time).
neg: Callable[..., Any]
sign: Callable[..., Any]
sgn: Callable[..., Any]
sin: Callable[..., Any]
cos: Callable[..., Any]
sinh: Callable[..., Any]
cosh: Callable[..., Any]


def _f(xp, a):
    """Integer inputs of float functions compute in the default float dtype, as in torch."""
    if a.dtype.kind in "biu":
        return a.astype(D.get_default_dtype().np)
    return a


# --- sign and magnitude -----------------------------------------------------------------------------------

def _neg_k(xp, a):
    if a.dtype == np.bool_:         # torch's words, not NumPy's TypeError
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert "
                           "a mask, use the `~` or `logical_not()` operator instead.")
    return -a


NEG = unary("neg", _neg_k, lambda ctx, g: (neg(g),), save="", aliases=("negative",))
ABS = unary("abs", lambda xp, a: xp.abs(a), lambda ctx, g: (g * sgn(ctx.saved_inputs[0]),), aliases=("absolute",))
def _sign_k(xp, a):
    """sign(a) with torch's sign(NaN) = 0 (NumPy's and CuPy's are NaN: abs's and l1_loss's gradients at a NaN
    were NaN where torch's are 0)."""
    if a.dtype.kind == "c":
        raise NotImplementedError("Unlike NumPy, torch.sign is not intended to support complex numbers. Please use "
                                  "torch.sgn instead.")
    if a.dtype == np.bool_:     # torch's sign of a bool is itself (NumPy's sign has no bool loop)
        return a.copy()
    r = xp.sign(a)
    if a.dtype.kind == "f":
        if r.ndim == 0:     # NumPy's sign of a 0-d array is a scalar, which copyto cannot write
            r = xp.asarray(r)
        xp.copyto(r, 0, where=xp.isnan(r))      # (NaNs are rare: the masked copy's branches predict well)
    return r


def _sign_grad(ctx, g):
    """torch's SignBackward0: zeros of the gradient's shape (not g * 0, which is NaN where g is infinite)."""
    return (g.new_zeros(tuple(g.shape)),)


def _sgn_k(xp, a):
    """torch.sgn: sign for real tensors, z / |z| (0 at 0) for complex ones."""
    if a.dtype.kind != "c":
        return _sign_k(xp, a)
    m = xp.abs(a)
    return xp.where(m == 0, xp.zeros((), a.dtype), a / xp.where(m == 0, xp.ones((), m.dtype), m))


def _sgn_grad(ctx, g):
    """torch's sgn_backward for complex z: (g - sgn(z) re(g conj(sgn(z)))) / |z|, 0 at z = 0; SignBackward0's
    zeros for real."""
    if ctx.in_meta[0][1].kind != "c":
        return _sign_grad(ctx, g)
    z = ctx.saved_inputs[0]
    s, m = sgn(z), z.abs()
    return (where(m == 0, 0, (g - s * (g * s.conj()).real) / m),)


SIGN = unary("sign", _sign_k, _sign_grad, save="")
SGN = unary("sgn", _sgn_k, _sgn_grad)
SGN.complex_formula = True
neg, abs, sign, sgn = NEG.function, ABS.function, SIGN.function, SGN.function
NEG.quiet_backward = lambda ctx, g, k=QUIET: (tensor_of(k.neg(g._data)),) if type(g._data) is np.ndarray else None
NEG.sink_backward = with_defaults(NEG.quiet_backward, k=SINK)        # (OpDef.sink_backward)
negative, absolute = neg, abs
public(neg, name="__neg__", function=False, method=True)
public(abs, name="__abs__", function=False, method=True)
public(lambda self: self, name="__pos__", function=False, method=True)

# --- exponentials, logarithms, powers ---------------------------------------------------------------------

def _reciprocal_grad(ctx, g):
    """torch's -grad * (result * result), in its order."""
    y = ctx.saved_output
    yy = y * y
    return (neg(g) * yy,)


RECIPROCAL = unary("reciprocal", lambda xp, a: xp.reciprocal(_f(xp, a)), _reciprocal_grad, save="o", amp="fp32")
EXP2 = unary("exp2", lambda xp, a: xp.exp2(_f(xp, a)), lambda ctx, g: (g * ctx.saved_output * math.log(2),),
             save="o")
EXPM1 = unary("expm1", lambda xp, a: xp.expm1(_f(xp, a)), lambda ctx, g: (g * (ctx.saved_output + 1),), save="o",
              amp="fp32")
LOG1P = unary("log1p", lambda xp, a: xp.log1p(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_inputs[0] + 1),),
              amp="fp32", node_name="Log1PBackward0")     # (torch capitalizes the P)
def _vml_kernel(name, ufunc, numpy_fn=None):
    """The kernel of a unary op torch's CPU build runs on MKL VML (ATen/cpu/vml.h): VML's v?<name> on NumPy
    float32/float64 arrays where MKL is loaded (torch's values to the bit, see _fastmath.vml), else
    `numpy_fn(x, out)` (default: the ufunc), and the ufunc on other arrays. The kernel's `_into` is the in-place
    op's `into` (see ops._define.op): the same, written into its input. (Not an `out` parameter on the kernel:
    the dispatcher reads a kernel's parameters, and `out=` is the functions' own.)"""
    def run(xp, x, out):
        if xp is np:
            r = vml(name, x, out)
            if r is not None:
                return r
            if numpy_fn is not None:
                return numpy_fn(x, out)
        f = getattr(xp, ufunc)
        return f(x) if out is None else f(x, out=out)

    def kernel(xp, a):
        return run(xp, _f(xp, a), None)
    kernel.__name__ = f"_{ufunc}_k"
    kernel._into = lambda xp, a: run(xp, a, a)
    return kernel


_exp_k = _vml_kernel("Exp", "exp", fast_exp)       # (without VML: the AVX2 loop or NumPy's, _fastmath.exp)
EXP = unary("exp", _exp_k, lambda ctx, g: (g * ctx.saved_output,), save="o", amp="fp32", inplace=True,
            into=_exp_k._into)
_log_k = _vml_kernel("Ln", "log")
LOG = unary("log", _log_k, lambda ctx, g: (g / ctx.saved_inputs[0],), amp="fp32", inplace=True, into=_log_k._into)
LOG2 = unary("log2", _vml_kernel("Log2", "log2"), lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(2)),),
             amp="fp32")
LOG10 = unary("log10", _vml_kernel("Log10", "log10"),
              lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(10)),), amp="fp32")
_sqrt_k = _vml_kernel("Sqrt", "sqrt")
SQRT = unary("sqrt", _sqrt_k, lambda ctx, g: (g / (ctx.saved_output * 2),), save="o", inplace=True,
             into=_sqrt_k._into)
RSQRT = unary("rsqrt", lambda xp, a: 1 / xp.sqrt(_f(xp, a)),
              lambda ctx, g: (g * ctx.saved_output ** 3 * -0.5,), save="o", amp="fp32")
reciprocal, exp, exp2, expm1 = RECIPROCAL.function, EXP.function, EXP2.function, EXPM1.function
log, log1p, log2, log10 = LOG.function, LOG1P.function, LOG2.function, LOG10.function
sqrt, rsqrt = SQRT.function, RSQRT.function


@public(method=True)
@torch_op("square")
def square(input, *, out=None):
    return write_out((input if input._data.dtype != np.bool_ else input.long()) ** 2, out)


# --- trigonometry -----------------------------------------------------------------------------------------

SIN = unary("sin", _vml_kernel("Sin", "sin"), lambda ctx, g: (g * cos(ctx.saved_inputs[0]),))
COS = unary("cos", _vml_kernel("Cos", "cos"), lambda ctx, g: (neg(g) * sin(ctx.saved_inputs[0]),))
TAN = unary("tan", _vml_kernel("Tan", "tan"), lambda ctx, g: (g * (1 + (y := ctx.saved_output) * y),),
            save="o")
def one_array(g, y):
    """Whether an output's backward kernel (tanh_backward, sigmoid_backward) may write its result into the one
    array it makes: g and y arrays of one dtype and shape, not 0-d (the same ufuncs, in the expression's order)."""
    return g.dtype == y.dtype and g.shape == y.shape and y.ndim > 0


def _tanh_backward_k(xp, g, y):
    """torch's tanh_backward: g * (1 - y * y), its 1 - y * y one fused multiply-add as GCC builds torch's kernel
    (vector and scalar loops alike: _fastmath.fma's FMA_TANH_BACKWARD, 30% of float32 elements differed); complex
    y as the engine's other formulas take it: it conjugates around them."""
    if not one_array(g, y):
        return g * (1 - y * y)
    if xp is np and g.dtype.char in "fd":
        r = fma(FMA_TANH_BACKWARD, g, y, None, 0.0)
        if r is not None:
            return r
    t = xp.multiply(y, y)
    xp.subtract(1, t, out=t)
    return xp.multiply(g, t, out=t)


TANH_BACKWARD = op("tanh_backward", save="i", node_name="TanhBackwardBackward0")(_tanh_backward_k)


def output_backward(fwd, bwd, output_grad):
    """Wire op fwd's backward as torch's one op bwd(g, y) of its saved output y (tanh_backward,
    sigmoid_backward): dispatched, or on NumPy arrays its kernel called directly (the quiet path) or run and
    recorded (the sink formula, OpDef.sink_backward). bwd's own backward (torch's): bwd(gg, y) for g, linear in
    it, and output_grad(gg, g, y) for y."""
    kernel = bwd.kernel

    def quiet(ctx, g):      # (quiet_op's work without its frames: ~0.9 us of a small node's ~2)
        gd, y = g._data, ctx.saved_output_array()
        return (tensor_of(kernel(np, gd, y)),) if type(gd) is np.ndarray and type(y) is np.ndarray else None
    def sink(ctx, g):       # (run_recorded_op's work without its frames)
        gd, y = g._data, ctx.saved_output_array()
        return (tensor_of(run_recorded(bwd, gd, y)),) \
            if type(gd) is np.ndarray and type(y) is np.ndarray else None
    fwd.def_backward(lambda ctx, g: (dispatch(bwd, g, ctx.saved_output),))
    fwd.quiet_backward = quiet
    fwd.sink_backward = sink

    @bwd.def_backward
    def _(ctx, gg):
        g, y = ctx.saved_inputs
        need = ctx.needs_input_grad
        return (dispatch(bwd, gg, y) if need[0] else None, output_grad(gg, g, y) if need[1] else None)


_tanh_k = _vml_kernel("Tanh", "tanh", fast_tanh)     # (without VML: the AVX2 loop or NumPy's, _fastmath.tanh)


TANH = unary("tanh", _tanh_k, None, save="o", inplace=True, into=_tanh_k._into)
output_backward(TANH, TANH_BACKWARD, lambda gg, g, y: gg * (y * g * -2))     # torch's: -2 y g


def _exp_bwd_arrays(ctx, g, k=QUIET):
    """EXP's formula on arrays: g * y, the same ufunc, called directly (the quiet path) or, k=SINK, run as a
    recorded op (OpDef.sink_backward); likewise log's g / x below."""
    p = quiet_arrays(g._data, ctx.saved_output_array())        # g * y
    return None if p is None else (tensor_of(k.mul(*p)),)


def _log_bwd_arrays(ctx, g, k=QUIET):
    p = quiet_arrays(g._data, ctx.saved_inputs[0]._data)      # g / x
    return None if p is None else (tensor_of(k.div(*p)),)


for _op, _fn in ((EXP, _exp_bwd_arrays), (LOG, _log_bwd_arrays)):
    _op.quiet_backward = _fn
    _op.sink_backward = with_defaults(_fn, k=SINK)
SINH = unary("sinh", lambda xp, a: xp.sinh(_f(xp, a)), lambda ctx, g: (g * cosh(ctx.saved_inputs[0]),))
COSH = unary("cosh", lambda xp, a: xp.cosh(_f(xp, a)), lambda ctx, g: (g * sinh(ctx.saved_inputs[0]),))
ASIN = unary("asin", _vml_kernel("Asin", "arcsin"),
             lambda ctx, g: (g * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),), aliases=("arcsin",))
ACOS = unary("acos", _vml_kernel("Acos", "arccos"),
             lambda ctx, g: (neg(g) * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),), aliases=("arccos",))
ATAN = unary("atan", _vml_kernel("Atan", "arctan"),
             lambda ctx, g: (g / (ctx.saved_inputs[0] * ctx.saved_inputs[0] + 1),), aliases=("arctan",))
# torch's inverse hyperbolics are kernels of their own (one `aten::acosh` in a profile, AcoshBackward0), not
# compositions of log and sqrt
ASINH = unary("asinh", lambda xp, a: xp.arcsinh(_f(xp, a)),
              lambda ctx, g: (g * rsqrt(ctx.saved_inputs[0] * ctx.saved_inputs[0] + 1),), aliases=("arcsinh",))
# (acosh's derivative as 1/(sqrt(x - 1) sqrt(x + 1)), torch's: for complex x left of the imaginary axis it is the
# other sign of 1/sqrt(x^2 - 1); for real x > 1 the two agree)
ACOSH = unary("acosh", lambda xp, a: xp.arccosh(_f(xp, a)),
              lambda ctx, g: (g * rsqrt(ctx.saved_inputs[0] - 1) * rsqrt(ctx.saved_inputs[0] + 1),),
              aliases=("arccosh",))
ATANH = unary("atanh", lambda xp, a: xp.arctanh(_f(xp, a)),
              lambda ctx, g: (g / (1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),), aliases=("arctanh",))


def _real_only(kernel, message, error=NotImplementedError, vml=None):
    """`kernel` refusing a complex operand as torch does (NumPy would compute, or raise its own TypeError); with
    `vml` (torch's rounding kernels), a bool one too, which NumPy would round into float16."""
    def k(xp, a):
        refuse_complex(a, message, error)
        if vml is not None and a.dtype == np.bool_:
            raise NotImplementedError(f"\"{vml}_vml_cpu\" not implemented for 'Bool'")
        return kernel(xp, a)
    return k


DEG2RAD = unary("deg2rad", _real_only(lambda xp, a: _f(xp, a) * (math.pi / 180),
                                      "deg2rad is not supported for complex tensors.", RuntimeError),
                lambda ctx, g: (g * (math.pi / 180),), save="", node_name="Deg2RadBackward0")
RAD2DEG = unary("rad2deg", _real_only(lambda xp, a: _f(xp, a) * (180 / math.pi),
                                      "rad2deg is not supported for complex tensors.", RuntimeError),
                lambda ctx, g: (g * (180 / math.pi),), save="", node_name="Rad2DegBackward0")
rad2deg = RAD2DEG.function
sin, cos, tan, tanh, sinh, cosh = SIN.function, COS.function, TAN.function, TANH.function, SINH.function, COSH.function
asin, acos, atan, deg2rad = ASIN.function, ACOS.function, ATAN.function, DEG2RAD.function
asinh, acosh, atanh = ASINH.function, ACOSH.function, ATANH.function
arcsin, arccos, arctan = asin, acos, atan

# --- rounding ---------------------------------------------------------------------------------------------

FLOOR = unary("floor", _real_only(lambda xp, a: xp.floor(a), "floor is not supported for complex inputs", vml="floor"),
              lambda ctx, g: (g * 0,), save="")
CEIL = unary("ceil", _real_only(lambda xp, a: xp.ceil(a), "ceil is not supported for complex inputs", vml="ceil"),
             lambda ctx, g: (g * 0,), save="")
TRUNC = unary("trunc", _real_only(lambda xp, a: xp.trunc(a), "trunc is not supported for complex inputs", vml="trunc"),
              lambda ctx, g: (g * 0,), save="")
ROUND = op("round", save="")(_real_only(lambda xp, a: xp.round(a), "\"round_vml_cpu\" not implemented for '{dtype}'",
                                        vml="round"))
ROUND.def_backward(lambda ctx, g: (g * 0,))
floor, ceil, trunc = FLOOR.function, CEIL.function, TRUNC.function


@public(method=True)
def round(input, decimals=0):
    if decimals:
        return dispatch(ROUND, input * 10 ** decimals) / 10 ** decimals
    return dispatch(ROUND, input)


@public(method=True)
@torch_op("fix")
def fix(input):
    return trunc(input)


def _frac_k(xp, a):
    if a.dtype.kind in "biuc":
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{D.scalar_name(a.dtype)}'")
    return a - xp.trunc(a)


FRAC = unary("frac", _frac_k, lambda ctx, g: (g,), save="")
frac = FRAC.function

# --- erf, nan_to_num --------------------------------------------------------------------------------------


def log1p_exp_neg_abs(xp, z):
    """log(1 + exp(-|z|)), the stable tail of softplus and of the logistic losses (logaddexp(0, z) is this
    plus max(z, 0)). For float32 NumPy arrays by log(u) * e / (u - 1), u = 1 + e (Goldberg's log1p: within
    2.1 ulp of log1p against NumPy's 0.6, e itself where 1 + e rounds to 1): NumPy's float32 log1p and
    logaddexp have no vector loop here (1.26 and 3.1 ms on 131K values, log 0.26 ms), and this is 0.32 ms."""
    if not z.ndim:      # (ufuncs give 0-d operands NumPy scalars: no out= for those)
        return log1p_exp_neg_abs(xp, z.reshape(1)).reshape(())
    e = xp.abs(z)
    xp.negative(e, out=e)
    fast_exp(e, out=e) if xp is np else xp.exp(e, out=e)
    if xp is not np or e.dtype != np.float32:
        return xp.log1p(e, out=e)
    u = e + 1
    d = u - 1
    r = np.log(u, out=u)
    r *= e
    with np.errstate(invalid="ignore", divide="ignore"):
        r /= d
    np.copyto(r, e, where=d == 0)
    return r


def erf_kernel(xp, x, scale=1.0):
    """erf(scale * x): float16/32 NumPy arrays by `_erf32`'s short form (in float32, float16's too), float64
    ones by Cephes' forms below; CuPy's own erf on a GPU."""
    if xp is not np:
        return special_functions(xp).erf(x * scale if scale != 1.0 else x)
    if x.dtype in (np.float16, np.float32):
        return _erf32(x, scale)
    return _np_erf(x * scale if scale != 1.0 else x)


# float32 erf as tanh(x g(x²)): g(s) = atanh(erf √s) / √s is smooth and even, a degree-7 polynomial in s holds it
# on x in [0, 4] (fitted by weighted least squares with Lawson's reweighting toward the minimax error of erf
# itself, g(0) = 2/√π exactly), and from x = 4 on, where float32's erf is 1, x g(16) > 10 keeps tanh at 1.
# One array and 18 NumPy passes, no branch or gather; 2.7 ulp at most against libm's erf (torch's float32 erf
# and GELU are within 1 ulp of it; Cephes' forms in float32 were 2.3 ulp, in 40-60 passes with gathers).
_ERF32_G = (1.1283791670955126, 0.1027706740028317, -0.00019730107146208634, -0.0006128789221507605,
            8.371152439755049e-05, -4.598966777273653e-06, 7.296805333627077e-09, 6.200578466134677e-09)
_ERF32_SCALED: dict = {}


def _erf32(x, scale=1.0):
    """erf(scale * x) of a float16/32 NumPy array, in float32: tanh(z g(z²)), z = scale x, with the scale
    folded into the coefficients (g's argument is clipped to 16, the fitted range; NaN stays NaN)."""
    if not x.ndim:
        return _erf32(x.reshape(1), scale).reshape(())
    c = _ERF32_SCALED.get(scale)
    if c is None:      # coefficients of x^(2k) in scale g((scale x)²): g_k scale^(2k+1)
        c = _ERF32_SCALED[scale] = tuple(g * scale ** (2 * k + 1) for k, g in enumerate(_ERF32_G))[::-1]
    with np.errstate(over="ignore"):      # |x| near float32's max: x² is inf (clipped), x g(16) too (tanh 1)
        s = np.multiply(x, x, dtype=np.float32)
        np.minimum(s, 16.0 / (scale * scale), out=s)
        y = _polevl(s, c)
        y *= x
    return np.tanh(y, out=y)


# The normal CDF 0.5 (1 + erf(x / √2)) in float32 for GELU, the hot caller: erf(z) as z P(z²) / Q(z²), P of degree
# 6 and Q of degree 5 fitted to erf(z)/z on [0, 4] (float32's erf is ±1 from 3.92 on) by linearised least squares
# reweighted toward the minimax relative error (2.0e-9 in float64). Evaluated in float32 it is within 6 ulp of libm's
# erf (the erf op keeps `_erf32`'s 2.8 ulp); z is clipped to [-4.5, 4.5], where the float32 form has passed ±1 for
# good, and the CDF to [0, 1], so that the tails are exactly 0 and 1 as torch's (GELU's sign kept). 28 passes and no
# transcendental: 1.6x faster than `_erf32`, whose float32 tanh NumPy runs without SIMD here.
_CDF_P = (1.128379169374817, 0.18520386695712887, 0.05431668054991274, 0.0038495966551112515,
          0.00037959550927419523, 4.684406861320267e-06, -1.3200364329390979e-08)
_CDF_Q = (1.0, 0.49746606734053056, 0.11395840268565055, 0.015462013709474498, 0.0013075488532495918,
          6.310706351451891e-05)
_R2 = 1 / math.sqrt(2.0)
# highest power first, z = x/√2 folded in: P_k 2^-(k + 1/2) (and the CDF's 0.5), Q_k 2^-k
_CDF_PX = tuple(0.5 * c * _R2 ** (2 * k + 1) for k, c in enumerate(_CDF_P))[::-1]
_CDF_QX = tuple(c * _R2 ** (2 * k) for k, c in enumerate(_CDF_Q))[::-1]
_CDF_CLIP = 4.5 * math.sqrt(2.0)


def normal_cdf32(x):
    """0.5 (1 + erf(x / √2)) of a float16/32 NumPy array of one or more dimensions (GELU's kernels give a 0-d
    one as one element) as a fresh float32 array, in [0, 1] (see _CDF_P); NaN stays NaN."""
    xc = np.clip(x, -_CDF_CLIP, _CDF_CLIP, dtype=np.float32)
    s = xc * xc
    p = _polevl(s, _CDF_PX)
    q = _polevl(s, _CDF_QX)
    p *= xc
    p /= q
    p += 0.5
    return np.clip(p, 0.0, 1.0, out=p)


# Cephes' erf/erfc (S. L. Moshier, ndtr.c): rational approximations, ~1e-16 relative in float64, evaluated
# on whole arrays (torch's erf is libm's; a NumPy that has no erf otherwise needs SciPy, whose import costs
# most of a second, or a Python call per element)
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)
_ERFC_R = (5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0)
_ERFC_S = (2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0)


def _polevl(x, coef, leading_one=False):
    """coef[0] x^n + ... + coef[n] (with leading_one: x^(n+1) + coef[0] x^n + ...), Horner's rule."""
    if leading_one:
        y = x + coef[0]
        rest = coef[1:]
    else:                   # coef[0] x + coef[1]: the first step of Horner's rule on a fresh array
        y = x * coef[0]
        y += coef[1]
        rest = coef[2:]
    for c in rest:
        y *= x
        y += c
    return y


def _erf_small(a):
    """erf on |a| <= 1: a T(a²) / U(a²)."""
    z = a * a
    r = _polevl(z, _ERF_T)
    r *= a
    r /= _polevl(z, _ERF_U, leading_one=True)
    return r


def _erf_big(a):
    """erf on |a| > 1 (or NaN): sign(a) (1 - erfc|a|)."""
    erfc = _erfc_pos(np.abs(a))
    np.subtract(1.0, erfc, out=erfc)
    return np.copysign(erfc, a, out=erfc)


def _erfc_pos(ax):
    """erfc on ax >= 1 (float64): exp(-ax²) P/Q, R/S from 8 on, as a new array."""
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        e = np.exp(-ax * ax)
        erfc = e * _polevl(ax, _ERFC_P) / _polevl(ax, _ERFC_Q, leading_one=True)
        far = np.flatnonzero(ax >= 8.0)
        if len(far):
            xf = ax[far]
            rs = e[far] * _polevl(xf, _ERFC_R) / _polevl(xf, _ERFC_S, leading_one=True)
            erfc[far] = np.where(np.isfinite(rs), rs, 0.0)          # |a| -> inf: erfc -> 0
    return erfc


def _np_erf(x):
    """erf of a NumPy array in float64 (the op's float16/32 arrays take `_erf32`). The two ranges are gathered
    with index arrays (a boolean mask's gather and scatter cost several times more)."""
    flat = np.asarray(x, np.float64).ravel()
    i_big = np.flatnonzero(np.abs(flat) > 1.0)    # NaN is not (the small form keeps it NaN)
    if len(i_big) == 0:
        out = _erf_small(flat)
    elif len(i_big) == len(flat):
        out = _erf_big(flat)
    else:       # the small form on every element (clipped to its range), the big one's values written over it
        out = _erf_small(np.clip(flat, -1.0, 1.0))
        out[i_big] = _erf_big(flat.take(i_big))
    out = out.reshape(np.shape(x))
    return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out


def _erf_op_kernel(xp, a):
    refuse_complex(a, "\"erf_vml_cpu\" not implemented for '{dtype}'")
    x = _f(xp, a)
    r = vml("Erf", x) if xp is np else None     # (torch's VML erf; GELU keeps its own formula)
    return r if r is not None else erf_kernel(xp, x).astype(x.dtype, copy=False)


ERF = unary("erf", _erf_op_kernel,
            lambda ctx, g: (g * exp(neg(ctx.saved_inputs[0] * ctx.saved_inputs[0])) * (2 / math.sqrt(math.pi)),))
erf = ERF.function


def _erfc_k(xp, a):
    """erfc on its own (Cephes' erfc, SciPy's or CuPy's), not 1 - erf: in the tail erf rounds to 1 and the
    difference to 0 (erfc(5) is 1.5e-12, 1 - erf(5) is 0 in float32), where torch's erfc keeps it. Half-precision
    inputs compute in float32, rounded back."""
    refuse_complex(a, "\"erfc_vml_cpu\" not implemented for '{dtype}'")
    x = _f(xp, a)
    r = vml("Erfc", x) if xp is np else None
    if r is not None:
        return r
    lo = x.dtype.itemsize < 4
    r = special_functions(xp).erfc(x.astype(np.float32) if lo else x)
    return r.astype(x.dtype, copy=False)


# erfc's derivative, -2/sqrt(pi) exp(-x^2) (torch's ErfcBackward0)
ERFC = unary("erfc", _erfc_k,
             lambda ctx, g: (g * exp(neg(ctx.saved_inputs[0] * ctx.saved_inputs[0])) * (-2 / math.sqrt(math.pi)),))
erfc = ERFC.function


def refuse_double_backward(bwd: OpDef):
    """bwd, torch's one backward op of a formula whose create_graph form is a differentiable composite, refuses to
    be differentiated itself (it never is: the composite runs where a graph is recorded)."""
    def refuse(ctx, *grads):
        raise RuntimeError(f"{bwd.name}: double backward runs through the differentiable composite")
    bwd.def_backward(refuse)


def fused_backward(fwd: OpDef, bwd: OpDef, composite, attrs_of=lambda ctx: {}):
    """fwd's backward as torch's one backward op bwd(g, x, **attrs_of(ctx)) (gelu_backward, silu_backward,
    log_sigmoid_backward) for a float input whose backward is not itself differentiated, dispatched or, on
    NumPy, on arrays (the engine's quiet path, OpDef.quiet_backward; recorded, OpDef.sink_backward);
    composite(ctx, g), in tensorlib ops, under create_graph. bwd is never differentiated: it refuses."""
    def grad(ctx, g):
        x = ctx.saved_inputs[0]
        if not STATE.grad_enabled and D.kind(x._data.dtype) == "f":       # (bfloat16 included)
            return (dispatch(bwd, g, x, **attrs_of(ctx)),)
        return composite(ctx, g)

    def arrays(ctx, g, call=quiet_op):
        x = ctx.inputs[0]
        return call(bwd, g, x, **attrs_of(ctx)) if D.kind(x._data.dtype) == "f" else None

    refuse_double_backward(bwd)
    fwd.def_backward(grad)
    fwd.quiet_backward = arrays
    fwd.sink_backward = with_defaults(arrays, call=run_recorded_op)


def _logit_k(xp, a, eps=None):
    """torch's logit: log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given (those bounds in the
    input's dtype, as torch's kernel takes them: bfloat16's 1 - 1e-3 is 1); integers in the default float dtype,
    float16 and bfloat16 in float32, rounded once."""
    refuse_complex(a, "\"logit_cpu\" not implemented for '{dtype}'")
    x = _f(xp, a)
    return _logit(xp, x, _logit_bounds(x.dtype, eps))


def _logit_bounds(dtype, eps):
    """torch's logit clamp bounds (eps, 1 - eps) computed in dtype; None without eps."""
    if eps is None or eps != eps:
        return None
    t = dtype.type
    e = t(eps)
    return e, t(1) - e


def _logit(xp, x, bounds):
    if x.dtype is F16 or x.dtype is D.BF16:
        return half_in_float32(_logit, xp, x, bounds)
    if bounds is not None:
        x = xp.clip(x, *bounds)
    return xp.log(x / (1 - x))


LOGIT = op("logit", save="i", function=True, method=True)(_logit_k)


@op("logit_backward", save="i", node_name="LogitBackwardBackward0")
def LOGIT_BACKWARD(xp, g, x, eps=None):
    """torch's logit_backward: g / (x (1 - x)); NaN outside [0, 1] without eps, 0 outside [eps, 1 - eps] with it
    (the bounds in x's dtype, as the forward's)."""
    return _logit_bwd(xp, g, x, _logit_bounds(x.dtype, eps))


def _logit_bwd(xp, g, x, bounds):
    if g.dtype is F16 or g.dtype is D.BF16:
        return half_in_float32(_logit_bwd, xp, g, x, bounds)
    d = g / (x * (1 - x))
    lo, hi = (0, 1) if bounds is None else bounds
    out = (x < lo) | (x > hi)
    return xp.where(out, np.nan if bounds is None else 0, d).astype(d.dtype, copy=False)


def _logit_composite(ctx, g):
    """logit_backward in tensorlib ops, differentiable (create_graph records it)."""
    x = ctx.saved_inputs[0]
    d = g / (x * (1 - x))
    eps = ctx.attrs.get("eps")
    if eps is None:
        return (d,)
    return (where((x < eps) | (x > 1 - eps), d * 0, d),)


fused_backward(LOGIT, LOGIT_BACKWARD, _logit_composite, lambda ctx: ctx.attrs)
logit = LOGIT.function

# erfinv: M. Giles' single-precision approximation ("Approximating the erfinv function", GPU Computing Gems,
# 2011), a polynomial in w = -log((1 - y)(1 + y)) on two ranges, then, in float64, four Newton steps on our erf
# (on log erfc in the tails: 1 - |y| is exact there, erf(x) - y would cancel). y = +-1 gives +-inf, |y| > 1 and
# NaN give NaN.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                   -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erfinv_k(xp, a):
    refuse_complex(a, "\"erfinv_vml_cpu\" not implemented for '{dtype}'")
    y = _f(xp, a)
    if xp is not np:
        return special_functions(xp).erfinv(y)
    r = vml("ErfInv", y)
    if r is not None:
        return r
    if y.dtype != np.float64:           # float16/32: Giles' polynomial alone, in float32 (within 2 float32 ulps)
        return _erfinv_giles(y.astype(np.float32)).astype(y.dtype, copy=False)
    y64 = y
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -np.log((1.0 - y64) * (1.0 + y64))
        central = w < 5.0
        wc = np.where(central, w - 2.5, np.sqrt(np.maximum(w, 5.0)) - 3.0)
        p = np.where(central, _ERFINV_CENTRAL[0], _ERFINV_TAIL[0])
        for c, t in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
            p = p * wc + np.where(central, c, t)
        x = p * y64
        finite = np.isfinite(x)
        ax, rest = np.abs(x), 1.0 - np.abs(y64)      # (exact for |y| near 1, where erf(x) - y would cancel)
        log_rest = np.log(rest)
        for _ in range(4):              # Newton on erf(x) = y; in the tails on log erfc(|x|) = log(1 - |y|),
            slope = 2 / math.sqrt(math.pi) * np.exp(-ax * ax)       # nearly quadratic where erfc underflows fast
            tail = ax >= 1.0
            ec = _erfc_pos(np.maximum(ax, 1.0))
            step = np.where(tail, (log_rest - np.log(ec)) * ec / slope, (np.abs(_np_erf(x)) - np.abs(y64)) / slope)
            ax = np.where(finite, ax - step, ax)
            x = np.copysign(ax, y64)
        x = np.where(np.abs(y64) == 1.0, np.copysign(np.inf, y64), x)
    return x.astype(y.dtype, copy=False)


def _erfinv_giles(y):
    """Giles' single-precision erfinv on a float32 array (y = +-1: +-inf; |y| > 1, NaN: NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -np.log((1 - y) * (1 + y))
        central = w < 5
        wc = np.where(central, w - 2.5, np.sqrt(np.maximum(w, np.float32(5))) - 3)
        p = np.where(central, np.float32(_ERFINV_CENTRAL[0]), np.float32(_ERFINV_TAIL[0]))
        for c, t in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
            p *= wc
            p += np.where(central, np.float32(c), np.float32(t))
        p *= y
    return np.where(np.abs(y) == 1, np.copysign(np.float32(np.inf), y), p)


ERFINV = unary("erfinv", _erfinv_k,
               lambda ctx, g: (g * exp((y := ctx.saved_output) * y) * (math.sqrt(math.pi) / 2),), save="o",
               inplace=True)
erfinv = ERFINV.function


@op("nan_to_num", save="i", node_name="NanToNumBackward0")
def NAN_TO_NUM(xp, a, nan=0.0, posinf=None, neginf=None):
    if a.dtype.kind != "f":
        return a.copy()
    fi = np.finfo(a.dtype)
    r = xp.where(xp.isnan(a), nan, a)
    r = xp.where(r == np.inf, float(fi.max) if posinf is None else posinf, r)
    r = xp.where(r == -np.inf, float(fi.min) if neginf is None else neginf, r)
    return r.astype(a.dtype, copy=False)


NAN_TO_NUM.def_backward(lambda ctx, g: (g * isfinite(ctx.saved_inputs[0]),))


@public(method=True)
def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    return write_out(dispatch(NAN_TO_NUM, input, nan=nan, posinf=posinf, neginf=neginf), out)
