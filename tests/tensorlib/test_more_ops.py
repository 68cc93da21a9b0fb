"""sort/topk/argsort, tril/triu/diag, isclose/allclose/equal, einsum, the added math and shape helpers against
NumPy references (devtools/torch_compat compares them with torch where it is installed)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck

rng = np.random.default_rng(7)


def T(a, grad=False):
    return tl.tensor(np.asarray(a), requires_grad=grad)


def eq(t, ref, dtype=None):
    a = t.detach().numpy()
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert a.shape == np.shape(ref)
    if dtype is not None:
        assert t.dtype == dtype


X = rng.standard_normal((4, 5))
TIES = np.array([[2.0, 1.0, 2.0, 0.0, 1.0], [3.0, 3.0, -1.0, 3.0, 0.0]])


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


@pytest.mark.parametrize("k", [0, 1, -1])
def test_tril_triu(k):
    a = rng.standard_normal((2, 3, 4))
    x = T(a, grad=True)
    eq(tl.tril(x, k), np.tril(a, k))
    eq(x.triu(k), np.triu(a, k))
    tl.tril(x, k).sum().backward()
    eq(x.grad, np.tril(np.ones_like(a), k))
    y = x.detach().clone()
    assert y.triu_(k) is y
    eq(y, np.triu(a, k))
    with pytest.raises(RuntimeError, match="^tril: input tensor must have at least 2 dimensions$"):
        tl.tril(tl.ones(3))


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag_diagonal(k):
    v = rng.standard_normal(3)
    m = rng.standard_normal((3, 4))
    eq(tl.diag(T(v), k), np.diag(v, k))
    eq(T(m).diag(k), np.diag(m, k))
    c = rng.standard_normal((3, 4, 5))
    eq(tl.diagonal(T(c), k, 2, 0), np.diagonal(c, k, 2, 0))
    assert gradcheck(lambda a: tl.diagonal(a, k, -1, 0), [T(c, grad=True)])
    assert gradcheck(lambda a: tl.diag(a, k), [T(v, grad=True)])
    assert gradcheck(lambda a: tl.diag(a, k), [T(m, grad=True)])
    with pytest.raises(RuntimeError, match="^diag\\(\\): Supports 1D or 2D tensors. Got 3D$"):
        tl.diag(T(c))


def test_isclose_allclose_equal():
    a = T([1.0, np.nan, np.inf, 1e-9, 1.0])
    b = T([1.0 + 1e-7, np.nan, np.inf, 0.0, 1.1])
    ref = np.isclose(a.numpy(), b.numpy())
    eq(tl.isclose(a, b), ref, tl.bool)
    eq(a.isclose(b, equal_nan=True), np.isclose(a.numpy(), b.numpy(), equal_nan=True))
    assert tl.allclose(a, b) is False
    assert tl.allclose(a[:1], b[:1]) is True
    assert tl.allclose(a, a, equal_nan=True) is True
    assert tl.equal(a[2:], a[2:]) is True and a.equal(a) is False        # NaN != NaN
    assert tl.equal(tl.ones(2), tl.ones(3)) is False
    with pytest.raises(RuntimeError, match="^Double did not match Long$"):
        tl.isclose(a, tl.ones(5, dtype=tl.int64))


@pytest.mark.parametrize("eq_,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk", [(2, 3, 4), (2, 4, 5)]),
    ("...j,j->...", [(2, 3, 4), (4,)]),
    ("ij,kl->jl", [(2, 3), (4, 5)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ij->j", [(3, 4)]),
])
def test_einsum(eq_, shapes):
    arrs = [rng.standard_normal(s) for s in shapes]
    eq(tl.einsum(eq_, *[T(a) for a in arrs]), np.einsum(eq_, *arrs))
    eq(tl.einsum(eq_, [T(a) for a in arrs]), np.einsum(eq_, *arrs))
    assert gradcheck(lambda *xs: tl.einsum(eq_, *xs), [T(a, grad=True) for a in arrs])


def test_einsum_errors():
    with pytest.raises(RuntimeError, match="fewer operands were provided"):
        tl.einsum("ij,jk", tl.ones(2, 3))
    with pytest.raises(RuntimeError, match="subscript j has size 4 for operand 1"):
        tl.einsum("ij,jk->ik", tl.ones(2, 3), tl.ones(4, 5))


UNARY = {"log10": np.log10, "exp2": np.exp2, "expm1": np.expm1, "sinh": np.sinh, "cosh": np.cosh,
         "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "arcsin": np.arcsin, "square": np.square,
         "frac": lambda a: a - np.trunc(a)}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_math(name):
    a = rng.uniform(0.1, 0.9, (3, 4)) * rng.choice([-1, 1], (3, 4))
    if name == "log10":
        a = np.abs(a)
    eq(getattr(tl, name)(T(a)), UNARY[name](a))
    eq(getattr(T(a), name)(), UNARY[name](a))
    assert gradcheck(getattr(tl, name), [T(a, grad=True)])
    assert getattr(tl, name)(T(a.astype(np.float32))).dtype == tl.float32


def test_binary_math_and_nan_to_num():
    a = rng.standard_normal((3, 4))
    b = rng.uniform(0.5, 2.0, 4)
    eq(tl.atan2(T(a), T(b)), np.arctan2(a, b))
    eq(tl.arctan2(T(a), T(b)), np.arctan2(a, b))
    eq(tl.hypot(T(a), T(b)), np.hypot(a, b))
    eq(tl.fmod(T(a), T(b)), np.fmod(a, b))
    eq(tl.fmod(T(a), 0.5), np.fmod(a, 0.5))
    eq(tl.fmod(T([5, -5]), 3), [2, -2], tl.int64)
    assert tl.atan2(T([1, 2]), T([1, 1])).dtype == tl.float32
    for fn in (tl.atan2, tl.hypot, tl.fmod):
        assert gradcheck(fn, [T(a, grad=True), T(b, grad=True)])
    z = T([1.0, np.nan, np.inf, -np.inf])
    big = np.finfo(np.float64).max
    eq(tl.nan_to_num(z), [1.0, 0.0, big, -big])
    eq(z.nan_to_num(2.0, 3.0, -3.0), [1.0, 2.0, 3.0, -3.0])
    eq(tl.nan_to_num(z.float()), np.nan_to_num(z.numpy().astype(np.float32)))


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


def test_broadcast_meshgrid_stack():
    eq(tl.broadcast_to(T([1.0, 2.0]), (3, 2)), np.broadcast_to([1.0, 2.0], (3, 2)))
    p, q = tl.broadcast_tensors(T(np.ones((3, 1))), T(np.ones(4)))
    assert p.shape == q.shape == (3, 4)
    for ind in ("ij", "xy"):
        for got, ref in zip(tl.meshgrid(T([1, 2]), T([3, 4, 5]), indexing=ind),
                            np.meshgrid([1, 2], [3, 4, 5], indexing=ind)):
            eq(got, ref)
    with pytest.warns(UserWarning, match="indexing argument"):
        tl.meshgrid(T([1, 2]), T([3]))
    eq(tl.hstack([T([1, 2]), T([3])]), [1, 2, 3])
    eq(tl.vstack([T([1, 2]), T([3, 4])]), [[1, 2], [3, 4]])
    m = np.arange(6).reshape(2, 3)
    eq(tl.repeat_interleave(T(m), 2), np.repeat(m, 2))
    eq(T(m).repeat_interleave(T([1, 0, 2]), dim=1), np.repeat(m, [1, 0, 2], axis=1))
    eq(tl.repeat_interleave(T(m), 2, dim=0), np.repeat(m, 2, axis=0))
    eq(tl.select(T(m), 1, -1), m[:, -1])
    with pytest.raises(IndexError, match="select\\(\\): index 3 out of range for tensor of size \\[2, 3\\] at "
                                         "dimension 1"):
        T(m).select(1, 3)
    idx = np.array([[2, 0], [1, 1]])
    eq(tl.take_along_dim(T(m), T(idx), 1), np.take_along_axis(m, idx, 1))
    eq(tl.take_along_dim(T(m), T([5, 0])), m.reshape(-1)[[5, 0]])
    eq(tl.diff(T(m), 1, 0), np.diff(m, 1, 0))
    eq(T([1, 4, 9, 16]).diff(n=2), np.diff([1, 4, 9, 16], 2))
    assert T(m).type_as(T([1.0])).dtype == tl.float64


def test_addmm_baddbmm_cross():
    c, a, b = rng.standard_normal(4), rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    eq(tl.addmm(T(c), T(a), T(b), beta=0.5, alpha=2), 0.5 * c + 2 * a @ b)
    eq(tl.addmm(T([np.nan] * 4), T(a), T(b), beta=0), a @ b)
    bc, ba, bb = rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 4))
    eq(T(bc).baddbmm(T(ba), T(bb), alpha=3), bc + 3 * ba @ bb)
    assert gradcheck(lambda *xs: tl.baddbmm(*xs, beta=2), [T(bc, grad=True), T(ba, grad=True), T(bb, grad=True)])
    u, v = rng.standard_normal((4, 3)), rng.standard_normal(3)
    eq(tl.cross(T(u), T(v), dim=-1), np.cross(u, v))
    assert gradcheck(lambda p, q: tl.cross(p, q, dim=1), [T(u, grad=True), T(v, grad=True)])
    with pytest.raises(RuntimeError, match="linalg.cross: inputs dimension 1 must have length 3. Got 4 and 4"):
        tl.cross(tl.ones(3, 4), tl.ones(3, 4), dim=1)


def test_gather_out_of_range_is_torch_runtime_error():
    with pytest.raises(RuntimeError, match="^index 5 is out of bounds for dimension 1 with size 3$"):
        tl.gather(tl.ones(2, 3), 1, T([[0, 5]]))
    with pytest.raises(RuntimeError, match="^index -1 is out of bounds for dimension 0 with size 2$"):
        tl.ones(2, 3).gather(0, T([[-1, 0, 0]]))


# --- sampling: multinomial, bernoulli, random_ ------------------------------------------------------------

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


# --- in-place index updates ----------------------------------------------------------------------------------

def test_index_copy_fill_add_inplace():
    a = rng.standard_normal((3, 4))
    s = rng.standard_normal((3, 2))
    ref = a.copy()
    ref[:, [3, 0]] = s
    eq(T(a).index_copy(1, T([3, 0]), T(s)), ref)
    x = T(a.copy())
    assert x.index_copy_(1, T([3, 0]), T(s)) is x
    eq(x, ref)
    ref = a.copy()
    ref[[2, 0]] = 7.0
    eq(T(a).index_fill(0, T([2, 0]), 7.0), ref)
    eq(T(a.copy()).index_fill_(0, T([2, 0]), T(7.0)), ref)
    ref = a.copy()
    np.add.at(ref, ([1, 1, 0],), 2 * rng.standard_normal((3, 4)) * 0 + 2.0)
    eq(T(a.copy()).index_add_(0, T([1, 1, 0]), T(np.ones((3, 4))), alpha=2), ref)


def test_scatter_inplace_and_masked_scatter():
    a = np.zeros((2, 3))
    idx = np.array([[0, 2], [1, 1]])
    eq(T(a.copy()).scatter_(1, T(idx), T(np.ones((2, 2)))), [[1, 0, 1], [0, 1, 0]])
    eq(T(a.copy()).scatter_add_(1, T(idx), T(np.ones((2, 2)))), [[1, 0, 1], [0, 2, 0]])
    m = np.array([[True, False, True], [False, True, True]])
    src = np.arange(10.0)
    ref = a.copy()
    ref[m] = src[:4]
    eq(T(a).masked_scatter(T(m), T(src)), ref)
    x = T(a.copy())
    eq(x.masked_scatter_(T(m), T(src)), ref)
    g = T(src, grad=True)
    y = T(a, grad=True)
    y.masked_scatter(T(m), g).sum().backward()
    eq(g.grad, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    eq(y.grad, ~m * 1.0)
    assert gradcheck(lambda u, v: u.masked_scatter(T(m[0]), v), [T(rng.standard_normal((2, 3)), True),
                                                                   T(rng.standard_normal(5), True)])


def test_rot90_fliplr_flipud_ravel_against_numpy():
    a = np.arange(24.0).reshape(3, 4, 2)
    for k in (-5, -1, 0, 1, 2, 3, 7):
        for dims in ((0, 1), (1, 0), (2, 0), (-1, -3)):
            t = tl.tensor(a, requires_grad=True)
            r = tl.rot90(t, k, dims)
            np.testing.assert_array_equal(r.detach().numpy(), np.rot90(a, k, dims))
            assert r.grad_fn.name() == "Rot90Backward0"
            w = np.random.default_rng(k + 10).standard_normal(r.shape)
            (r * tl.tensor(w)).sum().backward()
            np.testing.assert_array_equal(t.grad.numpy(), np.rot90(w, -k, dims))     # the adjoint rotates back
    m = tl.tensor(a[:, :, 0])
    np.testing.assert_array_equal(tl.fliplr(m).numpy(), np.fliplr(a[:, :, 0]))
    np.testing.assert_array_equal(m.flipud().numpy(), np.flipud(a[:, :, 0]))
    assert tl.fliplr(m.requires_grad_()).grad_fn.name() == "FlipBackward0"
    np.testing.assert_array_equal(m.t().ravel().detach().numpy(), a[:, :, 0].T.ravel())
    for f, msg in ((lambda: tl.fliplr(tl.ones(3)), "Input must be >= 2-d"),
                   (lambda: tl.rot90(tl.ones(3)), "expected total dims >= 2, but got total dims = 1"),
                   (lambda: tl.rot90(tl.ones(2, 3), 1, (0, 0)), "expected rotation dims to be different")):
        with pytest.raises(RuntimeError, match=msg):
            f()
