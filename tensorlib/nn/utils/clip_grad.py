"""clip_grad_norm_ / clip_grad_value_: in place on .grad, under no_grad, one fused norm per device."""
from __future__ import annotations

import math

from ... import ops
from ..._tensor import Tensor
from ...autograd.grad_mode import no_grad
from ...dispatch import record_range


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    norm_type = float(norm_type)
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    if not tensors:
        return ops.tensor(0.0)
    with no_grad():
        if norm_type == math.inf:
            norms = [ops.amax(ops.abs(g)) for g in tensors]
            total = ops.amax(ops.stack([n.to(device=tensors[0].device) for n in norms]))
        elif foreach is False:
            norms = [ops.norm(g, norm_type) for g in tensors]
        else:                           # torch's _foreach_norm, which on the CPU runs one norm per tensor
            with record_range("_foreach_norm", "op"):
                norms = [ops.norm(g, norm_type) for g in tensors]
            total = ops.norm(ops.stack([n.to(device=tensors[0].device) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(ops.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients together so that their joint norm is at most max_norm; returns that norm
    (before clipping) as a tensor, as torch does."""
    grads = _grads(parameters)
    if not grads:
        return ops.tensor(0.0)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    with no_grad():
        coef = ops.clamp(float(max_norm) / (total + 1e-6), max=1.0)
        if foreach is False:
            for g in grads:
                g.mul_(coef.to(device=g.device, dtype=g.dtype))
        else:                           # torch's _foreach_mul_, one mul_ per gradient on the CPU
            with record_range("_foreach_mul_", "op"):
                for g in grads:
                    g.mul_(coef.to(device=g.device, dtype=g.dtype))
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
