"""Grad-mode switches (thread-local, as torch's)."""
from __future__ import annotations

import functools

from .._hooks import count_user
from .._state import STATE, set_grad_mode


class _DecoratorContext:
    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args):
                return fn(*args, **kwargs)
        return wrapper

    _args: tuple = ()


class no_grad(_DecoratorContext):
    def __enter__(self):
        self._prev = set_grad_mode(False)
        return self

    def __exit__(self, *exc):
        set_grad_mode(self._prev)
        return False


class enable_grad(_DecoratorContext):
    def __enter__(self):
        self._prev = set_grad_mode(True)
        return self

    def __exit__(self, *exc):
        set_grad_mode(self._prev)
        return False


class set_grad_enabled(_DecoratorContext):
    """Usable as a function (takes effect at once), a context manager, or a decorator."""

    def __init__(self, mode: bool):
        self._args = (mode,)
        self._prev = set_grad_mode(bool(mode))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        set_grad_mode(self._prev)
        return False


class inference_mode(_DecoratorContext):
    def __init__(self, mode: bool = True):
        self._args = (mode,)
        self.mode = mode

    def __enter__(self):
        self._prev = (STATE.grad_enabled, STATE.inference)
        if self.mode:
            set_grad_mode(False)
            STATE.inference = True
            count_user("inference", 1)      # the dispatcher marks outputs made meanwhile (inference tensors)
        return self

    def __exit__(self, *exc):
        set_grad_mode(self._prev[0])
        STATE.inference = self._prev[1]
        if self.mode:
            count_user("inference", -1)
        return False


def is_grad_enabled() -> bool:
    return STATE.grad_enabled


def is_inference_mode_enabled() -> bool:
    return STATE.inference


def zero_grads(params, set_to_none=True):
    """Module.zero_grad and Optimizer.zero_grad: drop each gradient (torch's default, frees the memory) or
    zero it in place through a dispatched zero_ (detached from any graph first, as torch does)."""
    for p in params:
        g = p._grad
        if g is None:
            continue
        if set_to_none:
            p._grad = None
            continue
        if g._grad_fn is not None:
            g.detach_()
        else:
            g._requires_grad = False
        with no_grad():
            g.zero_()
