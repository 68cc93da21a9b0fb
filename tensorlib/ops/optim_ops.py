"""Pointwise ops the optimizers need: addcmul, addcdiv and lerp, out of place (with backward) and in place.

The optimizers run their math through these dispatched ops so that a profile shows every update kernel
under `Optimizer.step#...`. The formulas follow torch's CPU kernels operation by operation
(`self + value * t1 * t2`, `self + value * t1 / t2`, and lerp's two-sided form). torch's vectorised CPU
kernels use fused multiply-add for addcmul and lerp (and add with alpha), one rounding where NumPy's passes take
two: those run as _fastmath.fma (tensorlib/_cmath.c's fused loop, torch's values to the bit).
"""
from __future__ import annotations

from .. import _dtype as D
from ._fastmath import FMA_ADDCMUL, FMA_LERP, MIN_SIZE as _ADDC_MIN, addcdiv_ as _addcdiv_1pass, astype, fma
from .arithmetic import DIV
from .broadcast import sum_to
from .unary_math import neg
from ._define import F16, Tensor, dispatch, half_in_float32, name_by_operands, np, op, public


def _lerp_k(xp, a, end, weight):
    if (a.dtype is D.BF16 or a.dtype is F16) and xp is np:     # torch's opmath: float32's lerp, rounded once
        r = half_in_float32(_lerp_k, xp, a, end, weight)
        if r is not None:
            return r
    if xp is np and (type(weight) is float or type(weight) is int) and type(a) is np.ndarray and a.dtype.kind == "f" \
            and type(end) is np.ndarray and end.dtype is a.dtype:
        return fma(FMA_LERP, a, end, None, weight)      # torch's lerp_vec: fused, one rounding
    diff = end - a
    if isinstance(weight, (int, float)):
        # torch: weight < 0.5 ? self + weight * diff : end - diff * (1 - weight)
        return a + weight * diff if abs(weight) < 0.5 else end - diff * (1 - weight)
    small = xp.abs(weight) < 0.5
    return xp.where(small, a + weight * diff, end - diff * (1 - weight)).astype(a.dtype, copy=False)


def _common(a, t1, t2, value):
    """The three operands in torch's result dtype (0-dim ones deciding only a higher category; NumPy's promotion
    made float32 with int32 float64), `value` cast to it (torch's Scalar: 2.5 with integer tensors is 2), and the
    dtype to compute in: float16 and bfloat16 in float32, rounded once, as torch's opmath."""
    dts = (a.dtype, t1.dtype, t2.dtype)
    if dts[0] == dts[1] == dts[2]:
        rt = dts[0]
    else:
        rt = D.result_type_many([(D.from_np(x.dtype), x.ndim == 0) for x in (a, t1, t2)]).np
        a, t1, t2 = (x.astype(rt, copy=False) for x in (a, t1, t2))
    if rt.kind in "biu" and type(value) is not bool:
        value = int(value)
    if rt.itemsize == 2 and D.kind(rt) == "f":
        return a.astype(np.float32), t1.astype(np.float32), t2.astype(np.float32), value, rt
    return a, t1, t2, value, None


@op("addcmul", save="i", node_name="AddcmulBackward0")
def ADDCMUL(xp, a, t1, t2, value=1):
    a, t1, t2, value, half = _common(a, t1, t2, value)
    r = None
    if xp is np and a.dtype.kind == "f" and (type(value) is float or type(value) is int):
        r = fma(FMA_ADDCMUL, a, t1, t2, value)      # torch's fmadd(value * t1, t2, self): one rounding
    if r is None:
        r = a + value * t1 * t2
    return r if half is None else astype(r, half)


@ADDCMUL.def_backward
def _(ctx, g):
    a, t1, t2 = ctx.saved_inputs
    value = ctx.attrs.get("value", 1)
    n = ctx.needs_input_grad
    return (sum_to(g, ctx.in_meta[0][0]) if n[0] else None,
            sum_to(g * t2 * value, ctx.in_meta[1][0]) if n[1] else None,
            sum_to(g * t1 * value, ctx.in_meta[2][0]) if n[2] else None)


@op("addcdiv", save="i", node_name="AddcdivBackward0")
def ADDCDIV(xp, a, t1, t2, value=1):
    a, t1, t2, value, half = _common(a, t1, t2, value)
    r = a + value * t1 / t2
    return r if half is None else astype(r, half)


@ADDCDIV.def_backward
def _(ctx, g):
    a, t1, t2 = ctx.saved_inputs
    value = ctx.attrs.get("value", 1)
    n = ctx.needs_input_grad
    # torch's grad * (value / tensor2) and -grad * (value * tensor1 / (tensor2 * tensor2)), in its order
    g1 = g2 = None
    if n[1]:
        g1 = sum_to(g * dispatch(DIV, value, t2), ctx.in_meta[1][0])
    if n[2]:
        q = t1 * value / (t2 * t2)
        g2 = sum_to(neg(g) * q, ctx.in_meta[2][0])
    return (sum_to(g, ctx.in_meta[0][0]) if n[0] else None, g1, g2)


@op("lerp", save="i", node_name="LerpBackward0")
def LERP(xp, a, end, weight):
    return _lerp_k(xp, a, end, weight)


name_by_operands(LERP, {(False,): "LerpBackward0", (True,): "LerpBackward1"}, at=(2,))     # a number / tensor weight


@LERP.def_backward
def _(ctx, g):
    a, end, w = ctx.saved_inputs
    n = ctx.needs_input_grad
    ga = sum_to(g * (1 - w), ctx.in_meta[0][0]) if n[0] else None
    ge = sum_to(g * w, ctx.in_meta[1][0]) if n[1] else None
    gw = sum_to(g * (end - a), ctx.in_meta[2][0]) if len(n) > 2 and n[2] else None
    return ga, ge, gw


def _store(xp, a, r):
    """Write a result into the target in place (a larger broadcast result raises NumPy's ValueError,
    which the dispatcher turns into torch's "output with shape ... doesn't match the broadcast shape")."""
    if r.dtype != a.dtype:     # torch's canCast: not into a lower category (int64 into uint8 is allowed)
        rc, ac = D.from_np(r.dtype)._category, D.from_np(a.dtype)._category
        if rc > ac or (ac == 0 and rc != 0):
            raise RuntimeError(f"result type {D.scalar_name(D.from_np(r.dtype))} can't be cast to the desired "
                               f"output type {D.scalar_name(D.from_np(a.dtype))}")
    xp.copyto(a, r, casting="unsafe")


def _same(a, o):
    """Operand `o` has the target's shape, dtype and array type: the in-place kernels then write through one
    temporary (the values, rounding included, are those of the out-of-place formula: same operations,
    same order). One operand per call, no generator: a per-parameter optimizer step calls it three times
    per parameter (an `all()` over a generator cost more than the test)."""
    return type(o) is type(a) and o.shape == a.shape and (o.dtype is a.dtype or o.dtype == a.dtype)


def _half(a):
    """A float16 or bfloat16 target: its in-place ops run the out-of-place kernels (in float32, rounded once, as
    torch's opmath; NumPy's and ml_dtypes' loops round every step, and ml_dtypes' run element by element)."""
    dt = a.dtype
    return dt is D.BF16 or dt is F16


def _addcmul_(xp, a, t1, t2, value=1):
    if not (_same(a, t1) and (t2 is t1 or _same(a, t2))) or not a.ndim or _half(a):    # (0-d: a NumPy scalar)
        return _store(xp, a, ADDCMUL.kernel(xp, a, t1, t2, value))
    if xp is np and a.dtype.kind == "f" and (type(value) is float or type(value) is int) \
            and fma(FMA_ADDCMUL, a, t1, t2, value, out=a) is not None:     # torch's fused kernel, in one pass
        return None
    r = xp.multiply(t1, value)
    xp.multiply(r, t2, out=r)
    xp.add(a, r, out=a)


def _addcdiv_(xp, a, t1, t2, value=1):
    if not (_same(a, t1) and (t2 is t1 or _same(a, t2))) or not a.ndim or _half(a):    # (0-d: a NumPy scalar)
        return _store(xp, a, ADDCDIV.kernel(xp, a, t1, t2, value))
    if xp is np and a.size >= _ADDC_MIN and _addcdiv_1pass(a, t1, t2, value):
        return None
    r = xp.multiply(t1, value)
    xp.divide(r, t2, out=r)
    xp.add(a, r, out=a)


def _lerp_(xp, a, end, weight):
    if not (isinstance(weight, (int, float)) and _same(a, end)) or _half(a):
        return _store(xp, a, _lerp_k(xp, a, end, weight))
    if xp is np and a.dtype.kind == "f" and fma(FMA_LERP, a, end, None, weight, out=a) is not None:
        return None         # torch's lerp_vec, fused, in one pass
    diff = xp.subtract(end, a)
    if abs(weight) < 0.5:
        diff *= weight
        xp.add(a, diff, out=a)
    else:
        diff *= 1 - weight
        xp.subtract(end, diff, out=a)


ADDCMUL_ = op("addcmul_", inplace_of=ADDCMUL)(_addcmul_)
ADDCDIV_ = op("addcdiv_", inplace_of=ADDCDIV)(_addcdiv_)
LERP_ = op("lerp_", inplace_of=LERP)(_lerp_)


def _dispatch_value(op_, args, value):
    """The op with `value` as an attribute only when it is not the default 1."""
    return dispatch(op_, *args) if value == 1 else dispatch(op_, *args, value=value)


def _check(name, *ts):
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument 'tensor1' and 'tensor2' must be Tensors, not {type(t).__name__}")


@public(function=False, method=True)
def addcmul(input, tensor1, tensor2, *, value=1):
    _check("addcmul", tensor1, tensor2)
    return _dispatch_value(ADDCMUL, (input, tensor1, tensor2), value)


@public(function=False, method=True)
def addcdiv(input, tensor1, tensor2, *, value=1):
    _check("addcdiv", tensor1, tensor2)
    if tensor1._data.dtype.kind in "biu" and tensor2._data.dtype.kind in "biu":
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a future release addcdiv "
                           "will perform a true division of tensor1 and tensor2. The historic addcdiv behavior can "
                           "be implemented as (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for "
                           "integer inputs and as (input + value * tensor1 / tensor2) for float inputs. The future "
                           "addcdiv behavior is just the latter implementation: (input + value * tensor1 / tensor2), "
                           "for all dtypes.")
    return _dispatch_value(ADDCDIV, (input, tensor1, tensor2), value)


def _lerp_dtypes(input, end, weight):
    """torch's lerp takes no mixed dtypes: `end`, and a weight tensor that is not 0-dim, of the input's dtype
    (NumPy would promote them silently)."""
    dt = input.dtype
    for name, o in (("end", end), ("weight", weight)):
        if isinstance(o, Tensor) and o.dtype is not dt and (name == "end" or o.ndim > 0):
            raise RuntimeError(f"expected dtype {D.C_NAMES[dt.name]} for `{name}` but got dtype "
                               f"{D.C_NAMES[o.dtype.name]}")


@public(function=False, method=True)
def lerp(input, end, weight):
    if isinstance(input, Tensor):
        _lerp_dtypes(input, end, weight)
        if isinstance(weight, Tensor):
            if weight.dtype is not input.dtype:     # a 0-dim weight of another dtype: torch's promotion of the three
                rt = D.result_type_many([(t.dtype, t.ndim == 0) for t in (input, end, weight) if isinstance(t, Tensor)])
                input, end, weight = (t.to(rt) if isinstance(t, Tensor) and t.dtype is not rt else t
                                      for t in (input, end, weight))
        elif input.dtype._category < 2:
            raise NotImplementedError(f'"lerp_kernel_scalar" not implemented for \'{D.scalar_name(input.dtype)}\'')
    return dispatch(LERP, input, end, weight)


# the in-place forms are an optimizer step's ops (per parameter, under a profiler): plain tensors pass the
# check without its call

@public(function=False, method=True)
def addcmul_(self, tensor1, tensor2, *, value=1):
    if type(tensor1) is not Tensor or type(tensor2) is not Tensor:
        _check("addcmul_", tensor1, tensor2)
    return _dispatch_value(ADDCMUL_, (self, tensor1, tensor2), value)


@public(function=False, method=True)
def addcdiv_(self, tensor1, tensor2, *, value=1):
    if type(tensor1) is not Tensor or type(tensor2) is not Tensor:
        _check("addcdiv_", tensor1, tensor2)
    return _dispatch_value(ADDCDIV_, (self, tensor1, tensor2), value)


@public(function=False, method=True)
def lerp_(self, end, weight):
    if (type(end) is Tensor and end.dtype is not self.dtype) or type(weight) is Tensor:
        _lerp_dtypes(self, end, weight)
    return dispatch(LERP_, self, end, weight)


__all__ = ["addcmul", "addcdiv", "lerp"]


# --- AMP gradient unscaling ----------------------------------------------------------------------

def _unscale_k(xp, grad, found_inf, inv_scale):
    """torch._amp_foreach_non_finite_check_and_unscale_ for one gradient: flag any inf/NaN in
    found_inf (a 0-dim float32 array, written in place) and multiply the gradient by inv_scale in place."""
    bad = ~xp.isfinite(grad).all()        # stays on the device: no host sync per gradient
    xp.maximum(found_inf, bad.astype(found_inf.dtype), out=found_inf)
    xp.multiply(grad, inv_scale.astype(grad.dtype, copy=False), out=grad)
    return found_inf


NON_FINITE_CHECK_AND_UNSCALE_ = op("_amp_non_finite_check_and_unscale_")(_unscale_k)


def non_finite_check_and_unscale_(grad, found_inf, inv_scale):
    dispatch(NON_FINITE_CHECK_AND_UNSCALE_, grad, found_inf, inv_scale)
    from ..dispatch import bump_version
    bump_version(grad)
    bump_version(found_inf)
