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
    """A bare DLPack capsule as an object with __dlpack__ and __dlpack_device__ (what NumPy's and CuPy's from_dlpack
    take): a capsule does not say its device, so `device` is the one tried (kDLCPU = 1, kDLCUDA = 2)."""

    def __init__(self, capsule, device):
        self._capsule = capsule
        self._device = device

    def __dlpack__(self, **kwargs):
        return self._capsule

    def __dlpack_device__(self):
        return self._device


def from_dlpack(ext):
    """A tensor over `ext`'s memory: an object with __dlpack__, or a capsule (to_dlpack's), read as a CPU one and,
    where NumPy refuses it, as a CUDA one (tensorlib.from_dlpack's CuPy path)."""
    if type(ext).__name__ != "PyCapsule":
        return _from_dlpack(ext)
    try:
        return _from_dlpack(_Capsule(ext, (1, 0)))
    except (BufferError, RuntimeError, TypeError, ValueError):
        return _from_dlpack(_Capsule(ext, (2, 0)))
