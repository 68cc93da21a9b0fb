"""tensorlib/ops/sampling.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tests.tensorlib.ops._util import T


def test_multinomial_without_replacement_never_repeats_and_skips_zeros():
    tl.manual_seed(0)
    p = T([[0.1, 0.0, 0.4, 0.5], [1.0, 1.0, 0.0, 1.0]])
    for _ in range(50):
        s = tl.multinomial(p, 3).numpy()
        assert s.shape == (2, 3) and s.dtype == np.int64
        for row, zero in zip(s, (1, 2)):
            assert len(set(row)) == 3 and zero not in row


def test_multinomial_with_replacement_frequencies():
    tl.manual_seed(1)
    s = T([0.2, 0.0, 0.8]).multinomial(20000, replacement=True).numpy()
    counts = np.bincount(s, minlength=3) / s.size
    assert counts[1] == 0 and abs(counts[0] - 0.2) < 0.02
    tl.manual_seed(1)
    assert (tl.multinomial(T([0.2, 0.0, 0.8]), 20000, True).numpy() == s).all()   # seeded


def test_multinomial_errors():
    with pytest.raises(RuntimeError, match="without replacement"):
        tl.multinomial(T([1.0, 1.0]), 3)
    with pytest.raises(RuntimeError, match="element < 0"):
        tl.multinomial(T([-1.0, 1.0]), 1)
    with pytest.raises(RuntimeError, match="1 or 2 dim"):
        tl.multinomial(T(np.ones((2, 2, 2))), 1)


def test_bernoulli_mean_and_values():
    tl.manual_seed(2)
    p = T(np.full((200, 100), 0.3))
    b = tl.bernoulli(p)
    assert b.dtype == tl.float64 and set(np.unique(b.numpy())) <= {0.0, 1.0}
    assert abs(b.numpy().mean() - 0.3) < 0.02
    x = tl.zeros(20000).bernoulli_(T(np.full(20000, 0.7)))
    assert abs(x.numpy().mean() - 0.7) < 0.02
    assert abs(tl.bernoulli(tl.zeros(20000), 0.25).numpy().mean() - 0.25) < 0.02


def test_random_ranges():
    tl.manual_seed(3)
    a = tl.zeros(1000).random_(2, 5).numpy()
    assert set(np.unique(a)) == {2.0, 3.0, 4.0}
    b = tl.zeros(1000, dtype=tl.int64).random_(7).numpy()
    assert b.min() >= 0 and b.max() < 7
    c = tl.zeros(1000, dtype=tl.uint8).random_().numpy()
    assert c.max() > 200
    assert set(np.unique(tl.zeros(100, dtype=tl.bool).random_().numpy())) == {False, True}
    with pytest.raises(RuntimeError, match="from=5 >= to=2"):
        tl.zeros(3).random_(5, 2)


def test_multinomial_one_row_draws_as_the_first_of_many():
    """One distribution takes a search of its own (no rows' offsets): the same draws as that row among others,
    with the generator in the same state."""
    p = tl.tensor([0.1, 0.2, 0.3, 0.4])
    tl.manual_seed(3)
    one = tl.multinomial(p, 50, True)
    tl.manual_seed(3)
    two = tl.multinomial(tl.stack([p, tl.tensor([1.0, 0.0, 0.0, 0.0])]), 50, True)
    assert one.tolist() == two[0].tolist() and set(two[1].tolist()) == {0}
    assert set(one.tolist()) <= {0, 1, 2, 3} and len(set(one.tolist())) > 1
