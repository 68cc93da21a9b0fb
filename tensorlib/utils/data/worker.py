"""DataLoader workers: threads, not processes.

Why threads: a batch reaches the training loop without pickling (tensorlib tensors refuse pickle by
design, and datasets are often closures or lambdas that cannot be pickled either); NumPy releases the GIL
in the copies, decoding and stacking that dominate real loading work; CUDA pinned-memory copies can run
in the worker; and on free-threaded Python (3.13t) the workers run fully in parallel. The cost is that a
dataset whose __getitem__ is pure Python holds the GIL, so it gains overlap with the GPU and I/O rather
than extra CPU cores. Workers share the process, so they share the dataset object: an IterableDataset
must shard itself with get_worker_info(), exactly as with torch's worker processes. For datasets whose
per-sample work is pure Python, pass DataLoader(multiprocessing_context="fork"|"spawn"|...) to get worker
processes instead (worker_process.py), at the cost of sending each batch between processes.

Each worker owns a task queue (batches are assigned round-robin, as in torch, so a worker id always sees
the same batches for a given sampler order) and puts results on one shared queue tagged with the batch
index and the epoch, so stale results of an abandoned epoch are dropped.
"""
from __future__ import annotations

import queue
import sys
import threading
import traceback
from dataclasses import dataclass

__all__ = ["WorkerInfo", "get_worker_info", "WorkerPool"]

_local = threading.local()


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself (torch.utils.data.get_worker_info()'s fields)."""
    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """In a DataLoader worker thread: its WorkerInfo; elsewhere None."""
    return getattr(_local, "info", None)


class _Exhausted:
    """An iterable-style worker's stream has ended."""


class ExceptionWrapper:
    def __init__(self, exc, worker_id, where="thread"):
        self.exc_type = type(exc)
        self.worker_id = worker_id
        self.where = where
        self.msg = "".join(traceback.format_exception(*sys.exc_info()))
        self.exc = exc

    def reraise(self):
        msg = (f"Caught {self.exc_type.__name__} in DataLoader worker {self.where} {self.worker_id}.\n"
               f"Original {self.msg}")
        try:
            err = self.exc_type(msg)
        except Exception:  # noqa: BLE001 - whatever its constructor does, the worker's error surfaces
            raise RuntimeError(msg) from self.exc
        raise err from self.exc


class _Pool:
    """What the thread and process pools share: one task queue per worker, the stream reset, cleanup.
    Subclasses set `num_workers`, `task_queues` and `alive` and define get() and shutdown()."""

    def submit(self, worker_id, epoch, idx, task):
        self.task_queues[worker_id].put((epoch, idx, task))

    def reset_streams(self, epoch):
        for wid in range(self.num_workers):
            self.submit(wid, epoch, -1, "reset")

    def __del__(self):
        try:
            self.shutdown()
        except Exception:  # noqa: BLE001 - __del__ must not raise (at exit globals may be gone)
            pass


class WorkerPool(_Pool):
    """`num_workers` daemon threads turning tasks (batch indices, or "next batch of your stream") into
    collated batches. `fetch(worker_id, indices)` builds one batch; it runs in the worker thread."""

    def __init__(self, num_workers, fetch, dataset, base_seed, worker_init_fn=None):
        self.num_workers = num_workers
        self.task_queues = [queue.Queue() for _ in range(num_workers)]
        self.results: queue.Queue = queue.Queue()
        self.threads = []
        for wid in range(num_workers):
            info = WorkerInfo(wid, num_workers, base_seed + wid, dataset)
            t = threading.Thread(target=self._loop, args=(wid, info, fetch, worker_init_fn),
                                 name=f"DataLoader worker {wid}", daemon=True)
            t.start()
            self.threads.append(t)
        self.alive = True

    def _loop(self, wid, info, fetch, worker_init_fn):
        _local.info = info
        init_error = None
        if worker_init_fn is not None:
            try:
                worker_init_fn(wid)
            except Exception as e:  # noqa: BLE001 - forwarded to the main thread with the first task, like torch
                init_error = ExceptionWrapper(e, wid)
        q = self.task_queues[wid]
        state = {}
        while True:
            task = q.get()
            if task is None:
                return
            epoch, idx, indices = task
            if init_error is not None:
                self.results.put((epoch, idx, init_error))
                continue
            if indices == "reset":
                state.clear()
                continue
            try:
                out = fetch(state, indices)
            except Exception as e:  # noqa: BLE001 - any dataset error is forwarded to the main thread
                out = ExceptionWrapper(e, wid)
            self.results.put((epoch, idx, out))

    def get(self, timeout=None):
        try:
            return self.results.get(timeout=timeout if timeout and timeout > 0 else None)
        except queue.Empty:
            raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def shutdown(self):
        if not self.alive:
            return
        self.alive = False
        for q in self.task_queues:
            q.put(None)
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout=5)


EXHAUSTED = _Exhausted()
