"""Binary arithmetic with broadcasting and torch's type promotion: add, sub, mul, div, pow, the integer
divisions, maximum/minimum, clamp, atan2, hypot, logaddexp, xlogy; their in-place variants and operators."""
from __future__ import annotations

import math

from . import _fastmath as _fm
from .. import _dtype as D
from .. import _hooks as _H
from .broadcast import SINK, QUIET, quiet_arrays, quiet_operand, quiet_sum_to, sum_to
from .comparison import BITWISE_AND, GE, LE, eq, ge, gt, isnan, le, lt, where
from .unary_math import exp, log, neg, reciprocal, trunc
from .._opdef import op_at, with_defaults
from ._define import (Tensor, dispatch, half_in_float32, kind_of, name_by_operands, np, op, public, refuse_complex,
                      torch_op, unwrap_scalar, write_out)
from ._rows import clamp_array
from .._graph import tensor_of
from ..dispatch import run_recorded


def _needs(ctx, i):
    return ctx.needs_input_grad[i]


def _scalar_or_tensor(x, name):
    if isinstance(x, Tensor) or isinstance(x, (bool, int, float, np.generic)):
        return x
    raise TypeError(f"{name}(): argument 'other' must be Tensor or Number, not {type(x).__name__}")


def check_writable(a, b, floats=True):
    """torch's refusal of an in-place result the target cannot hold, where NumPy's unsafe casting would truncate
    it or drop its imaginary part: a float operand into an integer tensor (floats=False: div_ with a rounding
    mode, whose result stays integral), a complex one into a real tensor (add_/sub_/mul_/div_)."""
    bd = getattr(b, "dtype", None)
    if bd is a.dtype or bd is None and (type(b) is float or type(b) is int) and a.dtype.char in "efd":
        return      # the commonest cases, which nothing below refuses: one dtype, a real number into floats
    ak = D.kind(a.dtype)
    if ak == "c":
        return
    bk = D.kind(bd) if bd is not None else "c" if type(b) is complex else "f" if isinstance(b, float) else ""
    if bk == "c":
        raise RuntimeError(f"result type {D.scalar_name(bd) if bd is not None else 'ComplexFloat'} can't be cast "
                           f"to the desired output type {D.scalar_name(a.dtype)}")
    if floats and ak != "f" and bk == "f":
        raise RuntimeError(f"result type Float can't be cast to the desired output type {D.scalar_name(a.dtype)}")
    if ak == "b" and (bk in ("i", "u") or bd is None and type(b) is int):     # a number or integers into a mask
        raise RuntimeError(f"result type {D.scalar_name(bd) if bd is not None else 'Long'} can't be cast to the "
                           f"desired output type Bool")


_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)


def half_number(ufunc, a, b):
    """torch's CPU kernel of a float16/bfloat16 NumPy array and a Python float (add, sub, mul, div, either order):
    in float32 with the number as float32 (TensorIterator's original_scalar_value<opmath_t>), rounded to the array's
    dtype once (half_in_float32). NumPy and ml_dtypes round the number to that dtype first: bfloat16 + 0.0316
    differed from torch's in 23% of elements, / 0.0316 in 72% (Adam's denominator). None where it does not apply.
    Callers test `half_number_case` first: a float32 tensor times a number pays those tests alone."""
    return half_in_float32(_ufunc, np, a, b, f=ufunc)


def _ufunc(xp, a, b, f):
    return f(a, b)


def half_number_case(a, b):
    """Whether a kernel's operands may be a half NumPy array and a Python float (half_number's case): the float,
    then a 2-byte itemsize (float16, bfloat16; int16's half_number declines)."""
    return getattr(b if type(a) is float else a, "itemsize", 0) == 2 if type(a) is float or type(b) is float \
        else False


def half_add_alpha(a, b, alpha):
    """torch's a + alpha * b of float16/bfloat16 NumPy arrays (add and sub with alpha, SGD's and RMSprop's updates):
    alpha rounded to the half dtype (torch's Vectorized<BFloat16>(alpha)), then float32's fused multiply-add
    (vec::fmadd on the widened halves), rounded once; NumPy's and ml_dtypes' loops rounded alpha * b first (5-32% of
    elements off torch's). None where it does not apply (a not half, b not an array of its dtype, alpha not a
    number)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or (type(alpha) is not float and type(alpha) is not int):
        return None
    dt = a.dtype
    if (dt is not D.BF16 and dt is not _F16) or b.dtype is not dt:
        return None
    a32, b32 = a.astype(_F32), b.astype(_F32)
    h = np.asarray(alpha, _F32).astype(dt)
    r = _fm.fma(_fm.FMA_ADD, a32, b32, None, float(h))
    r = _fm.astype(r if r is not None else a32 + np.float32(h) * b32, dt)
    n = r.size
    tail = n % (4 * _fm.float_lanes())      # past torch's vectorised chunks (two Vectorized<half>, each twice the
    if tail and a.shape == b.shape and a.flags.c_contiguous and b.flags.c_contiguous:     # float lanes): its scalar
        k = n - tail                        # lambda's c10::BFloat16/Half arithmetic, alpha * b rounded, then the sum
        r.reshape(-1)[k:] = a.reshape(-1)[k:] + h * b.reshape(-1)[k:]
    return r


def _ip_binary(xp_fn):
    """The kernel of `add_`-style ops: the NumPy/CuPy ufunc written into the first input. add_/sub_ with an
    alpha on NumPy float arrays: torch's fused multiply-add, in one pass (_fastmath.fma, see _add_alpha): SGD's
    `p.add_(grad, alpha=-lr)`."""
    np_fn = getattr(np, xp_fn)
    sign = {"add": 1, "subtract": -1}.get(xp_fn)

    def kernel(xp, a, b, alpha=1):
        if xp is np and getattr(a, "itemsize", 0) == 2:      # a half array: torch's float32 opmath
            r = (half_number(np_fn, a, b) if type(b) is float else None) if alpha == 1 else \
                half_add_alpha(a, b, sign * alpha) if sign is not None else None
            if r is not None:
                check_writable(a, b)
                np.copyto(a, r)
                return
        if alpha != 1:
            if sign is not None and xp is np and type(a) is np.ndarray and a.dtype.kind == "f":
                check_writable(a, b)
                if _fm.fma(_fm.FMA_ADD, a, b, None, sign * alpha, out=a) is not None:
                    return
            b = b * alpha
        check_writable(a, b)
        (np_fn if xp is np else getattr(xp, xp_fn))(a, b, out=a, casting="unsafe")
    return kernel


# --- add, sub, mul ----------------------------------------------------------------------------------------

@op("add", promote=True, node_name="AddBackward0", operators=("__add__", "__radd__"))
def ADD(xp, a, b, alpha=1):
    if alpha == 1 and xp is np and half_number_case(a, b):     # a half array: torch's float32 opmath
        r = half_number(np.add, a, b)
        if r is not None:
            return r
    return a + b if alpha == 1 else _add_alpha(xp, a, b, alpha)


def _add_alpha(xp, a, b, alpha):
    """a + alpha * b as torch's kernel computes it on floats, fused (vec::fmadd: one rounding; NumPy's product and
    sum, two, left SGD's `p.add_(grad, alpha=-lr)` ~2% of a float32 parameter's elements an ulp off torch's a
    step): _fastmath.fma on NumPy float arrays (float16/bfloat16 ones: half_add_alpha, torch's rounding of them),
    else the two operations."""
    if xp is np and type(a) is np.ndarray:
        dt = a.dtype
        r = half_add_alpha(a, b, alpha) if dt is _F16 or dt is D.BF16 else None
        if r is None and dt.kind == "f" and (type(alpha) is float or type(alpha) is int):
            r = _fm.fma(_fm.FMA_ADD, a, b, None, alpha)
        if r is not None:
            return r
    return a + alpha * b


@ADD.def_backward
def _(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    sa, sb = ctx.in_meta[0], ctx.in_meta[1]
    return (sum_to(g, sa[0]) if ctx.needs_input_grad[0] else None,
            sum_to(g if alpha == 1 else g * alpha, sb[0]) if ctx.needs_input_grad[1] else None)


def _add_sub_bwd_arrays(sign):
    """ADD's / SUB's formula on NumPy arrays: the same ufuncs (negative, multiply by the scalar alpha) and
    sums in the same order, called directly (k=QUIET: the engine's quiet path, OpDef.quiet_backward) or run
    as recorded ops (k=SINK: OpDef.sink_backward); None where the formula would promote."""
    def formula(ctx, g, k=QUIET):
        gd = g._data
        if type(gd) is not np.ndarray:
            return None
        alpha = ctx.attrs.get("alpha", 1) if ctx.attrs else 1
        (fa, _), (fb, _) = ctx.edges
        c = None
        if fb is not None and alpha != 1:
            c = quiet_operand(alpha if sign > 0 else -alpha, gd.dtype)
            if c is None:
                return None
        ga = quiet_sum_to(g, gd, ctx.in_meta[0][0], k) if fa is not None else None
        gb = None
        if fb is not None:
            if alpha == 1:
                gb = g if sign > 0 else None
                d = gd if sign > 0 else k.neg(gd)
            else:
                d = k.mul(gd, c)
            gb = quiet_sum_to(gb, d, ctx.in_meta[1][0], k)
        return ga, gb
    return formula


ADD.quiet_backward = _add_sub_bwd_arrays(1)
ADD.sink_backward = with_defaults(ADD.quiet_backward, k=SINK)      # (OpDef.sink_backward)


@public(method=True)
def add(input, other, *, alpha=1, out=None):
    r = dispatch(ADD, input, other) if alpha == 1 else dispatch(ADD, input, other, alpha=alpha)
    return write_out(r, out)


ADD_ = op("add_", inplace_of=ADD)(_ip_binary("add"))


@public(function=False, method=True)
def add_(self, other, *, alpha=1):
    return dispatch(ADD_, self, other) if alpha == 1 else dispatch(ADD_, self, other, alpha=alpha)


@op("sub", promote=True, node_name="SubBackward0", operators=("__sub__",))     # __rsub__: rsub's
def SUB(xp, a, b, alpha=1):
    refuse_bool_sub(a, b)
    if alpha == 1 and xp is np and half_number_case(a, b):     # a half array: torch's float32 opmath
        r = half_number(np.subtract, a, b)
        if r is not None:
            return r
    return a - b if alpha == 1 else _add_alpha(xp, a, b, -alpha)


def refuse_bool_sub(a, b):
    """torch's check of a subtraction's operands (sub, sub_, rsub): no bool tensor nor bool number. The kernels run
    it on operands that need no cast, the executor before it promotes them (OpDef.operand_check)."""
    if getattr(a, "dtype", None) is _BOOL or getattr(b, "dtype", None) is _BOOL or type(b) is bool or type(a) is bool:
        raise RuntimeError(BOOL_SUB)


_BOOL = np.dtype(np.bool_)
BOOL_SUB = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, "
             "use the `~` or `logical_not()` operator instead.")


@SUB.def_backward
def _(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    return (sum_to(g, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(neg(g) if alpha == 1 else g * (-alpha), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


SUB.quiet_backward = _add_sub_bwd_arrays(-1)
SUB.sink_backward = with_defaults(SUB.quiet_backward, k=SINK)


@public(method=True, aliases=("subtract",))
def sub(input, other, *, alpha=1, out=None):
    r = dispatch(SUB, input, other) if alpha == 1 else dispatch(SUB, input, other, alpha=alpha)
    return write_out(r, out)


subtract = sub
SUB.operand_check = refuse_bool_sub
_sub_into = _ip_binary("subtract")


@op("sub_", inplace_of=SUB)
def SUB_(xp, a, b, alpha=1):
    refuse_bool_sub(a, b)
    _sub_into(xp, a, b, alpha)


@public(function=False, method=True)
def sub_(self, other, *, alpha=1):
    return dispatch(SUB_, self, other) if alpha == 1 else dispatch(SUB_, self, other, alpha=alpha)


@op("mul", promote=True, save="i", node_name="MulBackward0", operators=("__mul__", "__rmul__"))
def MUL(xp, a, b):
    if xp is np and half_number_case(a, b):        # a half array: torch's float32 opmath
        r = half_number(np.multiply, a, b)
        if r is not None:
            return r
    return a * b


@MUL.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    return (sum_to(g * b, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(g * a, ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


def _mul_bwd_arrays(ctx, g, k=QUIET):
    """MUL's formula on NumPy arrays: the same products and sums in the same order, called directly (the
    engine's quiet path) or, k=SINK, run as recorded ops (OpDef.sink_backward); None where the dispatched
    products would promote."""
    gd = g._data
    if type(gd) is not np.ndarray:
        return None
    a, b = ctx.inputs
    (fa, _), (fb, _) = ctx.edges
    dt = gd.dtype
    if fa is not None:          # (both operands checked before anything runs: a sink formula records as it goes)
        y = quiet_operand(b, dt)
        if y is None:
            return None
    if fb is not None:
        x = quiet_operand(a, dt)
        if x is None:
            return None
    meta = ctx.in_meta
    return (quiet_sum_to(None, k.mul(gd, y), meta[0][0], k) if fa is not None else None,
            quiet_sum_to(None, k.mul(gd, x), meta[1][0], k) if fb is not None else None)


MUL.quiet_backward = _mul_bwd_arrays
MUL.sink_backward = with_defaults(_mul_bwd_arrays, k=SINK)


@public(method=True, aliases=("multiply",))
def mul(input, other, *, out=None):
    return write_out(dispatch(MUL, input, other), out)


multiply = mul
MUL_ = op("mul_", inplace_of=MUL, method=True)(_ip_binary("multiply"))

# --- division ---------------------------------------------------------------------------------------------


def int_zero_division(xp, a, b):
    """torch's CPU kernels raise on an integer division (floor, trunc, remainder, fmod) by zero; NumPy gives 0.
    On CUDA torch does not check (that would sync), so neither do we."""
    if xp is not np or getattr(a, "dtype", None) is None or a.dtype.kind not in "iub":
        return
    if type(b) is int or type(b) is bool:       # (a Python number: `i % 2`)
        zero = b == 0
    else:
        zero = kind_of(b) in "iub" and not np.logical_and.reduce(b, axis=None)
    if zero:
        raise RuntimeError("ZeroDivisionError")


_REAL = np.dtype(np.float64)


def _refuse_complex_pair(xp, a, b, name):
    """torch's floor division, remainder and fmod have no complex kernel (NumPy raises its own TypeError). The
    message is made only when an operand is complex."""
    if getattr(a, "dtype", _REAL).kind == "c" or getattr(b, "dtype", _REAL).kind == "c":
        message = f'"{name}_{"cpu" if xp is np else "cuda"}" not implemented for \'{{dtype}}\''
        refuse_complex(a, message)
        refuse_complex(b, message)


def _arr_dtype(a, b):
    for x in (a, b):
        if hasattr(x, "dtype") and hasattr(x, "ndim"):
            return x.dtype
    return None


@op("div", promote=True, save="i", node_name="DivBackward0")
def DIV(xp, a, b, rounding_mode=None):
    if rounding_mode is None:
        if xp is np and half_number_case(a, b):    # a half array: torch's float32 opmath
            r = half_number(np.true_divide, a, b)
            if r is not None:
                return r
        return xp.true_divide(a, b)
    int_zero_division(xp, a, b)
    if rounding_mode == "floor":
        return xp.floor_divide(a, b)
    if rounding_mode == "trunc":
        dt = _arr_dtype(a, b)
        if dt is not None and dt.kind in "iu":
            # exact in integers (through float64 a large int64 lost its low bits): a - fmod(a, b) is a multiple of b
            return xp.floor_divide(a - xp.fmod(a, b), b).astype(dt, copy=False)
        return xp.trunc(xp.true_divide(a, b))
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


@DIV.def_backward
def _(ctx, g):
    if ctx.attrs.get("rounding_mode") is not None:
        return None, None
    a, b = ctx.saved_inputs
    gb = None
    if ctx.needs_input_grad[1]:     # torch's -grad * ((self / other) / other), first (its ops' order)
        q = dispatch(DIV, a, b) / b        # (DIV's dispatch: a Python number `a` divides as torch's wrapped one)
        gb = sum_to(neg(g) * q, ctx.in_meta[1][0])
    ga = sum_to(g / b, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    return ga, gb


def _div_bwd_arrays(ctx, g, k=QUIET):
    """DIV's formula (true division) on NumPy arrays: -g * ((a / b) / b) and g / b (torch's formulas, in its
    order), called directly (the engine's quiet path) or, k=SINK, run as recorded ops (OpDef.sink_backward); None
    where the dispatched ops would promote."""
    gd = g._data
    if type(gd) is not np.ndarray or ctx.attrs and ctx.attrs.get("rounding_mode") is not None:
        return None
    a, b = ctx.inputs
    (fa, _), (fb, _) = ctx.edges
    dt = gd.dtype
    y = quiet_operand(b, dt)
    x = quiet_operand(a, dt) if fb is not None else None
    if y is None or fb is not None and x is None:
        return None
    ga = gb = None
    if fb is not None:
        q = k.div(k.div(x, y), y)
        gb = quiet_sum_to(None, k.mul(k.neg(gd), q), ctx.in_meta[1][0], k)
    if fa is not None:
        ga = quiet_sum_to(None, k.div(gd, y), ctx.in_meta[0][0], k)
    return ga, gb


DIV.quiet_backward = _div_bwd_arrays
DIV.sink_backward = with_defaults(_div_bwd_arrays, k=SINK)


def _true_div_operand(a, b):
    """int / int is a float division in torch: lift an integer tensor to the default float first."""
    b_is_float = isinstance(b, float) or (isinstance(b, Tensor) and D.kind(b._data.dtype) == "f")
    if isinstance(a, Tensor) and a._data.dtype.kind in "biu" and not b_is_float:
        return a.to(dtype=D.get_default_dtype())
    return a


@public(method=True, aliases=("divide", "true_divide"))
def div(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is None:
        return write_out(dispatch(DIV, _true_div_operand(input, other), other), out)
    return write_out(dispatch(DIV, input, other, rounding_mode=rounding_mode), out)


divide = true_divide = div


@public(name="__truediv__", function=False, method=True)
def _truediv(self, other):
    return dispatch(DIV, _true_div_operand(self, other), other)     # div(self, other) without its call


@public(name="__rtruediv__", function=False, method=True)
def _rtruediv(self, other):
    if isinstance(other, Tensor):
        return div(other, self)
    return reciprocal(self) * other      # torch's Tensor.__rdiv__: the same rounding, the same ops in a profile


@op("div_", inplace_of=DIV)
def DIV_(xp, a, b, rounding_mode=None):
    if rounding_mode is None and D.kind(a.dtype) not in "fc":    # true division: a float result, even of ints
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{D.scalar_name(a.dtype)}")
    check_writable(a, b, floats=rounding_mode is None)
    if rounding_mode is not None:
        int_zero_division(xp, a, b)
    if rounding_mode == "floor":
        xp.floor_divide(a, b, out=a, casting="unsafe")
    elif rounding_mode == "trunc":
        a[...] = xp.trunc(a / b)
    else:
        r = half_number(np.true_divide, a, b) if xp is np and half_number_case(a, b) else None
        if r is not None:       # a half array: float32 opmath
            np.copyto(a, r)
        else:
            xp.true_divide(a, b, out=a, casting="unsafe")


@public(function=False, method=True)
def div_(self, other, *, rounding_mode=None):
    if rounding_mode is None:
        return dispatch(DIV_, self, other)
    return dispatch(DIV_, self, other, rounding_mode=rounding_mode)


@op("floor_divide", promote=True, function=True, method=True, operators=("__floordiv__", "__rfloordiv__"))
def FLOOR_DIVIDE(xp, a, b):
    _refuse_complex_pair(xp, a, b, "div_floor")
    int_zero_division(xp, a, b)
    return xp.floor_divide(a, b)


floor_divide = FLOOR_DIVIDE.function


@op("remainder", promote=True, save="i", function=True, method=True, operators=("__mod__", "__rmod__"))
def REMAINDER(xp, a, b):
    _refuse_complex_pair(xp, a, b, "remainder")
    int_zero_division(xp, a, b)
    return xp.remainder(a, b)


@REMAINDER.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    ga = sum_to(g, ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gb = sum_to(neg(g) * floor_divide(a, b), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    return ga, gb


name_by_operands(REMAINDER, {(True, False): "RemainderBackward0", (True, True): "RemainderBackward1",
                             (False, True): "RemainderBackward1"})
remainder = REMAINDER.function


def _fmod_k(xp, a, b):
    _refuse_complex_pair(xp, a, b, "fmod")
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


@public(method=True)
def fmod(input, other, *, out=None):
    return write_out(dispatch(FMOD_T if isinstance(other, Tensor) else FMOD, input, other), out)


# --- pow --------------------------------------------------------------------------------------------------

@op("pow", promote=True, save="io", amp="fp32", node_name="PowBackward0", operators=("__pow__", "__rpow__"))
def POW(xp, a, b):
    if hasattr(a, "dtype") and a.dtype.kind in "iu" and isinstance(b, int) and b < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if type(b) in (int, float) and b in (3, -2, -0.5) and type(a) is np.ndarray and a.dtype.kind == "f":
        # torch's CPU kernel for these exponents (pow_tensor_scalar_optimized): products, not pow(); NumPy's
        # own fast exponents (2, -1: square, reciprocal) are torch's already, 0.5 is torch's sqrt (below). x ** 3
        # by powf took 7x torch's time on 512K float32. Other exponents: torch's vector loop takes Sleef's powf
        # (not ported: last-bit differences), its scalar tail libm's, as NumPy.
        y = np.sqrt(a) if b == -0.5 else np.multiply(a, a)
        if y.__class__ is not np.ndarray:   # a 0-d input's result comes back a NumPy scalar: no out= for the next
            y = np.asarray(y)
        if b == 3:
            return np.multiply(y, a, out=y)
        return np.reciprocal(y, out=y)
    if type(b) is float and b == 0.5 and type(a) is np.ndarray and a.dtype.kind == "f":
        return op_at("sqrt").kernel(xp, a)      # torch's pow: its sqrt kernel (MKL VML's where torch has it)
    if hasattr(b, "ndim") and b.dtype.kind in "iu" and kind_of(a) in "biu":
        return _int_pow(xp, a, b)
    if type(b) is bool and getattr(a, "dtype", None) == np.bool_:     # torch: a mask ** a bool is a mask
        return a.copy() if b else xp.ones_like(a)
    return a ** b


def _int_pow(xp, a, b):
    """An integer power with an integer exponent tensor, as torch's kernel: a negative exponent gives 1 for a base
    of 1, +-1 for -1 and 0 otherwise (NumPy refuses the whole array: "Integers to negative integer powers are not
    allowed")."""
    neg = b < 0
    if not neg.any():
        return a ** b
    r = a ** xp.where(neg, 0, b).astype(b.dtype, copy=False)
    one = a == 1
    minus_one = a == -1 if getattr(a, "dtype", np.dtype(np.int64)).kind == "i" else False
    r[...] = xp.where(neg, xp.where(one, 1, 0), r) if minus_one is False else xp.where(
        neg, xp.where(one, 1, xp.where(minus_one, xp.where(b % 2 == 0, 1, -1), 0)), r)
    return r


name_by_operands(POW, {(True, False): "PowBackward0", (True, True): "PowBackward1", (False, True): "PowBackward2"})


@POW.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    ga = gb = None
    if ctx.needs_input_grad[0]:
        if isinstance(b, Tensor):       # torch: 0 where the exponent is 0 (0 * 0 ** -1 would be NaN)
            ga = sum_to(where(eq(b, 0), 0.0, g * b * a ** (b - 1)), ctx.in_meta[0][0])
        elif b == 0:
            ga = g * 0
        else:       # torch's grad * (exponent * self.pow(exponent - 1)), in its order
            p = a ** (b - 1)
            ga = g * (p * b)
    if ctx.needs_input_grad[1]:
        out = ctx.saved_output
        lg = log(a) if isinstance(a, Tensor) else math.log(a)
        # torch: where base == 0 and exponent >= 0, the gradient w.r.t. the exponent is 0
        gb = g * out * lg
        if isinstance(a, Tensor):
            gb = where(eq(a, 0) & ge(b.real, 0), 0.0, gb)      # (a complex exponent: its real part, as torch)
        gb = sum_to(gb, ctx.in_meta[1][0])
    return ga, gb


def _pow_bwd_arrays(ctx, g, k=QUIET):
    """POW's formula for a tensor base and a Python exponent on NumPy arrays: g * (a ** (b - 1) * b) (g * 0 for
    b == 0), the same kernels in the same order, called directly (k=QUIET: the quiet path) or run as the
    recorded mul and pow (k=SINK: OpDef.sink_backward); None for a tensor exponent and where the dispatched
    ops would promote."""
    a, b = ctx.inputs
    if not isinstance(a, Tensor) or isinstance(b, Tensor) or ctx.needs_input_grad[1]:
        return None
    p = quiet_arrays(g._data, a._data)
    if p is None or quiet_operand(b, p[0].dtype) is None:
        return None
    gd, ad = p
    if b == 0:
        return (tensor_of(k.mul(gd, 0)),)
    p = k.mul(k.run(POW, ad, b - 1), b)
    return (tensor_of(k.mul(gd, p)),)


POW.quiet_backward = _pow_bwd_arrays
POW.sink_backward = with_defaults(_pow_bwd_arrays, k=SINK)


@public(method=True)
def pow(input, exponent, *, out=None):
    return write_out(dispatch(POW, input, exponent), out)


@op("pow_", inplace_of=POW, method=True)
def POW_(xp, a, b):
    if hasattr(b, "ndim") and b.dtype.kind in "iu" and a.dtype.kind in "iu":
        a[...] = _int_pow(xp, a, b)     # (a negative exponent: torch's 0, 1 or -1, where NumPy refuses)
        return
    xp.power(a, b, out=a, casting="unsafe")


# --- maximum, minimum, fmax, fmin, clamp ------------------------------------------------------------------

def _minmax_bwd(loses):
    """torch's maximum/minimum backward: each operand gets g where it is not the loser (loses(a, b): a < b for
    maximum, a > b for minimum), half of it at a tie; a NaN (no comparison holds) gives both g."""
    def bwd(ctx, g):
        a, b = ctx.saved_inputs
        half = g * 0.5
        tie = eq(a, b)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to(where(tie, half, where(loses(a, b), 0.0, g)), ctx.in_meta[0][0])
        if ctx.needs_input_grad[1]:
            gb = sum_to(where(tie, half, where(loses(b, a), 0.0, g)), ctx.in_meta[1][0])
        return ga, gb
    return bwd


def _unordered(name):
    """maximum & co.'s kernel: torch orders no complex numbers (NumPy orders them lexicographically)."""
    message = f"{name} not implemented for complex tensors."

    def kernel(xp, a, b):
        refuse_complex(a, message, RuntimeError)
        refuse_complex(b, message, RuntimeError)
        return getattr(xp, name)(a, b)
    return kernel


MAXIMUM = op("maximum", promote=True, save="i", function=True, method=True)(_unordered("maximum"))
MAXIMUM.def_backward(_minmax_bwd(lambda a, b: lt(a, b)))
MINIMUM = op("minimum", promote=True, save="i", function=True, method=True)(_unordered("minimum"))
MINIMUM.def_backward(_minmax_bwd(lambda a, b: gt(a, b)))
maximum, minimum = MAXIMUM.function, MINIMUM.function


def _fminmax_bwd(pick_a_fn):
    def bwd(ctx, g):
        a, b = ctx.saved_inputs
        pa = pick_a_fn(a, b)
        ga = sum_to(where(pa, g, 0.0), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
        gb = sum_to(where(pa, 0.0, g), ctx.in_meta[1][0]) if _needs(ctx, 1) else None
        return ga, gb
    return bwd


FMAX = op("fmax", promote=True, save="i", node_name="FmaxBackward0")(_unordered("fmax"))
FMAX.def_backward(_fminmax_bwd(lambda a, b: ge(a, b) | isnan(b)))
FMIN = op("fmin", promote=True, save="i", node_name="FminBackward0")(_unordered("fmin"))
FMIN.def_backward(_fminmax_bwd(lambda a, b: le(a, b) | isnan(b)))


@public(method=True)
def fmax(input, other, *, out=None):
    return write_out(dispatch(FMAX, input, other), out)


@public(method=True)
def fmin(input, other, *, out=None):
    return write_out(dispatch(FMIN, input, other), out)


@op("clamp", save="i", node_name="ClampBackward1")     # (torch's clamp with number bounds: ClampBackward1)
def CLAMP(xp, a, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("tensorlib.clamp: At least one of 'min' or 'max' must not be None")
    refuse_complex(a, "clamp is not supported for complex types")
    if a.dtype.kind in "biu" and (type(min) is float or type(max) is float):    # torch: the default float dtype
        a = a.astype(D.get_default_dtype().np)
    if _number_or_none(min) and _number_or_none(max):
        return clamp_array(xp, a, min, max)
    r = xp.clip(a, min, max)
    return r.astype(a.dtype, copy=False) if r.dtype != a.dtype and D.kind(a.dtype) == "f" else r


def _number_or_none(b):
    return b is None or type(b) is float or type(b) is int


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


def _clamp_bwd_arrays(ctx, g, sink=False):
    """CLAMP's formula on NumPy arrays: the same comparisons and the float mask's product, called directly
    (the engine's quiet path) or, with `sink`, run as the recorded ge, le, bitwise_and and mul
    (OpDef.sink_backward: the product of the bool mask, whose cast is the product's promotion, unrecorded);
    None for tensor bounds or a gradient of another dtype than the input's."""
    p = quiet_arrays(g._data, ctx.inputs[0]._data)
    if p is None:
        return None
    gd, x = p
    bounds = [(b, o) for b, o in ((ctx.attrs.get("min"), GE), (ctx.attrs.get("max"), LE)) if b is not None]
    for bound, _ in bounds:     # (checked before anything runs: a sink formula records as it goes)
        if quiet_operand(bound, gd.dtype) is None:
            return None
    mask = None
    for bound, cmp in bounds:
        m = run_recorded(cmp, x, bound) if sink else cmp.kernel(np, x, bound)
        if mask is not None:
            m = run_recorded(BITWISE_AND, mask, m) if sink else np.bitwise_and(mask, m)
        mask = m
    if mask is None:
        return None
    if sink:    # the product of the bool mask, as dispatched (its record's Input type says so); same values
        return (tensor_of(run_recorded(MUL, gd, mask)),)
    return (tensor_of(np.multiply(gd, mask.astype(gd.dtype))),)


CLAMP.quiet_backward = _clamp_bwd_arrays
CLAMP.sink_backward = with_defaults(_clamp_bwd_arrays, sink=True)
# torch's clamp_min / clamp_max with a number: ops of their own (aten::clamp_min, ClampMinBackward0), CLAMP's kernel
# and formulas on their one bound
CLAMP_MIN = op("clamp_min", save="i", node_name="ClampMinBackward0")(CLAMP.kernel)
CLAMP_MAX = op("clamp_max", save="i", node_name="ClampMaxBackward0")(CLAMP.kernel)
for _o in (CLAMP_MIN, CLAMP_MAX):
    _o.def_backward(CLAMP.backward)
    _o.quiet_backward, _o.sink_backward = CLAMP.quiet_backward, CLAMP.sink_backward


@op("clamp_tensor", save="i", node_name="ClampBackward0")
def CLAMP_TENSOR(xp, a, lo, hi):
    """torch's clamp.Tensor: min(max(a, lo), hi) with tensor bounds (broadcast; either may be None), in torch's
    result dtype of the three; a NaN in any operand gives NaN. Registered as clamp_tensor, named clamp in
    records as torch's overload is."""
    dt = D.result_type_many([(D.from_np(b.dtype), b.ndim == 0) for b in (a, lo, hi) if b is not None])
    a, lo, hi = (None if b is None else b.astype(dt.np, copy=False) for b in (a, lo, hi))
    if lo is not None:
        a = xp.maximum(a, lo)
    return a if hi is None else xp.minimum(a, hi)


@CLAMP_TENSOR.def_backward
def _(ctx, g):
    # torch's clamp_backward and clamp_backward_min_max: the input's g where lo <= x <= hi; a bound's where x
    # passes it (and, both given, lo's only where lo < hi, hi's also where hi < lo)
    x, lo, hi = ctx.saved_inputs
    keep = None if lo is None else ge(x, lo)
    if hi is not None:
        keep = le(x, hi) if keep is None else keep & le(x, hi)
    gx = sum_to(where(keep, g, 0.0), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
    glo = ghi = None
    if lo is not None and _needs(ctx, 1):
        m = lt(x, lo) if hi is None else lt(x, lo) & lt(lo, hi)
        glo = sum_to(where(m, g, 0.0), ctx.in_meta[1][0])
    if hi is not None and _needs(ctx, 2):
        m = gt(x, hi) if lo is None else gt(x, hi) | lt(hi, lo)
        ghi = sum_to(where(m, g, 0.0), ctx.in_meta[2][0])
    return gx, glo, ghi


CLAMP_TENSOR.name = "clamp"


def _tensor_bound(b):
    """A tensor bound takes torch's clamp.Tensor overload, whose result dtype is the three's (a 0-dim bound's too:
    an int tensor clamped by tensor(0.5) is float, clamped by tensor(2.5, dtype=float64) float64)."""
    return isinstance(b, Tensor)


@public(method=True, aliases=("clip",))
def clamp(input, min=None, max=None):
    if _tensor_bound(min) or _tensor_bound(max):        # torch's clamp.Tensor overload
        if min is None and max is None:
            raise RuntimeError("tensorlib.clamp: At least one of 'min' or 'max' must not be None")
        return dispatch(CLAMP_TENSOR, input, min, max)
    return dispatch(CLAMP, input, min=unwrap_scalar(min), max=unwrap_scalar(max))


clip = clamp


@public(method=True)
def clamp_min(input, min):
    if _tensor_bound(min):      # (torch's clamp_min.Tensor: here clamp.Tensor's op in clamp_min's region)
        return _H.op_region("clamp_min", (input, min), clamp, input, min, None)
    return dispatch(CLAMP_MIN, input, min=unwrap_scalar(min))


@public(method=True)
def clamp_max(input, max):
    if _tensor_bound(max):
        return _H.op_region("clamp_max", (input, max), clamp, input, None, max)
    return dispatch(CLAMP_MAX, input, max=unwrap_scalar(max))


@op("clamp_", inplace_of=CLAMP)
def CLAMP_(xp, a, min=None, max=None):
    check_writable(a, min)      # a float bound into an integer tensor: torch's error, not NumPy's cast error
    check_writable(a, max)
    clamp_array(xp, a, min, max, out=a)


@public(method=True, aliases=("clip_",), method_aliases=("clip_",))
def clamp_(self, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("tensorlib.clamp: At least one of 'min' or 'max' must not be None")
    if any(isinstance(b, Tensor) and b.ndim > 0 for b in (min, max)):
        return _clamp_tensor_(self, min, max)
    return dispatch(CLAMP_, self, min=unwrap_scalar(min), max=unwrap_scalar(max))


@torch_op("clamp_")
def _clamp_tensor_(self, min, max):
    """torch's clamp_.Tensor (bounds broadcast against the target): the out-of-place result written back, where the
    target's dtype can hold it (a bound of more than one element was read as a number: refused)."""
    r = clamp(self, min, max)
    if _category(r.dtype) > _category(self.dtype):
        raise RuntimeError(f"result type {D.scalar_name(r.dtype)} can't be cast to the desired output type "
                           f"{D.scalar_name(self.dtype)}")
    return self.copy_(r)


def _category(d):
    return D.to_dtype(d)._category


# --- atan2, hypot, logaddexp, xlogy -----------------------------------------------------------------------

def _float_pair(a, b):
    """Integer operands of a float function (atan2, hypot) compute in the default float dtype."""
    ints = [x for x in (a, b) if hasattr(x, "dtype") and hasattr(x, "ndim")]
    if ints and all(x.dtype.kind in "biu" for x in ints):
        dt = D.get_default_dtype().np
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
    inv = where(eq(den, 0), 0.0, 1 / den)      # torch's gradients at (0, 0) are 0
    return (sum_to(g * b * inv, ctx.in_meta[0][0]) if _needs(ctx, 0) else None,
            sum_to(neg(g) * a * inv, ctx.in_meta[1][0]) if _needs(ctx, 1) else None)


@public(method=True, aliases=("arctan2",))
def atan2(input, other, *, out=None):
    return write_out(dispatch(ATAN2, input, other), out)


arctan2 = atan2


@op("hypot", promote=True, save="io", node_name="HypotBackward0")
def HYPOT(xp, a, b):
    for x in (a, b):
        if hasattr(x, "dtype") and x.dtype.kind in "biu":
            raise NotImplementedError(f"\"hypot_cpu\" not implemented for '{D.scalar_name(x.dtype)}'")
    return xp.hypot(a, b)


@HYPOT.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    out = ctx.saved_output
    return (sum_to(g * a / out, ctx.in_meta[0][0]) if _needs(ctx, 0) else None,
            sum_to(g * b / out, ctx.in_meta[1][0]) if _needs(ctx, 1) else None)


@public(method=True)
def hypot(input, other, *, out=None):
    return write_out(dispatch(HYPOT, input, other), out)


@op("logaddexp", promote=True, save="io", node_name="LogaddexpBackward0")
def LOGADDEXP(xp, a, b):
    dt = getattr(a, "dtype", None)
    if dt is not None and dt.kind in "biu" and getattr(b, "dtype", dt).kind in "biu":    # torch has no integer kernel
        raise NotImplementedError(f'"logaddexp_{"cpu" if xp is np else "cuda"}" not implemented for '
                                  f"'{D.scalar_name(dt)}'")
    a, b = _float_pair(a, b)
    if getattr(a, "dtype", _REAL).kind == "c" or getattr(b, "dtype", _REAL).kind == "c":   # no complex ufunc loop
        m = xp.maximum(getattr(a, "real", a), getattr(b, "real", b))
        return m + xp.log(xp.exp(a - m) + xp.exp(b - m))
    return xp.logaddexp(a, b)


@LOGADDEXP.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    out = ctx.saved_output
    ga = sum_to(g * exp(a - out), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
    gb = sum_to(g * exp(b - out), ctx.in_meta[1][0]) if _needs(ctx, 1) else None
    return ga, gb


@public(method=True)
def logaddexp(input, other, *, out=None):
    return write_out(dispatch(LOGADDEXP, input, other), out)


@op("xlogy", promote=True, save="i", node_name="XlogyBackward0")
def XLOGY(xp, a, b):
    _refuse_complex_pair(xp, a, b, "xlogy")
    a, b = _float_pair(a, b)
    # a Python number takes the tensor's dtype (the promotion's): xp.log(3) alone is a float64 NumPy scalar, which
    # NumPy does not treat as weak (a float32 tensor's xlogy(x, 3) was float64)
    if not hasattr(b, "ndim"):
        b = xp.asarray(b, dtype=a.dtype)
    elif not hasattr(a, "ndim"):
        a = xp.asarray(a, dtype=b.dtype)
    r = a * xp.log(b)
    return xp.where(a == 0, xp.where(xp.isnan(b), b, 0), r).astype(r.dtype, copy=False)


name_by_operands(XLOGY, {(True, True): "XlogyBackward0", (False, True): "XlogyBackward1",
                         (True, False): "XlogyBackward2"})


@XLOGY.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    # torch 2.13's: log(other), except 0 where input == 0 and other <= 0 (checked against torch)
    ga = None
    if _needs(ctx, 0):
        if isinstance(b, Tensor):
            ga = sum_to(where(eq(a, 0) & (b <= 0), 0.0, g * log(b)), ctx.in_meta[0][0])
        else:       # a number other (torch's xlogy.Scalar_Other)
            lb = math.log(b) if b > 0 else -math.inf if b == 0 else math.nan
            ga = where(eq(a, 0), 0.0, g * lb) if b <= 0 else g * lb
    gb = sum_to(g * a / b, ctx.in_meta[1][0]) if _needs(ctx, 1) else None
    return ga, gb


@public(method=True)
def xlogy(input, other, *, out=None):
    return write_out(dispatch(XLOGY, input, other), out)


@op("copysign", promote=True, save="io", node_name="CopysignBackward0")
def COPYSIGN(xp, a, b):
    """|a| with b's sign (a NaN's sign bit too, as torch); integers compute in the default float dtype."""
    a, b = _float_pair(a, b)
    if not hasattr(a, "dtype") or a.dtype.kind in "biu":
        a = xp.asarray(a, dtype=D.get_default_dtype().np)
    return xp.copysign(a, b)


@COPYSIGN.def_backward
def _(ctx, g):
    # torch's copysign_tensor_self_backward: g * result / self, 0 where self is 0; none for the sign's source
    a = ctx.saved_inputs[0]
    out = ctx.saved_output
    ga = sum_to(where(eq(a, 0), 0.0, g * out / a), ctx.in_meta[0][0]) if _needs(ctx, 0) else None
    gb = ctx.saved_inputs[1].new_zeros(tuple(ctx.in_meta[1][0])) if _needs(ctx, 1) else None
    return ga, gb


@public(method=True)
def copysign(input, other, *, out=None):
    return write_out(dispatch(COPYSIGN, input, other), out)


# --- augmented assignment: the in-place ops --------------------------------------------------------------

public(lambda self, o: add_(self, o), name="__iadd__", function=False, method=True)
public(lambda self, o: sub_(self, o), name="__isub__", function=False, method=True)
public(lambda self, o: dispatch(MUL_, self, o), name="__imul__", function=False, method=True)
public(lambda self, o: div_(self, o), name="__itruediv__", function=False, method=True)
public(lambda self, o: div_(self, o), name="__idiv__", function=False, method=True)      # (torch keeps the py2 name)
# the others in place too, as torch's: without them Python rebinds `x //= 2` to a new tensor, which leaves a view's
# base (and every other holder of x) unchanged
for _name, _method in (("__ifloordiv__", "floor_divide_"), ("__imod__", "remainder_"), ("__ipow__", "pow_"),
                       ("__iand__", "bitwise_and_"), ("__ior__", "bitwise_or_"), ("__ixor__", "bitwise_xor_"),
                       ("__ilshift__", "bitwise_left_shift_"), ("__irshift__", "bitwise_right_shift_")):
    public((lambda m: lambda self, o: getattr(self, m)(o))(_method), name=_name, function=False, method=True)
