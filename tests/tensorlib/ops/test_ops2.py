"""tensorlib/ops/more_ops.py against NumPy references and identities: scatter_reduce / index_reduce against a
loop over the index, mode / nanmedian / unique_consecutive against their definitions, histc / histogram against
numpy.histogram, unfold against sliding_window_view (a view, writing through), frexp, isin, and the composites
against itertools and NumPy; gradients by gradcheck in float64; composites inside torch's profiler regions."""
from __future__ import annotations

import itertools
import warnings
from collections import Counter

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.dispatch as D
from tensorlib.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(11)
REDUCES = ["sum", "prod", "mean", "amax", "amin"]


def _loop_scatter_reduce(a, dim, idx, src, reduce, include_self):
    """The definition: each src element combined into self at (its position, index's value along dim)."""
    out = a.copy()
    groups: dict = {}
    for pos in itertools.product(*[range(n) for n in idx.shape]):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        groups.setdefault(tuple(tgt), []).append(src[pos])
    for tgt, vals in groups.items():
        vals = ([a[tgt]] if include_self else []) + vals
        if reduce == "sum":
            out[tgt] = sum(vals)
        elif reduce == "prod":
            out[tgt] = np.prod(vals)
        elif reduce == "amax":
            out[tgt] = max(vals)
        elif reduce == "amin":
            out[tgt] = min(vals)
        else:
            out[tgt] = sum(vals) / len(vals) if a.dtype.kind == "f" else sum(vals) // len(vals)
    return out


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_scatter_reduce_is_the_loop(reduce, include_self, dtype):
    a = RNG.integers(-3, 4, (4, 5)).astype(dtype)
    src = RNG.integers(-3, 4, (4, 6)).astype(dtype)
    for dim in (0, 1):
        idx = RNG.integers(0, a.shape[dim], (3, 4))
        got = tl.tensor(a).scatter_reduce(dim, tl.tensor(idx), tl.tensor(src), reduce, include_self=include_self)
        np.testing.assert_allclose(got.numpy(), _loop_scatter_reduce(a, dim, idx, src, reduce, include_self))
        t = tl.tensor(a)
        assert t.scatter_reduce_(dim, tl.tensor(idx), tl.tensor(src), reduce, include_self=include_self) is t
        np.testing.assert_array_equal(t.numpy(), got.numpy())


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_gradients(reduce, include_self):
    a = tl.tensor(RNG.uniform(0.5, 2, (3, 4)), requires_grad=True)
    s = tl.tensor(RNG.uniform(0.5, 2, (3, 4)), requires_grad=True)
    i = tl.tensor([[0, 1, 0, 3], [2, 2, 2, 2], [1, 0, 3, 1]])
    assert gradcheck(lambda x, y: x.scatter_reduce(1, i, y, reduce, include_self=include_self), (a, s))
    if reduce != "prod":
        assert gradgradcheck(lambda x, y: x.scatter_reduce(1, i, y, reduce, include_self=include_self), (a, s))


def test_scatter_reduce_prod_gradient_with_zeros():
    """torch's exclusive products: a zero in self or a target's only zero in src gets the product of the others."""
    a = tl.tensor([[0.0, 2.0, 3.0]], dtype=tl.float64, requires_grad=True)
    s = tl.tensor([[4.0, 0.0, 5.0, 0.0]], dtype=tl.float64, requires_grad=True)
    i = tl.tensor([[0, 1, 2, 2]])
    y = a.scatter_reduce(1, i, s, "prod")
    np.testing.assert_array_equal(y.detach().numpy(), [[0.0, 0.0, 0.0]])
    ga, gs = tl.autograd.grad(y.sum(), (a, s))
    np.testing.assert_array_equal(ga.numpy(), [[4.0, 0.0, 0.0]])      # 2's target holds src's 0
    np.testing.assert_array_equal(gs.numpy(), [[0.0, 2.0, 0.0, 15.0]])
    assert gradcheck(lambda x, z: x.scatter_reduce(1, i, z, "prod"), (a, s))


def test_scatter_reduce_amax_ties_share_the_gradient():
    a = tl.tensor([2.0, 1.0], requires_grad=True)
    s = tl.tensor([2.0, 2.0, 0.5], requires_grad=True)
    y = a.scatter_reduce(0, tl.tensor([0, 0, 1]), s, "amax")
    ga, gs = tl.autograd.grad(y.sum(), (a, s))
    np.testing.assert_allclose(ga.numpy(), [1 / 3, 1.0])
    np.testing.assert_allclose(gs.numpy(), [1 / 3, 1 / 3, 0.0])
    assert y.grad_fn.name() == "ScatterReduceBackward0"


def test_scatter_reduce_errors():
    with pytest.raises(RuntimeError, match="reduce argument must be either sum, prod, mean, amax or amin, got foo"):
        tl.zeros(3).scatter_reduce(0, tl.tensor([0]), tl.ones(1), "foo")
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with size 3"):
        tl.zeros(3).scatter_reduce(0, tl.tensor([5]), tl.ones(1), "sum")
    with pytest.raises(RuntimeError, match="Expected self.dtype to be equal to src.dtype"):
        tl.zeros(3).scatter_reduce(0, tl.tensor([0]), tl.ones(1, dtype=tl.float64), "sum")


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_is_scatter_reduce_along_dim(reduce, include_self):
    a = RNG.uniform(-2, 2, (4, 3))
    src = RNG.uniform(-2, 2, (5, 3))
    idx = np.array([3, 0, 3, 1, 3])
    full = np.broadcast_to(idx[:, None], src.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tl.tensor(a).index_reduce(0, tl.tensor(idx), tl.tensor(src), reduce, include_self=include_self)
        np.testing.assert_allclose(got.numpy(), _loop_scatter_reduce(a, 0, full, src, reduce, include_self),
                                   rtol=1e-12)
        x, s = tl.tensor(a, requires_grad=True), tl.tensor(src, requires_grad=True)
        assert gradcheck(lambda u, v: u.index_reduce(0, tl.tensor(idx), v, reduce, include_self=include_self), (x, s))
        y = tl.index_reduce(x, 0, tl.tensor(idx), s, reduce)
        assert y.grad_fn.name() == "IndexReduceBackward0"


def test_index_reduce_warns_once_as_beta():
    import tensorlib.ops.more_ops as m
    m._index_reduce_warned = False
    with pytest.warns(UserWarning, match="index_reduce\\(\\) is in beta"):
        tl.ones(2).index_reduce(0, tl.tensor([0]), tl.ones(1), "prod")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.ones(2).index_reduce(0, tl.tensor([0]), tl.ones(1), "prod")


def _mode_ref(row):
    c = Counter(row.tolist())
    best = max(c.values())
    v = min(k for k, n in c.items() if n == best)
    return v, max(i for i, x in enumerate(row) if x == v)


def test_mode_is_the_smallest_most_frequent_and_its_last_index():
    x = RNG.integers(0, 5, (30, 40)).astype(np.float64)
    r = tl.mode(tl.tensor(x))
    assert type(r).__name__ == "mode" and r._fields == ("values", "indices")
    for row, v, i in zip(x, r.values.numpy(), r.indices.numpy()):
        assert (v, i) == _mode_ref(row)
    r0 = tl.tensor(x).mode(0, keepdim=True)
    assert tuple(r0.values.shape) == (1, 40)
    for col, v, i in zip(x.T, r0.values.numpy()[0], r0.indices.numpy()[0]):
        assert (v, i) == _mode_ref(col)
    t = tl.tensor(RNG.uniform(-1, 1, (3, 5)), requires_grad=True)
    assert gradcheck(lambda u: u.mode(1).values, (t,))
    with pytest.raises(IndexError, match="mode\\(\\): Expected reduction dim 1 to have non-zero size."):
        tl.zeros(2, 0).mode(1)


def test_nanmedian_ignores_nan():
    x = RNG.uniform(-1, 1, (6, 7))
    x[RNG.random(x.shape) < 0.3] = np.nan
    x[2] = np.nan
    flat = np.sort(x[~np.isnan(x)])
    assert tl.nanmedian(tl.tensor(x)).item() == flat[(flat.size - 1) // 2]
    r = tl.tensor(x).nanmedian(1)
    for k, (row, v, i) in enumerate(zip(x, r.values.numpy(), r.indices.numpy())):
        ok = np.sort(row[~np.isnan(row)])
        if ok.size:
            assert v == ok[(ok.size - 1) // 2] and row[i] == v
        else:
            assert np.isnan(v) and np.isnan(row[i])
    assert np.isnan(tl.nanmedian(tl.tensor([np.nan, np.nan])).item())
    t = tl.tensor(np.where(np.isnan(x), RNG.uniform(2, 3, x.shape), x), requires_grad=True)     # no ties
    assert gradcheck(lambda u: tl.nanmedian(u, 0).values, (t,))
    assert gradcheck(lambda u: u.nanmedian(), (t,))
    assert tl.nanmedian(t).grad_fn.name() == "NanmedianBackward0"
    assert tl.nanmedian(t, 1).values.grad_fn.name() == "NanmedianBackward1"


def test_unique_consecutive_is_groupby():
    z = RNG.integers(0, 3, 40)
    vals, inv, counts = tl.unique_consecutive(tl.tensor(z), return_inverse=True, return_counts=True)
    groups = [(k, len(list(g))) for k, g in itertools.groupby(z.tolist())]
    assert vals.tolist() == [k for k, _ in groups] and counts.tolist() == [n for _, n in groups]
    np.testing.assert_array_equal(vals.numpy()[inv.numpy()], z)
    rows = np.array([[1, 2], [1, 2], [0, 0], [1, 2], [1, 2], [1, 2]])
    v, i, c = tl.tensor(rows).unique_consecutive(return_inverse=True, return_counts=True, dim=0)
    assert v.tolist() == [[1, 2], [0, 0], [1, 2]] and i.tolist() == [0, 0, 1, 2, 2, 2] and c.tolist() == [2, 1, 3]
    assert tl.unique_consecutive(tl.tensor([1.0, np.nan, np.nan])).shape == (3,)     # NaN equals nothing


def test_histc_matches_numpy_histogram():
    x = RNG.uniform(-2, 3, 1000)
    h = tl.histc(tl.tensor(x), bins=7, min=-1, max=2)
    np.testing.assert_array_equal(h.numpy(), np.histogram(x, 7, (-1, 2))[0])
    np.testing.assert_array_equal(tl.tensor(x).histc(9).numpy(), np.histogram(x, 9)[0])
    assert tl.histc(tl.tensor([2.0, 2.0]), 4).tolist() == [0, 0, 2, 0]   # one value: [v-1, v+1]
    assert tl.histc(tl.tensor([0.0, 1.0, np.nan]), 2, 0, 1).tolist() == [1, 1]     # max is in the last bin
    with pytest.raises(RuntimeError, match="torch.histc: max must be larger than min"):
        tl.histc(tl.ones(2), 3, 2, 1)
    with pytest.raises(NotImplementedError, match="\"histogram_cpu\" not implemented for 'Long'"):
        tl.histc(tl.tensor([1, 2]))


def test_histogram_matches_numpy_histogram():
    x = RNG.uniform(-2, 3, 500)
    w = RNG.uniform(0, 1, 500)
    for bins in (5, np.array([-1.5, 0.0, 0.2, 2.5])):
        b = bins if isinstance(bins, int) else tl.tensor(bins)
        for density in (False, True):
            r = tl.histogram(tl.tensor(x), b, weight=tl.tensor(w), density=density)
            ref = np.histogram(x, bins, weights=w, density=density)
            assert r._fields == ("hist", "bin_edges")
            np.testing.assert_allclose(r.hist.numpy(), ref[0], rtol=1e-12)
            np.testing.assert_allclose(r.bin_edges.numpy(), ref[1], rtol=1e-12)
    r = tl.tensor(x).histogram(4, range=(0.0, 1.0))
    np.testing.assert_array_equal(r.hist.numpy(), np.histogram(x, 4, (0, 1))[0])


@pytest.mark.parametrize("dim,size,step", [(0, 2, 1), (1, 3, 2), (2, 4, 1), (-1, 1, 3), (1, 0, 1)])
def test_unfold_is_a_strided_window_view(dim, size, step):
    x = RNG.standard_normal((3, 5, 4))
    u = tl.tensor(x).unfold(dim, size, step)
    ref = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
    ref = np.take(ref, range(0, ref.shape[dim % 3], step), axis=dim % 3)
    np.testing.assert_array_equal(u.numpy(), ref)
    t = tl.tensor(x, requires_grad=True)
    assert gradcheck(lambda v: v.unfold(dim, size, step), (t,))


def test_unfold_writes_through_and_double_backward():
    base = tl.arange(6.0)
    w = base.unfold(0, 2, 2)
    w[1, 0] = 100.0
    assert base.tolist() == [0.0, 1.0, 100.0, 3.0, 4.0, 5.0]
    assert tuple(w.stride()) == (2, 1)
    t = tl.tensor(RNG.standard_normal((2, 6)), requires_grad=True)
    assert gradgradcheck(lambda v: v.unfold(1, 3, 2) ** 2, (t,))
    y = t.unfold(1, 3, 1)
    assert y.grad_fn.name() == "UnfoldBackward0"
    g = tl.autograd.grad((y * y).sum(), t, create_graph=True)[0]
    assert g.requires_grad
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 1 is 6 but size is 7"):
        t.unfold(1, 7, 1)
    with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
        t.unfold(1, 2, 0)


def test_frexp_identity_and_gradient():
    x = np.concatenate([RNG.standard_normal(20) * 10.0 ** RNG.integers(-30, 30, 20), [0.0, -0.0, 1.0, 0.5]])
    m, e = tl.frexp(tl.tensor(x))
    assert m.dtype == tl.float64 and e.dtype == tl.int32
    np.testing.assert_array_equal(m.numpy() * 2.0 ** e.numpy(), x)
    nm, ne = np.frexp(x)
    np.testing.assert_array_equal(m.numpy(), nm)
    np.testing.assert_array_equal(e.numpy(), ne)
    t = tl.tensor(RNG.uniform(0.1, 30, 6), requires_grad=True)
    assert gradcheck(lambda u: tl.frexp(u).mantissa, (t,))
    with pytest.raises(RuntimeError, match="only supports floating-point dtypes"):
        tl.tensor([1, 2]).frexp()


def test_isin_matches_numpy():
    a = RNG.integers(0, 10, (4, 5))
    b = RNG.integers(0, 10, 6)
    for invert in (False, True):
        np.testing.assert_array_equal(tl.isin(tl.tensor(a), tl.tensor(b), invert=invert).numpy(),
                                      np.isin(a, b, invert=invert))
    assert tl.isin(3, tl.tensor([1, 3])).item() is True
    assert tl.isin(tl.tensor([1, 2]), 2).tolist() == [False, True]
    with pytest.raises(TypeError, match="isin\\(\\) received an invalid combination of arguments"):
        tl.isin(1, 2)


def test_cartesian_prod_and_combinations_are_itertools():
    a, b, c = [1.0, 2.0], [3.0, 4.0, 5.0], [7.0, 8.0]
    assert tl.cartesian_prod(tl.tensor(a), tl.tensor(b), tl.tensor(c)).tolist() == \
        [list(p) for p in itertools.product(a, b, c)]
    v = [1.0, 2.0, 3.0, 4.0]
    for r in range(1, 5):
        assert tl.combinations(tl.tensor(v), r).tolist() == [list(p) for p in itertools.combinations(v, r)]
        assert tl.combinations(tl.tensor(v), r, with_replacement=True).tolist() == \
            [list(p) for p in itertools.combinations_with_replacement(v, r)]
    assert tuple(tl.combinations(tl.tensor(v), 0).shape) == (0,)
    assert tuple(tl.combinations(tl.tensor(v), 5).shape) == (0, 5)
    x, y = tl.tensor(a, requires_grad=True, dtype=tl.float64), tl.tensor(b, requires_grad=True, dtype=tl.float64)
    assert gradcheck(lambda p, q: tl.cartesian_prod(p, q), (x, y))
    assert gradcheck(lambda p: tl.combinations(p, 3, True), (y,))


def test_block_diag_vander_tri_indices():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 1))
    got = tl.block_diag(tl.tensor(a), tl.tensor(b), tl.tensor(5.0), tl.tensor([1.0, 2.0]))
    ref = np.zeros((7, 7))
    ref[:2, :3], ref[2:5, 3:4], ref[5, 4], ref[6, 5:7] = a, b, 5.0, [1.0, 2.0]
    np.testing.assert_array_equal(got.numpy(), ref)
    assert tl.block_diag(tl.tensor([[1, 2]]), tl.tensor([[0.5]])).dtype == tl.float32     # promoted
    ta, tb = tl.tensor(a, requires_grad=True), tl.tensor(b[:, 0], requires_grad=True)
    assert gradcheck(lambda p, q: tl.block_diag(p, q), (ta, tb))
    assert tl.block_diag(ta, tb).grad_fn.name() == "BlockDiagBackward0"
    x = RNG.standard_normal(5)
    for n in (None, 1, 3, 6):
        for inc in (False, True):
            np.testing.assert_allclose(tl.vander(tl.tensor(x), n, inc).numpy(), np.vander(x, n, inc), rtol=1e-12)
    assert gradcheck(lambda p: tl.vander(p, 4), (tl.tensor(x, requires_grad=True),))
    assert tl.vander(tl.tensor([1, 2], dtype=tl.int32)).dtype == tl.int64
    for row, col, off in [(3, 4, 0), (4, 3, -1), (5, 5, 2), (0, 3, 0), (3, 3, -9)]:
        np.testing.assert_array_equal(tl.tril_indices(row, col, off).numpy(), np.stack(np.tril_indices(row, off, col)))
        np.testing.assert_array_equal(tl.triu_indices(row, col, off).numpy(), np.stack(np.triu_indices(row, off, col)))
    assert tl.tril_indices(3, 3, dtype=tl.int32).dtype == tl.int32


def test_chain_matmul_and_atleast():
    ms = [RNG.standard_normal(s) for s in [(2, 3), (3, 4), (4, 1), (1, 5)]]
    with pytest.warns(UserWarning, match="torch.chain_matmul is deprecated") if _first_chain() else \
            warnings.catch_warnings():
        got = tl.chain_matmul(*[tl.tensor(m) for m in ms])
    np.testing.assert_allclose(got.numpy(), np.linalg.multi_dot(ms), rtol=1e-12)
    ts = [tl.tensor(m, requires_grad=True) for m in ms]
    assert gradcheck(lambda *xs: tl.chain_matmul(*xs), tuple(ts))
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        fn, ref = getattr(tl, name), getattr(np, name)
        for shape in [(), (3,), (2, 3), (2, 3, 4)]:
            x = RNG.standard_normal(shape)
            np.testing.assert_array_equal(fn(tl.tensor(x)).numpy(), ref(x))
        out = fn(tl.tensor(1.0), tl.ones(2))
        assert isinstance(out, tuple) and [tuple(o.shape) for o in out] == [r.shape for r in ref(1.0, np.ones(2))]


def _first_chain():
    import tensorlib.ops.more_ops as m
    return not m._chain_matmul_warned


class _Ranges(D.Hook):
    def __init__(self):
        self.names = []

    def range_enter(self, name, kind):
        self.names.append((name, kind))
        return name

    def range_exit(self, token):
        pass


def test_composites_run_in_torchs_regions():
    h = _Ranges()
    D.add_hook(h)
    try:
        x = tl.tensor([1.0, 2.0])
        tl.cartesian_prod(x, x)
        tl.combinations(x)
        tl.vander(x)
        tl.atleast_2d(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tl.chain_matmul(tl.ones(2, 2), tl.ones(2, 2))
    finally:
        D.remove_hook(h)
    for name in ("cartesian_prod", "combinations", "vander", "atleast_2d", "chain_matmul"):
        assert (name, "op") in h.names
