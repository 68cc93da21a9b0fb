"""torch.cuda's streams and events over CuPy's (`cupy.cuda.Stream`, `cupy.cuda.Event`).

tensorlib launches every CUDA kernel through CuPy, and CuPy puts each kernel on its *current* stream
(per thread). So torch's "current stream" here is CuPy's: `set_stream(s)` and `with stream(s):` make
`s`'s CuPy stream current (and, as torch's do, its device the current device), and every op tensorlib
runs inside goes onto it, copies and reductions included. Code that uses CuPy directly sees the same
stream, and a CuPy stream made current with CuPy's own `with s:` is what `current_stream()` returns.

Streams made here are non-blocking (they do not wait for the legacy default stream), as the streams of
torch's pool are. The default stream is CUDA's legacy null stream (`cuda_stream == 0`), torch's too.
Priorities: lower is higher, clamped by CUDA to the device's range (0 the lowest); CuPy 13 cannot make a
stream with a priority (CuPy 14 can), so there every stream has priority 0 and `priority` says so.
"""
from __future__ import annotations

from .._device import cupy, cupy_or_none

__all__ = ["Stream", "ExternalStream", "Event", "StreamContext", "current_stream", "default_stream", "set_stream",
           "stream"]

_CUDA_DEVICE_TYPE = 1     # torch's DeviceType::CUDA, what Stream.device_type reports


def _index(cp, device) -> int:
    """A CUDA device index from None (the current device), an int, a string or a device."""
    if device is None:
        return cp.cuda.runtime.getDevice()
    if isinstance(device, int):
        return cp.cuda.runtime.getDevice() if device < 0 else device
    from .._device import device as _dev, to_device
    d = device if isinstance(device, _dev) else _dev(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return to_device(d).index


def _cupy_priorities(cp) -> bool:
    """Whether this CuPy's Stream takes a priority (CuPy 14 does, CuPy 13 does not)."""
    return int(cp.__version__.split(".")[0]) >= 14


class Stream:
    """torch.cuda.Stream: a CUDA stream on `device` (None or a negative index: the current device).

    A new non-blocking CuPy stream, with `priority` where the installed CuPy takes one (see the module
    docstring). `with s:` works as `with tensorlib.cuda.stream(s):`."""

    def __init__(self, device=None, priority=0, **kwargs):
        if kwargs:
            raise TypeError(f"Stream() got an unexpected keyword argument '{next(iter(kwargs))}'")
        cp = cupy()
        idx = _index(cp, device)
        kw = {"priority": int(priority)} if priority and _cupy_priorities(cp) else {}
        with cp.cuda.Device(idx):
            self._init(cp.cuda.Stream(non_blocking=True, **kw), idx)
        self._ctx: list = []

    def _init(self, cp_stream, idx):
        self._cp_stream = cp_stream
        self.device_index = idx
        self.device_type = _CUDA_DEVICE_TYPE

    @classmethod
    def _wrap(cls, cp_stream, idx) -> Stream:
        """The Stream of an existing CuPy stream (the current or the null one) on device `idx`."""
        s = cls.__new__(cls)
        s._init(cp_stream, idx)
        s._ctx = []
        return s

    @property
    def cuda_stream(self) -> int:
        """The cudaStream_t as an int (0: the legacy default stream)."""
        return self._cp_stream.ptr

    @property
    def device(self):
        from .._device import cuda_device
        return cuda_device(self.device_index)

    @property
    def priority(self) -> int:
        """The stream's actual priority (CUDA clamps a requested one to the device's range); 0 on CuPy 13."""
        return int(getattr(self._cp_stream, "priority", 0)) if _cupy_priorities(cupy()) else 0

    def query(self) -> bool:
        """Whether all the work queued on the stream has completed (never waits)."""
        return bool(self._cp_stream.done)

    def synchronize(self) -> None:
        """Wait on the host until the stream's queued work has completed."""
        self._cp_stream.synchronize()

    def wait_event(self, event) -> None:
        """Work queued on this stream from now on waits for `event` (the host does not wait)."""
        event.wait(self)

    def wait_stream(self, stream) -> None:
        """Work queued on this stream from now on waits for the work queued on `stream` so far."""
        self.wait_event(stream.record_event())

    def record_event(self, event=None):
        """Record `event` (a new Event if None) on this stream; returns it."""
        if event is None:
            event = Event()
        event.record(self)
        return event

    def __enter__(self):
        ctx = StreamContext(self)
        self._ctx.append(ctx)
        ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.pop().__exit__(*exc)

    def __eq__(self, other):
        return isinstance(other, Stream) and (self.cuda_stream, self.device_index) == (other.cuda_stream,
                                                                                        other.device_index)

    def __hash__(self):
        return hash((self.cuda_stream, self.device))

    def __repr__(self):
        return f"<torch.cuda.Stream device={self.device} cuda_stream={self.cuda_stream:#x}>"

    def __cuda_stream__(self):
        """The CUDA stream protocol: (version 0, the cudaStream_t as an int)."""
        return (0, self.cuda_stream)


class ExternalStream(Stream):
    """torch.cuda.ExternalStream: a stream made by other code (`stream_ptr`, its cudaStream_t as an int),
    on `device` (None: the current one). Its lifetime is the caller's: it is never destroyed here."""

    def __init__(self, stream_ptr, device=None, **kwargs):
        if kwargs:
            raise TypeError(f"ExternalStream() got an unexpected keyword argument '{next(iter(kwargs))}'")
        cp = cupy()
        idx = _index(cp, device)
        with cp.cuda.Device(idx):
            self._init(cp.cuda.ExternalStream(int(stream_ptr), idx), idx)
        self._ctx = []


def current_stream(device=None) -> Stream:
    """The stream tensorlib's ops on `device` (None: the current device) are queued on: CuPy's current one."""
    cp = cupy()
    idx = _index(cp, device)
    if idx == cp.cuda.runtime.getDevice():
        return Stream._wrap(cp.cuda.get_current_stream(), idx)
    with cp.cuda.Device(idx):
        return Stream._wrap(cp.cuda.get_current_stream(), idx)


def default_stream(device=None) -> Stream:
    """`device`'s default stream: CUDA's legacy null stream (cuda_stream 0)."""
    cp = cupy()
    return Stream._wrap(cp.cuda.Stream.null, _index(cp, device))


def set_stream(stream) -> None:
    """Make `stream` current (and its device the current device, as torch does); None does nothing."""
    if stream is None:
        return
    cp = cupy()
    if cp.cuda.runtime.getDevice() != stream.device_index:
        cp.cuda.runtime.setDevice(stream.device_index)
    stream._cp_stream.use()


class StreamContext:
    """torch.cuda.StreamContext: `stream` is current inside the block (a no-op for None or without CUDA),
    and the streams current before it, on the current device and on the stream's, are restored after."""

    def __init__(self, stream):
        self.stream = stream
        cp = cupy_or_none()
        self.idx = -1 if cp is None else cp.cuda.runtime.getDevice()
        self.src_prev_stream = self.dst_prev_stream = None

    def __enter__(self):
        s = self.stream
        if s is None or self.idx == -1:
            return
        self.src_prev_stream = current_stream(None)
        if self.src_prev_stream.device_index != s.device_index:
            self.dst_prev_stream = current_stream(s.device_index)
        set_stream(s)

    def __exit__(self, *exc):
        s = self.stream
        if s is None or self.idx == -1:
            return
        if self.dst_prev_stream is not None:
            set_stream(self.dst_prev_stream)
        set_stream(self.src_prev_stream)


def stream(stream) -> StreamContext:
    """torch.cuda.stream: `with stream(s):` queues the block's ops on `s` (None: no change)."""
    return StreamContext(stream)


class Event:
    """torch.cuda.Event: a marker recorded on a stream, to wait for or to time work with.

    As torch's, the CUDA event is made when first recorded, on the recording stream's device; `external`
    (how a captured CUDA graph records it) is accepted and changes nothing here. Without CUDA, making
    one raises tensorlib's "CUDA is not available" error."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False, external=False):
        cupy()
        self.enable_timing = bool(enable_timing)
        self.blocking = bool(blocking)
        self.interprocess = bool(interprocess)
        self.external = bool(external)
        self._cp_event = None
        self.device_index = -1

    @property
    def cuda_event(self) -> int:
        """The cudaEvent_t as an int (0 before the first record). CuPy documents `Event.ptr` ("Raw event
        handle") and sets it in its compiled __init__, where the API table (tests/fakecupy) cannot see it:
        read by name, 0 if a CuPy ever lacked it."""
        return 0 if self._cp_event is None else int(getattr(self._cp_event, "ptr", 0))

    @property
    def device(self):
        if self._cp_event is None:
            return None
        from .._device import cuda_device
        return cuda_device(self.device_index)

    def record(self, stream=None) -> None:
        """Record the event on `stream` (None: the current stream), whose device must be the event's."""
        if stream is None:
            stream = current_stream()
        cp = cupy()
        if self._cp_event is None:
            with cp.cuda.Device(stream.device_index):
                self._cp_event = cp.cuda.Event(block=self.blocking, disable_timing=not self.enable_timing,
                                               interprocess=self.interprocess)
            self.device_index = stream.device_index
        elif self.device_index != stream.device_index:
            raise RuntimeError(f"Event device {self.device_index} does not match recording stream's device "
                               f"{stream.device_index}.")
        with cp.cuda.Device(self.device_index):
            self._cp_event.record(stream._cp_stream)

    def wait(self, stream=None) -> None:
        """Work queued on `stream` (None: the current stream) from now on waits for this event; a no-op
        before the event is recorded. The host does not wait."""
        if stream is None:
            stream = current_stream()
        if self._cp_event is not None:
            cp = cupy()
            with cp.cuda.Device(stream.device_index):
                stream._cp_stream.wait_event(self._cp_event)

    def query(self) -> bool:
        """Whether the work recorded before the event has completed (True before the first record)."""
        return self._cp_event is None or bool(self._cp_event.done)

    def synchronize(self) -> None:
        """Wait on the host for the work recorded before the event (nothing before the first record)."""
        if self._cp_event is not None:
            self._cp_event.synchronize()

    def elapsed_time(self, end_event) -> float:
        """Milliseconds from this event to `end_event`: both made with enable_timing=True, recorded, and
        completed (this does not wait: synchronize first)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise ValueError("Both events must be created with argument 'enable_timing=True'.")
        if self._cp_event is None or end_event._cp_event is None:
            raise ValueError("Both events must be recorded before calculating elapsed time.")
        if not (self.query() and end_event.query()):
            raise RuntimeError("Both events must be completed before calculating elapsed time.")
        cp = cupy()
        with cp.cuda.Device(self.device_index):
            return cp.cuda.get_elapsed_time(self._cp_event, end_event._cp_event)

    def ipc_handle(self):
        """Refused: tensorlib does not share CUDA events (nor CUDA tensors) between processes."""
        raise RuntimeError("tensorlib.cuda.Event.ipc_handle: sharing CUDA events between processes is not "
                           "supported (tensorlib shares CPU tensors only, through shared memory)")

    @classmethod
    def from_ipc_handle(cls, device, handle):
        """Refused, as ipc_handle."""
        raise RuntimeError("tensorlib.cuda.Event.from_ipc_handle: sharing CUDA events between processes is not "
                           "supported (tensorlib shares CPU tensors only, through shared memory)")

    def __repr__(self):
        if self._cp_event is None:
            return "<torch.cuda.Event uninitialized>"
        return f"<torch.cuda.Event {self.cuda_event:#x}>"
