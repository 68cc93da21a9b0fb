"""torch.nn.utils.skip_init."""
from __future__ import annotations

import inspect

from ..modules.module import Module


def skip_init(module_cls, *args, **kwargs):
    """A `module_cls(*args, **kwargs)` whose parameters and buffers the caller will initialise (torch's contract:
    their values are unspecified). torch builds the module on its 'meta' device and allocates it empty; tensorlib
    has no meta device, so the module is built on the requested device as its constructor builds it (the values
    are then its default initialisation, one case of "unspecified", at the cost of running it)."""
    if not issubclass(module_cls, Module):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    kwargs["device"] = kwargs.pop("device", "cpu")
    return module_cls(*args, **kwargs)
