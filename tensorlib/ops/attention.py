"""Scaled dot-product attention as one op forward and one op backward (torch's fused CPU attention is one
op too), instead of matmul, scale, mask, softmax, dropout and matmul with their backward nodes.

softmax(Q K^T * scale + mask) V with torch's math-path semantics: a bool mask keeps where True, a float
mask is added, is_causal masks above the diagonal (top-left aligned), dropout is drawn from tensorlib's
generator as `dropout` draws it. The probabilities (and the dropout mask) are kept for the backward.
"""
from __future__ import annotations

from .. import random as R
from .._device import device_of
from ._define import dispatch, np, op


def _sum_to(xp, a, shape):
    """Sum a broadcast gradient back to `shape` (leading and size-1 dimensions)."""
    if a.shape == tuple(shape):
        return a
    lead = a.ndim - len(shape)
    if lead:
        a = a.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a


@op("scaled_dot_product_attention", save="io", amp="lower", nondiff_outputs=(1, 2),
    node_name="ScaledDotProductAttentionBackward0")
def SDPA(xp, q, k, v, mask=None, scale=1.0, is_causal=False, dropout_p=0.0, generator=None):
    s = xp.matmul(q, xp.swapaxes(k, -1, -2))
    s *= scale
    L, S = s.shape[-2:]
    if is_causal:
        s = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = xp.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    p = xp.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    p = p.astype(q.dtype, copy=False)
    if dropout_p > 0:
        keep = R.sample("uniform", p.shape, p.dtype, device_of(p), generator=generator) >= dropout_p
        drop = (keep.astype(p.dtype) * (1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0)).astype(p.dtype)
        out = xp.matmul(p * drop, v)
    else:
        drop = xp.ones((), dtype=p.dtype)
        out = xp.matmul(p, v)
    return out.astype(q.dtype, copy=False), p, drop


@op("scaled_dot_product_attention_backward", node_name="ScaledDotProductAttentionBackwardBackward0")
def SDPA_BACKWARD(xp, g, q, k, v, p, drop, scale=1.0, mask_shape=None):
    pd = p * drop if drop.ndim else p
    dv = _sum_to(xp, xp.matmul(xp.swapaxes(pd, -1, -2), g), v.shape)
    dp = xp.matmul(g, xp.swapaxes(v, -1, -2))
    if drop.ndim:
        dp *= drop
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = _sum_to(xp, xp.matmul(ds, k) * scale, q.shape)
    dk = _sum_to(xp, xp.matmul(xp.swapaxes(ds, -1, -2), q) * scale, k.shape)
    dmask = _sum_to(xp, ds, mask_shape) if mask_shape is not None else xp.zeros((), dtype=ds.dtype)
    return dq, dk, dv, dmask


@SDPA.def_backward
def _(ctx, g, *_):
    q, k, v, mask = ctx.saved_inputs
    _, p, drop = ctx.saved_output
    need = ctx.needs_input_grad
    float_mask = mask is not None and mask._data.dtype != np.bool_ and need[3]
    dq, dk, dv, dmask = dispatch(SDPA_BACKWARD, g, q, k, v, p, drop, scale=ctx.attrs.get("scale", 1.0),
                                 mask_shape=tuple(mask.shape) if float_mask else None)
    return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
            dmask if float_mask else None)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """The fused op (see the module's docstring); nn.functional's function checks the arguments first."""
    attrs = {"scale": float(scale)}
    if is_causal:
        attrs["is_causal"] = True
    if dropout_p > 0:
        attrs["dropout_p"] = float(dropout_p)
    return dispatch(SDPA, query, key, value, attn_mask, **attrs)[0]
