"""Memory questions for the CPU (and a front door to the CUDA ones): `tensorlib.memory_allocated("cpu")`.

The CPU answer is computed on demand, never on the dispatcher's hot path: `memory_allocated("cpu")`
walks `gc.get_objects()` for live tensors and adds up the NumPy buffers they own, counting a buffer shared
by several tensors (views, `detach()`, slices) once by following each array's `.base` chain to its owner.
A walk costs a few milliseconds per 100k live objects; ops cost nothing extra.

Because nothing is recorded per op, the CPU "peak" is the largest value measured by these calls since the
last reset (the memory_allocated / memory_stats calls and `record_peak()`); call `record_peak()` at the
points you care about (the profiler's memory hook records exact per-op timelines when it is attached).
NumPy has no caching allocator, so reserved == allocated on the CPU.
"""
from __future__ import annotations

import gc

import numpy as np

from ._device import device as Device, to_device
from ._native import load
from ._tensor import Tensor

__all__ = ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved", "memory_stats",
           "reset_peak_memory_stats", "record_peak", "empty_cache"]

_cpu_peak = 0
_native = load("tensorlib._crecorded")


def _owner(arr):
    """The array that owns the memory `arr` looks at (or the last array before a non-array owner)."""
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def _walk():
    """(bytes, number of tensors, number of distinct buffers) over live CPU tensors (the loop in C where
    tensorlib._crecorded is built: a tenth of the time over a large program's objects)."""
    if _native is not None:
        return _native.walk(gc.get_objects(), Tensor, np.ndarray)
    seen: dict[int, int] = {}
    n_tensors = 0
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance consults obj.__class__, which some lazy proxies override
        if issubclass(type(obj), Tensor):
            d = getattr(obj, "_data", None)
            if type(d) is not np.ndarray:
                continue
            n_tensors += 1
            own = _owner(d)
            key = id(own) if own.base is None else id(own.base)
            size = own.nbytes
            if seen.get(key, -1) < size:
                seen[key] = size
    return sum(seen.values()), n_tensors, len(seen)


def _is_cpu(device):
    if isinstance(device, int):
        return False   # an index names a CUDA device, as in torch.cuda
    if device is None:
        return True
    if isinstance(device, Device):
        return device.type == "cpu"
    if isinstance(device, str) and device.split(":")[0] == "cuda":
        return False   # answered by tensorlib.cuda (0 while CUDA is unused or absent, like torch)
    return to_device(device).type == "cpu"


def record_peak() -> int:
    """Measure CPU tensor bytes now and fold them into the peak; returns the current bytes."""
    global _cpu_peak
    cur = _walk()[0]
    _cpu_peak = max(_cpu_peak, cur)
    return cur


def memory_stats(device="cpu") -> dict:
    """torch-style keys; on the CPU: allocated_bytes.all.{current,peak}, reserved_bytes.all.{current,peak},
    num_tensors and num_buffers (distinct NumPy buffers behind them)."""
    if not _is_cpu(device):
        from .cuda import memory
        return memory.memory_stats(device)
    global _cpu_peak
    cur, n_tensors, n_buffers = _walk()
    _cpu_peak = max(_cpu_peak, cur)
    return {"allocated_bytes.all.current": cur, "allocated_bytes.all.peak": _cpu_peak,
            "reserved_bytes.all.current": cur, "reserved_bytes.all.peak": _cpu_peak,
            "num_tensors": n_tensors, "num_buffers": n_buffers}


def memory_allocated(device="cpu") -> int:
    """Bytes held by live tensors on the device ("cpu", "cuda", "cuda:1", a device or an index)."""
    if not _is_cpu(device):
        from .cuda import memory
        return memory.memory_allocated(device)
    return record_peak()


def max_memory_allocated(device="cpu") -> int:
    if not _is_cpu(device):
        from .cuda import memory
        return memory.max_memory_allocated(device)
    return memory_stats("cpu")["allocated_bytes.all.peak"]


def max_memory_reserved(device="cpu") -> int:
    if not _is_cpu(device):
        from .cuda import memory
        return memory.max_memory_reserved(device)
    return max_memory_allocated("cpu")


def memory_reserved(device="cpu") -> int:
    if not _is_cpu(device):
        from .cuda import memory
        return memory.memory_reserved(device)
    return memory_allocated("cpu")


def reset_peak_memory_stats(device="cpu"):
    global _cpu_peak
    if not _is_cpu(device):
        from .cuda import memory
        return memory.reset_peak_memory_stats(device)
    _cpu_peak = _walk()[0]


def empty_cache(device="cpu"):
    """CPU: nothing is cached (NumPy frees buffers when their last array goes); CUDA: the pool's cache."""
    if not _is_cpu(device):
        from .cuda import memory
        memory.empty_cache()
