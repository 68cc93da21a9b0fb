"""torch.nn.functional.multi_head_attention_forward: the whole multi-head attention of nn.MultiheadAttention
as a function of its weights (torch's argument list, shapes, masks and errors). nn.MultiheadAttention calls
it; when no weights are asked for, the attention itself is the one fused scaled_dot_product_attention op.

Mask conventions follow torch: a boolean attn_mask / key_padding_mask marks positions that may NOT be
attended (True = masked); a float mask is added to the attention scores."""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as _D, ops
from ..ops.attention import scaled_dot_product_attention
from ..ops.nn_ops import dropout, linear, softmax


def _pad_last(mask):
    """An additive mask with one more (unmasked) column, for an appended key (bias_k, zero attention)."""
    if mask is None:
        return None
    return ops.cat([mask, ops.zeros(*mask.shape[:-1], 1, dtype=mask.dtype, device=mask.device)], -1)


def _additive(mask, like):
    """A boolean 'masked' mask as 0 / -inf, a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == _D.bool_:
        return ops.zeros(*mask.shape, dtype=like.dtype, device=like.device).masked_fill(mask, -math.inf)
    return mask.to(dtype=like.dtype)


def _in_projection(query, key, value, E, in_proj_weight, in_proj_bias, separate, q_w, k_w, v_w):
    b = in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
    if not separate:
        w = in_proj_weight
        if query is key and key is value:      # self-attention: one projection, then split
            return linear(query, w, b).chunk(3, -1)
        return linear(query, w[:E], bq), linear(key, w[E:2 * E], bk), linear(value, w[2 * E:], bv)
    if q_w is None or k_w is None or v_w is None:
        raise AssertionError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                             "v_proj_weight is None")
    return linear(query, q_w, bq), linear(key, k_w, bk), linear(value, v_w, bv)


def _heads(x, static, name, nh, d):
    """(S, N, E) -> (N*H, S, D), or the given static keys/values (N*H, S, D) after torch's checks."""
    if static is None:
        return x.reshape(x.shape[0], nh, d).transpose(0, 1)
    if static.shape[0] != nh:
        raise AssertionError(f"expecting {name}.size(0) of {nh}, but got {static.shape[0]}")
    if static.shape[2] != d:
        raise AssertionError(f"expecting {name}.size(2) of {d}, but got {static.shape[2]}")
    return static


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """query (L, N, E) or (L, E), key/value (S, N, E) or (S, E). Returns (attn_output, attn_weights or None)."""
    batched = query.ndim == 3
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                             f"query tensor")
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(f"For {'batched (3-D)' if batched else 'unbatched (2-D)'} `query`, expected `key` "
                             f"and `value` to be {query.ndim}-D but found {key.ndim}-D and {value.ndim}-D tensors "
                             f"respectively")
    if not batched:
        same = query is key and key is value
        query = query.unsqueeze(1)
        key, value = (query, query) if same else (key.unsqueeze(1), value.unsqueeze(1))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    S = key.shape[0]
    H = num_heads
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    D = E // H
    if D * H != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {H}")
    q, k, v = _in_projection(query, key, value, E, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                             q_proj_weight, k_proj_weight, v_proj_weight)
    if is_causal and attn_mask is None:
        attn_mask = ops.tensor(np.triu(np.ones((L, S), dtype=bool), 1), device=query.device)
    m = _additive(attn_mask, q)
    kp = _additive(key_padding_mask, q)
    if m is not None:
        want = [(L, S), (N * H, L, S)][m.ndim - 2] if m.ndim in (2, 3) else None
        if want is None:
            raise AssertionError(f"attn_mask's dimension {m.ndim} is not supported")
        if tuple(m.shape) != want:
            raise RuntimeError(f"The shape of the {m.ndim}D attn_mask is {list(m.shape)}, but should be "
                               f"{list(want)}.")
    if bias_k is not None and bias_v is not None:   # after the projections, before the heads split
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key." if static_k is not None
                                 else "bias cannot be added to static value.")
        k = ops.cat([k, bias_k.expand(1, N, E)], 0)
        v = ops.cat([v, bias_v.expand(1, N, E)], 0)
        m, kp = _pad_last(m), _pad_last(kp)
    elif (bias_k is None) != (bias_v is None):
        raise AssertionError("bias_k and bias_v should both be given or both be None")
    q = q.reshape(L, N * H, D).transpose(0, 1)          # (N*H, L, D)
    k = _heads(k, static_k, "static_k", N * H, D)
    v = _heads(v, static_v, "static_v", N * H, D)
    if add_zero_attn:                  # a zero key and value per head: attention may go nowhere
        z = ops.zeros(N * H, 1, D, dtype=k.dtype, device=k.device)
        k, v = ops.cat([k, z], 1), ops.cat([v, z], 1)
        m, kp = _pad_last(m), _pad_last(kp)
    S = k.shape[1]
    if kp is not None and tuple(kp.shape) != (N, S):
        raise AssertionError(f"expecting key_padding_mask shape of {(N, S)}, but got {tuple(kp.shape)}")
    p_drop = dropout_p if training else 0.0
    attn = None
    if not need_weights:        # the fused attention op: one op forward, one backward
        if kp is not None:
            kp = kp.reshape(N, 1, 1, S).expand(N, H, 1, S).reshape(N * H, 1, S)
            m = kp if m is None else m + kp
        out = scaled_dot_product_attention(q, k, v, m, p_drop, scale=1.0 / math.sqrt(D))
    else:                       # the weights are returned: the probabilities as their own tensor
        scores = ops.bmm(q * (1.0 / math.sqrt(D)), k.transpose(1, 2))   # (N*H, L, S)
        if m is not None:
            scores = scores + m
        if kp is not None:
            scores = (scores.reshape(N, H, L, S) + kp.reshape(N, 1, 1, S)).reshape(N * H, L, S)
        attn = softmax(scores, -1)
        if p_drop > 0:
            attn = dropout(attn, p_drop, True)
        out = ops.bmm(attn, v)                                # (N*H, L, D)
    out = out.transpose(0, 1).reshape(L, N, E)
    out = linear(out, out_proj_weight, out_proj_bias)
    weights = None
    if attn is not None:
        weights = attn.reshape(N, H, L, S)
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
    if not batched:
        out = out.squeeze(1)
    return out, weights


__all__ = ["multi_head_attention_forward"]


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """torch.nn.functional.linear_cross_entropy: cross_entropy(linear(input, W, b), target), W of shape
    (num_classes, *out_features, in_features) for K-dimensional losses. torch's reference path; the chunked
    path that `options` selects (a memory saving, same results) is not built and is refused."""
    from .functional import cross_entropy
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


__all__ += ["linear_cross_entropy"]
