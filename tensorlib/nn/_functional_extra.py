"""More of torch.nn.functional, composed of tensorlib's dispatched ops as torch's Python layer composes its
own (so autograd, devices and the profiler come with the ops). Formulas, defaults and errors follow torch
2.13's `torch/nn/functional.py` and its native kernels; each is checked against torch in
devtools/torch_compat/test_nn_extra_against_torch.py."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import ops as _ops
from .._tensor import Tensor
from .. import ops as _E
from .. import _dtype as _D
from ..ops.activation import hardsigmoid as _hardsigmoid, hardswish as _hardswish, leaky_relu_ as _leaky_relu_
from ..ops.activation import hardtanh as _hardtanh, logsigmoid as _log_sigmoid, threshold as _threshold
from ..ops.comparison import where as _where
from ..ops import activation as _A
from ..ops._define import dispatch, torch_op
from .. import _hooks as _H
from ..ops.conv_ops import conv1d, conv2d, conv_transpose2d
from ..ops.shape import stack
from ..ops.nn_ops import check_reduction, dropout as _dropout, embedding, legacy_reduction, pad, softmax
from ..ops.pool_ops import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.upsample import upsample_linear as _upsample_linear, upsample_nearest as _upsample_nearest

__all__ = [
    "hardsigmoid", "hardswish", "mish", "selu", "selu_", "celu", "celu_", "softsign", "softshrink", "hardshrink",
    "tanhshrink", "threshold", "threshold_", "prelu", "rrelu", "rrelu_", "relu_", "elu_", "leaky_relu_",
    "hardtanh_", "dropout1d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "soft_margin_loss",
    "multilabel_soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
    "multi_margin_loss", "pairwise_distance", "cosine_similarity", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "instance_norm", "local_response_norm", "rms_norm", "max_pool1d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices", "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices", "fractional_max_pool3d", "fractional_max_pool3d_with_indices",
    "lp_pool1d", "lp_pool2d",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "unfold", "embedding_bag",
    "conv_transpose1d", "gumbel_softmax",
]


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _reduction(size_average, reduce, reduction):
    return check_reduction(legacy_reduction(size_average, reduce, reduction))


def _inplace(input, out):
    return input.copy_(out)


# --- activations ----------------------------------------------------------------------------------

def hardsigmoid(input, inplace=False):
    out = _hardsigmoid(input)      # torch's hardsigmoid op and HardsigmoidBackward0
    return _inplace(input, out) if inplace else out


def hardswish(input, inplace=False):
    out = _hardswish(input)        # torch's hardswish op and HardswishBackward0
    return _inplace(input, out) if inplace else out


def mish(input, inplace=False):
    """torch's mish op (MishBackward0 and one mish_backward op; mish_ in place)."""
    return dispatch(_A.MISH_ if inplace else _A.MISH, input)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu_elu(o, input):
    return dispatch(o, input, alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def selu(input, inplace=False):
    """torch's selu: its elu with selu's alpha and scale inside (the node EluBackward0, or EluBackward1 in place)."""
    o = _A.ELU_ if inplace else _A.ELU
    return _H.op_region("selu_" if inplace else "selu", (input,), _selu_elu, o, input)


def selu_(input):
    return selu(input, True)


def celu(input, alpha=1.0, inplace=False):
    """torch's celu op (CeluBackward0; celu_ in place, CeluBackward1), its elu (alpha, 1, 1 / alpha) inside."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return dispatch(_A.CELU_ if inplace else _A.CELU, input, alpha=alpha)


def celu_(input, alpha=1.0):
    return celu(input, alpha, True)


def softsign(input):
    return input / (input.abs() + 1)


def softshrink(input, lambd=0.5):
    return _A.softshrink(input, lambd)


def hardshrink(input, lambd=0.5):
    return _A.hardshrink(input, lambd)


def tanhshrink(input):
    return input - _E.tanh(input)


def threshold(input, threshold, value, inplace=False):
    out = _threshold(input, threshold, value)
    return _inplace(input, out) if inplace else out


@torch_op("threshold_")
def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, True)


prelu = _A.prelu


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    if training:
        slope = _ops.rand_like(input) * (upper - lower) + lower
        out = _E.where(input >= 0, input, input * slope)
    else:
        out = _E.leaky_relu(input, (lower + upper) / 2)
    return _inplace(input, out) if inplace else out


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, True)


def relu_(input):
    return input.relu_()


@torch_op("elu_")
def elu_(input, alpha=1.0):
    return _inplace(input, _E.elu(input, alpha))


def leaky_relu_(input, negative_slope=0.01):
    return _leaky_relu_(input, negative_slope)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return _hardtanh(input, min_val, max_val, inplace=True)


# --- dropout --------------------------------------------------------------------------------------

def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout1d(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, "
                           "a channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    if input.ndim == 2:
        return _dropout(input.unsqueeze(0), p, training, inplace, channels=True).squeeze(0)
    return _dropout(input, p, training, inplace, channels=True)


def dropout3d(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                      "inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).", stacklevel=2)
    if input.ndim != 5:         # as torch: anything but (N, C, D, H, W) is taken as unbatched
        return _dropout(input.unsqueeze(0), p, training, inplace, channels=True).squeeze(0)
    return _dropout(input, p, training, inplace, channels=True)


_ALPHA = 1.7580993408473766       # torch's alpha-dropout constant (-SELU's saturation value)


def _alpha_dropout(input, p, training, feature):
    _check_p(p)
    if not training or p == 0 or input.numel() == 0:
        return input
    if p == 1:
        return input * 0
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    keep = (_ops.rand(*shape, device=input.device) >= p).to(input.dtype)
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    b = (keep - 1) * (_ALPHA * a) + _ALPHA * a * p
    return input * (keep * a) + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    out = _alpha_dropout(input, p, training, False)
    return _inplace(input, out) if inplace and out is not input else out


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    out = _alpha_dropout(input, p, training, True)
    return _inplace(input, out) if inplace and out is not input else out


# --- losses ---------------------------------------------------------------------------------------

@torch_op("soft_margin_loss")
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(_E.log1p(_E.exp(-target * input)), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * _logsigmoid(input) + (1 - target) * _logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(dim=input.ndim - 1) / input.shape[-1]
    return _reduce(loss, reduction)


def _logsigmoid(x):
    return _log_sigmoid(x)


@torch_op("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} ")
    return _reduce(_E.clamp_min(-target * (input1 - input2) + margin, 0.0), reduction)


@torch_op("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    zeros = input * 0
    margin_clamp = _E.clamp_min(margin - input, 0.0)
    out = _E.where(target != 1, margin_clamp, zeros) + _E.where(target != -1, input, zeros)
    return _reduce(out, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    eps = 1e-12
    d = input1.ndim - 1
    prod = (input1 * input2).sum(d)
    mag = ((input1 * input1).sum(d) + eps) * ((input2 * input2).sum(d) + eps)
    cos = prod / _E.sqrt(mag)
    zeros = cos * 0
    out = _E.where(target == 1, 1 - cos, zeros) + _E.where(target == -1, _E.clamp_min(cos - margin, 0.0), zeros)
    return _reduce(out, reduction)


@torch_op("poisson_nll_loss")
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = _E.exp(input) - target * input
    else:
        loss = input - target * _E.log(input + eps)
    if full:
        t = target.detach()
        stirling = t * _E.log(_E.where(t > 1, t, t * 0 + 1)) - t + 0.5 * _E.log(2 * math.pi * _E.where(
            t > 1, t, t * 0 + 1))
        loss = loss + _E.where(t > 1, stirling, t * 0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    from ..autograd import no_grad
    if not isinstance(var, Tensor):
        var = _ops.full_like(input, float(var))
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var.clone()
    with no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (_E.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


@torch_op("pairwise_distance")
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    d = max(x1.ndim, x2.ndim) - 1
    return _ops.norm(x1 - x2 + eps, p, dim=d, keepdim=keepdim)


@torch_op("cosine_similarity")
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    w12 = (x1 * x2).sum(dim)
    w1 = (x1 * x1).sum(dim)
    w2 = (x2 * x2).sum(dim)
    n12 = _E.sqrt(_E.clamp(w1 * w2, min=eps * eps))
    return w12 / n12


@torch_op("triplet_margin_loss")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _E.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_E.clamp_min(margin + d_pos - d_neg, 0.0), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                         "instead")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = _E.minimum(d_neg, dist(positive, negative))
    return _reduce(_E.clamp_min(margin + d_pos - d_neg, 0.0), check_reduction(reduction))     # torch's clamp_min


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input if input.ndim == 2 else input.reshape((1, -1))
    t = target.reshape((-1,))
    C = x.shape[1]
    picked = x.gather(1, t.unsqueeze(1))
    z = _E.clamp(margin - picked + x, min=0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight[t].unsqueeze(1)
    mask = 1 - _ops.one_hot(t, C).to(x.dtype)
    loss = (z * mask).sum(1) / C
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


# --- shuffles -------------------------------------------------------------------------------------

def pixel_shuffle(input, upscale_factor):
    r = int(upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    oc = c // (r * r)
    n = len(lead)
    x = input.reshape((*lead, oc, r, r, h, w))
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape((*lead, oc, h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    r = int(downscale_factor)
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)="
                           f"{h} is not divisible by {r}" if h % r else
                           f"pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)="
                           f"{w} is not divisible by {r}")
    n = len(lead)
    x = input.reshape((*lead, c, h // r, r, w // r, r))
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape((*lead, c * r * r, h // r, w // r))


def channel_shuffle(input, groups):
    n, c = input.shape[0], input.shape[1]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    rest = tuple(input.shape[2:])
    return input.reshape((n, groups, c // groups) + rest).transpose(1, 2).reshape((n, c) + rest)


# --- normalisation --------------------------------------------------------------------------------

def _verify_spatial_size(size):
    """torch's check of an instance norm's input when it normalizes by the input's statistics."""
    if math.prod(size[2:]) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {size}")


@torch_op("instance_norm")
def _instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps):
    """torch's at::instance_norm: batch_norm over the input viewed as one image of N * C channels, the affine
    parameters and running statistics repeated N times, the running statistics then the mean of their N copies
    (the ops and the backward nodes of torch's: ViewBackward0, NativeBatchNormBackward0, RepeatBackward0)."""
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
    if input.ndim < 2:
        raise ValueError(f"expected 2D or more input (got {input.ndim}D input)")
    n, c = input.shape[:2]
    w, b, rm, rv = (None if t is None else t.repeat(n) for t in (weight, bias, running_mean, running_var))
    out = _ops.batch_norm(input.contiguous().view((1, n * c) + tuple(input.shape[2:])), w, b, rm, rv,
                          use_input_stats, momentum, eps, False)
    if running_mean is not None:
        running_mean.copy_(rm.view(n, c).mean(0))
    if running_var is not None:
        running_var.copy_(rv.view(n, c).mean(0))
    return out.view(input.shape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    if use_input_stats:
        _verify_spatial_size(input.shape)
    return _instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    sq = input * input
    c = input.shape[1]
    padded = pad(sq.movedim(1, -1), (size // 2, (size - 1) // 2)).movedim(-1, 1)
    acc = None
    for i in range(size):
        part = padded.narrow(1, i, c)
        acc = part if acc is None else acc + part
    div = (acc * (alpha / size) + k) ** beta
    return input / div


def rms_norm(input, normalized_shape, weight=None, eps=None):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    if tuple(input.shape[input.ndim - len(normalized_shape):]) != tuple(normalized_shape):
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size{list(input.shape)}")
    if eps is None:
        eps = float(np.finfo(np.float32 if input.dtype.name == "bfloat16" else input.dtype.np).eps)
    out = input * _E.rsqrt((input * input).mean(dim=dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


# --- pooling --------------------------------------------------------------------------------------

def _single(v, name="kernel_size"):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise RuntimeError(f"max_pool1d() {name} must be an int or a tuple of one int")
        return int(v[0])
    return int(v)


def _max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"max_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else _single(stride, "stride")
    out, idx = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding")),
                          (1, _single(dilation, "dilation")), ceil_mode, True)
    return out.squeeze(-2), idx.squeeze(-2)


@torch_op("max_pool1d_with_indices")
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return _max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices:
        return max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    # torch records `aten::max_pool1d` (a kernel without indices) when none are asked for
    return _H.op_region("max_pool1d", (input,), _max_pool1d, input, kernel_size, stride, padding, dilation,
                        ceil_mode)[0]


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


@torch_op("avg_pool1d")
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"avg_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size)
    s = k if stride is None else _single(stride, "stride")
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding")), ceil_mode,
                      count_include_pad).squeeze(-2)


@torch_op("adaptive_avg_pool1d")
def adaptive_avg_pool1d(input, output_size):
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, _single(output_size, "output_size"))).squeeze(-2)


def _bounds(n_in, n_out):
    return [(math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out)) for i in range(n_out)]


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got: {list(input.shape)}")
    h, w = input.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = h if oh is None else oh, w if ow is None else ow
    (sh, kh), (sw, kw) = _adaptive_starts(h, oh), _adaptive_starts(w, ow)
    return _window_max(input, [sh, sw], [kh, kw], "adaptive_max_pool2d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool2d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


@torch_op("adaptive_max_pool1d")   # torch records this name with indices or without
def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"adaptive_max_pool1d(): Expected 2D or 3D tensor, but got: {list(input.shape)}")
    out, idx = adaptive_max_pool2d_with_indices(input.unsqueeze(-2), (1, _single(output_size, "output_size")))
    return out.squeeze(-2), idx.squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool1d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    out = avg_pool2d(input ** norm_type, (kh, kw), stride, 0, ceil_mode)
    return (_E.sign(out) * _E.relu(out.abs()) * (kh * kw)) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    k = _single(kernel_size)
    out = avg_pool1d(input ** norm_type, k, stride, 0, ceil_mode)
    return (_E.sign(out) * _E.relu(out.abs()) * k) ** (1.0 / norm_type)


# --- resampling -----------------------------------------------------------------------------------

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area", "nearest-exact")


def _out_sizes(input, size, scale_factor, nd):
    in_sizes = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        sizes = (size,) * nd if isinstance(size, int) else tuple(size)
        if len(sizes) != nd:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(in_sizes)} and output size of {list(sizes)}. Please "
                             f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, "
                             f"...,oK) format.")
        return sizes, None
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    scales = (float(scale_factor),) * nd if not isinstance(scale_factor, (tuple, list)) else tuple(scale_factor)
    return tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, scales)), scales


def _ratio(n_in, n_out, scale, align_corners):
    """torch's area_pixel_compute_scale: input pixels per output pixel."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _cubic_weights(t, a=-0.75):
    """The four cubic-convolution coefficients for taps -1, 0, 1, 2 at fraction t (torch's
    get_cubic_upsample_coefficients, A = -0.75)."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _aa_matrix(n_in, n_out, scale, align_corners, mode):
    """The (n_out, n_in) weights of torch's separable antialiased resampling (_upsample_*_aa): a filter
    stretched by the downsampling ratio, normalised per output pixel."""
    ratio = _ratio(n_in, n_out, scale, align_corners)
    if mode == "bilinear":
        size = 2.0

        def filt(x):
            return np.maximum(0.0, 1.0 - np.abs(x))
    elif mode == "bicubic":
        size = 4.0

        def filt(x):
            x = np.abs(x)
            a = -0.5
            return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                            np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))
    else:                                   # lanczos, a = 3
        size = 6.0

        def filt(x):
            return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
    support = size * 0.5 * ratio if ratio >= 1.0 else size * 0.5
    inv = 1.0 / ratio if ratio >= 1.0 else 1.0
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = ratio * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        w = filt((np.arange(lo, hi) - center + 0.5) * inv)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _weights_tensor(values, dim, ndim, like):
    shape = [1] * ndim
    shape[dim] = values.shape[-1]
    dt = like.dtype.np if like.dtype.name != "bfloat16" else np.float32
    return _ops.tensor(values.astype(dt).reshape(shape), device=like.device).to(like.dtype)


def _gather(x, dim, idx):
    return x.index_select(dim, _ops.tensor(idx.astype(np.int64), device=x.device))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    nd = input.ndim - 2
    if mode not in _MODES or nd not in (1, 2, 3):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
                                  f"nearest-exact (got {mode})")
    if mode in ("nearest", "area", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D "
                         "tensor as input")
    want = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2, "lanczos": 2}.get(mode)
    if want is not None and want != nd:
        if mode in ("bicubic", "lanczos"):
            raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) "
                                      f"for the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | "
                                      f"area | nearest-exact (got {mode})")
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {want + 2}D input")
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    sizes, scales = _out_sizes(input, size, scale_factor, nd)
    if recompute_scale_factor or mode == "area":
        scales = None
    if mode == "area":
        pool = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}[nd]
        return pool(input, sizes)
    if mode == "nearest":       # torch's upsample_nearest{1,2,3}d, one op each way
        return _upsample_nearest(input, sizes, scales)
    if mode in ("linear", "bilinear", "trilinear") and not antialias:   # upsample_linear1d, _bilinear2d, ...
        return _upsample_linear(input, sizes, bool(align_corners), scales)
    ac = bool(align_corners)
    out = input
    for k in range(nd):
        dim = 2 + k
        n_in, n_out = input.shape[dim], sizes[k]
        scale = scales[k] if scales is not None else None
        if mode == "nearest-exact":
            r = np.float32(1.0 / scale if scale is not None else n_in / n_out)
            src = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * r)
            out = _gather(out, dim, np.minimum(src, n_in - 1))
        elif antialias:
            m = _aa_matrix(n_in, n_out, scale, ac, mode)            # out_dim = m @ in_dim
            w = _ops.tensor(m.T.astype(np.float64), device=input.device).to(input.dtype)
            out = (out.movedim(dim, -1) @ w).movedim(-1, dim)
        elif mode == "bicubic":
            ratio = _ratio(n_in, n_out, scale, ac)
            dst = np.arange(n_out, dtype=np.float64)
            real = ratio * dst if ac else ratio * (dst + 0.5) - 0.5
            base = np.minimum(np.floor(real), n_in - 1)
            t = np.clip(real - base, 0.0, 1.0)
            total = None
            for j, wj in enumerate(_cubic_weights(t)):
                idx = np.clip(base - 1 + j, 0, n_in - 1)
                term = _gather(out, dim, idx) * _weights_tensor(wj, dim, out.ndim, input)
                total = term if total is None else total + term
            out = total
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C, H, W) -> (N, C*kh*kw, L), the blocks in torch's order (channel, then kernel row, column)."""
    if input.ndim not in (3, 4):
        raise NotImplementedError(f"Input Error: Only 3D or 4D input Tensors are supported (got {input.ndim}D)")
    batched = input.ndim == 4
    x = input if batched else input.unsqueeze(0)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = _pair(kernel_size), _pair(dilation), _pair(padding), _pair(stride)
    x = pad(x, (pw, pw, ph, ph)) if ph or pw else x
    n, c, h, w = x.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"Given input with spatial size ({h - 2 * ph}, {w - 2 * pw}), kernel_size=({kh}, {kw}), "
                           f"dilation=({dh}, {dw}), padding=({ph}, {pw}), calculated shape of the array of sliding "
                           f"blocks as ({oh}, {ow}), but its components must be at least one.")
    taps = [x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    out = _ops.stack(taps, 2).reshape((n, c * kh * kw, oh * ow))
    return out if batched else out.squeeze(0)


# --- embeddings, convolutions, sampling -------------------------------------------------------------

def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, but got {mode}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                  f"on GitHub.")
    if sparse:
        raise NotImplementedError("embedding_bag: sparse gradients are not supported by tensorlib (dense "
                                  "gradients only); leave sparse=False")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences.")
        b, n = input.shape
        offsets = list(range(0, b * n, n))
        input = input.reshape((-1,))
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape((-1,))
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        offsets = [int(o) for o in offsets.tolist()]
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    total = input.shape[0]
    ends = offsets[1:] + ([] if include_last_offset else [total])
    starts = offsets[:-1] if include_last_offset else offsets
    emb = embedding(input, weight, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq)
    if per_sample_weights is not None:
        emb = emb * per_sample_weights.unsqueeze(1)
    keep = None
    if padding_idx is not None:
        keep = (input != padding_idx).to(emb.dtype).unsqueeze(1)
        emb = emb * keep
    bags = []
    for s, e in zip(starts, ends):
        if e <= s:
            bags.append(_ops.zeros(weight.shape[1], dtype=weight.dtype, device=weight.device))
            continue
        part = emb[s:e]
        if mode != "max":       # torch's bag kernel adds the rows in order (not its sum's cascade): index_add's
            rows = _ops.zeros(e - s, dtype=_D.int64, device=part.device)
            total = _ops.zeros(1, part.shape[1], dtype=part.dtype, device=part.device).index_add(0, rows, part)[0]
        if mode == "sum":
            bags.append(total)
        elif mode == "mean":
            cnt = keep[s:e].sum() if keep is not None else e - s
            bags.append(total / (_E.clamp(cnt, min=1) if keep is not None else cnt))
        else:
            bags.append(part.amax(0))
    return _ops.stack(bags, 0)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    def one(v):
        return 1, (v[0] if isinstance(v, (tuple, list)) else v)
    batched = input.ndim == 3
    x = input if batched else input.unsqueeze(0)
    out = conv_transpose2d(x.unsqueeze(2), weight.unsqueeze(2), bias, one(stride), (0, one(padding)[1]),
                           (0, one(output_padding)[1]), groups, one(dilation)).squeeze(2)
    return out if batched else out.squeeze(0)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    u = _ops.rand_like(logits)
    gumbels = -_E.log(-_E.log(u))       # -log of an exponential(1) draw, as torch's -empty().exponential_().log()
    y = softmax((logits + gumbels) / tau, dim)
    if hard:
        index = y.argmax(dim, keepdim=True)
        y_hard = _ops.zeros_like(logits).scatter(dim, index, 1.0)
        return y_hard - y.detach() + y
    return y


# --- issue 13, second pass: unpooling, 3-d conv/pools (composed of the 2-d ops and strided slices), fold,
# multilabel margin, pdist, conv_tbc, affine_grid ---------------------------------------------------------

def _ntuple(v, n, fname, what):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) != n:
            raise RuntimeError(f"{fname}: {what} must either be a single int, or a tuple of {n} ints")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n, fname):
    k = _ntuple(kernel_size, n, fname, "kernel_size")
    s = k if stride is None else _ntuple(stride, n, fname, "stride")
    p = _ntuple(padding, n, fname, "padding")
    if input.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"{fname}: Expected {n + 1}D or {n + 2}D input, but got {input.ndim}D")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    spatial_in = tuple(input.shape[-n:])
    default = tuple((spatial_in[i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(n))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)[-n:]
        if len(out) != n:
            raise ValueError(f"output_size should be a sequence containing {n} or {n + 2} elements, but it has a "
                             f"length of '{len(tuple(output_size))}'")
        for i in range(n):
            lo, hi = default[i] - s[i], default[i] + s[i]
            if not lo < out[i] < hi:
                raise ValueError(f'invalid output_size "{list(out)}" (dim {i} must be between {lo} and {hi})')
    lead = tuple(input.shape[:-n])
    flat_in = input.reshape(lead + (-1,))
    flat_idx = indices.reshape(lead + (-1,))
    total = math.prod(out)
    if flat_idx.numel() and (int(flat_idx.max()) >= total or int(flat_idx.min()) < 0):
        raise RuntimeError(f"Found an invalid max index: {int(flat_idx.max())} (output volumes are of size "
                           f"{'x'.join(map(str, out))}")
    zeros = input.new_zeros(lead + (total,))
    return zeros.scatter(-1, flat_idx, flat_in).reshape(lead + out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """One conv2d per depth tap of the kernel, on the depth slices that tap meets (batched), summed."""
    if input.ndim not in (4, 5):
        raise RuntimeError(f"Expected 4D (unbatched) or 5D (batched) input to conv3d, but got input of size: "
                           f"{list(input.shape)}")
    if input.ndim == 4:
        return conv3d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    s = _ntuple(stride, 3, "conv3d", "stride")
    d = _ntuple(dilation, 3, "conv3d", "dilation")
    kD, kH, kW = weight.shape[2:]
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
        if padding == "same" and any(v != 1 for v in s):
            raise ValueError("padding='same' is not supported for strided convolutions")
        if padding == "valid":
            pads = [(0, 0)] * 3
        else:
            tot = [d[i] * (k - 1) for i, k in enumerate((kD, kH, kW))]
            pads = [(t // 2, t - t // 2) for t in tot]
    else:
        p = _ntuple(padding, 3, "conv3d", "padding")
        pads = [(v, v) for v in p]
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(weight.shape)} instead")
    if weight.shape[1] * groups != input.shape[1]:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got "
                           f"{input.shape[1]} channels instead")
    x = pad(input, (pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    N, C, D = x.shape[:3]
    oD = (D - d[0] * (kD - 1) - 1) // s[0] + 1
    if oD <= 0:
        raise RuntimeError("Calculated output size is too small for conv3d (input smaller than the kernel)")
    out = None
    for t in range(kD):
        sl = x[:, :, t * d[0]: t * d[0] + s[0] * (oD - 1) + 1: s[0]]          # (N, C, oD, H, W)
        sl = sl.transpose(1, 2).reshape(N * oD, C, x.shape[3], x.shape[4])
        y = conv2d(sl, weight[:, :, t], None, s[1:], 0, d[1:], groups)
        out = y if out is None else out + y
    out = out.reshape(N, oD, out.shape[1], out.shape[2], out.shape[3]).transpose(1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out


def _pool3d_setup(input, kernel_size, stride, padding, dilation, ceil_mode, fname):
    if input.ndim not in (4, 5):
        raise RuntimeError(f"{fname}: Expected 4D or 5D tensor for input, but got: {list(input.shape)}")
    k = _ntuple(kernel_size, 3, fname, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else \
        _ntuple(stride, 3, fname, "stride")
    p = _ntuple(padding, 3, fname, "padding")
    d = _ntuple(dilation, 3, fname, "dilation")
    if any(p[i] > k[i] // 2 for i in range(3)):
        raise RuntimeError("pad should be at most half of effective kernel size, but got pad="
                           f"{p[0]}, kernel_size={k[0]} and dilation={d[0]}" if p[0] > k[0] // 2 else
                           f"pad should be smaller than or equal to half of kernel size, but got padW = {p[2]}, "
                           f"padH = {p[1]}, kT = {k[0]}, kW = {k[2]}, kH = {k[1]}")
    size = tuple(input.shape[-3:])
    outs, extra = [], []
    for i in range(3):
        eff = d[i] * (k[i] - 1) + 1
        num = size[i] + 2 * p[i] - eff
        o = (-(-num // s[i]) if ceil_mode else num // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= size[i] + p[i]:
            o -= 1
        if o <= 0:
            raise RuntimeError(f"Given input size: ({'x'.join(map(str, input.shape[-4:]))}). Calculated output "
                               f"size is too small")
        outs.append(o)
        extra.append(max(0, (o - 1) * s[i] + eff - (size[i] + 2 * p[i])))
    return k, s, p, d, tuple(outs), extra


def _taps(x, k, s, d, outs):
    for a in range(k[0]):
        for b in range(k[1]):
            for c in range(k[2]):
                yield (a, b, c), x[..., a * d[0]: a * d[0] + s[0] * (outs[0] - 1) + 1: s[0],
                                   b * d[1]: b * d[1] + s[1] * (outs[1] - 1) + 1: s[1],
                                   c * d[2]: c * d[2] + s[2] * (outs[2] - 1) + 1: s[2]]


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    k, s, p, d, outs, extra = _pool3d_setup(input, kernel_size, stride, padding, dilation, ceil_mode,
                                            "max_pool3d")
    neg = float("-inf") if input.dtype.is_floating_point else int(np.iinfo(np.dtype(str(input.numpy().dtype))).min)
    x = pad(input, (p[2], p[2] + extra[2], p[1], p[1] + extra[1], p[0], p[0] + extra[0]), value=neg)
    taps = list(_taps(x, k, s, d, outs))
    vals, which = stack([t for _, t in taps], -1).max(-1)
    # flat index into the unpadded input of the tap that won, per output cell
    D, H, W = input.shape[-3:]
    pos = []
    for i in range(3):
        base = input.new_tensor(np.arange(outs[i]) * s[i] - p[i], dtype=_dtype_long())
        pos.append(base)
    offs = np.array([[a * d[0], b * d[1], c * d[2]] for (a, b, c), _ in taps], dtype=np.int64)
    od = input.new_tensor(offs[:, 0], dtype=_dtype_long())[which]
    oh = input.new_tensor(offs[:, 1], dtype=_dtype_long())[which]
    ow = input.new_tensor(offs[:, 2], dtype=_dtype_long())[which]
    zi = pos[0].reshape(-1, 1, 1) + od
    yi = pos[1].reshape(1, -1, 1) + oh
    xi = pos[2].reshape(1, 1, -1) + ow
    idx = (zi * H + yi) * W + xi
    return (vals, idx) if return_indices else vals


def _dtype_long():
    return _D.int64


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    k, s, p, d, outs, extra = _pool3d_setup(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool3d")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    cfg = (p[2], p[2] + extra[2], p[1], p[1] + extra[1], p[0], p[0] + extra[0])
    x = pad(input, cfg)
    total = None
    for _, t in _taps(x, k, s, d, outs):
        total = t if total is None else total + t
    if divisor_override is not None:
        return total / divisor_override
    ones = input.new_ones(tuple(input.shape[-3:]))
    if count_include_pad:        # the padding counts, the ceil-mode overhang does not
        cnt = pad(pad(ones, (p[2], p[2], p[1], p[1], p[0], p[0]), value=1.0)[None], (0, extra[2], 0, extra[1],
                                                                                   0, extra[0]))[0]
    else:
        cnt = pad(ones, cfg)
    n = None
    for _, t in _taps(cnt, k, s, d, outs):
        n = t if n is None else n + t
    return total / n


def adaptive_avg_pool3d(input, output_size):
    if input.ndim not in (4, 5):
        raise RuntimeError(f"adaptive_avg_pool3d(): Expected 4D or 5D tensor, but got {list(input.shape)}")
    o = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * 3
    o = [input.shape[-3 + i] if v is None else int(v) for i, v in enumerate(o)]
    x = input
    for i in range(3):         # a box mean is a mean along each axis in turn
        ax = x.ndim - 3 + i
        x = adaptive_avg_pool1d(x.movedim(ax, -1).reshape(-1, 1, x.shape[ax]), o[i]).reshape(
            tuple(x.movedim(ax, -1).shape[:-1]) + (o[i],)).movedim(-1, ax)
    return x


def _window_max(input, starts, k, name):
    """Max over windows of the last len(k) dims: window o of plane p starts at starts[d][p, o] along dim d and
    spans k[d][p, o] elements (arrays broadcast over the planes (N*C or C) and the output positions of that dim).
    Returns (values, flat indices into each plane) as torch's max pools do: the first maximum in (d, h, w)
    order wins; a NaN is a maximum and the last NaN wins (torch's `val > max || isnan(val)`)."""
    nd = len(starts)
    sp = tuple(input.shape[-nd:])
    lead = tuple(input.shape[:-nd])
    planes = int(np.prod(lead)) if lead else 1
    outs = [st.shape[-1] for st in starts]
    kmax = [int(np.max(kk)) if np.size(kk) else 1 for kk in k]
    idx = np.zeros((planes,) + tuple(outs) + tuple(kmax), dtype=np.int64)
    ok = np.ones(idx.shape, dtype=bool)
    for d in range(nd):
        st = np.broadcast_to(starts[d], (planes, outs[d]))
        kk = np.broadcast_to(k[d], (planes, outs[d]))
        off = np.arange(kmax[d])
        pos = st[:, :, None] + off                                       # (planes, out_d, kmax_d)
        valid = off < kk[:, :, None]
        shape = [planes] + [1] * (2 * nd)
        shape[1 + d] = outs[d]
        shape[1 + nd + d] = kmax[d]
        idx = idx * sp[d] + np.minimum(pos, sp[d] - 1).reshape(shape)
        ok = ok & valid.reshape(shape)
    n_out, n_k = int(np.prod(outs)), int(np.prod(kmax))
    idx = idx.reshape(planes, n_out * n_k)
    x = input.reshape(planes, int(np.prod(sp)))
    vals = x.gather(1, _ops.tensor(idx, device=input.device)).reshape(planes, n_out, n_k)
    mask = _ops.tensor(~ok.reshape(planes, n_out, n_k), device=input.device)
    vals = vals.masked_fill(mask, float("-inf"))
    nan = vals.detach().isnan()
    i = vals.detach().argmax(-1)
    if bool(nan.any()):
        last_nan = (n_k - 1) - nan.flip(-1).to(_D.int64).argmax(-1)
        i = _where(nan.any(-1), last_nan, i)
    v = vals.gather(2, i.unsqueeze(-1)).squeeze(-1)
    flat = _ops.tensor(idx.reshape(planes, n_out, n_k), device=input.device).gather(2, i.unsqueeze(-1)).squeeze(-1)
    return v.reshape(lead + tuple(outs)), flat.reshape(lead + tuple(outs))


def _adaptive_starts(n_in, n_out):
    o = np.arange(n_out)
    lo = (o * n_in) // n_out
    hi = -((-(o + 1) * n_in) // n_out)
    return lo, hi - lo


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    if input.ndim not in (4, 5):
        raise RuntimeError(f"adaptive_max_pool3d(): Expected 4D or 5D tensor, but got {list(input.shape)}")
    o = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * 3
    o = [input.shape[-3 + i] if v is None else int(v) for i, v in enumerate(o)]
    st, kk = zip(*(_adaptive_starts(input.shape[-3 + d], o[d]) for d in range(3)))
    return _window_max(input, list(st), list(kk), "adaptive_max_pool3d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool3d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def _fractional_intervals(samples, n_in, n_out, k):
    """torch's generate_intervals: the start of each of n_out windows of size k, per plane, from one uniform
    sample per plane (computed in the input's dtype, as torch's kernel does)."""
    seq = np.empty((samples.shape[0], n_out), dtype=np.int64)
    if n_out > 1:
        alpha = samples.dtype.type(n_in - k) / samples.dtype.type(n_out - 1)
        i = np.arange(n_out - 1, dtype=samples.dtype)
        seq[:, :-1] = ((i[None, :] + samples[:, None]) * alpha).astype(np.int64) - \
            (samples * alpha).astype(np.int64)[:, None]
    if n_out > 0:
        seq[:, -1] = n_in - k
    return seq


def _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, nd):
    name = f"fractional_max_pool{nd}d"
    if output_size is None and output_ratio is None:
        raise ValueError(f"{name} requires specifying either an output_size or an output_ratio")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got: {list(input.shape)}")
    sp = tuple(input.shape[-nd:])
    if output_size is None:
        if isinstance(output_ratio, (tuple, list)) and len(output_ratio) > nd:
            raise ValueError(f"{name} requires output_ratio to either be a single Int or tuple of Ints.")
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * nd
        ratio = ratio * nd if len(ratio) == 1 else ratio
        output_size = [int(n * r) for n, r in zip(sp, ratio)]
    out = [int(v) for v in _ntuple(output_size, nd, name, "output_size")]
    k = [int(v) for v in _ntuple(kernel_size, nd, name, "kernel_size")]
    what = ["height", "width"] if nd == 2 else ["time", "height", "width"]
    where = name + "()" if nd == 2 else name + "_out()"
    for d in range(nd):
        if out[d] + k[d] - 1 > sp[d]:
            raise RuntimeError(f"{where}: pool {what[d]} {k[d]} too large relative to input {what[d]} {sp[d]}")
    n_batch = 1 if input.ndim == nd + 1 else input.shape[0]
    channels = input.shape[-nd - 1]
    if _random_samples is None:
        _random_samples = _ops.rand(n_batch, channels, nd, dtype=input.dtype, device=input.device)
    if _random_samples.ndim != 3 or _random_samples.shape[2] != nd:
        raise RuntimeError(f"Expect _random_samples to have shape (N, C, {nd}), got {list(_random_samples.shape)}")
    if _random_samples.shape[1] != channels:
        raise RuntimeError("Expect _random_samples.size(1) equals to input channel size.")
    if _random_samples.shape[0] != n_batch:
        raise RuntimeError("Expect _random_samples.size(0) no less then input batch size.")
    u = _random_samples.detach().cpu().numpy().reshape(n_batch * channels, nd)
    if u.dtype.kind != "f" or u.dtype.itemsize < 4:
        u = u.astype(np.float32)
    # sample 0 places the width windows, 1 the height ones (2-d); 0 time, 1 height, 2 width (3-d): torch's order
    order = [1, 0] if nd == 2 else [0, 1, 2]
    starts = [_fractional_intervals(u[:, order[d]], sp[d], out[d], k[d]) for d in range(nd)]
    sizes = [np.full((1, out[d]), k[d]) for d in range(nd)]
    vals, idx = _window_max(input, starts, sizes, name)
    return (vals, idx) if return_indices else vals


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, True, _random_samples, 2)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 2)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, True, _random_samples, 3)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 3)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kd, kw, kh = _ntuple(kernel_size, 3, "lp_pool3d", "kernel_size")
    out = avg_pool3d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(kd * kw * kh).pow(1.0 / norm_type)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: the blocks of `unfold` summed back into place (an index_add over the padded image)."""
    o = _ntuple(output_size, 2, "fold", "output_size")
    k = _ntuple(kernel_size, 2, "fold", "kernel_size")
    d = _ntuple(dilation, 2, "fold", "dilation")
    p = _ntuple(padding, 2, "fold", "padding")
    s = _ntuple(stride, 2, "fold", "stride")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                           f"(got {input.ndim}D)")
    if input.ndim == 2:
        return fold(input.unsqueeze(0), o, k, d, p, s).squeeze(0)
    N, CK, L = input.shape
    if CK % (k[0] * k[1]):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
                           f"but got input.size(1)={CK} and kernel_size=({k[0]}, {k[1]})")
    C = CK // (k[0] * k[1])
    Hp, Wp = o[0] + 2 * p[0], o[1] + 2 * p[1]
    bh = (Hp - (d[0] * (k[0] - 1) + 1)) // s[0] + 1
    bw = (Wp - (d[1] * (k[1] - 1) + 1)) // s[1] + 1
    if bh * bw != L:
        raise RuntimeError(f"Given output_size=({o[0]}, {o[1]}), kernel_size=({k[0]}, {k[1]}), dilation=({d[0]}, "
                           f"{d[1]}), padding=({p[0]}, {p[1]}), stride=({s[0]}, {s[1]}), expected size of input's "
                           f"dimension 2 to match the calculated number of sliding blocks {bh} * {bw} = {bh * bw}, "
                           f"but got input.size(2)={L}.")
    ki, kj = np.meshgrid(np.arange(k[0]), np.arange(k[1]), indexing="ij")
    li, lj = np.meshgrid(np.arange(bh), np.arange(bw), indexing="ij")
    rows = ki.reshape(-1, 1) * d[0] + li.reshape(1, -1) * s[0]
    cols = kj.reshape(-1, 1) * d[1] + lj.reshape(1, -1) * s[1]
    flat = input.new_tensor((rows * Wp + cols).reshape(-1), dtype=_dtype_long())
    img = input.new_zeros((N, C, Hp * Wp)).index_add(2, flat, input.reshape(N, C, k[0] * k[1] * L))
    img = img.reshape(N, C, Hp, Wp)
    return img[:, :, p[0]: p[0] + o[0], p[1]: p[1] + o[1]]


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if input.ndim not in (1, 2) or tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    x = input if input.ndim == 2 else input.unsqueeze(0)
    t = target.detach().cpu().numpy().reshape(x.shape)
    C = x.shape[1]
    is_t = np.zeros(t.shape, dtype=bool)
    for n in range(t.shape[0]):
        for j in t[n]:
            if j < 0:
                break
            if j >= C:
                raise RuntimeError(f"multilabel_margin_loss: target index {j} is out of range for {C} classes")
            is_t[n, j] = True
    mask = x.new_tensor(is_t[:, :, None] & ~is_t[:, None, :])          # (N, j in targets, i not)
    margin = (1 - (x.unsqueeze(2) - x.unsqueeze(1))).relu()
    loss = (margin * mask).sum((1, 2)) / C
    if input.ndim == 1:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


@torch_op("pdist")
def pdist(input, p=2):
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    ii = input.new_tensor(i, dtype=_dtype_long())
    jj = input.new_tensor(j, dtype=_dtype_long())
    diff = input[ii] - input[jj]
    if p == 0:
        return (diff != 0).sum(1).to(input.dtype)
    if p == float("inf"):
        return diff.abs().amax(1)
    return diff.abs().pow(p).sum(1).pow(1.0 / p) if p != 2 else (diff * diff).sum(1).sqrt()


def conv_tbc(input, weight, bias, pad=0):
    """Time-batch-channel convolution: input (T, B, C_in), weight (K, C_in, C_out), bias (C_out)."""
    if input.ndim != 3:
        raise RuntimeError("Input must have 3 dims: time, batch, in_channel")
    if weight.ndim != 3:
        raise RuntimeError("Weight tensor must have 3 dims: kernel_width, in_channels, out_channels.")
    if bias.ndim != 1:
        raise RuntimeError("Bias must be 1-D")
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, 1, pad)
    return out.permute(2, 0, 1)


def affine_grid(theta, size, align_corners=None):
    if align_corners is None:
        align_corners = False
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = list(size)
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got "
                             f"{list(theta.shape)}.")
        spatial = size[-2:]
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got "
                             f"{list(theta.shape)}.")
        spatial = size[-3:]
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    if min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")

    def lin(n):
        if n <= 1:
            return np.zeros(max(n, 1))
        v = np.linspace(-1, 1, n)
        return v if align_corners else v * (n - 1) / n
    axes = [lin(n) for n in spatial]                    # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    coords = list(reversed(mesh)) + [np.ones_like(mesh[0])]    # x, y, (z), 1
    base = theta.new_tensor(np.stack(coords, -1).reshape(-1, len(coords)))
    grid = base.unsqueeze(0) @ theta.transpose(1, 2)            # (N, prod, nd)
    return grid.reshape([size[0]] + list(spatial) + [len(spatial)])


__all__ += ["max_unpool1d", "max_unpool2d", "max_unpool3d", "conv3d", "max_pool3d", "max_pool3d_with_indices",
            "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d", "lp_pool3d", "fold",
            "multilabel_margin_loss", "pdist", "conv_tbc", "affine_grid"]


def _gs_unnormalize(coord, size, align_corners):
    return (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2


def _gs_reflect(coord, lo2, hi2):
    """torch's reflect_coordinates, on twice the bounds (so half-pixel bounds stay integers)."""
    if lo2 == hi2:
        return coord * 0
    mn = lo2 / 2
    span = (hi2 - lo2) / 2
    c = (coord - mn).abs()
    flips = (c / span).detach().floor()
    extra = c - flips * span
    even = (flips % 2) == 0
    return _gs_where(even, extra + mn, span - extra + mn)


def _gs_where(cond, a, b):
    return _where(cond, a, b)


def _gs_source(coord, size, padding_mode, align_corners):
    c = _gs_unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        c = c.clamp(0, size - 1)
    elif padding_mode == "reflection":
        c = _gs_reflect(c, 0, 2 * (size - 1)) if align_corners else _gs_reflect(c, -1, 2 * size - 1)
        c = c.clamp(0, size - 1)
    return c


def _gs_bounded(c, size, padding_mode, align_corners):
    """A bicubic tap's coordinate after padding (torch's compute_coordinates for get_value_bounded)."""
    if padding_mode == "border":
        return c.clamp(0, size - 1)
    if padding_mode == "reflection":
        c = _gs_reflect(c, 0, 2 * (size - 1)) if align_corners else _gs_reflect(c, -1, 2 * size - 1)
        return c.clamp(0, size - 1)
    return c


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sampling at grid points (2-d: bilinear, nearest, bicubic; 3-d volumes: bilinear, i.e. trilinear, and
    nearest), composed of gathers: gradients reach both input and grid."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        align_corners = False
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, but "
                           f"got input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    nd = input.ndim - 2
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.shape[-1] != nd:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {nd} in last dimension, but got grid with "
                           f"sizes {list(grid.shape)}")
    if mode == "bicubic" and nd == 3:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    N, C = input.shape[:2]
    sizes = tuple(input.shape[2:])                    # (D,) H, W
    out_sp = tuple(grid.shape[1:-1])
    n_out = int(np.prod(out_sp))
    flat = input.reshape(N, C, int(np.prod(sizes)))
    # grid's last dim holds x, y(, z): coordinate k of the grid indexes spatial dim nd-1-k
    coords = [grid[..., nd - 1 - d] for d in range(nd)]           # per spatial dim, outermost first

    def tap(idx):                  # integer coords per spatial dim (N, *out) -> (N, C, *out), zero outside
        inside = None
        lin = None
        for d, (c, n) in enumerate(zip(idx, sizes)):
            ok = (c >= 0) & (c <= n - 1)
            inside = ok if inside is None else inside & ok
            cc = c.clamp(0, n - 1)
            lin = cc if lin is None else lin * n + cc
        lin = lin.to(_dtype_long()).reshape(N, 1, n_out)
        v = flat.gather(2, lin.expand(N, C, n_out)).reshape((N, C) + out_sp)
        return v * inside.unsqueeze(1).to(v.dtype)

    if mode == "bicubic":
        src = [_gs_unnormalize(c, n, align_corners) for c, n in zip(coords, sizes)]
        base = [c.detach().floor() for c in src]
        ws = [_cubic_weights(c - b) for c, b in zip(src, base)]
        out = None
        for i in range(4):
            for j in range(4):
                yy = _gs_bounded(base[0] + (i - 1), sizes[0], padding_mode, align_corners)
                xx = _gs_bounded(base[1] + (j - 1), sizes[1], padding_mode, align_corners)
                if padding_mode != "zeros":       # reflected taps stay real-valued: round as torch's cast
                    yy, xx = yy.detach().round(), xx.detach().round()
                term = tap([yy, xx]) * (ws[0][i] * ws[1][j]).unsqueeze(1)
                out = term if out is None else out + term
        return out
    src = [_gs_source(c, n, padding_mode, align_corners) for c, n in zip(coords, sizes)]
    if mode == "nearest":
        # round half to even, as torch's nearbyint
        return tap([c.detach().round() for c in src])
    lo = [c.detach().floor() for c in src]
    hi_w = [c - f for c, f in zip(src, lo)]
    out = None
    for corner in range(2 ** nd):
        bits = [(corner >> (nd - 1 - d)) & 1 for d in range(nd)]
        w = None
        for d, b in enumerate(bits):
            wd = hi_w[d] if b else 1 - hi_w[d]
            w = wd if w is None else w * wd
        term = tap([f + b for f, b in zip(lo, bits)]) * w.unsqueeze(1)
        out = term if out is None else out + term
    return out


__all__ += ["grid_sample"]


def _full(like, value):
    return like.new_full(tuple(like.shape), value)


def _lse(parts):
    """log(sum(exp)) over the first dim, -inf (and zero gradient, not NaN) where every term is -inf."""
    x = stack(parts, 0)
    m = x.detach().amax(0)
    m = _gs_where(m.isinf(), _full(m, 0.0), m).detach()
    s = (x - m).exp().sum(0)
    ok = s > 0
    out = _gs_where(ok, s, _full(s, 1)).log() + m
    return _gs_where(ok, out, _full(out, float("-inf")))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Connectionist temporal classification (torch's alpha recursion in log space, batched over the
    samples; the gradient is autograd's through the recursion)."""
    check_reduction(reduction)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        targets = targets.unsqueeze(0) if targets.ndim == 1 and not isinstance(target_lengths, (list, tuple)) \
            and getattr(target_lengths, "ndim", 0) == 0 else targets
    if log_probs.ndim != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs to be 2-D or 3-D, got {log_probs.ndim}-D")
    T, N, C = log_probs.shape
    il = [int(v) for v in (input_lengths.reshape(-1).tolist() if isinstance(input_lengths, Tensor)
                           else np.atleast_1d(input_lengths))]
    tlen = [int(v) for v in (target_lengths.reshape(-1).tolist() if isinstance(target_lengths, Tensor)
                             else np.atleast_1d(target_lengths))]
    if len(il) != N:
        raise RuntimeError(f"input_lengths must be of size batch_size, but got {len(il)} for batch size {N}")
    if len(tlen) != N:
        raise RuntimeError(f"target_lengths must be of size batch_size, but got {len(tlen)} for batch size {N}")
    if not 0 <= blank < C:
        raise RuntimeError("blank must be in label range")
    tg = targets.detach().cpu().numpy()
    if tg.ndim == 1:           # concatenated targets
        offs = np.concatenate([[0], np.cumsum(tlen)])
        rows = [tg[offs[i]:offs[i + 1]] for i in range(N)]
    else:
        rows = [tg[i, :tlen[i]] for i in range(N)]
    for i in range(N):
        if il[i] > T:
            raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {il[i]} "
                               f"(while checking arguments for ctc_loss_cpu)")
    S = max(tlen) if tlen else 0
    L = 2 * S + 1
    ext = np.full((N, L), blank, dtype=np.int64)
    skip = np.zeros((N, L), dtype=bool)
    for i, r in enumerate(rows):
        ext[i, 1:2 * len(r):2] = r
        for s in range(3, 2 * len(r), 2):
            skip[i, s] = ext[i, s] != ext[i, s - 2]
    ext_t = log_probs.new_tensor(ext, dtype=_D.int64)
    emit = log_probs.gather(2, ext_t.unsqueeze(0).expand(T, N, L))          # (T, N, L)
    ninf = float("-inf")
    init = np.full((N, L), ninf)
    init[:, :2] = 0.0
    alpha = emit[0] + log_probs.new_tensor(init)
    skip_t = log_probs.new_tensor(skip, dtype=_D.bool_)
    ninf_col = alpha.new_full((N, 1), ninf)
    ninf_col2 = alpha.new_full((N, 2), ninf)
    lens = log_probs.new_tensor(np.array(il), dtype=_D.int64).reshape(N, 1)
    for t in range(1, T):
        a1 = _E.cat([ninf_col, alpha[:, :-1]], 1)
        a2 = _E.cat([ninf_col2, alpha[:, :-2]], 1) if L > 2 else _full(alpha, ninf)
        a2 = _gs_where(skip_t, a2, _full(a2, ninf)) if L > 2 else a2
        new = _lse([alpha, a1, a2]) + emit[t]
        alpha = _gs_where(lens > t, new, alpha)
    last = log_probs.new_tensor(np.array([2 * n for n in tlen]), dtype=_D.int64).reshape(N, 1)
    prev = (last - 1).clamp(min=0)
    end = alpha.gather(1, last).squeeze(1)
    end2 = alpha.gather(1, prev).squeeze(1)
    has = log_probs.new_tensor(np.array(tlen) > 0, dtype=_D.bool_)
    end2 = _gs_where(has, end2, _full(end2, ninf))
    nll = -_lse([end, end2])
    nll = _gs_where(log_probs.new_tensor(np.array(il) == 0, dtype=_D.bool_) & ~has, _full(nll, 0.0), nll)
    if zero_infinity:
        nll = _gs_where(nll.isinf(), _full(nll, 0.0), nll)
    if reduction == "mean":
        div = log_probs.new_tensor(np.maximum(np.array(tlen), 1).astype(np.float64)).to(nll.dtype)
        return (nll / div).mean()
    if reduction == "sum":
        return nll.sum()
    return nll.squeeze(0) if unbatched else nll


__all__ += ["ctc_loss"]


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """One conv_transpose2d per depth tap of the kernel over every depth slice (batched), each added into the
    output depths it reaches (index_add), then cropped by the depth padding: conv3d's adjoint, as torch's."""
    if input.ndim not in (4, 5):
        raise RuntimeError(f"Expected 4D (unbatched) or 5D (batched) input to conv_transpose3d, but got input of "
                           f"size: {list(input.shape)}")
    if input.ndim == 4:
        return conv_transpose3d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    s = _ntuple(stride, 3, "conv_transpose3d", "stride")
    p = _ntuple(padding, 3, "conv_transpose3d", "padding")
    op = _ntuple(output_padding, 3, "conv_transpose3d", "output_padding")
    d = _ntuple(dilation, 3, "conv_transpose3d", "dilation")
    if weight.ndim != 5:
        raise RuntimeError(f"expected weight to be 5-dimensional for conv_transpose3d, but got "
                           f"{weight.ndim}-dimensional weight of size {list(weight.shape)}")
    if weight.shape[0] != input.shape[1]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[0]} channels, but got {input.shape[1]} "
                           f"channels instead")
    for o, st, dl in zip(op, s, d):
        if o >= st and o >= dl:
            raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                               f"output_padding: {list(op)}, stride: {list(s)}, dilation: {list(d)}")
    N, C, D, H, W = input.shape
    kD = weight.shape[2]
    full = (D - 1) * s[0] + d[0] * (kD - 1) + 1 + op[0]
    oD = full - 2 * p[0]
    if oD <= 0:
        raise RuntimeError(f"Calculated output size is too small for conv_transpose3d (depth {oD})")
    slices = input.transpose(1, 2).reshape(N * D, C, H, W)
    out = None
    for t in range(kD):
        y = conv_transpose2d(slices, weight[:, :, t], None, s[1:], p[1:], op[1:], groups, d[1:])
        y = y.reshape(N, D, y.shape[1], y.shape[2], y.shape[3])
        if out is None:
            out = _ops.zeros(N, full, y.shape[2], y.shape[3], y.shape[4], dtype=y.dtype, device=y.device)
        at = _ops.arange(D, device=y.device) * s[0] + t * d[0]
        out = out.index_add(1, at, y)
    out = out[:, p[0]:p[0] + oD].transpose(1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out


__all__ += ["conv_transpose3d"]
