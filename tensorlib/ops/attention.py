"""Scaled dot-product attention as one op forward and one op backward (torch's fused CPU attention is one
op too), instead of matmul, scale, mask, softmax, dropout and matmul with their backward nodes.

softmax(Q K^T * scale + mask) V with torch's math-path semantics: Q and K^T are each scaled by sqrt(scale), a
bool mask keeps where True, a float mask is added, is_causal masks above the diagonal (top-left aligned), a
fully masked row gives zeros (torch's _safe_softmax), dropout is `dropout`'s kernel (the same draw). The
probabilities (and the dropout mask) are kept for the backward. The kernel is torch 2.13's CPU math backend
step for step, so while a profiler listens each step is in the range of the op torch runs for it
(``_scaled_dot_product_attention_math`` > ``mul``, ``bmm``, ``_safe_softmax`` > ``softmax`` / ``isneginf`` /
``all`` / ``scalar_tensor`` / ``where``, ``dropout``; the backward's ``bmm`` and ``_softmax_backward_data``).
Outside a profile the forward is `_fused`: the same values in fewer passes.
"""
from __future__ import annotations

import math
from functools import partial

from .. import _hooks as _H
from ._define import dispatch, np, op
from .nn_ops import DROPOUT, _softmax_k
from ._rows import ones_vector, row_max, row_sum, softmax_backward_rows
from .._graph import quiet_call, tensor_of
from ..dispatch import run_recorded_call


def _sum_to(xp, a, shape):
    """Sum a broadcast gradient back to `shape` (leading and size-1 dimensions)."""
    if a.shape == tuple(shape):
        return a
    lead = a.ndim - len(shape)
    if lead:
        a = a.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a


def _call(name, fn, *args):
    """A kernel step outside a profile: just the call (`_H.op_step` runs it inside a range of torch's op name)."""
    return fn(*args)


@op("scaled_dot_product_attention", save="io", amp="lower", nondiff_outputs=(1, 2),
    node_name="ScaledDotProductAttentionBackward0")
def SDPA(xp, q, k, v, mask=None, scale=1.0, is_causal=False, dropout_p=0.0, generator=None):
    if _H.range_hooks:      # torch's CPU backend for it, each step in the range of the op torch runs for it
        return _H.op_step("_scaled_dot_product_attention_math", _math, xp, _H.op_step, q, k, v, mask, scale,
                          is_causal, dropout_p, generator)
    if q.size == 0 or k.shape[-2] == 0:
        return _math(xp, _call, q, k, v, mask, scale, is_causal, dropout_p, generator)
    return _fused(xp, q, k, v, mask, scale, is_causal, dropout_p, generator)


_CAUSAL: dict = {}      # (xp, L, S) -> the (L, S) bool mask above the diagonal, what is_causal masks out


def _above_diagonal(xp, L, S):
    key = (xp, L, S)
    m = _CAUSAL.get(key)
    if m is None:
        if len(_CAUSAL) >= 64:
            _CAUSAL.clear()
        m = _CAUSAL[key] = xp.triu(xp.ones((L, S), dtype=bool), 1)
    return m


def _fused(xp, q, k, v, mask, scale, is_causal, dropout_p, generator):
    """`_math` outside a profile, the same values in fewer passes over the scores: the causal mask written
    into the product from a cached triangle, the softmax in place, and the fully masked rows (zeros, as
    torch's _safe_softmax gives) found from the row maxima: a row is all -inf exactly when its maximum is."""
    sf = math.sqrt(abs(scale))
    s = xp.matmul(q * (-sf if scale < 0 else sf), xp.swapaxes(k, -1, -2) * sf)
    if is_causal:
        xp.copyto(s, -np.inf, where=_above_diagonal(xp, *s.shape[-2:]))
    if mask is not None:
        s = xp.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    m = row_max(s)      # the sums and maxima over short rows: see _rows
    if xp is np:
        # a fully masked row (its maximum -inf) is shifted by 0, not by -inf: its exponentials are 0, its sum
        # is taken as 1, so the row comes out 0 without a NaN to hide (np.errstate cost 2-7 µs a call)
        dead = m == -np.inf if np.minimum.reduce(m, None) == -np.inf else None
        if dead is not None:
            m[dead] = 0
        s -= m
        np.exp(s, out=s)
        total = row_sum(s)
        if dead is not None:
            total[dead] = 1
        s /= total
    else:                                   # (no host check on a GPU: that would synchronise)
        with np.errstate(invalid="ignore"):     # -inf - -inf in a fully masked row: NaN, replaced below
            s -= m
        xp.exp(s, out=s)
        s /= row_sum(s)
        xp.copyto(s, 0, where=m == -np.inf)
    p = s.astype(q.dtype, copy=False)
    if dropout_p > 0:
        pd, drop = DROPOUT.kernel(xp, p, dropout_p, False, generator)
        out = xp.matmul(pd, v)
    else:
        # the dropout mask saved when there is none: a 0-d one (on NumPy a view of _rows' cached read-only ones)
        drop = ones_vector(1, p.dtype).reshape(()) if xp is np else xp.ones((), dtype=p.dtype)
        out = xp.matmul(p, v)
    return out.astype(q.dtype, copy=False), p, drop


def _math(xp, step, q, k, v, mask, scale, is_causal, dropout_p, generator):
    """torch's _scaled_dot_product_attention_math: Q and K^T each scaled by sqrt(|scale|) (the sign on Q),
    their batched product, the mask, the safe softmax, dropout, and the product with V."""
    sf = math.sqrt(abs(scale))
    qs = step("mul", _mul, q, -sf if scale < 0 else sf)
    kt = step("transpose", step, "as_strided", xp.swapaxes, k, -1, -2)
    s = step("bmm", xp.matmul, qs, step("mul", _mul, kt, sf))
    L, S = s.shape[-2:]
    if is_causal:
        s = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = xp.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    p = step("_safe_softmax", _safe_softmax, xp, step, s, is_causal or mask is not None).astype(q.dtype, copy=False)
    if dropout_p > 0:
        pd, drop = step("dropout", DROPOUT.kernel, xp, p, dropout_p, False, generator)
        out = step("bmm", xp.matmul, pd, v)
    else:
        drop = xp.ones((), dtype=p.dtype)
        out = step("bmm", xp.matmul, p, v)
    return out.astype(q.dtype, copy=False), p, drop


def _mul(a, b):
    return a * b


def _safe_softmax(xp, step, s, masking):
    """torch's _safe_softmax: softmax over the last dimension, 0 (not NaN) in rows that are all -inf
    (fully masked queries; the zeros are written into the softmax's fresh result)."""
    if masking:
        with np.errstate(invalid="ignore"):     # -inf - -inf in a fully masked row: NaN, replaced below
            p = step("softmax", step, "_softmax", _softmax_k, xp, s, -1)
    else:
        p = step("softmax", step, "_softmax", _softmax_k, xp, s, -1)
    masked = step("all", _all_last, step("isneginf", _isneginf, s))
    step("where", _where_into, xp, p, masked, step("scalar_tensor", xp.zeros, (), p.dtype))
    return p


def _isneginf(a):
    return a == -np.inf


def _all_last(a):
    return a.all(axis=-1, keepdims=True)


def _where_into(xp, p, masked, zero):
    xp.copyto(p, zero, where=masked)


@op("scaled_dot_product_attention_backward", node_name="ScaledDotProductAttentionBackwardBackward0")
def SDPA_BACKWARD(xp, g, q, k, v, p, drop, scale=1.0, mask_shape=None):
    step = _H.op_step if _H.range_hooks else _call
    pd = step("mul", _mul, p, drop) if drop.ndim else p
    dv = _sum_to(xp, step("bmm", xp.matmul, xp.swapaxes(pd, -1, -2), g), v.shape)
    dp = step("bmm", xp.matmul, g, xp.swapaxes(v, -1, -2))
    if drop.ndim:
        dp = step("mul", _mul, dp, drop)
    ds = step("_softmax_backward_data", softmax_backward_rows, p, dp)
    dmask = _sum_to(xp, ds, mask_shape) if mask_shape is not None else xp.zeros((), dtype=ds.dtype)
    if mask_shape is not None:
        ds = ds * scale
    else:
        ds *= scale
    dq = _sum_to(xp, step("bmm", xp.matmul, ds, k), q.shape)
    dk = _sum_to(xp, step("bmm", xp.matmul, xp.swapaxes(ds, -1, -2), q), k.shape)
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


def _sdpa_bwd_arrays(ctx, g, *_, call=quiet_call):
    """SDPA_BACKWARD's kernel on NumPy arrays, the formula above without dispatch: called directly (the
    engine's quiet path) or, call=run_recorded_call, run as the recorded op (OpDef.sink_backward)."""
    q, k, v, mask = ctx.inputs
    _, p, drop = ctx.saved_output
    edges = ctx.edges
    float_mask = mask is not None and mask._data.dtype != np.bool_ and edges[3][0] is not None
    out = call(SDPA_BACKWARD, g, q, k, v, p, drop, scale=ctx.attrs.get("scale", 1.0),
               mask_shape=tuple(mask.shape) if float_mask else None)
    if out is None:
        return None
    return tuple(tensor_of(d) if (k_ < 3 and edges[k_][0] is not None) or (k_ == 3 and float_mask) else None
                 for k_, d in enumerate(out))


SDPA.quiet_backward = _sdpa_bwd_arrays
SDPA.sink_backward = partial(_sdpa_bwd_arrays, call=run_recorded_call)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """The fused op (see the module's docstring); nn.functional's function checks the arguments first."""
    attrs = {"scale": float(scale)}
    if is_causal:
        attrs["is_causal"] = True
    if dropout_p > 0:
        attrs["dropout_p"] = float(dropout_p)
    return dispatch(SDPA, query, key, value, attn_mask, **attrs)[0]
