"""More of torch.nn.functional, composed of tensorlib's dispatched ops as torch's Python layer composes its
own (so autograd, devices and the profiler come with the ops). Formulas, defaults and errors follow torch
2.13's `torch/nn/functional.py` and its native kernels; each is checked against torch in
devtools/torch_compat/test_nn_extra_against_torch.py."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import ops as _ops
from .._tensor_base import Tensor
from .. import ops as _E
from ..ops.conv_ops import conv_transpose2d
from ..ops.nn_ops import check_reduction, dropout as _dropout, embedding, legacy_reduction, pad, softmax
from ..ops.pool_ops import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = [
    "hardsigmoid", "hardswish", "mish", "selu", "selu_", "celu", "celu_", "softsign", "softshrink", "hardshrink",
    "tanhshrink", "threshold", "threshold_", "prelu", "rrelu", "rrelu_", "relu_", "elu_", "leaky_relu_",
    "hardtanh_", "dropout1d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "soft_margin_loss",
    "multilabel_soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
    "multi_margin_loss", "pairwise_distance", "cosine_similarity", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "instance_norm", "local_response_norm", "rms_norm", "max_pool1d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "lp_pool1d", "lp_pool2d",
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
    out = _E.clamp(input / 6 + 0.5, 0.0, 1.0)
    return _inplace(input, out) if inplace else out


def hardswish(input, inplace=False):
    out = input * _E.clamp(input + 3, 0.0, 6.0) / 6
    return _inplace(input, out) if inplace else out


def mish(input, inplace=False):
    out = input * _E.tanh(_E.softplus(input))
    return _inplace(input, out) if inplace else out


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    out = _E.elu(input, _SELU_ALPHA) * _SELU_SCALE
    return _inplace(input, out) if inplace else out


def selu_(input):
    return selu(input, True)


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    out = _E.elu(input / alpha, 1.0) * alpha
    return _inplace(input, out) if inplace else out


def celu_(input, alpha=1.0):
    return celu(input, alpha, True)


def softsign(input):
    return input / (input.abs() + 1)


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _E.where(input > lambd, input - lambd, _E.where(input < -lambd, input + lambd, input * 0))


def hardshrink(input, lambd=0.5):
    return _E.where((input > lambd) | (input < -lambd), input, input * 0)


def tanhshrink(input):
    return input - _E.tanh(input)


def threshold(input, threshold, value, inplace=False):
    out = _E.where(input > threshold, input, _ops.full_like(input, value))
    return _inplace(input, out) if inplace else out


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, True)


def prelu(input, weight):
    if weight.ndim != 1:
        raise RuntimeError("prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = "
                           f"{weight.ndim}")
    c = weight.shape[0]
    if c != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if c != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{c} and channel size = {channels}.")
        weight = weight.reshape((1, c) + (1,) * (input.ndim - 2)) if input.ndim >= 2 else weight
    return _E.where(input > 0, input, input * weight)


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


def elu_(input, alpha=1.0):
    return _inplace(input, _E.elu(input, alpha))


def leaky_relu_(input, negative_slope=0.01):
    return _inplace(input, _E.leaky_relu(input, negative_slope))


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return input.clamp_(min_val, max_val)


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
                      "result in an error in a future release.", UserWarning, stacklevel=2)
    if input.ndim == 4:
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
    return -_E.softplus(-x)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} ")
    return _reduce(_E.clamp(-target * (input1 - input2) + margin, min=0.0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    zeros = input * 0
    margin_clamp = _E.clamp(margin - input, min=0.0)
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
    out = _E.where(target == 1, 1 - cos, zeros) + _E.where(target == -1, _E.clamp(cos - margin, min=0.0), zeros)
    return _reduce(out, reduction)


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


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    d = max(x1.ndim, x2.ndim) - 1
    return _ops.norm(x1 - x2 + eps, p, dim=d, keepdim=keepdim)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    w12 = (x1 * x2).sum(dim)
    w1 = (x1 * x1).sum(dim)
    w2 = (x2 * x2).sum(dim)
    n12 = _E.sqrt(_E.clamp(w1 * w2, min=eps * eps))
    return w12 / n12


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _E.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_E.clamp(margin + d_pos - d_neg, min=0.0), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                         "instead")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = _E.minimum(d_neg, dist(positive, negative))
    return _reduce(_E.clamp(margin + d_pos - d_neg, min=0.0), check_reduction(reduction))


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

def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    dims = tuple(range(2, input.ndim))
    if use_input_stats:
        mean = input.mean(dim=dims, keepdim=True)
        var = input.var(dim=dims, keepdim=True, unbiased=False)
        if running_mean is not None or running_var is not None:
            from ..autograd import no_grad
            n = int(np.prod([input.shape[d] for d in dims]))
            with no_grad():
                m = mean.detach().reshape(input.shape[:2]).mean(0)
                v = (var.detach() * (n / max(n - 1, 1))).reshape(input.shape[:2]).mean(0)
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(m * momentum)
                if running_var is not None:
                    running_var.mul_(1 - momentum).add_(v * momentum)
    else:
        shape = (1, -1) + (1,) * len(dims)
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    out = (input - mean) / _E.sqrt(var + eps)
    shape = (1, -1) + (1,) * len(dims)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


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


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"max_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else _single(stride, "stride")
    out, idx = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding")),
                          (1, _single(dilation, "dilation")), ceil_mode, True)
    return out.squeeze(-2), idx.squeeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    out, idx = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"avg_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size)
    s = k if stride is None else _single(stride, "stride")
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding")), ceil_mode,
                      count_include_pad).squeeze(-2)


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
    rows, cols, vals, idxs = _bounds(h, oh), _bounds(w, ow), [], []
    lead = tuple(input.shape[:-2])
    for (h0, h1) in rows:
        rv, ri = [], []
        for (w0, w1) in cols:
            win = input[..., h0:h1, w0:w1].reshape(lead + (-1,))
            v, i = win.max(dim=-1)
            ww = w1 - w0
            ri.append((i // ww + h0) * w + (i % ww + w0))
            rv.append(v)
        vals.append(_ops.stack(rv, -1))
        idxs.append(_ops.stack(ri, -1))
    return _ops.stack(vals, -2), _ops.stack(idxs, -2)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool2d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


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

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


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


def _src_index(n_in, n_out, scale, align_corners, linear):
    """Source coordinates of each output position, as torch's upsample kernels compute them (float64)."""
    dst = np.arange(n_out, dtype=np.float64)
    if linear and align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    ratio = 1.0 / scale if scale is not None else n_in / n_out
    if linear:
        return np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    return np.minimum(np.floor(dst * np.float32(ratio)), n_in - 1)


def _gather(x, dim, idx):
    return x.index_select(dim, _ops.tensor(idx.astype(np.int64), device=x.device))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    if mode not in _MODES:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
                                  f"nearest-exact (got {mode})")
    if mode in ("nearest", "area", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    nd = input.ndim - 2
    want = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(mode)
    if want is not None and want != nd:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {want + 2}D input")
    if mode in ("bicubic", "area", "nearest-exact") or antialias:
        raise NotImplementedError(f"tensorlib's interpolate has modes nearest, linear, bilinear and trilinear; "
                                  f"{mode}{' with antialias' if antialias else ''} is not implemented yet")
    sizes, scales = _out_sizes(input, size, scale_factor, nd)
    if recompute_scale_factor:
        scales = None
    out = input
    for k in range(nd):
        dim = 2 + k
        n_in, n_out = input.shape[dim], sizes[k]
        scale = scales[k] if scales is not None else None
        if mode == "nearest":
            out = _gather(out, dim, _src_index(n_in, n_out, scale, False, False))
            continue
        src = _src_index(n_in, n_out, scale, bool(align_corners), True)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = (src - i0).astype(input.dtype.np if input.dtype.name != "bfloat16" else np.float32)
        shape = [1] * out.ndim
        shape[dim] = n_out
        w1 = _ops.tensor(lam.reshape(shape), device=input.device).to(input.dtype)
        out = _gather(out, dim, i0) * (1 - w1) + _gather(out, dim, i1) * w1
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
    if sparse or max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError("tensorlib's embedding_bag has no sparse gradients, max_norm or "
                                  "scale_grad_by_freq yet")
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
    emb = embedding(input, weight)
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
        if mode == "sum":
            bags.append(part.sum(0))
        elif mode == "mean":
            cnt = keep[s:e].sum() if keep is not None else e - s
            bags.append(part.sum(0) / (_E.clamp(cnt, min=1) if keep is not None else cnt))
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
