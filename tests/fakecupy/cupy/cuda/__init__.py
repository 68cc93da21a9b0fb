"""cupy.cuda (fake): devices, streams, events, memory. See cupy/__init__.py for what is simulated."""
from __future__ import annotations

import itertools
import threading
import weakref

import numpy

from .. import _api
from . import _sim, graph, memory, memory_hook, nvrtc, profiler, runtime
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
    stream, ptr 0, is the current device's). See _sim for when its work completes.

    The signature is CuPy's under FAKECUPY_RULES (CuPy 13 has no `priority`, nor the `priority` and
    `is_non_blocking` attributes). Priorities are clamped, as cudaStreamCreateWithPriority clamps them,
    to the fake device's range [-5, 0] (an H100's: 0 the lowest, -5 the highest); they change nothing
    in the simulated queues. `with stream:` makes it the thread's current stream and restores the
    previous one at exit, as CuPy's does; `use()` makes it current outright.

    Stream capture (`begin_capture`) is not simulated: the fake computes each kernel at once, so it
    cannot hold work back for a graph to replay. It raises, naming that; `is_capturing()` is False."""

    null = None     # set below

    def __init__(self, *args, **kwargs):
        _api.check_call("cupy.cuda", "Stream", args, kwargs)
        sig = _api.signature("cupy.cuda", "Stream")
        b = sig.bind(*args, **kwargs) if sig is not None else None
        a = dict(b.arguments) if b is not None else {}
        null, non_blocking, priority = a.get("null", False), a.get("non_blocking", False), a.get("priority")
        self.ptr = 0 if null else next(_stream_ptrs)
        self.device_id = runtime.getDevice()
        self._non_blocking = bool(non_blocking)
        self._priority = 0 if priority is None else min(0, max(-5, int(priority)))
        if self.ptr:
            _streams[self.ptr] = self

    def __getattr__(self, name):
        if name in ("priority", "is_non_blocking"):
            if not _api.has("cupy.cuda.Stream", name):
                raise AttributeError(f"'cupy.cuda.stream.Stream' object has no attribute '{name}'")
            return self._priority if name == "priority" else self._non_blocking
        raise AttributeError(f"'cupy.cuda.stream.Stream' object has no attribute '{name}'")

    def __enter__(self):
        st = getattr(_tls, "prev", None)
        if st is None:
            st = _tls.prev = []
        st.append(get_current_stream())
        _tls.current = self
        return self

    def __exit__(self, *exc):
        _tls.current = _tls.prev.pop()

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

    def begin_capture(self, mode=None):
        raise NotImplementedError("fake cupy: stream capture (CUDA graphs) is not simulated: the fake runs each "
                                  "kernel at once and cannot replay it; test capture on a GPU")

    def end_capture(self):
        raise runtime.CUDARuntimeError(runtime.errorIllegalState)

    def is_capturing(self):
        return False

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return hash(self.ptr)


Stream.null = Stream(null=True)


class ExternalStream(Stream):
    """A stream made elsewhere, by its pointer: work on it joins the queue of the stream with that
    pointer (one queue per (device, ptr) in _sim). device_id -1 (unknown) is taken as the current device."""

    def __init__(self, ptr, device_id=-1):
        self.ptr = int(ptr)
        self.device_id = runtime.getDevice() if device_id < 0 else device_id
        own = _streams.get(self.ptr)
        self._non_blocking = own._non_blocking if own is not None else False
        self._priority = own._priority if own is not None else 0


def get_current_stream(device_id=-1):
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
