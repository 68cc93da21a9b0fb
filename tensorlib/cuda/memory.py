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
           "memory_summary"]


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

    __slots__ = ("mp", "size", "dev", "tracker")

    def __init__(self, mp, size, dev, tracker):
        self.mp, self.size, self.dev, self.tracker = mp, size, dev, tracker

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
        cp.get_default_memory_pool().free_all_blocks()


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
