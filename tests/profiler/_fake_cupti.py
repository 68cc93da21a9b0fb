"""A stand-in for ``cupti.cupti`` (cupti-python) that runs without a GPU, for profiler/cupti.py's tests.

It has the functions profiler/cupti.py calls, with the signatures of cupti-python 13.0.1
(cupti/cupti.pyi and the functions' docstrings in that wheel), the enum members it uses with the
wheel's values, and record objects with the wheel's attribute names (ActivityKernel10, ActivityMemcpy6,
ActivityMemset4, ActivityAPI, ActivityExternalCorrelation, ActivityMarker2). Its behaviour follows CUPTI's as
documented: a per-thread stack of external ids per kind; every API call made while an id is on top
yields an EXTERNAL_CORRELATION record; the API record and the GPU record of a launch share a
correlation id; records reach the tool only through the registered callbacks, on a flush; an NVTX range
(`nvtx_push`/`nvtx_pop`, as CUPTI does as the NVTX tool) is a MARKER record flagged START with its
domain, name and thread, and one flagged END with the same id and no name.

What it cannot tell: whether the real library behaves so on a real GPU. The tests that use it check
the profiler's own logic (alignment, attribution, columns, trace); the `cuda`-marked tests in
test_cupti_gpu.py check the real thing.
"""
from __future__ import annotations

import enum
import itertools
import os
import threading
import time


class ActivityKind(enum.IntEnum):
    INVALID = 0
    MEMCPY = 1
    MEMSET = 2
    KERNEL = 3
    DRIVER = 4
    RUNTIME = 5
    CONCURRENT_KERNEL = 10
    MARKER = 12
    MARKER_DATA = 13
    EXTERNAL_CORRELATION = 39


class ExternalCorrelationKind(enum.IntEnum):
    INVALID = 0
    UNKNOWN = 1
    OPENACC = 2
    CUSTOM0 = 3
    CUSTOM1 = 4
    CUSTOM2 = 5


class CallbackDomain(enum.IntEnum):
    INVALID = 0
    DRIVER_API = 1
    RUNTIME_API = 2
    RESOURCE = 3
    SYNCHRONIZE = 4
    NVTX = 5


class ActivityThreadIdType(enum.IntEnum):
    DEFAULT = 0
    SYSTEM = 1


class ActivityFlag(enum.IntEnum):
    """As 13.0.1's: MARKER_END (1 << 2 in cupti_activity.h) is missing there too."""
    NONE = 0
    FLUSH_FORCED = 1
    MARKER_INSTANTANEOUS = 1
    MARKER_START = 2


class cuptiError(Exception):  # lower-case: the wheel's name
    def __init__(self, status):
        super().__init__(status)
        self.status = status


# cbids as in the wheel's runtime_api_trace_cbid / driver_api_trace_cbid
RUNTIME_NAMES = {211: "cudaLaunchKernel_v7000", 17: "cudaGetDevice_v3020", 41: "cudaMemcpyAsync_v3020",
                 51: "cudaMemsetAsync_v3020", 131: "cudaStreamSynchronize_v3020", 165: "cudaDeviceSynchronize_v3020"}
DRIVER_NAMES = {307: "cuLaunchKernel", 304: "cuCtxGetCurrent"}


class Record:
    """An activity record whose fields can be read only during the callback that delivers it (the
    profiler must copy what it needs, as the real buffer is reused)."""

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_valid", True)

    def __getattr__(self, name):
        if not object.__getattribute__(self, "_valid"):
            raise RuntimeError(f"record read after its buffer was returned ({name})")
        try:
            return object.__getattribute__(self, "_fields")[name]
        except KeyError:
            raise AttributeError(name) from None


class FakeCupti:
    """One instance per test: ``launch()`` plays a CUDA call that runs something on the GPU."""

    ActivityKind = ActivityKind
    ExternalCorrelationKind = ExternalCorrelationKind
    CallbackDomain = CallbackDomain
    ActivityThreadIdType = ActivityThreadIdType
    ActivityFlag = ActivityFlag
    cuptiError = cuptiError

    def __init__(self, offset=7_000_000_000_000, fail_enable=False, on_pop=None, chunk=3):
        self.offset = offset            # CUPTI clock = perf_counter_ns + offset
        self.fail_enable = fail_enable
        self.on_pop = on_pop            # fn(fake, external id): launches made while an op is still open
        self.chunk = chunk              # records per delivered buffer
        self.enabled: set[int] = set()
        self.callbacks = None
        self.thread_id_type = 0
        self.pending: list[Record] = []
        self.delivered: list[Record] = []
        self.launches: list[dict] = []
        self.pushes = 0
        self.pops = 0
        self.flushes = 0
        self._corr = itertools.count(100)
        self._marker_ids = itertools.count(1)
        self._stacks = threading.local()

    # -- the API (signatures of cupti-python 13.0.1) -------------------------------------------------
    def activity_enable(self, kind):
        if self.fail_enable:
            raise cuptiError(17)       # e.g. CUPTI_ERROR_NOT_INITIALIZED
        self.enabled.add(int(kind))

    def activity_disable(self, kind):
        self.enabled.discard(int(kind))

    def activity_register_callbacks(self, func_buffer_requested, func_buffer_completed):
        self.callbacks = (func_buffer_requested, func_buffer_completed)

    def set_thread_id_type(self, type):  # shadows a builtin: the wheel's parameter name
        self.thread_id_type = int(type)

    def get_timestamp(self):
        return time.perf_counter_ns() + self.offset

    def get_callback_name(self, domain, cbid):
        return (RUNTIME_NAMES if domain == CallbackDomain.RUNTIME_API else DRIVER_NAMES)[cbid]

    def _stack(self, kind):
        st = self._stacks.__dict__.setdefault("by_kind", {})
        return st.setdefault(int(kind), [])

    def activity_push_external_correlation_id(self, kind, id):  # shadows a builtin: the wheel's parameter name
        self.pushes += 1
        self._stack(kind).append(int(id))

    def activity_pop_external_correlation_id(self, kind):
        if self.on_pop is not None and self._stack(kind):
            self.on_pop(self, self._stack(kind)[-1])
        self.pops += 1
        return self._stack(kind).pop()

    def activity_flush_all(self, flag):
        self.flushes += 1
        requested, completed = self.callbacks
        while self.pending:
            size, max_records = requested()
            assert isinstance(size, int) and size > 0 and isinstance(max_records, int)
            batch, self.pending = self.pending[:self.chunk], self.pending[self.chunk:]
            completed(batch)
            for r in batch:
                object.__setattr__(r, "_valid", False)
            self.delivered.extend(batch)

    # -- playing CUDA work --------------------------------------------------------------------------
    def _emit(self, record):
        if int(record._fields["kind"]) in self.enabled:
            self.pending.append(record)

    def api_call(self, cbid, domain="runtime", dur=200):
        """A CUDA API call on this thread (now): its API record and, if an id is pushed, its external one."""
        corr = next(self._corr)
        host = time.perf_counter_ns()
        start = host + self.offset
        kind = ActivityKind.RUNTIME if domain == "runtime" else ActivityKind.DRIVER
        self._emit(Record(kind=kind, cbid=cbid, start=start, end=start + dur, process_id=os.getpid(),
                          thread_id=threading.get_native_id(), correlation_id=corr, return_value=0))
        for kind, st in sorted(self._stacks.__dict__.get("by_kind", {}).items()):   # one record per kind pushed
            if st:
                self._emit(Record(kind=ActivityKind.EXTERNAL_CORRELATION, external_kind=kind, external_id=st[-1],
                                  correlation_id=corr))
        return corr, host, start

    def _marker(self, flags, mid, domain, name):
        tid = threading.get_native_id()
        self._emit(Record(kind=ActivityKind.MARKER, flags_=flags, id=mid, domain=domain, name=name, object_kind=2,
                          object_id=Record(pt=Record(process_id=os.getpid(), thread_id=tid)),
                          timestamp=time.perf_counter_ns() + self.offset, pad=0))

    def nvtx_push(self, domain, name):
        """nvtxDomainRangePushEx on this thread: a START marker (returns its id, for nvtx_pop)."""
        mid = next(self._marker_ids)
        self._stacks.__dict__.setdefault("nvtx", []).append(mid)
        self._marker(ActivityFlag.MARKER_START, mid, domain, name)
        return mid

    def nvtx_pop(self):
        """nvtxDomainRangePop: the END marker of this thread's innermost range (no domain, no name)."""
        self._marker(1 << 2, self._stacks.__dict__["nvtx"].pop(), None, None)

    def nvtx_mark(self, domain, name):
        self._marker(ActivityFlag.MARKER_INSTANTANEOUS, next(self._marker_ids), domain, name)

    def launch(self, name="cupy_add", delay=3_000, dur=1_000, what="kernel", stream=7, device=0, api=True,
               domain="runtime", nbytes=4096):
        """A launch: an API call (unless api=False) and the GPU activity it starts `delay` ns later."""
        if api:
            cbid = {"kernel": 211 if domain == "runtime" else 307, "memcpy": 41, "memset": 51}[what]
            corr, host, start = self.api_call(cbid, domain)
        else:
            corr, host = next(self._corr), time.perf_counter_ns()
            start = host + self.offset
        g0 = start + delay
        common = dict(device_id=device, context_id=1, stream_id=stream, correlation_id=corr, start=g0, end=g0 + dur,
                      graph_id=0, graph_node_id=0, channel_id=0, channel_type=0)
        if what == "kernel":
            rec = Record(kind=ActivityKind.CONCURRENT_KERNEL, name=name, grid_x=4, grid_y=1, grid_z=1, block_x=128,
                         block_y=1, block_z=1, registers_per_thread=16, static_shared_memory=256,
                         dynamic_shared_memory=512, queued=0, submitted=0, completed=0, **common)
        elif what == "memcpy":
            rec = Record(kind=ActivityKind.MEMCPY, copy_kind=1, src_kind=1, dst_kind=3, bytes=nbytes, **common)
        else:
            rec = Record(kind=ActivityKind.MEMSET, memory_kind=3, value=0, bytes=nbytes, **common)
        self._emit(rec)
        info = {"corr": corr, "host": host, "gpu_host": host + delay, "dur": dur, "what": what, "name": name}
        self.launches.append(info)
        return info
