"""GPU time per op without a synchronisation per op (CUDA activity only; CuPy imported here, lazily).

A hook records a CUDA event on the op's stream, with the op's device current, before and after every op,
taking events from a reusable pool per device; nothing waits while the program runs. After stop()
(`resolve`), one synchronize per device and ``cupy.cuda.get_elapsed_time`` give each op's span. The
resolved spans fill the store's device columns: ``dev_ns`` (GPU time of the op and, for ranges, of
everything under them), ``dev_start``, ``dev_stream``, ``dev_index``.

What the time measures: the stream's time from the op's entry to its exit. When work is queued ahead
of the op (a busy GPU), the start event runs when that work ends and the span is the op's kernels. On an
idle GPU the start event runs at once, and the span also covers the host's time to launch the kernels:
for a small op, mostly launch time. Only CUPTI (``cuda_timing="cupti"``) sees the kernels alone.

Placing spans on the host clock: an event never runs before the host recorded it, so each span's host
stamp (taken just before its start event is recorded) bounds where the device clock lies against the
host's; the tightest of these bounds places the spans, so a GPU span is never drawn before its op's
launch, however deep the queue, and is exact (to the launch latency) whenever the GPU was idle at some
launch, as it is at start (the first anchor follows a synchronize). Offsets are integer ns from anchor
events re-recorded every `anchor_every_ns` of host time, each anchor placed by its own spans' bounds and
its neighbours': cudaEventElapsedTime is a C float of milliseconds, which loses a microsecond ~16 s
from one reference, and the GPU's clock may drift from the host's over minutes.
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np

NOTE = ("CUDA time: stream time from each op's entry to its exit (CUDA events); on an idle GPU a small op's is "
        "mostly its launch time; cuda_timing='cupti' times the kernels alone")


def _gpu_index(inputs, attrs):
    """The CUDA device an op runs on: a tensor argument's (or, for creation ops, its device attribute's;
    -1 for "cuda" without an index: the current device), None for a CPU op (no GPU span)."""
    for a in inputs:
        d = getattr(a, "_data", None)
        if d is None and isinstance(a, (list, tuple)) and a:
            d = getattr(a[0], "_data", None)
        if d is not None and type(d) is not np.ndarray:
            return d.data.device_id       # tensorlib._device.cuda_index's read (d.device makes an object)
    dev = attrs.get("device") if attrs else None
    if dev is None:
        return None
    name = str(dev)
    if not name.startswith("cuda"):
        return None
    return int(name[5:]) if name.startswith("cuda:") else -1


def _on_gpu(inputs, attrs) -> bool:
    """Whether the op runs on a CUDA device (CUPTI's default choice of ops to link)."""
    return _gpu_index(inputs, attrs) is not None


class _Device:
    """One device's timing state: its free events and its anchors, (event, host ns just before it was
    recorded), the first recorded at the device's first use."""

    __slots__ = ("index", "free", "anchors", "next_anchor")

    def __init__(self, index, free):
        self.index = index
        self.free = free
        self.anchors: list = []
        self.next_anchor = 0


class GpuTimer:
    """Dispatcher hook (ops only) pairing pooled CUDA events around each op, keyed by its enter stamp.

    When a device's pool runs dry, the oldest spans whose events have completed are resolved (a query
    each, never a wait) and their events return to the pool; when none has (the GPU is that far behind),
    the pool grows instead: the program is never made to wait for the GPU while it is profiled."""

    anchor_every_ns = 500_000_000   # a fresh anchor each half second: float32 ms keep 0.03 us there

    def __init__(self, pool_size=4096, *, cupy=None, clock=time.perf_counter_ns):
        if cupy is None:
            import cupy
        self._cp = cupy
        self._now = clock
        self._pool_size = pool_size
        self._devices: dict[int, _Device] = {}
        self.spans = collections.deque()  # (host ns, tid, stream ptr, device, anchor, start event, end event)
        self.resolved: list[tuple] = []   # (host ns, tid, stream ptr, device, anchor, ns after anchor, GPU ns)
        self._reaping = threading.Lock()
        self._next_reap = pool_size // 2
        self._tid = threading.get_native_id
        rt = cupy.cuda.runtime
        self._get_device, self._current_stream = rt.getDevice, cupy.cuda.get_current_stream   # asked per op
        rt.deviceSynchronize()            # the first anchor then runs on an idle device: exact placement
        self._add_device(rt.getDevice(), pool_size)

    def _add_device(self, idx, n=0):
        with self._cp.cuda.Device(idx):
            d = _Device(idx, [self._cp.cuda.Event() for _ in range(n)])
            self._anchor(d, self._cp.cuda.get_current_stream(), self._now())
        self._devices[idx] = d
        return d

    def _anchor(self, d, stream, t):
        ev = self._cp.cuda.Event()
        ev.record(stream)
        d.anchors.append((ev, t))
        d.next_anchor = t + self.anchor_every_ns

    def op_enter(self, op, inputs, attrs, phase, seq):
        idx = _gpu_index(inputs, attrs)
        if idx is None:
            return None
        cur = self._get_device()
        if idx < 0:
            idx = cur
        d = self._devices.get(idx) or self._add_device(idx)
        if idx == cur:
            return self._enter(d)
        with self._cp.cuda.Device(idx):
            return self._enter(d)

    def _enter(self, d):
        stream = self._current_stream()
        t = self._now()
        if t >= d.next_anchor:
            self._anchor(d, stream, t)
        try:
            ev = d.free.pop()
        except IndexError:                # dry (or emptied by another thread since): the pool grows
            ev = self._cp.cuda.Event()
        ev.record(stream)
        return d, ev, stream, t, len(d.anchors) - 1

    def op_exit(self, token, outputs):
        if token is None:
            return
        d, start, stream, t, k = token
        try:
            end = d.free.pop()
        except IndexError:
            end = self._cp.cuda.Event()
        if d.index == self._get_device():
            end.record(stream)
        else:
            with self._cp.cuda.Device(d.index):
                end.record(stream)
        self.spans.append((t, self._tid(), stream.ptr, d.index, k, start, end))
        if not d.free and len(self.spans) >= self._next_reap:
            self._reap()

    def _reap(self):
        """A pool ran dry: take back the events of the oldest completed spans, without waiting."""
        if not self._reaping.acquire(blocking=False):
            return                        # another thread is reaping
        try:
            self._take(wait=False)
            self._next_reap = len(self.spans) + self._pool_size // 2
        finally:
            self._reaping.release()

    def _take(self, wait):
        """Resolve spans oldest first (all when `wait`: the devices were synchronised; else up to the first
        whose events have not completed) into integer ns, and return their events to their pools."""
        spans, get = self.spans, self._cp.cuda.get_elapsed_time
        while spans:
            host, tid, stream, dev, k, a, b = spans[0]
            d = self._devices[dev]
            anchor = d.anchors[k][0]
            if not wait and not (b.done and anchor.done):
                break
            spans.popleft()
            self.resolved.append((host, tid, stream, dev, k, round(get(anchor, a) * 1e6), round(get(a, b) * 1e6)))
            d.free.append(a)
            d.free.append(b)

    def _origins(self, d, r):
        """Host time of each of the device's anchors: the latest that puts no event before the host stamp
        taken before recording it (the anchor's own, and each of its spans'), carried to the neighbouring
        anchors by their device distance (short float-ms steps), so one idle moment anywhere is enough."""
        get = self._cp.cuda.get_elapsed_time
        steps = [round(get(a, b) * 1e6) for (a, _), (b, _) in zip(d.anchors, d.anchors[1:])]
        lb = np.array([t for _, t in d.anchors], np.int64)
        np.maximum.at(lb, r[:, 4], r[:, 0] - r[:, 5])
        lb = lb.tolist()
        slack = [abs(step) >> 23 | 1 for step in steps]     # a step's float32 rounding, at most: bounds stay bounds
        for k, step in enumerate(steps, 1):
            lb[k] = max(lb[k], lb[k - 1] + step - slack[k - 1])
        for k in range(len(steps), 0, -1):
            lb[k - 1] = max(lb[k - 1], lb[k] - steps[k - 1] - slack[k - 1])
        return np.array(lb, np.int64)

    def _starts(self, r):
        """Host-clock start of each resolved span: its anchor's origin plus its offset from the anchor."""
        start = np.zeros(len(r), np.int64)
        for idx, d in self._devices.items():
            m = r[:, 3] == idx
            if m.any():
                start[m] = self._origins(d, r[m])[r[m, 4]] + r[m, 5]
        return start

    def resolve(self, store):
        """Fill the store's device columns (one synchronize per device used, here, after recording)."""
        with self._reaping:
            for idx in {s[3] for s in self.spans} | {i for i, d in self._devices.items() if len(d.anchors) > 1}:
                with self._cp.cuda.Device(idx):
                    self._cp.cuda.runtime.deviceSynchronize()
            self._take(wait=True)
        if not self.resolved:
            return
        n = len(store)
        r = np.array(self.resolved, np.int64).reshape(-1, 7)
        host, tids, dur = r[:, 0], r[:, 1], r[:, 6]
        start = self._starts(r)
        owner = np.full(len(r), -1, np.int64)
        for tid in np.unique(tids):
            m = np.flatnonzero(tids == tid)
            owner[m] = store.innermost_at(int(tid), host[m])   # stamped just after the op's own enter
        ok = owner >= 0
        measured = np.zeros(n, np.int64)
        np.add.at(measured, owner[ok], dur[ok])
        store.dev_start[owner[ok]] = start[ok]
        store.dev_stream[owner[ok]] = r[ok, 2]
        store.dev_index[owner[ok]] = r[ok, 3]
        # an op's own GPU time excludes ops nested in it (e.g. autocast casts), a range has none of
        # its own; totals are subtree sums of those, so nothing is counted twice
        has = store.parent >= 0
        child = np.rint(np.bincount(store.parent[has], weights=measured[has], minlength=n)).astype(np.int64)
        store.self_dev_ns = np.where(measured > 0, np.maximum(measured - child, 0), 0)
        store.dev_ns = store.subtree_sum(store.self_dev_ns)
        store.has_device_time = True
        store.device_time_note = NOTE
        self.resolved = []
