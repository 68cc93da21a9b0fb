"""Devices and backends: NumPy for "cpu", CuPy for "cuda" (imported the first time CUDA is used)."""
from __future__ import annotations

import threading

import numpy as np

from ._sparse import SparseCOO

_cupy = None
_cupy_error: Exception | None = None

CUDA_INSTALL_HINT = ("install the CUDA extra matching your toolkit: pip install 'tensorlib-profiler[cuda12]' "
                     "(CUDA 12) or 'tensorlib-profiler[cuda13]' (CUDA 13)")


def cupy_or_none():
    """CuPy if it imports and sees a GPU, else None. Never raises."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy  # lazy by design
            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device is visible")
            _cupy = cupy
        except Exception as e:  # noqa: BLE001 - a probe that never raises: ImportError, CUDARuntimeError, driver
            _cupy_error = e
        else:
            for fn in on_cupy_init:
                fn(cupy)
    return _cupy


on_cupy_init: list = []   # fn(cupy) called once when CuPy is first found usable (the CUDA memory tracker)


def cupy():
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError(f"CUDA is not available: {_cupy_error}. To use CUDA tensors you need an NVIDIA GPU "
                           f"and CuPy; {CUDA_INSTALL_HINT}.")
    return cp


# torch's list, in its order (tensorlib runs on cpu and cuda; the message is torch's, so code matching it works)
_TORCH_DEVICE_TYPES = ("cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, maia, xla, lazy, vulkan, "
                       "mps, meta, hpu, mtia, privateuseone")
_KNOWN_TYPES = frozenset(_TORCH_DEVICE_TYPES.split(", "))


def unsupported_device(type: str) -> RuntimeError:
    """The one-line error for a device type torch knows and tensorlib cannot hold tensors on."""
    what = ("tensors with a shape but no data (shape inference without computing) are not supported"
            if type == "meta" else "it runs on NumPy (cpu) and CuPy (cuda) only")
    return RuntimeError(f"tensorlib has no '{type}' device: {what}; use 'cpu' or 'cuda'")


class device:
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device() expected a string like 'cpu' or 'cuda:0', got {type!r}")
        if ":" in type:
            if index is not None:
                raise RuntimeError("type (string) must not include an index because index was passed explicitly: "
                                   f"{type}")
            type, _, idx = type.partition(":")
            try:
                index = int(idx)
            except ValueError:
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'") from None
        if type not in _KNOWN_TYPES:
            raise RuntimeError(f"Expected one of {_TORCH_DEVICE_TYPES} device type at start of device string: {type}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type = type
        self.index = index

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __enter__(self):
        """`with torch.device("cuda"):` factory calls without a device= make their tensors here."""
        _stack().append(to_device(self) if self.type == "cpu" else _supported(self))
        return self

    def __exit__(self, *exc):
        _stack().pop()


CPU = device("cpu")
_cuda_devices: dict[int, device] = {}


def cuda_device(i: int) -> device:
    d = _cuda_devices.get(i)
    if d is None:
        d = _cuda_devices[i] = device("cuda", i)
    return d


class _Local(threading.local):
    stack: list[device] | None = None     # (a class default: reading it where no thread set it raises nothing)


_local = _Local()
_global_default: list[device | None] = [None]


def _stack() -> list[device]:
    st = _local.stack
    if st is None:
        st = _local.stack = []
    return st


def _supported(d: device) -> device:
    if d.type not in ("cpu", "cuda"):
        raise unsupported_device(d.type)
    return d


def default_device() -> device:
    """Where a factory call without device= puts its tensor: the innermost `with torch.device(...)` of
    this thread, else set_default_device's, else cpu (resolved to cuda:N when the tensor is made)."""
    st = _local.stack
    if st:
        return to_device(st[-1])
    d = _global_default[0]
    return CPU if d is None else to_device(d)


def set_default_device(d) -> None:
    """torch.set_default_device: None (back to cpu), a device, a string or a CUDA index."""
    _global_default[0] = None if d is None else _supported(d if isinstance(d, device) else
                                                            device("cuda", d) if isinstance(d, int) else device(d))


def get_default_device() -> device:
    """torch.get_default_device: `device(type='cpu')`, or the CUDA device factory calls now use."""
    return default_device()


def to_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        dev = d
    elif isinstance(d, int):
        dev = device("cuda", d)
    else:
        dev = device(d)
    if dev.type == "cpu":
        return CPU
    if dev.type != "cuda":
        raise unsupported_device(dev.type)
    cp = cupy()
    idx = dev.index if dev.index is not None else cp.cuda.runtime.getDevice()
    n = cp.cuda.runtime.getDeviceCount()
    if idx >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal (asked for cuda:{idx}, {n} device(s) present)")
    return cuda_device(idx)


def cuda_index(arr) -> int:
    """A CuPy array's device index, read from its memory pointer: `arr.device.id` makes a Device object per
    call (on an H200 machine that was most of the dispatcher's own cost on a tiny op). The dispatcher's
    `_execute._xp_of` inlines the same read. Other array types with a `device` (test doubles) answer by it."""
    d = getattr(arr.data, "device_id", None)
    return arr.device.id if d is None else d


def device_of(arr) -> device:
    if type(arr) is np.ndarray:
        return CPU
    if type(arr) is SparseCOO:     # a sparse tensor's payload: where its values are
        return device_of(arr.values)
    return cuda_device(cuda_index(arr))


def xp_of(arr):
    return np if type(arr) is np.ndarray else _cupy


def move(arr, dev: device):
    """Copy an array to a device (NumPy <-> CuPy); a no-op when it is already there."""
    if dev.type == "cpu":
        if type(arr) is np.ndarray:
            return arr
        return arr.get()
    cp = cupy()
    with cp.cuda.Device(dev.index):
        if type(arr) is not np.ndarray and cuda_index(arr) == dev.index:
            return arr
        return cp.asarray(arr)
