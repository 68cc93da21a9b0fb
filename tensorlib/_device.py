"""Devices and backends: NumPy for "cpu", CuPy for "cuda" (imported the first time CUDA is used)."""
from __future__ import annotations

import numpy as np

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
        if type not in ("cpu", "cuda"):
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


CPU = device("cpu")
_cuda_devices: dict[int, device] = {}


def cuda_device(i: int) -> device:
    d = _cuda_devices.get(i)
    if d is None:
        d = _cuda_devices[i] = device("cuda", i)
    return d


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
    cp = cupy()
    idx = dev.index if dev.index is not None else cp.cuda.runtime.getDevice()
    n = cp.cuda.runtime.getDeviceCount()
    if idx >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal (asked for cuda:{idx}, {n} device(s) present)")
    return cuda_device(idx)


def device_of(arr) -> device:
    if type(arr) is np.ndarray:
        return CPU
    return cuda_device(arr.device.id)


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
        if type(arr) is not np.ndarray and arr.device.id == dev.index:
            return arr
        return cp.asarray(arr)
