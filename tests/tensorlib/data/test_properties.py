"""Properties of batching and splitting, for any sizes (hypothesis)."""
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib.utils.data import BatchSampler, DataLoader, IterableDataset, get_worker_info, random_split


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), bs=st.integers(1, 9), drop=st.booleans())
def test_batch_sampler_partitions_in_order(n, bs, drop):
    batches = list(BatchSampler(range(n), bs, drop))
    flat = [i for b in batches for i in b]
    assert len(batches) == len(BatchSampler(range(n), bs, drop))
    assert all(len(b) == bs for b in batches[:-1])
    if drop:
        assert flat == list(range(n // bs * bs))
    else:
        assert flat == list(range(n))


@pytest.mark.filterwarnings("ignore:Length of split at index")
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 80), fracs=st.lists(st.integers(1, 10), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_random_split_fractions_cover_everything_once(n, fracs, seed):
    total = sum(fracs)
    fr = [f / total for f in fracs]
    fr[-1] -= max(0.0, sum(fr) - 1)   # torch (and we) require the float sum to be <= 1 as well as close to it
    parts = random_split(range(n), fr, generator=tl.Generator().manual_seed(seed))
    ids = sorted(p.dataset[p.indices[i]] for p in parts for i in range(len(p)))
    assert ids == list(range(n))


class Uneven(IterableDataset):
    """Worker k yields k+1 items: streams end at different times."""

    def __iter__(self):
        info = get_worker_info()
        k = 0 if info is None else info.id
        return iter([(k, j) for j in range(k + 1)])


@settings(max_examples=15, deadline=None)
@given(workers=st.integers(1, 4), bs=st.integers(1, 3), drop=st.booleans())
def test_iterable_workers_deliver_every_stream_item(workers, bs, drop):
    got = [tuple(x) for b in DataLoader(Uneven(), batch_size=bs, num_workers=workers, drop_last=drop)
           for x in zip(b[0].tolist(), b[1].tolist())]
    want = [(k, j) for k in range(workers) for j in range(k + 1)]
    if drop:
        want = [(k, j) for k in range(workers) for j in range((k + 1) // bs * bs)]
    assert sorted(got) == sorted(want)
