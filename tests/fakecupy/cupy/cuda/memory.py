"""cupy.cuda.memory (fake): a device memory pool that keeps CuPy's counters and calls its hooks.

Sizes are rounded up to 512 bytes. As CuPy's SingleDeviceMemoryPool: a malloc takes the smallest free chunk
that fits and splits off the rest as a free chunk of the same driver allocation, or allocates a new one; a
freed chunk merges with free neighbours of its allocation; `free_all_blocks` returns to the "driver" only the
allocations that are free as a whole, so after it a split allocation with a live part stays reserved (seen on
an H200: a test that asserted reserved == allocated after empty_cache passed here before and failed there).
Pointers are unique fake addresses.
"""
from __future__ import annotations

import threading

from . import memory_hook, runtime

_ALIGN = 512
_next_ptr = [0x7F00_0000_0000]      # the next fake device address (ranges never overlap)


class OutOfMemoryError(MemoryError):
    """As CuPy's (cupy/cuda/memory.pyx): size, total and limit kept in attributes, the same message."""

    def __init__(self, size, total, limit=0):
        self._size = size
        self._total = total
        self._limit = limit
        if limit == 0:
            msg = f"Out of memory allocating {size:,} bytes"
            if total != -1:
                msg += f" (allocated so far: {total:,} bytes)."
        else:
            msg = (f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes, "
                   f"limit set to: {limit:,} bytes).")
        super().__init__(msg)

    def __reduce__(self):
        return (type(self), (self._size, self._total, self._limit))


def _round(size):
    return (size + _ALIGN - 1) // _ALIGN * _ALIGN


class BaseMemory:
    """Memory on a device: ptr, size, device_id (CuPy's base of Memory, PooledMemory, UnownedMemory)."""

    def __init__(self, size, ptr, device_id=0):
        self.size, self.ptr, self.device_id = size, ptr, device_id


class Memory(BaseMemory):
    """A driver allocation (what cudaMalloc returned)."""


class UnownedMemory(BaseMemory):
    """Memory CuPy does not own: kept alive by `owner` as long as this object lives. CuPy looks the
    device up from the pointer when device_id is omitted; the fake takes the current device."""

    def __init__(self, ptr, size, owner, device_id=-1):
        super().__init__(size, ptr, runtime.getDevice() if device_id < 0 else device_id)
        self._owner = owner


class _Chunk:
    """A range of one driver allocation, linked to its neighbours in that allocation (CuPy's _Chunk)."""

    __slots__ = ("ptr", "size", "prev", "next", "in_use")

    def __init__(self, ptr, size, prev=None, next=None):
        self.ptr, self.size, self.prev, self.next, self.in_use = ptr, size, prev, next, False


class PooledMemory(Memory):
    """A block handed out by the pool; back to the pool when garbage collected (CuPy's __dealloc__)."""

    def __init__(self, chunk, pool):
        super().__init__(chunk.size, chunk.ptr, pool._device_id)
        self._chunk = chunk
        self._pool = pool

    def free(self):
        pool, self._pool = self._pool, None
        if pool is None:
            return
        hooks = tuple(memory_hook.get_memory_hooks().values())
        kw = dict(device_id=self.device_id, mem_size=self.size, mem_ptr=self.ptr, pmem_id=id(self))
        for h in hooks:
            h.free_preprocess(**kw)
        try:
            pool._free(self._chunk)
        finally:
            for h in hooks:
                h.free_postprocess(**kw)

    def __del__(self):
        if memory_hook is None:     # interpreter shutdown has cleared the modules: nothing left to tell
            return
        self.free()


class MemoryPointer:
    """A pointer into device memory: `mem` (the allocation it keeps alive) and `ptr` (its address)."""

    __slots__ = ("mem", "ptr", "device_id")

    def __init__(self, mem, offset):
        self.mem = mem
        self.ptr = mem.ptr + offset
        self.device_id = mem.device_id

    def __int__(self):
        return self.ptr

    def __add__(self, offset):
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)

    @property
    def device(self):
        from . import Device
        return Device(self.device_id)


class SingleDeviceMemoryPool:
    def __init__(self, device_id=0):
        self._device_id = device_id
        self._lock = threading.RLock()
        self._used = 0
        self._total = 0
        self._free_chunks: list[_Chunk] = []
        self._limit = 0

    def malloc(self, size):
        rounded = _round(size)
        hooks = tuple(memory_hook.get_memory_hooks().values())
        for h in hooks:
            h.malloc_preprocess(device_id=self._device_id, size=size, mem_size=rounded)
        mp = None
        try:
            mp = self._malloc(rounded)
        finally:
            ptr, pmem_id = (0, 0) if mp is None else (mp.ptr, id(mp.mem))
            for h in hooks:
                h.malloc_postprocess(device_id=self._device_id, size=size, mem_size=rounded, mem_ptr=ptr,
                                     pmem_id=pmem_id)
        return mp

    def _malloc(self, size):
        if size == 0:
            return MemoryPointer(Memory(0, 0, self._device_id), 0)
        with self._lock:
            chunk = self._take_free(size)
            if chunk is None:
                if self._limit and self._total + size > self._limit:
                    self._free_all_locked()
                    if self._total + size > self._limit:
                        raise OutOfMemoryError(size, self._total, self._limit)
                chunk = _Chunk(self._alloc(size), size)
            chunk.in_use = True
            self._used += size
        return MemoryPointer(PooledMemory(chunk, self), 0)

    def _take_free(self, size):
        """The smallest free chunk of at least `size`, its remainder split off as a free chunk; or None."""
        best = None
        for c in self._free_chunks:
            if c.size >= size and (best is None or c.size < best.size):
                best = c
        if best is None:
            return None
        self._free_chunks.remove(best)
        if best.size > size:
            rest = _Chunk(best.ptr + size, best.size - size, prev=best, next=best.next)
            if best.next is not None:
                best.next.prev = rest
            best.next, best.size = rest, size
            self._free_chunks.append(rest)
        return best

    def _alloc(self, size):
        hooks = tuple(memory_hook.get_memory_hooks().values())
        for h in hooks:
            h.alloc_preprocess(device_id=self._device_id, mem_size=size)
        ptr = _next_ptr[0]
        _next_ptr[0] += size
        self._total += size
        for h in hooks:
            h.alloc_postprocess(device_id=self._device_id, mem_size=size, mem_ptr=ptr)
        return ptr

    def _free(self, chunk):
        with self._lock:
            self._used -= chunk.size
            chunk.in_use = False
            nxt = chunk.next
            if nxt is not None and not nxt.in_use:          # merge the free neighbour after it
                self._free_chunks.remove(nxt)
                chunk.size += nxt.size
                chunk.next = nxt.next
                if nxt.next is not None:
                    nxt.next.prev = chunk
            prv = chunk.prev
            if prv is not None and not prv.in_use:          # and the one before it
                self._free_chunks.remove(prv)
                prv.size += chunk.size
                prv.next = chunk.next
                if chunk.next is not None:
                    chunk.next.prev = prv
                chunk = prv
            self._free_chunks.append(chunk)

    def _free_all_locked(self):
        whole = [c for c in self._free_chunks if c.prev is None and c.next is None]
        for c in whole:
            self._total -= c.size
        self._free_chunks = [c for c in self._free_chunks if c.prev is not None or c.next is not None]

    def free_all_blocks(self, stream=None):
        with self._lock:
            self._free_all_locked()

    def n_free_blocks(self):
        return len(self._free_chunks)

    def used_bytes(self):
        return self._used

    def free_bytes(self):
        return self._total - self._used

    def total_bytes(self):
        return self._total

    def set_limit(self, size=None, fraction=None):
        if fraction is not None:
            size = int(runtime.TOTAL_MEM * fraction)
        self._limit = size or 0

    def get_limit(self):
        return self._limit


class MemoryPool:
    """CuPy's MemoryPool: one SingleDeviceMemoryPool per device, the current device's answering."""

    def __init__(self, allocator=None):
        self._pools = {}

    def device_pool(self):
        d = runtime.getDevice()
        p = self._pools.get(d)
        if p is None:
            p = self._pools[d] = SingleDeviceMemoryPool(d)
        return p

    def malloc(self, size):
        return self.device_pool().malloc(size)

    def free_all_blocks(self, stream=None):
        self.device_pool().free_all_blocks()

    def free_all_free(self):
        self.free_all_blocks()

    def n_free_blocks(self):
        return self.device_pool().n_free_blocks()

    def used_bytes(self):
        return self.device_pool().used_bytes()

    def free_bytes(self):
        return self.device_pool().free_bytes()

    def total_bytes(self):
        return self.device_pool().total_bytes()

    def set_limit(self, size=None, fraction=None):
        self.device_pool().set_limit(size, fraction)

    def get_limit(self):
        return self.device_pool().get_limit()


class PinnedMemoryPointer:
    """Page-locked host memory (fake: ordinary host memory) that NumPy arrays can be built on."""

    def __init__(self, nbytes):
        import numpy
        self._buf = numpy.empty(nbytes, numpy.uint8)
        self.ptr = self._buf.__array_interface__["data"][0]
        self.size = nbytes

    @property
    def __array_interface__(self):
        return {"shape": (self.size,), "typestr": "|u1", "data": (self.ptr, False), "version": 3}


class PinnedMemoryPool:
    def malloc(self, size):
        return PinnedMemoryPointer(size)

    def free_all_blocks(self):
        pass

    def n_free_blocks(self):
        return 0


_default_pool = MemoryPool()
_default_pinned_pool = PinnedMemoryPool()
_allocator = [_default_pool.malloc]     # CuPy's import makes the default pool the allocator


def get_default_memory_pool():
    return _default_pool


def get_default_pinned_memory_pool():
    return _default_pinned_pool


def set_allocator(allocator=None):
    """Device allocations go through `allocator(size) -> MemoryPointer`. None, as in CuPy, is the raw
    cudaMalloc allocator: the pool is off (no pool counters move, no memory hooks are called)."""
    _allocator[0] = _malloc if allocator is None else allocator


def get_allocator():
    return _allocator[0]


def _malloc(size):
    """CuPy's raw allocator: a driver allocation of its own, released when its last pointer goes."""
    if size == 0:
        return MemoryPointer(Memory(0, 0, runtime.getDevice()), 0)
    ptr = _next_ptr[0]
    _next_ptr[0] += _round(size)
    return MemoryPointer(Memory(size, ptr, runtime.getDevice()), 0)


def alloc(size):
    return get_allocator()(size)


def alloc_pinned_memory(size):
    return _default_pinned_pool.malloc(size)
