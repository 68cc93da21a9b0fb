"""Memory recording (``profile_memory=True``): every allocation and free, stamped with the thread
and the perf_counter_ns clock, so `attribute` can give each to the innermost event open at the time.

CPU: the bytes of the arrays an op's outputs live in (an output that is a view of a fresh temporary
counts the temporary; not an array one of the op's inputs lives in, not already counted), freed when a
weak reference's callback fires. CUDA: every malloc and free of
CuPy's pool with its exact size and address, heard from the allocator tensorlib.cuda installs
(`tensorlib.cuda.memory.add_listener`). That allocator is process-wide, so the allocations and frees
of every thread are seen (DataLoader workers, user threads), which CuPy's thread-local MemoryHooks
would miss, and a failed allocation is never recorded. The running total starts from the bytes in use
when profiling began, so it reads like ``torch.cuda.memory_allocated`` and peaks at
``torch.cuda.max_memory_allocated``; on the CPU likewise from ``tensorlib.memory_allocated("cpu")`` (torch's
CPU traces start at 0 and cannot show the parameters alive at start).
"""
from __future__ import annotations

import os
import struct
import sys
import threading
import time
import weakref

import numpy as np

from tensorlib import Tensor
from tensorlib.dispatch import array_of

from ._native import crecord


CPU, CUDA = 0, 1          # Kineto's "Device Type" values
# A record as memory_record keeps it: six native int64 in MEM_DTYPE's field order (profiler/_crecord.c writes the same)
RECORD = struct.Struct("=6q")
MEM_DTYPE = np.dtype([("t", np.int64), ("tid", np.int64), ("dev_type", np.int8), ("dev_id", np.int16),
                      ("bytes", np.int64), ("addr", np.int64)])


def root_array(d):
    """The ndarray whose memory `d` is a view of (d itself when it owns its memory)."""
    b = d.base
    while type(b) is np.ndarray:
        d, b = b, b.base
    return d


ndarray = np.ndarray
_pc = time.perf_counter_ns


class _NativeId(threading.local):
    """This thread's native id, asked of the system once per thread: threading.get_native_id() is a system
    call (gettid) on Linux, about three times a thread-local's read, and every memory record needs it."""

    def __init__(self):
        self.id = threading.get_native_id()


_THREAD = _NativeId()


def _fresh_ids_in_child():
    global _THREAD
    _THREAD = _NativeId()       # the forking thread has a new native id in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_ids_in_child)


def _held_once() -> int:
    """sys.getrefcount of an array held by one object's attribute only, read into a local as
    record_outputs reads an output's array (the count this interpreter gives such an array)."""
    holder = threading.local()
    holder.a = np.empty(1)
    d = holder.a
    return sys.getrefcount(d)


_HELD_ONCE = _held_once()


class _Counted(weakref.ref):
    """A counted array's weak reference, carrying what its free callback records: the array's id (the
    records' address) and bytes. Slots on the reference itself: no second table from references to them."""
    __slots__ = ("key", "nbytes")


class MemoryRecorder:
    """Collects (t, tid, device type, device id, ±bytes, address) records while active, packed: six native
    int64 per record (`RECORD`), one after the other, in one bytearray (`bytearray.extend` of a record's 48
    bytes is one step under the GIL, so threads' records never interleave). No Python object per record or
    field, nothing the cyclic GC walks, and the array after stop() is one copy of the bytes (`records()`)."""

    FIELDS = 6          # MEM_DTYPE's fields

    def __init__(self, cuda=False):
        self.records = bytearray()
        self.live: dict[int, _Counted] = {}     # id(array) -> its weak reference, arrays counted and alive (Python)
        self._active = False
        self.cuda_base: dict[int, int] = {}
        self.cpu_base = 0                              # bytes of live CPU tensors when recording began
        self._cuda = cuda
        self._listening = False
        self._bind_cpu()

    @property
    def active(self) -> bool:
        """Records are made (the free records of arrays counted before included)."""
        return self._active

    @active.setter
    def active(self, on: bool):
        self._active = on
        if self._native is not None:
            self._native.active = bool(on)

    def live_count(self) -> int:
        """The arrays counted and alive (their free records are still to come)."""
        return self._native.live_count() if self._native is not None else len(self.live)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self):
        import tensorlib
        self.cpu_base = tensorlib.memory_allocated("cpu")     # parameters, optimizer state, data: alive at start
        self.active = True
        if self._cuda:
            self._start_cuda()

    def stop(self):
        self.active = False
        if self._listening:
            from tensorlib.cuda.memory import remove_listener
            remove_listener(self._on_cuda)
            self._listening = False

    # -- CPU --------------------------------------------------------------------------------------------
    # Called for every op while recording (the profiler's op_exit): written for the common cases, a single
    # output that is a fresh array or a view of an input's, with the lookups bound once (`_bind_cpu`).
    def _bind_cpu(self):
        if crecord is not None:       # the same three functions in C (profiler/_crecord.c)
            native = crecord.CpuMemory(self.records)     # its own table of the arrays counted, not `live`
            self.record_outputs = native.record_outputs
            self.record_arrays = native.record_arrays
            self._on_free = native.on_free
            self._native = native
            return
        self._native = None
        live = self.live
        add = self.records.extend
        pack = RECORD.pack
        counted = _Counted
        refs = sys.getrefcount
        held_once = _HELD_ONCE

        def on_free(ref):
            """weakref callback when an array dies: a weakref.finalize would do the same at several times
            the cost per array (it keeps a registry and atexit bookkeeping per object)."""
            key = ref.key
            live.pop(key, None)
            if self.active:
                add(pack(_pc(), _THREAD.id, CPU, 0, -ref.nbytes, key))

        def keep(d, key, t):
            """An op's new memory, array d (id `key`, not yet counted): recorded at time t, counted until it dies."""
            n = d.nbytes
            if n:
                ref = live[key] = counted(d, on_free)
                ref.key = key
                ref.nbytes = n
                add(pack(t, _THREAD.id, CPU, 0, n, key))

        def record_outputs(outputs, inputs, t):
            """The op's outputs' new memory, at time `t` (ns, inside the op). `inputs`: the op's arguments
            (an output living in a tensor input's memory is not new)."""
            if type(outputs) is not Tensor:
                if type(outputs) is tuple:
                    for o in outputs:
                        record_outputs(o, inputs, t)
                    return
                if not isinstance(outputs, Tensor):
                    return
            if inputs and outputs is inputs[0]:       # an in-place op's: its input
                return
            d = array_of(outputs)
            if type(d) is not ndarray:
                return
            b = d.base
            owned = b is None and refs(d) == held_once
            if b is not None:           # conv2d's output is a view of the temporary it was computed in
                while type(b) is ndarray:
                    d, b = b, b.base
                if b is not None:       # memory NumPy did not allocate (a memmap, a buffer): not the op's
                    return
            key = id(d)
            if key in live:
                return
            if owned:
                # the array owns its memory and only the output holds it: no input's array is it or a view
                # of it, so the walk below would find nothing, unless the output is an input itself
                for x in inputs:
                    if x is outputs:
                        return
            else:
                for x in inputs:        # the root of one of the op's tensor inputs: not new memory
                    if not isinstance(x, Tensor):
                        continue
                    x = array_of(x)
                    if x is d:
                        return
                    b = x.base
                    if b is not None and type(x) is ndarray:
                        while type(b) is ndarray:
                            x, b = b, b.base
                        if x is d:
                            return
            keep(d, key, t)

        def record_arrays(out, inputs, t):
            """record_outputs for an op run on arrays (tensorlib.Hook.op_arrays): `out` the kernel's result (an
            array or a tuple of them), `inputs` the arrays (and other arguments) it ran on."""
            if type(out) is not ndarray:
                if type(out) is tuple:
                    for o in out:
                        record_arrays(o, inputs, t)
                return
            d = out
            b = d.base
            if b is not None:
                while type(b) is ndarray:
                    d, b = b, b.base
                if b is not None:       # memory NumPy did not allocate: not the op's
                    return
            key = id(d)
            if key in live:
                return
            for x in inputs:            # an input's memory (its root's): not new
                if type(x) is not ndarray:
                    continue
                if x is d:
                    return
                b = x.base
                if b is not None:
                    while type(b) is ndarray:
                        x, b = b, b.base
                    if x is d:
                        return
            keep(d, key, t)

        self.record_outputs = record_outputs
        self.record_arrays = record_arrays
        self._on_free = on_free

    # -- CUDA ---------------------------------------------------------------------------------------------
    def _start_cuda(self):
        from tensorlib.cuda.memory import add_listener
        self.cuda_base = add_listener(self._on_cuda)
        self._listening = True

    def _on_cuda(self, dev, nbytes, addr):
        if self.active:
            self.records.extend(RECORD.pack(time.perf_counter_ns(), _THREAD.id, CUDA, dev, nbytes, addr))

    # -- after stop ---------------------------------------------------------------------------------------
    def fields(self) -> np.ndarray:
        """The records so far as an (n, 6) int64 array, copied: records a straggling thread adds meanwhile land
        after the copied bytes (a view of the bytearray would make its next extend raise BufferError)."""
        data = bytes(self.records)
        n = len(data) // RECORD.size
        return np.frombuffer(data, np.int64, n * self.FIELDS).reshape(n, self.FIELDS)

    def array(self):
        """The records as a MEM_DTYPE array in time order (stable: equal stamps keep their order)."""
        flat = self.fields()
        n = len(flat)
        t = flat[:, 0]
        if n > 1 and (t[1:] < t[:-1]).any():        # threads (and CUDA listeners) append out of order
            flat = flat[np.argsort(t, kind="stable")]
        a = np.empty(n, MEM_DTYPE)
        for k, f in enumerate(MEM_DTYPE.names or ()):
            a[f] = flat[:, k]
        return a


def _distinct(col) -> list[int]:
    """The distinct values of a column, sorted; without sorting it when every row has the first row's value
    (one thread, one device: the common case)."""
    if not len(col):
        return []
    first = col[0]
    if (col == first).all():
        return [int(first)]
    return np.unique(col).tolist()


def attribute(store, mem):
    """Per event self and total (self + descendants) allocated bytes, from the memory records; the
    running total per device goes into ``mem['total']`` order (see `timeline`)."""
    store.mem_events = mem
    store.has_memory = True
    n = len(store)
    owner = np.full(len(mem), -1, np.int64)
    tids = _distinct(mem["tid"])
    for tid in tids:
        m = np.flatnonzero(mem["tid"] == tid) if len(tids) > 1 else slice(None)
        owner[m] = store.innermost_at(int(tid), mem["t"][m])
    store.mem_owner = owner
    for dev_type, self_col, tot_col in ((CPU, "self_cpu_mem", "cpu_mem"), (CUDA, "self_cuda_mem", "cuda_mem")):
        sel = (owner >= 0) & (mem["dev_type"] == dev_type)
        own = np.bincount(owner[sel], weights=mem["bytes"][sel], minlength=n) if n else np.zeros(0)
        own = np.rint(own).astype(np.int64)
        setattr(store, self_col, own)
        setattr(store, tot_col, store.subtree_sum(own))


def timeline(mem, cuda_base=None, cpu_base=0):
    """{(device type, device id): (times ns, allocated bytes after each record)}; the peak is the max. Each
    device's total starts from the bytes alive when recording began (CUDA: the allocator's count; CPU: the
    live tensors' buffers, tensorlib.memory_allocated("cpu")), so the memory alive at start shows as such."""
    out = {}
    cuda_base = cuda_base or {}
    pairs = _distinct(mem["dev_type"].astype(np.int64) * 65536 + mem["dev_id"])
    for key in [divmod(int(k), 65536) for k in pairs]:
        m = (mem["dev_type"] == key[0]) & (mem["dev_id"] == key[1])
        base = cuda_base.get(key[1], 0) if key[0] == CUDA else cpu_base
        out[key] = (mem["t"][m], base + np.cumsum(mem["bytes"][m]))
    return out


def device_name(key) -> str:
    return "cpu" if key[0] == CPU else f"cuda:{key[1]}"


def format_bytes(n) -> str:
    """torch's table format: 32.00 KB, 1.50 MB, 4 B."""
    KB, MB, GB = 1024, 1024 ** 2, 1024 ** 3
    a = abs(n)
    if a >= GB:
        return f"{n / GB:.2f} GB"
    if a >= MB:
        return f"{n / MB:.2f} MB"
    if a >= KB:
        return f"{n / KB:.2f} KB"
    return f"{int(n)} B"
