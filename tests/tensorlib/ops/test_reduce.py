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
