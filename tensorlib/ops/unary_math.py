"""Unary math: sign and magnitude, exponentials and logarithms, powers, trigonometry, rounding, erf.

Most are one table line (`unary`): the kernel, the backward, and the function/method/in-place names that
follow from the op's name. Integer inputs of float functions compute in the default float dtype, as in torch.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .. import _dtype as D
from .comparison import isfinite
from ._define import dispatch, np, op, public, unary, write_out

# The backward formulas below call functions the declarations further down make (read at call time).
neg: Callable[..., Any]
sign: Callable[..., Any]
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

NEG = unary("neg", lambda xp, a: -a, lambda ctx, g: (neg(g),), save="", aliases=("negative",))
ABS = unary("abs", lambda xp, a: xp.abs(a), lambda ctx, g: (g * sign(ctx.saved_inputs[0]),), aliases=("absolute",))
SIGN = unary("sign", lambda xp, a: xp.sign(a), lambda ctx, g: (g * 0,), save="")
SGN = unary("sgn", lambda xp, a: xp.sign(a), lambda ctx, g: (g * 0,), save="")
neg, abs, sign, sgn = NEG.function, ABS.function, SIGN.function, SGN.function
negative, absolute = neg, abs
public(neg, name="__neg__", function=False, method=True)
public(abs, name="__abs__", function=False, method=True)
public(lambda self: self, name="__pos__", function=False, method=True)

# --- exponentials, logarithms, powers ---------------------------------------------------------------------

RECIPROCAL = unary("reciprocal", lambda xp, a: xp.reciprocal(_f(xp, a)),
                   lambda ctx, g: (neg(g) * ctx.saved_output * ctx.saved_output,), save="o", amp="fp32")
EXP = unary("exp", lambda xp, a: xp.exp(_f(xp, a)), lambda ctx, g: (g * ctx.saved_output,), save="o", amp="fp32",
            inplace=True)
EXP2 = unary("exp2", lambda xp, a: xp.exp2(_f(xp, a)), lambda ctx, g: (g * ctx.saved_output * math.log(2),),
             save="o")
EXPM1 = unary("expm1", lambda xp, a: xp.expm1(_f(xp, a)), lambda ctx, g: (g * (ctx.saved_output + 1),), save="o",
              amp="fp32")
LOG = unary("log", lambda xp, a: xp.log(_f(xp, a)), lambda ctx, g: (g / ctx.saved_inputs[0],), amp="fp32",
            inplace=True)
LOG1P = unary("log1p", lambda xp, a: xp.log1p(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_inputs[0] + 1),),
              amp="fp32")
LOG2 = unary("log2", lambda xp, a: xp.log2(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(2)),),
             amp="fp32")
LOG10 = unary("log10", lambda xp, a: xp.log10(_f(xp, a)),
              lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(10)),), amp="fp32")
SQRT = unary("sqrt", lambda xp, a: xp.sqrt(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_output * 2),), save="o",
             inplace=True)
RSQRT = unary("rsqrt", lambda xp, a: 1 / xp.sqrt(_f(xp, a)),
              lambda ctx, g: (g * ctx.saved_output ** 3 * -0.5,), save="o", amp="fp32")
reciprocal, exp, exp2, expm1 = RECIPROCAL.function, EXP.function, EXP2.function, EXPM1.function
log, log1p, log2, log10 = LOG.function, LOG1P.function, LOG2.function, LOG10.function
sqrt, rsqrt = SQRT.function, RSQRT.function


@public(method=True)
def square(input, *, out=None):
    return write_out((input if input._data.dtype != np.bool_ else input.long()) ** 2, out)


# --- trigonometry -----------------------------------------------------------------------------------------

SIN = unary("sin", lambda xp, a: xp.sin(_f(xp, a)), lambda ctx, g: (g * cos(ctx.saved_inputs[0]),))
COS = unary("cos", lambda xp, a: xp.cos(_f(xp, a)), lambda ctx, g: (neg(g) * sin(ctx.saved_inputs[0]),))
TAN = unary("tan", lambda xp, a: xp.tan(_f(xp, a)), lambda ctx, g: (g * (1 + ctx.saved_output * ctx.saved_output),),
            save="o")
TANH = unary("tanh", lambda xp, a: xp.tanh(_f(xp, a)),
             lambda ctx, g: (g * (1 - ctx.saved_output * ctx.saved_output),), save="o", inplace=True)
SINH = unary("sinh", lambda xp, a: xp.sinh(_f(xp, a)), lambda ctx, g: (g * cosh(ctx.saved_inputs[0]),))
COSH = unary("cosh", lambda xp, a: xp.cosh(_f(xp, a)), lambda ctx, g: (g * sinh(ctx.saved_inputs[0]),))
ASIN = unary("asin", lambda xp, a: xp.arcsin(_f(xp, a)),
             lambda ctx, g: (g * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),), aliases=("arcsin",))
ACOS = unary("acos", lambda xp, a: xp.arccos(_f(xp, a)),
             lambda ctx, g: (neg(g) * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),), aliases=("arccos",))
ATAN = unary("atan", lambda xp, a: xp.arctan(_f(xp, a)),
             lambda ctx, g: (g / (ctx.saved_inputs[0] * ctx.saved_inputs[0] + 1),), aliases=("arctan",))
DEG2RAD = unary("deg2rad", lambda xp, a: _f(xp, a) * (math.pi / 180), lambda ctx, g: (g * (math.pi / 180),),
                save="", node_name="Deg2RadBackward0")
sin, cos, tan, tanh, sinh, cosh = SIN.function, COS.function, TAN.function, TANH.function, SINH.function, COSH.function
asin, acos, atan, deg2rad = ASIN.function, ACOS.function, ATAN.function, DEG2RAD.function
arcsin, arccos, arctan = asin, acos, atan

# --- rounding ---------------------------------------------------------------------------------------------

FLOOR = unary("floor", lambda xp, a: xp.floor(a), lambda ctx, g: (g * 0,), save="")
CEIL = unary("ceil", lambda xp, a: xp.ceil(a), lambda ctx, g: (g * 0,), save="")
TRUNC = unary("trunc", lambda xp, a: xp.trunc(a), lambda ctx, g: (g * 0,), save="")
ROUND = op("round", save="")(lambda xp, a: xp.round(a))
ROUND.def_backward(lambda ctx, g: (g * 0,))
floor, ceil, trunc = FLOOR.function, CEIL.function, TRUNC.function


@public(method=True)
def round(input, decimals=0):
    if decimals:
        return dispatch(ROUND, input * 10 ** decimals) / 10 ** decimals
    return dispatch(ROUND, input)


@public(method=True)
def fix(input):
    return trunc(input)


def _frac_k(xp, a):
    if a.dtype.kind in "biu":
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{D.scalar_name(a.dtype)}'")
    return a - xp.trunc(a)


FRAC = unary("frac", _frac_k, lambda ctx, g: (g,), save="")
frac = FRAC.function

# --- erf, nan_to_num --------------------------------------------------------------------------------------


def erf_kernel(xp, x):
    if xp is np:
        try:
            from scipy.special import erf  # optional, exact
            return erf(x)
        except ImportError:
            return _np_erf(x).astype(x.dtype, copy=False)
    import cupyx.scipy.special
    return cupyx.scipy.special.erf(x)


_np_erf = np.vectorize(math.erf, otypes=[np.float64])

ERF = unary("erf", lambda xp, a: erf_kernel(xp, _f(xp, a)),
            lambda ctx, g: (g * exp(neg(ctx.saved_inputs[0] * ctx.saved_inputs[0])) * (2 / math.sqrt(math.pi)),))
erf = ERF.function


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
