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

import threading

from .._device import cupy, on_cupy_init

__all__ = ["OutOfMemoryError", "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "reset_max_memory_allocated", "empty_cache", "memory_stats",
           "memory_summary", "memory_stats_as_nested_dict", "mem_get_info", "set_per_process_memory_fraction",
           "get_per_process_memory_fraction"]


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
        try:
            mp = self.pool.malloc(size)
        except BaseException as e:
            oom = isinstance(e, self.oom_error)
            with lock:
                c.pending -= 1
                c.num_ooms += oom
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
            self.deferred.append((events, block.mp))

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
        for events, mp in pending:
            if wait:
                for ev in events:
                    ev.synchronize()
            elif not all(ev.done for ev in events):
                keep.append((events, mp))
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
        if _tracker is not None:
            _tracker.release_deferred(wait=True)
        cp.get_default_memory_pool().free_all_blocks()


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
