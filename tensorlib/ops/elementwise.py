"""Elementwise ops: arithmetic with broadcasting and torch's promotion, math, activations, comparisons."""
from __future__ import annotations

import math

from ._helpers import sum_to
from ..dispatch import dispatch2
from ._registry import Tensor, dispatch, method, np, op, unwrap_scalar


def _needs(ctx, i):
    return ctx.needs_input_grad[i]


# --- arithmetic -------------------------------------------------------------------------------

@op("add", promote=True, node_name="AddBackward0")
def ADD(xp, a, b, alpha=1):
    return a + b if alpha == 1 else a + alpha * b


@ADD.def_backward
def _(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    sa, sb = ctx.in_meta[0], ctx.in_meta[1]
    return (sum_to(g, sa[0]) if ctx.needs_input_grad[0] else None,
            sum_to(g if alpha == 1 else g * alpha, sb[0]) if ctx.needs_input_grad[1] else None)


@op("sub", promote=True, node_name="SubBackward0")
def SUB(xp, a, b, alpha=1):
    return a - b if alpha == 1 else a - alpha * b


@SUB.def_backward
def _(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    return (sum_to(g, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(neg(g) if alpha == 1 else g * (-alpha), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


@op("mul", promote=True, save="i", node_name="MulBackward0")
def MUL(xp, a, b):
    return a * b


@MUL.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    return (sum_to(g * b, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(g * a, ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


def int_zero_division(xp, a, b):
    """torch's CPU kernels raise on an integer division (floor, trunc, remainder, fmod) by zero; NumPy gives 0.
    On CUDA torch does not check (that would sync), so neither do we."""
    if xp is np and getattr(b, "dtype", np.dtype(type(b))).kind in "iub" and getattr(a, "dtype", None) is not None \
            and a.dtype.kind in "iub" and not np.all(b):
        raise RuntimeError("ZeroDivisionError")


@op("div", promote=True, save="i", node_name="DivBackward0")
def DIV(xp, a, b, rounding_mode=None):
    if rounding_mode is None:
        return xp.true_divide(a, b)
    int_zero_division(xp, a, b)
    if rounding_mode == "floor":
        return xp.floor_divide(a, b)
    if rounding_mode == "trunc":
        r = xp.true_divide(a, b)
        r = xp.trunc(r)
        dt = _arr_dtype(a, b)
        return r.astype(dt) if dt is not None and dt.kind in "iu" else r
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def _arr_dtype(a, b):
    for x in (a, b):
        if hasattr(x, "dtype") and hasattr(x, "ndim"):
            return x.dtype
    return None


@DIV.def_backward
def _(ctx, g):
    if ctx.attrs.get("rounding_mode") is not None:
        return None, None
    a, b = ctx.saved_inputs
    ga = sum_to(g / b, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gb = sum_to(neg(g) * a / (b * b), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    return ga, gb


@op("pow", promote=True, save="io", amp="fp32", node_name="PowBackward0")
def POW(xp, a, b):
    if hasattr(a, "dtype") and a.dtype.kind in "iu" and isinstance(b, int) and b < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return a ** b


@POW.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    ga = gb = None
    if ctx.needs_input_grad[0]:
        if isinstance(b, Tensor):
            ga = sum_to(g * b * a ** (b - 1), ctx.in_meta[0][0])
        elif b == 0:
            ga = g * 0
        else:
            ga = g * b * a ** (b - 1)
    if ctx.needs_input_grad[1]:
        out = ctx.saved_output
        base = a if isinstance(a, Tensor) else a
        lg = log(base) if isinstance(base, Tensor) else math.log(base)
        # torch: where base == 0 and exponent >= 0, the gradient w.r.t. the exponent is 0
        gb = g * out * lg
        if isinstance(a, Tensor):
            gb = where(eq(a, 0) & ge(b, 0), 0.0, gb)
        gb = sum_to(gb, ctx.in_meta[1][0])
    return ga, gb


def _unary(name, kernel, backward=None, save="i", amp=None, node_name=None):
    o = op(name, save=save, amp=amp, node_name=node_name)(kernel)
    if backward is not None:
        o.def_backward(backward)
    return o


NEG = _unary("neg", lambda xp, a: -a, lambda ctx, g: (neg(g),), save="")
ABS = _unary("abs", lambda xp, a: xp.abs(a), lambda ctx, g: (g * sign(ctx.saved_inputs[0]),))
SIGN = _unary("sign", lambda xp, a: xp.sign(a), lambda ctx, g: (g * 0,), save="")
RECIPROCAL = _unary("reciprocal", lambda xp, a: xp.reciprocal(_f(xp, a)),
                    lambda ctx, g: (neg(g) * ctx.saved_output * ctx.saved_output,), save="o", amp="fp32")
EXP = _unary("exp", lambda xp, a: xp.exp(_f(xp, a)), lambda ctx, g: (g * ctx.saved_output,), save="o", amp="fp32")
LOG = _unary("log", lambda xp, a: xp.log(_f(xp, a)), lambda ctx, g: (g / ctx.saved_inputs[0],), amp="fp32")
LOG1P = _unary("log1p", lambda xp, a: xp.log1p(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_inputs[0] + 1),),
               amp="fp32")
LOG2 = _unary("log2", lambda xp, a: xp.log2(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(2)),),
              amp="fp32")
SQRT = _unary("sqrt", lambda xp, a: xp.sqrt(_f(xp, a)), lambda ctx, g: (g / (ctx.saved_output * 2),), save="o")
RSQRT = _unary("rsqrt", lambda xp, a: 1 / xp.sqrt(_f(xp, a)),
               lambda ctx, g: (g * ctx.saved_output ** 3 * -0.5,), save="o", amp="fp32")
SIN = _unary("sin", lambda xp, a: xp.sin(_f(xp, a)), lambda ctx, g: (g * cos(ctx.saved_inputs[0]),))
COS = _unary("cos", lambda xp, a: xp.cos(_f(xp, a)), lambda ctx, g: (neg(g) * sin(ctx.saved_inputs[0]),))
TANH = _unary("tanh", lambda xp, a: xp.tanh(_f(xp, a)),
              lambda ctx, g: (g * (1 - ctx.saved_output * ctx.saved_output),), save="o")


def _f(xp, a):
    """Integer inputs of float functions compute in the default float dtype, as in torch."""
    if a.dtype.kind in "biu":
        from .._dtype import get_default_dtype
        return a.astype(get_default_dtype().np)
    return a


def _sigmoid_k(xp, a):
    a = _f(xp, a)
    # numerically stable both ways
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


SIGMOID = _unary("sigmoid", _sigmoid_k, lambda ctx, g: (g * ctx.saved_output * (1 - ctx.saved_output),), save="o")

@op("threshold_backward", save="i", node_name="ThresholdBackwardBackward0")
def THRESHOLD_BACKWARD(xp, g, y, threshold=0):
    """torch's threshold_backward: the gradient where y > threshold, 0 elsewhere (ReLU's backward, one op).
    A product with the mask, three times faster than NumPy's where() on a 64x256 batch; unlike torch's
    select it turns an inf or NaN gradient into NaN where y <= threshold (as the product did before).
    The mask is cast first: a float x bool product takes NumPy's buffered mixed-type loop, 1.7x slower
    at 512x4096 (1.75 vs 1.02 ms)."""
    m = y > threshold
    return g * (m.astype(g.dtype) if g.dtype.kind == "f" else m)


@THRESHOLD_BACKWARD.def_backward
def _(ctx, gg):
    y = ctx.saved_inputs[1]
    return (dispatch(THRESHOLD_BACKWARD, gg, y, **ctx.attrs) if ctx.needs_input_grad[0] else None, None)


def threshold_backward(grad_output, input, threshold):
    return dispatch(THRESHOLD_BACKWARD, grad_output, input, threshold=threshold)


RELU = _unary("relu", lambda xp, a: xp.maximum(a, 0).astype(a.dtype, copy=False),
              lambda ctx, g: (dispatch(THRESHOLD_BACKWARD, g, ctx.saved_output, threshold=0),), save="o")


def _erf(xp, x):
    if xp is np:
        try:
            from scipy.special import erf  # optional, exact
            return erf(x)
        except ImportError:
            return _np_erf(x).astype(x.dtype, copy=False)
    import cupyx.scipy.special
    return cupyx.scipy.special.erf(x)


_np_erf = np.vectorize(math.erf, otypes=[np.float64])

_SQRT2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _gelu_k(xp, a, approximate="none"):
    if approximate == "tanh":
        return (0.5 * a * (1 + xp.tanh(_SQRT_2_PI * (a + 0.044715 * a ** 3)))).astype(a.dtype, copy=False)
    if approximate != "none":
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return (a * 0.5 * (1 + _erf(xp, a / _SQRT2))).astype(a.dtype, copy=False)


GELU = op("gelu", save="i")(_gelu_k)


@GELU.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    if ctx.attrs.get("approximate", "none") == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_PI
        t = tanh(inner)
        d = (1 + t) * 0.5 + x * 0.5 * (1 - t * t) * _SQRT_2_PI * (1 + x * x * (3 * 0.044715))
        return (g * d,)
    cdf = (1 + erf(x / _SQRT2)) * 0.5
    pdf = exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return (g * (cdf + x * pdf),)


ERF = _unary("erf", lambda xp, a: _erf(xp, _f(xp, a)),
             lambda ctx, g: (g * exp(neg(ctx.saved_inputs[0] * ctx.saved_inputs[0])) * (2 / math.sqrt(math.pi)),))


def _silu_k(xp, a):
    return a * _sigmoid_k(xp, a)


SILU = _unary("silu", _silu_k, None)


@SILU.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    s = sigmoid(x)
    return (g * s * (1 + x * (1 - s)),)


@op("leaky_relu", save="i")
def LEAKY_RELU(xp, a, negative_slope=0.01):
    return xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


@LEAKY_RELU.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    return (where(gt(x, 0), g, g * ctx.attrs.get("negative_slope", 0.01)),)


@op("elu", save="io")
def ELU(xp, a, alpha=1.0):
    return xp.where(a > 0, a, alpha * (xp.exp(xp.minimum(a, 0)) - 1)).astype(a.dtype, copy=False)


@ELU.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    return (where(gt(x, 0), g, g * (ctx.saved_output + ctx.attrs.get("alpha", 1.0))),)


@op("softplus", save="i", amp="fp32")
def SOFTPLUS(xp, a, beta=1.0, threshold=20.0):
    z = a * beta
    return xp.where(z > threshold, a, xp.logaddexp(0, z) / beta).astype(a.dtype, copy=False)


@SOFTPLUS.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    beta = ctx.attrs.get("beta", 1.0)
    th = ctx.attrs.get("threshold", 20.0)
    z = x * beta
    return (where(gt(z, th), g, g * sigmoid(z)),)


@op("clamp", save="i")
def CLAMP(xp, a, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("tensorlib.clamp: At least one of 'min' or 'max' must not be None")
    r = xp.clip(a, min, max)
    return r.astype(a.dtype, copy=False) if r.dtype != a.dtype and a.dtype.kind == "f" else r


@CLAMP.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    lo, hi = ctx.attrs.get("min"), ctx.attrs.get("max")
    mask = None
    if lo is not None:
        mask = ge(x, lo)
    if hi is not None:
        m2 = le(x, hi)
        mask = m2 if mask is None else mask & m2
    return (g * mask,)


@op("where", save="i")
def WHERE(xp, cond, a, b):
    if hasattr(a, "dtype") and hasattr(b, "dtype") and a.dtype != b.dtype and getattr(a, "ndim", 0) >= 0:
        from .. import _dtype as D
        rt = D.result_type(D.from_np(a.dtype), a.ndim == 0, D.from_np(b.dtype), b.ndim == 0).np
        a, b = a.astype(rt, copy=False), b.astype(rt, copy=False)
    elif hasattr(a, "dtype") and not hasattr(b, "dtype"):
        return xp.where(cond, a, xp.asarray(b, dtype=a.dtype))
    elif hasattr(b, "dtype") and not hasattr(a, "dtype"):
        return xp.where(cond, xp.asarray(a, dtype=b.dtype), b)
    elif not hasattr(a, "dtype") and not hasattr(b, "dtype"):
        from .._dtype import get_default_dtype
        return xp.where(cond, a, b).astype(get_default_dtype().np if isinstance(a, float) or isinstance(b, float)
                                           else np.int64)
    return xp.where(cond, a, b)


@WHERE.def_backward
def _(ctx, g):
    cond = ctx.saved_inputs[0]
    ga = sum_to(where(cond, g, 0.0), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    gb = sum_to(where(cond, 0.0, g), ctx.in_meta[2][0]) if ctx.needs_input_grad[2] else None
    return None, ga, gb


def _minmax_bwd(pick_a):
    def bwd(ctx, g):
        a, b = ctx.saved_inputs
        half = g * 0.5
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to(where(eq(a, b), half, where(pick_a(a, b), g, 0.0)), ctx.in_meta[0][0])
        if ctx.needs_input_grad[1]:
            gb = sum_to(where(eq(a, b), half, where(pick_a(a, b), 0.0, g)), ctx.in_meta[1][0])
        return ga, gb
    return bwd


MAXIMUM = op("maximum", promote=True, save="i")(lambda xp, a, b: xp.maximum(a, b))
MAXIMUM.def_backward(_minmax_bwd(lambda a, b: gt(a, b)))
MINIMUM = op("minimum", promote=True, save="i")(lambda xp, a, b: xp.minimum(a, b))
MINIMUM.def_backward(_minmax_bwd(lambda a, b: lt(a, b)))

def _floor_divide_k(xp, a, b):
    int_zero_division(xp, a, b)
    return xp.floor_divide(a, b)


FLOOR_DIVIDE = op("floor_divide", promote=True)(_floor_divide_k)


@op("remainder", promote=True, save="i")
def REMAINDER(xp, a, b):
    int_zero_division(xp, a, b)
    return xp.remainder(a, b)


@REMAINDER.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    ga = sum_to(g, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gb = sum_to(neg(g) * floor_divide(a, b), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    return ga, gb


FLOOR = _unary("floor", lambda xp, a: xp.floor(a), lambda ctx, g: (g * 0,), save="")
CEIL = _unary("ceil", lambda xp, a: xp.ceil(a), lambda ctx, g: (g * 0,), save="")
ROUND = _unary("round", lambda xp, a: xp.round(a), lambda ctx, g: (g * 0,), save="")
TRUNC = _unary("trunc", lambda xp, a: xp.trunc(a), lambda ctx, g: (g * 0,), save="")

# --- comparisons and logic (bool results, not differentiable) ---------------------------------------

EQ = op("eq", promote=True)(lambda xp, a, b: xp.equal(a, b))
NE = op("ne", promote=True)(lambda xp, a, b: xp.not_equal(a, b))
LT = op("lt", promote=True)(lambda xp, a, b: xp.less(a, b))
LE = op("le", promote=True)(lambda xp, a, b: xp.less_equal(a, b))
GT = op("gt", promote=True)(lambda xp, a, b: xp.greater(a, b))
GE = op("ge", promote=True)(lambda xp, a, b: xp.greater_equal(a, b))
LOGICAL_NOT = op("logical_not")(lambda xp, a: xp.logical_not(a))
LOGICAL_AND = op("logical_and")(lambda xp, a, b: xp.logical_and(a, b))
LOGICAL_OR = op("logical_or")(lambda xp, a, b: xp.logical_or(a, b))
LOGICAL_XOR = op("logical_xor")(lambda xp, a, b: xp.logical_xor(a, b))
def _bitwise(name, fn):
    """Integer and bool only, as torch (whose error names its CPU kernel; NumPy's would name a ufunc)."""
    def kernel(xp, *arrays):
        for x in arrays:
            kind = getattr(x, "dtype", np.dtype(type(x))).kind
            if kind not in "iub":
                from .._dtype import scalar_name
                raise NotImplementedError(f'"{name}_cpu" not implemented for \'{scalar_name(x.dtype)}\''
                                          if hasattr(x, "dtype") else f'"{name}_cpu" not implemented for \'Float\'')
        return fn(*arrays)
    return kernel


BITWISE_AND = op("bitwise_and", promote=True)(_bitwise("bitwise_and", lambda a, b: a & b))
BITWISE_OR = op("bitwise_or", promote=True)(_bitwise("bitwise_or", lambda a, b: a | b))
BITWISE_XOR = op("bitwise_xor", promote=True)(_bitwise("bitwise_xor", lambda a, b: a ^ b))
BITWISE_NOT = op("bitwise_not")(_bitwise("bitwise_not", lambda a: ~a))
ISNAN = op("isnan")(lambda xp, a: xp.isnan(a))
ISINF = op("isinf")(lambda xp, a: xp.isinf(a))
ISFINITE = op("isfinite")(lambda xp, a: xp.isfinite(a))


# --- public functions ------------------------------------------------------------------------------

def _scalar_or_tensor(x, name):
    if isinstance(x, Tensor) or isinstance(x, (bool, int, float, np.generic)):
        return x
    raise TypeError(f"{name}(): argument 'other' must be Tensor or Number, not {type(x).__name__}")


def add(input, other, *, alpha=1, out=None):
    r = dispatch(ADD, input, other) if alpha == 1 else dispatch(ADD, input, other, alpha=alpha)
    return _out(r, out)


def sub(input, other, *, alpha=1, out=None):
    r = dispatch(SUB, input, other) if alpha == 1 else dispatch(SUB, input, other, alpha=alpha)
    return _out(r, out)


subtract = sub


def mul(input, other, *, out=None):
    return _out(dispatch(MUL, input, other), out)


multiply = mul


def div(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is None:
        return _out(dispatch(DIV, _true_div_operand(input, other), other), out)
    return _out(dispatch(DIV, input, other, rounding_mode=rounding_mode), out)


def _true_div_operand(a, b):
    """int / int is a float division in torch: lift an integer tensor to the default float first."""
    b_is_float = isinstance(b, float) or (isinstance(b, Tensor) and b._data.dtype.kind == "f")
    if isinstance(a, Tensor) and a._data.dtype.kind in "biu" and not b_is_float:
        from .. import _dtype as D
        from .misc import to
        return to(a, dtype=D.get_default_dtype())
    return a


divide = true_divide = div


def pow(input, exponent, *, out=None):
    return _out(dispatch(POW, input, exponent), out)


def neg(input):
    return dispatch(NEG, input)


negative = neg


def floor_divide(input, other):
    return dispatch(FLOOR_DIVIDE, input, other)


def remainder(input, other):
    return dispatch(REMAINDER, input, other)


def maximum(input, other):
    return dispatch(MAXIMUM, input, other)


def minimum(input, other):
    return dispatch(MINIMUM, input, other)


def clamp(input, min=None, max=None):
    return dispatch(CLAMP, input, min=unwrap_scalar(min), max=unwrap_scalar(max))


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def where(condition, input=None, other=None):
    if input is None and other is None:
        from .index import nonzero
        return nonzero(condition, as_tuple=True)
    return dispatch(WHERE, condition, input, other)


def leaky_relu(input, negative_slope=0.01):
    return dispatch(LEAKY_RELU, input, negative_slope=negative_slope)


def elu(input, alpha=1.0):
    return dispatch(ELU, input, alpha=alpha)


def softplus(input, beta=1.0, threshold=20.0):
    return dispatch(SOFTPLUS, input, beta=beta, threshold=threshold)


def gelu(input, approximate="none"):
    return dispatch(GELU, input) if approximate == "none" else dispatch(GELU, input, approximate=approximate)


def _out(r, out):
    if out is None:
        return r
    from .misc import copy_
    copy_(out, r)
    return out


def _mk1(o):
    def f(input):
        return dispatch(o, input)
    f.__name__ = o.name
    return f


abs = _mk1(ABS)
absolute = abs
sign = _mk1(SIGN)
reciprocal = _mk1(RECIPROCAL)
exp = _mk1(EXP)
log = _mk1(LOG)
log1p = _mk1(LOG1P)
log2 = _mk1(LOG2)
sqrt = _mk1(SQRT)
rsqrt = _mk1(RSQRT)
sin = _mk1(SIN)
cos = _mk1(COS)
tanh = _mk1(TANH)
sigmoid = _mk1(SIGMOID)
relu = _mk1(RELU)
silu = _mk1(SILU)
erf = _mk1(ERF)
floor = _mk1(FLOOR)
ceil = _mk1(CEIL)
trunc = _mk1(TRUNC)
logical_not = _mk1(LOGICAL_NOT)
bitwise_not = _mk1(BITWISE_NOT)
isnan = _mk1(ISNAN)
isinf = _mk1(ISINF)
isfinite = _mk1(ISFINITE)


def round(input, decimals=0):
    if decimals:
        return div(dispatch(ROUND, mul(input, 10 ** decimals)), 10 ** decimals)
    return dispatch(ROUND, input)


def _mk2(o):
    def f(input, other):
        return dispatch(o, input, other)
    f.__name__ = o.name
    return f


eq = _mk2(EQ)
ne = _mk2(NE)
lt = _mk2(LT)
le = _mk2(LE)
gt = _mk2(GT)
ge = _mk2(GE)
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
logical_and = _mk2(LOGICAL_AND)
logical_or = _mk2(LOGICAL_OR)
logical_xor = _mk2(LOGICAL_XOR)
bitwise_and = _mk2(BITWISE_AND)
bitwise_or = _mk2(BITWISE_OR)
bitwise_xor = _mk2(BITWISE_XOR)


# --- Tensor operators and methods -------------------------------------------------------------------

_OPERAND = (Tensor, bool, int, float, np.generic)


def _bin(o, reflected=False):
    if reflected:
        def f(self, other):
            if type(other) is not Tensor and not isinstance(other, _OPERAND):
                return NotImplemented
            return dispatch2(o, other, self)
    else:
        def f(self, other):
            if type(other) is not Tensor and not isinstance(other, _OPERAND):
                return NotImplemented
            return dispatch2(o, self, other)
    return f


Tensor.__add__ = _bin(ADD)
Tensor.__radd__ = _bin(ADD, True)
Tensor.__sub__ = _bin(SUB)
Tensor.__rsub__ = _bin(SUB, True)
Tensor.__mul__ = _bin(MUL)
Tensor.__rmul__ = _bin(MUL, True)
Tensor.__truediv__ = lambda self, other: div(self, other)
Tensor.__rtruediv__ = lambda self, other: div(other, self) if isinstance(other, Tensor) else \
    reciprocal(self) * other      # torch's Tensor.__rdiv__: the same rounding, the same ops in a profile
Tensor.__floordiv__ = _bin(FLOOR_DIVIDE)
Tensor.__rfloordiv__ = _bin(FLOOR_DIVIDE, True)
Tensor.__mod__ = _bin(REMAINDER)
Tensor.__rmod__ = _bin(REMAINDER, True)
Tensor.__pow__ = _bin(POW)
Tensor.__rpow__ = _bin(POW, True)
Tensor.__neg__ = neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = abs
Tensor.__eq__ = _bin(EQ)
Tensor.__ne__ = _bin(NE)
Tensor.__lt__ = _bin(LT)
Tensor.__le__ = _bin(LE)
Tensor.__gt__ = _bin(GT)
Tensor.__ge__ = _bin(GE)
Tensor.__and__ = _bin(BITWISE_AND)
Tensor.__rand__ = _bin(BITWISE_AND, True)
Tensor.__or__ = _bin(BITWISE_OR)
Tensor.__ror__ = _bin(BITWISE_OR, True)
Tensor.__xor__ = _bin(BITWISE_XOR)
Tensor.__invert__ = lambda self: dispatch(LOGICAL_NOT if self._data.dtype == np.bool_ else BITWISE_NOT, self)
Tensor.__hash__ = lambda self: id(self)

for _name, _fn in dict(add=add, sub=sub, subtract=sub, mul=mul, multiply=mul, div=div, divide=div,
                       true_divide=div, pow=pow, neg=neg, negative=neg, abs=abs, absolute=abs, sign=sign,
                       reciprocal=reciprocal, exp=exp, log=log, log1p=log1p, log2=log2, sqrt=sqrt, rsqrt=rsqrt,
                       sin=sin, cos=cos, tanh=tanh, sigmoid=sigmoid, relu=relu, silu=silu, erf=erf, gelu=gelu,
                       floor=floor, ceil=ceil, trunc=trunc, round=round, leaky_relu=leaky_relu, elu=elu,
                       softplus=softplus, clamp=clamp, clip=clamp, clamp_min=clamp_min, clamp_max=clamp_max,
                       maximum=maximum, minimum=minimum, floor_divide=floor_divide, remainder=remainder,
                       eq=eq, ne=ne, lt=lt, le=le, gt=gt, ge=ge, greater=gt, greater_equal=ge, less=lt,
                       less_equal=le, not_equal=ne, logical_not=logical_not, logical_and=logical_and,
                       logical_or=logical_or, logical_xor=logical_xor, bitwise_not=bitwise_not,
                       bitwise_and=bitwise_and, bitwise_or=bitwise_or, bitwise_xor=bitwise_xor,
                       isnan=isnan, isinf=isinf, isfinite=isfinite).items():
    method(_name, _fn)


def _where_method(self, condition, other):
    return where(condition, self, other)


method("where", _where_method)


# --- more math: hyperbolic and inverse trigonometric functions, exp2/expm1/log10, frac ------------------

LOG10 = _unary("log10", lambda xp, a: xp.log10(_f(xp, a)),
               lambda ctx, g: (g / (ctx.saved_inputs[0] * math.log(10)),), amp="fp32")
EXP2 = _unary("exp2", lambda xp, a: xp.exp2(_f(xp, a)), lambda ctx, g: (g * ctx.saved_output * math.log(2),),
              save="o")
EXPM1 = _unary("expm1", lambda xp, a: xp.expm1(_f(xp, a)), lambda ctx, g: (g * (ctx.saved_output + 1),), save="o",
               amp="fp32")
SINH = _unary("sinh", lambda xp, a: xp.sinh(_f(xp, a)), lambda ctx, g: (g * cosh(ctx.saved_inputs[0]),))
COSH = _unary("cosh", lambda xp, a: xp.cosh(_f(xp, a)), lambda ctx, g: (g * sinh(ctx.saved_inputs[0]),))
ASIN = _unary("asin", lambda xp, a: xp.arcsin(_f(xp, a)),
              lambda ctx, g: (g * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),))
ACOS = _unary("acos", lambda xp, a: xp.arccos(_f(xp, a)),
              lambda ctx, g: (neg(g) * rsqrt(1 - ctx.saved_inputs[0] * ctx.saved_inputs[0]),))
ATAN = _unary("atan", lambda xp, a: xp.arctan(_f(xp, a)),
              lambda ctx, g: (g / (ctx.saved_inputs[0] * ctx.saved_inputs[0] + 1),))


def _frac_k(xp, a):
    if a.dtype.kind in "biu":
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{_tname(a.dtype)}'")
    return a - xp.trunc(a)


FRAC = _unary("frac", _frac_k, lambda ctx, g: (g,), save="")


def _tname(d):
    return {"int64": "Long", "int32": "Int", "bool": "Bool", "uint8": "Byte", "int16": "Short", "int8": "Char",
            "float32": "Float", "float64": "Double", "float16": "Half"}.get(str(d), str(d))


def _float_pair(a, b):
    """Integer operands of a float function (atan2, hypot) compute in the default float dtype."""
    ints = [x for x in (a, b) if hasattr(x, "dtype") and hasattr(x, "ndim")]
    if ints and all(x.dtype.kind in "biu" for x in ints):
        from .._dtype import get_default_dtype
        dt = get_default_dtype().np
        return tuple(x.astype(dt) if hasattr(x, "ndim") else x for x in (a, b))
    return a, b


@op("atan2", promote=True, save="i", node_name="Atan2Backward0")
def ATAN2(xp, a, b):
    a, b = _float_pair(a, b)
    return xp.arctan2(a, b)


@ATAN2.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    den = a * a + b * b
    return (sum_to(g * b / den, ctx.in_meta[0][0]) if _needs(ctx, 0) else None,
            sum_to(neg(g) * a / den, ctx.in_meta[1][0]) if _needs(ctx, 1) else None)


@op("hypot", promote=True, save="io", node_name="HypotBackward0")
def HYPOT(xp, a, b):
    for x in (a, b):
        if hasattr(x, "dtype") and x.dtype.kind in "biu":
            raise NotImplementedError(f"\"hypot_cpu\" not implemented for '{_tname(x.dtype)}'")
    return xp.hypot(a, b)


@HYPOT.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    out = ctx.saved_output
    return (sum_to(g * a / out, ctx.in_meta[0][0]) if _needs(ctx, 0) else None,
            sum_to(g * b / out, ctx.in_meta[1][0]) if _needs(ctx, 1) else None)


def _fmod_k(xp, a, b):
    int_zero_division(xp, a, b)
    return xp.fmod(a, b)


# torch's two overloads: fmod(Tensor, Scalar) -> FmodBackward0, fmod(Tensor, Tensor) -> FmodBackward1
FMOD = op("fmod", promote=True, node_name="FmodBackward0")(_fmod_k)
FMOD.def_backward(lambda ctx, g: (g,))
FMOD_T = op("fmod_tensor", promote=True, save="i", node_name="FmodBackward1")(_fmod_k)


@FMOD_T.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    return (sum_to(g, ctx.in_meta[0][0]) if _needs(ctx, 0) else None,
            sum_to(neg(g) * trunc(a / b), ctx.in_meta[1][0]) if _needs(ctx, 1) else None)


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


@op("isclose", promote=True)
def ISCLOSE(xp, a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    if a.dtype == np.bool_:
        return a == b
    if a.dtype.kind in "iu":
        diff = xp.abs(a.astype(np.float64) - b.astype(np.float64))
        return diff <= atol + rtol * xp.abs(b.astype(np.float64))
    close = a == b
    fin = xp.isfinite(a) & xp.isfinite(b)
    af, bf = xp.where(fin, a, 0), xp.where(fin, b, 0)      # no inf - inf (NumPy would warn)
    close = close | (fin & (xp.abs(af - bf) <= atol + rtol * xp.abs(bf)))
    if equal_nan:
        close = close | (xp.isnan(a) & xp.isnan(b))
    return close


def _isclose_check(input, other, rtol, atol):
    if not isinstance(other, Tensor) or not isinstance(input, Tensor):
        raise TypeError(f"isclose(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    if input.dtype != other.dtype:
        raise RuntimeError(f"{_tname(input._data.dtype)} did not match {_tname(other._data.dtype)}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    _isclose_check(input, other, rtol, atol)
    return dispatch(ISCLOSE, input, other, rtol=rtol, atol=atol, equal_nan=bool(equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input, other):
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(eq(input, other).all().item())


def atan2(input, other, *, out=None):
    return _out(dispatch(ATAN2, input, other), out)


arctan2 = atan2


def hypot(input, other, *, out=None):
    return _out(dispatch(HYPOT, input, other), out)


def fmod(input, other, *, out=None):
    return _out(dispatch(FMOD_T if isinstance(other, Tensor) else FMOD, input, other), out)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    return _out(dispatch(NAN_TO_NUM, input, nan=nan, posinf=posinf, neginf=neginf), out)


def square(input, *, out=None):
    return _out(pow(input if input._data.dtype != np.bool_ else input.long(), 2), out)


log10 = _mk1(LOG10)
exp2 = _mk1(EXP2)
expm1 = _mk1(EXPM1)
sinh = _mk1(SINH)
cosh = _mk1(COSH)
asin = arcsin = _mk1(ASIN)
acos = arccos = _mk1(ACOS)
atan = arctan = _mk1(ATAN)
frac = _mk1(FRAC)

for _name, _fn in dict(log10=log10, exp2=exp2, expm1=expm1, sinh=sinh, cosh=cosh, asin=asin, arcsin=asin,
                       acos=acos, arccos=acos, atan=atan, arctan=atan, frac=frac, atan2=atan2, arctan2=atan2,
                       hypot=hypot, fmod=fmod, nan_to_num=nan_to_num, square=square, isclose=isclose,
                       allclose=allclose, equal=equal).items():
    method(_name, _fn)


# --- tan, sgn, fix, deg2rad, logaddexp, xlogy, fmax/fmin ------------------------------------------------------

TAN = _unary("tan", lambda xp, a: xp.tan(_f(xp, a)), lambda ctx, g: (g * (1 + ctx.saved_output * ctx.saved_output),),
             save="o")
SGN = _unary("sgn", lambda xp, a: xp.sign(a), lambda ctx, g: (g * 0,), save="")
DEG2RAD = _unary("deg2rad", lambda xp, a: _f(xp, a) * (math.pi / 180), lambda ctx, g: (g * (math.pi / 180),),
                 save="", node_name="Deg2RadBackward0")


@op("logaddexp", promote=True, save="io", node_name="LogaddexpBackward0")
def LOGADDEXP(xp, a, b):
    dt = getattr(a, "dtype", None)
    if dt is not None and dt.kind in "biu" and getattr(b, "dtype", dt).kind in "biu":    # torch has no integer kernel
        from .. import _dtype as D
        raise NotImplementedError(f'"logaddexp_{"cpu" if xp is np else "cuda"}" not implemented for '
                                  f"'{D.scalar_name(dt)}'")
    a, b = _float_pair(a, b)
    return xp.logaddexp(a, b)


@LOGADDEXP.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    out = ctx.saved_output
    ga = sum_to(g * exp(a - out), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
    gb = sum_to(g * exp(b - out), ctx.in_meta[1][0]) if _needs(ctx, 1) else None
    return ga, gb


@op("xlogy", promote=True, save="i", node_name="XlogyBackward0")
def XLOGY(xp, a, b):
    a, b = _float_pair(a, b)
    r = a * xp.log(b)
    return xp.where(a == 0, xp.where(xp.isnan(b), b, 0), r).astype(r.dtype, copy=False)


@XLOGY.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    # torch 2.13's: log(other), except 0 where input == 0 and other <= 0 (checked against torch)
    ga = sum_to(where(eq(a, 0) & (b <= 0), 0.0, g * log(b)), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
    gb = sum_to(g * a / b, ctx.in_meta[1][0]) if _needs(ctx, 1) else None
    return ga, gb


def _fminmax_bwd(pick_a_fn):
    def bwd(ctx, g):
        a, b = ctx.saved_inputs
        pa = pick_a_fn(a, b)
        ga = sum_to(where(pa, g, 0.0), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
        gb = sum_to(where(pa, 0.0, g), ctx.in_meta[1][0]) if _needs(ctx, 1) else None
        return ga, gb
    return bwd


FMAX = op("fmax", promote=True, save="i", node_name="FmaxBackward0")(lambda xp, a, b: xp.fmax(a, b))
FMAX.def_backward(_fminmax_bwd(lambda a, b: ge(a, b) | isnan(b)))
FMIN = op("fmin", promote=True, save="i", node_name="FminBackward0")(lambda xp, a, b: xp.fmin(a, b))
FMIN.def_backward(_fminmax_bwd(lambda a, b: le(a, b) | isnan(b)))

tan = _mk1(TAN)
sgn = _mk1(SGN)
deg2rad = _mk1(DEG2RAD)


def fix(input):
    return trunc(input)


def logaddexp(input, other, *, out=None):
    return _out(dispatch(LOGADDEXP, input, other), out)


def xlogy(input, other, *, out=None):
    return _out(dispatch(XLOGY, input, other), out)


def fmax(input, other, *, out=None):
    return _out(dispatch(FMAX, input, other), out)


def fmin(input, other, *, out=None):
    return _out(dispatch(FMIN, input, other), out)


for _name, _fn in dict(tan=tan, sgn=sgn, deg2rad=deg2rad, fix=fix, logaddexp=logaddexp, xlogy=xlogy, fmax=fmax,
                       fmin=fmin).items():
    method(_name, _fn)
