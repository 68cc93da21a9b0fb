"""tensorlib/ops/sorting.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, X, TIES


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort_stable(dim, descending):
    for data in (X, TIES):
        r = tl.sort(T(data), dim=dim, descending=descending, stable=True)
        v, i = r
        if descending:
            ref_i = np.flip(np.argsort(np.flip(data, dim), axis=dim, kind="stable"), dim)
            ref_i = data.shape[dim] - 1 - ref_i
        else:
            ref_i = np.argsort(data, axis=dim, kind="stable")
        eq(i, ref_i, tl.int64)
        eq(v, np.take_along_axis(data, ref_i, dim), tl.float64)
        assert r.values is v and r.indices is i
        eq(tl.argsort(T(data), dim, descending), ref_i)


def test_sort_nan_is_largest_and_0d():
    v, i = tl.sort(T([1.0, np.nan, -1.0]))
    eq(v, [-1.0, 1.0, np.nan])
    eq(i, [2, 0, 1])
    v, i = T([1.0, np.nan, -1.0]).sort(descending=True)
    eq(v, [np.nan, 1.0, -1.0])
    v, i = tl.sort(T(2.0))
    eq(v, 2.0)
    eq(i, 0)


@pytest.mark.parametrize("k,dim,largest", [(2, 1, True), (3, 0, False), (0, -1, True), (5, -1, False)])
def test_topk(k, dim, largest):
    x = T(X, grad=True)
    v, i = tl.topk(x, k, dim=dim, largest=largest)
    order = np.argsort(-X if largest else X, axis=dim, kind="stable")
    ref_i = np.take(order, np.arange(k), axis=dim)
    eq(i, ref_i, tl.int64)
    eq(v, np.take_along_axis(X, ref_i, dim))
    assert v.grad_fn.name() == "TopkBackward0"
    (v * 2).sum().backward()
    ref = np.zeros_like(X)
    np.put_along_axis(ref, ref_i, 2.0, dim)
    eq(x.grad, ref)


def test_topk_errors_and_gradcheck():
    with pytest.raises(RuntimeError, match="^selected index k out of range$"):
        tl.topk(T(X), 6)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        tl.topk(T(X), 1, dim=2)
    assert gradcheck(lambda a: tl.sort(a, 0).values, [T(X, grad=True)])
    assert gradcheck(lambda a: a.topk(3, largest=False).values, [T(X, grad=True)])


def test_median():
    eq(tl.median(T(X)), np.sort(X.reshape(-1))[(X.size - 1) // 2])
    eq(tl.median(T([[1.0, 4.0, 2.0, 3.0]]), 1).values, [2.0])          # the lower of the two middle values
    v, i = tl.median(T(X), 0, keepdim=True)
    ref = np.sort(X, 0)[(X.shape[0] - 1) // 2][None]
    eq(v, ref)
    eq(T(X).gather(0, i), ref)
    eq(tl.median(T([1.0, np.nan, 3.0])), np.nan)
    v, i = tl.median(T([[1.0, np.nan, 3.0]]), 1)
    eq(v, [np.nan])
    eq(i, [1])
    assert gradcheck(lambda a: a.median(1).values, [T(X, grad=True)])
    assert gradcheck(lambda a: a.median(), [T(X, grad=True)])
    with pytest.raises(IndexError, match="median\\(\\): Expected reduction dim 1 to have non-zero size."):
        tl.median(tl.zeros(2, 0), 1)


def test_unique():
    x = T([[3, 1, 2], [1, 7, 3]])
    u, inv, cnt = tl.unique(x, return_inverse=True, return_counts=True)
    ru, rinv, rcnt = np.unique(x.numpy(), return_inverse=True, return_counts=True)
    eq(u, ru, tl.int64)
    eq(inv, rinv.reshape(2, 3), tl.int64)
    eq(cnt, rcnt, tl.int64)
    eq(x.unique(), ru)
    eq(tl.unique(T([0.5, np.nan, 0.5, np.nan]), return_counts=True)[1], [2, 1, 1])


def test_searchsorted_bucketize():
    seq = T([1.0, 3.0, 5.0])
    v = T([[0.0, 3.0], [5.0, 9.0]])
    eq(tl.searchsorted(seq, v), np.searchsorted([1.0, 3.0, 5.0], v.numpy()), tl.int64)
    eq(tl.searchsorted(seq, v, right=True), np.searchsorted([1.0, 3.0, 5.0], v.numpy(), side="right"))
    assert tl.searchsorted(seq, v, out_int32=True).dtype == tl.int32
    eq(tl.searchsorted(seq, 3.0), 1)
    eq(tl.bucketize(v, seq), np.searchsorted([1.0, 3.0, 5.0], v.numpy()))
    eq(tl.searchsorted(T([[1.0, 2.0], [0.0, 10.0]]), T([[1.5], [10.0]]), side="right"), [[1], [2]])
    with pytest.raises(RuntimeError, match="boundaries tensor must be 1 dimension, but got dim\\(2\\)"):
        tl.bucketize(seq, v)


def test_topk_by_selection_matches_the_full_stable_sort():
    """k <= n/4 takes the partial selection (tensorlib.ops.sorting._topk_selected): the same values and
    indices as the full stable sort, ties (kept in index order), infinities, signed zeros and any dim."""
    from tensorlib.ops.sorting import TOPK, _argsort, _first
    rng = np.random.default_rng(0)
    for trial in range(120):
        shape = tuple(rng.integers(1, 6, rng.integers(1, 3))) + (int(rng.integers(8, 120)),)
        a = rng.standard_normal(shape).astype(np.float32 if trial % 2 else np.float64)
        if trial % 3 == 0:
            a = np.round(a * 2) / 2         # many ties at the k-th value
        if trial % 5 == 0:
            a[..., 0], a[..., 1], a[..., 2] = np.inf, -0.0, 0.0
        dim = int(rng.integers(-a.ndim, a.ndim))
        k = int(rng.integers(1, a.shape[dim] // 4 + 1)) if a.shape[dim] >= 4 else 1
        for largest in (True, False):
            want = _first(np, _argsort(np, a, dim, largest), k, dim)
            v, i = TOPK.kernel(np, a, k, dim=dim, largest=largest)
            assert i.dtype == np.int64 and np.array_equal(i, want), (trial, dim, k, largest)
            assert np.array_equal(v, np.take_along_axis(a, want, dim))
    a = np.array([[1.0, np.nan, 3.0, 2.0, 0.0, 5.0, 4.0, -1.0]])      # NaN: the full sort (NaN is the largest)
    v, i = TOPK.kernel(np, a, 2)
    assert np.isnan(v[0, 0]) and i.tolist() == [[1, 5]]
