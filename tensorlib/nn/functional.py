"""torch.nn.functional. Fused computations are ops of their own (tensorlib.ops.nn_ops, norm_ops,
conv_ops, pool_ops) so a profile shows linear, conv2d, log_softmax, nll_loss...; the rest (cross_entropy,
attention, normalize) composes them, as torch's Python layer does."""
from __future__ import annotations

import math


from .. import _hooks as _H
from .. import ops as _ops
from .._tensor import Tensor
from ..dispatch import dispatch
from ..ops._define import write_out
from .. import ops as _E
from ..ops.activation import hardtanh as _hardtanh, leaky_relu_ as _leaky_relu_, logsigmoid as _logsigmoid
from ..ops.activation import ELU_ as _ELU_, SILU_ as _SILU_, glu as _glu, relu6 as _relu6
from ..ops.attention import scaled_dot_product_attention as _sdpa
from ..ops.conv_ops import conv1d, conv2d, conv_transpose2d  # noqa: F401
from ..ops.index import one_hot  # noqa: F401
from ..ops.nn_ops import (binary_cross_entropy, binary_cross_entropy_with_logits, check_reduction,  # noqa: F401
                          LOG_SOFTMAX, _REDUCTIONS, legacy_reduction,
                          dropout as _dropout, embedding, huber_loss, kl_div, l1_loss, linear, log_softmax, mse_loss,
                          nll_loss, pad, profiled_broadcast, smooth_l1_loss, softmax)
from ..ops.norm_ops import batch_norm, group_norm, layer_norm  # noqa: F401
from ..ops.pool_ops import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401


# --- activations ----------------------------------------------------------------------------------

def relu(input, inplace=False):
    return input.relu_() if inplace else _E.relu(input)


def relu6(input, inplace=False):
    return _relu6(input, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _hardtanh(input, min_val, max_val, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _leaky_relu_(input, negative_slope) if inplace else _E.leaky_relu(input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return dispatch(_ELU_, input, alpha=alpha) if inplace else _E.elu(input, alpha)


def gelu(input, approximate="none"):
    return _E.gelu(input, approximate=approximate)


def silu(input, inplace=False):
    return dispatch(_SILU_, input) if inplace else _E.silu(input)


def sigmoid(input):
    return _E.sigmoid(input)


def tanh(input):
    return _E.tanh(input)


def softplus(input, beta=1.0, threshold=20.0):
    return _E.softplus(input, beta, threshold)


def softmin(input, dim=None, dtype=None):
    return softmax(-input, dim, dtype)


def logsigmoid(input):
    return _logsigmoid(input)


def glu(input, dim=-1):
    """torch's glu op (GluBackward0, one glu_backward op)."""
    return _glu(input, dim)


# --- dropout --------------------------------------------------------------------------------------

def dropout(input, p=0.5, training=True, inplace=False):
    return _dropout(input, p, training, inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of (N, C, H, W) input. As torch does (pytorch/pytorch#77081), 3-d input is taken
    as (N, C, L), not as unbatched (C, H, W), with a warning; other ranks warn and drop per (N, C) entry."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    import warnings
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                      "inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=2)
    return _dropout(input, p, training, inplace, channels=True)


# --- losses ---------------------------------------------------------------------------------------

def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """log_softmax + nll_loss for class indices; -sum(target * log_softmax) for probabilities; with
    label smoothing mixed in as torch does (the smoothing term ignores `ignore_index` targets).
    Profiled as torch's composite aten::cross_entropy_loss around the ops it runs."""
    if not _H.range_hooks:      # nothing listens: no region to open
        return _cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
    return _H.op_region("cross_entropy_loss", (input, target, weight), _cross_entropy, input, target, weight,
                        size_average, ignore_index, reduce, reduction, label_smoothing)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """torch.nn.functional.linear_cross_entropy: cross_entropy(linear(input, W, b), target), W of shape
    (num_classes, *out_features, in_features) for K-dimensional losses. torch's reference path; the chunked
    path that `options` selects (a memory saving, same results) is not built and is refused."""
    if options is not None:
        raise NotImplementedError("linear_cross_entropy(options=...): tensorlib has torch's reference path only "
                                  "(the chunked path saves memory, its results are the same); pass options=None")
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    num_batches = tuple(input.shape[:-1])
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(f"expected equal input and linear_weight last dimensions (in_features), got "
                           f"{input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes = linear_weight.shape[0]
    out_features = tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got "
                           f"{tuple(linear_bias.shape)}")
    if out_features and not num_batches:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
                           f"requires batched input, (N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = (*num_batches, num_classes, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = ignore_index if ignore_index is not None else -100
    if out_features:
        n_out = num_classes * math.prod(out_features)
        linear_weight = linear_weight.reshape(n_out, in_features)
        if linear_bias is not None:
            linear_bias = linear_bias.reshape(n_out)
    logits = linear(input, linear_weight, linear_bias).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction, ignore_index=ignore_index,
                         label_smoothing=label_smoothing)


def _log_softmax_dispatch(input, dim):
    """LOG_SOFTMAX dispatched, inside log_softmax's region (cross_entropy's, _H.op_step)."""
    return dispatch(LOG_SOFTMAX, input, dim=dim)


def _cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing):
    if size_average is not None or reduce is not None or reduction not in _REDUCTIONS:
        reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    shape = input._data.shape
    cdim = 0 if len(shape) == 1 else 1
    C = shape[cdim]
    if not _H.range_hooks:
        logp = dispatch(LOG_SOFTMAX, input, dim=cdim)
    else:       # (log_softmax's region; its dim check and cast are not needed here)
        logp = _H.op_step("log_softmax", _log_softmax_dispatch, input, cdim)
    wshape = (C,) + (1,) * (len(shape) - cdim - 1)
    if target._data.dtype.kind == "f" and tuple(target.shape) == tuple(input.shape):
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / C
        prod = logp * target
        if weight is not None:
            prod = prod * weight.reshape(wshape)
        loss = -prod.sum(cdim)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        return loss.sum() / (input.shape[0] if input.ndim > 1 else 1)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing <= 0:
        return nll
    smooth = -(logp * weight.reshape(wshape) if weight is not None else logp).sum(cdim)
    valid = target != ignore_index
    smooth = smooth * valid
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        if weight is not None:
            safe = _E.where(valid, target, 0)
            smooth = smooth.sum() / (weight[safe] * valid).sum()
        else:
            smooth = smooth.sum() / valid.sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / C)


# --- attention ------------------------------------------------------------------------------------

def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(Q K^T * scale + mask) V, torch's math path (masks: bool = keep where True, float = added), as one
    op forward and one backward (tensorlib/ops/attention.py). enable_gqa: key and value may have fewer heads
    (dim -3) than query, which must be a multiple of theirs; each is repeated for its group of query heads."""
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError("scaled_dot_product_attention: query, key and value must have at least 2 dimensions")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hk == 0 or hq % hk or value.shape[-3] != hk:
            raise RuntimeError(f"scaled_dot_product_attention: number of heads in key/value ({hk}) must divide "
                               f"the number of heads in query ({hq})")
        key = key.repeat_interleave(hq // hk, dim=-3)
        value = value.repeat_interleave(hq // hk, dim=-3)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    return _sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale)


# --- misc -----------------------------------------------------------------------------------------

def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    n = _ops.norm(input, p, dim, keepdim=True)
    r = input / _E.clamp_min(n, eps).expand_as(input)
    return r if out is None else write_out(r, out, "normalize")


def bilinear(input1, input2, weight, bias=None):
    """y_o = x1^T W_o x2 + b_o, as two matmuls."""
    O, I1, I2 = weight.shape
    t = _ops.matmul(input1, weight.permute(1, 0, 2).reshape(I1, O * I2))
    lead = tuple(input1.shape[:-1])
    y = (t.reshape(lead + (O, I2)) * input2.unsqueeze(-2)).sum(-1)
    return y + bias if bias is not None else y


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("annotations", "math", "np", "Tensor")]
_ = Tensor


from ._functional_attention import *  # noqa: E402,F401,F403  (multi_head_attention_forward)
from ._functional_extra import *  # noqa: E402,F401,F403  (activations, losses, pools, interpolate, ...)
