"""The functional ops torch exposes at its top level (torch.conv2d, torch.layer_norm, torch.embedding, ...),
with the ATen signatures torch gives them there, which differ from nn.functional's in places: reductions are
ints (0 none, 1 mean, 2 sum), dropout takes `train` and no `inplace`, batch_norm and instance_norm take every
argument by position in ATen's order, embedding and embedding_bag take the weight first, pools take no
`return_indices` (adaptive_max_pool1d returns both), embedding_bag returns torch's 4-tuple.

Each is nn.functional's function (or the op it dispatches) called with the arguments mapped, so that the
dispatched ops, autograd nodes and profiles are the same as nn.functional's; nothing here registers an op."""
from __future__ import annotations

from .. import _dtype as _D
from .. import ops as _ops
from ..autograd.grad_mode import no_grad
from ..ops._define import dispatch, public, torch_op
from ..ops.nn_ops import NATIVE_DROPOUT, dropout as _dropout, kl_div_op
from . import functional as F
from ._functional_extra import _instance_norm

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(r) -> str:
    """ATen's reduction enum (0 none, 1 mean, 2 sum) as nn.functional's name."""
    if isinstance(r, str):
        return r
    if r not in _REDUCTIONS:
        raise ValueError(f"{r} is not a valid value for reduction")
    return _REDUCTIONS[r]


# --- dropout --------------------------------------------------------------------------------------------

@public
def dropout(input, p, train):
    return _dropout(input, p, train)


@public
def dropout_(input, p, train):
    return _dropout(input, p, train, inplace=True)


@public
def feature_dropout(input, p, train):
    """Whole channels (dim 1) zeroed: torch's feature_dropout, nn.functional.dropout2d's op for any rank."""
    return _dropout(input, p, train, channels=True)


@public
def feature_dropout_(input, p, train):
    return _dropout(input, p, train, inplace=True, channels=True)


@public
def alpha_dropout(input, p, train):
    return F.alpha_dropout(input, p, train)


@public
def alpha_dropout_(input, p, train):
    return F.alpha_dropout(input, p, train, inplace=True)


@public
def feature_alpha_dropout(input, p, train):
    return F.feature_alpha_dropout(input, p, train)


@public
def feature_alpha_dropout_(input, p, train):
    return F.feature_alpha_dropout(input, p, train, inplace=True)


@public
def native_dropout(input, p, train):
    """torch.native_dropout: (output, keep mask as bool), one fused op (NativeDropoutBackward0) on every
    device; train=None is training, train=False keeps everything (the op with p=0, as torch's clone)."""
    out, scaled = dispatch(NATIVE_DROPOUT, input, p=float(p) if train or train is None else 0.0)
    return out, scaled != 0


# --- normalization --------------------------------------------------------------------------------------

@public
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


@public
def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


@public
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return F.group_norm(input, num_groups, weight, bias, eps)


@public
def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    return _instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps)


@public
def rms_norm(input, normalized_shape, weight=None, eps=None):
    return F.rms_norm(input, normalized_shape, weight, eps)


@public
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """torch.native_layer_norm: (output, mean, rstd), the statistics over the normalized dims kept as size-1
    dims (not differentiable, as torch's); the output is layer_norm's."""
    out = F.layer_norm(input, normalized_shape, weight, bias, eps)
    dims = tuple(range(input.ndim - len(tuple(normalized_shape)), input.ndim))
    with no_grad():
        x = input.detach()
        mean = x.mean(dims, keepdim=True)
        rstd = (x.var(dims, unbiased=False, keepdim=True) + eps).rsqrt()
    return out, mean, rstd


@public
def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """torch.native_batch_norm: (output, save_mean, save_invstd): batch_norm's output (and its update of
    the running statistics in training), the batch's per-channel mean and 1 / sqrt(biased var + eps) in
    training (not differentiable), empty tensors in evaluation, as torch's CPU kernel."""
    out = F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if not training:
        empty = _ops.zeros(0, dtype=input.dtype, device=input.device)
        return out, empty, empty.clone()
    dims = (0,) + tuple(range(2, input.ndim))
    with no_grad():
        x = input.detach()
        mean = x.mean(dims)
        invstd = (x.var(dims, unbiased=False) + eps).rsqrt()
    return out, mean, invstd


# --- embedding ------------------------------------------------------------------------------------------

@public
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """torch.embedding: the weight first (nn.functional.embedding takes the indices first); a negative
    padding_idx (ATen's default -1) is no padding."""
    return F.embedding(indices, weight, padding_idx=None if padding_idx < 0 else padding_idx,
                       scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}


@public
def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """torch.embedding_bag: (output, offset2bag, bag_size, max_indices), the output nn.functional's; the
    other three as torch's CPU kernel returns them, of the indices' dtype: offset2bag each index's bag
    (empty in sum mode on its fast path: float32/16 weights, no padding_idx), bag_size each bag's count
    of non-padding indices (zeros in sum mode), max_indices the weight row of each max (max mode), else
    bag_size again (mean) or zeros (sum, one per offset, as torch's)."""
    if mode not in _BAG_MODES:
        raise RuntimeError(f"embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max), got {mode}")
    name = _BAG_MODES[mode]
    out = F.embedding_bag(indices, weight, offsets, scale_grad_by_freq=scale_grad_by_freq, mode=name,
                          sparse=sparse, per_sample_weights=per_sample_weights,
                          include_last_offset=include_last_offset, padding_idx=padding_idx)
    dev, it = indices.device, indices.dtype
    n_off = offsets.shape[0]
    idx = indices.tolist()
    offs = [int(o) for o in offsets.tolist()]
    bounds = offs + ([] if include_last_offset else [len(idx)])
    bag_of, size = [0] * len(idx), [0] * (len(bounds) - 1)
    for b in range(len(bounds) - 1):
        for i in range(bounds[b], bounds[b + 1]):
            bag_of[i] = b
            if padding_idx is None or idx[i] != padding_idx:
                size[b] += 1
    offset2bag = _ops.tensor(bag_of, dtype=it, device=dev)
    if name == "sum":
        zeros = _ops.zeros(n_off, dtype=it, device=dev)
        if padding_idx is None and weight.dtype in (_D.float32, _D.float16, _D.bfloat16):
            offset2bag = _ops.zeros(0, dtype=it, device=dev)
        return out, offset2bag, zeros, zeros.clone()
    bag_size = _ops.tensor(size, dtype=it, device=dev)
    if name == "mean":
        return out, offset2bag, bag_size, bag_size.clone()
    w = weight.detach()
    rows = []
    for b in range(out.shape[0]):
        s, e = bounds[b], bounds[b + 1]
        if e <= s:
            rows.append([0] * weight.shape[1])
            continue
        part = w[_ops.tensor(idx[s:e], dtype=_D.int64, device=dev)]
        pos = part.argmax(0).tolist()
        rows.append([idx[s + p] for p in pos])
    max_indices = _ops.tensor(rows, dtype=it, device=dev).reshape(out.shape[0], weight.shape[1])
    return out, offset2bag, bag_size, max_indices


# --- convolution and pooling ----------------------------------------------------------------------------

for _name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "cosine_similarity", "pairwise_distance",
              "pdist", "bilinear", "adaptive_avg_pool1d", "selu_", "celu_", "threshold_"):
    public(getattr(F, _name), name=_name)


def _stride(stride):
    return None if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else stride


@public
@torch_op("max_pool1d")
def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


@public
def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


@public
def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return F.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


@public
@torch_op("avg_pool1d")
def avg_pool1d(input, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True):
    return F.avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode, count_include_pad)


@public
@torch_op("adaptive_max_pool1d")
def adaptive_max_pool1d(input, output_size):
    """torch.adaptive_max_pool1d: (output, indices), always both."""
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


@public
def constant_pad_nd(input, pad, value=0):
    return F.pad(input, list(pad), "constant", value)


# --- activations ----------------------------------------------------------------------------------------

@public
@torch_op("selu")
def selu(input):
    return F.selu(input)


@public
@torch_op("celu")
def celu(input, alpha=1.0):
    return F.celu(input, alpha)


@public
def threshold(input, threshold, value):
    return F.threshold(input, threshold, value)


def _rrelu(input, lower, upper, training, generator, inplace):
    if not training or generator is None:
        return F.rrelu(input, lower, upper, training, inplace)
    slope = _ops.rand(tuple(input.shape), generator=generator, dtype=input.dtype, device=input.device) * \
        (upper - lower) + lower
    out = _ops.where(input >= 0, input, input * slope)
    return input.copy_(out) if inplace else out


@public
def rrelu(input, lower=0.125, upper=1.0 / 3, training=False, generator=None):
    return _rrelu(input, lower, upper, training, generator, False)


@public
def rrelu_(input, lower=0.125, upper=1.0 / 3, training=False, generator=None):
    return _rrelu(input, lower, upper, training, generator, True)


# --- losses ---------------------------------------------------------------------------------------------
# torch's Python bindings of these `torch.*` losses default to no reduction (their schemas say Mean, but torch 2.13's
# torch.kl_div(x, y) and the others return the elementwise loss, checked side by side): the same here; the
# nn.functional forms default to "mean".

@public
def kl_div(input, target, reduction=0, *, log_target=False):
    """torch.kl_div: the op itself (no 'mean' warning: that is nn.functional's)."""
    return kl_div_op(input, target, _reduction(reduction), log_target)


@public
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                              pos_weight=pos_weight)


@public
@torch_op("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin=1.0, reduction=0):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


@public
@torch_op("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


@public
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


@public
@torch_op("triplet_margin_loss")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-06, swap=False, reduction=0):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


@public
def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


@public
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=0, zero_infinity=False):
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _reduction(reduction),
                      zero_infinity)

