"""Opt-in worker processes (multiprocessing_context): order, process identity, errors, streams, seeds."""
import os

import pytest

import tensorlib as tl
from tensorlib.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info


class WithPid(Dataset):
    def __len__(self):
        return 11

    def __getitem__(self, i):
        if i == 99:
            raise KeyError("no sample 99")
        return {"x": tl.full((2,), float(i)), "pid": os.getpid(), "r": tl.rand(1)}


class Shards(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        return iter(range(info.id, 9, info.num_workers))


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_processes_keep_order_and_run_elsewhere(ctx):
    batches = list(DataLoader(WithPid(), batch_size=3, num_workers=2, multiprocessing_context=ctx))
    assert [v for b in batches for v in b["x"][:, 0].tolist()] == [float(i) for i in range(11)]
    pids = {p for b in batches for p in b["pid"].tolist()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert isinstance(batches[0]["x"], tl.Tensor)


def test_workers_are_seeded_differently():
    b = list(DataLoader(WithPid(), batch_size=1, num_workers=2, multiprocessing_context="fork"))
    assert b[0]["r"].item() != b[1]["r"].item()


def test_process_error_is_reraised_in_main():
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(DataLoader(WithPid(), sampler=[0, 99], num_workers=1, multiprocessing_context="fork"))


def test_iterable_dataset_with_processes():
    got = sorted(i for b in DataLoader(Shards(), batch_size=2, num_workers=3, multiprocessing_context="fork")
                 for i in b.tolist())
    assert got == list(range(9))


def test_process_region_name():
    seen = []

    class H(tl.dispatch.Hook):
        def range_enter(self, name, kind):
            seen.append(name)
    h = H()
    tl.dispatch.add_hook(h)
    try:
        list(DataLoader(WithPid(), batch_size=6, num_workers=1, multiprocessing_context="fork"))
    finally:
        tl.dispatch.remove_hook(h)
    assert "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__" in seen


class RaisesALocalError(Dataset):
    """Its error's class is local to a method, so it cannot be pickled back to the main process."""
    def __len__(self):
        return 2

    def __getitem__(self, i):
        class LocalError(Exception):
            pass
        raise LocalError(f"sample {i}")


def test_an_unpicklable_error_class_arrives_as_runtime_error_with_its_traceback():
    with pytest.raises(RuntimeError, match="worker process 0") as info:
        list(DataLoader(RaisesALocalError(), num_workers=1, multiprocessing_context="fork"))
    assert "LocalError: sample 0" in str(info.value)


class Threads(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        x = tl.randn(1, 16, 6, 6)          # a convolution in the worker (oneDNN's OpenMP pool, where installed)
        tl.nn.functional.conv2d(x, tl.randn(4, 16, 3, 3))
        return tl.get_num_threads()


@pytest.mark.timeout(120)
def test_process_workers_run_one_thread_each():
    """As torch's workers: set_num_threads(1) first. The parent's OpenMP pool busy on a large convolution before
    the fork (oneDNN's, where installed): a forked worker's convolution must not wait for its threads (libgomp's
    pool does not survive a fork; the child leaves oneDNN off)."""
    x = tl.randn(16, 32, 32, 32)
    old = tl.get_num_threads()
    tl.set_num_threads(2)
    try:
        tl.nn.functional.conv2d(x, tl.randn(64, 32, 3, 3))     # the parent's pools in use before the fork
    finally:
        tl.set_num_threads(old)
    got = [int(v) for b in DataLoader(Threads(), batch_size=1, num_workers=2, multiprocessing_context="fork")
           for v in b.tolist()]
    assert got == [1, 1]
