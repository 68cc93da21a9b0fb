"""Page-locked (pinned) host memory for batches, so that `.cuda(non_blocking=True)` can copy them
asynchronously. Pinned buffers come from CuPy (`cupyx.empty_pinned`), imported only when CUDA is present.
"""
from __future__ import annotations

import collections.abc as cabc

import numpy as np

from ..._tensor import Tensor
from ...ops._define import dispatch, op, public

__all__ = ["pin_memory", "is_pinned"]


@op("pin_memory", node_name="PinMemoryBackward0")
def PIN_MEMORY(xp, arr):
    """The copy into page-locked memory, a dispatched op as torch's aten::pin_memory (the profiler sees
    it, and its gradient passes through as torch's does)."""
    from ..._device import cupy
    cupy()   # the clear "CUDA is not available" error when there is none
    import cupyx  # lazy by design
    out = cupyx.empty_pinned(arr.shape, arr.dtype)
    np.copyto(out, arr)
    return out


PIN_MEMORY.def_backward(lambda ctx, g: (g,))


def is_pinned(t) -> bool:
    """True when the tensor's host buffer is page-locked memory from CuPy's pinned allocator."""
    d = t._data if isinstance(t, Tensor) else t
    if type(d) is not np.ndarray:
        return False
    b = d
    while isinstance(b, np.ndarray) and b.base is not None:
        b = b.base
    return type(b).__name__ == "PinnedMemoryPointer" or type(getattr(b, "obj", None)).__name__ == "PinnedMemoryPointer"


def pin_memory(data):
    """A copy of `data` (tensor or nested containers of them) in pinned host memory."""
    if isinstance(data, Tensor):
        if type(data._data) is not np.ndarray:
            raise RuntimeError(f"cannot pin '{data.device}' memory: only dense CPU tensors can be pinned")
        if is_pinned(data):
            return data
        return dispatch(PIN_MEMORY, data)
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, cabc.Mapping):
        return type(data)({k: pin_memory(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(pin_memory(d) for d in data))
    if isinstance(data, tuple):
        return tuple(pin_memory(d) for d in data)
    if isinstance(data, list):
        return [pin_memory(d) for d in data]
    if hasattr(data, "pin_memory"):
        return data.pin_memory()
    return data


@public(name="pin_memory", function=False, method=True)
def _tensor_pin_memory(self, device=None):
    return pin_memory(self)


@public(name="is_pinned", function=False, method=True)
def _tensor_is_pinned(self, device=None):
    return is_pinned(self)
