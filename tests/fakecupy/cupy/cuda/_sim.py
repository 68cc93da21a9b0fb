"""The fake devices' queues and clocks: asynchrony as CUDA has it, so code that forgets to wait fails here.

Each (device, stream) is a queue. A kernel (any array op the fake executes) enters its stream's queue at
launch: it starts when both the host has launched it and the work before it on that stream has ended,
and runs for ``kernel_ns + nbytes * ns_per_byte`` (FAKECUPY_KERNEL_NS, default 2000; FAKECUPY_NS_PER_BYTE,
default 0.001, about 1 TB/s; or `configure`). Device times are on the host's perf_counter_ns scale, so a
GPU span never starts before its launch, as on the hardware.

A device completes work only when the host waits for it (`wait`: Device/Stream/Event.synchronize,
deviceSynchronize, and the reads that CuPy makes synchronously: get, item, tolist, bool/int/float):
until then `Event.done` and `Stream.done` are False and `get_elapsed_time` raises cudaErrorNotReady,
however long ago the work was launched. The strict reading: code that needs a result must wait for it.
A wait also sleeps the host until the device time it waited for, so host stamps taken after a
synchronisation are never earlier than the work it waited for. `syncs` counts the waits.

CuPy also waits inside some calls, to learn a size or a value before it can go on (`inside`): a
boolean-mask index or assignment (the count of True, `_prepare_mask_indexing_single`), nonzero and
what is built on it (argwhere, flatnonzero, one-argument where, compress, extract), unique (the mask
index, one more for return_index, one more nonzero for return_counts), bincount (its negative check
and its max), put(mode='raise') and choose(mode='raise') (their error checks). Each is a wait here,
so `syncs` is every synchronisation CuPy would make. Not modelled: unique(axis=...) (a host sort with
a wait per comparison).
"""
from __future__ import annotations

import os
import threading
import time

kernel_ns = int(os.environ.get("FAKECUPY_KERNEL_NS", "2000"))
ns_per_byte = float(os.environ.get("FAKECUPY_NS_PER_BYTE", "0.001"))

_lock = threading.Lock()
_tails: dict = {}     # (device, stream ptr) -> device time at which the stream's queued work ends
_done: dict = {}      # device -> device time up to which it has completed its work
syncs = [0]           # host waits so far (every synchronisation the fake made)


def configure(kernel=None, per_byte=None):
    """Set the simulated kernel costs; returns the previous (kernel_ns, ns_per_byte) to restore."""
    global kernel_ns, ns_per_byte
    old = kernel_ns, ns_per_byte
    if kernel is not None:
        kernel_ns = int(kernel)
    if per_byte is not None:
        ns_per_byte = float(per_byte)
    return old


def _stream_key(stream=None):
    from . import get_current_stream, runtime
    if stream is None:
        stream = get_current_stream()
    return (runtime.getDevice() if stream.ptr == 0 else stream.device_id), stream.ptr


def launch(nbytes=0, duration_ns=None, stream=None):
    """Enqueue a kernel on `stream` (the current one); returns its (start, end) device times."""
    key = _stream_key(stream)
    now = time.perf_counter_ns()
    dur = kernel_ns + int(nbytes * ns_per_byte) if duration_ns is None else int(duration_ns)
    with _lock:
        start = max(now, _tails.get(key, 0))
        _tails[key] = end = start + dur
    return start, end


def mark(stream=None):
    """(device, device time) of a marker (an event) enqueued on `stream` now."""
    key = _stream_key(stream)
    now = time.perf_counter_ns()
    with _lock:
        t = max(now, _tails.get(key, 0))
        _tails[key] = t
    return key[0], t


def after(stream, t):
    """Work enqueued later on `stream` waits for device time `t` (Stream.wait_event)."""
    key = _stream_key(stream)
    with _lock:
        _tails[key] = max(_tails.get(key, 0), t)


def completed(device, t) -> bool:
    return t <= _done.get(device, 0)


def stream_tail(stream=None):
    key = _stream_key(stream)
    return key[0], _tails.get(key, 0)


def device_tail(device):
    return max((t for (d, _), t in _tails.items() if d == device), default=0)


def wait(device, t):
    """The host waits until `device` has completed its work up to device time `t`."""
    syncs[0] += 1
    while True:
        left = t - time.perf_counter_ns()
        if left <= 0:
            break
        time.sleep(left / 1e9)
    with _lock:
        if t > _done.get(device, 0):
            _done[device] = t


def wait_stream(stream=None):
    """Synchronise the host with a stream (the current one): what CuPy's blocking reads do."""
    wait(*stream_tail(stream))


def _size(x, default=1):
    return getattr(x, "size", default)


def _mask_count(key) -> int:
    """Boolean index arrays (and bool scalars, which CuPy turns into 0-d masks) that are not empty."""
    keys = key if type(key) is tuple else (key,)
    n = 0
    for k in keys:
        if isinstance(k, bool) or (getattr(getattr(k, "dtype", None), "kind", None) == "b" and _size(k)):
            n += 1
    return n


def _unique_syncs(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, **_):
    if not _size(ar):
        return 0
    return 1 + bool(return_index) + bool(return_counts)


def _choose_syncs(a, choices, out=None, mode="raise"):
    """`(a < n).all() and (0 <= a).all()`: one read, two when the first holds."""
    if mode != "raise":
        return 0
    import numpy
    a = getattr(a, "_a", a)
    return 1 + bool(numpy.all(numpy.asarray(a) < len(choices)))


_INSIDE = {       # CuPy name -> fn(args, kwargs) -> waits it makes (arrays as the caller passed them)
    "nonzero": lambda a, k: 1 if _size(a[0]) else 0,
    "argwhere": lambda a, k: 1 if _size(a[0]) else 0,
    "flatnonzero": lambda a, k: 1 if _size(a[0]) else 0,
    "where": lambda a, k: (1 if _size(a[0]) else 0) if len(a) + len(k) == 1 else 0,
    "compress": lambda a, k: 1 if _size(a[0]) else 0,
    "extract": lambda a, k: 1 if _size(a[0]) else 0,
    "unique": lambda a, k: _unique_syncs(*a, **k),
    "bincount": lambda a, k: 2,
    "put": lambda a, k: 1 if (a[3:4] or [k.get("mode", "wrap")])[0] == "raise" else 0,
    "choose": lambda a, k: _choose_syncs(*a, **k),
}
_METHOD_ARGS = {"nonzero": 0, "compress": 1, "put": 1, "choose": 1}   # ndarray.<name>(self, ...) as cupy.<name>


def inside(name, args=(), kwargs=None):
    """The waits CuPy makes inside cupy.<name>(*args, **kwargs) (see the module docstring); made here."""
    fn = _INSIDE.get(name)
    n = fn(args, kwargs or {}) if fn is not None else 0
    for _ in range(n):
        wait_stream()


def inside_method(name, self, args=(), kwargs=None):
    """As `inside`, for ndarray.<name>: CuPy's methods call the same code as its functions."""
    if name not in _METHOD_ARGS:
        return
    if name == "nonzero":
        inside("nonzero", (self,))
    elif name == "compress":
        inside("compress", args[:1] + (self,) + args[1:], kwargs)
    elif name == "put":
        inside("put", (self,) + tuple(args), kwargs)
    else:
        inside("choose", (self,) + tuple(args), kwargs)


def inside_index(key):
    """The waits of a boolean-mask index or assignment: one per non-empty mask."""
    for _ in range(_mask_count(key)):
        wait_stream()


def check_operand(device_id):
    """CuPy's kernel-launch check (`_check_peer_access`, peer access unavailable, as between most GPUs
    without NVLink): an operand on another device than the current one is refused."""
    from . import runtime
    cur = runtime.getDevice()
    if device_id != cur:
        raise ValueError(f"The device where the array resides ({device_id}) is different from the current device "
                         f"({cur}). Peer access is unavailable between these devices.")
