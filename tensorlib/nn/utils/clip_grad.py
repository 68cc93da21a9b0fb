"""clip_grad_norm_ / clip_grad_value_ / clip_grads_with_norm_: in place on .grad, under no_grad, one fused norm
per device; clip_grad_norm, torch's deprecated alias of clip_grad_norm_."""
from __future__ import annotations

import math
import types
import warnings
from contextlib import nullcontext

import numpy as np

from ... import _hooks as _H
from ... import ops
from ..._tensor import Tensor
from ...autograd.grad_mode import no_grad
from ..._graph import quiet_run, tensor_of
from ...dispatch import bump_version, full_path_active, record_range, record_times, records_arrays, records_by_sink, \
    run_recorded
from ...ops import _fastmath as _FM
from ...ops.arithmetic import MUL_
from ...ops.reduce import NORM
from ...ops.shape import STACK


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
    _check_finite(total, norm_type, error_if_nonfinite)
    return total


def _check_finite(total, norm_type, error_if_nonfinite):
    if error_if_nonfinite and not bool(ops.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients together so that their joint norm is at most max_norm; returns that norm
    (before clipping) as a tensor, as torch does."""
    if not isinstance(parameters, Tensor):
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    grads = _grads(parameters)
    if not grads:
        return ops.tensor(0.0)
    run = _arrays_run(grads, norm_type, foreach)
    if run is not None:
        return _clip_arrays(run, grads, float(max_norm), float(norm_type), error_if_nonfinite, foreach)
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


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """torch's deprecated name of clip_grad_norm_ (with its FutureWarning)."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """The second half of clip_grad_norm_: the gradients scaled by min(1, max_norm / (total_norm + 1e-6)) for a
    `total_norm` computed by the caller (get_total_norm, perhaps over several groups or ranks)."""
    grads = _grads(parameters)
    if not grads:
        return
    with no_grad():
        coef = ops.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
        with record_range("_foreach_mul_", "op") if foreach is not False else nullcontext():
            for g in grads:
                g.mul_(coef.to(device=g.device))


def _arrays_run(grads, norm_type, foreach):
    """How clip_grad_norm_ may run its per-gradient ops on the arrays (`_clip_arrays`), or None where it
    dispatches them: `quiet_run` when nothing watches ops (foreach not refused), `run_recorded` under a profile
    whose observers all take ops on arrays (dispatch.records_arrays; torch's _foreach_norm and _foreach_mul_
    regions kept); for CPU float gradients of one dtype and a finite norm order."""
    if float(norm_type) == math.inf:
        return None
    if not full_path_active():
        run = quiet_run if foreach is not False else None
    else:
        run = run_recorded if records_arrays() else None
    if run is None:
        return None
    dt = grads[0]._data.dtype
    ok = all(type(g._data) is np.ndarray and g._data.dtype == dt for g in grads) and dt.char in "fd"
    return run if ok else None


def _clip_arrays(run, grads, max_norm, norm_type, error_if_nonfinite, foreach):
    """The op-by-op path with each gradient's norm and in-place scaling run on its array by `run` (the norm op's
    and mul_'s kernels: the same values to the bit): `quiet_run` when nothing watches, without ~3 dispatches per
    gradient; `run_recorded` under a profile, recorded as their dispatches would be, the `to`s as their aten::to
    regions (here each returns its tensor itself: CPU arrays of the gradients' dtype), so the same events, Input
    Shapes and memory records for about half the profiler's cost per gradient. The total norm and the
    coefficient run as the op-by-op path runs them.
    For p=2, unobserved or under the op sink alone (a default profile), the norms and the scaling of all the
    gradients run each in one C call (_fastmath.clip_norms / clip_scale: the kernels' values to the bit), the ops
    timed there and recorded by `record_times` as run_recorded records them, each mul_'s `to` called by the C
    loop before it. Under the op sink alone the norms' `to`s, their stack and total norm run on the arrays too
    (run_recorded: no tensor per norm, no dispatch)."""
    recorded = run is run_recorded
    regions = recorded and foreach is not False      # (a quiet run has nothing listening to regions)
    sink = recorded and records_by_sink()            # (the op sink alone records: a default profile)
    arrays = [g._data for g in grads]
    n = len(arrays)
    fast = norm_type == 2.0 and (not recorded or sink)
    times = np.empty(2 * n, np.int64) if fast and recorded else None
    with no_grad():
        with record_range("_foreach_norm", "op") if regions else nullcontext():
            out = np.empty(n, arrays[0].dtype) if fast else None
            if out is not None and _FM.clip_norms(arrays, out, times):
                if recorded:
                    record_times((NORM,) * n, times)
                    norms = [out[i, ...] for i in range(n)]     # (each norm's 0-d array)
            else:
                out = None
                norms = [run(NORM, d, p=norm_type) for d in arrays]
        if out is not None and not recorded:    # (the stack of the norms: these norms in one array)
            total = ops.norm(tensor_of(out), norm_type)
        elif sink:      # the `to`s, the stack and the norm on the arrays, recorded as their dispatches would be
            steps_at = _H.op_steps_at
            if steps_at is not None and _FM.stamps(to_times := np.empty(2 * n, np.int64)):
                steps_at(("to",) * n, to_times)     # (each `to` computes nothing: its region at times read in C)
            else:
                step, itself = _H.op_step, _H.itself
                norms = [step("to", itself, v) for v in norms]
            total = tensor_of(run(NORM, run(STACK, norms), p=norm_type))
        else:
            norms = [tensor_of(v) for v in norms]
            total = ops.norm(ops.stack([_H.op_step("to", _H.itself, t) for t in norms] if recorded else norms),
                             norm_type)
        _check_finite(total, norm_type, error_if_nonfinite)
        norms = None        # (freed where get_total_norm's are: at its return)
        coef = ops.clamp(max_norm / (total + 1e-6), max=1.0)
        with record_range("_foreach_mul_", "op") if regions else nullcontext():
            same = coef._data.dtype == arrays[0].dtype
            if fast and same and not recorded and _FM.clip_scale(arrays, coef._data):
                arrays = ()
            elif times is not None and same and out is not None and _H.op_steps_at is not None and \
                    _FM.clip_scale(arrays, coef._data, times, to_times := np.empty(2 * n, np.int64)):
                _H.op_steps_at(("to",) * n, to_times)   # (each mul_ after its `to`, which computes nothing: in one
                record_times((MUL_,) * n, times)        # C call, the `to`s' regions at the times it read)
                arrays = ()
            elif times is not None and same and out is not None and \
                    _FM.clip_scale(tuple(arrays), coef._data, times, (_H.op_step, "to", _H.itself, coef)):
                record_times((MUL_,) * n, times)    # (each mul_ after its `to`, in one C call)
                arrays = ()
            for g, d in zip(grads, arrays):     # (a gradient the C call does not take: read-only, say)
                c = coef if not recorded and same else \
                    _H.op_step("to", _H.itself, coef) if same else coef.to(device=g.device, dtype=g.dtype)
                run(MUL_, d, c._data)
            for g in grads:
                bump_version(g)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
