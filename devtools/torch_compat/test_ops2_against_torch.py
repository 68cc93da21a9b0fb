"""tensorlib/ops/more_ops.py against torch 2.13, side by side: scatter_reduce / index_reduce (every reduction,
include_self both ways, gradients with zeros and ties), mode, nanmedian, unique_consecutive, histc, histogram,
Tensor.unfold (shape, strides, gradient and double backward), frexp, isin, cartesian_prod, combinations,
block_diag, vander, tril/triu_indices, chain_matmul, atleast_1d/2d/3d: values and indices exactly (float64
gradients to 1e-12), result types, node names and error messages."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(7)


def _t(lib, v, grad=False):
    if isinstance(v, np.ndarray):
        return lib.tensor(v, requires_grad=grad and v.dtype.kind == "f")
    return v


def _flat(out):
    """The tensors of a result (a tensor, a tuple or named tuple of them), in order."""
    if isinstance(out, tuple):
        return [t for o in out for t in _flat(o)]
    return [out]


def _np(t):
    return np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t)


def same(fn, *args, grad=True, rtol=1e-12, nodes=True):
    """fn(lib, *tensors) under tensorlib and torch: equal results (values, dtypes, shapes, result type names and
    fields), equal grad_fn names, and equal gradients of a random weighting of the float outputs."""
    ta = [_t(tl, a, grad) for a in args]
    pa = [_t(torch, a, grad) for a in args]
    ro, po = fn(tl, *ta), fn(torch, *pa)
    assert type(ro).__name__ == type(po).__name__
    if hasattr(po, "_fields"):
        assert ro._fields == po._fields
    rs, ps = _flat(ro), _flat(po)
    assert len(rs) == len(ps)
    for r, p in zip(rs, ps):
        assert tuple(r.shape) == tuple(p.shape), (r.shape, p.shape)
        assert str(r.dtype).split(".")[-1] == str(p.dtype).split(".")[-1]
        np.testing.assert_allclose(_np(r), _np(p), rtol=rtol, atol=0, equal_nan=True)
        if nodes and p.grad_fn is not None and r.requires_grad:
            assert r.grad_fn.name() == p.grad_fn.name()
    leaves = [(x, y) for x, y in zip(ta, pa) if isinstance(y, torch.Tensor) and y.requires_grad]
    outs = [(r, p) for r, p in zip(rs, ps) if p.requires_grad]
    if not (grad and leaves and outs):
        return ro
    w = [RNG.standard_normal(tuple(p.shape)) for _, p in outs]
    gr = tl.autograd.grad([r for r, _ in outs], [x for x, _ in leaves], [tl.tensor(x).to(r.dtype) for x, (r, _) in
                                                                          zip(w, outs)], allow_unused=True)
    gp = torch.autograd.grad([p for _, p in outs], [y for _, y in leaves], [torch.tensor(x).to(p.dtype) for x, (_, p)
                                                                             in zip(w, outs)], allow_unused=True)
    for a, b in zip(gr, gp):
        if b is None:
            assert a is None or not _np(a).any()
            continue
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=1e-12, equal_nan=True)
    return ro


def same_error(fn, *args):
    """The same exception class and message from tensorlib and torch."""
    with pytest.raises(Exception) as pe:
        fn(torch, *[_t(torch, a) for a in args])
    with pytest.raises(type(pe.value)) as te:
        fn(tl, *[_t(tl, a) for a in args])
    assert str(te.value) == str(pe.value)


# --- scatter_reduce / index_reduce ------------------------------------------------------------------

SELF = np.array([[2.0, 0.0, 3.0, 1.0], [0.0, 5.0, 2.0, 2.0], [1.0, 1.0, 4.0, 0.0]])
SRC = np.array([[1.0, 0.0, 3.0, 3.0, 2.0], [2.0, 2.0, 0.0, 0.0, 5.0], [4.0, 1.0, 1.0, 4.0, 0.0]])
IDX = np.array([[0, 0, 2, 3], [1, 1, 1, 3], [3, 2, 0, 0]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_reduce(reduce, include_self, dim):
    idx = IDX if dim else IDX[:, :3] % 3
    src = SRC[:idx.shape[0], :idx.shape[1]]
    same(lambda lib, s, x, i: s.scatter_reduce(dim, i, x, reduce, include_self=include_self), SELF, src, idx)
    same(lambda lib, s, x, i: lib.scatter_reduce(s, dim, i, x, reduce=reduce, include_self=include_self),
         SELF, src, idx)
    # a src larger than the index (only index's extent is read; torch's backward refuses that shape)
    same(lambda lib, s, x, i: s.scatter_reduce(dim, i, x, reduce, include_self=include_self), SELF, SRC, idx,
         grad=False)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_random_ties_and_zeros(reduce):
    for seed in range(6):
        r = np.random.default_rng(seed)
        s = r.integers(-2, 3, (4, 6)).astype(float)
        x = r.integers(-2, 3, (4, 7)).astype(float)
        i = r.integers(0, 6, (4, 7))
        for inc in (True, False):
            if reduce == "prod":   # torch refuses a double backward where two zeros meet; first order only
                x = np.where(x == 0, 1.0, x)
                x[0, 0] = 0.0
            same(lambda lib, a, b, c: a.scatter_reduce(1, c, b, reduce, include_self=inc), s, x, i)


def test_scatter_reduce_integers_and_inplace():
    s = np.array([1, -7, 3, 4])
    x = np.array([4, -4, 5, -3, 2])
    i = np.array([0, 1, 0, 1, 3])
    for reduce in ["sum", "prod", "mean", "amax", "amin"]:
        for inc in (True, False):
            same(lambda lib, a, b, c: a.scatter_reduce(0, c, b, reduce, include_self=inc), s, x, i)
            same(lambda lib, a, b, c: a.clone().scatter_reduce_(0, c, b, reduce, include_self=inc), s, x, i)
    same(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "max"), s, x, i)
    same(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "prod"), np.array(2.0), np.array(5.0), np.array(0),
         nodes=False)      # tensorlib reduces a 0-d input as one element: its node is the reshape's
    for reduce in ("amax", "amin"):      # NaN wins, from src or self
        same(lambda lib, a, b, c: a.scatter_reduce(0, c, b, reduce, include_self=False), np.array([1.0, 2, 3]),
             np.array([NAN, 1.0]), np.array([0, 0]), grad=False)
        same(lambda lib, a, b, c: a.scatter_reduce(0, c, b, reduce), np.array([1.0, NAN, 3]),
             np.array([NAN, 1.0]), np.array([0, 1]), grad=False)
    same(lambda lib, a: lib.mode(a), np.array([True, False, True]))
    same(lambda lib, a: lib.histc(a, 3), np.array([1.0, 2, 3], np.float16))


def test_scatter_reduce_errors():
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "foo"), np.zeros(3), np.ones(1), np.array([0]))
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "sum"), np.zeros(3), np.ones(1), np.array([5]))
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "sum"), np.zeros(3), np.ones(1), np.array([0.0]))
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "sum"), np.zeros(3, np.float32), np.ones(1),
               np.array([0]))
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "sum"), np.zeros((3, 2)), np.ones(1), np.array([0]))
    same_error(lambda lib, a, b, c: a.scatter_reduce(0, c, b, "sum"), np.zeros((3, 2)), np.ones((1, 1)),
               np.array([[0, 1]]))


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_index_reduce(reduce, include_self, dim):
    s = np.array([[2.0, 0.0], [1.0, 3.0], [2.0, 2.0]])
    src = np.array([[1.0, 0.0], [3.0, 4.0], [2.0, 6.0], [2.0, 1.0]]) if dim == 0 else \
        np.array([[1.0, 0.0, 5.0], [3.0, 4.0, 3.0], [2.0, 6.0, 2.0]])
    idx = np.array([0, 2, 0, 2]) if dim == 0 else np.array([1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(lambda lib, a, b, c: a.index_reduce(dim, c, b, reduce, include_self=include_self), s, src, idx)
        same(lambda lib, a, b, c: lib.index_reduce(a, dim, c, b, reduce, include_self=include_self), s, src, idx)
        same(lambda lib, a, b, c: a.clone().index_reduce_(dim, c, b, reduce, include_self=include_self), s, src, idx)


def test_index_reduce_errors_and_warning():
    s, src = np.full((3, 2), 2.0), np.ones((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "sum"), s, src[:1], np.array([0]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), s, src[:1], np.array([[0]]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), s, src[:1], np.array([7]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), s, src[:1], np.array([0.0]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), s, src[:1], np.array([0, 1]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), s, src[:1].astype(np.float32),
                   np.array([0]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "amax"), s, src[:1], np.array([-1]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "amax"), s, np.ones((1, 3)), np.array([0]))
        same_error(lambda lib, a, b, c: a.index_reduce(0, c, b, "prod"), np.array(2.0), np.ones(1), np.array([0]))


# --- mode, nanmedian, unique_consecutive --------------------------------------------------------------

MODE_X = np.array([[3.0, 1, 3, 1, 2], [5, 5, 5, 0, 0], [1, 2, 3, 4, 5], [2, 2, 7, 7, 2]])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_mode(dim, keepdim):
    same(lambda lib, x: lib.mode(x, dim, keepdim), MODE_X)
    same(lambda lib, x: x.mode(dim=dim, keepdim=keepdim), MODE_X)
    same(lambda lib, x: lib.mode(x, dim, keepdim), MODE_X.astype(np.int64))


def test_mode_small_random_rows_and_errors():
    r = np.random.default_rng(3)
    x = r.integers(0, 4, (20, 12)).astype(float)     # up to 16 elements: torch's sort keeps equal values in order
    same(lambda lib, t: lib.mode(t), x)
    same(lambda lib, t: lib.mode(t, 0), x[:16, :3])
    same(lambda lib, t: lib.mode(t), np.array(3.0))
    same(lambda lib, t: lib.mode(t, 1), np.zeros((0, 3)))
    same_error(lambda lib, t: lib.mode(t), np.zeros(0))
    same_error(lambda lib, t: lib.mode(t, 1), np.zeros((2, 0)))


NAN = float("nan")
NM_X = np.array([[1.0, NAN, 3, 2], [4, 4, NAN, 1], [NAN, 2, 2, NAN], [0.5, 7, 1, 3]])


def test_nanmedian():
    same(lambda lib, x: lib.nanmedian(x), NM_X)
    same(lambda lib, x: x.nanmedian(), np.array([1.0, 2, NAN, 4]))
    same(lambda lib, x: lib.nanmedian(x), np.array([NAN, NAN]))
    same(lambda lib, x: lib.nanmedian(x), np.zeros(0))
    for dim in (0, 1, -1):
        for keep in (False, True):
            same(lambda lib, x: lib.nanmedian(x, dim, keep), NM_X)
    same(lambda lib, x: x.nanmedian(1), np.array([[1, 5, 2], [3, 3, 1]]))
    same(lambda lib, x: x.nanmedian(0), np.array([[3.0, 1, 3, 1, 2]]).T)
    same_error(lambda lib, x: lib.nanmedian(x, 1), np.zeros((2, 0)))


def test_unique_consecutive():
    z = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    zz = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3], [1, 1, 2]])
    f = np.array([1.0, 1, NAN, NAN, 2])
    for ri in (False, True):
        for rc in (False, True):
            same(lambda lib, x: lib.unique_consecutive(x, return_inverse=ri, return_counts=rc), z)
            same(lambda lib, x: x.unique_consecutive(return_inverse=ri, return_counts=rc), zz)
            for d in (0, 1, -1):
                same(lambda lib, x: lib.unique_consecutive(x, return_inverse=ri, return_counts=rc, dim=d), zz)
                same(lambda lib, x: lib.unique_consecutive(x, ri, rc, d), zz)     # torch reads these swapped
            same(lambda lib, x: lib.unique_consecutive(x, return_inverse=ri, return_counts=rc), f, grad=False)
    # torch gives a float result a grad_fn that refuses backward; tensorlib's (as its unique) is not differentiable
    same(lambda lib, x: lib.unique_consecutive(x, return_inverse=True, return_counts=True), np.zeros(0), grad=False)
    same(lambda lib, x: lib.unique_consecutive(x, return_inverse=True, return_counts=True, dim=0), np.zeros((0, 3)),
         grad=False)
    same_error(lambda lib, x: lib.unique_consecutive(x, dim=3), np.zeros((2, 3)))


# --- histc, histogram ------------------------------------------------------------------------------

HX = np.array([1.0, 2, 1, 4, 2.5, 3.9999, -1, 5])


def test_histc():
    same(lambda lib, x: lib.histc(x, bins=4, min=0, max=4), HX)
    same(lambda lib, x: x.histc(4), np.array([1.0, 2, 1]))
    same(lambda lib, x: lib.histc(x, 4), np.array([2.0, 2]))
    same(lambda lib, x: lib.histc(x, 4), np.zeros(0))
    same(lambda lib, x: lib.histc(x, 10, 0, 1), np.array([0.1, 0.2, 0.3, 0.7, 1.0]))
    same(lambda lib, x: lib.histc(x, 2, 0, 3), np.array([1.0, NAN, 2]))
    for dt in (np.float32, np.float64):     # torch's float rule at the edges, in the input's precision
        x = np.linspace(-1, 2, 301).astype(dt)
        for bins in (3, 7, 10, 100):
            same(lambda lib, t: lib.histc(t, bins, -0.5, 1.5), x)
            same(lambda lib, t: lib.histc(t, bins), x)
        same(lambda lib, t: lib.histc(t, 13, -0.3, 1.1), RNG.uniform(-1, 2, 5000).astype(dt))


def test_histc_errors():
    same_error(lambda lib, x: lib.histc(x, 4), np.array([1, 2]))
    same_error(lambda lib, x: lib.histc(x, 0), np.array([1.0, 2]))
    same_error(lambda lib, x: lib.histc(x, 4, 3, 1), np.array([1.0, 2]))
    same_error(lambda lib, x: lib.histc(x, 4), np.array([1.0, NAN]))
    same_error(lambda lib, x: lib.histc(x, 4), np.array([1.0, float("inf")]))
    same_error(lambda lib, x: lib.histc(x, 4, min=NAN), np.array([1.0, 2.0]))


def test_histogram():
    x = np.array([1.0, 2, 1])
    # torch's histogram returns a grad_fn that refuses backward; tensorlib's result is not differentiable
    same(lambda lib, t, w: lib.histogram(t, bins=4, range=(0.0, 3.0), weight=w), x, np.array([1.0, 2.0, 4.0]),
         grad=False)
    same(lambda lib, t: lib.histogram(t, bins=4), x, grad=False)
    same(lambda lib, t, b: lib.histogram(t, bins=b, density=True), x, np.array([0.0, 1, 2.5, 3]), grad=False)
    same(lambda lib, t: t.histogram(3, density=True), x, grad=False)
    same(lambda lib, t: lib.histogram(t, 2), np.array([[1.0, 2], [3, 4]]), grad=False)
    same(lambda lib, t: lib.histogram(t, 4), np.array([2.0, 2]), grad=False)
    same(lambda lib, t: lib.histogram(t, 4), np.zeros(0), grad=False)
    for dt in (np.float32, np.float64):
        v = np.linspace(-1, 2, 301).astype(dt)
        for bins in (3, 7, 10, 100):
            same(lambda lib, t: lib.histogram(t, bins, range=(-0.5, 1.5)), v, grad=False)
            same(lambda lib, t: lib.histogram(t, bins), v, grad=False)
        same(lambda lib, t, b: lib.histogram(t, b), RNG.uniform(-1, 2, 3000).astype(dt),
             np.sort(RNG.uniform(-0.5, 1.5, 9)).astype(dt), grad=False)


def test_histogram_errors():
    same_error(lambda lib, t: lib.histogram(t, 4), np.array([1, 2]))
    same_error(lambda lib, t: lib.histogram(t, 0), np.array([1.0, 2]))
    same_error(lambda lib, t: lib.histogram(t, 4, range=(3.0, 1.0)), np.array([1.0, 2]))
    same_error(lambda lib, t, w: lib.histogram(t, 4, weight=w), np.array([1.0, 2]), np.array([1.0]))
    same_error(lambda lib, t, b: lib.histogram(t, b), np.array([1.0, 2]), np.array([0.0, 3.0], np.float32))


# --- Tensor.unfold ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dim,size,step", [(2, 2, 1), (2, 3, 2), (0, 1, 1), (1, 3, 3), (-1, 4, 1), (2, 0, 1),
                                           (1, 2, 5)])
def test_unfold(dim, size, step):
    x = RNG.standard_normal((2, 3, 4))
    r = same(lambda lib, t: t.unfold(dim, size, step), x)
    assert r.stride() == torch.tensor(x).unfold(dim, size, step).stride()
    if size <= (3, 2, 4)[dim]:      # a strided input
        same(lambda lib, t: t.transpose(0, 1).unfold(dim, size, step) * 2, x)


def test_unfold_double_backward_scalar_and_errors():
    x = tl.tensor(RNG.standard_normal((2, 5)), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: t.unfold(1, 3, 1) ** 2, (x,))
    g = tl.autograd.grad(x.unfold(1, 3, 1), x, tl.ones(2, 3, 3, dtype=tl.float64, requires_grad=True),
                         create_graph=True)[0]
    assert g.grad_fn.name() == "UnfoldBackwardBackward0"
    same(lambda lib, t: t.unfold(0, 1, 1), np.array(5.0))
    same_error(lambda lib, t: t.unfold(2, 5, 1), np.zeros((2, 3, 4)))
    same_error(lambda lib, t: t.unfold(2, 2, 0), np.zeros((2, 3, 4)))
    same_error(lambda lib, t: t.unfold(3, 2, 1), np.zeros((2, 3, 4)))
    same_error(lambda lib, t: t.unfold(2, -1, 1), np.zeros((2, 3, 4)))
    same_error(lambda lib, t: t.unfold(0, 2, 1), np.array(5.0))


# --- frexp, isin -----------------------------------------------------------------------------------

def test_frexp():
    x = np.array([0.0, 1.0, -3.5, 8, float("inf"), NAN, 1e-300, -0.0, 3e10])
    same(lambda lib, t: lib.frexp(t), x)
    same(lambda lib, t: t.frexp(), np.array([0.0, 1.0, -3.5, 1e-40, 7.0], np.float32))
    same(lambda lib, t: lib.frexp(t), np.array([1.5, -2.25], np.float16), grad=False)
    same_error(lambda lib, t: lib.frexp(t), np.array([1, 2]))


def test_isin():
    e = np.array([[1, 2], [3, 4]])
    same(lambda lib, a, b: lib.isin(a, b), e, np.array([2, 3]))
    same(lambda lib, a, b: lib.isin(a, b, invert=True), e, np.array([2, 3]))
    same(lambda lib, a, b: lib.isin(a, b, assume_unique=True), np.array([1, 5, 2]), np.array([5, 1]))
    same(lambda lib, a: lib.isin(a, 2), e)
    same(lambda lib, b: lib.isin(3, b), np.array([1, 3]))
    same(lambda lib, a, b: lib.isin(a, b), np.array([1.0, 2, NAN]), np.array([2, 3]))
    same(lambda lib, a, b: lib.isin(a, b), np.array([NAN, 1.0]), np.array([NAN]))
    same_error(lambda lib: lib.isin(1, 2))


# --- composites -----------------------------------------------------------------------------------

def test_cartesian_prod_and_combinations():
    a, b, c = np.array([1.0, 2]), np.array([3.0, 4, 5]), np.array([-1.0, 0.5])
    same(lambda lib, x, y: lib.cartesian_prod(x, y), a, b)
    same(lambda lib, x, y, z: lib.cartesian_prod(x, y, z), a, b, c)
    same(lambda lib, x: lib.cartesian_prod(x), a)
    same_error(lambda lib, x: lib.cartesian_prod(x), np.ones((2, 2)))
    same_error(lambda lib: lib.cartesian_prod())
    same_error(lambda lib, x, y: lib.cartesian_prod(x, y), np.array([1, 2]), np.array([1.5]))
    v = np.array([1.0, 2.0, 3.0, 4.5])
    for r in range(0, 6):
        for rep in (False, True):
            same(lambda lib, x: lib.combinations(x, r, rep), v)
    same(lambda lib, x: lib.combinations(x), np.array([1, 2, 3]))
    same(lambda lib, x: lib.combinations(x, with_replacement=True), np.zeros(0))
    same_error(lambda lib, x: lib.combinations(x), np.ones((2, 2)))
    same_error(lambda lib, x: lib.combinations(x, -1), np.ones(2))


def test_block_diag():
    same(lambda lib, a, b, c, d: lib.block_diag(a, b, c, d), np.array([[1.0, 2]]), np.array(3.0),
         np.array([4.0, 5]), np.ones((2, 0)))
    same(lambda lib, a, b: lib.block_diag(a, b), RNG.standard_normal((2, 3)), RNG.standard_normal((3, 1)))
    same(lambda lib, a, b: lib.block_diag(a, b), np.array([[1, 2]]), np.array([[0.5], [1.5]]))
    same(lambda lib, a, b: lib.block_diag(a, b.float()), RNG.standard_normal((2, 2)), RNG.standard_normal((1, 2)))
    same(lambda lib: lib.block_diag())
    same_error(lambda lib, a: lib.block_diag(a), np.ones((2, 2, 2)))


def test_vander():
    x = np.array([1.0, 2, 3, -0.5])
    for n in (None, 0, 1, 2, 5):
        for inc in (False, True):   # torch 2.13's vander backward fails (its in-place cumprod): values only
            same(lambda lib, t: lib.vander(t, N=n, increasing=inc), x, grad=False)
    same(lambda lib, t: lib.vander(t), np.array([1, 2, 3], np.int32))
    same(lambda lib, t: lib.vander(t), np.array([True, False]))
    same_error(lambda lib, t: lib.vander(t), np.ones((2, 2)))
    same_error(lambda lib, t: lib.vander(t, N=-1), np.ones(2))


def test_tril_triu_indices():
    for row, col in [(3, 4), (4, 3), (0, 3), (3, 0), (1, 1), (5, 5)]:
        for off in (-7, -2, -1, 0, 1, 2, 5):
            for name in ("tril_indices", "triu_indices"):
                same(lambda lib: getattr(lib, name)(row, col, off))
    same(lambda lib: lib.tril_indices(3, 3, dtype=lib.int32))
    same_error(lambda lib: lib.tril_indices(-1, 3))
    same_error(lambda lib: lib.triu_indices(3, -1))
    same_error(lambda lib: lib.tril_indices(3, 3, dtype=lib.float32))


def test_chain_matmul():
    from tensorlib.ops import more_ops
    more_ops._chain_matmul_warned = False   # (a warning once per process, as torch's: an earlier test may have had it)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        shapes = [(2, 3), (3, 4), (4, 1), (1, 5), (5, 2)]
        ms = [RNG.standard_normal(s) for s in shapes]
        for k in range(1, 6):
            same(lambda lib, *m: lib.chain_matmul(*m), *ms[:k])
        same(lambda lib, a, b, c: lib.chain_matmul(a, b, c), RNG.standard_normal((10, 2)),
             RNG.standard_normal((2, 9)), RNG.standard_normal((9, 1)))
    assert any("torch.chain_matmul is deprecated" in str(x.message) for x in w)
    same_error(lambda lib: lib.chain_matmul())
    same_error(lambda lib, a, b: lib.chain_matmul(a, b), np.ones((2, 3)), np.ones(4))


@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(name):
    for x in (np.array(1.0), np.ones(2), np.ones((2, 3)), np.ones((2, 3, 4)), np.ones((1, 2, 3, 4))):
        same(lambda lib, t: getattr(lib, name)(t), x)
    same(lambda lib, a, b: getattr(lib, name)(a, b), np.array(1.0), np.ones((2, 2)))
    same(lambda lib, a, b: getattr(lib, name)([a, b]), np.array(1.0), np.ones(3))
    same(lambda lib, a: getattr(lib, name)((a,)), np.array(2.0))
    assert getattr(tl, name)() == ()
    same_error(lambda lib: getattr(lib, name)(1.0))
    x = tl.ones(2, 3, 4, 5)
    assert getattr(tl, name)(x) is x


# --- profiler names -------------------------------------------------------------------------------

def _top_names(lib, fn, args):
    """The names of the outermost events a profile of fn(lib, *args) records, in order."""
    ts = [_t(lib, a) for a in args]
    if lib is torch:
        with torch.profiler.profile() as p:
            fn(lib, *ts)
    else:
        import profiler
        with profiler.profile() as p:
            fn(lib, *ts)
    return [e.name for e in p.events() if getattr(e, "cpu_parent", None) is None]


PROFILED = {
    "cartesian_prod": (lambda lib, x: lib.cartesian_prod(x, x), [np.ones(3)]),
    "combinations": (lambda lib, x: lib.combinations(x), [np.ones(3)]),
    "vander": (lambda lib, x: lib.vander(x), [np.ones(3)]),
    "atleast_2d": (lambda lib, x: lib.atleast_2d(x, x), [np.ones(3)]),
    "chain_matmul": (lambda lib, x: lib.chain_matmul(x, x, x), [np.ones((2, 2))]),
    "block_diag": (lambda lib, x: lib.block_diag(x, x), [np.ones((2, 2))]),
    "tril_indices": (lambda lib: lib.tril_indices(3, 3), []),
    "unfold": (lambda lib, x: x.unfold(0, 2, 1), [np.ones(3)]),
    "histc": (lambda lib, x: lib.histc(x, 3), [np.ones(3)]),
    "histogram": (lambda lib, x: lib.histogram(x, 3), [np.ones(3)]),
    "mode": (lambda lib, x: lib.mode(x), [np.ones(3)]),
    "nanmedian": (lambda lib, x: lib.nanmedian(x, 0), [np.ones(3)]),
    "isin": (lambda lib, x: lib.isin(x, x), [np.ones(3)]),
    "frexp": (lambda lib, x: lib.frexp(x), [np.ones(3)]),
    "unique_consecutive": (lambda lib, x: lib.unique_consecutive(x), [np.ones(3)]),
    "scatter_reduce": (lambda lib, x, i: x.scatter_reduce(0, i, x, "prod"), [np.ones(3), np.array([0, 1, 1])]),
    "index_reduce": (lambda lib, x, i: x.index_reduce(0, i, x, "prod"), [np.ones(3), np.array([0, 1, 1])]),
}


@pytest.mark.parametrize("name", sorted(PROFILED))
def test_profiled_as_torchs_op(name):
    fn, args = PROFILED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, ours = _top_names(torch, fn, args), _top_names(tl, fn, args)
    assert "aten::" + name in theirs
    assert "aten::" + name in ours, ours
