"""Comparisons, logic and bitwise ops (bool or integer results, not differentiable), the float tests
(isnan, isinf, isfinite, isclose) and `where`, the select every other family's backward uses."""
from __future__ import annotations

from .. import _dtype as D
from ..dispatch import record_range
from .broadcast import sum_to
from ._define import Tensor, dispatch, kind_of, np, op, public, refuse_complex, torch_op

# --- comparisons: torch.eq & co., Tensor.eq & co. and the operators ---------------------------------------

EQ = op("eq", promote=True, function=True, method=True, operators=("__eq__",))(lambda xp, a, b: xp.equal(a, b))
NE = op("ne", promote=True, function=True, method=True, aliases=("not_equal",),
        operators=("__ne__",))(lambda xp, a, b: xp.not_equal(a, b))
def _ordered(fn, name):
    """An ordering comparison's kernel: torch has none for complex numbers (NumPy orders them lexicographically)."""
    message = f'"{name}_cpu" not implemented for \'{{dtype}}\''

    def kernel(xp, a, b):
        if type(a) is not np.ndarray or a.dtype.kind == "c":
            refuse_complex(a, message)
            refuse_complex(b, message)
        return getattr(xp, fn)(a, b)
    return kernel


LT = op("lt", promote=True, function=True, method=True, aliases=("less",),
        operators=("__lt__",))(_ordered("less", "lt"))
LE = op("le", promote=True, function=True, method=True, aliases=("less_equal",),
        operators=("__le__",))(_ordered("less_equal", "le"))
GT = op("gt", promote=True, function=True, method=True, aliases=("greater",),
        operators=("__gt__",))(_ordered("greater", "gt"))
GE = op("ge", promote=True, function=True, method=True, aliases=("greater_equal",),
        operators=("__ge__",))(_ordered("greater_equal", "ge"))

public(lambda self: id(self), name="__hash__", function=False, method=True)   # __eq__ is elementwise, hash is identity

eq, ne, lt, le, gt, ge = (f for f in (EQ.function, NE.function, LT.function, LE.function, GT.function, GE.function))
not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge

# --- logic ------------------------------------------------------------------------------------------------

LOGICAL_NOT = op("logical_not", function=True, method=True)(lambda xp, a: xp.logical_not(a))
LOGICAL_AND = op("logical_and", function=True, method=True)(lambda xp, a, b: xp.logical_and(a, b))
LOGICAL_OR = op("logical_or", function=True, method=True)(lambda xp, a, b: xp.logical_or(a, b))
LOGICAL_XOR = op("logical_xor", function=True, method=True)(lambda xp, a, b: xp.logical_xor(a, b))
logical_not, logical_and, logical_or, logical_xor = (
    o.function for o in (LOGICAL_NOT, LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR))


# --- bitwise ----------------------------------------------------------------------------------------------

def _bitwise(name, fn):
    """Integer and bool only, as torch (whose error names its CPU kernel; NumPy's would name a ufunc)."""
    def kernel(xp, *arrays):
        for x in arrays:
            kind = kind_of(x)
            if kind not in "iub":
                raise NotImplementedError(f'"{name}_cpu" not implemented for \'{D.scalar_name(x.dtype)}\''
                                          if hasattr(x, "dtype") else f'"{name}_cpu" not implemented for \'Float\'')
        return fn(*arrays)
    return kernel


BITWISE_AND = op("bitwise_and", promote=True, function=True, method=True,
                 operators=("__and__", "__rand__"))(_bitwise("bitwise_and", lambda a, b: a & b))
BITWISE_OR = op("bitwise_or", promote=True, function=True, method=True,
                operators=("__or__", "__ror__"))(_bitwise("bitwise_or", lambda a, b: a | b))
BITWISE_XOR = op("bitwise_xor", promote=True, function=True, method=True,
                 operators=("__xor__", "__rxor__"))(_bitwise("bitwise_xor", lambda a, b: a ^ b))
BITWISE_NOT = op("bitwise_not", function=True, method=True)(_bitwise("bitwise_not", lambda a: ~a))
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = (
    o.function for o in (BITWISE_AND, BITWISE_OR, BITWISE_XOR, BITWISE_NOT))


@public(name="__invert__", function=False, method=True)
def _invert(self):
    """`~t`: logical not on bool tensors, bitwise not on integers (as torch)."""
    if self._data.dtype.kind not in "biu":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return dispatch(LOGICAL_NOT if self._data.dtype == np.bool_ else BITWISE_NOT, self)


# --- float tests ------------------------------------------------------------------------------------------

ISNAN = op("isnan", function=True, method=True)(lambda xp, a: xp.isnan(a))
ISINF = op("isinf", function=True, method=True)(lambda xp, a: xp.isinf(a))
ISFINITE = op("isfinite", function=True, method=True)(lambda xp, a: xp.isfinite(a))
isnan, isinf, isfinite = ISNAN.function, ISINF.function, ISFINITE.function


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
        raise RuntimeError(f"{D.scalar_name(input._data.dtype)} did not match {D.scalar_name(other._data.dtype)}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")


@public(method=True)
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    _isclose_check(input, other, rtol, atol)
    return dispatch(ISCLOSE, input, other, rtol=rtol, atol=atol, equal_nan=bool(equal_nan))


@public(method=True)
@torch_op("allclose")
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


@public(method=True)
def equal(input, other):
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(eq(input, other).all().item())


# --- where ------------------------------------------------------------------------------------------------

@op("where", save="i")
def WHERE(xp, cond, a, b):
    if hasattr(a, "dtype") and hasattr(b, "dtype") and a.dtype != b.dtype and getattr(a, "ndim", 0) >= 0:
        rt = D.result_type(D.from_np(a.dtype), a.ndim == 0, D.from_np(b.dtype), b.ndim == 0).np
        a, b = a.astype(rt, copy=False), b.astype(rt, copy=False)
    elif hasattr(a, "dtype") and not hasattr(b, "dtype"):       # a Python number lifts the category only (torch)
        rt = D.scalar_result(D.from_np(a.dtype), b).np
        return xp.where(cond, a.astype(rt, copy=False), xp.asarray(b, dtype=rt))
    elif hasattr(b, "dtype") and not hasattr(a, "dtype"):
        rt = D.scalar_result(D.from_np(b.dtype), a).np
        return xp.where(cond, xp.asarray(a, dtype=rt), b.astype(rt, copy=False))
    elif not hasattr(a, "dtype") and not hasattr(b, "dtype"):
        return xp.where(cond, a, b).astype(_two_numbers(a, b).np)
    return xp.where(cond, a, b)


def _two_numbers(a, b):
    """torch's result dtype of two Python numbers: the higher kind's default (bool, int64, the default float, its
    complex)."""
    kinds = {type(x) for x in (a, b)}
    if complex in kinds:
        return D.default_complex()
    if float in kinds:
        return D.get_default_dtype()
    return D.bool_ if kinds == {bool} else D.int64


@WHERE.def_backward
def _(ctx, g):
    cond = ctx.saved_inputs[0]
    ga = sum_to(where(cond, g, 0.0), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    gb = sum_to(where(cond, 0.0, g), ctx.in_meta[2][0]) if ctx.needs_input_grad[2] else None
    return None, ga, gb


@public
def where(condition, input=None, other=None):
    if input is None and other is None:        # torch's where(condition): `aten::where` over nonzero
        with record_range("where", "op", (condition,)):
            return condition.nonzero(as_tuple=True)
    return dispatch(WHERE, condition, input, other)


@public(name="where", function=False, method=True)
def _where_method(self, condition, other):
    return where(condition, self, other)
