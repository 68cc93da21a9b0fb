"""Activations: sigmoid, relu (with torch's threshold_backward), gelu, silu, leaky_relu, elu, softplus."""
from __future__ import annotations

import math

from .. import _hooks as _H
from ._fastmath import exp as fast_exp, gelu as _fast_gelu, gelu_backward as _fast_gelu_backward
from ._fastmath import sigmoid as _fast_sigmoid, silu as _fast_silu
from ._fastmath import leaky as _fast_leaky, tanh as fast_tanh, threshold_backward as _fast_threshold_backward
from .broadcast import _sum_to_axes as sum_to_axes, _sum_to_kernel as sum_to_array, sum_to
from .comparison import gt, where
from .shape import cat
from .unary_math import _CDF_CLIP, _CDF_PX, _CDF_QX, _f, erf, erf_kernel, exp, log1p_exp_neg_abs, normal_cdf32, \
    fused_backward, one_array, output_backward, refuse_double_backward, tanh
from ..dispatch import STATE, run_recorded_call, run_recorded_op
from .. import _dtype as D
from .._graph import quiet_call, quiet_op, tensor_of
from ._rows import clamp_array, max0, min0
from .._opdef import OpDef, with_defaults
from ._define import (F16, dispatch, half_in_float32, inplace_unary_kernel, np, op, public, refuse_complex, register_op,
                      torch_op, unary)


def _sigmoid_k(xp, a):
    """1 / (1 + exp(-a)), the formula of torch's CPU kernel: below about -88 (float32; -709 float64) exp(-a)
    overflows to inf and the quotient is 0, as torch's is there (not the subnormal the two-sided form gave, whose
    where() also took 4-6x the time); the overflow is expected, not warned about. C-contiguous float32 arrays
    get torch's values to the bit (_fastmath.sigmoid: its Sleef exp); others may differ by an ulp (NumPy's exp)."""
    a = _f(xp, a)
    if a.dtype.kind == "c":
        return 1 / (1 + xp.exp(-a))
    if a.dtype is D.BF16 and isinstance(a, xp.ndarray):     # in float32, rounded once (torch's opmath)
        return half_in_float32(_sigmoid_k, xp, a)
    if a.dtype.char not in "efd" or not isinstance(a, xp.ndarray):
        e = xp.exp(-xp.abs(a))          # (the two-sided form)
        return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
    if not a.ndim:                      # (ufuncs give 0-d operands NumPy scalars: no out= for those)
        return _sigmoid_k(xp, a.reshape(1)).reshape(())
    if a.dtype.char == "e":             # float16 in float32, rounded once, as torch's kernels (its opmath type)
        return half_in_float32(_sigmoid_k, xp, a)
    if xp is np:                        # float32: torch's kernel to the bit (Sleef's exp), where the C loop runs
        out = _fast_sigmoid(a)
        if out is not None:
            return out
    return sigmoid_of_negated(xp, xp.negative(a))


def sigmoid_of_negated(xp, e):
    """_sigmoid_k's formula in place over `e` = -a (float32 or float64, 1-d or more), returned: what a fused
    kernel calls on a buffer it wrote -a into (the LSTM cell's workspace)."""
    if xp is np:
        with np.errstate(over="ignore"):
            fast_exp(e, out=e)
    else:
        xp.exp(e, out=e)
    e += 1
    return xp.reciprocal(e, out=e)


def _sigmoid_into(xp, a):
    """sigmoid_'s kernel on a float or complex `a`: _sigmoid_k's formula over `a` itself where it runs in place."""
    if a.ndim and a.dtype.char in "fd":
        if xp is np and _fast_sigmoid(a, a) is not None:
            return
        sigmoid_of_negated(xp, xp.negative(a, out=a))
    else:
        a[...] = _sigmoid_k(xp, a)


def _sigmoid_backward_k(xp, g, y):
    """torch's sigmoid_backward: g * (1 - y) * y in torch's order (its kernel's values to the bit; complex y as
    tanh_backward takes it)."""
    if not one_array(g, y):
        return g * (1 - y) * y
    t = xp.subtract(1, y)
    xp.multiply(g, t, out=t)
    return xp.multiply(t, y, out=t)


SIGMOID_BACKWARD = op("sigmoid_backward", save="i", node_name="SigmoidBackwardBackward0")(_sigmoid_backward_k)
SIGMOID = unary("sigmoid", _sigmoid_k, None, save="o", inplace=True, into=_sigmoid_into)
output_backward(SIGMOID, SIGMOID_BACKWARD, lambda gg, g, y: gg * g * (y * -2 + 1))     # torch's: g (1 - 2 y)
sigmoid = SIGMOID.function


def masked_backward(fwd: OpDef, bwd: OpDef, attrs_of, result_node=None):
    """Wire an activation whose backward is torch's one op bwd(g, x, **attrs_of(ctx)), g masked or scaled by a
    function of x alone (threshold_backward, leaky_relu_backward, hardtanh_backward): fwd's backward dispatched,
    or on NumPy run on the arrays (quiet) and recorded (sink); bwd's own backward, linear in g, the same op on gg
    (nothing for x). With result_node, also the node of fwd's in-place form, which saves the result (its input
    is overwritten): an OpDef the in-place op names as inplace_of, returned. x is then the result, and
    attrs_of sees `"o" in ctx.op.save`."""
    def saved(ctx):
        return ctx.saved_output if "o" in ctx.op.save else ctx.saved_inputs[0]

    def grad(ctx, g):
        return (dispatch(bwd, g, saved(ctx), **attrs_of(ctx)),)

    def arrays(ctx, g, call=quiet_op):
        x = ctx.saved_output_array() if "o" in ctx.op.save else ctx.inputs[0]
        return call(bwd, g, x, **attrs_of(ctx))

    def double(ctx, gg):
        return (dispatch(bwd, gg, ctx.saved_inputs[1], **ctx.attrs) if ctx.needs_input_grad[0] else None, None)

    bwd.def_backward(double)
    return _wire(fwd, grad, arrays, result_node)


def _wire(fwd: OpDef, grad, arrays, result_node=None, result_kernel=None):
    """fwd's backward `grad`, its quiet formula `arrays(ctx, g, call=quiet_op)` and the same recorded (its sink
    formula); with result_node, the same on a node of that name for fwd's in-place form, which saves the result:
    an OpDef (of kernel result_kernel, else fwd's) the in-place op names as inplace_of, returned."""
    result = None if result_node is None else \
        OpDef(fwd.name, result_kernel or fwd.kernel, save="o", node_name=result_node)
    for o in (fwd, result):
        if o is not None:
            o.def_backward(grad)
            o.quiet_backward = arrays
            o.sink_backward = with_defaults(arrays, call=run_recorded_op)
    return result


@op("threshold_backward", save="i", node_name="ThresholdBackwardBackward0")
def THRESHOLD_BACKWARD(xp, g, y, threshold=0):
    """torch's threshold_backward: 0 where y <= threshold, the gradient elsewhere (a NaN y included), as torch's
    select: an inf or NaN gradient where y <= threshold gives 0 (ReLU's backward, one op). On NumPy, float32 and
    float64 in one branchless pass (_fastmath.threshold_backward: a (64, 64, 30, 30) float32 gradient 1.54 ms,
    torch's 1.52, NumPy's mask-times-gradient 2.49); other dtypes and layouts by a copy of g and a masked fill."""
    if xp is np and g.dtype.kind == "f" and g.shape == y.shape:
        out = _fast_threshold_backward(g, y, threshold)
        if out is not None:
            return out
        out = np.array(g, dtype=g.dtype, copy=True)
        np.copyto(out, 0, where=np.less_equal(y, threshold))
        return out
    # CuPy: torch's select, two kernels (a cast mask and a product took three)
    return xp.where(y <= threshold, 0, g).astype(g.dtype, copy=False)


@op("threshold", save="i", node_name="ThresholdBackward0")
def THRESHOLD(xp, a, threshold=0.0, value=0.0):
    """torch's threshold: value where a <= threshold, a elsewhere (a NaN kept)."""
    return xp.where(a <= threshold, xp.asarray(value, dtype=a.dtype), a)


masked_backward(THRESHOLD, THRESHOLD_BACKWARD, lambda ctx: {"threshold": ctx.attrs["threshold"]})


def threshold(input, threshold, value):
    """torch.nn.functional.threshold (out of place): the threshold op, its backward threshold_backward."""
    return dispatch(THRESHOLD, input, threshold=threshold, value=value)


def threshold_backward(grad_output, input, threshold):
    return dispatch(THRESHOLD_BACKWARD, grad_output, input, threshold=threshold)


def _relu_kernel(xp, a):
    """max(a, 0): torch's relu is clamp_min(a, 0), which a profile shows inside the op as torch's does."""
    if _H.range_hooks:
        return _H.op_step("clamp_min", _clamp_min0, xp, a)
    out = max0(xp, a)
    return out if out.dtype == a.dtype else out.astype(a.dtype)   # (a bool input's int result cast back)


def _clamp_min0(xp, a):
    return max0(xp, a).astype(a.dtype, copy=False)


RELU = unary("relu", _relu_kernel, save="o")
masked_backward(RELU, THRESHOLD_BACKWARD, lambda ctx: {"threshold": 0})     # on the saved output, as torch's
relu = RELU.function


@op("relu_", inplace_of=RELU, function=True, method=True)
def RELU_(xp, a):
    max0(xp, a, out=a)


_SQRT2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)




_CDF_PX32 = np.array(_CDF_PX, np.float32)      # normal_cdf32's polynomials as its float32 steps use them
_CDF_QX32 = np.array(_CDF_QX, np.float32)


@op("gelu", save="i")
def GELU(xp, a, approximate="none"):
    if not a.ndim:      # a 0-d tensor's: as one element (the in-place steps below need arrays, not scalars)
        return GELU.kernel(xp, a.reshape(1), approximate).reshape(())
    if approximate == "tanh":
        # torch's 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x*x*x))) with its products (x ** 3 by powf took
        # 45 ns an element: 17.6 ms of a (4, 32, 3072) GPT MLP's 18.9, torch 0.63), in place on one temporary;
        # float16/bfloat16 in float32, rounded once (torch's opmath; in half, steps drifted 1%). (The final
        # halving commutes exactly: a product by 0.5 rounds nothing.)
        x = _opmath(a)
        t = xp.multiply(x, x)
        t *= x
        t *= 0.044715
        t += x
        t *= _SQRT_2_PI
        xp.tanh(t, out=t)
        t += 1
        t *= x
        t *= 0.5
        return t.astype(a.dtype, copy=False)
    if approximate != "none":
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    if xp is np:        # float32: tensorlib._cmath's loop, normal_cdf32's steps per element (the same values);
        # float16/bfloat16 through it in float32, rounded once (bfloat16's own erf ran ml_dtypes' slow loops)
        y = _fast_gelu(_opmath(a), _CDF_PX32, _CDF_QX32, _CDF_CLIP)
        if y is not None:
            return y.astype(a.dtype, copy=False)
    y = _cdf(xp, a)       # torch's x * 0.5 * (1 + erf(x / √2)), in float32 for float16/32 (its opmath)
    y *= a
    return y.astype(a.dtype, copy=False)


def _opmath(a):
    """torch's opmath type: a float16/bfloat16 array in float32, others as they are."""
    return a.astype(np.float32) if a.dtype.itemsize == 2 and D.kind(a.dtype) == "f" else a


def _cdf(xp, x):
    """The normal CDF 0.5 (1 + erf(x / √2)) as a fresh array (float32 for float16 input), in place from erf on."""
    if xp is np and x.dtype in (np.float16, np.float32):
        return normal_cdf32(x)
    y = erf_kernel(xp, x, 1 / _SQRT2)
    y += 1
    y *= 0.5
    return y


@op("gelu_backward", save="i", node_name="GeluBackwardBackward0")
def GELU_BACKWARD(xp, g, x, approximate="none"):
    """torch's kernel as one op, for a backward that is not itself differentiated: the composite's
    formulas below, operation for operation, on the arrays."""
    if not x.ndim:
        return GELU_BACKWARD.kernel(xp, g.reshape(1), x.reshape(1), approximate).reshape(())
    if approximate == "tanh":
        # g * ((1 + t) * 0.5 + x * 0.5 * (1 - t * t) * sqrt(2/pi) * (1 + x * x * (3 * 0.044715))), t the forward's
        # tanh, each product and sum in that order, in place on four temporaries (a (4, 32, 3072) float32
        # gradient: 2.1 ms with a temporary per step, torch 0.67)
        x = _opmath(x)
        x2 = xp.multiply(x, x)
        t = xp.multiply(x2, x)
        t *= 0.044715
        t += x
        t *= _SQRT_2_PI
        xp.tanh(t, out=t)
        r = xp.multiply(x, 0.5)
        u = xp.multiply(t, t)
        xp.subtract(1, u, out=u)
        r *= u
        r *= _SQRT_2_PI
        x2 *= 3 * 0.044715
        x2 += 1
        r *= x2
        t += 1
        t *= 0.5
        t += r
        t *= _opmath(g)
        return t.astype(g.dtype, copy=False)
    if xp is np:        # as the forward: the C loop for float32 (float16/bfloat16 through it in float32)
        out = _fast_gelu_backward(_opmath(g), _opmath(x), _CDF_PX32, _CDF_QX32, _CDF_CLIP)
        if out is not None:
            return out.astype(g.dtype, copy=False)
    cdf = _cdf(xp, x)
    pdf = xp.multiply(x, x, dtype=cdf.dtype)
    pdf *= -0.5
    fast_exp(pdf, out=pdf) if xp is np else xp.exp(pdf, out=pdf)
    pdf *= x
    pdf *= 1 / math.sqrt(2 * math.pi)
    pdf += cdf
    pdf *= g
    return pdf.astype(g.dtype, copy=False)


def _gelu_composite(ctx, g):
    """GELU's backward in tensorlib ops, differentiable (create_graph records it)."""
    x = ctx.saved_inputs[0]
    if ctx.attrs.get("approximate", "none") == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_PI
        t = tanh(inner)
        d = (1 + t) * 0.5 + x * 0.5 * (1 - t * t) * _SQRT_2_PI * (1 + x * x * (3 * 0.044715))
        return (g * d,)
    cdf = (1 + erf(x / _SQRT2)) * 0.5
    pdf = exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return (g * (cdf + x * pdf),)


def _gelu_attrs(ctx):
    approximate = ctx.attrs.get("approximate", "none")
    return {} if approximate == "none" else {"approximate": approximate}


fused_backward(GELU, GELU_BACKWARD, _gelu_composite, _gelu_attrs)


@public(method=True)
def gelu(input, approximate="none"):
    return dispatch(GELU, input) if approximate == "none" else dispatch(GELU, input, approximate=approximate)


def _silu_k(xp, a):
    """a * sigmoid(a); float16 and bfloat16 in float32, rounded once (torch's opmath)."""
    if a.dtype is F16 or a.dtype is D.BF16:
        return half_in_float32(_silu_k, xp, a)
    if xp is np:
        r = _fast_silu(a)       # (float32: torch's kernel to the bit)
        if r is not None:
            return r
    return a * _sigmoid_k(xp, a)


SILU = unary("silu", _silu_k)
silu = SILU.function
# F.silu(inplace=True)'s op (torch's aten::silu_, no Tensor method), SILU's kernel written back, SILU's backward
SILU_ = register_op("silu_", inplace_unary_kernel(SILU), inplace_of=SILU)


@op("silu_backward", save="i", node_name="SiluBackwardBackward0")
def SILU_BACKWARD(xp, g, x):
    """torch's silu_backward as one op (the composite below, operation for operation on the arrays):
    g * s * (1 + x * (1 - s)), s = sigmoid(x); float16 and bfloat16 in float32, as torch's kernel."""
    if g.dtype is F16 or g.dtype is D.BF16:
        return half_in_float32(SILU_BACKWARD.kernel, xp, g, x)
    if xp is np:
        r = _fast_silu(x, g)    # (float32: torch's kernel to the bit, its fused multiply-add too)
        if r is not None:
            return r
    s = _sigmoid_k(xp, x)
    t = xp.subtract(1, s, dtype=s.dtype)
    t *= x
    t += 1
    r = xp.multiply(g, s, dtype=s.dtype)    # (torch's order: (g * s) * (1 + x * (1 - s)))
    r *= t
    return r.astype(g.dtype, copy=False)


def _silu_composite(ctx, g):
    x = ctx.saved_inputs[0]
    s = sigmoid(x)
    return (g * s * (1 + x * (1 - s)),)


fused_backward(SILU, SILU_BACKWARD, _silu_composite)


@op("leaky_relu", save="i", function=True, method=True)
def LEAKY_RELU(xp, a, negative_slope=0.01):
    """For a slope in (0, 1], max(a, a * slope): the same values as where(a > 0, a, a * slope), NaN and
    infinities included, without where's mask (NumPy's where and masked copies take 3-15x the time of two
    plain passes on a random sign pattern: branch mispredictions)."""
    if a.dtype.kind == "c":     # (the test inline: these kernels are per-layer hot)
        refuse_complex(a, "\"leaky_relu_cpu\" not implemented for '{dtype}'")
    if not a.ndim:      # (ufuncs give 0-d operands NumPy scalars: no out= for those)
        return LEAKY_RELU.kernel(xp, a.reshape(1), negative_slope).reshape(())
    if xp is np and (out := _fast_leaky(a, a, negative_slope)) is not None:     # (float32: one C pass)
        return out
    if 0 < negative_slope <= 1 and a.dtype.kind == "f":
        out = xp.multiply(a, negative_slope, dtype=a.dtype)
        return xp.maximum(out, a, out=out)
    return xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


_NEGATIVE_SLOPE_IN_PLACE = (
    "In-place leakyReLu backward calculation is triggered with a negative slope which is not supported. This is "
    "caused by calling in-place forward function with a negative slope, please call out-of-place version instead. "
    "File an issue at https://github.com/pytorch/pytorch if you do require supporting in-place leakRelu backward "
    "calculation with negative slope")


@op("leaky_relu_backward", save="i", node_name="LeakyReluBackwardBackward0")
def LEAKY_RELU_BACKWARD(xp, g, x, negative_slope=0.01, self_is_result=False):
    """torch's leaky_relu_backward: g where x > 0, g * negative_slope elsewhere (LeakyReLU's backward, one
    op). x is the input, or the in-place op's result (self_is_result: the same signs for a slope >= 0)."""
    if self_is_result and negative_slope < 0:
        raise RuntimeError(_NEGATIVE_SLOPE_IN_PLACE)
    if xp is np and (out := _fast_leaky(x, g, negative_slope)) is not None:     # (float32: one C pass)
        return out
    if xp is np and 0 <= negative_slope <= 1 and g.dtype.kind == "f" and g.shape == x.shape:
        # g times the factor (x > 0) * (1 - s) + s, which is exactly 1 or s for s in [0, 1] (1 - s rounds by
        # at most half an ulp below 1, which the sum rounds back), so the same values as where()'s (inf and
        # NaN gradients too), in four plain passes
        s = g.dtype.type(negative_slope)
        f = np.empty_like(g)
        np.greater(x, 0, out=f)
        f *= g.dtype.type(1) - s
        f += s
        return np.multiply(f, g, out=f)
    return xp.where(x > 0, g, g * negative_slope).astype(g.dtype, copy=False)


def _leaky_attrs(ctx):
    slope = ctx.attrs.get("negative_slope", 0.01)
    return {"negative_slope": slope, "self_is_result": True} if "o" in ctx.op.save else {"negative_slope": slope}


# leaky_relu_'s node: torch's LeakyReluBackward1, which saves the result. Never dispatched itself (not registered)
_LEAKY_RELU_RESULT = masked_backward(LEAKY_RELU, LEAKY_RELU_BACKWARD, _leaky_attrs, "LeakyReluBackward1")


@op("leaky_relu_", inplace_of=_LEAKY_RELU_RESULT)
def LEAKY_RELU_(xp, a, negative_slope=0.01):
    a[...] = LEAKY_RELU.kernel(xp, a, negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    """torch.nn.functional.leaky_relu_: in place, its node LeakyReluBackward1 (the result saved)."""
    return dispatch(LEAKY_RELU_, input, negative_slope=negative_slope)


# --- hardtanh (and relu6): torch's hardtanh and hardtanh_backward ------------------------------------------------

@op("hardtanh", save="i", node_name="HardtanhBackward0")
def HARDTANH(xp, a, min_val=-1.0, max_val=1.0):
    """clamp(a, min_val, max_val), as torch's hardtanh runs it (its clamp inside, in a profile)."""
    if a.dtype.kind == "c":     # (the test inline: these kernels are per-layer hot)
        refuse_complex(a, "clamp is not supported for complex types")
    if _H.range_hooks:
        return _H.op_step("clamp", clamp_array, xp, a, min_val, max_val)
    return clamp_array(xp, a, min_val, max_val)


@op("hardtanh_backward", save="i", node_name="HardtanhBackwardBackward0")
def HARDTANH_BACKWARD(xp, g, x, min_val=-1.0, max_val=1.0):
    """torch's hardtanh_backward: g where min_val < x < max_val, 0 elsewhere (at the bounds too: relu6's gradient
    at 0 and 6 is 0, where clamp's is g; and at a NaN x, as torch's vectorised loop gives it, which is every
    element but a last few its scalar tail gives g). x is the input, or the in-place op's result (the same
    answer: a result at a bound is 0). On NumPy the mask is written as floats into the result, then multiplied
    (as threshold_backward; an inf or NaN gradient outside the range gives NaN, not torch's 0)."""
    if xp is np and g.dtype.kind == "f" and g.shape == x.shape:
        inside = np.greater(x, min_val)
        inside &= np.less(x, max_val)
        out = np.empty_like(g)
        np.copyto(out, inside)
        return np.multiply(out, g, out=out)
    return xp.where((x > min_val) & (x < max_val), g, 0).astype(g.dtype, copy=False)


# hardtanh_'s node, which saves the result (the input is overwritten): torch names it HardtanhBackward0 too
_HARDTANH_RESULT = masked_backward(HARDTANH, HARDTANH_BACKWARD, lambda ctx: ctx.attrs, "HardtanhBackward0")


@op("hardtanh_", inplace_of=_HARDTANH_RESULT)
def HARDTANH_(xp, a, min_val=-1.0, max_val=1.0):
    clamp_array(xp, a, min_val, max_val, out=a)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """torch.nn.functional.hardtanh: the hardtanh op, or in place hardtanh_ (its node saves the result)."""
    lo, hi = float(min_val), float(max_val)
    if lo > hi:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return dispatch(HARDTANH_, input, min_val=lo, max_val=hi)
    return dispatch(HARDTANH, input, min_val=lo, max_val=hi)


def relu6(input, inplace=False):
    """torch.nn.functional.relu6: hardtanh(0, 6) inside torch's relu6 region (in place: hardtanh_)."""
    if inplace or not _H.range_hooks:
        return hardtanh(input, 0.0, 6.0, inplace)
    return _H.op_region("relu6", (input,), hardtanh, input, 0.0, 6.0)


# --- hardsigmoid, hardswish: torch's kernels as ops (MobileNetV3's activations) ---------------------------

@op("hardsigmoid", save="i", node_name="HardsigmoidBackward0")
def HARDSIGMOID(xp, a):
    """torch's min(max(x + 3, 0), 6) / 6, in its order."""
    if a.dtype.kind == "c":     # (the test inline: these kernels are per-layer hot)
        refuse_complex(a, "\"hardsigmoid_cpu\" not implemented for '{dtype}'")
    if not a.ndim:
        return HARDSIGMOID.kernel(xp, a.reshape(1)).reshape(())
    y = a + 3
    xp.clip(y, 0, 6, out=y)
    y /= 6
    return y.astype(a.dtype, copy=False)


@op("hardsigmoid_backward", save="i", node_name="HardsigmoidBackwardBackward0")
def HARDSIGMOID_BACKWARD(xp, g, x):
    """g / 6 where -3 < x < 3, 0 elsewhere (torch's hardsigmoid_backward, whose 1/6 is a float32 constant for
    every dtype: its product by it)."""
    if xp is np and g.ndim and g.shape == x.shape:     # a masked copy of 0 outside (-3, 3), NaN included:
        out = np.multiply(g, _ONE_SIXTH_F32, dtype=g.dtype)     # 0.57x where()'s time
        outside = np.abs(x) < 3
        np.logical_not(outside, out=outside)
        np.copyto(out, 0, where=outside)
        return out
    return xp.where((x > -3) & (x < 3), g * _ONE_SIXTH_F32, 0).astype(g.dtype, copy=False)


_ONE_SIXTH_F32 = float(np.float32(1 / 6))


@op("hardswish", save="i", node_name="HardswishBackward0")
def HARDSWISH(xp, a):
    """torch's x * min(max(x + 3, 0), 6) / 6, in its order."""
    if a.dtype.kind == "c":     # (the test inline: these kernels are per-layer hot)
        refuse_complex(a, "\"hardswish_cpu\" not implemented for '{dtype}'")
    if not a.ndim:
        return HARDSWISH.kernel(xp, a.reshape(1)).reshape(())
    y = a + 3
    xp.clip(y, 0, 6, out=y)
    y *= a
    y /= 6
    return y.astype(a.dtype, copy=False)


@op("hardswish_backward", save="i", node_name="HardswishBackwardBackward0")
def HARDSWISH_BACKWARD(xp, g, x):
    """torch's hardswish_backward as its vectorised kernel chooses: 0 up to -3, g from 3 on, g * (x / 3 + 0.5)
    between (NaN for a NaN x). where() on masks that are mostly one way for activations: predictable."""
    v = x / 3
    v += 0.5
    v *= g
    if type(v) is np.ndarray and v.dtype == g.dtype:     # masked copies: no where() arrays (1.5-1.8x faster)
        np.copyto(v, g, where=x >= 3)
        np.copyto(v, 0, where=x <= -3)
        return v
    v = xp.where(x >= 3, g, v)
    return xp.where(x <= -3, 0, v).astype(g.dtype, copy=False)


@HARDSIGMOID_BACKWARD.def_backward
def _(ctx, gg):
    x = ctx.saved_inputs[1]
    return (dispatch(HARDSIGMOID_BACKWARD, gg, x) if ctx.needs_input_grad[0] else None, None)


@HARDSWISH_BACKWARD.def_backward
def _(ctx, gg):
    g, x = ctx.saved_inputs
    gg_g = dispatch(HARDSWISH_BACKWARD, gg, x) if ctx.needs_input_grad[0] else None
    # d/dx of g * (x / 3 + 0.5) on [-3, 3] is g / 3; 0 elsewhere
    gg_x = gg * g * dispatch(HARDSIGMOID_BACKWARD, x.new_ones(()) * 2, x) if ctx.needs_input_grad[1] else None
    return gg_g, gg_x


for _fwd, _bwd in ((HARDSIGMOID, HARDSIGMOID_BACKWARD), (HARDSWISH, HARDSWISH_BACKWARD)):
    _fwd.def_backward(lambda ctx, g, _bwd=_bwd: (dispatch(_bwd, g, ctx.saved_inputs[0]),))
    _fwd.quiet_backward = lambda ctx, g, _bwd=_bwd: quiet_op(_bwd, g, ctx.inputs[0])
    _fwd.sink_backward = lambda ctx, g, _bwd=_bwd: run_recorded_op(_bwd, g, ctx.inputs[0])


def hardsigmoid(input):
    return dispatch(HARDSIGMOID, input)


def hardswish(input):
    return dispatch(HARDSWISH, input)


# --- log_sigmoid: torch's log_sigmoid_forward and log_sigmoid_backward ------------------------------------------

@op("log_sigmoid_forward", save="i", node_name="LogSigmoidBackward0")
def LOG_SIGMOID(xp, a):
    """min(a, 0) - log1p(exp(-|a|)), torch's CPU kernel's formula (its buffer output, exp(-|a|), is not kept: its
    backward recomputes it)."""
    if D.kind(a.dtype) != "f":
        raise RuntimeError(f'"log_sigmoid_forward_cpu" not implemented for \'{_c_name(a.dtype)}\'')
    if a.dtype is F16 or a.dtype is D.BF16:     # in float32, rounded once, as torch's kernel (its opmath type)
        return half_in_float32(LOG_SIGMOID.kernel, xp, a)
    y = min0(xp, a)
    y -= log1p_exp_neg_abs(xp, a)
    return y.astype(a.dtype, copy=False)


@op("log_sigmoid_backward", node_name="LogSigmoidBackwardBackward0")
def LOG_SIGMOID_BACKWARD(xp, g, x):
    """torch's log_sigmoid_backward, g * sigmoid(-x) as its kernel takes it: (x < 0 ? 1 - q : q) * g, q = z / (1 + z),
    z = exp(-|x|) (no overflow), the forward's buffer; in float32 for float16/bfloat16, z rounded to that dtype
    first as torch's buffer is."""
    if g.dtype is F16 or g.dtype is D.BF16:
        return half_in_float32(_log_sigmoid_bwd, xp, g, x, g.dtype)
    return _log_sigmoid_bwd(xp, g, x, None)


def _log_sigmoid_bwd(xp, g, x, buffer_dtype):
    if not x.ndim:      # (ufuncs give 0-d operands NumPy scalars: no out= for those)
        return _log_sigmoid_bwd(xp, g.reshape(1), x.reshape(1), buffer_dtype).reshape(())
    z = xp.abs(x)
    xp.negative(z, out=z)
    fast_exp(z, out=z) if xp is np else xp.exp(z, out=z)
    if buffer_dtype is not None:
        z = z.astype(buffer_dtype).astype(z.dtype)
    t = z + 1
    xp.divide(z, t, out=z)
    if xp is np:
        np.subtract(1, z, out=z, where=x < 0)
    else:       # (CuPy's ufuncs take no where=)
        z = xp.where(x < 0, 1 - z, z)
    z *= g
    return z.astype(g.dtype, copy=False)


fused_backward(LOG_SIGMOID, LOG_SIGMOID_BACKWARD, lambda ctx, g: (g * sigmoid(-ctx.saved_inputs[0]),))


def logsigmoid(input):
    """torch's F.logsigmoid: the log_sigmoid composite around log_sigmoid_forward, as its profile shows it."""
    if not _H.range_hooks:
        return dispatch(LOG_SIGMOID, input)
    return _H.op_region("log_sigmoid", (input,), dispatch, LOG_SIGMOID, input)


def _c_name(dtype):
    return {"i": "Long" if dtype.itemsize == 8 else "Int", "u": "Byte", "b": "Bool"}.get(dtype.kind, str(dtype))


def _elu_coefs(dtype, alpha, scale, input_scale):
    """torch's elu coefficients (negcoef = alpha * scale, poscoef = scale, negiptcoef = input_scale), in the
    array's float dtype as its kernel's opmath (alpha * scale rounded there once)."""
    t = dtype.type if dtype.kind == "f" and dtype.itemsize >= 4 else float
    return t(alpha) * t(scale), t(scale), t(input_scale)


@op("elu", save="i", function=True, method=True)
def ELU(xp, a, alpha=1.0, scale=1.0, input_scale=1.0):
    """torch's elu: a * scale where a > 0, else (exp(a * input_scale) - 1) * alpha * scale (selu and celu are its
    scale and input_scale). As max(a, 0) * scale + (exp(min(a, 0) * input_scale) - 1) * alpha * scale: where()'s
    values exactly (one of the two terms is 0 and the other the chosen branch), without its branch per element,
    which took several times the arithmetic."""
    if a.dtype.kind == "c":     # (the test inline: these kernels are per-layer hot)
        refuse_complex(a, "\"elu_cpu\" not implemented for '{dtype}'")
    if a.dtype is F16 or a.dtype is D.BF16:     # in float32, rounded once (torch's opmath)
        return half_in_float32(ELU.kernel, xp, a, alpha, scale, input_scale)
    neg, pos, ipt = _elu_coefs(a.dtype, alpha, scale, input_scale)
    if xp is np and a.dtype.kind == "f" and math.isfinite(alpha) and a.ndim:
        v = min0(np, a)
        if input_scale != 1:
            v *= ipt
        np.exp(v, out=v)
        v -= 1
        v *= neg
        p = max0(np, a)
        if scale != 1:
            p *= pos
        v += p
        return v.astype(a.dtype, copy=False)
    return xp.where(a > 0, a * pos, (xp.exp(a * ipt) - 1) * neg).astype(a.dtype, copy=False)


@op("elu_backward", save="i", node_name="EluBackwardBackward0")
def ELU_BACKWARD(xp, g, x, alpha=1.0, scale=1.0, input_scale=1.0, is_result=False):
    """torch's elu_backward: g * scale where x > 0, else g * input_scale * alpha * scale * exp(x * input_scale),
    or, x being the result (is_result: an in-place elu_'s node), g * input_scale * (x + alpha * scale)."""
    if g.dtype is F16 or g.dtype is D.BF16:     # in float32, rounded once (torch's opmath)
        return half_in_float32(ELU_BACKWARD.kernel, xp, g, x, alpha, scale, input_scale, is_result)
    neg, pos, ipt = _elu_coefs(g.dtype, alpha, scale, input_scale)
    if is_result:
        d = g * ipt * (x + neg)
    else:
        d = g * ipt * neg * xp.exp(x * ipt)
    return xp.where(x <= 0, d, g * pos).astype(g.dtype, copy=False)


def _elu_attrs(ctx):
    """The elu_backward attributes of an elu-family node: celu's are its alpha, 1, 1 / alpha (torch's)."""
    a = ctx.attrs
    alpha = a.get("alpha", 1.0)
    if ctx.op.name.startswith("celu"):
        attrs = {"alpha": alpha, "scale": 1.0, "input_scale": 1.0 / alpha}
    else:
        attrs = {"alpha": alpha, "scale": a.get("scale", 1.0), "input_scale": a.get("input_scale", 1.0)}
    return {**attrs, "is_result": "o" in ctx.op.save}


def _elu_composite(g, x, is_result, alpha, scale, input_scale):
    """elu_backward in tensorlib ops, differentiable (create_graph records it)."""
    if is_result:
        d = g * input_scale * (x + alpha * scale)
    else:
        d = g * (input_scale * alpha * scale) * exp(x * input_scale)
    return where(gt(x, 0), g * scale, d)


def _elu_backward(fwd: OpDef, result_node=None, result_kernel=None):
    """Wire an elu-family op's backward as torch's one elu_backward op (on the arrays in the engine's quiet and
    sink paths; the composite above under create_graph). With result_node, also the node of its in-place form,
    which saves the result (EluBackward1, CeluBackward1): an OpDef the in-place op names as inplace_of (its kernel
    result_kernel, else fwd's)."""
    def saved(ctx):
        return ctx.saved_output if "o" in ctx.op.save else ctx.saved_inputs[0]

    def grad(ctx, g):
        x = saved(ctx)
        attrs = _elu_attrs(ctx)
        if not STATE.grad_enabled and D.kind(x._data.dtype) == "f":
            return (dispatch(ELU_BACKWARD, g, x, **attrs),)
        return (_elu_composite(g, x, **attrs),)

    def arrays(ctx, g, call=quiet_op):
        x = ctx.saved_output_array() if "o" in ctx.op.save else ctx.inputs[0]
        if D.kind(getattr(x, "_data", x).dtype) != "f":
            return None
        return call(ELU_BACKWARD, g, x, **_elu_attrs(ctx))

    return _wire(fwd, grad, arrays, result_node, result_kernel)


refuse_double_backward(ELU_BACKWARD)
_ELU_RESULT = _elu_backward(ELU, "EluBackward1")


@op("elu_", inplace_of=_ELU_RESULT)
def ELU_(xp, a, alpha=1.0, scale=1.0, input_scale=1.0):
    a[...] = ELU.kernel(xp, a, alpha, scale, input_scale)


def _celu_k(xp, a, alpha, step):
    """celu's kernel: its elu (alpha, 1, 1 / alpha) inside, as the step `step` (elu, or elu_ in place) of a
    profile, as torch's at::celu calls at::elu."""
    if _H.range_hooks:
        return _H.op_step(step, ELU.kernel, xp, a, alpha, 1.0, 1.0 / alpha)
    return ELU.kernel(xp, a, alpha, 1.0, 1.0 / alpha)


@op("celu", save="i", node_name="CeluBackward0")
def CELU(xp, a, alpha=1.0):
    return _celu_k(xp, a, alpha, "elu")


def _celu_in_place_k(xp, a, alpha=1.0):
    return _celu_k(xp, a, alpha, "elu_")


_CELU_RESULT = _elu_backward(CELU, "CeluBackward1", _celu_in_place_k)


@op("celu_", inplace_of=_CELU_RESULT)
def CELU_(xp, a, alpha=1.0):
    a[...] = _celu_in_place_k(xp, a, alpha)


@op("softplus", save="i", amp="fp32", function=True, method=True)
def SOFTPLUS(xp, a, beta=1.0, threshold=20.0):
    z = a * beta
    sp = log1p_exp_neg_abs(xp, z)       # logaddexp(0, z), NumPy's own taking 10x the time on float32
    sp += max0(xp, z)
    if beta != 1:
        sp /= beta
    return xp.where(z > threshold, a, sp).astype(a.dtype, copy=False)


@SOFTPLUS.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    beta = ctx.attrs.get("beta", 1.0)
    th = ctx.attrs.get("threshold", 20.0)
    z = x * beta
    return (where(gt(z, th), g, g * sigmoid(z)),)


leaky_relu, elu, softplus = LEAKY_RELU.function, ELU.function, SOFTPLUS.function

# --- hardshrink and softshrink: torch's ops, the one mask backward op of each ------------------------------------

def _shrink_mask(xp, x, lambd):
    return (x >= -lambd) & (x <= lambd)


@op("hardshrink", save="i", function=True, method=True)
def HARDSHRINK(xp, a, lambd=0.5):
    """torch's hardshrink: 0 where -lambd <= a <= lambd, else a (NaN stays)."""
    if a.dtype.kind == "c":
        refuse_complex(a, "\"hardshrink_cpu\" not implemented for '{dtype}'")
    return xp.where(_shrink_mask(xp, a, lambd), 0, a).astype(a.dtype, copy=False)


@op("hardshrink_backward", save="i", node_name="HardshrinkBackwardBackward0")
def HARDSHRINK_BACKWARD(xp, g, x, lambd=0.5):
    """torch's hardshrink_backward: 0 where -lambd <= x <= lambd, else g."""
    return xp.where(_shrink_mask(xp, x, lambd), 0, g).astype(g.dtype, copy=False)


@op("softshrink", save="i")
def SOFTSHRINK(xp, a, lambd=0.5):
    """torch's softshrink: a - lambd above lambd, a + lambd below -lambd, 0 between (NaN stays)."""
    if a.dtype.kind == "c":
        refuse_complex(a, "\"softshrink_cpu\" not implemented for '{dtype}'")
    lam = a.dtype.type(lambd) if a.dtype.kind == "f" else lambd
    return xp.where(a > lam, a - lam, xp.where(a < -lam, a + lam, a * 0)).astype(a.dtype, copy=False)


@op("softshrink_backward", save="i", node_name="SoftshrinkBackwardBackward0")
def SOFTSHRINK_BACKWARD(xp, g, x, lambd=0.5):
    """torch's softshrink_backward: 0 where -lambd <= x <= lambd, else g."""
    return xp.where(_shrink_mask(xp, x, lambd), 0, g).astype(g.dtype, copy=False)


def _lambd(ctx):
    return {"lambd": ctx.attrs.get("lambd", 0.5)}


masked_backward(HARDSHRINK, HARDSHRINK_BACKWARD, _lambd)
masked_backward(SOFTSHRINK, SOFTSHRINK_BACKWARD, _lambd)
hardshrink = HARDSHRINK.function


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return dispatch(SOFTSHRINK, input, lambd=lambd)


# --- glu: torch's op and glu_backward ---------------------------------------------------------------------------

def _glu_halves(xp, x, dim):
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    n = x.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % x.ndim} is size {n}")
    a, b = xp.split(x, 2, axis=dim)
    return a, b


@op("glu", save="i")
def GLU(xp, x, dim=-1):
    """torch's glu: a * sigmoid(b), a and b the two halves of x along dim."""
    if D.kind(x.dtype) != "f":     # (bfloat16's NumPy kind is not "f")
        raise NotImplementedError(f"\"glu_cpu\" not implemented for '{D.scalar_name(x.dtype)}'")
    a, b = _glu_halves(xp, x, dim)
    s = _sigmoid_k(xp, b)
    s *= a
    return s


@op("glu_backward", save="i", node_name="GluBackwardBackward0")
def GLU_BACKWARD(xp, g, x, dim=-1):
    """torch's glu_backward: the gradient of x, (g * s) over its first half and (g * a * s * (1 - s)) over its
    second, s = sigmoid(b)."""
    a, b = _glu_halves(xp, x, dim)
    s = _sigmoid_k(xp, b)
    out = xp.empty(x.shape, dtype=g.dtype)
    ga, gb = xp.split(out, 2, axis=dim)
    xp.multiply(s, g, out=ga)
    xp.subtract(1, s, out=gb)
    gb *= s
    gb *= a
    gb *= g
    return out


def _glu_composite(ctx, g):
    """glu's gradient in tensorlib ops, differentiable (create_graph records it)."""
    x = ctx.saved_inputs[0]
    dim = ctx.attrs.get("dim", -1)
    a, b = x.chunk(2, dim)
    s = sigmoid(b)
    return (cat([g * s, g * a * s * (1 - s)], dim),)


fused_backward(GLU, GLU_BACKWARD, _glu_composite, lambda ctx: {"dim": ctx.attrs.get("dim", -1)})


def glu(input, dim=-1):
    return dispatch(GLU, input, dim=dim)


# --- mish and prelu: torch's ops and their one backward op -------------------------------------------------------

def _mish_k(xp, a):
    """torch's mish, x * tanh(softplus(x)) (softplus in its overflow-free form; float16 and bfloat16 in float32,
    rounded once, as torch's opmath)."""
    if a.dtype.kind == "c":
        refuse_complex(a, "\"mish_cpu\" not implemented for '{dtype}'")
    x = _f(xp, a)
    if x.dtype is F16 or x.dtype is D.BF16:
        return half_in_float32(_mish_k, xp, x)
    sp = log1p_exp_neg_abs(xp, x)
    sp += max0(xp, x)
    t = fast_tanh(sp, out=sp) if xp is np and sp.ndim else xp.tanh(sp)
    return xp.multiply(t, x, out=t) if isinstance(t, xp.ndarray) else t * x


MISH = op("mish", save="i")(_mish_k)
# F.mish(inplace=True)'s op (torch's aten::mish_, no Tensor method), MISH's kernel written back, its backward
MISH_ = register_op("mish_", inplace_unary_kernel(MISH), inplace_of=MISH)


@op("mish_backward", save="i", node_name="MishBackwardBackward0")
def MISH_BACKWARD(xp, g, x):
    """torch's mish_backward: g * (t + x * sigmoid(x) * (1 - t * t)), t = tanh(softplus(x))."""
    if g.dtype is F16 or g.dtype is D.BF16:
        return half_in_float32(MISH_BACKWARD.kernel, xp, g, x)
    sp = log1p_exp_neg_abs(xp, x)
    sp += max0(xp, x)
    t = xp.tanh(sp)
    d = 1 - t * t
    d *= _sigmoid_k(xp, x)
    d *= x
    d += t
    d *= g
    return d.astype(g.dtype, copy=False)


def _mish_composite(ctx, g):
    """torch's infinitely_differentiable_mish_backward, in tensorlib ops (create_graph records it)."""
    x = ctx.saved_inputs[0]
    t = tanh(softplus(x))
    return (g * (t + x * sigmoid(x) * (1 - t * t)),)


fused_backward(MISH, MISH_BACKWARD, _mish_composite)


@op("_prelu_kernel", save="i", node_name="PreluKernelBackward0")
def PRELU(xp, x, w):
    """torch's _prelu_kernel: x where x > 0, else w * x (w broadcast over x, as prelu reshaped it)."""
    if x.dtype.kind == "c":
        refuse_complex(x, "\"prelu_cpu\" not implemented for '{dtype}'")
    return xp.where(x > 0, x, w * x).astype(x.dtype, copy=False)


@op("_prelu_kernel_backward", save="i", node_name="PreluKernelBackwardBackward0")
def PRELU_BACKWARD(xp, g, x, w):
    """torch's _prelu_kernel_backward: (g where x > 0 else w * g, 0 where x > 0 else x * g summed to w's shape)."""
    pos = x > 0
    gx = xp.where(pos, g, w * g).astype(g.dtype, copy=False)
    gw = xp.where(pos, 0, x * g).astype(g.dtype, copy=False)
    lead, axes = sum_to_axes(gw.shape, w.shape)
    if lead or not axes:
        return gx, sum_to_array(xp, gw, w.shape)
    return gx, gw.sum(axis=axes, keepdims=True)      # (w's shape: an array of its own, which .grad takes as is)


def _prelu_grads(ctx, g):
    x, w = ctx.saved_inputs
    if not STATE.grad_enabled and D.kind(x._data.dtype) == "f":
        gx, gw = dispatch(PRELU_BACKWARD, g, x, w)
    else:       # (create_graph: differentiable, in tensorlib ops)
        pos = gt(x, 0)
        gx = where(pos, g, w * g)
        gw = sum_to(where(pos, 0, x * g), tuple(w.shape))
    return (gx if ctx.needs_input_grad[0] else None, gw if ctx.needs_input_grad[1] else None)


def _prelu_arrays(ctx, g, call=quiet_call):
    x, w = ctx.inputs
    grads = call(PRELU_BACKWARD, g, x, w) if D.kind(x._data.dtype) == "f" else None
    if grads is None:
        return None
    return tuple(tensor_of(a) if need else None for a, need in zip(grads, ctx.needs_input_grad))


PRELU.def_backward(_prelu_grads)
PRELU.quiet_backward = _prelu_arrays
PRELU.sink_backward = with_defaults(_prelu_arrays, call=run_recorded_call)
refuse_double_backward(PRELU_BACKWARD)


@torch_op("prelu")
def prelu(input, weight):
    """torch's prelu: the weight (a scalar or one per channel, dim 1) checked, viewed to broadcast over the input,
    and its _prelu_kernel."""
    if input.dtype != weight.dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got {D.scalar_name(input.dtype.np)} and "
                           f"{D.scalar_name(weight.dtype.np)}")
    n = weight.numel()
    if n != 1:
        if input.ndim == 0:
            raise RuntimeError("Not allow zero-dim input tensor.")
        channels = input.shape[1] if input.ndim > 1 else 1
        if channels != n:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{n} and channel size = {channels}.")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    if input.ndim != weight.ndim:
        shape = [1] * input.ndim
        if input.ndim > 1:
            shape[1] = n
        weight = weight.reshape(tuple(shape))
    return dispatch(PRELU, input, weight)

