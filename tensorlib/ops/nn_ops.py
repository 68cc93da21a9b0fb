"""Neural-network ops that torch fuses into one kernel (softmax, log_softmax, nll_loss, the
pointwise losses, dropout, embedding): each is one registered op so that a profile shows torch's names,
with its backward beside it written with tensorlib ops (so backward work is dispatched and profiled).

Normalisation ops live in `norm_ops.py`, convolution and pooling in `conv_ops.py` / `pool_ops.py`.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from .. import _dtype as D
from .. import _hooks as _H
from .. import random as R
from ..dispatch import STATE, autocast_args, run_recorded_op
from .._device import device_of
from .._graph import quiet_op, tensor_of
from .broadcast import QUIET, SINK, add_at, quiet_arrays, sum_to
from .._opdef import with_defaults
from ._define import F16, Tensor, half_in_float32, dispatch, np, op
from ._fastmath import exp as fast_exp, log_softmax_backward_rows, log_softmax_rows, nll_sum, softmax_rows
from ._rows import max0, row_index, row_max, row_sum, rows_on, softmax_backward_rows
from .activation import sigmoid, softplus
from .arithmetic import clamp, xlogy
from .comparison import where
from .unary_math import exp, log, log1p_exp_neg_abs
from .index import index_add
from .linalg import ADDMM, matmul
from ..dispatch import record_range
from .reduce import mean_of, sum as _sum
from .shape import T, broadcast_tensors, reshape, t, view
from .creation import zeros, zeros_steps
from .creation import as_tensor, tensor
from .index import getitem
from .linalg import c_type
from .misc import to, copy_, type_name

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average=None, reduce=None, reduction="mean"):
    """torch's deprecated size_average / reduce arguments, mapped to `reduction` as torch maps them."""
    if size_average is None and reduce is None:
        return reduction
    import warnings
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  UserWarning, stacklevel=3)
    return reduction


def check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


# --- linear ---------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    """y = x W^T + b as torch's composite aten::linear runs it: t(W) and addmm for a batch of rows (a
    contiguous batch of more dims viewed as rows and back), matmul (and add_) otherwise; so the trace
    and the autograd graph (AddmmBackward0, TBackward0) are torch's."""
    x, w = input._data, weight._data
    if x.shape[-1] != w.shape[-1]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({_rows(input)}x{input.shape[-1]} and "
                           f"{weight.shape[-1]}x{weight.shape[0]})")
    if x.dtype != w.dtype and STATE.autocast is None:
        if bias is None:    # torch's matmul path says it its way, its addmm path (with a bias) another
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {c_type(x.dtype)} != "
                               f"{c_type(w.dtype)}")
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {type_name(input)} and "
                           f"{type_name(weight)}")
    if not _H.range_hooks:      # nothing listens: no region to open (a training step's commonest composite)
        return _linear(input, weight, bias, x, w)
    return _H.op_region("linear", (input, weight, bias), _linear, input, weight, bias, x, w)


def _linear(input, weight, bias, x, w):
    wt = dispatch(T, weight) if w.ndim <= 2 else t(weight)     # t's own call only for its rank error
    if bias is None or x.ndim < 2:
        y = matmul(input, wt)
        return y if bias is None else y.add_(bias)
    if x.ndim == 2:
        return dispatch(ADDMM, bias, input, wt)
    if x.flags.c_contiguous:
        rows = dispatch(ADDMM, bias, view(input, -1, x.shape[-1]), wt)
        return view(rows, *x.shape[:-1], w.shape[0])
    return matmul(input, wt).add_(bias)


def _rows(t):
    n = 1
    for s in t.shape[:-1]:
        n *= s
    return n


# --- softmax / log_softmax ------------------------------------------------------------------------

def _softmax_k(xp, x, dim):
    if (x.dtype is D.BF16 or x.dtype is F16) and xp is np:     # (float32, rounded once: torch's opmath)
        out = half_in_float32(_softmax_k, xp, x, dim)
        if out is not None:
            return out
    if x.size == 0:         # nothing to normalise (NumPy's max has no identity to reduce over)
        return x.copy()
    if not x.flags.c_contiguous:    # torch's softmax of a transposed input is contiguous (NumPy's keeps its layout)
        x = x.copy(order="C")
    if xp is np and (dim == x.ndim - 1 or dim == -1):      # short rows: see _rows
        out = softmax_rows(x)           # (float32 rows: in C, one pass per statistic)
        if out is not None:
            return out
        e = fast_exp(x - row_max(x))
        e /= row_sum(e)
        return e
    m = x.max(axis=dim, keepdims=True)
    e = xp.exp(x - m)
    e /= e.sum(axis=dim, keepdims=True)
    return e


def _log_softmax_k(xp, x, dim):
    if (x.dtype is D.BF16 or x.dtype is F16) and xp is np:     # (float32, rounded once: torch's opmath)
        out = half_in_float32(_log_softmax_k, xp, x, dim)
        if out is not None:
            return out
    if x.size == 0:
        return x.copy()
    if not x.flags.c_contiguous:
        x = x.copy(order="C")
    if xp is np and (dim == x.ndim - 1 or dim == -1):      # short rows: see _rows
        out = log_softmax_rows(x)       # (long float32 rows: one C pass per statistic)
        if out is not None:
            return out
        s = x - row_max(x)
        lse = row_sum(fast_exp(s))
        s -= np.log(lse, out=lse)
        return s
    if xp is np:    # the ufuncs' reduce directly: the same sums, without ndarray.max/sum's Python wrappers
        s = x - np.maximum.reduce(x, dim, keepdims=True)
        return s - np.log(np.add.reduce(fast_exp(s), dim, keepdims=True))
    m = x.max(axis=dim, keepdims=True)
    s = x - m
    return s - xp.log(xp.exp(s).sum(axis=dim, keepdims=True))


SOFTMAX = op("softmax", save="o", amp="fp32", node_name="SoftmaxBackward0")(_softmax_k)
LOG_SOFTMAX = op("log_softmax", save="o", amp="fp32", node_name="LogSoftmaxBackward0")(_log_softmax_k)


@op("_softmax_backward_data", save="i", node_name="SoftmaxBackwardDataBackward0")
def SOFTMAX_BACKWARD(xp, g, y, dim):
    """torch's _softmax_backward_data, one op: y * (g - sum(g * y, dim))."""
    if (g.dtype is D.BF16 or g.dtype is F16) and xp is np:     # (float32, rounded once: torch's opmath)
        out = half_in_float32(SOFTMAX_BACKWARD.kernel, xp, g, y, dim)
        if out is not None:
            return out
    if xp is np and dim == g.ndim - 1 and g.ndim and g.dtype == y.dtype:
        return softmax_backward_rows(y, g, np.empty_like(g))      # (float32 rows in C; g itself untouched)
    d = g - (g * y).sum(axis=dim, keepdims=True)
    d *= y
    return d


@SOFTMAX_BACKWARD.def_backward
def _(ctx, gg):
    g, y = ctx.saved_inputs
    d = ctx.attrs["dim"]
    need = ctx.needs_input_grad
    gy = _sum(gg * y, d, keepdim=True)
    return (y * (gg - gy) if need[0] else None,
            gg * (g - _sum(g * y, d, keepdim=True)) - g * gy if need[1] else None)


@SOFTMAX.def_backward
def _(ctx, g):
    return (dispatch(SOFTMAX_BACKWARD, g, ctx.saved_output, dim=ctx.attrs["dim"]),)


SOFTMAX.quiet_backward = lambda ctx, g: quiet_op(SOFTMAX_BACKWARD, g, ctx.saved_output_array(), dim=ctx.attrs["dim"])
SOFTMAX.sink_backward = lambda ctx, g: run_recorded_op(SOFTMAX_BACKWARD, g, ctx.saved_output_array(),
                                                       dim=ctx.attrs["dim"])     # (OpDef.sink_backward)


@op("_log_softmax_backward_data", save="i", node_name="LogSoftmaxBackwardDataBackward0")
def LOG_SOFTMAX_BACKWARD(xp, g, y, dim):
    """torch's _log_softmax_backward_data, one op: g - exp(y) * sum(g, dim)."""
    if (g.dtype is D.BF16 or g.dtype is F16) and xp is np:
        out = half_in_float32(LOG_SOFTMAX_BACKWARD.kernel, xp, g, y, dim)
        if out is not None:
            return out
    if xp is np and g.ndim:         # (0-d: ufuncs give NumPy scalars, no out= for those)
        if dim == g.ndim - 1 or dim == -1:      # float32 rows: torch's kernel's steps in C (its values to the bit)
            out = log_softmax_backward_rows(g, y)
            if out is not None:
                return out
        e = fast_exp(y)
        e *= row_sum(g) if dim == g.ndim - 1 and g.ndim else np.add.reduce(g, dim, keepdims=True)
        return np.subtract(g, e, out=e)
    return g - xp.exp(y) * g.sum(axis=dim, keepdims=True)


@LOG_SOFTMAX_BACKWARD.def_backward
def _(ctx, gg):
    g, y = ctx.saved_inputs
    d = ctx.attrs["dim"]
    need = ctx.needs_input_grad
    e = exp(y)
    return (gg - _sum(gg * e, d, keepdim=True) if need[0] else None,
            -(gg * e * _sum(g, d, keepdim=True)) if need[1] else None)


@LOG_SOFTMAX.def_backward
def _(ctx, g):
    return (dispatch(LOG_SOFTMAX_BACKWARD, g, ctx.saved_output, dim=ctx.attrs["dim"]),)


LOG_SOFTMAX.quiet_backward = lambda ctx, g: quiet_op(LOG_SOFTMAX_BACKWARD, g, ctx.saved_output_array(),
                                                     dim=ctx.attrs["dim"])
LOG_SOFTMAX.sink_backward = lambda ctx, g: run_recorded_op(LOG_SOFTMAX_BACKWARD, g, ctx.saved_output_array(),
                                                           dim=ctx.attrs["dim"])


def _softmax_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1


def _dim(dim, t, name):
    nd = t.ndim
    if dim is None:
        import warnings
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                      "as an argument.", UserWarning, stacklevel=3)
        dim = _softmax_dim(nd)
    n = max(nd, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _cast(t, dtype):
    if dtype is None:
        return t
    return to(t, dtype=dtype)


def softmax(input, dim=None, dtype=None):
    input = _cast(input, dtype)
    dim = _dim(dim, input, "softmax")
    if _H.op_range_pair is None:        # no region hook: the region below would record nothing
        return dispatch(SOFTMAX, _floating(input, dim, "softmax"), dim=dim)
    # torch's composite around its _softmax kernel (one C call where the profiler is the only region hook)
    return _H.op_region("softmax", (input, dim, dtype), _softmax_op, SOFTMAX, input, dim, "softmax")


def log_softmax(input, dim=None, dtype=None):
    input = _cast(input, dtype)
    dim = _dim(dim, input, "log_softmax")
    if _H.op_range_pair is None:
        return dispatch(LOG_SOFTMAX, _floating(input, dim, "log_softmax"), dim=dim)
    # torch's composite around _log_softmax
    return _H.op_region("log_softmax", (input, dim, dtype), _softmax_op, LOG_SOFTMAX, input, dim, "log_softmax")


def _softmax_op(op, input, dim, name):
    """softmax's or log_softmax's kernel op dispatched, inside the composite's region (_H.op_region)."""
    return dispatch(op, _floating(input, dim, name), dim=dim)


def _floating(input, dim, name):
    """torch has no integer softmax kernel: its error names the kernel (the last-dim one or the general)."""
    if not input.is_floating_point():
        from .._dtype import scalar_name
        kernel = f"{name}_lastdim_kernel_impl" if dim == input.ndim - 1 or input.ndim == 0 else f"{name}_kernel_impl"
        raise NotImplementedError(f'"{kernel}" not implemented for \'{scalar_name(input._data.dtype)}\'')
    return input


# --- nll_loss -------------------------------------------------------------------------------------

def _nll_prepare(xp, logp, target, ignore_index):
    """Class dim moved last and flattened: (M, C) log-probs, (M,) targets, mask of counted rows."""
    if logp.ndim == 1:
        lp = logp[None, :]
        t = target.reshape(1)
    elif logp.ndim == 2:          # (N, C): already in place
        lp, t = logp, target
    else:
        lp = xp.moveaxis(logp, 1, -1).reshape(-1, logp.shape[1])
        t = target.reshape(-1)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0).astype(xp.int64, copy=False)
    return lp, safe, valid


def _nll_weights(xp, weight, safe, valid, dtype):
    """Each row's weight: its class's (or 1), 0 where ignored. Without class weights the mask itself, cast
    (one kernel on a GPU where ones and a product took two)."""
    if weight is None:
        return valid.astype(dtype)
    return (weight[safe] * valid).astype(dtype, copy=False)


def _nll_plain(xp, logp, target, weight, ignore_index):
    """The common case, (N, C) log-probs with no class weights and every target in [0, C) (so none is
    ignored, ignore_index lying outside that range): its rows, or None for the general path. One reduction
    checks both bounds: negative int64 targets are huge as uint64."""
    if xp is not np or weight is not None or logp.ndim != 2 or target.dtype != np.int64 or target.ndim != 1:
        return None
    C = logp.shape[1]
    n = target.shape[0]
    if n == 0 or 0 <= ignore_index < C or int(np.maximum.reduce(target.view(np.uint64))) >= C:
        return None
    return row_index(n)


@op("nll_loss", save="i", amp="fp32", node_name="NllLossBackward0")
def NLL_LOSS(xp, logp, target, weight=None, reduction="mean", ignore_index=-100):
    rows = _nll_plain(xp, logp, target, weight, ignore_index)
    if rows is not None:          # the same values as the general path below, with all weights 1
        picked = logp[rows, target]
        if reduction == "none":
            return np.negative(picked, out=picked)
        sums = nll_sum(picked)              # torch's cascade of partial sums (its loss to the bit)
        total = -np.add.reduce(picked) if sums is None else sums[0]    # (-(picked.sum()) = (-picked).sum())
        if reduction == "sum":
            return total
        return total / logp.dtype.type(rows.shape[0])
    lp, safe, valid = _nll_prepare(xp, logp, target, ignore_index)
    C = lp.shape[1]
    if xp is np:   # on a GPU this check would synchronise every step (torch asserts on the device instead)
        bad = (safe < 0) | (safe >= C)
        if bool(bad.any()):
            raise IndexError(f"Target {int(safe[bad][0])} is out of bounds.")
    # on a GPU each array operation below is a kernel launch (~10-20 us of host time each on an H200 machine):
    # the row numbers are cached, the weighted sum is one dot product, results are cast only if need be
    w = _nll_weights(xp, weight, safe, valid, lp.dtype)
    picked = lp[rows_on(xp, lp.shape[0], lp), safe]
    if reduction == "none":
        picked *= w
        return xp.negative(picked, out=picked).reshape(target.shape)
    if xp is np:        # torch's cascade of partial sums, skipping ignored rows (its loss to the bit)
        sums = nll_sum(picked, None, w) if weight is None else nll_sum(picked, w, valid.astype(lp.dtype))
        if sums is not None:
            if reduction == "sum":
                return sums[0]
            with np.errstate(divide="ignore", invalid="ignore"):     # (every row ignored: NaN, as torch's)
                return sums[0] / sums[1]
    total = (picked * w).sum() if xp is np else xp.dot(picked, w)
    if reduction == "sum":
        return -total
    return (-total / w.sum()).astype(lp.dtype, copy=False)


@op("nll_loss_backward", save="i", node_name="NllLossBackwardBackward0")
def NLL_LOSS_BACKWARD(xp, g, logp, target, weight=None, reduction="mean", ignore_index=-100):
    rows = _nll_plain(xp, logp, target, weight, ignore_index)
    if rows is not None:
        # the gradient's zeroed buffer (torch's grad_input.zero_(), in a profile), then the picked entries
        grad = _H.op_step("zero_", np.zeros, logp.shape, logp.dtype) if _H.range_hooks else \
            np.zeros(logp.shape, logp.dtype)
        if reduction == "none":
            grad[rows, target] = -g.reshape(-1)
        elif reduction == "sum":
            grad[rows, target] = -g
        else:
            grad[rows, target] = -(g / logp.dtype.type(rows.shape[0]))
        return grad
    lp, safe, valid = _nll_prepare(xp, logp, target, ignore_index)
    w = _nll_weights(xp, weight, safe, valid, lp.dtype)       # a new array: scaled in place below
    if reduction == "none":
        w *= g.reshape(-1)
    elif reduction == "sum":
        w *= g
    elif xp is np:          # no counted row (every target ignored): a zero gradient, as torch's (0 / 0 gave NaN)
        # the forward's total weight, summed as it was (nll_sum's second sum; its first, of w * w here, unused)
        sums = nll_sum(w, w, valid.astype(lp.dtype)) if weight is not None else None
        total = w.sum() if sums is None else sums[1]
        w *= g / total if total != 0 else 0.0
    else:
        w *= g / w.sum()
        xp.copyto(w, 0, where=~valid)
    grad = _H.op_step("zero_", xp.zeros_like, lp) if _H.range_hooks else xp.zeros_like(lp)
    grad[rows_on(xp, lp.shape[0], lp), safe] = xp.negative(w, out=w)
    if logp.ndim <= 2:
        return grad.reshape(logp.shape)
    moved = list(logp.shape)
    C = moved.pop(1)
    return xp.moveaxis(grad.reshape(moved + [C]), -1, 1)


@NLL_LOSS_BACKWARD.def_backward
def _(ctx, gg):
    """nll_loss_backward is linear in g and independent of the log-probabilities' values; its adjoint is
    nll_loss itself applied to gg (so double backward through cross_entropy works)."""
    _, _, target, weight = ctx.saved_inputs
    return (dispatch(NLL_LOSS, gg, target, weight, **ctx.attrs) if ctx.needs_input_grad[0] else None,
            None, None, None)


@NLL_LOSS.def_backward
def _(ctx, g):
    logp, target, weight = ctx.saved_inputs
    return (dispatch(NLL_LOSS_BACKWARD, g, logp, target, weight, **ctx.attrs), None, None)


NLL_LOSS.quiet_backward = lambda ctx, g: quiet_op(NLL_LOSS_BACKWARD, g, *ctx.saved_inputs, **ctx.attrs)
NLL_LOSS.sink_backward = lambda ctx, g: run_recorded_op(NLL_LOSS_BACKWARD, g, *ctx.saved_inputs, **ctx.attrs)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    if size_average is not None or reduce is not None or reduction not in _REDUCTIONS:
        reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    x, t = input._data, target._data
    # torch's checks, in torch's order: batch size, target rank, target shape, target dtype
    if x.ndim >= 2 and t.ndim >= 1 and x.shape[0] != t.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if x.ndim == 1 and t.ndim == 1 and t.shape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {t.shape[0]}")
    if x.ndim <= 2 and t.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if x.ndim > 2 and tuple(t.shape) != (x.shape[0],) + tuple(x.shape[2:]):
        raise RuntimeError(f"Expected target size {[x.shape[0], *x.shape[2:]]}, got {list(t.shape)}")
    if t.dtype not in (np.int64, np.uint8):
        from .._dtype import scalar_name
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {scalar_name(t.dtype)}")
    # torch's entry for any number of dims (the kernel reshapes), then its composite around nll_loss_forward
    if not _H.range_hooks:      # nothing listens: no regions to open
        return dispatch(NLL_LOSS, input, target, weight, reduction=reduction, ignore_index=ignore_index)
    args = (input, target, weight)
    return _H.op_region("nll_loss_nd", args, _H.op_region, "nll_loss", args, _nll_dispatch, input, target, weight,
                        reduction, ignore_index)


def _nll_dispatch(input, target, weight, reduction, ignore_index):
    """NLL_LOSS dispatched, inside nll_loss's regions (_H.op_region)."""
    return dispatch(NLL_LOSS, input, target, weight, reduction=reduction, ignore_index=ignore_index)


# --- pointwise losses -----------------------------------------------------------------------------

def _reduce_k(xp, loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return mean_of(loss)


def _reduced_grad(ctx, g, shape):
    """The gradient of the elementwise loss map before reduction, broadcast to the input shape."""
    r = ctx.attrs.get("reduction", "mean")
    if r == "none":
        return g
    n = 1
    for s in shape:
        n *= s
    return (g / n if r == "mean" else g).expand(shape)


def _pointwise_loss(name, node_name, loss_k, grad_op=None, dtarget=None):
    """An op `name(input, target, reduction=..., **kw)` of the elementwise loss `loss_k(xp, x, t, **kw)`. With
    `grad_op`, torch's `<name>_backward(grad, input, target, reduction, ...)` op, its backward: that op for the
    input, and for the target the same op with the two swapped (torch's derivatives.yaml) or, where given,
    `dtarget(x, t, attrs)` (the elementwise derivative, written with tensorlib ops) times the reduction's gradient;
    quiet and sink formulas that run the one op (_loss_grad_arrays). Without grad_op the caller defines it."""
    o = op(name, save="i", amp="fp32", node_name=node_name)(
        lambda xp, x, t, reduction="mean", **kw: _reduce_k(xp, loss_k(xp, *_float_pair(x, t), **kw), reduction))
    if grad_op is None:
        return o

    @o.def_backward
    def _(ctx, g):
        x, t = ctx.saved_inputs
        need = ctx.needs_input_grad
        gx = sum_to(dispatch(grad_op, g, x, t, **ctx.attrs), ctx.in_meta[0][0]) if need[0] else None
        gt = None
        if need[1]:
            gt = dispatch(grad_op, g, t, x, **ctx.attrs) if dtarget is None else \
                _reduced_grad(ctx, g, _bshape(ctx)) * dtarget(x, t, ctx.attrs)
            gt = sum_to(gt, ctx.in_meta[1][0])
        return gx, gt
    o.quiet_backward = with_defaults(_loss_grad_arrays, grad_op=grad_op)
    o.sink_backward = with_defaults(_loss_grad_arrays, grad_op=grad_op, sink=True)
    return o


def _loss_grad_arrays(ctx, g, grad_op, sink=False):
    """A pointwise loss's gradient for its input alone (the target needs none) as its `<loss>_backward` op on
    the arrays, called directly (the quiet path) or run as the recorded op (OpDef.sink_backward); None where the
    input was broadcast (the dispatched formula sums the gradient back) or an operand is not on NumPy."""
    need = ctx.needs_input_grad
    if not need[0] or need[1]:
        return None
    if tuple(ctx.in_meta[0][0]) != _bshape(ctx):
        return None
    x, t = ctx.saved_inputs
    return (run_recorded_op if sink else quiet_op)(grad_op, g, x, t, **ctx.attrs)


def _float_pair(x, t):
    """An integer or bool target (or input) takes the other's float dtype, as torch's type promotion gives
    (mse_loss(float32, int64) is float32; NumPy alone would compute in float64)."""
    if x.dtype.kind == "f" and t.dtype.kind in "biu":
        return x, t.astype(x.dtype)
    if t.dtype.kind == "f" and x.dtype.kind in "biu":
        return x.astype(t.dtype), t
    return x, t


def _bshape(ctx):
    a, b = ctx.in_meta[0][0], ctx.in_meta[1][0]
    return tuple(a) if a == b else tuple(np.broadcast_shapes(a, b))


def _smooth_l1_k(xp, x, t, beta=1.0):
    d = xp.abs(x - t)
    if beta == 0:
        return d
    c = d < beta
    q = 0.5 * d         # torch's 0.5 * z * z / beta, in its order
    q *= d
    q /= beta
    if xp is np and q.dtype == d.dtype and q.dtype.kind == "f" and d.size >= _SELECT_MIN:
        d -= 0.5 * beta
        return _select(c, q, d)
    return xp.where(c, q, d - 0.5 * beta)


_SELECT_MIN = 512     # below this many elements where's branches cost less than _select's five calls


def _select(cond, a, b):
    """np.where(cond, a, b) for float arrays of one dtype and shape, bit for bit, without a branch per element:
    b ^ ((a ^ b) & mask) on the bits. NumPy's where on an unpredictable condition took 4.5x this (131K float32,
    373 against 83 us): a mispredicted branch per element."""
    it = np.dtype(f"i{a.itemsize}")
    m = cond.astype(it)
    np.negative(m, out=m)           # 0 or all ones
    bi = b.view(it)
    out = np.bitwise_xor(a.view(it), bi)
    out &= m
    out ^= bi
    return out.view(a.dtype)


_EPS_LOG = -100.0  # torch clamps log(p) at -100 in binary_cross_entropy


def _bce_k(xp, p, t):
    if xp is np and p.size and not bool(np.logical_and(p >= 0, p <= 1).all()):      # a NaN too, as torch's CPU check
        raise RuntimeError("all elements of input should be between 0 and 1")
    lp = xp.maximum(xp.log(p), _EPS_LOG)
    l1p = xp.maximum(xp.log1p(-p), _EPS_LOG)
    return -(t * lp + (1 - t) * l1p)


def _bce_logits_k(xp, z, t, pos_weight=None, weight=None):
    # log(1 + exp(-|z|)) + max(z, 0) - z t, weighted as torch does when pos_weight is given; times the weight
    log_sig_neg = log1p_exp_neg_abs(xp, z)      # -log(sigmoid(z)) = logaddexp(0, -z)
    log_sig_neg += max0(xp, -z)
    if pos_weight is None:
        out = (1 - t) * z + log_sig_neg
    else:
        lw = 1 + (pos_weight - 1) * t
        out = (1 - t) * z + lw * log_sig_neg
    return out if weight is None else out * weight


def _pw(attrs, like, name="pos_weight"):
    """A weight of the op's attributes as a tensor: its array wrapped (no op recorded), a number made one."""
    v = attrs[name]
    return as_tensor(v, device=like.device) if isinstance(v, (int, float)) else tensor_of(v)


def _bce_logits_dt(z, t, a):
    lsn = softplus(-z)   # -log(sigmoid(z))
    return -z if a.get("pos_weight") is None else -z + (_pw(a, z) - 1) * lsn


def _bce_dt(p, t, a):
    return clamp(log(1 - p), min=_EPS_LOG) - clamp(log(p), min=_EPS_LOG)





# --- torch's <loss>_backward ops: one kernel for the input's gradient, torch's formula in its order ---------

def _loss_norm(x, t, reduction, scale=1.0):
    """torch's norm of a pointwise loss's gradient: scale / numel for a mean (its operands are broadcast first),
    scale otherwise, as the gradient's dtype (torch's norm.to<scalar_t>())."""
    n = x.size if x.shape == t.shape else math.prod(np.broadcast_shapes(x.shape, t.shape))
    return scale / n if reduction == "mean" else scale


def _grad_into_zeros(name, fn, xp, g, x, t, *args):
    """torch's `<loss>_backward(grad, input, target, ...)` in a profile: at::zeros_like (empty_like > empty,
    zero_), then its out variant, an op of the same name, computing into that buffer: fn(xp, g, x, t, *args,
    out). Without a profiler fn makes its own array (no buffer to zero)."""
    if not _H.range_hooks:
        return fn(xp, g, x, t, *args, None)
    step = _H.op_step
    shape = x.shape if x.shape == t.shape else np.broadcast_shapes(x.shape, t.shape)
    out = step("zeros_like", zeros_steps, xp, shape, np.promote_types(x.dtype, t.dtype))
    return step(name, fn, xp, g, x, t, *args, out)


def _mse_grad(xp, g, x, t, norm, out):
    """norm * (x - t) * g (torch's mse_backward_cpu_kernel)."""
    d = xp.subtract(x, t, out=out)
    d *= d.dtype.type(norm)
    d *= g
    return d


def _smooth_l1_grad(xp, g, x, t, norm, beta, out):
    """norm * (x - t) / beta, or its sign where |x - t| >= beta, times g (torch's vectorized
    smooth_l1_backward_cpu_kernel): the ratio clipped to [-1, 1] is that (NaN stays NaN)."""
    d = xp.subtract(x, t, out=out)
    dt = d.dtype.type
    d /= dt(beta)
    xp.clip(d, dt(-1), dt(1), out=d)
    d *= dt(norm)
    d *= g
    return d


def _huber_grad(xp, g, x, t, norm, delta, out):
    """norm * (x - t) clipped to [-delta, delta] times g (torch's huber_backward_cpu_kernel)."""
    d = xp.subtract(x, t, out=out)
    dt = d.dtype.type
    xp.clip(d, -dt(delta), dt(delta), out=d)
    d *= dt(norm)
    d *= g
    return d


@op("mse_loss_backward", save="i", node_name="MseLossBackwardBackward0")
def MSE_LOSS_BACKWARD(xp, g, x, t, reduction="mean"):
    x, t = _float_pair(x, t)
    return _grad_into_zeros("mse_loss_backward", _mse_grad, xp, g, x, t, _loss_norm(x, t, reduction, 2.0))


@op("smooth_l1_loss_backward", save="i", node_name="SmoothL1LossBackwardBackward0")
def SMOOTH_L1_LOSS_BACKWARD(xp, g, x, t, reduction="mean", beta=1.0):
    x, t = _float_pair(x, t)
    return _grad_into_zeros("smooth_l1_loss_backward", _smooth_l1_grad, xp, g, x, t, _loss_norm(x, t, reduction),
                            beta)


@op("huber_loss_backward", save="i", node_name="HuberLossBackwardBackward0")
def HUBER_LOSS_BACKWARD(xp, g, x, t, reduction="mean", delta=1.0):
    x, t = _float_pair(x, t)
    return _grad_into_zeros("huber_loss_backward", _huber_grad, xp, g, x, t, _loss_norm(x, t, reduction), delta)


_BCE_EPS = 1e-12


@op("binary_cross_entropy_backward", save="i", node_name="BinaryCrossEntropyBackwardBackward0")
def BCE_BACKWARD(xp, g, p, t, reduction="mean"):
    """g * (p - t) / max((1 - p) * p, 1e-12), then divided by numel for a mean (torch's
    binary_cross_entropy_backward_out_cpu; in a profile its empty_like and the squeezes of its four operands)."""
    p, t = _float_pair(p, t)
    shape = p.shape if p.shape == t.shape else np.broadcast_shapes(p.shape, t.shape)
    out = None
    if _H.range_hooks:
        step = _H.op_step
        out = step("empty_like", step, "empty_strided", xp.empty, shape, np.promote_types(p.dtype, t.dtype))
        for _ in range(4):
            step("squeeze", step, "as_strided", out.view)
    d = xp.subtract(p, t, out=out)
    d *= g
    dt = d.dtype.type
    q = xp.subtract(dt(1), p)
    q *= p
    d /= xp.maximum(q, dt(_BCE_EPS), out=q)
    if reduction == "mean":
        n = dt(math.prod(shape))
        if _H.range_hooks:
            _H.op_step("div_", _divide_into, xp, d, n)
        else:
            d /= n
    return d


def _divide_into(xp, d, n):
    return xp.divide(d, n, out=d)


def _loss_double_backward(ctx, gg, dlocal, dslope):
    """The gradients of a `<loss>_backward(g, x, t)` (its value: norm * local(x - t) * g): for g, gg * norm *
    local summed to g's shape; for x, gg * g * norm * slope, where `dlocal(d, attrs)` and `dslope(d, attrs)` are
    local and its derivative at d = x - t; for t, minus that."""
    g, x, t = ctx.saved_inputs
    need = ctx.needs_input_grad
    d = x - t
    scale = _grad_scale(ctx)
    gg_g = gx = gt = None
    if need[0]:
        gg_g = sum_to(gg * dlocal(d, ctx.attrs) * scale, ctx.in_meta[0][0])
    if need[1] or need[2]:
        h = gg * g * dslope(d, ctx.attrs) * scale
        gx = sum_to(h, ctx.in_meta[1][0]) if need[1] else None
        gt = sum_to(-h, ctx.in_meta[2][0]) if need[2] else None
    return gg_g, gx, gt


def _grad_scale(ctx):
    """1 / numel of a `<loss>_backward(g, x, t)` node's broadcast operands for a mean, else 1."""
    if ctx.attrs.get("reduction", "mean") != "mean":
        return 1.0
    return 1.0 / math.prod(np.broadcast_shapes(*(tuple(m[0]) for m in ctx.in_meta)))


MSE_LOSS_BACKWARD.def_backward(lambda ctx, gg: _loss_double_backward(
    ctx, gg, lambda d, a: d * 2.0, lambda d, a: 2.0))
SMOOTH_L1_LOSS_BACKWARD.def_backward(lambda ctx, gg: _loss_double_backward(
    ctx, gg, lambda d, a: clamp(d / a.get("beta", 1.0), -1.0, 1.0),
    lambda d, a: where(d.abs() < a.get("beta", 1.0), 1.0 / a.get("beta", 1.0), 0.0)))
HUBER_LOSS_BACKWARD.def_backward(lambda ctx, gg: _loss_double_backward(
    ctx, gg, lambda d, a: clamp(d, -a.get("delta", 1.0), a.get("delta", 1.0)),
    lambda d, a: where(d.abs() < a.get("delta", 1.0), 1.0, 0.0)))


@BCE_BACKWARD.def_backward
def _(ctx, gg):
    """torch's binary_cross_entropy_double_backward for p and t's derivative of g (p - t) / ((1 - p) p)."""
    g, p, t = ctx.saved_inputs
    need = ctx.needs_input_grad
    scale = _grad_scale(ctx)
    den = clamp((1 - p) * p, min=_BCE_EPS)
    gg_g = sum_to(gg * (p - t) / den * scale, ctx.in_meta[0][0]) if need[0] else None
    gp = gt = None
    if need[1]:
        eps = _BCE_EPS
        gp = sum_to((p * p - 2 * p * t + t) / ((p + eps) ** 2 * (1 - p + eps) ** 2) * (gg * g) * scale,
                    ctx.in_meta[1][0])
    if need[2]:
        gt = sum_to(-(gg * g) / den * scale, ctx.in_meta[2][0])
    return gg_g, gp, gt


def _huber_k(xp, x, t, delta=1.0):
    """torch's huber_kernel: 0.5 z z where z = |x - t| < delta, else delta (z - 0.5 delta), in the dtype."""
    d = xp.abs(x - t)
    dt = d.dtype.type
    dv = dt(delta)
    c = d < dv
    q = dt(0.5) * d
    q *= d
    d -= dt(0.5) * dv
    d *= dv
    if xp is np and q.dtype == d.dtype and q.dtype.kind == "f" and d.size >= _SELECT_MIN:
        return _select(c, q, d)
    return xp.where(c, q, d)


MSE_LOSS = _pointwise_loss("mse_loss", "MseLossBackward0", lambda xp, x, t: (x - t) ** 2, grad_op=MSE_LOSS_BACKWARD)
SMOOTH_L1_LOSS = _pointwise_loss("smooth_l1_loss", "SmoothL1LossBackward0", _smooth_l1_k,
                                 grad_op=SMOOTH_L1_LOSS_BACKWARD)
HUBER_LOSS = _pointwise_loss("huber_loss", "HuberLossBackward0", _huber_k, grad_op=HUBER_LOSS_BACKWARD)
BCE = _pointwise_loss("binary_cross_entropy", "BinaryCrossEntropyBackward0", _bce_k, grad_op=BCE_BACKWARD,
                      dtarget=_bce_dt)
BCE_LOGITS = _pointwise_loss("binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0",
                             _bce_logits_k)


@BCE_LOGITS.def_backward
def _(ctx, g):
    """torch's binary_cross_entropy_with_logits_backward for the input, op for op and in its order (in place
    where grad mode is off, as torch's): sigmoid(z) - t (with pos_weight p: (p t + 1 - t) sigmoid(z) - p t), times
    g, times the weight, over numel for a mean. The target's: the derivative times the reduction's gradient."""
    z, t = ctx.saved_inputs
    a = ctx.attrs
    need = ctx.needs_input_grad
    w = _pw(a, z, "weight") if a.get("weight") is not None else None
    gz = gt = None
    if need[0]:
        # torch's in-place steps on its own temporaries where grad mode is off, out of place for a double backward
        step = _inplace_step if not STATE.grad_enabled else getattr
        if a.get("pos_weight") is not None:
            pt = _pw(a, z) * t
            gi = step(pt + 1, "sub")(t)
            gi = step(gi, "mul")(sigmoid(z))
            gi = step(gi, "sub")(pt)
        else:
            gi = step(sigmoid(z), "sub")(t)
        gi = step(gi, "mul")(g)
        if w is not None:
            gi = step(gi, "mul")(w)
        if a.get("reduction", "mean") == "mean":
            gi = step(gi, "div")(z.numel())
        gz = gi
    if need[1]:
        gt = _reduced_grad(ctx, g, _bshape(ctx)) * _bce_logits_dt(z, t, a)
        if w is not None:
            gt = gt * w
    return gz, gt


def _inplace_step(t, name):
    """t's in-place method `name_` (sub_, mul_, div_): getattr's twin for a formula's in-place steps."""
    return getattr(t, name + "_")


def _shape_warn(input, target, name):
    if tuple(input.shape) != tuple(target.shape):
        import warnings
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=3)


def profiled_broadcast(input, target):
    """torch's F.mse_loss, l1_loss, smooth_l1_loss and huber_loss broadcast their operands first, in Python: a
    top-level `aten::broadcast_tensors` before the loss's op in its profile. The same here, only while a profiler
    listens (the loss's kernel broadcasts itself), so that a loss costs nothing more otherwise."""
    if _H.op_range_pair is None:
        return input, target
    if isinstance(input, Tensor) and isinstance(target, Tensor) and input._data.shape == target._data.shape:
        args = (input, target)          # nothing to expand: the region alone (tuple(args) is args)
        return _H.op_region("broadcast_tensors", args, tuple, args)
    return broadcast_tensors(input, target)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    _shape_warn(input, target, "mse_loss")
    input, target = profiled_broadcast(input, target)
    if weight is not None:      # torch 2.13's weighted form, in Python: a mean divides by the weights' sum
        return _weighted_sum_form(input, target, weight, reduction, lambda d: d.pow(2))
    return dispatch(MSE_LOSS, input, target, reduction=check_reduction(reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    _shape_warn(input, target, "l1_loss")
    input, target = profiled_broadcast(input, target)
    if weight is not None:
        return _weighted_sum_form(input, target, weight, reduction, lambda d: d.abs())
    return _l1(input, target, check_reduction(reduction))


def _l1(input, target, reduction):
    """torch's l1_loss, a composite: its profile's aten::l1_loss over sub, abs and the reduction, and autograd's
    SubBackward0, AbsBackward0 and MeanBackward0 / SumBackward0 nodes."""
    return _H.op_region("l1_loss", (input, target), _l1_ops, input, target, reduction)


_FP32 = SimpleNamespace(amp="fp32", listarg=False)     # (autocast_args' policy of an op: the fp32 list's)


def _l1_ops(input, target, reduction):
    input, target = _fp32_operands(input, target)       # (autocast's fp32 list has l1_loss)
    return _apply_reduction((input - target).abs(), reduction)


def _apply_reduction(loss, reduction, mean=None):
    """torch's apply_loss_reduction on a loss tensor: as it is, its sum, or its mean (`mean(loss)` where given:
    a weighted mse_loss's sum over the weights' sum); torch's ValueError for another reduction."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _sum(loss)
    if reduction == "mean":
        return loss.mean() if mean is None else mean(loss)
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def _fp32_operands(input, target):
    """A composite loss's operands cast as autocast casts the ops of its fp32 list (inside the loss's region)."""
    return autocast_args(_FP32, (input, target)) if STATE.autocast is not None else (input, target)


def _check_weight(input, weight):
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")


def _weighted_sum_form(input, target, weight, reduction, elementwise):
    """torch's weighted mse_loss / l1_loss: the elementwise loss of the (broadcast) operands times the weights; a
    mean is the sum over the weights' sum."""
    _check_weight(input, weight)
    return _apply_reduction(elementwise(input - target) * weight, reduction, lambda v: _sum(v) / _sum(weight))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _shape_warn(input, target, "smooth_l1_loss")
    input, target = profiled_broadcast(input, target)
    if beta == 0:       # torch's F.smooth_l1_loss is l1_loss there
        return _l1(input, target, check_reduction(reduction))
    return dispatch(SMOOTH_L1_LOSS, input, target, reduction=check_reduction(reduction), beta=float(beta))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _shape_warn(input, target, "huber_loss")
    input, target = profiled_broadcast(input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    if weight is None:
        return dispatch(HUBER_LOSS, input, target, reduction=check_reduction(reduction), delta=float(delta))
    _check_weight(input, weight)
    return _apply_reduction(dispatch(HUBER_LOSS, input, target, reduction="none", delta=float(delta)) * weight,
                            reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if weight is not None:
        return _apply_reduction(dispatch(BCE, input, target, reduction="none") * weight, reduction)
    return dispatch(BCE, input, target, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    attrs = {}
    if pos_weight is not None:      # (torch's weights are not differentiable: the op's attributes here)
        attrs["pos_weight"] = pos_weight._data if isinstance(pos_weight, Tensor) else pos_weight
    if weight is not None:
        attrs["weight"] = weight._data if isinstance(weight, Tensor) else weight
    return dispatch(BCE_LOGITS, input, target, reduction=reduction, **attrs)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction == "batchmean":
        out = kl_div_op(input, target, "sum", log_target)
        return out / input.shape[0] if input.ndim > 0 else out
    if reduction == "mean":
        import warnings
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    return kl_div_op(input, target, check_reduction(reduction), log_target)


def kl_div_op(input, target, reduction, log_target):
    """torch.kl_div, a composite: its profile's aten::kl_div over xlogy(t, t) - t * x (exp(t) * (t - x) for a
    log target) and the reduction, and autograd's nodes for those ops (SubBackward0, MulBackward0, ...)."""
    return _H.op_region("kl_div", (input, target), _kl_ops, input, target, reduction, log_target)


def _kl_ops(input, target, reduction, log_target):
    input, target = _fp32_operands(input, target)       # (and kl_div)
    if log_target:
        d = target - input
        out = exp(target) * d
    else:
        m = target * input
        out = xlogy(target, target) - m
    return _apply_reduction(out, reduction)


# --- dropout --------------------------------------------------------------------------------------

@op("dropout", save="o", nondiff_outputs=(1,), node_name="MulBackward0")
def DROPOUT(xp, x, p=0.5, channels=False, generator=None):
    """Returns (output, scaled mask); the mask is kept for backward. torch's dropout on the CPU: the input times
    a scaled keep-mask, so its graph node is the product's, MulBackward0; while a profiler listens, the three
    steps are in the ranges of the ops torch's CPU dropout runs for them: the keep-mask draw (bernoulli_), its
    scaling by 1 / (1 - p) (div_) and the product (mul). On CUDA torch runs the fused native_dropout
    (NATIVE_DROPOUT below, node NativeDropoutBackward0)."""
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if channels else x.shape
    if xp is np and (x.dtype == np.float32 or x.dtype == np.float64):
        # torch's CPU steps on one buffer: the noise like the input (empty_like), the keep draw into it
        # (bernoulli_), its scaling in place (div_), the product (mul)
        if _H.range_hooks:
            noise = _H.op_step("empty_like", _H.op_step, "empty_strided", np.empty, shape, x.dtype)
            _H.op_step("bernoulli_", R.keep_into, noise, p, generator)
            _H.op_step("div_", _scale_into, noise, p)
            return _H.op_step("mul", _mul, x, noise), noise
        noise = _scale_into(R.keep_into(np.empty(shape, x.dtype), p, generator), p)
        return x * noise, noise
    if _H.range_hooks:
        keep = _H.op_step("bernoulli_", _dropout_keep, x, p, shape, generator)
        mask = _H.op_step("div_", _dropout_scale, x, p, keep)
        return _H.op_step("mul", _mul, x, mask), mask
    mask = _dropout_scale(x, p, _dropout_keep(x, p, shape, generator))
    return x * mask, mask


def _dropout_keep(x, p, shape, generator):
    return R.sample("uniform", shape, x.dtype if x.dtype.kind == "f" else np.float32, device_of(x),
                    generator=generator) >= p


def _dropout_scale(x, p, keep):
    mask = keep.astype(x.dtype) * (1.0 / (1.0 - p) if p < 1 else 0.0)
    return mask.astype(x.dtype, copy=False)


def _scale_into(noise, p):
    noise *= 1.0 / (1.0 - p) if p < 1 else 0.0
    return noise


def _mul(a, b):
    return a * b


@DROPOUT.def_backward
def _(ctx, g, gmask=None):
    _, mask = ctx.saved_output
    return (g * mask,)


def _dropout_bwd_arrays(ctx, g, gmask=None, k=QUIET):
    """DROPOUT's formula on NumPy arrays, g * mask by mul's ufunc: called directly (the engine's quiet path)
    or, k=SINK, run as the recorded mul (OpDef.sink_backward). None where the product would promote."""
    p = quiet_arrays(g._data, ctx.saved_output[1]._data)
    return None if p is None else (tensor_of(k.mul(*p)),)


DROPOUT.quiet_backward = _dropout_bwd_arrays
DROPOUT.sink_backward = with_defaults(_dropout_bwd_arrays, k=SINK)


@op("native_dropout", save="o", nondiff_outputs=(1,), node_name="NativeDropoutBackward0")
def NATIVE_DROPOUT(xp, x, p=0.5, channels=False, generator=None):
    """torch's fused CUDA dropout (one kernel, so no steps of its own in a profile): (output, scaled mask)."""
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if channels else x.shape
    mask = _dropout_scale(x, p, _dropout_keep(x, p, shape, generator))
    return x * mask, mask


NATIVE_DROPOUT.def_backward(DROPOUT.backward)


def dropout(input, p=0.5, training=True, inplace=False, *, channels=False):
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:      # torch's aten::dropout (feature_dropout) returns its input, recorded all the same
        return _H.op_region("feature_dropout" if channels else "dropout", (input, float(p), bool(training)),
                            _H.itself, input) if _H.range_hooks else input
    if input.is_cuda:       # torch's aten::dropout around the fused native_dropout
        with record_range("dropout", "op"):
            out, _ = dispatch(NATIVE_DROPOUT, input, p=float(p), channels=channels)
    else:
        out, _ = dispatch(DROPOUT, input, p=float(p), channels=channels)
    if inplace:
        from ..autograd.grad_mode import no_grad
        if not input.requires_grad:
            with no_grad():
                copy_(input, out)
            return input
    return out


# --- embedding ------------------------------------------------------------------------------------

@op("embedding", save="i", node_name="EmbeddingBackward0")
def EMBEDDING(xp, weight, indices, padding_idx=None):
    n = weight.shape[0]
    if xp is np and indices.size and (int(indices.max()) >= n or int(indices.min()) < -n):
        raise IndexError("index out of range in self")
    return weight[indices]


@op("embedding_dense_backward", node_name="EmbeddingDenseBackwardBackward0")
def EMBEDDING_DENSE_BACKWARD(xp, g, indices, num_weights=0, padding_idx=None):
    """torch's kernel as one op, for a backward that is not itself differentiated (create_graph=False): the
    rows of `g` summed into a zero (num_weights, dim) gradient at their indices, in order (add_at: the same
    sums as the composite's index_add); rows looked up at padding_idx add nothing."""
    dim = g.shape[-1]
    gw = xp.zeros((num_weights, dim), dtype=g.dtype)
    flat = indices.reshape(-1)
    src = g.reshape(-1, dim)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, src = flat[keep], src[keep]
    add_at(xp, gw, flat, src)
    return gw


@EMBEDDING.def_backward
def _(ctx, g):
    weight, indices = ctx.saved_inputs
    num, dim = ctx.in_meta[0][0]
    if not STATE.grad_enabled:
        with record_range("embedding_backward", "op", (g, indices)):     # torch's composite around its kernel
            pad = ctx.attrs.get("padding_idx")
            return dispatch(EMBEDDING_DENSE_BACKWARD, g, indices, num_weights=num, padding_idx=pad), None
    flat = reshape(indices, (-1,))
    gw = index_add(zeros(num, dim, dtype=g.dtype, device=g.device), 0, flat, reshape(g, (-1, dim)))
    pad = ctx.attrs.get("padding_idx")
    if pad is not None:
        keep = np.ones((num, 1), dtype=g._data.dtype)
        keep[pad] = 0
        gw = gw * tensor(keep, device=g.device)
    return gw, None


def _embedding_bwd_arrays(ctx, g, call=quiet_op):
    """embedding_dense_backward's kernel on NumPy arrays: called directly (the engine's quiet path) or, with
    call=run_recorded_op, run as a recorded op (OpDef.sink_backward: _embedding_bwd_sink)."""
    gw = call(EMBEDDING_DENSE_BACKWARD, g, ctx.inputs[1], num_weights=ctx.in_meta[0][0][0],
              padding_idx=ctx.attrs.get("padding_idx"))
    return None if gw is None else (gw[0], None)


def _embedding_bwd_sink(ctx, g):
    """The dispatched formula's records without its dispatch (OpDef.sink_backward): the kernel's op inside
    torch's embedding_backward region. None when g or the indices are not on NumPy."""
    indices = ctx.inputs[1]
    if type(g._data) is not np.ndarray or type(indices._data) is not np.ndarray:
        return None
    return _H.op_region("embedding_backward", (g, indices), _embedding_bwd_arrays, ctx, g, run_recorded_op)


EMBEDDING.quiet_backward = _embedding_bwd_arrays
EMBEDDING.sink_backward = _embedding_bwd_sink


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported by tensorlib (dense gradients "
                                  "only); leave sparse=False")
    if input._data.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got tensorlib.{type_name(input)}Tensor instead (while checking arguments "
                           f"for embedding)")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    if max_norm is not None:   # torch renormalises the looked-up rows of the weight in place, outside autograd
        w = weight._data
        if type(w) is np.ndarray:
            xp = np
        else:
            from .._device import cupy
            xp = cupy()
        rows = xp.unique(input._data.reshape(-1))
        norms = (xp.abs(w[rows]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
        w[rows] *= scale[:, None]
    out = dispatch(EMBEDDING, weight, input, padding_idx=padding_idx)
    if scale_grad_by_freq and out.requires_grad:
        scale_by_inverse_frequency(out, input, weight.shape[0])
    return out


def scale_by_inverse_frequency(out, indices, num):
    """torch's scale_grad_by_freq: the gradient reaching each looked-up row is divided by how often its
    index occurs in `indices` (a hook on the output, so the lookup op itself is unchanged)."""
    idx = indices._data.reshape(-1)
    if type(idx) is np.ndarray:
        xp = np
    else:
        from .._device import cupy
        xp = cupy()
    counts = xp.bincount(xp.where(idx < 0, idx + num, idx), minlength=num)
    inv = (1.0 / counts[idx]).reshape(tuple(indices.shape) + (1,) * (out.ndim - indices.ndim))
    inv_t = tensor(inv.astype(out._data.dtype), device=out.device)
    out.register_hook(lambda g: g * inv_t)


__all__ = ["linear", "softmax", "log_softmax", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "dropout", "embedding",
           "check_reduction"]


# --- pad ------------------------------------------------------------------------------------------

_NP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_widths(ndim, pad):
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return widths


@op("pad", node_name="ConstantPadNdBackward0")
def PAD(xp, x, pad=(), mode="constant", value=0.0):
    widths = _pad_widths(x.ndim, pad)
    neg = any(a < 0 or b < 0 for a, b in widths)
    if neg:   # negative padding crops
        sl = tuple(slice(-a if a < 0 else 0, x.shape[i] + b if b < 0 else None) for i, (a, b) in enumerate(widths))
        x = x[sl]
        widths = [(max(a, 0), max(b, 0)) for a, b in widths]
    if mode == "constant":
        return xp.pad(x, widths, mode="constant", constant_values=value)
    return xp.pad(x, widths, mode=_NP_MODES[mode])


def _pad_node_name(node):
    """torch's node of each padding mode: constant_pad_nd's, reflection_pad{1,2,3}d's, replication_pad{1,2,3}d's;
    circular padding copies into slices of a new tensor (CopySlices)."""
    mode = node.attrs.get("mode", "constant")
    if mode == "constant":
        return "ConstantPadNdBackward0"
    if mode == "circular":
        return "tensorlib::autograd::CopySlices"      # (the profile names it torch::autograd::CopySlices)
    k = len(node.attrs.get("pad", ())) // 2
    return f"{'Reflection' if mode == 'reflect' else 'Replication'}Pad{k}DBackward0"


PAD.node_name_of = _pad_node_name


@PAD.def_backward
def _(ctx, g):
    shape = ctx.in_meta[0][0]
    a = ctx.attrs
    mode = a.get("mode", "constant")
    widths = _pad_widths(len(shape), a["pad"])
    if mode == "constant" and all(p >= 0 for w in widths for p in w):
        return (getitem(g, tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, shape))),)
    # general: pad the index map of the input the same way, then sum gradients back by index
    n = 1
    for s in shape:
        n *= s
    idx = np.arange(n, dtype=np.int64).reshape(shape)
    pidx = PAD.kernel(np, idx, pad=a["pad"], mode=mode, value=-1)
    flat_idx = pidx.reshape(-1)
    keep = flat_idx >= 0
    gi = reshape(g, (-1,))
    if not keep.all():
        gi = getitem(gi, tensor(np.nonzero(keep)[0], device=g.device))
        flat_idx = flat_idx[keep]
    out = index_add(zeros(n, dtype=g.dtype, device=g.device), 0, tensor(flat_idx, device=g.device), gi)
    return (reshape(out, shape),)


def pad(input, pad, mode="constant", value=None):
    if len(pad) % 2 != 0:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode not in _NP_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode == "reflect":
        for i in range(len(pad) // 2):
            size = input.shape[input.ndim - 1 - i]
            if pad[2 * i] >= size or pad[2 * i + 1] >= size:
                raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input "
                                   f"dimension, but got: padding ({pad[2 * i]}, {pad[2 * i + 1]}) at dimension "
                                   f"{input.ndim - 1 - i} of input {list(input.shape)}")
    return dispatch(PAD, input, pad=tuple(int(p) for p in pad), mode=mode, value=0.0 if value is None else value)


__all__ += ["pad"]
