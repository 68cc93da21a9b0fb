"""cupy.cuda.runtime (fake): FAKECUPY_DEVICES devices (default 1), a current device per thread,
properties shaped like CuPy's (str keys, bytes name)."""
from __future__ import annotations

import os
import threading

from cupy_backends.cuda.api.runtime import (CUDARuntimeError, errorInvalidDevice,  # noqa: F401 - defined there,
                                             errorInvalidResourceHandle, errorNotReady,
                                             errorIllegalState)  # as in CuPy

is_hip = False
_COUNT = int(os.environ.get("FAKECUPY_DEVICES", "1"))
_tls = threading.local()
_profiling = [False]


def _check(device):
    if not 0 <= device < _COUNT:
        raise CUDARuntimeError(errorInvalidDevice)


def getDeviceCount():
    return _COUNT


def getDevice():
    return getattr(_tls, "device", 0)


def setDevice(device):
    _check(device)
    _tls.device = device


def deviceSynchronize():
    from . import _sim
    d = getDevice()
    _sim.wait(d, _sim.device_tail(d))


def runtimeGetVersion():
    return 12080


def driverGetVersion():
    return 12080


streamCaptureModeGlobal, streamCaptureModeThreadLocal, streamCaptureModeRelaxed = 0, 1, 2   # CUDA's values

TOTAL_MEM = 80 * 1024 ** 3


def memGetInfo():
    from .memory import get_default_memory_pool
    return TOTAL_MEM - get_default_memory_pool().total_bytes(), TOTAL_MEM


def getDeviceProperties(device):
    _check(device)
    return {"name": b"Fake CUDA device (NumPy)", "totalGlobalMem": TOTAL_MEM, "sharedMemPerBlock": 49152,
            "regsPerBlock": 65536, "warpSize": 32, "maxThreadsPerBlock": 1024,
            "maxThreadsDim": (1024, 1024, 64), "maxGridSize": (2147483647, 65535, 65535),
            "clockRate": 1980000, "totalConstMem": 65536, "major": 9, "minor": 0,
            "multiProcessorCount": 132, "l2CacheSize": 52428800, "maxThreadsPerMultiProcessor": 2048,
            "memoryClockRate": 2619000, "memoryBusWidth": 5120, "computeMode": 0, "pciBusID": device,
            "pciDeviceID": 0, "pciDomainID": 0, "integrated": 0, "canMapHostMemory": 1,
            "concurrentKernels": 1, "ECCEnabled": 1, "uuid": b"\0" * 16, "regsPerMultiprocessor": 65536,
            "sharedMemPerMultiprocessor": 233472, "sharedMemPerBlockOptin": 232448, "maxBlocksPerMultiProcessor": 32}


def profilerStart():
    _profiling[0] = True


def profilerStop():
    _profiling[0] = False
