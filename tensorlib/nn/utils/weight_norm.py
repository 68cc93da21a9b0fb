"""torch.nn.utils.weight_norm / remove_weight_norm: the hook-based weight normalisation (deprecated in torch for
nn.utils.parametrizations.weight_norm, with its FutureWarning), w = g * v / ||v||, the norm over every dim but
`dim` (dim=None: over the whole tensor). The module's `weight` parameter becomes two, `weight_g` and `weight_v`
(torch's state-dict keys), and a forward pre-hook recomputes `weight` from them before each forward.

`_weight_norm` and `norm_except_dim` are torch's functions of those names, composed of dispatched ops (torch
runs `_weight_norm` as one fused op, `_weight_norm_interface`, for dim 0 and the last dim: the same formula)."""
from __future__ import annotations

import warnings

from ... import _hooks as _H
from ..parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


def norm_except_dim(v, pow=2, dim=0):
    """torch.norm_except_dim: the `pow`-norm of `v` over every dim but `dim`, kept as size-1 dims (dim=-1:
    the whole tensor's norm, 0-dim)."""
    if dim == -1:
        return v.norm(pow)
    d = dim % v.ndim
    return v.norm(pow, tuple(k for k in range(v.ndim) if k != d), keepdim=True)


def _weight_norm(v, g, dim=0):
    """torch._weight_norm: v * (g / norm_except_dim(v, 2, dim))."""
    if _H.range_hooks:
        return _H.op_region("_weight_norm", (v, g, dim), _weight_norm_ops, v, g, dim)
    return _weight_norm_ops(v, g, dim)


def _weight_norm_ops(v, g, dim):
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm:
    """The forward pre-hook (and its state) of one weight-normalised parameter."""

    def __init__(self, name, dim):
        if dim is None:
            dim = -1
        self.name = name
        self.dim = dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module, name, dim):
        warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                      "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        if dim is None:
            dim = -1
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, dim).data))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Weight normalisation of `module`'s parameter `name` (see the module's docstring); returns `module`."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: `name` is a parameter again, with the normalised weight's value."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
