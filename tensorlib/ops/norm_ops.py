"""Normalisation ops (layer_norm, batch_norm, group_norm), one op each as in torch's profiles.

Each kernel returns (output, mean, rstd); the statistics are non-differentiable outputs kept for the
backward, which is written with tensorlib ops through one shared formula (`_normalized_grad`).
"""
from __future__ import annotations

import math
from functools import partial

from .. import _dtype as D
from ..dispatch import STATE, record_range, run_recorded
from .._graph import tensor_of
from .._opdef import with_defaults
from ._define import F16, half_in_float32, dispatch, np, op
from .unary_math import rsqrt
from .reduce import mean as _mean, mean_of, sum as _sum
from .shape import reshape
from ._fastmath import (batch_norm as _fast_batch_norm, batch_norm_backward as _fast_batch_norm_backward,
                        layer_norm as _fast_layer_norm, layer_norm_backward as _fast_layer_norm_backward)
from ._rows import BLAS_DTYPES, as_rows, mean_vector, ones_vector


def _normalized_grad(gxhat, xhat, rstd, dims):
    """d/dx of xhat = (x - mean) * rstd over `dims`, applied to the incoming gradient d/d xhat."""
    m1 = _mean(gxhat, dims, keepdim=True)
    m2 = _mean(gxhat * xhat, dims, keepdim=True)
    return (gxhat - m1 - xhat * m2) * rstd


def _live_stats(x, mu, rstd, dims, eps):
    """The saved statistics, or (when the backward itself is being differentiated: create_graph) the
    same statistics recomputed from x with tensorlib ops, so that second derivatives see their
    dependence on x."""
    if not STATE.grad_enabled:
        return mu, rstd
    mu = _mean(x, dims, keepdim=True)
    d = x - mu
    return mu, rsqrt(_mean(d * d, dims, keepdim=True) + eps)


_vecdot = getattr(np, "vecdot", None)     # NumPy >= 2.0


def _trailing(x, axes):
    """How many trailing dims `axes` (ascending) are, or 0 when they are not x's last dims."""
    k = len(axes)
    return k if k and axes[0] == x.ndim - k and axes[-1] == x.ndim - 1 else 0


def _sum_k(xp, a, axes):
    """a.sum(axis=axes): the same reduction, without ndarray.sum's Python wrapper on NumPy."""
    return np.add.reduce(a, axis=axes) if xp is np else a.sum(axis=axes)


def _centered_stats(xp, x, axes, eps):
    """(x - mean, mean, rstd) over `axes`: the variance is the mean of the squared centered input."""
    k = _trailing(x, axes) if xp is np else 0
    r = as_rows(x, k) if k else None
    if r is not None:       # over trailing dims: the same formulas on rows, the means by BLAS (see _rows)
        rows, ones = r
        inv = mean_vector(ones.shape[0], x.dtype)
        mu = rows.dot(inv)
        d = rows - mu[:, None]
        if _vecdot is not None:     # each row's sum of squares without the squares' array (a pass less)
            var = _vecdot(d, d)
            var *= inv[0]
        else:
            var = (d * d).dot(inv)
        var += eps
        np.sqrt(var, out=var)
        stat = x.shape[:x.ndim - k] + (1,) * k
        return d.reshape(x.shape), mu.reshape(stat), np.reciprocal(var, out=var).reshape(stat)
    mu = mean_of(x, axes, True)
    d = x - mu
    var = mean_of(d * d, axes, True)
    return d, mu, (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)


def _stats(xp, x, axes, eps):
    _, mu, rstd = _centered_stats(xp, x, axes, eps)
    return mu, rstd


def _affine(y, w, b, shape=None, dtype=None):
    """The normalized input scaled by the weight and shifted by the bias, each optional (reshaped to
    broadcast over the channel dim when `shape` is given). With `dtype` (the input's), y is the kernel's own
    buffer: scaled and shifted in place where w and b share its dtype (the same values), else in new arrays
    cast to dtype."""
    w = w if w is None or shape is None else w.reshape(shape)
    b = b if b is None or shape is None else b.reshape(shape)
    if dtype is not None and (w is None or w.dtype == y.dtype) and (b is None or b.dtype == y.dtype):
        if w is not None:
            y *= w
        if b is not None:
            y += b
        return y.astype(dtype, copy=False)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y if dtype is None else y.astype(dtype, copy=False)


def _affine_need(ctx, w, b, iw=1):
    """(input, weight, bias) gradients wanted, as the norms' backward ops take `need`: the weight's and
    bias's inputs at iw and iw + 1 (batch_norm's at 3 and 4, after its running statistics)."""
    need = ctx.needs_input_grad
    return bool(need[0]), w is not None and bool(need[iw]), b is not None and bool(need[iw + 1])


# --- layer_norm -----------------------------------------------------------------------------------

@op("layer_norm", save="io", amp="fp32", nondiff_outputs=(1, 2), node_name="NativeLayerNormBackward0")
def LAYER_NORM(xp, x, w=None, b=None, normalized_shape=(), eps=1e-5):
    if (x.dtype is D.BF16 or x.dtype is F16) and xp is np:     # (float32, rounded once: torch's opmath)
        out = half_in_float32(LAYER_NORM.kernel, xp, x, w, b, normalized_shape=normalized_shape, eps=eps)
        if out is not None:
            return out
    if xp is np:        # a small array by tensorlib._cmath's loops over rows (_fastmath.layer_norm), where they apply
        out = _fast_layer_norm(x, w, b, len(normalized_shape), eps)
        if out is not None:
            return out
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    d, mu, rstd = _centered_stats(xp, x, axes, eps)
    d *= rstd
    return _affine(d, w, b, dtype=x.dtype), mu, rstd


@op("native_layer_norm_backward", node_name="NativeLayerNormBackwardBackward0")
def LAYER_NORM_BACKWARD(xp, g, x, mu, rstd, w=None, k=1, need=(True, True, True)):
    """torch's kernel as one op, for a backward that is not itself differentiated (create_graph=False):
    the formulas of the composite below, operation for operation, on the arrays (fewer temporaries);
    a gradient not needed comes back as a 0-d zero."""
    if (g.dtype is D.BF16 or g.dtype is F16) and xp is np:
        out = half_in_float32(LAYER_NORM_BACKWARD.kernel, xp, g, x, mu, rstd, w, k=k, need=need)
        if out is not None:
            return out
    if xp is np:        # as the forward: the C loops where they apply
        out = _fast_layer_norm_backward(g, x, mu, rstd, w, k, need)
        if out is not None:
            return out
    r = as_rows(x, k) if xp is np and g.dtype == x.dtype else None
    if r is not None:
        return _layer_norm_backward_rows(g, x, mu, rstd, w, r, k, need)
    dims = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    xhat = x - mu
    xhat *= rstd
    gx = gw = gb = xp.zeros((), dtype=g.dtype)
    if need[0]:
        gxhat = g * w if w is not None else g
        m1 = mean_of(gxhat, dims, True)
        p = gxhat * xhat
        m2 = mean_of(p, dims, True)
        gx = gxhat - m1
        gx -= xp.multiply(xhat, m2, out=p)
        gx *= rstd
    if need[1]:
        gw = _sum_k(xp, g * xhat, lead)
    if need[2]:
        gb = _sum_k(xp, g, lead)
    return gx, gw, gb


def _layer_norm_backward_rows(g, x, mu, rstd, w, r, k, need):
    """LAYER_NORM_BACKWARD's formulas on the rows of NumPy arrays (`_rows.as_rows`), the sums by BLAS."""
    rows, ones = r
    n = ones.shape[0]
    m = rows.shape[0]
    g2 = g.reshape(m, n)
    rstd2 = rstd.reshape(m, 1)
    xhat = rows - mu.reshape(m, 1)
    xhat *= rstd2
    gx = gw = gb = np.zeros((), dtype=g.dtype)
    if need[0]:
        gxhat = g2 * w.reshape(n) if w is not None else g2
        inv = mean_vector(n, x.dtype)
        m1 = gxhat.dot(inv)
        p = gxhat * xhat
        m2 = p.dot(inv)
        gx = gxhat - m1[:, None]
        gx -= np.multiply(xhat, m2[:, None], out=p)
        gx *= rstd2
        gx = gx.reshape(x.shape)
    if need[1] or need[2]:
        ones_m = ones_vector(m, x.dtype)
        tail = x.shape[x.ndim - k:]
        if need[1]:
            gw = np.dot(ones_m, g2 * xhat).reshape(tail)
        if need[2]:
            gb = np.dot(ones_m, g2).reshape(tail)
    return gx, gw, gb


@LAYER_NORM.def_backward
def _(ctx, g, *_):
    if STATE.grad_enabled:
        return _layer_norm_backward(ctx, g)
    x, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    need = _affine_need(ctx, w, b)
    gx, gw, gb = dispatch(LAYER_NORM_BACKWARD, g, x, mu, rstd, w, k=len(ctx.attrs["normalized_shape"]), need=need)
    return gx if need[0] else None, gw if need[1] else None, gb if need[2] else None


def _layer_norm_bwd_arrays(ctx, g, *_, run=None):
    """LAYER_NORM_BACKWARD's kernel on NumPy arrays: called directly (the engine's quiet path,
    OpDef.quiet_backward) or, run=dispatch.run_recorded, run as the recorded op (OpDef.sink_backward; the
    statistics' gradients are None on every path). None for the other cases (then the dispatched backward
    runs)."""
    if g is None or type(g._data) is not np.ndarray:
        return None
    x, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    need = _affine_need(ctx, w, b)
    args = (g._data, x._data, mu._data, rstd._data, None if w is None else w._data)
    k = len(ctx.attrs["normalized_shape"])
    grads = LAYER_NORM_BACKWARD.kernel(np, *args, k=k, need=need) if run is None else \
        run(LAYER_NORM_BACKWARD, *args, k=k, need=need)
    return tuple(tensor_of(gr) if n else None for gr, n in zip(grads, need))


LAYER_NORM.quiet_backward = _layer_norm_bwd_arrays
LAYER_NORM.sink_backward = with_defaults(_layer_norm_bwd_arrays, run=run_recorded)


@record_range("native_layer_norm_backward", "op")    # torch's kernel, here in tensorlib ops
def _layer_norm_backward(ctx, g):
    """The backward in tensorlib ops, differentiable (a create_graph backward records it)."""
    x, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    k = len(ctx.attrs["normalized_shape"])
    dims = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    mu, rstd = _live_stats(x, mu, rstd, dims, ctx.attrs["eps"])
    xhat = (x - mu) * rstd
    need = ctx.needs_input_grad
    gx = _normalized_grad(g * w if w is not None else g, xhat, rstd, dims) if need[0] else None
    gw = _sum(g * xhat, lead) if w is not None and need[1] else None
    gb = _sum(g, lead) if b is not None and need[2] else None
    return gx, gw, gb


@record_range("layer_norm", "op")       # torch's composite around native_layer_norm (the LAYER_NORM op)
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size{input.shape}")
    return dispatch(LAYER_NORM, input, weight, bias, normalized_shape=normalized_shape, eps=float(eps))[0]


# --- batch_norm -----------------------------------------------------------------------------------

def _chan_shape(ndim, c):
    return (1, c) + (1,) * (ndim - 2)


@op("batch_norm", save="io", nondiff_outputs=(1, 2), node_name="NativeBatchNormBackward0")
def BATCH_NORM(xp, x, running_mean=None, running_var=None, w=None, b=None, training=True, momentum=0.1, eps=1e-5):
    """In training, normalises by the batch statistics and updates the running ones in place (as torch's
    kernel does); in eval, normalises by the running statistics."""
    if xp is np and _channels_fast(x, running_mean, running_var, w, b):
        out = _fast_batch_norm(x, w, b, running_mean, running_var, training, momentum, eps)     # the C loops
        return out if out is not None else _bn_forward_channels(x, running_mean, running_var, w, b, training,
                                                                momentum, eps)
    axes = (0,) + tuple(range(2, x.ndim))
    cs = _chan_shape(x.ndim, x.shape[1])
    if training:
        mu, rstd = _stats(xp, x, axes, eps)
        if running_mean is not None:
            n = x.size // x.shape[1]
            var = ((x - mu) ** 2).sum(axis=axes) / max(n - 1, 1)
            running_mean *= 1 - momentum
            running_mean += momentum * mu.reshape(-1)
            running_var *= 1 - momentum
            running_var += (momentum * var).astype(running_var.dtype, copy=False)
    else:
        mu = running_mean.reshape(cs).astype(x.dtype, copy=False)
        rstd = (1.0 / xp.sqrt(running_var.reshape(cs) + eps)).astype(x.dtype, copy=False)
    y = (x - mu) * rstd
    return _affine(y, w, b, cs, dtype=x.dtype), mu, rstd


def _channels_fast(x, *others):
    """Whether batch_norm's NumPy kernels on channels (_bn_forward_channels, _bn_backward_channels) take x
    and the per-channel arrays: a non-empty C-contiguous float32/float64 x, the others None or vectors of
    its dtype."""
    if type(x) is not np.ndarray or x.dtype not in BLAS_DTYPES or not x.size or not x.flags.c_contiguous:
        return False
    for a in others:
        if a is not None and (type(a) is not np.ndarray or a.dtype != x.dtype or a.ndim != 1):
            return False
    return True


def _channel_sums(a3, ones_n, ones_m):
    """Per-channel sums of a (N, C, M) C-contiguous array as two BLAS products: the images summed (ones_n @
    (N, C*M)), then each channel's M positions ((C, M) @ ones_m); a ones vector None skips its product (N or M
    is 1)."""
    n, c, m = a3.shape
    t = a3.reshape(c * m) if ones_n is None else ones_n.dot(a3.reshape(n, c * m))
    return t if ones_m is None else t.reshape(c, m).dot(ones_m)


def _channel_ones(x):
    """(x as (N, C, M), ones over N or None where N is 1, ones over M or None where M is 1)."""
    n, c = x.shape[0], x.shape[1]
    m = x.size // (n * c)
    return (x.reshape(n, c, m), ones_vector(n, x.dtype) if n > 1 else None,
            ones_vector(m, x.dtype) if m > 1 else None)


def _bn_forward_channels(x, running_mean, running_var, w, b, training, momentum, eps):
    """BATCH_NORM's kernel on NumPy (_channels_fast): the per-channel sums by BLAS, the input centred once
    (its squares summed from a buffer that then takes the output), the weight and the standard deviation
    folded into one scale: (x - mean) * (w * rstd) + b. Statistics as the general kernel's: biased variance
    for the output, unbiased for the running variance."""
    x3, ones_n, ones_m = _channel_ones(x)
    c = x3.shape[1]
    cs = _chan_shape(x.ndim, c)
    if training:
        n = x.size // c
        mu = _channel_sums(x3, ones_n, ones_m)
        mu /= n
        d = x3 - mu[:, None]
        y = np.multiply(d, d)
        var = _channel_sums(y, ones_n, ones_m)      # the sum of squares, n times the biased variance
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mu
            running_var *= 1 - momentum
            running_var += var * (momentum / max(n - 1, 1))
        var /= n
        var += eps
        rstd = np.sqrt(var, out=var)
        np.reciprocal(rstd, out=rstd)
    else:
        mu = running_mean.copy()        # (a saved output: not a view of the buffer training updates)
        d = x3 - mu[:, None]
        y = d
        rstd = running_var + eps
        np.sqrt(rstd, out=rstd)
        np.reciprocal(rstd, out=rstd)
    scale = rstd if w is None else rstd * w
    np.multiply(d, scale[:, None], out=y)
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape), mu.reshape(cs), rstd.reshape(cs)


@op("native_batch_norm_backward", node_name="NativeBatchNormBackwardBackward0")
def BATCH_NORM_BACKWARD(xp, g, x, w=None, mu=None, rstd=None, training=True, need=(True, True, True)):
    """torch's kernel as one op, for a backward that is not itself differentiated (create_graph=False): mu
    and rstd are the forward's saved statistics (the batch's in training, the running ones' in eval). With
    gxhat = g * w, the formula of _normalized_grad in the per-channel sums of g and g * xhat:
    gx = w * rstd * (g - sum(g) / n - xhat * sum(g * xhat) / n) in training, g * w * rstd in eval; a gradient
    not needed comes back as a 0-d zero."""
    if xp is np and g.dtype == x.dtype and _channels_fast(x, w):
        out = _fast_batch_norm_backward(g, x, mu, rstd, w, training, need)      # the C loops
        if out is not None:
            return out
        if g.flags.c_contiguous:
            return _bn_backward_channels(g, x, w, mu, rstd, training, need)
    c = x.shape[1]
    cs = _chan_shape(x.ndim, c)
    dims = (0,) + tuple(range(2, x.ndim))
    xhat = x - mu
    xhat *= rstd
    gx = gw = gb = xp.zeros((), dtype=g.dtype)
    sg = _sum_k(xp, g, dims) if need[2] or (need[0] and training) else None
    sgx = _sum_k(xp, g * xhat, dims) if need[1] or (need[0] and training) else None
    if need[0]:
        scale = rstd if w is None else rstd * w.reshape(cs)
        if training:
            n = x.size // c
            gx = g - (sg / n).reshape(cs)
            gx -= xhat * (sgx / n).reshape(cs)
            gx *= scale
        else:
            gx = g * scale
    if need[1]:
        gw = sgx
    if need[2]:
        gb = sg
    return gx.astype(g.dtype, copy=False), gw, gb


def _bn_backward_channels(g, x, w, mu, rstd, training, need):
    """BATCH_NORM_BACKWARD's formula on NumPy (_channels_fast), the per-channel sums by BLAS."""
    x3, ones_n, ones_m = _channel_ones(x)
    c = x3.shape[1]
    g3 = g.reshape(x3.shape)
    mu, rstd = mu.reshape(c, 1), rstd.reshape(c, 1)
    xhat = x3 - mu
    xhat *= rstd
    gx = gw = gb = np.zeros((), dtype=g.dtype)
    sg = _channel_sums(g3, ones_n, ones_m) if need[2] or (need[0] and training) else None
    p = None
    if need[1] or (need[0] and training):
        p = np.multiply(g3, xhat)
        sgx = _channel_sums(p, ones_n, ones_m)
        gw = sgx
    if need[0]:
        scale = rstd if w is None else rstd * w[:, None]
        if training:
            n = x.size // c
            gx = g3 - sg[:, None] / n
            gx -= np.multiply(xhat, sgx[:, None] / n, out=p)
            gx *= scale
        else:
            gx = g3 * scale
        gx = gx.reshape(x.shape)
    if need[2]:
        gb = sg
    return gx, gw, gb


def _bn_backward_args(ctx, g):
    """torch's native_batch_norm_backward(grad_out, input, weight, running_mean, running_var, save_mean,
    save_invstd, train, eps, output_mask): the arguments its region records (Input Dims/type)."""
    x, rm, rv, w, _b = ctx.inputs
    mu, rstd = ctx.saved_outputs_from(1)
    return (g, x, w, rm, rv, mu, rstd, bool(ctx.attrs.get("training", True)), ctx.attrs.get("eps", 1e-5),
            [bool(n) for n in ctx.needs_input_grad[:1] + ctx.needs_input_grad[3:]])


@BATCH_NORM.def_backward
def _(ctx, g, *_):
    if STATE.grad_enabled:      # differentiated itself (create_graph): torch's kernel in tensorlib ops
        with record_range("native_batch_norm_backward", "op", _bn_backward_args(ctx, g)):
            return _bn_backward(ctx, g)
    x, _rm, _rv, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    need = _affine_need(ctx, w, b, 3)
    gx, gw, gb = dispatch(BATCH_NORM_BACKWARD, g, x, w, mu, rstd, training=ctx.attrs.get("training", True),
                          need=need)
    return gx if need[0] else None, None, None, gw if need[1] else None, gb if need[2] else None


def _bn_backward(ctx, g):
    x, rm, rv, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    nd = x.ndim
    dims = (0,) + tuple(range(2, nd))
    cs = _chan_shape(nd, x.shape[1])
    need = ctx.needs_input_grad
    if ctx.attrs.get("training", True):
        mu, rstd = _live_stats(x, mu, rstd, dims, ctx.attrs.get("eps", 1e-5))
    xhat = (x - mu) * rstd
    gx = None
    if need[0]:
        gxhat = g * reshape(w, cs) if w is not None else g
        gx = _normalized_grad(gxhat, xhat, rstd, dims) if ctx.attrs.get("training", True) else gxhat * rstd
    gw = _sum(g * xhat, dims) if w is not None and need[3] else None
    gb = _sum(g, dims) if b is not None and need[4] else None
    return gx, None, None, gw, gb


def _batch_norm_bwd_arrays(ctx, g, *_, run=None):
    """BATCH_NORM_BACKWARD's kernel on NumPy arrays: called directly (the engine's quiet path,
    OpDef.quiet_backward) or, run=dispatch.run_recorded, run as the recorded op (OpDef.sink_backward). None
    for the other cases (then the dispatched backward runs)."""
    if g is None or type(g._data) is not np.ndarray:
        return None
    x, _rm, _rv, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    need = _affine_need(ctx, w, b, 3)
    args = (g._data, x._data, None if w is None else w._data, mu._data, rstd._data)
    training = ctx.attrs.get("training", True)
    grads = BATCH_NORM_BACKWARD.kernel(np, *args, training=training, need=need) if run is None else \
        run(BATCH_NORM_BACKWARD, *args, training=training, need=need)
    gx, gw, gb = (tensor_of(gr) if n else None for gr, n in zip(grads, need))
    return gx, None, None, gw, gb


BATCH_NORM.quiet_backward = _batch_norm_bwd_arrays
BATCH_NORM.sink_backward = with_defaults(_batch_norm_bwd_arrays, run=run_recorded)


@record_range("batch_norm", "op")       # torch's composite around native_batch_norm (the BATCH_NORM op)
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    if input.ndim < 2:
        raise ValueError(f"expected 2D or more input (got {input.ndim}D input)")
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
    elif running_mean is None:
        raise RuntimeError("running_mean must be defined in evaluation mode")
    return dispatch(BATCH_NORM, input, running_mean, running_var, weight, bias, training=bool(training),
                    momentum=float(momentum if momentum is not None else 0.0), eps=float(eps))[0]


# --- group_norm -----------------------------------------------------------------------------------

@op("group_norm", save="io", amp="fp32", nondiff_outputs=(1, 2), node_name="NativeGroupNormBackward0")
def GROUP_NORM(xp, x, w=None, b=None, num_groups=1, eps=1e-5):
    N, C = x.shape[:2]
    xg = x.reshape(N, num_groups, (C // num_groups) * math.prod(x.shape[2:]))     # (-1 is ambiguous for N = 0)
    d, mu, rstd = _centered_stats(xp, xg, (2,), eps)
    if xp is np and w is not None and w.dtype == d.dtype and (b is None or b.dtype == d.dtype) and d.size:
        # the weight folded into each (image, channel)'s scale rstd * w: one pass over the centred buffer, not two
        G, Cg = num_groups, C // num_groups
        d3 = d.reshape(N, C, -1)
        d3 *= (rstd * w.reshape(1, G, Cg)).reshape(N, C, 1)
        if b is not None:
            d3 += b.reshape(1, C, 1)
        return d.reshape(x.shape).astype(x.dtype, copy=False), mu, rstd
    d *= rstd           # (x - mean) * rstd in the centred buffer, as layer_norm
    y = d.reshape(x.shape)
    return _affine(y, w, b, _chan_shape(x.ndim, C), dtype=x.dtype), mu, rstd


@op("native_group_norm_backward", node_name="NativeGroupNormBackwardBackward0")
def GROUP_NORM_BACKWARD(xp, g, x, mu, rstd, w=None, num_groups=1, need=(True, True, True)):
    """torch's kernel as one op, for a backward that is not itself differentiated (create_graph=False): with
    xhat = (x - mean) * rstd per (image, group) and gxhat = g * w, gx = rstd * (gxhat - mean(gxhat) - xhat *
    mean(gxhat * xhat)) over each group, gw and gb the per-channel sums of g * xhat and g; a gradient not needed
    comes back as a 0-d zero. On NumPy the group means and channel sums are BLAS products."""
    N, C = x.shape[:2]
    G = num_groups
    M = math.prod(x.shape[2:])
    fast = xp is np and g.dtype == x.dtype and x.dtype in BLAS_DTYPES and x.size
    if fast:
        return _group_norm_backward_sums(g, x, mu, rstd, w, G, need)
    x4, g4 = x.reshape(N, G, C // G, M), g.reshape(N, G, C // G, M)
    xhat = x4 - mu.reshape(N, G, 1, 1)
    xhat *= rstd.reshape(N, G, 1, 1)
    gx = gw = gb = xp.zeros((), dtype=g.dtype)
    if need[0]:
        gxhat = g4 * w.reshape(1, G, C // G, 1) if w is not None else g4
        p = gxhat * xhat
        if fast:
            inv = mean_vector(x.size // (N * G), x.dtype)
            m1 = gxhat.reshape(N * G, -1).dot(inv).reshape(N, G, 1, 1)
            m2 = p.reshape(N * G, -1).dot(inv).reshape(N, G, 1, 1)
        else:
            m1, m2 = mean_of(gxhat, (2, 3), True), mean_of(p, (2, 3), True)
        gx = gxhat - m1
        gx -= xp.multiply(xhat, m2, out=p)
        gx *= rstd.reshape(N, G, 1, 1)
        gx = gx.reshape(x.shape)
    if need[1] or need[2]:
        if fast:
            _, ones_n, ones_m = _channel_ones(x)
            sums = partial(_channel_sums, ones_n=ones_n, ones_m=ones_m)
        else:
            def sums(a3):
                return _sum_k(xp, a3, (0, 2))
        if need[1]:
            gw = sums((g4 * xhat).reshape(N, C, M))
        if need[2]:
            gb = sums(g.reshape(N, C, M))
    return gx, gw, gb


def _group_norm_backward_sums(g, x, mu, rstd, w, G, need):
    """GROUP_NORM_BACKWARD on NumPy float32/64 arrays as torch's CPU kernel computes it: per (image, channel) the
    sums ds = sum(g x) and db = sum(g) (BLAS products), folded per group with the weight into gx = c1 g + c2 x + c3
    (c1 = rstd w, c2 = (db mean - ds) rstd^3 / n, c3 = -c2 mean - db rstd / n over the group's n entries), and the
    weight's and bias's gradients from the same sums (sum over images of (ds - db mean) rstd, and of db): one
    product of g and x where the centred form took xhat, g * w and g * xhat in full."""
    N, C = x.shape[:2]
    M = x.size // (N * C)
    Cg = C // G
    g2, x2 = g.reshape(N * C, M), x.reshape(N * C, M)
    ones = ones_vector(M, x.dtype)
    gx_prod = g2 * x2
    ds = gx_prod.dot(ones).reshape(N, G, Cg)            # per (image, channel)
    db = g2.dot(ones).reshape(N, G, Cg)
    mu3, rstd3 = mu.reshape(N, G, 1), rstd.reshape(N, G, 1)
    gx = gw = gb = np.zeros((), dtype=g.dtype)
    if need[0]:
        wg = w.reshape(1, G, Cg) if w is not None else None
        dsg = (ds * wg if wg is not None else ds).sum(axis=2, keepdims=True)     # per (image, group)
        dbg = (db * wg if wg is not None else db).sum(axis=2, keepdims=True)
        s = 1.0 / (Cg * M)
        c2 = (dbg * mu3 - dsg) * rstd3 * rstd3 * rstd3 * s
        c3 = -c2 * mu3 - dbg * rstd3 * s
        c1 = rstd3 * wg if wg is not None else np.broadcast_to(rstd3, (N, G, Cg))
        out = np.multiply(g2, c1.reshape(N * C, 1), out=gx_prod)      # g x is not needed past ds
        out += x2 * np.broadcast_to(c2, (N, G, Cg)).reshape(N * C, 1)
        out += np.broadcast_to(c3, (N, G, Cg)).reshape(N * C, 1)
        gx = out.reshape(x.shape)
    if need[1]:
        gw = ((ds - db * mu3) * rstd3).sum(axis=0).reshape(C)
    if need[2]:
        gb = db.sum(axis=0).reshape(C)
    return gx, gw, gb


def _group_norm_bwd_arrays(ctx, g, *_, run=None):
    """GROUP_NORM_BACKWARD's kernel on NumPy arrays: called directly (the engine's quiet path) or, with
    run=dispatch.run_recorded, run as the recorded op (OpDef.sink_backward). None for the other cases."""
    if g is None or type(g._data) is not np.ndarray or not g._data.flags.c_contiguous:
        return None
    x, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    need = _affine_need(ctx, w, b)
    args = (g._data, x._data, mu._data, rstd._data, None if w is None else w._data)
    G = ctx.attrs["num_groups"]
    grads = GROUP_NORM_BACKWARD.kernel(np, *args, num_groups=G, need=need) if run is None else \
        run(GROUP_NORM_BACKWARD, *args, num_groups=G, need=need)
    return tuple(tensor_of(gr) if n else None for gr, n in zip(grads, need))


GROUP_NORM.quiet_backward = _group_norm_bwd_arrays
GROUP_NORM.sink_backward = with_defaults(_group_norm_bwd_arrays, run=run_recorded)


@GROUP_NORM.def_backward
def _(ctx, g, *_):
    if not STATE.grad_enabled:
        x, w, b = ctx.saved_inputs
        mu, rstd = ctx.saved_outputs_from(1)
        need = _affine_need(ctx, w, b)
        gx, gw, gb = dispatch(GROUP_NORM_BACKWARD, g, x, mu, rstd, w, num_groups=ctx.attrs["num_groups"], need=need)
        return gx if need[0] else None, gw if need[1] else None, gb if need[2] else None
    return _group_norm_backward(ctx, g)


@record_range("native_group_norm_backward", "op")    # torch's kernel, here in tensorlib ops
def _group_norm_backward(ctx, g):
    """The backward in tensorlib ops, differentiable (a create_graph backward records it)."""
    x, w, b = ctx.saved_inputs
    mu, rstd = ctx.saved_outputs_from(1)
    G = ctx.attrs["num_groups"]
    shape = tuple(x.shape)
    N, C = shape[:2]
    cs = _chan_shape(len(shape), C)
    dims = (0,) + tuple(range(2, len(shape)))
    xg = reshape(x, (N, G, -1))
    mu, rstd = _live_stats(xg, mu, rstd, (2,), ctx.attrs.get("eps", 1e-5))
    xhat = reshape((xg - mu) * rstd, shape)
    need = ctx.needs_input_grad
    gx = None
    if need[0]:
        gxhat = g * reshape(w, cs) if w is not None else g
        gx = reshape(_normalized_grad(reshape(gxhat, (N, G, -1)), reshape(xhat, (N, G, -1)), rstd, (2,)), shape)
    gw = _sum(g * xhat, dims) if w is not None and need[1] else None
    gb = _sum(g, dims) if b is not None and need[2] else None
    return gx, gw, gb


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.ndim < 2 or input.shape[1] % num_groups != 0:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {input.shape} and num_groups={num_groups}")
    return dispatch(GROUP_NORM, input, weight, bias, num_groups=int(num_groups), eps=float(eps))[0]


__all__ = ["layer_norm", "batch_norm", "group_norm"]
_ = np
