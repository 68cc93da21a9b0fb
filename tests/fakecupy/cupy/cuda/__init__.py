"""cupy.cuda (fake): devices, streams, events, memory. See cupy/__init__.py for what is simulated."""
from __future__ import annotations

import itertools
import threading
import weakref

import numpy

from . import _sim, memory, memory_hook, profiler, runtime
from .memory import (BaseMemory, Memory, MemoryPointer, MemoryPool, PinnedMemoryPointer, UnownedMemory,
                     alloc_pinned_memory, get_allocator, set_allocator)
from .memory import OutOfMemoryError
from .runtime import CUDARuntimeError


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
        runtime._check(self.id)
        self._prev.append(runtime.getDevice())
        runtime.setDevice(self.id)
        return self

    def __exit__(self, *exc):
        runtime.setDevice(self._prev.pop())

    def synchronize(self):
        runtime._check(self.id)
        _sim.wait(self.id, _sim.device_tail(self.id))

    @property
    def compute_capability(self):
        p = runtime.getDeviceProperties(self.id)
        return f"{p['major']}{p['minor']}"

    @property
    def mem_info(self):
        with self:
            return runtime.memGetInfo()


_stream_ptrs = itertools.count(0x5000_0000, 0x100)
_streams: weakref.WeakValueDictionary = weakref.WeakValueDictionary()   # ptr -> live Stream (for nccl's intptr_t)
_tls = threading.local()


class Stream:
    """A CUDA stream: a queue of work on the device that was current when it was made (the null
    stream, ptr 0, is the current device's). See _sim for when its work completes."""

    null = None     # set below

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else next(_stream_ptrs)
        self.device_id = runtime.getDevice()
        if self.ptr:
            _streams[self.ptr] = self

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
        _sim.wait_stream(self)

    @property
    def done(self):
        return _sim.completed(*_sim.stream_tail(self))

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        if event._t is not None:
            _sim.after(self, event._t)

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
    """A CUDA event: record() enqueues a marker on a stream; it completes when the device reaches it and
    the host has waited for that (see _sim). Never recorded, it is done, as cudaEventQuery says."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.ptr = next(_event_ptrs)
        self._timing = not disable_timing
        self._device = None
        self._t = None

    def record(self, stream=None):
        if stream is not None and not isinstance(stream, Stream):
            raise TypeError(f"stream must be a cupy.cuda.Stream, got {type(stream)}")
        self._device, self._t = _sim.mark(stream)

    def synchronize(self):
        if self._t is not None:
            _sim.wait(self._device, self._t)

    @property
    def done(self):
        return self._t is None or _sim.completed(self._device, self._t)


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two completed events, as cudaEventElapsedTime gives them: a C float (24-bit
    mantissa, so a microsecond is lost after about 16 s) of a 0.5 us resolution count."""
    for e in (start_event, end_event):
        if not e._timing or e._t is None:
            raise CUDARuntimeError(runtime.errorInvalidResourceHandle)
    for e in (start_event, end_event):
        if not e.done:
            raise CUDARuntimeError(runtime.errorNotReady)
    return float(numpy.float32(round((end_event._t - start_event._t) / 500) * 500 / 1e6))


def get_device_id():
    return runtime.getDevice()
