"""torch.func: functional_call (a module run with given parameters and buffers) and the function transforms
grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian and vmap, on tensorlib's tape (see
tensorlib/func/_transforms.py for how, and where they differ from torch's: vmap is a loop over the batch,
jvp and jacfwd are computed in reverse mode). The transforms are imported on first use."""
from __future__ import annotations

from collections.abc import Sequence

from ..nn.utils.stateless import _functional_call

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap"]

_TRANSFORMS = frozenset(__all__[1:])


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """torch.func.functional_call: `module(*args, **kwargs)` with the parameters and buffers named in
    `parameter_and_buffer_dicts` (a dict, or a sequence of dicts with distinct keys) in place of the module's
    own for the call (tied weights replaced together unless tie_weights=False; strict: every parameter and
    buffer given, and nothing else)."""
    if isinstance(parameter_and_buffer_dicts, dict):
        parameters_and_buffers = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        counts: dict[str, int] = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        parameters_and_buffers = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)


def __getattr__(name: str):
    """The transforms, from tensorlib.func._transforms on first use (`import tensorlib` does not load it)."""
    if name in _TRANSFORMS:
        from . import _transforms
        return getattr(_transforms, name)
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
