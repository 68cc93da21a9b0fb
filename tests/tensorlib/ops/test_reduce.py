"""tensorlib/ops/reduce.py against NumPy references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tests.tensorlib.ops._util import T, eq, rng


def test_nan_reductions_and_counts():
    a = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, 4.0]])
    eq(tl.nansum(T(a)), np.nansum(a))
    eq(T(a).nansum(1, keepdim=True), np.nansum(a, 1, keepdims=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eq(tl.nanmean(T(a), 0), np.nanmean(a, 0))
    x = T(a, grad=True)
    tl.nansum(x).backward()
    eq(x.grad, ~np.isnan(a) * 1.0)
    with pytest.raises(RuntimeError, match="nanmean\\(\\): expected input to have floating point"):
        tl.nanmean(T([1, 2]))
    eq(tl.count_nonzero(T([[0, 1], [2, 3]])), 3, tl.int64)
    eq(T([[0, 1], [2, 3]]).count_nonzero(0), [1, 2])
    eq(tl.bincount(T([0, 2, 2, 5])), np.bincount([0, 2, 2, 5]), tl.int64)
    eq(tl.bincount(T([0, 2]), T([0.5, 1.5]), minlength=4), [0.5, 0.0, 1.5, 0.0], tl.float64)


def test_softmax_top_level():
    a = rng.standard_normal((3, 4))
    e = np.exp(a - a.max(1, keepdims=True))
    eq(tl.softmax(T(a), 1), e / e.sum(1, keepdims=True))
    eq(T(a).log_softmax(-1), np.log(e / e.sum(1, keepdims=True)))
    with pytest.raises(TypeError, match='missing 1 required positional arguments: "dim"'):
        tl.softmax(T(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_channel_sum_matches_numpy(dtype):
    """A sum over (0, 2, 3) of a contiguous float array (a conv bias gradient) takes a matrix-vector path
    (reduce._sum_per_channel): the same values as NumPy's within rounding, keepdim and negative dims
    included, NaN and inf propagated; planes past reduce._PLANE_MAX, and other dims, take add.reduce."""
    from tensorlib.ops import reduce as R
    a = rng.standard_normal((6, 5, 7, 9)).astype(dtype)
    a[1, 2, 3, 4], a[4, 3, 0, 0] = np.nan, np.inf
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert R._per_channel(a, (0, 2, 3)) and not R._per_channel(a[:, :, ::2], (0, 2, 3))
    np.testing.assert_allclose(T(a).sum((0, 2, 3)).numpy(), a.sum((0, 2, 3)), **tol)
    np.testing.assert_allclose(T(a).sum((0, -1, -2), keepdim=True).numpy(), a.sum((0, 2, 3), keepdims=True), **tol)
    assert T(a).sum((0, 2, 3)).dtype == T(a).dtype
    b = rng.standard_normal((2, 3, 4, 5, 6)).astype(dtype)
    np.testing.assert_allclose(T(b).sum((0, 2, 3, 4)).numpy(), b.sum((0, 2, 3, 4)), **tol)
    big = rng.standard_normal((2, 2, 1, R._PLANE_MAX + 1)).astype(dtype)
    assert not R._per_channel(big, (0, 2, 3))
    np.testing.assert_allclose(T(big).sum((0, 2, 3)).numpy(), big.sum((0, 2, 3)), **tol)
