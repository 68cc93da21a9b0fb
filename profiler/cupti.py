"""GPU time per op from CUPTI activity records: ``profile(cuda_timing="cupti")``.

NVIDIA's ``cupti-python`` (the ``cupti`` extra) is imported here, and only when this mode is asked for.

Why next to CUDA events (cuda_timing.py): events time the span an op occupies on its stream, gaps
included, and say nothing of what ran; CUPTI reports every kernel, memcpy and memset the GPU ran, with
its launch parameters, tied to the API call that launched it (CUPTI's correlation id) and, through an
*external correlation id* pushed while each op runs, to the op. From those records:

- an op's own ("Self") CUDA time is the sum of the durations of the GPU activities launched while it
  was the innermost op (a nested op pushes its own id); its total adds its descendants'. These fill
  the same store columns the events mode fills (``self_dev_ns``, ``dev_ns``, ``dev_start``, ...), so
  key_averages, the table and FunctionEvent read them unchanged;
- the Chrome trace gets Kineto's events instead of one span per op: ``kernel`` / ``gpu_memcpy`` /
  ``gpu_memset`` on pid = device, tid = stream; the launching ``cuda_runtime`` / ``cuda_driver`` call on
  its CPU thread; an ``ac2g`` flow from the call (``s``) to the GPU activity (``f``, ``"bp": "e"``)
  whose id is the correlation id (chrome.py writes them from ``store.gpu_records``/``api_records``).

While recording: ``start()`` enables the activity kinds, registers the buffer callbacks and samples the
two clocks; the hook pushes an id per GPU op and pops it at the op's exit, remembering (id, thread,
host stamp); CUPTI hands full buffers to ``_on_buffer`` (on its own thread) which copies the few
fields needed into tuples, so no CUPTI object outlives its callback. ``stop()`` synchronizes, flushes
(forced), disables the kinds and samples the clocks again. ``resolve(store)`` (after stop) maps CUPTI
timestamps onto ``perf_counter_ns`` through the two clock samples and attributes every record to an
event of the store: by its external id (the op that pushed it), else through its launch call's
thread and time (the innermost event open then), else to nothing (it is still drawn, unattributed).

NVTX ranges seen by CUPTI (``CuptiTimer(markers=True)``): CUPTI's MARKER activity records every NVTX
range (push/pop, start/end) and mark of the process when CUPTI is its NVTX tool, which NVTX decides at
the process's first NVTX call from ``NVTX_INJECTION64_PATH`` (`route_nvtx_to_cupti` sets it to the
libcupti cupti-python loaded). A range comes as two records sharing an id, flagged MARKER_START (with
domain, name and thread) and MARKER_END; ``nvtx_ranges()`` pairs them into `NvtxRange`s on the
perf_counter_ns clock, so a check can see that every op's range of the profiler's "tensorlib" domain
arrived and nests as the ops did.

The cupti-python API used here was checked against the 13.0.1 wheel: ``cupti/cupti.pyi`` (signatures,
record classes and attribute names), the docstrings of ``cupti.cupti``'s functions, the enum values
(imported without a GPU), and the samples the wheel ships (``cupti-python-samples/cupti_common.py``,
``cupyprof.py``). Each call below names what it rests on.
"""
from __future__ import annotations

import itertools
import os
import re
import threading
import time
import warnings
from array import array

from typing import Callable, NamedTuple

import numpy as np

from .cuda_timing import _on_gpu
from .events import add_calls

# 13.0.x: a CUPTI 13.0 that works with a CUDA 13.0 driver; later cupti-python / CUPTI releases ask for
# a newer driver (pyproject's `cupti` extra pins the same range)
REQUIREMENT = "cupti-python>=13.0.1,<13.1"
INSTALL_HINT = ("cuda_timing='cupti' needs NVIDIA's cupti-python package: pip install 'tensorlib-profiler[cupti]' "
                f"(or pip install '{REQUIREMENT}'; a newer driver can take a newer cupti-python), "
                "or profile with cuda_timing='events' (the default)")

BUFFER_BYTES = 8 * 1024 * 1024       # per activity buffer, as the wheel's cupti_common.py asks for
_MIN_FIT_NS = 50_000_000             # below this, a clock-rate fit is mostly sampling noise: offset only
_API_KEPT = re.compile(r"Launch|Memcpy|Memset|Synchronize")   # the API calls drawn (Kineto's launches/syncs)
_VERSION_SUFFIX = re.compile(r"_v\d+$")                      # "cudaLaunchKernel_v7000" -> "cudaLaunchKernel"
_OBJECT_THREAD = 2          # ActivityObjectKind.THREAD (cupti.pyi; CUPTI_ACTIVITY_OBJECT_THREAD in cupti_activity.h)


# CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS / _START / _END in cupti_activity.h: cupti-python 13.0.1's
# ActivityFlag has MARKER_INSTANTANEOUS (1) and MARKER_START (2) but no MARKER_END
MARKER_INSTANT, MARKER_START, MARKER_END = 1 << 0, 1 << 1, 1 << 2


class NvtxRange(NamedTuple):
    """An NVTX range (or, with start == end, a mark) as CUPTI saw it; times in perf_counter_ns, end None
    for a range still open when recording stopped."""
    domain: str
    name: str
    thread_id: int
    start: int
    end: int | None


class CuptiUnavailable(ImportError):
    """cupti-python is not installed or does not import; the message says what to install."""


class CuptiError(RuntimeError):
    """CUPTI is importable but refused to start (driver, permissions, another CUPTI client...)."""


def load_cupti():
    """The ``cupti.cupti`` bindings module, imported on first use.

    ``from cupti import cupti`` is the wheel's layout (cupti/__init__.py exports the one module
    ``cupti``) and how its samples import it."""
    try:
        from cupti import cupti
    except ImportError as e:
        raise CuptiUnavailable(f"{INSTALL_HINT} (importing cupti failed: {e})") from e
    return cupti


def _mapped_libcupti(maps):
    """The libcupti file named in a /proc/<pid>/maps listing, or None."""
    from safeio import InputError, open_input
    try:
        f, _ = open_input(maps, what="memory map")
    except InputError:
        return None
    with f:
        for line in f:
            if b"libcupti" in line and b"/" in line:
                return line[line.index(b"/"):].strip().decode(errors="replace")
    return None


def libcupti_path(maps="/proc/self/maps", cu=None) -> str:
    """The file of the libcupti this process loaded. cupti-python loads it at its first call, not at import:
    given the bindings `cu`, one harmless call (get_timestamp) loads it if need be."""
    path = _mapped_libcupti(maps)
    if path is None and cu is not None:
        try:
            cu.get_timestamp()
        except Exception:  # noqa: BLE001 - a probe: whatever it raises (no driver, no library), the maps decide
            pass
        path = _mapped_libcupti(maps)
    if path is None:
        raise CuptiError("libcupti is not loaded in this process (it needs cupti-python and a CUDA driver)")
    return path


def route_nvtx_to_cupti(maps="/proc/self/maps", cu=None) -> str:
    """Make the libcupti of cupti-python (`cu`, default load_cupti()) the process's NVTX tool, so NVTX ranges
    reach CUPTI as MARKER records. NVTX reads NVTX_INJECTION64_PATH once, at the process's first NVTX call:
    call this before that (a later call changes nothing). Returns the path set (an existing one is kept)."""
    if os.environ.get("NVTX_INJECTION64_PATH"):
        return os.environ["NVTX_INJECTION64_PATH"]
    path = libcupti_path(maps, cu if cu is not None else load_cupti())
    os.environ["NVTX_INJECTION64_PATH"] = path
    return path


# -- buffer callbacks: registered at every start, routed to the timer recording now ------------------
# CUPTI keeps one pair of buffer callbacks per process, and another CUPTI client in the process (torch.profiler's
# Kineto) registers its own: registering once per module, the CNN's and Transformer's traces after a torch
# profile of the MLP in the same process had no GPU records at all (seen on an H200, devtools/gpu_traces.py).
_lock = threading.Lock()
_receiver = None                     # the CuptiTimer between start() and stop() (one profiler at a time)


def _buffer_requested():
    # func_buffer_requested() takes nothing and returns (buffer size in bytes, max records; 0 = as many
    # as fit): cupti_common.py's func_buffer_requested in the 13.0.1 wheel
    return BUFFER_BYTES, 0


def _buffer_completed(activities):
    # func_buffer_completed(activities): a list of record objects (ActivityKernel10, ActivityAPI, ...),
    # each with `kind` an int ActivityKind: cupti_common.py's func_buffer_completed; the user guide's
    # "records are returned through the func_buffer_completed callback as corresponding Python objects"
    r = _receiver
    if r is not None:
        r._on_buffer(activities)


def _clock_pair(get_timestamp, pc=time.perf_counter_ns, tries=5):
    """(perf_counter_ns, CUPTI ns) read back to back: the tightest of a few brackets, host at its middle."""
    best = None
    for _ in range(tries):
        a = pc()
        c = int(get_timestamp())
        b = pc()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2, c)
    return best[1], best[2]


class ClockMap:
    """CUPTI timestamps -> perf_counter_ns: an offset from the start sample, and the rate between the
    two clocks from the start and stop samples when they are far enough apart (CUPTI's clock and
    CLOCK_MONOTONIC may be slewed differently)."""

    def __init__(self, start, stop=None):
        self.h0, self.c0 = start
        self.slope = 1.0
        if stop is not None:
            h1, c1 = stop
            if c1 - self.c0 >= _MIN_FIT_NS:
                s = (h1 - self.h0) / (c1 - self.c0)
                if 0.99 < s < 1.01:
                    self.slope = s

    def __call__(self, c):
        d = np.asarray(c, np.int64) - self.c0
        if self.slope != 1.0:
            d = np.rint(d * self.slope).astype(np.int64)
        return d + self.h0


def _demangler():
    """libstdc++'s __cxa_demangle through ctypes (CUPTI gives mangled C++ kernel names; Kineto prints
    them demangled), or None where it cannot be loaded."""
    try:
        import ctypes
        lib = ctypes.CDLL("libstdc++.so.6")
        libc = ctypes.CDLL(None)
        f = lib.__cxa_demangle
        f.restype = ctypes.c_void_p
        f.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        free = libc.free
        free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None

    def demangle(name: str) -> str:
        if not name.startswith("_Z"):
            return name
        status = ctypes.c_int(0)
        p = f(name.encode(), None, None, ctypes.byref(status))
        if not p:
            return name
        try:
            return ctypes.string_at(p).decode(errors="replace") if status.value == 0 else name
        finally:
            free(p)
    return demangle


_DEMANGLE: list[Callable[[str], str] | None] = []      # the demangler, once looked up


def demangle(name: str) -> str:
    if not _DEMANGLE:
        _DEMANGLE.append(_demangler())
    d = _DEMANGLE[0]
    return d(name) if d is not None else name


def _memcpy_name(copy_kind, src, dst) -> str:
    # ActivityMemcpyKind / ActivityMemoryKind number as the C enums (checked in 13.0.1: HTOD=1 ...,
    # PAGEABLE=1 ...), the numbering nsys exports too; names as Kineto prints them
    from .nsys.convert import MEMCPY_KINDS, MEMORY_KINDS, _kind_name
    kind, src, dst = (_kind_name(MEMCPY_KINDS, copy_kind), _kind_name(MEMORY_KINDS, src),
                      _kind_name(MEMORY_KINDS, dst))
    return f"Memcpy {kind} ({src} -> {dst})"


def _memset_name(memory_kind) -> str:
    from .nsys.convert import MEMORY_KINDS, _kind_name
    return f"Memset ({_kind_name(MEMORY_KINDS, memory_kind)})"


def _default_sync():
    """Wait for the current device, so every launched activity has completed and has its record."""
    from tensorlib.cuda import cupy_or_none
    cp = cupy_or_none()
    if cp is not None:
        cp.cuda.runtime.deviceSynchronize()


class CuptiTimer:
    """Dispatcher hook (ops only) + CUPTI activity collection for one recording (see module docstring).

    ``cupti`` is the bindings module (tests pass a stand-in; by default ``load_cupti()``), ``select``
    says which ops get an external id (default: those running on a GPU, `cuda_timing._on_gpu`), ``sync``
    waits for the device at stop (default: CuPy's deviceSynchronize), ``markers`` also records NVTX
    ranges (MARKER activity; see `nvtx_ranges`)."""

    def __init__(self, cupti=None, *, select=None, sync=None, markers=False):
        cu = cupti if cupti is not None else load_cupti()
        self._cu = cu
        ak = cu.ActivityKind
        # CONCURRENT_KERNEL rather than KERNEL (which serializes kernels); RUNTIME and DRIVER for the
        # launch calls; EXTERNAL_CORRELATION for the op ids: the ActivityKind members in cupti.pyi,
        # the set cupti_common.py's default_activity_list enables (less what is not used here)
        self.kinds = (ak.CONCURRENT_KERNEL, ak.MEMCPY, ak.MEMSET, ak.RUNTIME, ak.DRIVER, ak.EXTERNAL_CORRELATION)
        # MARKER: NVTX marks and ranges (ActivityKind.MARKER in cupti.pyi; records are ActivityMarker2)
        self._k_marker = int(ak.MARKER) if markers else None
        if markers:
            self.kinds += (ak.MARKER,)
        self._k_kernel = {int(ak.CONCURRENT_KERNEL), int(ak.KERNEL)}
        self._k_memcpy = int(ak.MEMCPY)
        self._k_memset = int(ak.MEMSET)
        self._k_runtime = int(ak.RUNTIME)
        self._k_driver = int(ak.DRIVER)
        self._k_ext = int(ak.EXTERNAL_CORRELATION)
        # ExternalCorrelationKind.CUSTOM2 (= 5, as in cupti_activity.h): Kineto (torch.profiler) tags its ops
        # with CUSTOM0 and its user annotations with CUSTOM1, so a torch profile in the same process
        # keeps its ids and these keep theirs
        self._ext_kind = int(cu.ExternalCorrelationKind.CUSTOM2)
        # activity_push_external_correlation_id(kind, id) / activity_pop_external_correlation_id(kind)
        # -> int: cupti.pyi and their docstrings ("for the calling thread")
        self._push = cu.activity_push_external_correlation_id
        self._pop = cu.activity_pop_external_correlation_id
        self._select = select if select is not None else _on_gpu
        self._sync = sync if sync is not None else _default_sync
        self._ids = itertools.count(1)
        self._tid = threading.get_native_id
        self._pc = time.perf_counter_ns
        self._enabled: list = []
        self._api_names: dict = {}
        self.ops: list[tuple] = []      # (external id, thread id, perf_counter_ns inside the op)
        self.gpu: list[tuple] = []      # (cat, name, device, context, stream, correlation, start, end, args)
        self.api: list[tuple] = []      # (cat, name, cbid, thread id, correlation, start, end)
        self.ext_corr = array("q")      # correlation id -> external id, two columns (compact: one per API call)
        self.ext_id = array("q")
        self.markers: list[tuple] = []  # (flags, id, domain, name, thread id, CUPTI timestamp)
        self.clock_start = None
        self.clock_stop = None
        self.begin_host = None          # perf_counter_ns when recording began (after start's own sync)
        self.end_host = None            # perf_counter_ns when recording ended (before stop's own sync)
        self.callback_error: BaseException | None = None
        self.started = False

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self):
        global _receiver
        cu = self._cu
        with _lock:
            if _receiver is not None:
                raise CuptiError("another CUPTI recording is active in this process")
            _receiver = self
        try:
            # thread ids in API records as the OS's (gettid), the ids the recorder keeps
            # (threading.get_native_id): set_thread_id_type(type) and ActivityThreadIdType.SYSTEM in
            # cupti.pyi; Kineto sets the same
            cu.set_thread_id_type(cu.ActivityThreadIdType.SYSTEM)
            # activity_register_callbacks(func_buffer_requested, func_buffer_completed): cupti.pyi, its
            # docstring, and cupti_common.cupti_initialize in the wheel; again at every start (see above)
            cu.activity_register_callbacks(_buffer_requested, _buffer_completed)
            for kind in self.kinds:
                cu.activity_enable(kind)       # activity_enable(kind: int): cupti.pyi, cupti_initialize
                self._enabled.append(kind)
            # CUPTI's first record asks for its first buffer: on an H200 the first op of each CUPTI profile took
            # 4-5 ms (a view whose only CUDA call is cudaGetDevice; 0.1 ms under event timing), where torch's
            # traces show ~2.5 ms "Activity Buffer Request" overhead events. Made here instead, by a synchronize
            # (a recorded API call, which also drains the queue) whose record falls before begin_host and is
            # left out as stop()'s is. (Not yet measured on a GPU.)
            self._sync()
            self.begin_host = self._pc()
            # get_timestamp() -> int, ns (cupti.pyi; "Get the CUPTI timestamp")
            self.clock_start = _clock_pair(cu.get_timestamp)
        except Exception as e:
            self._disable()
            with _lock:
                if _receiver is self:
                    _receiver = None
            raise CuptiError(f"CUPTI could not start activity tracing ({type(e).__name__}: {e}); "
                             "profile with cuda_timing='events' instead") from e
        self.started = True
        return self

    def stop(self):
        """Wait for the device, deliver every record (forced flush), stop the activity kinds."""
        global _receiver
        cu = self._cu
        if not self.started:
            return
        self.started = False
        self.end_host = self._pc()
        try:
            self._sync()
            # activity_flush_all(flag): flag 1 = ActivityFlag.FLUSH_FORCED (value checked in 13.0.1), which
            # also delivers buffers that are not full; cupyprof.py's at-exit handler flushes the same way
            cu.activity_flush_all(int(cu.ActivityFlag.FLUSH_FORCED))
            self.clock_stop = _clock_pair(cu.get_timestamp)
        finally:
            self._disable()
            with _lock:
                if _receiver is self:
                    _receiver = None
        if self.callback_error is not None:
            warnings.warn(f"profiler: reading CUPTI records failed ({type(self.callback_error).__name__}: "
                          f"{self.callback_error}); GPU times may be incomplete", RuntimeWarning, stacklevel=3)
        elif self.ops and not self.gpu and not self.api:
            warnings.warn(f"profiler: CUPTI delivered no records for the {len(self.ops)} CUDA ops recorded: another "
                          "CUPTI client in this process (torch.profiler, Nsight) may hold its callbacks; the trace "
                          "has no GPU activity. Profile with cuda_timing='events' instead", RuntimeWarning,
                          stacklevel=3)

    def pause(self, paused: bool):
        """Turn the activity kinds off (True) or back on (False) while recording (the profile's
        toggle_collection_dynamic); records already taken are kept and delivered at stop()."""
        if not self.started:
            return
        if paused:
            self._disable()
        elif not self._enabled:
            for kind in self.kinds:
                self._cu.activity_enable(kind)
                self._enabled.append(kind)

    def _disable(self):
        for kind in reversed(self._enabled):
            try:
                self._cu.activity_disable(kind)     # activity_disable(kind: int): cupti.pyi, cupti_activity_disable
            except self._cu.cuptiError:
                pass
        self._enabled = []

    # -- the hook ---------------------------------------------------------------------------------------
    def op_enter(self, op, inputs, attrs, phase, seq):
        if not self._select(inputs, attrs):
            return None
        eid = next(self._ids)
        self._push(self._ext_kind, eid)
        self.ops.append((eid, self._tid(), self._pc()))   # after the recorder's enter stamp: inside the op
        return eid

    def op_exit(self, token, outputs):
        if token is not None:
            self._pop(self._ext_kind)

    # -- records (CUPTI's thread) -----------------------------------------------------------------------
    def _api_name(self, kind, cbid):
        key = (kind, cbid)
        name = self._api_names.get(key)
        if name is None:
            cu = self._cu
            # get_callback_name(domain, cbid): cupti.pyi; RUNTIME records name in the RUNTIME_API domain,
            # DRIVER records in DRIVER_API (cupti_common.py does the same)
            dom = cu.CallbackDomain.RUNTIME_API if kind == self._k_runtime else cu.CallbackDomain.DRIVER_API
            try:
                raw = cu.get_callback_name(dom, cbid)
            except cu.cuptiError:
                raw = f"cbid {cbid}"
            if isinstance(raw, bytes):
                raw = raw.decode(errors="replace")
            name = self._api_names.setdefault(key, _VERSION_SUFFIX.sub("", str(raw)))
        return name

    def _on_buffer(self, activities):
        """Copy what is needed out of each record (attribute names from cupti.pyi's ActivityKernel10,
        ActivityMemcpy6, ActivityMemset4, ActivityAPI, ActivityExternalCorrelation, ActivityMarker2)."""
        try:
            kk, kc, ks, kr, kd, ke, km = (self._k_kernel, self._k_memcpy, self._k_memset, self._k_runtime,
                                          self._k_driver, self._k_ext, self._k_marker)
            gpu, api = self.gpu.append, self.api.append
            for a in activities:
                k = int(a.kind)
                if k in kk:
                    gpu(("kernel", a.name or "<unnamed kernel>", a.device_id, a.context_id, a.stream_id,
                         a.correlation_id, a.start, a.end,
                         {"registers per thread": a.registers_per_thread,
                          "shared memory": a.static_shared_memory + a.dynamic_shared_memory,
                          "grid": [a.grid_x, a.grid_y, a.grid_z], "block": [a.block_x, a.block_y, a.block_z]}))
                elif k == kc:
                    gpu(("gpu_memcpy", _memcpy_name(a.copy_kind, a.src_kind, a.dst_kind), a.device_id, a.context_id,
                         a.stream_id, a.correlation_id, a.start, a.end, {"bytes": a.bytes}))
                elif k == ks:
                    gpu(("gpu_memset", _memset_name(a.memory_kind), a.device_id, a.context_id, a.stream_id,
                         a.correlation_id, a.start, a.end, {"bytes": a.bytes}))
                elif k == kr or k == kd:
                    if not (a.start or a.end):          # 0, 0: CUPTI could not time the call
                        continue
                    name = self._api_name(k, a.cbid)
                    if _API_KEPT.search(name):
                        api(("cuda_runtime" if k == kr else "cuda_driver", name, a.cbid, a.thread_id,
                             a.correlation_id, a.start, a.end))
                elif k == ke:
                    if a.external_kind == self._ext_kind:
                        self.ext_corr.append(a.correlation_id)
                        self.ext_id.append(a.external_id)
                elif k == km:
                    self.markers.append(_marker(a))
        except BaseException as e:  # noqa: BLE001 - never raise into CUPTI's thread; stop() reports it
            if self.callback_error is None:
                self.callback_error = e

    # -- after stop -----------------------------------------------------------------------------------
    def nvtx_ranges(self, domain=None) -> list[NvtxRange]:
        """The NVTX ranges and marks recorded (markers=True), of one domain if given, by start time: a
        START record (domain, name, thread) paired with the END record of the same id."""
        if self.clock_start is None:
            return []
        to_host = ClockMap(self.clock_start, self.clock_stop)
        opened, ends = {}, {}
        for flags, mid, dom, name, tid, t in self.markers:
            if flags & MARKER_END:
                ends[mid] = t
            elif flags & (MARKER_START | MARKER_INSTANT):
                opened[mid] = (dom, name, tid, t, t if flags & MARKER_INSTANT else None)
        out = []
        for mid, (dom, name, tid, t0, t1) in opened.items():
            if domain is not None and dom != domain:
                continue
            t1 = ends.get(mid, t1)
            out.append(NvtxRange(dom, name, tid, int(to_host(t0)), None if t1 is None else int(to_host(t1))))
        return sorted(out, key=lambda r: (r.start, -(r.end or 0)))

    def resolve(self, store):
        """Attribute the records to the store's events and fill its device columns (see module docstring)."""
        n = len(store)
        if self.clock_start is None:
            return
        to_host = ClockMap(self.clock_start, self.clock_stop)
        ext = _ExternalIds(self.ext_corr, self.ext_id, self.ops, store)

        # launch calls: owner by external id, else the innermost event open at the call on its thread;
        # not the profiler's own calls (start's and stop's synchronize)
        api = self.api
        if api and (self.end_host is not None or self.begin_host is not None):
            t = to_host(np.fromiter((r[5] for r in api), np.int64, len(api)))
            keep = np.ones(len(api), bool)
            if self.begin_host is not None:
                keep &= t >= self.begin_host
            if self.end_host is not None:
                keep &= t <= self.end_host
            api = [r for r, k in zip(api, keep.tolist()) if k]
        m = len(api)
        a_tid = np.fromiter((r[3] for r in api), np.int64, m)
        a_corr = np.fromiter((r[4] for r in api), np.int64, m)
        a_t0 = to_host(np.fromiter((r[5] for r in api), np.int64, m))
        a_t1 = np.maximum(to_host(np.fromiter((r[6] for r in api), np.int64, m)), a_t0)
        a_own = ext.owner(a_corr)
        miss = a_own < 0
        for tid in np.unique(a_tid[miss]).tolist():
            sel = np.flatnonzero(miss & (a_tid == tid))
            a_own[sel] = store.innermost_at(int(tid), a_t0[sel])
        # a call belongs inside its op: clip what the clock alignment may have pushed over its edges,
        # so the trace's CPU lanes still nest strictly
        has = (a_own >= 0) & (a_own < n)
        if has.any():
            own = a_own[has]
            same = store.tid[own] == a_tid[has]
            lo = np.where(same, store.t0[own], np.iinfo(np.int64).min)
            hi = np.where(same, store.t1[own], np.iinfo(np.int64).max)
            t0 = np.clip(a_t0[has], lo, hi)
            a_t1[has] = np.clip(a_t1[has], t0, hi)
            a_t0[has] = t0

        # GPU activities: owner by external id, else through their launch call
        gpu = self.gpu
        g = len(gpu)
        g_corr = np.fromiter((r[5] for r in gpu), np.int64, g)
        g_t0 = to_host(np.fromiter((r[6] for r in gpu), np.int64, g))
        g_t1 = np.maximum(to_host(np.fromiter((r[7] for r in gpu), np.int64, g)), g_t0)
        g_own = ext.owner(g_corr)
        if m and g:
            order = np.argsort(a_corr, kind="stable")
            j = np.clip(np.searchsorted(a_corr[order], g_corr), 0, m - 1)
            hit = a_corr[order][j] == g_corr
            via_api = np.where(hit, a_own[order][j], -1)
            g_own = np.where(g_own >= 0, g_own, via_api)

        # per-event columns: an event's own time is its activities' durations; totals are subtree sums
        ok = (g_own >= 0) & (g_own < n)
        measured = np.zeros(n, np.int64)
        np.add.at(measured, g_own[ok], (g_t1 - g_t0)[ok])
        store.self_dev_ns = store.self_dev_ns + measured
        store.dev_ns = store.subtree_sum(store.self_dev_ns)
        if ok.any():
            idx = np.flatnonzero(ok)
            idx = idx[np.argsort(g_t0[idx], kind="stable")]
            owners, first = np.unique(g_own[idx], return_index=True)     # each event's earliest activity
            first = idx[first]
            prev = store.dev_start[owners]
            take = (prev < 0) | (g_t0[first] < prev)
            owners, first = owners[take], first[take]
            store.dev_start[owners] = g_t0[first]
            store.dev_stream[owners] = [gpu[i][4] for i in first.tolist()]
            store.dev_index[owners] = [gpu[i][2] for i in first.tolist()]
        store.has_device_time = True

        names: dict[str, str] = {}
        g_own_l, g_t0_l, g_t1_l = g_own.tolist(), g_t0.tolist(), g_t1.tolist()
        recs = [(r[0], names.get(r[1]) or names.setdefault(r[1], demangle(r[1])), r[2], r[3], r[4], r[5],
                 g_t0_l[i], g_t1_l[i], g_own_l[i] if 0 <= g_own_l[i] < n else -1, r[8]) for i, r in enumerate(gpu)]
        a_own_l, a_t0_l, a_t1_l = a_own.tolist(), a_t0.tolist(), a_t1.tolist()
        calls = [(r[0], r[1], r[2], r[3], r[4], a_t0_l[i], a_t1_l[i], a_own_l[i] if 0 <= a_own_l[i] < n else -1)
                 for i, r in enumerate(api)]
        store.gpu_records = (store.gpu_records or []) + recs
        store.api_records = (store.api_records or []) + calls
        _calls_as_events(store, calls)
        self.gpu, self.api, self.ops = [], [], []
        self.ext_corr, self.ext_id = array("q"), array("q")


def _calls_as_events(store, calls):
    """The API calls become events of the store, as torch's ``cudaLaunchKernel`` events (a row of the
    table; their time leaves the launching op's Self CPU, as in the trace where they nest inside it);
    every event index the store's records hold is remapped to the new rows."""
    new = add_calls(store, [(c[0], c[1], c[3], c[5], c[6]) for c in calls])

    def remap(i):
        return int(new[i]) if i >= 0 else -1

    store.gpu_records = [r[:8] + (remap(r[8]), r[9]) for r in store.gpu_records]
    store.api_records = [r[:7] + (remap(r[7]),) for r in store.api_records]


def _marker(a):
    """(flags, id, domain, name, thread id, timestamp) of an ActivityMarker2 (cupti.pyi: flags_, id, domain,
    name, timestamp, object_kind, object_id.pt.thread_id). An END record carries no name; a range's domain
    is None/empty for NVTX's default domain. object_id is a union: its thread is read only when the marker
    belongs to a thread (a device or stream marker has none)."""
    tid = int(a.object_id.pt.thread_id) if int(a.object_kind) == _OBJECT_THREAD else -1
    return int(a.flags_), int(a.id), a.domain or "", a.name or "", tid, int(a.timestamp)


class _ExternalIds:
    """correlation id -> external id (the EXTERNAL_CORRELATION records) -> store event (the op that
    pushed it: the innermost event open at the stamp taken inside the op, on its thread)."""

    def __init__(self, ext_corr, ext_id, ops, store):
        corr = np.frombuffer(ext_corr, np.int64) if len(ext_corr) else np.zeros(0, np.int64)
        eid = np.frombuffer(ext_id, np.int64) if len(ext_id) else np.zeros(0, np.int64)
        order = np.argsort(corr, kind="stable")
        self.corr, self.eid = corr[order], eid[order]
        o = np.array(ops, np.int64).reshape(-1, 3)
        top = int(o[:, 0].max()) if len(o) else 0
        self.by_eid = np.full(top + 1, -1, np.int64)
        for tid in np.unique(o[:, 1]).tolist():
            sel = o[:, 1] == tid
            self.by_eid[o[sel, 0]] = store.innermost_at(int(tid), o[sel, 2])

    def owner(self, corr):
        """Store event per correlation id (-1 where no external id, or the id is not one of ours)."""
        out = np.full(len(corr), -1, np.int64)
        if not len(self.corr) or not len(corr):
            return out
        j = np.clip(np.searchsorted(self.corr, corr), 0, len(self.corr) - 1)
        e = np.where(self.corr[j] == corr, self.eid[j], -1)
        ok = (e > 0) & (e < len(self.by_eid))
        out[ok] = self.by_eid[e[ok]]
        return out
