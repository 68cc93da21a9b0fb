"""clip_grad_norm_ / clip_grad_value_: in place on .grad, under no_grad, one fused norm per device."""
from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np

from ... import _hooks as _H
from ... import ops
from ..._tensor import Tensor
from ...autograd.grad_mode import no_grad
from ..._graph import tensor_of
from ...dispatch import bump_version, full_path_active, record_range, records_arrays, run_recorded
from ...ops.arithmetic import MUL_
from ...ops.reduce import NORM


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
        else:
            if foreach is False:
                norms = [ops.norm(g, norm_type) for g in tensors]
            else:                       # torch's _foreach_norm, which on the CPU runs one norm per tensor
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
    if _arrays_ok(grads, norm_type, foreach):
        return _clip_arrays(grads, float(max_norm), float(norm_type), error_if_nonfinite)
    if records_arrays() and _float_arrays(grads) and float(norm_type) != math.inf:
        return _clip_recorded(grads, float(max_norm), float(norm_type), error_if_nonfinite, foreach)
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


def _arrays_ok(grads, norm_type, foreach):
    """The array path applies: nothing watches ops (under a profiler or an op hook the op-by-op path runs,
    torch's _foreach_norm and _foreach_mul_), foreach not refused, a finite norm order, CPU float gradients
    of one dtype."""
    if full_path_active() or foreach is False or float(norm_type) == math.inf:
        return False
    return _float_arrays(grads)


def _float_arrays(grads):
    """CPU float32/float64 gradients of one dtype."""
    dt = grads[0]._data.dtype
    return all(type(g._data) is np.ndarray and g._data.dtype == dt for g in grads) and dt.char in "fd"


def _itself(t):
    return t


def _clip_recorded(grads, max_norm, norm_type, error_if_nonfinite, foreach):
    """The op-by-op path under a profile whose observers all take ops on arrays (dispatch.records_arrays):
    the per-gradient norms and in-place scalings run on the arrays by `run_recorded`, recorded as their
    dispatches would be, the `to`s as their regions; the rest (the total norm, the coefficient) as the op-by-op
    path runs it.
    The same events, Input Shapes and memory records, for about half the profiler's cost per gradient."""
    with no_grad():
        region = record_range("_foreach_norm", "op") if foreach is not False else nullcontext()
        with region:
            norms = [tensor_of(run_recorded(NORM, g._data, p=norm_type)) for g in grads]
        # n.to(device=...) and coef.to(device=..., dtype=...) return their tensor itself here (CPU arrays of the
        # gradients' dtype): torch's aten::to region, without `to`'s argument checks
        total = ops.norm(ops.stack([_H.op_step("to", _itself, n) for n in norms]), norm_type)
        if error_if_nonfinite and not bool(ops.isfinite(total)):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                               "so it cannot be clipped. To disable this error and scale the gradients by the "
                               "non-finite norm anyway, set `error_if_nonfinite=False`")
        norms = None        # (freed where get_total_norm's are: at its return)
        coef = ops.clamp(max_norm / (total + 1e-6), max=1.0)
        region = record_range("_foreach_mul_", "op") if foreach is not False else nullcontext()
        with region:
            same = coef._data.dtype == grads[0]._data.dtype
            for g in grads:
                c = _H.op_step("to", _itself, coef) if same else coef.to(device=g.device, dtype=g.dtype)
                run_recorded(MUL_, g._data, c._data)
                bump_version(g)
    return total


def _clip_arrays(grads, max_norm, norm_type, error_if_nonfinite):
    """clip_grad_norm_ on the arrays: each norm by the norm op's kernel, their norm, the clipping
    coefficient, the in-place scaling: the op-by-op path's values to the bit, without ~3 dispatches per
    gradient."""
    norms = [NORM.kernel(np, g._data, p=norm_type) for g in grads]
    with no_grad():
        total = ops.norm(ops.from_numpy(np.stack(norms)), norm_type)
        if error_if_nonfinite and not bool(ops.isfinite(total)):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                               "so it cannot be clipped. To disable this error and scale the gradients by the "
                               "non-finite norm anyway, set `error_if_nonfinite=False`")
        coef = ops.clamp(max_norm / (total + 1e-6), max=1.0)._data.astype(grads[0]._data.dtype)
    for g in grads:
        np.multiply(g._data, coef, out=g._data, casting="unsafe")
        bump_version(g)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
