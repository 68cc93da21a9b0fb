"""GPU time per op without a synchronisation per op (CUDA activity only; CuPy imported here, lazily).

A hook records a CUDA event on the current stream before and after every op, taking events from a
reusable pool; nothing waits while the program runs. After stop() (`resolve`), one synchronize and
``cupy.cuda.get_elapsed_time`` give each op's device duration, and the elapsed time from a reference
event recorded at start, aligned to the host clock stamp taken just after it, places the GPU span on
the host timeline. The resolved spans fill the store's device columns: ``dev_ns`` (GPU time of the
op and, for ranges, of everything under them), ``dev_start``, ``dev_stream``, ``dev_index``.
"""
from __future__ import annotations

import time

import numpy as np


def _on_gpu(inputs, attrs) -> bool:
    """Whether the op runs on a CUDA device: a tensor argument holds a CuPy array, or (creation ops)
    its device attribute names cuda. CPU ops get no GPU span."""
    for a in inputs:
        d = getattr(a, "_data", None)
        if d is not None and type(d) is not np.ndarray:
            return True
        if isinstance(a, (list, tuple)) and a and type(getattr(a[0], "_data", None)) not in (np.ndarray, type(None)):
            return True
    dev = attrs.get("device") if attrs else None
    return dev is not None and str(dev).startswith("cuda")


class GpuTimer:
    """Dispatcher hook (ops only) pairing pooled CUDA events around each op, keyed by its enter stamp.

    When the pool runs dry, the oldest half of the pending spans is resolved (their events have long
    completed, so waiting on them costs nothing in practice) and their events return to the pool: the
    pool stays bounded in a long run and nothing waits per op."""

    def __init__(self, pool_size=4096):
        import threading

        import cupy
        self._cp = cupy
        self._pool_size = pool_size
        self._free = [cupy.cuda.Event() for _ in range(pool_size)]
        self.spans: list[tuple] = []     # (host enter ns, thread id, stream ptr, device, start event, end event)
        self.resolved: list[tuple] = []  # (host enter ns, thread id, stream ptr, device, GPU start ns, GPU ns)
        self._ref = cupy.cuda.Event()
        self._ref.record()
        self._ref_host = time.perf_counter_ns()
        self._tid = threading.get_native_id

    def _event(self):
        return self._free.pop() if self._free else self._cp.cuda.Event()

    def op_enter(self, op, inputs, attrs, phase, seq):
        if not _on_gpu(inputs, attrs):
            return None
        stream = self._cp.cuda.get_current_stream()
        ev = self._event()
        ev.record(stream)
        return (ev, stream, time.perf_counter_ns())

    def op_exit(self, token, outputs):
        if token is None:
            return
        start, stream, t_host = token
        end = self._event()
        end.record(stream)
        self.spans.append((t_host, self._tid(), stream.ptr, self._cp.cuda.runtime.getDevice(), start, end))
        if not self._free and len(self.spans) >= self._pool_size // 2:
            self._drain(len(self.spans) // 2)

    def _drain(self, k):
        """Resolve the k oldest spans and give their events back to the pool."""
        batch, self.spans = self.spans[:k], self.spans[k:]
        get = self._cp.cuda.get_elapsed_time
        for host, tid, stream, dev, a, b in batch:
            b.synchronize()
            self.resolved.append((host, tid, stream, dev, round(get(self._ref, a) * 1e6) + self._ref_host,
                                  round(get(a, b) * 1e6)))
            self._free.append(a)
            self._free.append(b)

    def resolve(self, store):
        """Fill the store's device columns (one synchronize, here, after recording)."""
        if self.spans:
            self._cp.cuda.runtime.deviceSynchronize()
            self._drain(len(self.spans))
        if not self.resolved:
            return
        n = len(store)
        r = np.array(self.resolved, np.int64).reshape(-1, 6)
        host, tids, start, dur = r[:, 0], r[:, 1], r[:, 4], r[:, 5]
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
        self.resolved = []
