"""nn.Parameter: a Tensor subclass that a Module registers as one of its parameters when assigned."""
from __future__ import annotations

from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and marks itself as a parameter (`_is_param`).

    It shares the data of the tensor it wraps, as torch's does; ops on it give plain Tensors."""
    _is_param = True

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from ..ops import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter expects a Tensor as data, got {type(data).__name__}")
        t = object.__new__(cls)
        t._data = data._data
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor.__deepcopy__(self, {}).detach(), self.requires_grad)
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """torch.nn.Buffer: marks a tensor to be registered as a buffer when assigned to a Module."""

    def __new__(cls, data, *, persistent=True):
        t = object.__new__(cls)
        t._data = data._data
        t.persistent = persistent
        return t

    def __init__(self, data, *, persistent=True):
        pass
