"""The special functions torch has as ops: the gamma family (lgamma, digamma, polygamma, mvlgamma, igamma,
igammac), the modified Bessel functions i0 / i0e / i1 / i1e, erfcx, ndtri, log_ndtr, entr, xlog1py, zeta, the
Bessel, Airy and spherical Bessel functions of torch.special, and its orthogonal polynomial families.

The kernels call scipy.special on the CPU and cupyx.scipy.special on a GPU: SciPy's are Cephes, as torch's own,
vectorised and well kept, where hand-written gamma and Bessel families would be neither. SciPy is imported
inside the kernels (`_sp`), never at `import tensorlib`. The orthogonal polynomials are torch's recurrences in n
(aten/src/ATen/native/Math.h), evaluated here on whole arrays.

torch's `torch.special.*` names (tensorlib.special) open their torch-named region and dispatch these ops, or
the existing ones (erf, expm1, sigmoid, ...) where torch's special function is an alias.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .. import _dtype as D
from .. import _sync
from .arithmetic import exp, log, sum_to
from .comparison import eq, le, where
from .extra_methods import _inplace
from .unary_math import neg
from ._define import Tensor, dispatch, np, op, public, special_functions, unary, write_out

# set by the declarations below (the backward formulas read them at call time)
digamma: Callable[..., Any]
lgamma: Callable[..., Any]


_sp = special_functions


def _refuse_half(xp, dtype, name):
    """torch has no float16/bfloat16 kernel for most torch.special functions: its error."""
    if dtype == np.float16 or dtype == D.BF16:
        device = "cpu" if xp is np else "cuda"
        half = "Half" if dtype == np.float16 else "BFloat16"
        raise NotImplementedError(f'"{name}_{device}" not implemented for \'{half}\'')


def _float_in(xp, a, name=None):
    """(the array to compute on, the result's dtype): integer and bool inputs compute in the default float
    dtype, as in torch; float16 and bfloat16 in float32, rounded back (or refused, with `name`, where torch
    has no half kernel)."""
    if a.dtype.kind in "biu":
        dt = D.get_default_dtype().np
        return a.astype(dt), dt
    if name is not None:
        _refuse_half(xp, a.dtype, name)
    if a.dtype.itemsize < 4:
        return a.astype(np.float32), a.dtype
    return a, a.dtype


def _unary_sp(fname, refuse=None):
    """A kernel calling special function `fname` of SciPy/CuPy on one float array."""
    def kernel(xp, a):
        x, dt = _float_in(xp, a, refuse)
        return getattr(_sp(xp), fname)(x).astype(dt, copy=False)
    kernel.__name__ = f"_{fname}_kernel"
    return kernel


def _needs(ctx, i):
    return ctx.needs_input_grad[i]


# --- the gamma family ---------------------------------------------------------------------------------------

def _digamma_fix(xp, x, r):
    """torch's digamma at 0: -inf at +0, +inf at -0 (copysign(inf, -x)); NaN at the negative integers."""
    r = xp.where(x == 0, xp.copysign(xp.asarray(np.inf, dtype=r.dtype), -x), r)
    return xp.where((x < 0) & (x == xp.floor(x)), xp.asarray(np.nan, dtype=r.dtype), r)


def _digamma_k(xp, a):
    x, dt = _float_in(xp, a)
    return _digamma_fix(xp, x, _sp(xp).psi(x)).astype(dt, copy=False)


def _polygamma_array(xp, x, n):
    """polygamma(n, x) for n >= 1 as torch: (-1)^(n+1) n! zeta(n+1, x) (Cephes' Hurwitz zeta, torch's too)."""
    return _sp(xp).zeta(float(n + 1), x) * ((1.0 if n % 2 else -1.0) * math.exp(math.lgamma(n + 1.0)))


def _lgamma_k(xp, a):
    """log|Gamma(x)|; +inf at -inf as torch (SciPy's gammaln gives -inf there)."""
    x, dt = _float_in(xp, a)
    r = _sp(xp).gammaln(x)
    return xp.where(x == -np.inf, np.inf, r).astype(dt, copy=False)


LGAMMA = unary("lgamma", _lgamma_k, lambda ctx, g: (g * digamma(ctx.saved_inputs[0]),),
               node_name="LgammaBackward0", inplace=True)
DIGAMMA = unary("digamma", _digamma_k, lambda ctx, g: (g * polygamma(1, ctx.saved_inputs[0]),),
                node_name="DigammaBackward0", inplace=True)
lgamma, digamma = LGAMMA.function, DIGAMMA.function


@op("polygamma", save="i", node_name="PolygammaBackward0")
def POLYGAMMA(xp, a, n=0):
    x, dt = _float_in(xp, a)
    if n == 0:
        r = _digamma_fix(xp, x, _sp(xp).psi(x))
    else:
        r = _polygamma_array(xp, x, n)
    return r.astype(dt, copy=False)


POLYGAMMA.def_backward(lambda ctx, g: (g * polygamma(ctx.attrs["n"] + 1, ctx.saved_inputs[0]),))


def _check_n(n, name="polygamma"):
    """torch's checks of polygamma's order (`name`: the function as torch's error names it)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}(): argument 'n' (position 1) must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return int(n)


@public
def polygamma(n, input, *, out=None):
    """torch.polygamma(n, input): the n-th derivative of digamma."""
    return write_out(dispatch(POLYGAMMA, input, n=_check_n(n)), out)


@public(name="polygamma", function=False, method=True)
def _polygamma_method(self, n):
    return dispatch(POLYGAMMA, self, n=_check_n(n))


@op("mvlgamma", save="i", node_name="MvlgammaBackward0")
def MVLGAMMA(xp, a, p=1):
    """The multivariate log-gamma of dimension p: sum_j lgamma(x - j/2) over j < p, plus p(p-1)/4 log(pi)
    (torch 2.13 no longer checks that every x is above (p-1)/2: the terms are log|Gamma| as lgamma's)."""
    x, dt = _float_in(xp, a)
    s = _sp(xp)
    r = s.gammaln(x)
    for j in range(1, p):
        r = r + s.gammaln(x - 0.5 * j)
    return (r + p * (p - 1) * math.log(math.pi) / 4).astype(dt, copy=False)


@MVLGAMMA.def_backward
def _(ctx, g):
    # torch's mvlgamma_backward: g times the sum of digamma over the same p arguments
    x, p = ctx.saved_inputs[0], ctx.attrs["p"]
    d = digamma(x)
    for j in range(1, p):
        d = d + digamma(x - 0.5 * j)
    return (g * d,)


def _check_p(p):
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    return int(p)


@public(method=True)
def mvlgamma(input, p, *, out=None):
    """torch.mvlgamma(input, p) / Tensor.mvlgamma(p)."""
    return write_out(dispatch(MVLGAMMA, input, p=_check_p(p)), out)


def _igamma_edges(xp, a, x, r, lower):
    """torch's calc_igamma / calc_igammac special cases, in its order, before Cephes' series: they decide
    some NaN arguments (a NaN a with x = 0 is 0 for igamma, where SciPy's is NaN)."""
    one, zero = (1.0, 0.0) if lower else (0.0, 1.0)
    r = xp.where(xp.isinf(x), one, r)
    r = xp.where(xp.isinf(a), xp.where(xp.isinf(x), np.nan, zero), r)
    r = xp.where(x == 0, zero, r)
    r = xp.where(a == 0, xp.where(x > 0, one, np.nan), r)
    return xp.where((x < 0) | (a < 0), np.nan, r)


def _igamma_float(xp, a, x, name):
    if a.dtype.kind in "biu" or x.dtype.kind in "biu":      # torch has no integer igamma kernel
        device = "cpu" if xp is np else "cuda"
        raise NotImplementedError(f'"{name}_{device}" not implemented for \'{D.scalar_name(a.dtype)}\'')
    if a.dtype.itemsize < 4:
        return a.astype(np.float32), x.astype(np.float32), a.dtype
    return a, x, a.dtype


def _as_array(xp, v, like):
    return v if hasattr(v, "dtype") and hasattr(v, "ndim") else xp.asarray(v, dtype=like.dtype)


@op("igamma", promote=True, save="i", node_name="IgammaBackward0")
def IGAMMA(xp, a, b):
    """The regularized lower incomplete gamma function P(a, x) (scipy's gammainc)."""
    a, x, dt = _igamma_float(xp, _as_array(xp, a, b), _as_array(xp, b, a), "igamma")
    return _igamma_edges(xp, a, x, _sp(xp).gammainc(a, x), True).astype(dt, copy=False)


@op("igammac", promote=True, save="i", node_name="IgammacBackward0")
def IGAMMAC(xp, a, b):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) (scipy's gammaincc)."""
    a, x, dt = _igamma_float(xp, _as_array(xp, a, b), _as_array(xp, b, a), "igammac")
    return _igamma_edges(xp, a, x, _sp(xp).gammaincc(a, x), False).astype(dt, copy=False)


def _igamma_backward(name, sign):
    def backward(ctx, g):
        a, x = ctx.saved_inputs
        if _needs(ctx, 0):      # torch's derivatives.yaml: not_implemented("igamma: input")
            raise NotImplementedError(f"the derivative for '{name}: input' is not implemented.")
        # d/dx P(a, x) = x^(a-1) e^(-x) / Gamma(a), as torch computes it
        gx = g * exp((a - 1) * log(x) - x - lgamma(a))
        return None, sum_to(gx if sign > 0 else neg(gx), ctx.in_meta[1][0])
    return backward


IGAMMA.def_backward(_igamma_backward("igamma", 1))
IGAMMAC.def_backward(_igamma_backward("igammac", -1))


@public(method=True)
def igamma(input, other, *, out=None):
    return write_out(dispatch(IGAMMA, input, other), out)


@public(method=True)
def igammac(input, other, *, out=None):
    return write_out(dispatch(IGAMMAC, input, other), out)


# --- Bessel i0 / i1 and their exponentially scaled forms ------------------------------------------------------

special_i1: Callable[..., Any]
special_i1e: Callable[..., Any]
special_i0e: Callable[..., Any]


def _tiny_safe(x):
    """torch's i1/i1e backward guard: |x| <= eps takes the limit 0.5 (the formula's 1/x is NaN there)."""
    eps = float(np.finfo(x._data.dtype).eps)
    tiny = x.abs() <= eps
    return tiny, where(tiny, eps, x)


def _i1_backward(ctx, g):
    # torch's i1_backward: i0(x) - i1(x) / x, 0.5 at |x| <= eps
    x, r = ctx.saved_inputs[0], ctx.saved_output
    tiny, safe = _tiny_safe(x)
    return (g * where(tiny, 0.5, i0(safe) - r / safe),)


def _i1e_backward(ctx, g):
    # torch's i1e_backward: i0e(x) - i1e(x) (sgn(x) + 1/x), 0.5 at |x| <= eps
    x, r = ctx.saved_inputs[0], ctx.saved_output
    tiny, safe = _tiny_safe(x)
    return (g * where(tiny, 0.5, special_i0e(safe) - r * (safe.sgn() + safe.reciprocal())),)


I0 = unary("i0", _unary_sp("i0"), lambda ctx, g: (g * special_i1(ctx.saved_inputs[0]),), node_name="I0Backward0",
           inplace=True)
i0 = I0.function


def _special_unary(name, kernel, backward=None, *, save="i", node_name=None):
    """An op of torch.special's own (`special_<name>`), without a Tensor method or a tensorlib.<name>
    function: tensorlib.special.<name> dispatches it."""
    o = op("special_" + name, save=save, node_name=node_name)(kernel)
    if backward is not None:
        o.def_backward(backward)
    return o


SPECIAL_I0E = _special_unary("i0e", _unary_sp("i0e"),
                             lambda ctx, g: (g * (special_i1e(ctx.saved_inputs[0])
                                                  - ctx.saved_inputs[0].sgn() * ctx.saved_output),),
                             save="io", node_name="SpecialI0EBackward0")
SPECIAL_I1 = _special_unary("i1", _unary_sp("i1"), _i1_backward, save="io", node_name="SpecialI1Backward0")
SPECIAL_I1E = _special_unary("i1e", _unary_sp("i1e"), _i1e_backward, save="io", node_name="SpecialI1EBackward0")


def _plain(o):
    def f(input):
        return dispatch(o, input)
    f.__name__ = o.name
    return f


special_i0e, special_i1, special_i1e = _plain(SPECIAL_I0E), _plain(SPECIAL_I1), _plain(SPECIAL_I1E)

# --- erfcx, the normal distribution's functions, entr, xlog1py, zeta ---------------------------------------

SPECIAL_ERFCX = _special_unary(
    "erfcx", _unary_sp("erfcx", "erfcx"),
    lambda ctx, g: ((ctx.saved_inputs[0] * ctx.saved_output * 2.0 - 2.0 / math.sqrt(math.pi)) * g,),
    save="io", node_name="SpecialErfcxBackward0")
SPECIAL_NDTRI = _special_unary(
    "ndtri", _unary_sp("ndtri", "ndtri"),
    lambda ctx, g: (g * math.sqrt(2 * math.pi) * exp(ctx.saved_output * ctx.saved_output / 2),),
    save="o", node_name="SpecialNdtriBackward0")
SPECIAL_LOG_NDTR = _special_unary(
    "log_ndtr", _unary_sp("log_ndtr", "log_ndtr"),
    lambda ctx, g: (g / math.sqrt(2 * math.pi)
                    * exp(neg(ctx.saved_output + ctx.saved_inputs[0] * ctx.saved_inputs[0] / 2)),),
    save="io", node_name="SpecialLogNdtrBackward0")
SPECIAL_ENTR = _special_unary("entr", _unary_sp("entr"), lambda ctx, g: (g * neg(log(ctx.saved_inputs[0]) + 1),),
                              node_name="SpecialEntrBackward0")


def _float_pair(xp, a, b, name=None):
    """Two operands (the dispatcher has promoted them to one dtype; a Python number may stay one) as float
    arrays of the result's dtype, and that dtype."""
    a, b = _as_array(xp, a, b), _as_array(xp, b, a)
    a, dt = _float_in(xp, a, name)
    b = b.astype(a.dtype, copy=False)
    return a, b, dt


@op("special_xlog1py", promote=True, save="i", node_name="SpecialXlog1PyBackward0")
def SPECIAL_XLOG1PY(xp, a, b):
    """x log1p(y), 0 where x is 0 (NaN where y is NaN), as torch."""
    x, y, dt = _float_pair(xp, a, b)
    r = x * xp.log1p(y)
    return xp.where(x == 0, xp.where(xp.isnan(y), y, 0), r).astype(dt, copy=False)


@SPECIAL_XLOG1PY.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    # torch's: xlog1py(grad, other), 0 where self == 0 and other <= -1; grad self / (other + 1)
    ga = (sum_to(where(eq(a, 0) & le(b, -1), 0.0, dispatch(SPECIAL_XLOG1PY, g, b)), ctx.in_meta[0][0])
          if _needs(ctx, 0) else None)
    gb = sum_to(g * a / (b + 1), ctx.in_meta[1][0]) if _needs(ctx, 1) else None
    return ga, gb


@op("special_zeta", promote=True, save="i", node_name="SpecialZetaBackward0")
def SPECIAL_ZETA(xp, a, b):
    """The Hurwitz zeta function zeta(x, q) (Cephes', torch's too; torch's has no large-q branch, so q = +inf
    gives NaN for x > 1, where SciPy's gives 0)."""
    x, q, dt = _float_pair(xp, a, b, "zeta")
    r = _sp(xp).zeta(x, q)
    return xp.where((q == np.inf) & (x > 1), np.nan, r).astype(dt, copy=False)


@SPECIAL_ZETA.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    if _needs(ctx, 0):              # torch's derivatives.yaml: not_implemented("zeta") for x
        raise NotImplementedError("the derivative for 'zeta' is not implemented.")
    return None, sum_to(g * neg(a) * dispatch(SPECIAL_ZETA, a + 1.0, b), ctx.in_meta[1][0])


# --- Bessel, Airy and spherical Bessel functions (no gradient in torch) ------------------------------------

def _airy_ai_k(xp, a):
    x, dt = _float_in(xp, a, "airy_ai")
    import scipy.special
    # cupyx.scipy.special has no airy (CuPy 13 and 14): on a GPU computed on the host, one synchronising copy
    # each way. torch's is NaN at +-inf and 0 past x = 103.892 (Ai underflows; SciPy's gives NaN for large x).
    host = x if xp is np else _sync.to_host(x, "special_airy_ai")
    with np.errstate(all="ignore"):
        r = np.where(host > 103.892, 0.0, scipy.special.airy(host)[0])
        r = np.where(np.isinf(host), np.nan, r).astype(dt, copy=False)
    return r if xp is np else xp.asarray(r)


def _spherical_j0_k(xp, a):
    """sin(x)/x as torch: its Taylor polynomial on |x| < 0.5, 0 at +-inf."""
    x, dt = _float_in(xp, a, "spherical_bessel_j0")
    x2 = x * x
    series = 1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (
        1.0 / 362880.0 + x2 * (-1.0 / 39916800.0 + x2 * (1.0 / 6227020800.0))))))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = xp.where(xp.abs(x) < 0.5, series, xp.sin(x) / x)
    return xp.where(xp.isinf(x), 0, r).astype(dt, copy=False)


BESSEL_OPS = {name: _special_unary(name, kernel) for name, kernel in {
    "airy_ai": _airy_ai_k,
    "bessel_j0": _unary_sp("j0", "bessel_j0"),
    "bessel_j1": _unary_sp("j1", "bessel_j1"),
    "bessel_y0": _unary_sp("y0", "bessel_y0"),
    "bessel_y1": _unary_sp("y1", "bessel_y1"),
    "modified_bessel_i0": _unary_sp("i0", "modified_bessel_i0"),
    "modified_bessel_i1": _unary_sp("i1", "modified_bessel_i1"),
    "modified_bessel_k0": _unary_sp("k0", "modified_bessel_k0"),
    "modified_bessel_k1": _unary_sp("k1", "modified_bessel_k1"),
    "scaled_modified_bessel_k0": _unary_sp("k0e", "scaled_modified_bessel_k0"),
    "scaled_modified_bessel_k1": _unary_sp("k1e", "scaled_modified_bessel_k1"),
    "spherical_bessel_j0": _spherical_j0_k,
}.items()}


# --- orthogonal polynomials: torch's recurrences in n (no gradient in torch) ----------------------------------

def _poly_operands(xp, a, b, name):
    """x and n as arrays of the result's float dtype, n truncated to int64 (as torch's static_cast; a NaN or
    infinite n counts as -1, hermite_polynomial_h's rule, which the others leave undefined)."""
    x, nf, dt = _float_pair(xp, a, b, name)
    x, nf = xp.broadcast_arrays(x, nf)
    n = xp.where(xp.isfinite(nf), xp.trunc(xp.where(xp.isfinite(nf), nf, 0)), -1).astype(np.int64)
    return x, n, dt


def _recur(xp, x, n, q, step, loop, limit=None):
    """q_{j+1} = step(j, q_{j-1}, q_j) for j = 1, 2, ..., n - 1, each element stopping at its own n: the
    value after n - 1 steps (q itself for n = 1). `loop` masks the elements the recurrence serves (the
    others are set by the caller), which bounds the number of steps by their largest n."""
    active = loop & (n > 1)
    top = int(_sync.to_host(xp.max(xp.where(active, n, 0)), "polynomial degree")) if active.size else 0
    if limit is not None:
        top = min(top, limit + 1)
    p = xp.ones_like(x)
    for j in range(1, top):
        r = step(j, p, q)
        go = active & (j < n)
        p, q = xp.where(go, q, p), xp.where(go, r, q)
    return q


def _cheb(kind, shifted):
    """torch's chebyshev_polynomial_{t,u,v,w} and their shifted forms (argument 2x - 1), with its exact
    special cases at the ends of [-1, 1] (or [0, 1]) and its trigonometric forms for large n inside."""
    first = {"t": 0.0, "u": None, "v": -1.0, "w": 1.0}[kind]     # q_1 = 2x + c (t: x)
    big = {("t", False): 6, ("u", False): 8, ("v", False): 8, ("w", False): 8,
           ("t", True): 6, ("u", True): 6, ("v", True): 6, ("w", True): 4}[kind, shifted]
    name = ("shifted_" if shifted else "") + f"chebyshev_polynomial_{kind}"

    def kernel(xp, a, b):
        x0, n, dt = _poly_operands(xp, a, b, name)
        y = x0 + x0 - 1.0 if shifted else x0
        q1 = y if kind == "t" else y + y if kind == "u" else y + y + first
        nf = n.astype(y.dtype)
        even = n % 2 == 0
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            inside = (n > big) & (xp.abs(y) < 1)
            r = _recur(xp, y, n, q1, lambda j, p, q: (y + y) * q - p, ~inside)
            r = xp.where(n == 1, q1, r)
            r = xp.where(n == 0, 1.0, r)
            th = xp.arccos(xp.where(inside, y, 0.0))
            if kind == "t":
                trig = xp.cos(nf * th)
            elif kind == "u":
                s = xp.sin(th)
                trig = xp.where(s != 0, xp.sin((nf + 1) * th) / s, (nf + 1) * xp.cos((nf + 1) * th) / y)
            elif kind == "v":
                trig = xp.where(xp.sin(th / 2) != 1, xp.cos((nf + 0.5) * th) / xp.cos(th / 2),
                                xp.where(even, nf + nf + 1, -(nf + nf + 1)))
            else:
                trig = xp.where(xp.cos(th / 2) != 1, xp.sin((nf + 0.5) * th) / xp.sin(th / 2),
                                xp.where((y > 0) & (not shifted), nf + nf + 1, xp.where(even, 1.0, -1.0)))
            r = xp.where(inside, trig, r)
            # the ends: x = +-1 (shifted: x = 1 and x = 0)
            hi, lo = (x0 == 1, x0 == 0) if shifted else ((xp.abs(x0) == 1) & (x0 > 0), (xp.abs(x0) == 1) & (x0 < 0))
            at_hi = {"t": 1.0, "u": nf + 1, "v": 1.0, "w": nf + nf + 1}[kind]
            at_lo = {"t": xp.where(even, 1.0, -1.0), "u": xp.where(even, nf + 1, -(nf + 1)),
                     "v": xp.where(even, nf + nf + 1, -(nf + nf + 1)), "w": xp.where(even, 1.0, -1.0)}[kind]
            r = xp.where(hi, at_hi, xp.where(lo, at_lo, r))
            r = xp.where(n < 0, 0.0, r)
        return r.astype(dt, copy=False)
    return name, kernel


def _hermite(physicists):
    name = "hermite_polynomial_h" if physicists else "hermite_polynomial_he"

    def kernel(xp, a, b):
        x, n, dt = _poly_operands(xp, a, b, name)
        limit = 128 if dt == np.float32 else 512        # torch's getHermitianLimit: NaN past it
        if physicists:
            q1, step = x + x, (lambda j, p, q: (x + x) * q - (2 * j) * p)
        else:
            q1, step = x, (lambda j, p, q: x * q - j * p)
        with np.errstate(invalid="ignore", over="ignore"):
            r = _recur(xp, x, n, q1, step, n <= limit, limit)
            r = xp.where(n > limit, np.nan, r)
            r = xp.where(n == 1, q1, r)
            r = xp.where(n == 0, 1.0, xp.where(n < 0, 0.0, r))
        return r.astype(dt, copy=False)
    return name, kernel


def _laguerre_k(xp, a, b):
    x, n, dt = _poly_operands(xp, a, b, "laguerre_polynomial_l")
    with np.errstate(invalid="ignore", over="ignore"):
        r = _recur(xp, x, n, 1.0 - x, lambda j, p, q: (((j + j) + (1.0 - x)) * q - j * p) / (j + 1), x != 0)
        r = xp.where(n == 1, 1.0 - x, r)
        r = xp.where((n == 0) | (x == 0), 1.0, r)
        r = xp.where(n < 0, 0.0, r)
    return r.astype(dt, copy=False)


def _legendre_k(xp, a, b):
    x, n, dt = _poly_operands(xp, a, b, "legendre_polynomial_p")
    with np.errstate(invalid="ignore", over="ignore"):
        ends = xp.abs(x) == 1
        r = _recur(xp, x, n, x, lambda j, p, q: ((j + j + 1) * x * q - j * p) / (j + 1), ~ends)
        r = xp.where(n == 1, x, r)
        r = xp.where(n == 0, 1.0, r)
        r = xp.where(ends, xp.where((x > 0) | (n % 2 == 0), 1.0, -1.0), r)
        r = xp.where(n < 0, 0.0, r)
    return r.astype(dt, copy=False)


POLYNOMIAL_OPS = {}
for _name, _kernel in [*(_cheb(k, s) for s in (False, True) for k in "tuvw"), _hermite(True), _hermite(False),
                       ("laguerre_polynomial_l", _laguerre_k), ("legendre_polynomial_p", _legendre_k)]:
    POLYNOMIAL_OPS[_name] = op("special_" + _name, promote=True)(_kernel)


# the in-place forms with an argument (polygamma_(n), igamma_(other), ...): the op, then copy_ into self, as
# extra_methods' other in-place methods
for _base in ("polygamma", "mvlgamma", "igamma", "igammac"):
    public(_inplace(_base), name=_base + "_", function=False, method=True)

__all__ = ["LGAMMA", "DIGAMMA", "POLYGAMMA", "MVLGAMMA", "IGAMMA", "IGAMMAC", "I0", "SPECIAL_I0E", "SPECIAL_I1",
           "SPECIAL_I1E", "SPECIAL_ERFCX", "SPECIAL_NDTRI", "SPECIAL_LOG_NDTR", "SPECIAL_ENTR", "SPECIAL_XLOG1PY",
           "SPECIAL_ZETA", "BESSEL_OPS", "POLYNOMIAL_OPS", "Tensor"]
