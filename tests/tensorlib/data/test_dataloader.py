"""DataLoader, samplers, datasets and collation: torch's semantics, worker threads, named regions."""
import collections
import threading
import time

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset,
                                  RandomSampler, SequentialSampler, Subset, TensorDataset, WeightedRandomSampler,
                                  default_collate, get_worker_info, random_split)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.full(2, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


class Stream(IterableDataset):
    """Shards itself across workers with get_worker_info(), as torch's docs recommend."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def _ds(n=10):
    return TensorDataset(tl.arange(n).float(), tl.arange(n))


def test_sequential_batches_and_last_partial_batch():
    batches = list(DataLoader(_ds(), batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == tl.float32 and isinstance(batches[0], list)
    assert len(DataLoader(_ds(), batch_size=4)) == 3


def test_drop_last():
    dl = DataLoader(_ds(), batch_size=4, drop_last=True)
    assert [b[1].tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(dl) == 2


def test_shuffle_is_a_permutation_reproducible_with_a_seeded_generator():
    def order(seed):
        g = tl.Generator().manual_seed(seed)
        return [i for b in DataLoader(_ds(20), batch_size=6, shuffle=True, generator=g) for i in b[1].tolist()]
    a, b, c = order(1), order(1), order(2)
    assert sorted(a) == list(range(20)) and a == b and a != c and a != list(range(20))


def test_shuffle_follows_manual_seed():
    dl = DataLoader(_ds(20), batch_size=20, shuffle=True)
    tl.manual_seed(5)
    e1 = next(iter(dl))[1].tolist()
    e2 = next(iter(dl))[1].tolist()
    tl.manual_seed(5)
    assert next(iter(dl))[1].tolist() == e1 and e1 != e2


def test_default_collate_recurses_into_dicts_and_stacks_numpy_and_numbers():
    batch = next(iter(DataLoader(Squares(5), batch_size=3)))
    assert set(batch) == {"x", "y", "name"}
    assert batch["x"].shape == (3, 2) and batch["x"].dtype == tl.float32
    assert batch["y"].tolist() == [0, 1, 4] and batch["y"].dtype == tl.int64
    assert batch["name"] == ["s0", "s1", "s2"]


def test_default_collate_types():
    assert default_collate([1.5, 2.0]).dtype == tl.float64
    assert default_collate([True, False]).dtype == tl.bool
    assert default_collate([np.float32(1), np.float32(2)]).dtype == tl.float32
    P = collections.namedtuple("P", "a b")
    out = default_collate([P(1, 2.0), P(3, 4.0)])
    assert isinstance(out, P) and out.a.tolist() == [1, 3]
    out = default_collate([(1, [2, 3]), (4, [5, 6])])
    assert isinstance(out, list) and out[1][0].tolist() == [2, 5]
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([tl.zeros(2), tl.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])


def test_custom_collate_fn_and_batch_size_none():
    dl = DataLoader(_ds(4), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(dl) == [2, 2]
    dl = DataLoader(Squares(2), batch_size=None)
    first = next(iter(dl))
    assert isinstance(first["x"], tl.Tensor) and first["y"] == 0


def test_sampler_and_batch_sampler_options():
    dl = DataLoader(_ds(), batch_size=3, sampler=[9, 8, 7, 6])
    assert [b[1].tolist() for b in dl] == [[9, 8, 7], [6]]
    dl = DataLoader(_ds(), batch_sampler=[[0, 5], [1]])
    assert [b[1].tolist() for b in dl] == [[0, 5], [1]]


@pytest.mark.parametrize("kw,msg", [
    (dict(sampler=[1], shuffle=True), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "disables auto-batching"),
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(batch_size=0), "batch_size should be a positive integer value"),
])
def test_bad_options(kw, msg):
    with pytest.raises(ValueError, match=msg):
        DataLoader(_ds(), **kw)


def test_iterable_dataset_refuses_shuffle():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(4), shuffle=True)


def test_iterable_dataset_single_and_workers():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    got = sorted(i for b in DataLoader(Stream(20), batch_size=3, num_workers=3) for i in b.tolist())
    assert got == list(range(20))


class SlowIds(Dataset):
    def __init__(self, n, delay=0.0):
        self.n, self.delay, self.threads = n, delay, set()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay * ((i * 7) % 3))
        return i


def test_workers_keep_sampler_order_and_run_in_worker_threads():
    ds = SlowIds(30, delay=0.002)
    out = [i for b in DataLoader(ds, batch_size=4, num_workers=3) for i in b.tolist()]
    assert out == list(range(30))
    assert ds.threads == {"DataLoader worker 0", "DataLoader worker 1", "DataLoader worker 2"}


def test_workers_out_of_order_still_yield_everything():
    out = [i for b in DataLoader(SlowIds(30, delay=0.002), batch_size=2, num_workers=3, in_order=False)
           for i in b.tolist()]
    assert sorted(out) == list(range(30))


def test_workers_actually_run_concurrently():
    """The first three samples wait on a 3-party barrier: only three concurrent workers get past it."""
    barrier = threading.Barrier(3, timeout=10)

    class Meet(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i < 3:
                barrier.wait()
            return i
    assert [int(b) for b in DataLoader(Meet(), batch_size=None, num_workers=3)] == list(range(6))


def test_worker_init_fn_and_worker_info():
    seen = []
    info_seen = {}

    class Who(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            info = get_worker_info()
            info_seen[info.id] = info
            return i
    list(DataLoader(Who(), batch_size=2, num_workers=2, worker_init_fn=seen.append))
    assert sorted(seen) == [0, 1]
    assert info_seen[1].num_workers == 2 and info_seen[1].seed == info_seen[0].seed + 1
    assert get_worker_info() is None


def test_worker_exception_reaches_the_main_thread():
    with pytest.raises(IndexError, match="Caught IndexError in DataLoader worker thread"):
        list(DataLoader(Squares(3), batch_size=1, num_workers=2, sampler=[0, 1, 7]))


def test_persistent_workers_reuse_threads_across_epochs():
    ds = SlowIds(10)
    dl = DataLoader(ds, batch_size=3, num_workers=2, persistent_workers=True)
    for _ in range(3):
        assert [i for b in dl for i in b.tolist()] == list(range(10))
    pool = dl._pool
    assert pool is not None and pool.alive
    it = iter(dl)
    next(it)  # abandon an epoch midway; the next epoch must not see its leftovers
    assert [i for b in dl for i in b.tolist()] == list(range(10))
    assert dl._pool is pool


def test_timeout():
    class Stuck(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            time.sleep(0.5)
            return i
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.05 seconds"):
        next(iter(DataLoader(Stuck(), num_workers=1, timeout=0.05)))


def test_pin_memory_without_cuda_warns_and_is_ignored():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here: pinning is real")
    with pytest.warns(UserWarning, match="no accelerator is found"):
        dl = DataLoader(_ds(), batch_size=2, pin_memory=True)
    assert not dl.pin_memory and not next(iter(dl))[0].is_pinned()


@pytest.mark.cuda
def test_pin_memory_on_cuda_gives_page_locked_batches():
    if not tl.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    b = next(iter(DataLoader(_ds(), batch_size=2, pin_memory=True, num_workers=1)))
    assert b[0].is_pinned() and b[0].cuda(non_blocking=True).tolist() == [0.0, 1.0]


def test_fetch_is_a_named_data_region():
    seen = []

    class H(tl.dispatch.Hook):
        def range_enter(self, name, kind):
            seen.append((name, kind))
    h = H()
    tl.dispatch.add_hook(h)
    try:
        list(DataLoader(_ds(4), batch_size=2))
        list(DataLoader(_ds(4), batch_size=2, num_workers=1))
    finally:
        tl.dispatch.remove_hook(h)
    single = ("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", "data")
    threaded = ("enumerate(DataLoader)#_ThreadedDataLoaderIter.__next__", "data")
    assert seen.count(single) == 3 and seen.count(threaded) == 3   # the last one ends the epoch


def test_samplers():
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    g = tl.Generator().manual_seed(0)
    s = list(RandomSampler(range(5), replacement=True, num_samples=40, generator=g))
    assert len(s) == 40 and set(s) <= set(range(5))
    assert sorted(RandomSampler(range(7), generator=g)) == list(range(7))
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, drop_last=True)) == 2
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0], 10, generator=g))
    assert w == [1] * 10


def test_random_split_and_subset():
    ds = _ds(10)
    a, b = random_split(ds, [7, 3], generator=tl.Generator().manual_seed(0))
    ids = sorted([int(a[i][1]) for i in range(len(a))] + [int(b[i][1]) for i in range(len(b))])
    assert ids == list(range(10)) and len(a) == 7
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(range(11), [0.5, 0.5])
    assert [len(p) for p in parts] == [6, 5]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])
    assert Subset(ds, [4, 2])[1][1].item() == 2


def test_concat_and_tensor_dataset():
    c = ConcatDataset([_ds(3), _ds(2)])
    assert len(c) == 5 and c[3][1].item() == 0 and c[-1][1].item() == 1
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(tl.zeros(3), tl.zeros(4))
