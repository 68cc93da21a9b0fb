"""Checks and small helpers shared by the optimizers (torch's messages for bad hyper-parameters)."""
from __future__ import annotations

from .._tensor_base import Tensor


def check_range(name, value, low=0.0, high=None, *, include_high=False):
    if isinstance(value, Tensor):
        value = value.item()
    bad = value < low or (high is not None and (value > high if include_high else value >= high))
    if bad:
        raise ValueError(f"Invalid {name}: {value}")


def check_unsupported(name, fused=None, **_ignored):
    """foreach / capturable / differentiable are accepted (tensorlib has one implementation, the
    single-tensor loop torch uses on the CPU); fused kernels do not exist here."""
    if fused:
        raise RuntimeError(f"{name}: fused=True is not supported by tensorlib (there are no fused kernels); "
                           "leave fused=None")


def scalar_step(state):
    """The step counter lives in a 0-dim float32 CPU tensor as in torch (so state dicts match)."""
    from ..ops.creation import tensor
    from .. import _dtype
    return tensor(0.0, dtype=_dtype.float32)


def step_value(step_t) -> float:
    return float(step_t._data)
