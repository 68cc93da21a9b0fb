"""torch.distributions.utils: broadcasting of parameters, probabilities and logits, lazy properties, and the
lower-triangular packing the transforms use; plus the helpers the ported modules need in place of torch's
internals (broadcast_shapes, _is_all_true)."""
from __future__ import annotations

import numbers
from functools import update_wrapper

import numpy as np

from .. import ops as _ops
from .._dtype import finfo, get_default_dtype
from .._tensor import Size, Tensor
from ..autograd.grad_mode import enable_grad
from ..nn import functional as F

euler_constant = 0.57721566490153286060  # Euler Mascheroni Constant

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits", "lazy_property",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]

# torch.types' Number and _Number: what a parameter given as a Python number may be
Number = (int, float, bool)
_Number = (int, float, bool)


def _is_all_true(value):
    return bool(value.all())


def broadcast_shapes(*shapes):
    """torch.broadcast_shapes, with torch's error for shapes that do not broadcast."""
    try:
        return Size(np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {shapes}") from None


def broadcast_all(*values):
    """Numbers become tensors of the first tensor's dtype and device (the default dtype when all are
    numbers), then every value is broadcast to one shape."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of Number, torch.Tensor or objects implementing "
                         "__torch_function__.")
    if not all(isinstance(v, Tensor) for v in values):
        options = dict(dtype=get_default_dtype())
        for value in values:
            if isinstance(value, Tensor):
                options = dict(dtype=value.dtype, device=value.device)
                break
        values = tuple(v if isinstance(v, Tensor) else _ops.tensor(v, **options) for v in values)
    return tuple(_ops.broadcast_tensors(*values))


def _standard_normal(shape, dtype, device):
    return _ops.empty(tuple(shape), dtype=dtype, device=device).normal_()


def _sum_rightmost(value, dim):
    """Sum out the `dim` rightmost dimensions."""
    if dim == 0:
        return value
    required_shape = tuple(value.shape[:-dim]) + (-1,)
    return value.reshape(required_shape).sum(-1)


def logits_to_probs(logits, is_binary=False):
    if is_binary:
        return _ops.sigmoid(logits)
    return F.softmax(logits, dim=-1)


def clamp_probs(probs):
    """Into the open interval (eps, 1 - eps) of the dtype: logits stay finite."""
    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary=False):
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return _ops.log(ps_clamped) - _ops.log1p(-ps_clamped)
    return _ops.log(ps_clamped)


class lazy_property:
    """Computed once, with grad enabled, on first access and stored on the instance (probs from logits and
    back); on the class it looks like a property (torch's _lazy_property_and_property) so that argument
    validation can tell a parameter that was not given."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return _lazy_property_and_property(self.wrapped)
        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


class _lazy_property_and_property(lazy_property, property):
    def __init__(self, wrapped):
        property.__init__(self, wrapped)


def tril_matrix_to_vec(mat, diag=0):
    """A (batch of) D x D matrices' lower-triangular elements, in row order."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    arange = _ops.arange(n, device=mat.device)
    tril_mask = arange < arange.view(-1, 1) + (diag + 1)
    return mat[..., tril_mask]


def vec_to_tril_matrix(vec, diag=0):
    """The inverse of tril_matrix_to_vec: a (batch of) D x D lower-triangular matrices."""
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * vec.shape[-1] + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    eps = finfo(vec.dtype).eps
    if round(n) - n > eps:
        raise ValueError(f"The size of last dimension is {vec.shape[-1]} which cannot be expressed as the lower "
                         "triangular part of a square D x D matrix.")
    n = round(n)
    mat = vec.new_zeros(tuple(vec.shape[:-1]) + (n, n))
    arange = _ops.arange(n, device=vec.device)
    tril_mask = arange < arange.view(-1, 1) + (diag + 1)
    mat[..., tril_mask] = vec
    return mat
