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
    """Dispatcher hook (ops only) pairing pooled CUDA events around each op, keyed by its enter stamp."""

    def __init__(self, pool_size=4096):
        import cupy
        self._cp = cupy
        self._free = [cupy.cuda.Event() for _ in range(pool_size)]
        self.spans: list[tuple] = []     # (host enter ns, thread id, stream ptr, device, start event, end event)
        self._ref = cupy.cuda.Event()
        self._ref.record()
        self._ref_host = time.perf_counter_ns()
        import threading
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

    def resolve(self, store):
        """Fill the store's device columns (one synchronize, here, after recording)."""
        if not self.spans:
            return
        cp = self._cp
        cp.cuda.runtime.deviceSynchronize()
        get = cp.cuda.get_elapsed_time
        n = len(store)
        host = np.array([s[0] for s in self.spans], np.int64)
        tids = np.array([s[1] for s in self.spans], np.int64)
        dur = np.array([get(s[4], s[5]) * 1e6 for s in self.spans]).round().astype(np.int64)
        start = np.array([get(self._ref, s[4]) * 1e6 for s in self.spans]).round().astype(np.int64) + self._ref_host
        owner = np.full(len(self.spans), -1, np.int64)
        for tid in np.unique(tids):
            m = np.flatnonzero(tids == tid)
            owner[m] = store.innermost_at(int(tid), host[m])   # stamped just after the op's own enter
        ok = owner >= 0
        measured = np.zeros(n, np.int64)
        np.add.at(measured, owner[ok], dur[ok])
        store.dev_start[owner[ok]] = start[ok]
        store.dev_stream[owner[ok]] = np.array([s[2] for s in self.spans], np.int64)[ok]
        store.dev_index[owner[ok]] = np.array([s[3] for s in self.spans], np.int64)[ok]
        is_op = store.is_op()
        # ranges: the GPU time of the ops under them; ops: their own span (nested ops are inside it)
        store.dev_ns = np.where(is_op, measured, store.subtree_sum(np.where(is_op & (store.depth >= 0), measured, 0)))
        has = store.parent >= 0
        child = np.bincount(store.parent[has], weights=store.dev_ns[has], minlength=n)
        store.self_dev_ns = np.where(is_op, np.maximum(store.dev_ns - np.rint(child).astype(np.int64), 0), 0)
        store.has_device_time = True
        self._free.extend(e for s in self.spans for e in (s[4], s[5]))
        self.spans = []
