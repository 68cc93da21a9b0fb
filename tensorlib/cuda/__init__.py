"""tensorlib.cuda: device queries backed by CuPy, imported only when asked. Without CuPy or a GPU,
is_available() is False and the rest raise a clear error."""
from __future__ import annotations

from .._device import CUDA_INSTALL_HINT, cupy, cupy_or_none
from .._hooks import range_enter, range_exit


def is_available() -> bool:
    return cupy_or_none() is not None


def device_count() -> int:
    cp = cupy_or_none()
    return 0 if cp is None else cp.cuda.runtime.getDeviceCount()


def _cp():
    return cupy()


def current_device() -> int:
    return _cp().cuda.runtime.getDevice()


def set_device(device):
    from .._device import to_device
    d = to_device(device)
    if d.type != "cuda":
        return
    _cp().cuda.runtime.setDevice(d.index)


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


class _Props:
    def __init__(self, p, idx):
        name = p["name"]
        self.name = name.decode() if isinstance(name, bytes) else name
        self.total_memory = p["totalGlobalMem"]
        self.major = p["major"]
        self.minor = p["minor"]
        self.multi_processor_count = p["multiProcessorCount"]
        self.index = idx

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1024 * 1024)}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device=None):
    cp = _cp()
    idx = _index(device)
    return _Props(cp.cuda.runtime.getDeviceProperties(idx), idx)


def get_device_capability(device=None):
    p = get_device_properties(device)
    return p.major, p.minor


def _index(device):
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    from .._device import to_device
    return to_device(device).index


def synchronize(device=None):
    cp = _cp()
    tok = range_enter("cudaDeviceSynchronize", "sync")
    try:
        with cp.cuda.Device(_index(device)):
            cp.cuda.runtime.deviceSynchronize()
    finally:
        range_exit(tok)


def manual_seed(seed):
    """torch.cuda.manual_seed: the current device's generator only (not the CPU's, not other devices')."""
    from .. import random
    if is_available():
        random.cuda_generator(current_device()).manual_seed(seed)


def manual_seed_all(seed):
    """torch.cuda.manual_seed_all: every device's generator, including those first used later."""
    from .. import random
    random.manual_seed_all(seed)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """torch.cuda.is_bf16_supported: False here, on any GPU. tensorlib's CUDA tensors live in CuPy arrays and
    CuPy has no bfloat16 dtype, so a program that picks bfloat16 when this says True (nanoGPT's default dtype)
    takes float16 instead, which works. Like torch, False without CUDA too."""
    return False


def is_initialized() -> bool:
    from .. import _device
    return _device._cupy is not None


__all__ = ["is_available", "device_count", "current_device", "set_device", "get_device_name", "synchronize",
           "get_device_properties", "get_device_capability", "manual_seed", "manual_seed_all", "CUDA_INSTALL_HINT",
           "is_bf16_supported"]

from .memory import (OutOfMemoryError, empty_cache, max_memory_allocated, max_memory_reserved, memory_allocated,  # noqa: E402
                     memory_reserved, memory_stats, memory_summary, reset_max_memory_allocated,
                     reset_peak_memory_stats)

__all__ += ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
            "reset_peak_memory_stats", "reset_max_memory_allocated", "empty_cache", "memory_stats", "memory_summary"]
from . import nvtx  # noqa: E402 - torch.cuda.nvtx (NVTX needs no GPU)


def __getattr__(name):
    """`torch.cuda.amp` after a plain `import torch` (nanoGPT): the deprecated aliases, loaded on first use."""
    if name == "amp":
        import importlib
        return importlib.import_module(".amp", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
