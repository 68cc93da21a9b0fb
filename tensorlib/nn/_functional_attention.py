"""torch.nn.functional.multi_head_attention_forward: the whole multi-head attention of nn.MultiheadAttention
as a function of its weights (torch's argument list, shapes, masks and errors). nn.MultiheadAttention calls
it; when no weights are asked for, the attention itself is the one fused scaled_dot_product_attention op.

Mask conventions follow torch: a boolean attn_mask / key_padding_mask marks positions that may NOT be
attended (True = masked); a float mask is added to the attention scores."""
from __future__ import annotations

import math

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


def _in_projection(query, key, value, E, w, b, separate, q_w, k_w, v_w):
    """torch's _in_projection_packed / _in_projection, op for op (so a profile shows torch's steps: the packed
    projection split with unflatten, unsqueeze, transpose, squeeze, contiguous and select)."""
    if separate:
        if q_w is None or k_w is None or v_w is None:
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                                 "v_proj_weight is None")
        bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
        return linear(query, q_w, bq), linear(key, k_w, bk), linear(value, v_w, bv)
    if w is None:
        raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
    if key is value:
        if query is key:                        # self-attention: one projection, then split
            proj = linear(query, w, b)
            proj = proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
            return proj[0], proj[1], proj[2]
        w_q, w_kv = w.split([E, E * 2])
        b_q, b_kv = (None, None) if b is None else b.split([E, E * 2])
        kv = linear(key, w_kv, b_kv).unflatten(-1, (2, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
        return linear(query, w_q, b_q), kv[0], kv[1]
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
    return linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)


def _heads(x, static, name, nh, d):
    """(S, N, E) -> (N*H, S, D), or the given static keys/values (N*H, S, D) after torch's checks."""
    if static is None:
        return x.view(x.shape[0], nh, d).transpose(0, 1)
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
    """query (L, N, E) or (L, E), key/value (S, N, E) or (S, E). Returns (attn_output, attn_weights or None).
    The same ops in the same order as torch 2.13's function, so profiles of the two compare op for op; the
    attention itself is the fused scaled_dot_product_attention op when no weights are asked for."""
    batched = query.ndim == 3
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                             f"query tensor")
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(f"For {'batched (3-D)' if batched else 'unbatched (2-D)'} `query`, expected `key` "
                             f"and `value` to be {query.ndim}-D but found {key.ndim}-D and {value.ndim}-D tensors "
                             f"respectively")
    if not batched:
        same_kv = key is value
        same_qk = query is key
        query = query.unsqueeze(1)
        key = query if same_qk else key.unsqueeze(1)
        value = key if same_kv else value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    S = key.shape[0]
    H = num_heads
    kp = _additive(key_padding_mask, query)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and kp is None and not need_weights:
        m = None                               # the hint goes to the fused attention as is_causal
    else:
        m = _additive(attn_mask, query)
        if kp is not None:
            is_causal = False
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    D = E // H
    if D * H != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {H}")
    q, k, v = _in_projection(query, key, value, E, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                             q_proj_weight, k_proj_weight, v_proj_weight)
    if m is not None:
        if m.ndim == 2:
            if tuple(m.shape) != (L, S):
                raise RuntimeError(f"The shape of the 2D attn_mask is {m.shape}, but should be {(L, S)}.")
            m = m.unsqueeze(0)
        elif m.ndim == 3:
            if tuple(m.shape) != (N * H, L, S):
                raise RuntimeError(f"The shape of the 3D attn_mask is {m.shape}, but should be {(N * H, L, S)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {m.ndim} is not supported")
    if bias_k is not None and bias_v is not None:   # after the projections, before the heads split
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = ops.cat([k, bias_k.repeat(1, N, 1)])
        v = ops.cat([v, bias_v.repeat(1, N, 1)])
        m, kp = _pad_last(m), _pad_last(kp)
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")
    q = q.view(L, N * H, D).transpose(0, 1)          # (N*H, L, D)
    k = _heads(k, static_k, "static_k", N * H, D)
    v = _heads(v, static_v, "static_v", N * H, D)
    if add_zero_attn:                  # a zero key and value per head: attention may go nowhere
        z = ops.zeros((N * H, 1, D), dtype=k.dtype, device=k.device)
        k, v = ops.cat([k, z], dim=1), ops.cat([v, z], dim=1)
        m, kp = _pad_last(m), _pad_last(kp)
    S = k.shape[1]
    if kp is not None:
        if tuple(kp.shape) != (N, S):
            raise AssertionError(f"expecting key_padding_mask shape of {(N, S)}, but got {tuple(kp.shape)}")
        kp = kp.view(N, 1, 1, S).expand(-1, H, -1, -1).reshape(N * H, 1, S)
        m = kp if m is None else m + kp
    if not training:
        dropout_p = 0.0
    if need_weights:            # the weights are returned: the probabilities as their own tensor
        q_scaled = q * math.sqrt(1.0 / float(D))
        if m is not None:
            w = ops.baddbmm(m, q_scaled, k.transpose(-2, -1))
        else:
            w = ops.bmm(q_scaled, k.transpose(-2, -1))
        w = softmax(w, -1)
        if dropout_p > 0.0:
            w = dropout(w, dropout_p)
        out = ops.bmm(w, v)
        out = out.transpose(0, 1).reshape(L * N, E)
        out = linear(out, out_proj_weight, out_proj_bias).view(L, N, out_proj_weight.shape[0])
        w = w.view(N, H, L, S)
        if average_attn_weights:
            w = w.mean(dim=1)
        if not batched:
            out, w = out.squeeze(1), w.squeeze(0)
        return out, w
    if m is not None:           # (1, L, S) or (N*H, L, S) -> broadcastable to SDPA's (N, H, L, S)
        m = m.unsqueeze(0) if m.shape[0] == 1 and m.ndim == 3 else m.view(N, H, -1, S)
    q = q.view(N, H, L, D)
    k = k.view(N, H, S, D)
    v = v.view(N, H, S, D)
    out = scaled_dot_product_attention(q, k, v, m, dropout_p, is_causal, scale=1.0 / math.sqrt(D))
    out = out.permute(2, 0, 1, 3).reshape(N * L, E)
    out = linear(out, out_proj_weight, out_proj_bias).view(L, N, out_proj_weight.shape[0])
    if not batched:
        out = out.squeeze(1)
    return out, None


__all__ = ["multi_head_attention_forward"]
