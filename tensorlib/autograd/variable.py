"""torch.autograd.variable: the legacy ``Variable`` constructor old PyTorch code (and the pytorch/tutorials NLP
scripts) still calls. Since PyTorch 0.4 a Variable is a Tensor: ``Variable(t, requires_grad=...)`` returns a new
tensor sharing ``t``'s memory with no history (``t.detach()``) and the given requires_grad; ``Variable()`` an empty
tensor of the default dtype; ``isinstance(x, Variable)`` is ``isinstance(x, Tensor)``."""
from __future__ import annotations

import warnings

from .._tensor import Tensor

__all__ = ["VariableMeta", "Variable"]

_NO_DATA = object()


class VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, Tensor)

    def __call__(cls, *args, **kwargs):
        return _legacy_variable(*args, **kwargs)


def _legacy_variable(*args, **kwargs):
    names = ("data", "requires_grad", "volatile", "_grad_fn", "name")
    if len(args) > len(names):
        raise TypeError(f"function takes at most {len(names)} arguments ({len(args)} given)")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise TypeError(f"'{key}' is an invalid keyword argument for this function")
        if key in bound:
            raise TypeError(f"argument for function given by name ('{key}') and position ({names.index(key) + 1})")
        bound[key] = value
    data = bound.get("data")
    grad_fn = bound.get("_grad_fn")
    if bound.get("volatile"):
        warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                      UserWarning, stacklevel=3)
    if grad_fn is not None:
        raise TypeError(f"_grad_fn has to be a Function object or None, but got {type(grad_fn).__name__}")
    from .. import ops
    if data is None:
        var = ops.empty(0)
    elif isinstance(data, Tensor):
        var = ops.detach(data)
    else:
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    if bound.get("requires_grad"):
        if not (var.is_floating_point() or var.is_complex()):
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        var.requires_grad_(True)
    return var


class Variable(metaclass=VariableMeta):
    """``torch.autograd.Variable(data=None, requires_grad=False, volatile=False, _grad_fn=None, name=None)``:
    calling it returns a Tensor (see the module's docstring), never a Variable instance."""
