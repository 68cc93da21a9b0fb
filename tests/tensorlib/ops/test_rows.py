"""tensorlib/ops/_rows.py (the BLAS row sums and the transposed row max) against NumPy's reductions."""
from __future__ import annotations

import numpy as np
import pytest

from tensorlib.ops._rows import as_rows, row_max, row_sum

_rng = np.random.default_rng(3)


def _arrays():
    """Short and long rows, one and two trailing dims, a non-contiguous view, and dtypes with and
    without a BLAS path."""
    f32 = _rng.standard_normal((4, 16, 32)).astype(np.float32)
    yield f32, 1
    yield f32, 2
    yield _rng.standard_normal((6, 100)), 1                       # float64, rows longer than the max's cutoff
    yield f32.transpose(1, 0, 2)[:, ::2], 1                        # strided: reshaped by copy
    yield _rng.standard_normal((5, 7)).astype(np.float16), 1       # no BLAS: the plain reduction
    yield _rng.integers(-50, 50, (3, 9)), 1
    yield np.zeros((0, 8), np.float32), 1
    yield _rng.standard_normal(9).astype(np.float32), 1


@pytest.mark.parametrize("x,k", list(_arrays()))
def test_row_sum_is_the_trailing_sum(x, k):
    axes = tuple(range(x.ndim - k, x.ndim))
    ref = np.add.reduce(x.astype(np.float64), axes, keepdims=True)
    got = row_sum(x, k)
    assert got.shape == ref.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5 if x.dtype == np.float32 else 1e-2 if x.dtype == np.float16
                               else 1e-12, atol=1e-4 if x.dtype == np.float32 else 1e-2 if x.dtype == np.float16
                               else 1e-12)


@pytest.mark.parametrize("x,k", [(x, k) for x, k in _arrays() if k == 1 and x.size])
def test_row_max_is_the_exact_last_dim_max(x, k):
    ref = np.maximum.reduce(x, -1, keepdims=True)
    got = row_max(x)
    assert got.shape == ref.shape and got.dtype == x.dtype
    np.testing.assert_array_equal(got, ref)


def test_row_max_keeps_nan_and_inf_as_numpy_does():
    x = np.array([[1.0, np.nan, 2.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]], np.float32)
    np.testing.assert_array_equal(row_max(x), np.maximum.reduce(x, -1, keepdims=True))


def test_as_rows_only_takes_non_empty_blas_arrays():
    assert as_rows(np.zeros((2, 3), np.float16)) is None
    assert as_rows(np.zeros((0, 3), np.float32)) is None
    rows, ones = as_rows(np.zeros((2, 3, 4), np.float32), 2)
    assert rows.shape == (2, 12) and ones.shape == (12,) and not ones.flags.writeable


def test_max0_and_min0_are_torchs_clamp_min_and_max_at_zero():
    """NumPy's maximum/minimum against 0 but for -0.0, which they keep as torch's clamp (and relu) do."""
    from tensorlib.ops._rows import max0, min0
    rng = np.random.default_rng(0)
    for dtype in (np.float16, np.float32, np.float64, np.int32, np.int64):
        a = (rng.standard_normal((37, 50)) * 10).astype(dtype)
        if a.dtype.kind == "f":
            a[0, :4] = [np.nan, -0.0, np.inf, -np.inf]
        for mine, ref in ((max0, np.maximum), (min0, np.minimum)):
            got, want = mine(np, a), ref(a, 0)
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype
            if a.dtype.kind == "f":
                assert np.signbit(got[0, 1])         # -0.0 kept
        b = a.T.copy()
        max0(np, b, out=b)                       # in place, a transposed copy's layout
        np.testing.assert_array_equal(b, np.maximum(a.T, 0))
