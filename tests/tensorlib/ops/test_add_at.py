"""broadcast.add_at on NumPy: its fast layouts (slices at a 1-d index along one dim; a full grid of index arrays)
against np.add.at, which it replaces there: bit for bit for the slices (repeats accumulate in their order), within
float rounding for the grid (summed in float64 by bincount), and add.at's own error for an index out of range."""
import numpy as np
import pytest

from tensorlib.ops import broadcast
from tensorlib.ops.broadcast import add_at


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    monkeypatch.setattr(broadcast, "_FAST_MIN", 0)      # the fast layouts from the first entry


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slices_at_an_index_match_add_at_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    fast = 0
    for trial in range(600):
        nd = int(rng.integers(2, 4))
        shape = tuple(int(v) for v in rng.integers(1, 6, nd))
        dim = int(rng.integers(0, nd))
        k = int(rng.integers(0, 40))
        index = rng.integers(-shape[dim], shape[dim], k)
        if trial % 5 == 0:
            index = np.full(k, shape[dim] - 1)          # one index repeated
        if trial % 11 == 0:
            index = np.zeros(300, dtype=np.int64)       # beyond the rounds: add.at itself
        idx = (slice(None),) * dim + (index,) if dim or trial % 2 else index
        src = rng.standard_normal(shape[:dim] + index.shape + shape[dim + 1:]).astype(dtype)
        out0 = rng.standard_normal(shape).astype(dtype)
        want = out0.copy()
        np.add.at(want, idx, src)
        fast += broadcast._add_at_fast(out0.copy(), idx, src)     # False before it writes anything
        got = out0.copy()
        add_at(np, got, idx, src)
        np.testing.assert_array_equal(got, want)
    assert fast > 300


def test_a_grid_of_indices_matches_add_at():
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 6, 3))
        sshape = tuple(int(v) for v in rng.integers(1, 5, 3))
        idx = tuple(rng.integers(0, shape[d], sshape) for d in range(3))
        src = rng.standard_normal(sshape).astype(np.float32)
        out0 = rng.standard_normal(shape).astype(np.float32)
        want = out0.copy()
        np.add.at(want, idx, src)
        got = out0.copy()
        assert broadcast._add_at_fast(got, idx, src)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_an_index_out_of_range_raises_as_add_at():
    for idx in ((slice(None), np.array([0, 3])), (np.array([[0, 5]]), np.array([[0, 1]]))):
        out = np.zeros((2, 3), np.float32)
        src = np.ones((2, 2), np.float32) if len(idx) == 2 and type(idx[0]) is slice else np.ones((1, 2), np.float32)
        with pytest.raises(IndexError):
            add_at(np, out, idx, src)
        assert not out.any()
