"""cupy.cuda (fake): devices, streams, events, memory. See cupy/__init__.py for what is simulated."""
from __future__ import annotations

import itertools
import threading
import time

from . import memory, memory_hook, profiler, runtime  # noqa: F401
from .memory import (MemoryPointer, MemoryPool, PinnedMemoryPointer, alloc_pinned_memory,  # noqa: F401
                     get_allocator, set_allocator)
from .memory import OutOfMemoryError  # noqa: F401
from .runtime import CUDARuntimeError  # noqa: F401


def is_available():
    return True


class Device:
    def __init__(self, device=None):
        self.id = runtime.getDevice() if device is None else int(device)
        self._prev = []

    def __int__(self):
        return self.id

    def __index__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    def use(self):
        runtime.setDevice(self.id)

    def __enter__(self):
        self._prev.append(runtime.getDevice())
        runtime.setDevice(self.id)
        return self

    def __exit__(self, *exc):
        runtime.setDevice(self._prev.pop())

    def synchronize(self):
        runtime._check(self.id)

    @property
    def compute_capability(self):
        p = runtime.getDeviceProperties(self.id)
        return f"{p['major']}{p['minor']}"

    @property
    def mem_info(self):
        return runtime.memGetInfo()


_stream_ptrs = itertools.count(0x5000_0000, 0x100)
_tls = threading.local()


class Stream:
    null = None     # set below

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else next(_stream_ptrs)
        self.device_id = runtime.getDevice()

    def __enter__(self):
        st = getattr(_tls, "stack", None)
        if st is None:
            st = _tls.stack = []
        st.append(self)
        return self

    def __exit__(self, *exc):
        _tls.stack.pop()

    def use(self):
        _tls.current = self
        return self

    def synchronize(self):
        pass

    @property
    def done(self):
        return True

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return hash(self.ptr)


Stream.null = Stream(null=True)
ExternalStream = Stream


def get_current_stream(device_id=None):
    st = getattr(_tls, "stack", None)
    if st:
        return st[-1]
    return getattr(_tls, "current", Stream.null)


_event_ptrs = itertools.count(0x6000_0000, 0x40)


class Event:
    """A CUDA event (fake): record() stamps the host clock (every fake kernel has completed by then)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.ptr = next(_event_ptrs)
        self._timing = not disable_timing
        self._t = None

    def record(self, stream=None):
        if stream is not None and not isinstance(stream, Stream):
            raise TypeError(f"stream must be a cupy.cuda.Stream, got {type(stream)}")
        self._t = time.perf_counter_ns()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events (CUDA's 0.5 us resolution)."""
    for e in (start_event, end_event):
        if not e._timing:
            raise CUDARuntimeError(400, "cudaErrorInvalidResourceHandle: invalid resource handle")
        if e._t is None:
            raise CUDARuntimeError(400, "cudaErrorInvalidResourceHandle: invalid resource handle")
    return round((end_event._t - start_event._t) / 500) * 500 / 1e6


def get_device_id():
    return runtime.getDevice()


