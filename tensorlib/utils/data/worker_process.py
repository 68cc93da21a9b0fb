"""DataLoader worker processes (opt-in with multiprocessing_context).

Each process runs the same loop as a worker thread (worker.py) over its own task queue. Batches cross
the process boundary through multiprocessing queues, which pickle: tensorlib tensors refuse pickle by
design, so a worker sends a batch as its NumPy arrays (`to_wire`) and the main process wraps them back
into tensors (`from_wire`). This pickling is process-to-process traffic between our own workers, never
the loading of a file. Each worker seeds tensorlib's and Python's generators with its WorkerInfo.seed,
as torch does. With "spawn"/"forkserver" the dataset, collate_fn and worker_init_fn must be picklable.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import random

import numpy as np

from ..._tensor import Tensor
from .worker import EXHAUSTED, ExceptionWrapper, WorkerInfo, _local, _Pool

__all__ = ["ProcessPool", "to_wire", "from_wire"]

_EXHAUSTED_WIRE = "__tensorlib_worker_stream_ended__"


class _WireTensor:
    __slots__ = ("array", "requires_grad")

    def __init__(self, array, requires_grad):
        self.array, self.requires_grad = array, requires_grad

    def __reduce__(self):
        return _WireTensor, (self.array, self.requires_grad)


def to_wire(obj):
    if isinstance(obj, Tensor):
        d = obj._data
        return _WireTensor(d if type(d) is np.ndarray else d.get(), bool(obj._requires_grad))
    if isinstance(obj, dict):
        return type(obj)((k, to_wire(v)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_wire(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_wire(v) for v in obj)
    return obj


def from_wire(obj):
    if isinstance(obj, _WireTensor):
        t = object.__new__(Tensor)
        t._data = obj.array
        if obj.requires_grad:
            t.requires_grad_(True)
        return t
    if isinstance(obj, dict):
        return type(obj)((k, from_wire(v)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(from_wire(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_wire(v) for v in obj)
    return obj


def _process_loop(wid, info, fetch, worker_init_fn, tasks, results):
    from ... import random as R
    from ..._threads import set_num_threads
    set_num_threads(1)      # as torch's workers: one thread each
    _local.info = info
    R.manual_seed(info.seed)
    random.seed(info.seed)
    init_error = None
    if worker_init_fn is not None:
        try:
            worker_init_fn(wid)
        except Exception as e:  # noqa: BLE001 - forwarded to the main process with the first task
            init_error = _portable(ExceptionWrapper(e, wid, "process"))
    state = {}
    while True:
        task = tasks.get()
        if task is None:
            return
        epoch, idx, what = task
        if init_error is not None:
            results.put((epoch, idx, init_error))
            continue
        if isinstance(what, str) and what == "reset":
            state.clear()
            continue
        try:
            out = fetch(state, what)
            out = _EXHAUSTED_WIRE if out is EXHAUSTED else to_wire(out)
        except Exception as e:  # noqa: BLE001 - any dataset error is forwarded to the main process
            out = _portable(ExceptionWrapper(e, wid, "process"))
        results.put((epoch, idx, out))


def _portable(wrapper):
    """An ExceptionWrapper that survives pickling (the original exception object may not)."""
    wrapper.exc = None
    try:
        pickle.dumps(wrapper.exc_type)
    except (pickle.PicklingError, AttributeError):  # a class that cannot be found by name; a local class
        wrapper.exc_type = RuntimeError
    return wrapper


class ProcessPool(_Pool):
    """WorkerPool's interface (submit / get / reset_streams / shutdown) over worker processes."""

    def __init__(self, num_workers, fetch, dataset, base_seed, worker_init_fn=None, context=None):
        ctx = mp.get_context(context) if isinstance(context, str) else context
        self.num_workers = num_workers
        self.task_queues = [ctx.Queue() for _ in range(num_workers)]
        self.results = ctx.Queue()
        self.procs = []
        for wid in range(num_workers):
            info = WorkerInfo(wid, num_workers, base_seed + wid, dataset)
            p = ctx.Process(target=_process_loop, name=f"DataLoader worker process {wid}",
                            args=(wid, info, fetch, worker_init_fn, self.task_queues[wid], self.results),
                            daemon=True)
            p.start()
            self.procs.append(p)
        self.alive = True

    def get(self, timeout=None):
        deadline_each = timeout if timeout and timeout > 0 else 5.0
        while True:
            try:
                epoch, idx, out = self.results.get(timeout=deadline_each)
                break
            except queue.Empty:
                if timeout and timeout > 0:
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    codes = ", ".join(f"pid {p.pid} (exit code {p.exitcode})" for p in dead)
                    raise RuntimeError(f"DataLoader worker process(es) exited unexpectedly: {codes}") from None
        if isinstance(out, str) and out == _EXHAUSTED_WIRE:
            out = EXHAUSTED
        return epoch, idx, out

    def shutdown(self):
        if not self.alive:
            return
        self.alive = False
        for q in self.task_queues:
            try:
                q.put(None)
            except (ValueError, RuntimeError):  # a closed queue; no feeder thread can start
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
