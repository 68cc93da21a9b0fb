"""Checks and small helpers shared by the optimizers: torch's messages for bad hyper-parameters and its
rules for the implementation flags.

The flags, decided against torch 2.13 on the CPU:
  foreach      accepted (True/False/None): torch's foreach path is a faster implementation of the same
               update, so running tensorlib's single-tensor loop gives the results torch documents.
  fused        accepted where torch has it (SGD, Adam, AdamW, Adagrad) with torch's checks (floating-point
               params, not with differentiable or foreach=True). Adam and AdamW run torch's fused CPU kernel
               (_fused_adam_ / _fused_adamw_, to the bit, float32/bfloat16/float16: Adam._fused), whose values
               differ from the single-tensor loop's in the last bits (float32) or in most elements (bfloat16:
               one rounding per stored result, not one per op); float64, CUDA and strided parameters, and SGD's and
               Adagrad's fused=True, run the single-tensor loop (torch's update with its roundings). The optimizer
               does not claim amp-scaling support (`_step_supports_amp_scaling`), so a GradScaler unscales the
               gradients itself first: the same values for its power-of-two scales.
  capturable   CUDA graph capture does not exist in tensorlib. On CPU parameters torch raises an
               AssertionError at step() and so does tensorlib; on CUDA parameters the update is torch's
               (the flag only decides where torch keeps the step counter).
  differentiable  honoured: step() runs with autograd enabled, so the update is recorded as in torch
               (and updating a leaf that requires grad in place fails as in torch).
"""
from __future__ import annotations

import operator
from typing import Callable, NamedTuple

import numpy as np

from .. import _hooks as _H
from .. import dispatch as _D
from .._graph import quiet_run
from .._tensor import Tensor
from ..ops.arithmetic import ADD, ADD_, MUL_
from ..ops.optim_ops import ADDCMUL_, LERP_
from ..ops.unary_math import NEG

_CAPTURABLE_DEVICES = ["cuda", "xpu", "hpu", "privateuseone", "xla"]
_FUSED_DEVICES = ["mps", "cuda", "xpu", "hpu", "cpu", "mtia", "privateuseone"]


def check_range(name, value, low=0.0, high=None, *, include_high=False):
    if isinstance(value, Tensor):
        value = value.item()
    bad = value < low or (high is not None and (value > high if include_high else value >= high))
    if bad:
        raise ValueError(f"Invalid {name}: {value}")


def check_lr(lr, message="Invalid learning rate: {}"):
    """A float or a 1-element tensor, not negative (torch's two messages)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= (lr.item() if isinstance(lr, Tensor) else lr):
        raise ValueError(message.format(lr))


def check_betas(betas):
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")


def check_fused(fused, differentiable=False, foreach=None):
    """torch's constructor checks for fused=True (the device/dtype check runs at the first step)."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def check_fused_param(p):
    """torch's _device_dtype_check_for_fused."""
    if not (p.device.type in _FUSED_DEVICES and p.is_floating_point()):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported "
                           f"devices: {_FUSED_DEVICES} but {p.dtype} and {p.device.type}")


def check_capturable(group, p, what="params and state_steps", devices=None):
    """capturable=True needs parameters on a graph-capturing device (torch's AssertionError and words)."""
    if group.get("capturable"):
        devices = devices or _CAPTURABLE_DEVICES
        if p.device.type not in devices:
            raise AssertionError(f"If capturable=True, {what} must be on supported devices: {devices}.")


def is_complex(p) -> bool:
    return p._data.dtype.kind == "c"


def lr_value(lr) -> float:
    """The group's lr as a Python float (torch's _to_scalar followed by the float use in the update)."""
    return lr.item() if isinstance(lr, Tensor) else lr


def scalar_dtype():
    """torch's _get_scalar_dtype: float64 when the default dtype is float64, else float32."""
    from .. import _dtype
    return _dtype.float64 if _dtype.get_default_dtype() == _dtype.float64 else _dtype.float32


def scalar_tensor(value=0.0, dtype=None):
    """A 0-dim CPU tensor for step counters and other scalar state, as torch keeps them (so state dicts
    match and float32 rounding of the counter-derived values matches)."""
    from ..ops.creation import tensor
    return tensor(float(value), dtype=dtype or scalar_dtype())


def step_value(step_t) -> float:
    return float(step_t.item())         # torch's _get_value: step_t.item()


def multi_tensor_ok(group, pairs):
    """The multi-tensor (array) update applies: no profiler, op hook or special mode watching ops, not recorded
    by autograd (differentiable), foreach not refused, CPU float32/float64 parameters (not views) with
    gradients of their dtype and shape. Adam/AdamW and Adadelta share it."""
    if _H.full_path or group.get("differentiable") or group.get("foreach") is False:    # (full_path_active())
        return False
    return _arrays_ok(pairs)


class Loop(NamedTuple):
    """How an optimizer's per-parameter loop runs its ops. Each optimizer writes torch's single-tensor loop once,
    every op a `run(OP, ...)` call (OP the op the tensor method dispatches, with the attributes it passes), on
    operands `of(tensor)`, the in-place ops on tensors counted by `wrote(*tensors)` (a tensor once per such op):

      DISPATCHED  run = dispatch, of(t) = t, wrote counts nothing (the dispatcher counts versions): the tensor
                  methods' own dispatches, for every case (op hooks, autocast, CUDA, differentiable, views).
      QUIET       run = _graph.quiet_run, of(t) = t's NumPy array, wrote counts t's version: the ops' kernels
                  alone, when nothing observes ops (foreach=False, or an optimizer without a multi-tensor path).
      RECORDED    run = dispatch.run_recorded, else as QUIET: each kernel recorded as its dispatch would be
                  (event, Input Shapes, memory records), under a profile that takes ops on arrays.

    Out-of-place results are arrays in the two array forms and tensors in the dispatched one, which the loop
    hands on to `run` as they are."""
    run: Callable
    of: Callable
    wrote: Callable


_array = operator.attrgetter("_data")      # (a tensor's array, without a Python frame)


def _nothing(*ts):
    pass


def _count(*ts):
    for t in ts:
        t._version += 1


DISPATCHED = Loop(_D.dispatch, _H.itself, _nothing)
QUIET = Loop(quiet_run, _array, _count)
RECORDED = Loop(_D.run_recorded, _array, _count)


def loop_ops(group, pairs) -> Loop:
    """How the group's per-parameter loop runs (see Loop). RECORDED (`dispatch.run_recorded`) when a default
    profile's op sink, or a detailed profile's recorder taking ops on arrays (tensorlib.Hook.op_arrays), is the
    only observer (`dispatch.records_arrays`): the records, Input Shapes and memory records of the dispatched loop,
    without the dispatcher's work per op (the engine's sink formulas do the same for backward nodes); QUIET, the
    kernels alone, when nothing observes (an optimizer without a multi-tensor path, or foreach=False). DISPATCHED
    with differentiable, for parameters the multi-tensor path would not take (views, other dtypes or devices) or
    0-d ones, and under any other observer."""
    if group.get("differentiable"):
        return DISPATCHED
    if _H.full_path:
        if not _D.records_arrays():
            return DISPATCHED
        ops = RECORDED
    else:
        ops = QUIET
    if not _arrays_ok(pairs):     # (0-d parameters too: their out-of-place results would be NumPy scalars)
        return DISPATCHED
    return ops


def gradient(ops: Loop, grad, maximize):
    """A loop's gradient operand (see Loop): `grad = -grad` when the group maximizes, as torch's loops negate each
    gradient in turn."""
    g = ops.of(grad)
    return ops.run(NEG, g) if maximize else g


def count_step(ops: Loop, state):
    """`state["step"].add_(1)` in a loop (see Loop); the step tensor (its version counted by the caller's wrote)."""
    step_t = state["step"]
    ops.run(ADD_, ops.of(step_t), 1)
    return step_t


def weight_decayed(run, g, x, wd):
    """grad.add(p, alpha=wd) in a loop (see Loop), on its operands g and x: the dispatched add's call (no alpha
    attribute when wd is 1, as `add` passes none)."""
    return run(ADD, g, x, alpha=wd) if wd != 1 else run(ADD, g, x)


def decayed(ops: Loop, p, g, x, lr, wd, decoupled):
    """Adam-style weight decay in a loop (see Loop), wd != 0: `p.mul_(1 - lr * wd)` when decoupled (AdamW's),
    else `grad = grad.add(p, alpha=wd)`; the gradient operand after it."""
    if decoupled:
        ops.run(MUL_, x, 1 - lr * wd)
        ops.wrote(p)
        return g
    return weight_decayed(ops.run, g, x, wd)


def adam_moments(ops: Loop, g, exp_avg, exp_avg_sq, beta1, beta2):
    """Adam's moment estimates in a loop (see Loop), as Adam, NAdam and RAdam update them: `exp_avg.lerp_(grad,
    1 - beta1)`, `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`; their operands (m, v)."""
    run, of = ops.run, ops.of
    m, v = of(exp_avg), of(exp_avg_sq)
    run(LERP_, m, g, 1 - beta1)
    run(MUL_, v, beta2)
    c = 1 - beta2
    run(ADDCMUL_, v, g, g) if c == 1 else run(ADDCMUL_, v, g, g, value=c)
    ops.wrote(exp_avg, exp_avg_sq, exp_avg_sq)
    return m, v


def _arrays_ok(pairs):
    for p, g in pairs:
        x, y = p._data, g._data
        if type(x) is not np.ndarray or type(y) is not np.ndarray or p._base is not None or not x.ndim:
            return False        # (0-d: NumPy's results would be scalars, which `out=` cannot take)
        dt = x.dtype
        if dt not in _FD or (y.dtype is not dt and y.dtype != dt) or x.shape != y.shape:
            return False
    return True


_FD = (np.dtype(np.float32), np.dtype(np.float64))
