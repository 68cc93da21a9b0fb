"""torch.utils.dlpack: to_dlpack (a tensor's DLPack capsule) and from_dlpack (a tensor sharing the memory of a
DLPack capsule or of an object with __dlpack__: a NumPy or CuPy array, another library's tensor)."""
from __future__ import annotations

from ..ops.creation import from_dlpack as _from_dlpack

__all__ = ["to_dlpack", "from_dlpack"]


def to_dlpack(tensor):
    """The DLPack capsule of `tensor`'s memory (shared, not copied): a versioned one (DLPack 1.0), which says the
    memory is writable, so that from_dlpack gives back a tensor that can be written, as torch's does."""
    try:
        return tensor._data.__dlpack__(max_version=(1, 0))
    except TypeError:           # an array library without versioned capsules
        return tensor.__dlpack__()


class _Capsule:
    """A bare DLPack capsule as an object with __dlpack__ (what NumPy's from_dlpack takes), on the CPU."""

    def __init__(self, capsule):
        self._capsule = capsule

    def __dlpack__(self, **kwargs):
        return self._capsule

    def __dlpack_device__(self):
        return (1, 0)       # kDLCPU


def from_dlpack(ext):
    """A tensor over `ext`'s memory: an object with __dlpack__, or a capsule (to_dlpack's; a CPU one becomes a
    NumPy array, a GPU one goes to CuPy, which takes capsules itself)."""
    if type(ext).__name__ == "PyCapsule":
        try:
            return _from_dlpack(_Capsule(ext))
        except (BufferError, RuntimeError, TypeError, ValueError):
            from .._device import cupy
            from ..ops._define import Tensor
            t = object.__new__(Tensor)
            t._data = cupy().from_dlpack(ext)
            return t
    return _from_dlpack(ext)
