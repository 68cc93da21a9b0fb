"""torch.accelerator: the device-agnostic API the official examples now open with.

tensorlib's only accelerator is CUDA (through CuPy); where none is available, `current_accelerator()` is
None and the device-specific calls raise torch's RuntimeError. torch's `Graph`, `current_stream` and
`set_stream` are not provided here (tensorlib.cuda has them: tensorlib.cuda.Stream, current_stream,
set_stream, CUDAGraph); they raise AttributeError as any absent name.
"""
from __future__ import annotations

from contextlib import contextmanager

from . import cuda as _cuda
from ._device import device as _device

__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "device_count", "device_index",
           "empty_cache", "get_device_capability", "is_available", "max_memory_allocated",
           "max_memory_reserved", "memory_allocated", "memory_reserved", "memory_stats",
           "reset_peak_memory_stats", "set_device_idx", "set_device_index", "synchronize"]

_NONE = "Cannot access accelerator device when none is available."


def is_available() -> bool:
    return _cuda.is_available()


def device_count() -> int:
    return _cuda.device_count() if _cuda.is_available() else 0


def current_accelerator(check_available: bool = False):
    """The accelerator's device type as a device (`device(type='cuda')`), or None where there is none."""
    return _device("cuda") if _cuda.is_available() else None


def _require():
    if not _cuda.is_available():
        raise RuntimeError(_NONE)


def _index(dev) -> int | None:
    if dev is None or isinstance(dev, int):
        return dev
    d = _device(dev) if isinstance(dev, str) else dev
    if d.type != "cuda":
        raise ValueError(f"{d.type} doesn't match the current accelerator cuda.")
    return d.index


def current_device_index() -> int:
    _require()
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device, /) -> None:
    _require()
    idx = _index(device)
    if idx is not None:
        _cuda.set_device(idx)


set_device_idx = set_device_index


@contextmanager
def device_index(device, /):
    """Make `device` (an index, or None for no change) current for the with-block."""
    if device is None:
        yield
        return
    _require()
    previous = _cuda.current_device()
    _cuda.set_device(device)
    try:
        yield
    finally:
        _cuda.set_device(previous)


def synchronize(device=None, /) -> None:
    _require()
    _cuda.synchronize(_index(device))


def get_device_capability(device=None, /) -> dict:
    _require()
    major, minor = _cuda.get_device_capability(_index(device))
    return {"major": major, "minor": minor}


def _memory(fn_name):
    def fn(device_index=None, /):
        _require()
        return getattr(_cuda, fn_name)(_index(device_index))
    fn.__name__ = fn.__qualname__ = fn_name
    fn.__doc__ = f"torch.accelerator.{fn_name}: tensorlib.cuda.{fn_name} on the current accelerator."
    return fn


memory_allocated = _memory("memory_allocated")
max_memory_allocated = _memory("max_memory_allocated")
memory_reserved = _memory("memory_reserved")
max_memory_reserved = _memory("max_memory_reserved")
memory_stats = _memory("memory_stats")
reset_peak_memory_stats = _memory("reset_peak_memory_stats")


def empty_cache() -> None:
    if _cuda.is_available():
        _cuda.empty_cache()
