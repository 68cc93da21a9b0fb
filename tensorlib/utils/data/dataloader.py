"""DataLoader: batches from a dataset through a sampler, a collate function, optional worker threads,
prefetching and pinned memory.

Fetching each batch is a named region of kind "data" called as in torch's profiler:
`enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__`; with workers `..._ThreadedDataLoaderIter.__next__`
(worker threads, the default: see worker.py for why) or `..._MultiProcessingDataLoaderIter.__next__` (worker
processes, with multiprocessing_context).
"""
from __future__ import annotations

import itertools
import warnings

from ...dispatch import range_enter, range_exit
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .pin_memory import pin_memory as _pin
from .sampler import BatchSampler, RandomSampler, SequentialSampler
from .worker import EXHAUSTED, ExceptionWrapper, WorkerPool

__all__ = ["DataLoader"]


class _InfiniteNone:
    """Sampler of an IterableDataset: one None per sample, forever."""

    def __iter__(self):
        return itertools.repeat(None)


def _cuda_available():
    from ... import cuda
    return cuda.is_available()


class DataLoader:
    """torch.utils.data.DataLoader.

    num_workers > 0 starts that many worker threads (persistent across epochs with persistent_workers),
    each keeping up to prefetch_factor (default 2) batches in flight. pin_memory=True copies each batch
    into page-locked host memory when CUDA is available (and warns, then does nothing, without it).
    Workers are threads by default (see worker.py for why); pass multiprocessing_context ("fork",
    "spawn", "forkserver" or a multiprocessing context) to run them as processes instead, for datasets
    whose Python work would otherwise hold the GIL (see worker_process.py for how batches travel).
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteNone()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        if pin_memory and not _cuda_available():
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.", stacklevel=2)
            pin_memory = False
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self._pool = None
        self._epoch = 0

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        if self.multiprocessing_context is not None:
            return _MultiProcessingDataLoaderIter(self)
        return _ThreadedDataLoaderIter(self)

    def _fetcher(self):
        return Fetcher(self.dataset, self.collate_fn, self._auto_collation, self.batch_size, self.drop_last,
                       self._iterable)

    def _finish(self, batch):
        return _pin(batch) if self.pin_memory else batch

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown()


class Fetcher:
    """Builds one batch, in whichever thread or process asks; small and picklable so that process
    workers (spawn) can carry it."""

    def __init__(self, dataset, collate_fn, auto_collation, batch_size, drop_last, iterable):
        self.dataset, self.collate_fn, self.auto_collation = dataset, collate_fn, auto_collation
        self.batch_size, self.drop_last, self.iterable = batch_size, drop_last, iterable

    def __call__(self, state, task):
        return self.fetch_iter(state, task) if self.iterable else self.fetch_map(task)

    def fetch_map(self, indices):
        ds = self.dataset
        if self.auto_collation:
            getitems = getattr(ds, "__getitems__", None)
            data = getitems(indices) if callable(getitems) else [ds[i] for i in indices]
        else:
            data = ds[indices]
        return self.collate_fn(data)

    def fetch_iter(self, state, n_items):
        """Next batch of this worker's stream; `state` holds the stream's iterator."""
        it = state.get("it")
        if it is None:
            it = state["it"] = iter(self.dataset)
        if state.get("ended"):
            return EXHAUSTED
        if not self.auto_collation:
            try:
                return self.collate_fn(next(it))
            except StopIteration:
                state["ended"] = True
                return EXHAUSTED
        data = list(itertools.islice(it, n_items))
        if len(data) < n_items:
            state["ended"] = True
        if not data or (self.drop_last and len(data) < n_items):
            return EXHAUSTED
        return self.collate_fn(data)


class _BaseIter:
    _region = None

    def __init__(self, loader):
        self._loader = loader
        self._region = f"enumerate(DataLoader)#{type(self).__name__}.__next__"
        self._num_yielded = 0

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def __next__(self):
        tok = range_enter(self._region, "data")
        try:
            out = self._next_data()
            self._num_yielded += 1
            return out
        finally:
            range_exit(tok)


class _SingleProcessDataLoaderIter(_BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._indices = iter(loader._index_sampler) if not loader._iterable else None
        self._state = {}
        self._fetch = loader._fetcher()

    def _next_data(self):
        ld = self._loader
        if ld._iterable:
            batch = self._fetch.fetch_iter(self._state, ld.batch_size if ld._auto_collation else 1)
            if batch is EXHAUSTED:
                raise StopIteration
        else:
            indices = next(self._indices)   # StopIteration ends the epoch
            batch = self._fetch.fetch_map(indices)
        return ld._finish(batch)


class _ThreadedDataLoaderIter(_BaseIter):
    """Keeps prefetch_factor * num_workers batches in flight, handed round-robin to the worker threads,
    and yields them in sampler order (or as they finish with in_order=False)."""

    def __init__(self, loader):
        super().__init__(loader)
        ld = loader
        self._n = ld.num_workers
        self._epoch = ld._epoch = ld._epoch + 1
        pool = ld._pool if ld.persistent_workers else None
        if pool is None or not pool.alive:
            from ... import random as R
            gen = ld.generator._rng if ld.generator is not None else R.default_generator._rng
            base_seed = int(gen.integers(0, 2 ** 63 - 1 - self._n))
            pool = self._make_pool(ld, base_seed)
            if ld.persistent_workers:
                ld._pool = pool
        elif ld._iterable:
            pool.reset_streams(self._epoch)
        self._pool = pool
        self._indices = iter(ld._index_sampler) if not ld._iterable else None
        self._active = list(range(self._n))   # iterable-style: workers whose stream has not ended
        self._next_worker = itertools.cycle(range(self._n))
        self._send_idx = 0
        self._rcvd_idx = 0
        self._pending: dict[int, int] = {}      # batch index -> worker id (in flight)
        self._done: dict[int, object] = {}      # finished out of order
        self._sampler_done = False
        for _ in range(max(1, ld.prefetch_factor) * self._n):
            self._try_put()

    def _make_pool(self, ld, base_seed):
        fetcher = ld._fetcher()

        def fetch(state, task):          # in the worker thread, pinning included
            return ld._finish(fetcher(state, task))
        return WorkerPool(self._n, fetch, ld.dataset, base_seed, ld.worker_init_fn)

    def _receive(self, out):
        return out

    def _try_put(self):
        if self._sampler_done or not self._active:
            return
        ld = self._loader
        if ld._iterable:
            wid = self._pick_active()
            task = ld.batch_size if ld._auto_collation else 1
        else:
            try:
                task = next(self._indices)
            except StopIteration:
                self._sampler_done = True
                return
            wid = next(self._next_worker)
        self._pool.submit(wid, self._epoch, self._send_idx, task)
        self._pending[self._send_idx] = wid
        self._send_idx += 1

    def _pick_active(self):
        for _ in range(self._n):
            w = next(self._next_worker)
            if w in self._active:
                return w
        return self._active[0]

    def _next_data(self):
        ld = self._loader
        while True:
            if not self._pending and not self._done:
                self._shutdown_if_transient()
                raise StopIteration
            want = self._rcvd_idx
            if ld.in_order and want in self._done:
                out = self._done.pop(want)
            elif not ld.in_order and self._done:
                want, out = self._done.popitem()
            elif want not in self._pending and ld.in_order:
                self._rcvd_idx += 1     # that batch was an exhausted stream's marker
                continue
            else:
                epoch, idx, out = self._pool.get(ld.timeout)
                if epoch != self._epoch or idx not in self._pending:
                    continue
                wid = self._pending.pop(idx)
                if out is EXHAUSTED:
                    if wid in self._active:
                        self._active.remove(wid)
                    self._try_put()
                    continue
                if idx != want and ld.in_order:
                    self._done[idx] = out
                    continue
            self._rcvd_idx = max(self._rcvd_idx, want) + 1 if ld.in_order else self._rcvd_idx + 1
            self._try_put()
            if isinstance(out, ExceptionWrapper):
                out.reraise()
            return self._receive(out)

    def _shutdown_if_transient(self):
        if not self._loader.persistent_workers:
            self._pool.shutdown()

    def __del__(self):
        try:
            self._shutdown_if_transient()
        except Exception:  # noqa: BLE001 - __del__ must not raise (at exit globals may be gone)
            pass


class _MultiProcessingDataLoaderIter(_ThreadedDataLoaderIter):
    """The same scheduling with worker processes: batches come back as NumPy payloads and become
    tensors (and are pinned) in the main process."""

    def _make_pool(self, ld, base_seed):
        from .worker_process import ProcessPool
        return ProcessPool(self._n, ld._fetcher(), ld.dataset, base_seed, ld.worker_init_fn,
                           ld.multiprocessing_context)

    def _receive(self, out):
        from .worker_process import from_wire
        return self._loader._finish(from_wire(out))
