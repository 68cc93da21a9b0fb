"""CUDA memory questions (torch.cuda.memory_allocated & co.) answered from CuPy's memory pool.

When CuPy is first initialised tensorlib installs a thin allocator over the default pool
(`cupy.cuda.set_allocator`). It is process-wide, unlike CuPy's MemoryHooks (thread-local: a hook
entered on one thread never hears of a DataLoader worker's or a user thread's allocations), so it sees
every allocation and, through the owner of the pointer it hands back, every free, on any thread. It
keeps its own count of the bytes in use per device (the pool's rounded block sizes, as the pool counts
them) instead of asking `MemoryPool.used_bytes()`, which on CuPy 13 sums every live chunk under the
pool's lock. Peaks and totals come from that count; `listeners` (profile_memory's recorder) hear of
each allocation and free with its address.

Current values are read from the pool when asked (`used_bytes`: held by live arrays, torch's
"allocated"; `total_bytes`: obtained from the driver, torch's "reserved"), which also corrects the count
for blocks allocated before the allocator was installed.

Like torch, the queries return 0 (memory_stats: {}) while CUDA is not initialised or absent;
reset_peak_memory_stats and memory_summary need CUDA and raise the core's "CUDA is not available" error.
"""
from __future__ import annotations

import bisect
import collections
import inspect
import pickle
import sys
import threading
import time
import types

from safeio import atomic_open

from .._device import cupy, on_cupy_init

__all__ = ["OutOfMemoryError", "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "reset_max_memory_allocated", "empty_cache", "memory_stats",
           "memory_summary", "memory_stats_as_nested_dict", "mem_get_info", "set_per_process_memory_fraction",
           "get_per_process_memory_fraction", "memory_snapshot"]


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError: a device allocation failed. The error raised is also an instance of
    the allocator's own error (CuPy's ``cupy.cuda.memory.OutOfMemoryError``, a MemoryError), so code
    written for either catches it; the message reads like torch's, with the pool's numbers."""


_OOM_TYPES: dict = {}


def _size_words(n: int) -> str:
    """Bytes as torch's allocator messages write them: 512 bytes, 2.00 KiB, 16.00 MiB, 1.50 GiB."""
    if n <= 1024:
        return f"{n} bytes"
    for unit, scale in (("KiB", 1 << 10), ("MiB", 1 << 20)):
        if n <= scale * 1024:
            return f"{n / scale:.2f} {unit}"
    return f"{n / (1 << 30):.2f} GiB"


def _oom_error(base, cause, size, dev, pool):
    """An OutOfMemoryError that is also an instance of `base` (the allocator's error class)."""
    cls = _OOM_TYPES.get(base)
    if cls is None:
        cls = OutOfMemoryError if issubclass(OutOfMemoryError, base) else type(
            "OutOfMemoryError", (OutOfMemoryError, base), {"__module__": __name__, "__doc__": OutOfMemoryError.__doc__,
                                                            "__reduce__": lambda self: (OutOfMemoryError, self.args)})
        _OOM_TYPES[base] = cls
    used, reserved = pool.used_bytes(), pool.total_bytes()
    where = f"GPU {dev}"
    try:
        from .._device import cupy as _cp
        free, total = _cp().cuda.runtime.memGetInfo()
        where += f" has a total capacity of {_size_words(total)} of which {_size_words(free)} is free"
    except Exception:   # noqa: BLE001 - the numbers are a courtesy; the error must still be raised
        pass
    e = cls(f"CUDA out of memory. Tried to allocate {_size_words(size)}. {where}. Of the allocated memory "
            f"{_size_words(used)} is allocated by tensorlib, and {_size_words(max(reserved - used, 0))} is reserved by "
            f"tensorlib but unallocated (tensorlib.cuda.empty_cache() returns it to the driver). ({cause})")
    for k, v in vars(cause).items():     # CuPy's error keeps its size/total/limit in attributes
        setattr(e, k, v)
    return e


class _DeviceCounters:
    __slots__ = ("current", "peak_allocated", "peak_reserved", "allocated_total", "reserved_total", "n_allocs",
                 "num_ooms", "last_reserved", "pending", "changes")

    def __init__(self, allocated=0, reserved=0):
        self.current = allocated          # bytes in use by the count (see Tracker.current)
        self.peak_allocated = allocated
        self.peak_reserved = reserved
        self.allocated_total = allocated
        self.reserved_total = reserved
        self.last_reserved = reserved
        self.n_allocs = 0
        self.num_ooms = 0
        self.pending = 0                  # mallocs and frees under way (between the pool and the count)
        self.changes = 0                  # count updates so far


def _null_stream() -> int:
    return 0


def _no_free() -> int:
    return 0


_HERE = __file__


def _python_frames(_getframe=sys._getframe, _here=_HERE) -> list:
    """The Python stack where the allocator was called, innermost first, as torch's frame dicts (filename,
    line, name); the allocator's own frames (this file) left out. (Bound defaults: a block may die at
    interpreter shutdown, after the module's globals are gone.)"""
    f: types.FrameType | None = _getframe(1)
    while f is not None and f.f_code.co_filename == _here:
        f = f.f_back
    out = []
    while f is not None:
        code = f.f_code
        out.append({"filename": code.co_filename, "line": f.f_lineno, "name": code.co_name})
        f = f.f_back
    return out


class _Seg:
    """A segment as the history knows it: memory the pool got from the driver (`known`: seen being
    allocated) or, for memory the pool held before recording started, the range its blocks were seen in."""

    __slots__ = ("addr", "size", "stream", "frames", "known")

    def __init__(self, addr, size, stream, frames, known):
        self.addr, self.size, self.stream, self.frames, self.known = addr, size, stream, frames, known


class _Blk:
    __slots__ = ("addr", "size", "requested", "stream", "frames", "state")

    def __init__(self, addr, size, requested, stream, frames):
        self.addr, self.size, self.requested, self.stream, self.frames = addr, size, requested, stream, frames
        self.state = "active_allocated"


_ACTIONS = ("alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "oom", "snapshot")


class _History:
    """What `_record_memory_history` records, per device: the segments and live blocks the allocator has seen
    since recording started (the snapshot's state) and the trace of its actions (a ring buffer of
    `max_entries`). CuPy's pool does not say when it asks the driver for memory, so a segment is inferred:
    an allocation that grew the pool's reserved bytes by its own size outside any segment known is a new
    segment of that size (CuPy's pool makes a new driver allocation of exactly the rounded size when no cached
    block fits); reserved bytes falling at empty_cache (or at CuPy's retry after an out-of-memory) free the
    segments that hold no live block (CuPy frees exactly the wholly free ones). Memory allocated before
    recording started is not known: a block later allocated in such memory is put in a segment spanning the
    blocks seen there."""

    def __init__(self, trace, context, max_entries, skip):
        self.frames = _python_frames      # kept for blocks dying at interpreter shutdown (globals gone)
        self.now = time.time_ns
        self.deque = collections.deque
        self.lock = threading.Lock()
        self.segments: dict[int, dict[int, _Seg]] = {}    # device -> address -> segment
        self.starts: dict[int, list[int]] = {}             # device -> sorted segment addresses
        self.blocks: dict[int, dict[int, _Blk]] = {}       # device -> address -> live block
        self.traces: dict[int, collections.deque] = {}
        self.configure(trace, context, max_entries, skip)

    def configure(self, trace, context, max_entries, skip):
        self.trace = trace and max_entries > 0
        self.max_entries = max_entries
        self.ctx_state = context is not None
        self.ctx_alloc = context in ("alloc", "all")
        self.ctx_free = context == "all"
        self.skip = frozenset(skip)
        with self.lock:
            for dev, q in self.traces.items():
                if q.maxlen != max_entries:
                    self.traces[dev] = collections.deque(q, maxlen=max_entries)

    def clear_trace(self):
        with self.lock:
            self.traces.clear()

    def _record(self, dev, action, addr, size, stream, frames, **extra):
        if not self.trace or action in self.skip:
            return
        q = self.traces.get(dev)
        if q is None:
            q = self.traces[dev] = self.deque(maxlen=self.max_entries)
        q.append({"action": action, "addr": addr, "size": size, "stream": stream, "time_us": self.now() // 1000,
                  "frames": frames, **extra})

    def _segment_at(self, dev, addr):
        starts = self.starts.get(dev)
        if not starts:
            return None
        i = bisect.bisect_right(starts, addr) - 1
        if i < 0:
            return None
        seg = self.segments[dev][starts[i]]
        return seg if addr < seg.addr + seg.size else None

    def _add_segment(self, dev, seg):
        self.segments.setdefault(dev, {})[seg.addr] = seg
        bisect.insort(self.starts.setdefault(dev, []), seg.addr)

    def _remove_segment(self, dev, seg):
        del self.segments[dev][seg.addr]
        self.starts[dev].remove(seg.addr)

    def alloc(self, dev, addr, size, requested, grown, stream):
        frames = self.frames() if self.ctx_state else []
        with self.lock:
            seg = self._segment_at(dev, addr)
            new = seg is None and grown >= size
            if grown < (size if new else 0):   # the pool gave segments back to the driver on the way
                self._release_free_segments(dev)
                seg = self._segment_at(dev, addr)
            if new:
                seg = _Seg(addr, size, stream, frames if self.ctx_alloc else [], True)
                self._add_segment(dev, seg)
                self._record(dev, "segment_alloc", addr, size, stream, seg.frames)
            elif seg is None or addr + size > seg.addr + seg.size:
                self._cover(dev, addr, size, stream)
            self.blocks.setdefault(dev, {})[addr] = _Blk(addr, size, requested, stream, frames)
            self._record(dev, "alloc", addr, size, stream, frames if self.ctx_alloc else [])

    def _cover(self, dev, addr, size, stream):
        """A block in memory the pool held before recording: one segment over it and the segments it
        overlaps."""
        lo, hi = addr, addr + size
        for a in list(self.starts.get(dev, ())):
            seg = self.segments[dev][a]
            if seg.addr < addr + size and addr < seg.addr + seg.size:
                lo, hi = min(lo, seg.addr), max(hi, seg.addr + seg.size)
                stream = seg.stream
                self._remove_segment(dev, seg)
        self._add_segment(dev, _Seg(lo, hi - lo, stream, [], False))

    def free_requested(self, dev, addr, size, deferred):
        frames = self.frames() if self.ctx_free else []
        with self.lock:
            blocks = self.blocks.get(dev, {})
            blk = blocks.get(addr)
            stream = 0 if blk is None else blk.stream
            self._record(dev, "free_requested", addr, size, stream, frames)
            if deferred:
                if blk is not None:
                    blk.state = "active_awaiting_free"
                return
            blocks.pop(addr, None)
            self._record(dev, "free_completed", addr, size, stream, frames)

    def free_completed(self, dev, addr):
        """A free held back for record_stream's streams has gone back to the pool."""
        with self.lock:
            blk = self.blocks.get(dev, {}).pop(addr, None)
            if blk is not None:
                self._record(dev, "free_completed", addr, blk.size, blk.stream, [])

    def oom(self, dev, size, stream, device_free):
        frames = self.frames() if self.ctx_alloc else []
        with self.lock:
            self._record(dev, "oom", 0, size, stream, frames, device_free=device_free)

    def segments_released(self, dev):
        with self.lock:
            self._release_free_segments(dev)

    def _release_free_segments(self, dev):
        used = {s.addr for s in (self._segment_at(dev, a) for a in self.blocks.get(dev, ())) if s is not None}
        for a in list(self.starts.get(dev, ())):
            if a not in used:
                seg = self.segments[dev][a]
                self._remove_segment(dev, seg)
                self._record(dev, "segment_free", seg.addr, seg.size, seg.stream, [])

    def state(self, n_devices):
        """The snapshot's segments (torch's dicts, by device and address) and device_traces."""
        with self.lock:
            segments = []
            for dev in sorted(self.segments):
                blocks = sorted(self.blocks.get(dev, {}).values(), key=lambda b: b.addr)
                i = 0
                for a in self.starts[dev]:
                    seg = self.segments[dev][a]
                    end = seg.addr + seg.size
                    while i < len(blocks) and blocks[i].addr < seg.addr:
                        i += 1
                    out, at = [], seg.addr
                    allocated = active = requested = 0
                    while i < len(blocks) and blocks[i].addr < end:
                        b = blocks[i]
                        i += 1
                        if b.addr < at:           # overlaps the one before: a block whose free went unseen
                            continue
                        if b.addr > at:
                            out.append({"address": at, "size": b.addr - at, "requested_size": 0, "state": "inactive",
                                        "frames": []})
                        out.append({"address": b.addr, "size": b.size, "requested_size": b.requested,
                                    "state": b.state, "frames": b.frames})
                        active += b.size
                        if b.state == "active_allocated":
                            allocated += b.size
                            requested += b.requested
                        at = b.addr + b.size
                    if at < end:
                        out.append({"address": at, "size": end - at, "requested_size": 0, "state": "inactive",
                                    "frames": []})
                    segments.append({"device": dev, "address": seg.addr, "total_size": seg.size,
                                     "allocated_size": allocated, "active_size": active, "requested_size": requested,
                                     "stream": seg.stream, "segment_type": "small" if seg.size <= 1 << 20 else "large",
                                     "segment_pool_id": (0, 0), "is_expandable": False, "frames": seg.frames,
                                     "blocks": out})
            n = max([n_devices, *(d + 1 for d in self.traces)])
            traces = [list(self.traces.get(d, ())) for d in range(n)]
        return segments, traces


class _Block:
    """The owner of the memory the tracking allocator hands to CuPy: it holds the pool's pointer and dies
    when CuPy drops the last array over the block, on whichever thread that happens; then it gives the
    pointer back to the pool and tells the tracker. (CuPy's MemoryPointer takes no weak reference.)"""

    __slots__ = ("mp", "size", "dev", "tracker", "streams")

    def __init__(self, mp, size, dev, tracker):
        self.mp, self.size, self.dev, self.tracker = mp, size, dev, tracker
        self.streams = None               # CuPy streams Tensor.record_stream named (see Tracker.defer)

    def __del__(self):
        self.tracker._free(self)


class Tracker:
    """The allocator installed over a CuPy MemoryPool: counts and peaks per device.

    pool: an object with malloc(size) -> MemoryPointer, used_bytes(), total_bytes(), free_all_blocks();
    device_id: a function giving the current device index (separate so tests can drive it);
    wrap(ptr, size, owner, device): a MemoryPointer over the same memory that keeps `owner` alive (CuPy's
    MemoryPointer(UnownedMemory(...), 0)), so the free is seen; None hands the pool's pointer back and
    frees go unseen. The pool is never called under the tracker's lock: a block dying inside the pool
    (garbage collection) takes that lock, and it is an RLock for a block dying on a thread that holds it."""

    def __init__(self, pool, device_id, oom_error=MemoryError, wrap=None):
        self.pool = pool
        self.device_id = device_id
        self.oom_error = oom_error
        self.wrap = wrap
        self.counters: dict[int, _DeviceCounters] = {}
        self.listeners: tuple = ()        # fn(device, +-bytes, address), on the allocating or freeing thread
        self.deferred: list = []          # ([events], pool pointer) of frees waiting on record_stream's streams
        self._event = None                # fn(device, stream): a CUDA event recorded on it now (set by _install)
        self.capture_held: list | None = None   # a capturing CUDA graph's list of held blocks
        self.history: _History | None = None   # what _record_memory_history records (None: off)
        self._stream = _null_stream       # fn() -> the current CUDA stream's handle (set by _install)
        self._device_free = _no_free      # fn() -> the driver's free bytes on the current device (set by _install)
        self._lock = threading.RLock()

    def counters_for(self, dev):
        c = self.counters.get(dev)
        if c is None:
            c = self.counters[dev] = _DeviceCounters(self.pool.used_bytes(), self.pool.total_bytes())
        return c

    # malloc and _free run for every CUDA allocation and free: they take the lock by acquire()/release()
    # (with try/finally), which costs half of a `with` on an RLock (~0.2 us against ~0.45 here, four times a
    # block), and look the counters up inline.
    def malloc(self, size):
        dev = self.device_id()
        if self.deferred and self.capture_held is None:   # no event queries while a CUDA graph captures
            self.release_deferred()
        lock = self._lock
        lock.acquire()
        try:
            c = self.counters.get(dev) or self.counters_for(dev)
            c.pending += 1
        finally:
            lock.release()
        h = self.history
        before = self.pool.total_bytes() if h is not None else 0
        try:
            mp = self.pool.malloc(size)
        except BaseException as e:
            oom = isinstance(e, self.oom_error)
            with lock:
                c.pending -= 1
                c.num_ooms += oom
            if oom and h is not None:
                h.oom(dev, size, self._stream(), self._device_free())
            if not oom or isinstance(e, OutOfMemoryError):
                raise
            raise _oom_error(type(e), e, size, dev, self.pool) from None     # the message carries CuPy's
        n = mp.mem.size                   # the pool's block: the size rounded as the pool counts it
        reserved = self.pool.total_bytes() if n else c.last_reserved
        lock.acquire()
        try:
            c.pending -= 1
            if n:
                c.changes += 1
                c.n_allocs += 1
                c.allocated_total += n
                cur = c.current = c.current + n
                if cur > c.peak_allocated:
                    c.peak_allocated = cur
                if reserved > c.last_reserved:
                    c.reserved_total += reserved - c.last_reserved
                    if reserved > c.peak_reserved:
                        c.peak_reserved = reserved
                c.last_reserved = reserved
        finally:
            lock.release()
        if not n:
            return mp
        if h is not None:
            h.alloc(dev, mp.ptr, n, size, reserved - before, self._stream())
        if self.capture_held is not None:
            self.capture_held.append(mp)
        for fn in self.listeners:
            fn(dev, n, mp.ptr)
        return mp if self.wrap is None else self.wrap(mp.ptr, n, _Block(mp, n, dev, self), dev)

    def _free(self, block):
        c = self.counters[block.dev]
        lock = self._lock
        lock.acquire()
        try:
            c.pending += 1
        finally:
            lock.release()
        ptr = block.mp.ptr
        h = self.history
        if h is not None:
            h.free_requested(block.dev, ptr, block.size, bool(block.streams))
        if block.streams:                 # used on other streams: back to the pool once their work is done
            self._defer(block)
        block.mp = None                   # back to the pool
        lock.acquire()
        try:
            c.pending -= 1
            c.changes += 1
            c.current -= block.size
        finally:
            lock.release()
        for fn in self.listeners:
            fn(block.dev, -block.size, ptr)

    def _defer(self, block):
        """Keep a freed block's memory from the pool until the work queued so far on each stream that
        Tensor.record_stream named has completed: an event recorded on each now, the memory held with
        them, released by `release_deferred` (at each allocation, without waiting; by empty_cache and
        synchronize, waiting). CuPy's pool hands a freed block to the next allocation on the stream that
        allocated it, which is not ordered after the other streams' kernels that may still read it."""
        events = [self._event(block.dev, s) for s in block.streams]
        with self._lock:
            self.deferred.append((events, block.mp, block.dev))

    def hold_for_capture(self, held):
        """While a CUDA graph captures, append each pool pointer allocated to `held` (None: stop), so the
        graph keeps the memory its replays write to (see tensorlib.cuda.graphs)."""
        self.capture_held = held

    def release_deferred(self, wait=False):
        """Give back the memory of deferred frees whose streams have completed (all, waiting, if `wait`)."""
        if not self.deferred:
            return
        with self._lock:
            pending, self.deferred = self.deferred, []
        keep = []
        for item in pending:
            events = item[0]
            if wait:
                for ev in events:
                    ev.synchronize()
            elif not all(ev.done for ev in events):
                keep.append(item)
                continue
            h = self.history
            if h is not None:
                h.free_completed(item[2], item[1].ptr)
        if keep:
            with self._lock:
                self.deferred[:0] = keep

    def current(self, dev) -> int:
        """The bytes in use on `dev`, by the count, after correcting it to the pool's figure when nothing is
        under way: the count misses the frees of blocks allocated before the allocator was installed."""
        c = self.counters_for(dev)
        with self._lock:
            quiet, changes = c.pending == 0, c.changes
        if quiet:
            used = self.pool.used_bytes()
            with self._lock:
                if c.pending == 0 and c.changes == changes:
                    c.current = used
        return c.current

    def listen(self, fn) -> dict:
        """Add `fn` to the listeners; returns the bytes in use per device when it started hearing (the
        current device's counters are made if need be)."""
        self.current(self.device_id())
        with self._lock:
            self.listeners += (fn,)
            return {d: c.current for d, c in self.counters.items()}

    def unlisten(self, fn):
        with self._lock:
            self.listeners = tuple(f for f in self.listeners if f != fn)     # bound methods: equal, not identical

    def reset_peaks(self, dev):
        c = self.counters_for(dev)
        c.peak_allocated = self.current(dev)
        c.peak_reserved = c.last_reserved = self.pool.total_bytes()

    def stats(self, dev) -> dict:
        c = self.counters_for(dev)
        used, reserved = self.current(dev), self.pool.total_bytes()
        c.peak_allocated = max(c.peak_allocated, used)
        c.peak_reserved = max(c.peak_reserved, reserved)
        if reserved > c.last_reserved:    # grown by an allocation made before tracking started
            c.reserved_total += reserved - c.last_reserved
        c.last_reserved = reserved
        out = {}
        for key, cur, peak, total in (("allocated_bytes", used, c.peak_allocated, max(c.allocated_total, used)),
                                      ("active_bytes", used, c.peak_allocated, max(c.allocated_total, used)),
                                      ("reserved_bytes", reserved, c.peak_reserved, max(c.reserved_total, reserved))):
            out[f"{key}.all.current"] = cur
            out[f"{key}.all.peak"] = peak
            out[f"{key}.all.allocated"] = total
            out[f"{key}.all.freed"] = total - cur
        out["allocation.all.allocated"] = c.n_allocs
        out["num_alloc_retries"] = 0
        out["num_ooms"] = c.num_ooms
        return dict(sorted(out.items()))


_tracker: Tracker | None = None


def _install(cp):
    """Put the tracking allocator over CuPy's default pool (called when CuPy is first initialised)."""
    global _tracker
    if _tracker is not None:
        return
    pool = cp.get_default_memory_pool()
    memory = cp.cuda.memory

    def wrap(ptr, size, owner, dev, pointer=memory.MemoryPointer, unowned=memory.UnownedMemory):
        return pointer(unowned(ptr, size, owner, dev), 0)
    _tracker = Tracker(pool, cp.cuda.runtime.getDevice, memory.OutOfMemoryError, wrap)

    def event(dev, stream):
        with cp.cuda.Device(dev):
            ev = cp.cuda.Event(disable_timing=True)
            ev.record(stream)
        return ev
    _tracker._event = event
    _tracker._stream = lambda: cp.cuda.get_current_stream().ptr
    _tracker._device_free = lambda: cp.cuda.runtime.memGetInfo()[0]
    cp.cuda.set_allocator(_tracker.malloc)


on_cupy_init.append(_install)


def _ready():
    """The CuPy module when CUDA is initialised (tracking installed), else None (torch returns zeros)."""
    from .. import _device
    cp = _device._cupy
    if cp is not None and _tracker is None:
        _install(cp)
    return cp


def add_listener(fn) -> dict:
    """Call fn(device, +-bytes, address) at every CUDA allocation and free through the pool, on any thread
    (profile_memory's recorder); initialises CUDA. Returns the bytes in use per device at that moment."""
    if _tracker is None:
        cupy()
        _ready()
    assert _tracker is not None, "_ready() installs the tracker once CUDA is initialised"
    return _tracker.listen(fn)


def remove_listener(fn):
    if _tracker is not None:
        _tracker.unlisten(fn)


def _dev_index(cp, device):
    if device is None:
        return cp.cuda.runtime.getDevice()
    if isinstance(device, int):
        return device
    from .._device import to_device
    d = to_device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return d.index


def memory_stats(device=None) -> dict:
    """torch's key names: allocated_bytes.all.{current,peak,allocated,freed}, reserved_bytes.all.*,
    active_bytes.all.*, allocation.all.allocated, num_ooms, num_alloc_retries. {} before CUDA is used."""
    cp = _ready()
    if cp is None:
        return {}
    idx = _dev_index(cp, device)
    assert _tracker is not None, "_ready() installs the tracker when it returns CuPy"
    with cp.cuda.Device(idx):
        return _tracker.stats(idx)


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA tensors (CuPy arrays) on the device."""
    return memory_stats(device).get("allocated_bytes.all.current", 0)


def max_memory_allocated(device=None) -> int:
    return memory_stats(device).get("allocated_bytes.all.peak", 0)


def memory_reserved(device=None) -> int:
    """Bytes the pool holds from the driver (live tensors plus cached free blocks)."""
    return memory_stats(device).get("reserved_bytes.all.current", 0)


def max_memory_reserved(device=None) -> int:
    return memory_stats(device).get("reserved_bytes.all.peak", 0)


def reset_peak_memory_stats(device=None):
    cp = cupy()
    _ready()
    idx = _dev_index(cp, device)
    with cp.cuda.Device(idx):
        _tracker.reset_peaks(idx)


reset_max_memory_allocated = reset_peak_memory_stats


def empty_cache():
    """Return the pool's cached free blocks to the driver (a no-op before CUDA is used)."""
    cp = _ready()
    if cp is not None:
        pool = cp.get_default_memory_pool()
        h = None
        if _tracker is not None:
            _tracker.release_deferred(wait=True)
            h = _tracker.history
        before = pool.total_bytes() if h is not None else 0
        pool.free_all_blocks()
        if h is not None and pool.total_bytes() < before:
            h.segments_released(cp.cuda.runtime.getDevice())


def record_stream(arr, stream) -> None:
    """Tensor.record_stream's work: the memory under CuPy array `arr` is not reused, once freed, before
    the work queued on `stream` (a tensorlib Stream) by then has completed (see Tracker._defer). Memory
    the tracking allocator did not hand out (from DLPack, or before it was installed) has another owner
    that decides when it is freed: nothing to do."""
    _ready()
    owner = getattr(arr.data.mem, "_owner", None)
    if type(owner) is not _Block or owner.tracker is not _tracker:
        return
    streams = owner.streams or []
    if stream._cp_stream not in streams:
        owner.streams = streams + [stream._cp_stream]


def memory_stats_as_nested_dict(device=None) -> dict:
    """memory_stats as torch's nested form: "allocated_bytes.all.current" is d["allocated_bytes"]["all"]
    ["current"]. {} before CUDA is used."""
    out: dict = {}
    for key, value in memory_stats(device).items():
        *path, last = key.split(".")
        d = out
        for p in path:
            d = d.setdefault(p, {})
        d[last] = value
    return out


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of the device's memory, as the driver reports them (cudaMemGetInfo): other
    processes' use and the pool's cached blocks count as used."""
    cp = cupy()
    with cp.cuda.Device(_dev_index(cp, device)):
        free, total = cp.cuda.runtime.memGetInfo()
    return free, total


def set_per_process_memory_fraction(fraction, device=None) -> None:
    """Cap the memory tensorlib's pool may take from the device at `fraction` of its total (CuPy's
    MemoryPool.set_limit); an allocation past it raises OutOfMemoryError. 0 allows nothing (CuPy's
    set_limit(fraction=0) would lift the limit instead, so a 1-byte limit stands for it)."""
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if fraction < 0 or fraction > 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    cp = cupy()
    _ready()
    with cp.cuda.Device(_dev_index(cp, device)):
        pool = cp.get_default_memory_pool()
        if fraction == 0:
            pool.set_limit(size=1)
        else:
            pool.set_limit(fraction=fraction)


def get_per_process_memory_fraction(device=None) -> float:
    """The fraction set_per_process_memory_fraction set (1.0 without a limit), from the pool's limit."""
    cp = cupy()
    _ready()
    with cp.cuda.Device(_dev_index(cp, device)):
        limit = cp.get_default_memory_pool().get_limit()
        total = cp.cuda.runtime.memGetInfo()[1]
    if not limit:
        return 1.0
    return 0.0 if limit == 1 else limit / total


def _fmt_size(n):
    """torch's formatting: the largest unit that keeps the number above 768."""
    prefix = "B  "
    for new_prefix in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 768 * 1024:
            break
        prefix = new_prefix
        n //= 1024
    return f"{n:6d} {prefix}"


def _fmt_count(n):
    return f"{n:7d}   "


def memory_summary(device=None, abbreviated=False) -> str:
    """A table like torch.cuda.memory_summary(): current, peak, total allocated and freed."""
    cp = cupy()
    _ready()
    idx = _dev_index(cp, device)
    st = memory_stats(idx)
    rule = "=" * 75
    lines = [rule, f" {'':16} tensorlib CUDA memory summary, device ID {idx:<15d} ", "-" * 75,
             f"  {'':9} CUDA OOMs: {st['num_ooms']:<12d} | {'':6} cudaMalloc retries: {st['num_alloc_retries']:<8d}  ",
             rule, "        Metric         | Cur Usage  | Peak Usage | Tot Alloc  | Tot Freed  "]
    for key, name in (("allocated_bytes", "Allocated memory"), ("active_bytes", "Active memory"),
                      ("reserved_bytes", "GPU reserved memory")):
        p = key + ".all."
        lines.append("-" * 75)
        lines.append(f" {name:<21} | {_fmt_size(st[p + 'current'])} | {_fmt_size(st[p + 'peak'])} | "
                     f"{_fmt_size(st[p + 'allocated'])} | {_fmt_size(st[p + 'freed'])} ")
    lines.append("-" * 75)
    lines.append(f" {'Allocations':<21} | {'-':>10} | {'-':>10} | {_fmt_count(st['allocation.all.allocated'])}| "
                 f"{'-':>10} ")
    lines.append(rule)
    return "\n".join(lines) + "\n"


# --- torch.cuda.memory's snapshot API: _record_memory_history, _snapshot, _dump_snapshot, memory_snapshot ---

def _record_memory_history(enabled="all", *args, **kwargs) -> None:
    """Record the allocator's state with the Python stack of each live allocation and, with enabled="all",
    a trace of its actions (alloc, free_requested, free_completed, segment_alloc, segment_free, oom) for
    `_snapshot`; enabled=None stops recording and drops the trace. torch's arguments: context (None, "state",
    "alloc", "all": where stacks are kept), stacks ("python" or "all": both record the Python frames, as
    tensorlib has no C++ frames of its own), max_entries (the trace's ring buffer), device (ignored, as by
    torch: every device is recorded), clear_history, skip_actions. torch's legacy form (enabled a bool,
    record_context, trace_alloc_max_entries, trace_alloc_record_context, record_context_cpp, ...) is taken too.

    Only what the allocator sees while recording is in the snapshot: memory allocated before (or while
    recording is off) is not, and segments are inferred from the pool's reserved bytes (see _History).
    Initialises CUDA; raises "CUDA is not available" without it (torch's CPU build raises too). Off, the
    allocator's cost is one check per allocation and free."""
    if isinstance(enabled, bool):
        return _record_memory_history_legacy(enabled, *args, **kwargs)
    return _record_memory_history_impl(enabled, *args, **kwargs)


def _record_memory_history_legacy(enabled, record_context=True, trace_alloc_max_entries=1,
                                  trace_alloc_record_context=False, device=None, record_context_cpp=False,
                                  clear_history=False, compile_context=False, global_record_annotations=False,
                                  skip_actions=None):
    context = "alloc" if trace_alloc_record_context else "state" if record_context else None
    _set_history(enabled, True, context, trace_alloc_max_entries, clear_history, compile_context,
                 global_record_annotations, skip_actions)


def _record_memory_history_impl(enabled="all", context="all", stacks="all", max_entries=sys.maxsize, device=None,
                                clear_history=False, compile_context=False, global_record_annotations=False,
                                skip_actions=None):
    if enabled not in (None, "state", "all"):
        raise ValueError(f"_record_memory_history: enabled must be None, 'state' or 'all', got {enabled!r}")
    if context not in (None, "state", "alloc", "all"):
        raise ValueError(f"_record_memory_history: context must be None, 'state', 'alloc' or 'all', got {context!r}")
    if enabled is not None and stacks not in ("python", "all"):
        raise ValueError(f"_record_memory_history: stacks must be 'python' or 'all', got {stacks!r} (tensorlib "
                         "records Python frames for both: it has no C++ frames of its own)")
    _set_history(enabled is not None, enabled == "all", context, max_entries, clear_history, compile_context,
                 global_record_annotations, skip_actions)


_record_memory_history.__signature__ = inspect.signature(_record_memory_history_impl)  # type: ignore[attr-defined]


def _set_history(enabled, trace, context, max_entries, clear_history, compile_context, global_record_annotations,
                 skip_actions):
    if not isinstance(max_entries, int) or max_entries < 0:
        raise ValueError(f"_record_memory_history: max_entries must be an int >= 0, got {max_entries!r}")
    for name, value in (("compile_context", compile_context), ("global_record_annotations", global_record_annotations)):
        if value:
            raise NotImplementedError(f"_record_memory_history: {name}={value!r} is not supported by tensorlib "
                                      "(it records allocations and their Python stacks only)")
    skip = list(skip_actions or ())
    for a in skip:
        if a not in _ACTIONS:
            raise ValueError(f"_record_memory_history: unknown action {a!r} in skip_actions; valid ones: "
                             f"{', '.join(_ACTIONS)}")
    cupy()
    _ready()
    t = _tracker
    assert t is not None, "_ready() installs the tracker once CUDA is initialised"
    if not enabled:
        t.history = None
        return
    h = t.history
    if h is None:
        t.history = _History(trace, context, max_entries, skip)
    else:
        h.configure(trace, context, max_entries, skip)
        if clear_history:
            h.clear_trace()


def _snapshot(device=None, augment_with_fx_traces=False) -> dict:
    """The allocator's state as torch's snapshot dict: "segments" (every device's, each with its "blocks":
    active_allocated, active_awaiting_free (freed, held for record_stream's streams) and inactive (cached)
    ranges, with the Python frames of each allocation), "device_traces" (per device, the recorded actions,
    oldest first) and "allocator_settings". Only memory seen while `_record_memory_history` was on is in it
    (nothing before it is called). torch.cuda._memory_viz reads it. `device` is ignored, as by torch."""
    if augment_with_fx_traces:
        raise NotImplementedError("_snapshot: augment_with_fx_traces=True is not supported by tensorlib")
    cp = cupy()
    _ready()
    n = cp.cuda.runtime.getDeviceCount()
    h = _tracker.history if _tracker is not None else None
    segments, traces = h.state(n) if h is not None else ([], [[] for _ in range(n)])
    return {"segments": segments, "device_traces": traces,
            "allocator_settings": {"max_split_size": -1, "garbage_collection_threshold": 0.0,
                                   "expandable_segments": False}}


def _dump_snapshot(filename="dump_snapshot.pickle", augment_with_fx_traces=False) -> None:
    """Pickle `_snapshot()` to `filename`, as torch does (pytorch.org/memory_viz and torch.cuda._memory_viz
    read it); written whole or not at all (safeio.atomic_open)."""
    s = _snapshot(augment_with_fx_traces=augment_with_fx_traces)
    with atomic_open(filename, what="memory snapshot") as f:
        pickle.dump(s, f)


def memory_snapshot(mempool_id=None, include_traces=True) -> list:
    """torch.cuda.memory_snapshot: the snapshot's segments (see _snapshot). tensorlib has one pool per device:
    mempool_id must be None."""
    if mempool_id is not None:
        raise NotImplementedError(f"memory_snapshot: mempool_id={mempool_id!r} is not supported by tensorlib "
                                  "(its allocator has one pool per device)")
    return _snapshot()["segments"]
