"""Scaled dot-product attention as one op forward and one op backward (torch's fused CPU attention is one
op too), instead of matmul, scale, mask, softmax, dropout and matmul with their backward nodes.

softmax(Q K^T * scale + mask) V with torch's math-path semantics: Q and K^T are each scaled by sqrt(scale), a
bool mask keeps where True, a float mask is added, is_causal masks above the diagonal (top-left aligned), a
fully masked row gives zeros (torch's _safe_softmax), dropout is `dropout`'s kernel (the same draw). The
probabilities (and the dropout mask) are kept for the backward.

Which op runs is torch 2.13's CPU choice (`_torch_runs_flash`, after its sdp_utils_cpp.cpp): where torch runs its
flash kernel (4-D inputs, no dropout: nanoGPT's, an eval-mode MultiheadAttention's) the op is SDPA_FLASH,
``_scaled_dot_product_flash_attention_for_cpu`` inside the ``scaled_dot_product_attention`` composite's region, node
``ScaledDotProductFlashAttentionForCpuBackward0``, backward ``_scaled_dot_product_flash_attention_for_cpu_backward``,
each one event in a profile, as torch's. Elsewhere (dropout, 3-D inputs) it is SDPA, torch's math path step for
step, so while a profiler listens each step is in the range of the op torch runs for it
(``_scaled_dot_product_attention_math`` > ``mul``, ``bmm``, ``_safe_softmax`` > ``softmax`` / ``isneginf`` /
``all`` / ``scalar_tensor`` / ``where``, ``dropout``; the backward's ``bmm`` and ``_softmax_backward_data``).
Outside a profile both forwards are `_fused`: the same values in fewer passes.
"""
from __future__ import annotations

import math

from .. import _hooks as _H
from .._opdef import with_defaults
from ._define import dispatch, np, op
from ._fastmath import exp as fast_exp, rows_apply, softmax_rows
from .. import _dtype
from .nn_ops import DROPOUT, _softmax_k
from ._rows import ones_vector, row_max, row_sum, softmax_backward_rows
from .._graph import quiet_call, tensor_of
from .._state import GLOBAL
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
    if xp is np and softmax_rows(s, s, dead_zero=True) is None:
        # (float32 rows took softmax_rows' C loop, in place, as the math path's _softmax_k does: the same values);
        # other NumPy arrays: the sums and maxima over short rows by _rows
        m = row_max(s)
        # a fully masked row (its maximum -inf) is shifted by 0, not by -inf: its exponentials are 0, its sum
        # is taken as 1, so the row comes out 0 without a NaN to hide (np.errstate cost 2-7 µs a call)
        dead = m == -np.inf if m.size and np.minimum.reduce(m, None) == -np.inf else None
        if dead is not None:
            m[dead] = 0
        s -= m
        fast_exp(s, out=s)
        total = row_sum(s)
        if dead is not None:
            total[dead] = 1
        s /= total
    elif xp is not np:                      # (no host check on a GPU: that would synchronise)
        m = row_max(s)
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
    if masking and not (xp is np and rows_apply(s)):    # (the C rows warn of nothing; errstate costs 2-7 µs)
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


@op("_scaled_dot_product_flash_attention_for_cpu", save="io", amp="lower", nondiff_outputs=(1, 2),
    node_name="ScaledDotProductFlashAttentionForCpuBackward0")
def SDPA_FLASH(xp, q, k, v, mask=None, scale=1.0, is_causal=False):
    """What torch 2.13 runs on the CPU where its flash kernel takes the call (`_torch_runs_flash`: 4-D inputs, no
    dropout): SDPA's fused forward, one op with its own node, as torch's (no steps of the math path inside)."""
    return _fused(xp, q, k, v, mask, scale, is_causal, 0.0, None)


def _torch_runs_flash(q, k, v, mask, dropout_p) -> bool:
    """Whether torch 2.13's CPU dispatch picks its flash kernel over the math path for these tensors
    (sdp_utils_cpp.cpp, use_flash_attention_cpp: no dropout; q, k, v 4-D, of one float dtype, with equal batch,
    heads and head dims, non-empty sequences and unit last-dim strides; a mask of 2 or 4 dims that broadcasts to
    (batch, heads, L, S) and requires no grad). NumPy arrays only: CUDA's backends are other kernels."""
    if dropout_p > 0:
        return False
    qd, kd, vd = q._data, k._data, v._data
    if type(qd) is not np.ndarray or type(kd) is not np.ndarray or type(vd) is not np.ndarray:
        return False
    if qd.ndim != 4 or kd.ndim != 4 or vd.ndim != 4 or not qd.dtype == kd.dtype == vd.dtype \
            or qd.dtype.kind != "f" and qd.dtype != _dtype.BF16:
        return False
    (n, h, L, e), (nk, hk, S, ek), (nv, hv, Sv, ev) = qd.shape, kd.shape, vd.shape
    if not (n == nk == nv and h == hk == hv and e == ek == ev and S == Sv and L and S):
        return False
    size = qd.itemsize
    if qd.strides[-1] != size or kd.strides[-1] != size or vd.strides[-1] != size:
        return False
    if mask is None:
        return True
    if mask._requires_grad:
        return False
    ms = mask.shape
    if mask.ndim not in (2, 4) or ms[-2] not in (L, 1) or ms[-1] not in (S, 1):
        return False
    return mask.ndim == 2 or (ms[0] in (1, n) and ms[1] in (1, h))


def _sdpa_backward(xp, step, g, q, k, v, p, drop, scale, mask_shape):
    """The attention's backward from the saved probabilities (and dropout mask): `step` runs each product and
    the softmax's backward (`_H.op_step` to show them as torch's math path does, else `_call`)."""
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


@op("scaled_dot_product_attention_backward", node_name="ScaledDotProductAttentionBackwardBackward0")
def SDPA_BACKWARD(xp, g, q, k, v, p, drop, scale=1.0, mask_shape=None):
    return _sdpa_backward(xp, _H.op_step if _H.range_hooks else _call, g, q, k, v, p, drop, scale, mask_shape)


@op("_scaled_dot_product_flash_attention_for_cpu_backward",
    node_name="ScaledDotProductFlashAttentionForCpuBackwardBackward0")
def SDPA_FLASH_BACKWARD(xp, g, q, k, v, p, drop, scale=1.0, mask_shape=None):
    """torch's flash backward as one op (no steps of the math path's backward inside, as torch's)."""
    return _sdpa_backward(xp, _call, g, q, k, v, p, drop, scale, mask_shape)


def _sdpa_bwd(backward_op):
    """The backward of SDPA (math) or SDPA_FLASH: `backward_op` dispatched (a differentiable backward's)."""
    def bwd(ctx, g, *_):
        q, k, v, mask = ctx.saved_inputs
        _, p, drop = ctx.saved_output
        need = ctx.needs_input_grad
        float_mask = mask is not None and mask._data.dtype != np.bool_ and need[3]
        dq, dk, dv, dmask = dispatch(backward_op, g, q, k, v, p, drop, scale=ctx.attrs.get("scale", 1.0),
                                     mask_shape=tuple(mask.shape) if float_mask else None)
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
                dmask if float_mask else None)
    return bwd


def _sdpa_bwd_arrays(ctx, g, *_, call=quiet_call, backward_op=SDPA_BACKWARD):
    """`backward_op`'s kernel on NumPy arrays, the formula above without dispatch: called directly (the
    engine's quiet path) or, call=run_recorded_call, run as the recorded op (OpDef.sink_backward)."""
    q, k, v, mask = ctx.inputs
    _, p, drop = ctx.saved_output
    edges = ctx.edges
    float_mask = mask is not None and mask._data.dtype != np.bool_ and edges[3][0] is not None
    out = call(backward_op, g, q, k, v, p, drop, scale=ctx.attrs.get("scale", 1.0),
               mask_shape=tuple(mask.shape) if float_mask else None)
    if out is None:
        return None
    return tuple(tensor_of(d) if (k_ < 3 and edges[k_][0] is not None) or (k_ == 3 and float_mask) else None
                 for k_, d in enumerate(out))


SDPA.def_backward(_sdpa_bwd(SDPA_BACKWARD))
SDPA.quiet_backward = _sdpa_bwd_arrays
SDPA.sink_backward = with_defaults(_sdpa_bwd_arrays, call=run_recorded_call)
SDPA_FLASH.def_backward(_sdpa_bwd(SDPA_FLASH_BACKWARD))
SDPA_FLASH.quiet_backward = with_defaults(_sdpa_bwd_arrays, backward_op=SDPA_FLASH_BACKWARD)
SDPA_FLASH.sink_backward = with_defaults(_sdpa_bwd_arrays, call=run_recorded_call, backward_op=SDPA_FLASH_BACKWARD)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """The fused op (see the module's docstring); nn.functional's function checks the arguments first. Where
    torch's CPU dispatch would run its flash kernel (`_torch_runs_flash`) the op is SDPA_FLASH inside the
    composite's region, as torch's aten::scaled_dot_product_attention > _scaled_dot_product_flash_attention_for_cpu
    (node ScaledDotProductFlashAttentionForCpuBackward0); else SDPA, torch's math path."""
    attrs = {"scale": float(scale)}
    if is_causal:
        attrs["is_causal"] = True
    g = GLOBAL
    if g.sdp_flash and _torch_runs_flash(query, key, value, attn_mask, dropout_p):
        return _H.op_region("scaled_dot_product_attention", (query, key, value, attn_mask), _flash, query, key,
                            value, attn_mask, attrs)
    if not g.sdp_math:
        _no_math_kernel(g, type(query._data) is np.ndarray)
    if dropout_p > 0:
        attrs["dropout_p"] = float(dropout_p)
    return dispatch(SDPA, query, key, value, attn_mask, **attrs)[0]


def _no_math_kernel(g, cpu):
    """sdpa_kernel / backends.cuda.enable_math_sdp(False) turned the math path off: torch's CPU dispatch has flash
    and math only, so without flash (or where flash cannot run these inputs) there is no kernel, in torch's words;
    on CUDA tensorlib has one kernel, which stands for whichever fused backend the user allows."""
    fused = g.sdp_flash if cpu else (g.sdp_flash or g.sdp_mem_efficient or g.sdp_cudnn)
    if not fused:
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found. This is likely due to "
                           "turning off both the math kernel and the fused kernels.")
    if cpu:
        raise RuntimeError("No available kernel.  Aborting execution.")


def _flash(query, key, value, attn_mask, attrs):
    return dispatch(SDPA_FLASH, query, key, value, attn_mask, **attrs)[0]
