"""Helpers for defining ops: one place per op, the backward beside the kernel."""
from __future__ import annotations

import numpy as np

from ..dispatch import dispatch, register_op
from .._tensor_base import Tensor

__all__ = ["op", "dispatch", "Tensor", "np", "method", "unwrap_scalar"]


def op(name, **kw):
    """Decorator: register `fn(xp, *arrays, **attrs)` as the kernel of op `name`; returns the OpDef."""
    def deco(kernel):
        return register_op(name, kernel, **kw)
    return deco


def method(name, fn):
    setattr(Tensor, name, fn)
    return fn


def unwrap_scalar(x):
    """A 0-dim tensor used where a Python number is expected (e.g. clamp(min=t))."""
    if isinstance(x, Tensor):
        return x.item()
    return x
