"""The functions added for torch parity (sort/topk/argsort, tril/triu/diag, isclose/allclose/equal, einsum,
more math, broadcasting and stacking helpers, unique/median/searchsorted...) against torch itself:
values, dtypes, shapes, gradients and error messages."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402

rng = np.random.default_rng(0)


def both(a, grad=False):
    a = np.asarray(a)
    return (tl.tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f"),
            torch.tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f"))


def same(o, t, tol=1e-12):
    if isinstance(t, (tuple, list)):
        assert len(o) == len(t)
        for a, b in zip(o, t):
            same(a, b, tol)
        return
    if isinstance(t, bool):
        assert o is t or o == t and isinstance(o, bool)
        return
    assert isinstance(o, tl.Tensor)
    assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (o.dtype, t.dtype)
    assert tuple(o.shape) == tuple(t.shape), (o.shape, t.shape)
    np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol, equal_nan=True)


def same_backward(ro, rt, leaves, tol=1e-12):
    """The results, their backward node names, and the gradients that sum() sends to each (ours, torch's) leaf."""
    same(ro, rt, tol)
    assert ro.grad_fn.name() == rt.grad_fn.name()
    ro.sum().backward()
    rt.sum().backward()
    for o, t in leaves:
        same(o.grad, t.grad, tol)


def errors_alike(fo, ft):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(type(et.value)) as eo:
        fo()
    assert str(eo.value) == str(et.value)


# --- sort, argsort, topk ----------------------------------------------------------------------------------

X = rng.standard_normal((4, 6))
TIES = np.array([[3.0, 1.0, 2.0, 2.0, 1.0, 3.0], [0.0, 5.0, 5.0, -1.0, 5.0, 0.0]])
NAN = np.array([[1.0, np.nan, -2.0, 3.0], [np.nan, 0.0, np.nan, -1.0]])


@pytest.mark.parametrize("data", [X, TIES, NAN, X[0], np.array(2.5), np.arange(12).reshape(3, 4) % 5],
                         ids=["rand", "ties", "nan", "1d", "0d", "int"])
@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_stable(data, dim, descending):
    o, t = both(data)
    ro = tl.sort(o, dim=dim, descending=descending, stable=True)
    rt = torch.sort(t, dim=dim, descending=descending, stable=True)
    same(ro.values, rt.values)
    same(ro.indices, rt.indices)        # stable: deterministic indices, also with ties
    v, i = o.sort(dim, descending)       # unpacks; values (indices of ties are not specified without stable=True)
    same(v, rt.values)
    same(tl.argsort(o, dim, descending, stable=True), torch.argsort(t, dim=dim, descending=descending, stable=True))


def test_sort_grad_and_node():
    o, t = both(X, grad=True)
    w = rng.standard_normal(X.shape)
    (tl.sort(o, 0).values * tl.tensor(w)).sum().backward()
    (torch.sort(t, 0).values * torch.tensor(w)).sum().backward()
    same(o.grad, t.grad)
    assert tl.sort(o).values.grad_fn.name() == torch.sort(t).values.grad_fn.name() == "SortBackward0"
    assert tl.sort(o).indices.requires_grad is False


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (3, 0, False), (0, 1, True), (6, 1, True), (1, -2, False)])
def test_topk(k, dim, largest):
    o, t = both(X, grad=True)
    ro, rt = tl.topk(o, k, dim=dim, largest=largest), torch.topk(t, k, dim=dim, largest=largest)
    same(ro.values, rt.values)
    same(ro.indices, rt.indices)        # distinct values: indices are determined
    w = rng.standard_normal(tuple(rt.values.shape))
    (ro.values * tl.tensor(w)).sum().backward()
    (rt.values * torch.tensor(w)).sum().backward()
    same(o.grad, t.grad)
    assert ro.values.grad_fn.name() == rt.values.grad_fn.name() == "TopkBackward0"


def test_topk_ties_values_and_method():
    o, t = both(TIES)
    v, i = o.topk(3)
    same(v, torch.topk(t, 3).values)
    # whatever index a tie picks, it points at the value returned
    np.testing.assert_array_equal(np.take_along_axis(TIES, i.numpy(), 1), v.numpy())


def test_topk_sort_errors():
    o, t = both(X)
    errors_alike(lambda: tl.topk(o, 7), lambda: torch.topk(t, 7))
    errors_alike(lambda: tl.topk(o, -1), lambda: torch.topk(t, -1))
    errors_alike(lambda: tl.topk(o, 1, dim=2), lambda: torch.topk(t, 1, dim=2))
    errors_alike(lambda: tl.sort(o, dim=-3), lambda: torch.sort(t, dim=-3))


# --- median, unique, searchsorted, bucketize ---------------------------------------------------------------

@pytest.mark.parametrize("data", [X, np.arange(8.0).reshape(2, 4), NAN, np.array([[4, 1, 3, 2]])],
                         ids=["rand", "even", "nan", "int"])
def test_median(data):
    o, t = both(data)
    same(tl.median(o), torch.median(t))
    for dim in (0, -1):
        for keep in (False, True):
            ro, rt = tl.median(o, dim, keepdim=keep), torch.median(t, dim, keepdim=keep)
            same(ro.values, rt.values)
            if not np.isnan(data).any():
                same(ro.indices, rt.indices)


def test_median_grad_nodes():
    o, t = both(X, grad=True)
    assert tl.median(o).grad_fn.name() == torch.median(t).grad_fn.name()
    assert tl.median(o, 1).values.grad_fn.name() == torch.median(t, 1).values.grad_fn.name()
    (tl.median(o, 1).values * 2).sum().backward()
    (torch.median(t, 1).values * 2).sum().backward()
    same(o.grad, t.grad)
    errors_alike(lambda: tl.median(tl.zeros(2, 0), 1), lambda: torch.median(torch.zeros(2, 0), 1))


@pytest.mark.parametrize("inv,cnt", [(False, False), (True, False), (False, True), (True, True)])
def test_unique(inv, cnt):
    data = np.array([[3, 1, 2], [1, 7, 3]])
    o, t = both(data)
    same(tl.unique(o, return_inverse=inv, return_counts=cnt), torch.unique(t, return_inverse=inv, return_counts=cnt))
    f = np.array([0.5, -1.0, 0.5, 2.0])
    o, t = both(f)
    same(o.unique(return_counts=True), t.unique(return_counts=True))


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_bucketize(right):
    seq = np.array([1.0, 3.0, 5.0, 7.0])
    vals = np.array([[0.0, 3.0, 6.0], [7.0, 8.0, 1.0]])
    so, st = both(seq)
    vo, vt = both(vals)
    same(tl.searchsorted(so, vo, right=right), torch.searchsorted(st, vt, right=right))
    same(tl.searchsorted(so, vo, side="right" if right else "left", out_int32=True),
         torch.searchsorted(st, vt, side="right" if right else "left", out_int32=True))
    same(tl.searchsorted(so, 3.0, right=right), torch.searchsorted(st, 3.0, right=right))
    same(tl.bucketize(vo, so, right=right), torch.bucketize(vt, st, right=right))
    batched = np.array([[1.0, 2.0, 3.0], [0.0, 10.0, 20.0]])
    bo, bt = both(batched)
    qo, qt = both(np.array([[2.0, 2.5], [15.0, -1.0]]))
    same(tl.searchsorted(bo, qo, right=right), torch.searchsorted(bt, qt, right=right))
    errors_alike(lambda: tl.searchsorted(bo, so), lambda: torch.searchsorted(bt, st))
    errors_alike(lambda: tl.bucketize(so, bo), lambda: torch.bucketize(st, bt))


# --- tril, triu, diag, diagonal --------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["tril", "triu"])
@pytest.mark.parametrize("k", [0, 1, -2, 5])
def test_tril_triu(fn, k):
    data = rng.standard_normal((2, 3, 4))
    o, t = both(data, grad=True)
    same_backward(getattr(tl, fn)(o, k), getattr(torch, fn)(t, k), [(o, t)])
    same(getattr(o.detach().clone(), fn + "_")(k), getattr(t.detach().clone(), fn + "_")(k))
    errors_alike(lambda: getattr(tl, fn)(tl.ones(3)), lambda: getattr(torch, fn)(torch.ones(3)))


@pytest.mark.parametrize("k", [0, 1, -1, 3])
def test_diag(k):
    for data in (rng.standard_normal(3), rng.standard_normal((3, 4))):
        o, t = both(data, grad=True)
        ro, rt = tl.diag(o, k), torch.diag(t, k)
        same(ro, rt)
        w = rng.standard_normal(tuple(rt.shape))
        (ro * tl.tensor(w)).sum().backward()
        (rt * torch.tensor(w)).sum().backward()
        same(o.grad, t.grad)
    errors_alike(lambda: tl.diag(tl.ones(2, 2, 2)), lambda: torch.diag(torch.ones(2, 2, 2)))


@pytest.mark.parametrize("args", [(), (1,), (-1, 2, 0), (0, -1, -2), (2, 0, 2)])
def test_diagonal(args):
    o, t = both(rng.standard_normal((3, 4, 5)), grad=True)
    ro, rt = tl.diagonal(o, *args), torch.diagonal(t, *args)
    same(ro, rt)
    assert ro.grad_fn.name() == rt.grad_fn.name() == "DiagonalBackward0"
    (ro * 3).sum().backward()
    (rt * 3).sum().backward()
    same(o.grad, t.grad)
    same(o.diagonal(*args), t.diagonal(*args))
    errors_alike(lambda: tl.diagonal(tl.ones(3)), lambda: torch.diagonal(torch.ones(3)))


# --- isclose, allclose, equal -------------------------------------------------------------------------

def test_isclose_allclose_equal():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9, 1.0])
    b = np.array([1.0 + 1e-6, np.nan, np.inf, np.inf, 0.0, 1.1])
    ao, at = both(a)
    bo, bt = both(b)
    same(tl.isclose(ao, bo), torch.isclose(at, bt))
    same(tl.isclose(ao, bo, equal_nan=True), torch.isclose(at, bt, equal_nan=True))
    same(ao.isclose(bo, rtol=0.2, atol=0.0), at.isclose(bt, rtol=0.2, atol=0.0))
    io, it = both(np.array([1, 2, 3]))
    jo, jt = both(np.array([1, 3, 3]))
    same(tl.isclose(io, jo), torch.isclose(it, jt))
    same(tl.isclose(io, jo, atol=1), torch.isclose(it, jt, atol=1))
    assert tl.allclose(ao, bo) is torch.allclose(at, bt) is False
    assert tl.allclose(ao[:1], bo[:1]) is torch.allclose(at[:1], bt[:1]) is True
    assert tl.allclose(ao, ao, equal_nan=True) is torch.allclose(at, at, equal_nan=True)
    assert ao.allclose(bo, rtol=1.0) == at.allclose(bt, rtol=1.0)
    errors_alike(lambda: tl.isclose(ao, io), lambda: torch.isclose(at, it))
    errors_alike(lambda: tl.isclose(ao, bo, rtol=-1), lambda: torch.isclose(at, bt, rtol=-1))
    errors_alike(lambda: tl.allclose(tl.ones(2), tl.ones(3)), lambda: torch.allclose(torch.ones(2), torch.ones(3)))
    assert tl.equal(io, io) is torch.equal(it, it) is True
    assert tl.equal(io, jo) is torch.equal(it, jt) is False
    assert io.equal(tl.ones(4, dtype=tl.int64)) is it.equal(torch.ones(4, dtype=torch.int64)) is False
    assert tl.equal(tl.ones(2), tl.ones(2, dtype=tl.int64)) is torch.equal(torch.ones(2),
                                                                            torch.ones(2, dtype=torch.int64))


# --- einsum ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...j,j", [(2, 3, 4), (4,)]),
    ("ij,kl->jl", [(2, 3), (4, 5)]),
    ("ij,jk,k->i", [(2, 3), (3, 4), (4,)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
    ("ij,ij->ij", [(1, 3), (4, 3)]),
])
def test_einsum(eq, shapes):
    arrs = [rng.standard_normal(s) for s in shapes]
    pairs = [both(a, grad=True) for a in arrs]
    ro = tl.einsum(eq, *[p[0] for p in pairs])
    rt = torch.einsum(eq, *[p[1] for p in pairs])
    same(ro, rt)
    same(tl.einsum(eq, [p[0] for p in pairs]), rt)
    w = rng.standard_normal(tuple(rt.shape))
    (ro * tl.tensor(w)).sum().backward()
    (rt * torch.tensor(w)).sum().backward()
    for o, t in pairs:
        same(o.grad, t.grad)


def test_einsum_trace_forward_and_errors():
    o, t = both(rng.standard_normal((3, 3)))
    same(tl.einsum("ii->", o), torch.einsum("ii->", t))
    same(tl.einsum("ii->i", o), torch.einsum("ii->i", t))
    errors_alike(lambda: tl.einsum("ij,jk", tl.ones(2, 3)), lambda: torch.einsum("ij,jk", torch.ones(2, 3)))
    errors_alike(lambda: tl.einsum("ij,jk->ik", tl.ones(2, 3), tl.ones(4, 5)),
                 lambda: torch.einsum("ij,jk->ik", torch.ones(2, 3), torch.ones(4, 5)))


# --- elementwise math ----------------------------------------------------------------------------------

UNARY = ["square", "log10", "exp2", "expm1", "sinh", "cosh", "asin", "acos", "atan", "frac", "arcsin", "arccos",
         "arctan"]


@pytest.mark.parametrize("name", UNARY)
def test_unary(name):
    data = rng.uniform(-0.95, 0.95, (3, 4))
    if name == "log10":
        data = np.abs(data) + 0.1
    o, t = both(data, grad=True)
    ro, rt = getattr(tl, name)(o), getattr(torch, name)(t)
    same(ro, rt)
    same(getattr(o, name)(), getattr(t, name)())
    assert ro.grad_fn.name() == rt.grad_fn.name()
    ro.sum().backward()
    rt.sum().backward()
    same(o.grad, t.grad, 1e-10)
    f32 = data.astype(np.float32)
    same(getattr(tl, name)(tl.tensor(f32)), getattr(torch, name)(torch.tensor(f32)), 1e-6)


@pytest.mark.parametrize("name", ["square", "log10", "exp2", "expm1", "sinh", "atan"])
def test_unary_int_dtype(name):
    o, t = both(np.array([1, 2, 3]))
    same(getattr(tl, name)(o), getattr(torch, name)(t), 1e-6)


@pytest.mark.parametrize("name", ["atan2", "arctan2", "hypot", "fmod"])
def test_binary(name):
    a = rng.standard_normal((3, 4))
    b = rng.uniform(0.5, 2.0, (4,)) * rng.choice([-1, 1], 4)
    ao, at = both(a, grad=True)
    bo, bt = both(b, grad=True)
    same_backward(getattr(tl, name)(ao, bo), getattr(torch, name)(at, bt), [(ao, at), (bo, bt)])
    same(getattr(ao, name)(bo), getattr(at, name)(bt))


def test_fmod_scalar_and_ints():
    o, t = both(np.array([5.5, -5.5, 3.0]), grad=True)
    ro, rt = tl.fmod(o, 2), torch.fmod(t, 2)
    same(ro, rt)
    assert ro.grad_fn.name() == rt.grad_fn.name() == "FmodBackward0"
    io, it = both(np.array([5, -5, 7]))
    same(tl.fmod(io, 3), torch.fmod(it, 3))
    same(tl.atan2(io, io), torch.atan2(it, it), 1e-6)
    errors_alike(lambda: tl.hypot(io, io), lambda: torch.hypot(it, it))
    errors_alike(lambda: tl.frac(io), lambda: torch.frac(it))


def test_nan_to_num():
    data = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    o, t = both(data, grad=True)
    same(tl.nan_to_num(o), torch.nan_to_num(t))
    same(o.nan_to_num(nan=1.5, posinf=9.0, neginf=-9.0), t.nan_to_num(nan=1.5, posinf=9.0, neginf=-9.0))
    f32 = data.astype(np.float32)
    same(tl.nan_to_num(tl.tensor(f32)), torch.nan_to_num(torch.tensor(f32)))
    same_backward(tl.nan_to_num(o), torch.nan_to_num(t), [(o, t)])
    io, it = both(np.array([1, 2]))
    same(tl.nan_to_num(io), torch.nan_to_num(it))


@pytest.mark.parametrize("dim,keep", [(None, False), (0, False), (1, True), ((0, 1), False)])
def test_nansum_nanmean(dim, keep):
    o, t = both(NAN, grad=True)
    kw = {} if dim is None else {"dim": dim, "keepdim": keep}
    same(tl.nansum(o, **kw), torch.nansum(t, **kw))
    same(o.nanmean(**kw), t.nanmean(**kw))
    ro, rt = tl.nansum(o, **kw), torch.nansum(t, **kw)
    assert ro.grad_fn.name() == rt.grad_fn.name()
    (ro * 2).sum().backward()
    (rt * 2).sum().backward()
    same(o.grad, t.grad)
    io, it = both(np.array([[1, 2], [3, 4]]))
    same(tl.nansum(io, **kw), torch.nansum(it, **kw))
    errors_alike(lambda: tl.nanmean(io), lambda: torch.nanmean(it))


@pytest.mark.parametrize("dim", [0, -1, 1])
def test_softmax_log_softmax_top_level(dim):
    o, t = both(X, grad=True)
    same(tl.softmax(o, dim), torch.softmax(t, dim))
    same(tl.log_softmax(o, dim), torch.log_softmax(t, dim))
    same(o.softmax(dim), t.softmax(dim))
    same(o.log_softmax(dim, dtype=tl.float32), t.log_softmax(dim, dtype=torch.float32), 1e-6)
    assert tl.softmax(o, dim).grad_fn.name() == torch.softmax(t, dim).grad_fn.name()
    errors_alike(lambda: tl.softmax(o), lambda: torch.softmax(t))


# --- shapes: broadcasting, stacking, repeating, selecting ----------------------------------------------

def test_broadcast_to_tensors():
    o, t = both(rng.standard_normal((3, 1)), grad=True)
    same(tl.broadcast_to(o, (2, 3, 4)), torch.broadcast_to(t, (2, 3, 4)))
    same(o.broadcast_to((3, 5)), t.broadcast_to((3, 5)))
    po, pt = both(rng.standard_normal(4))
    same(tl.broadcast_tensors(o, po), torch.broadcast_tensors(t, pt))
    errors_alike(lambda: tl.broadcast_tensors(tl.ones(3), tl.ones(4)),
                 lambda: torch.broadcast_tensors(torch.ones(3), torch.ones(4)))
    tl.broadcast_to(o, (2, 3, 4)).sum().backward()
    torch.broadcast_to(t, (2, 3, 4)).sum().backward()
    same(o.grad, t.grad)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
    a, b, c = (both(np.arange(n, dtype=np.float64)) for n in (2, 3, 4))
    same(tl.meshgrid(a[0], b[0], indexing=indexing), torch.meshgrid(a[1], b[1], indexing=indexing))
    same(tl.meshgrid([a[0], b[0], c[0]], indexing=indexing), torch.meshgrid([a[1], b[1], c[1]], indexing=indexing))


def test_meshgrid_warns_without_indexing_as_torch():
    # torch warns once per process (TORCH_WARN_ONCE): another test of this worker may have had it; warn-always
    # makes this call warn whatever ran before
    prev = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings(record=True) as wt:
            warnings.simplefilter("always")
            torch.meshgrid(torch.arange(2), torch.arange(3))
    finally:
        torch.set_warn_always(prev)
    with warnings.catch_warnings(record=True) as wo:
        warnings.simplefilter("always")
        r = tl.meshgrid(tl.arange(2), tl.arange(3))
    assert [w.category for w in wo] == [w.category for w in wt] == [UserWarning]
    assert str(wt[0].message).startswith(str(wo[0].message).split(" in an upcoming")[0])
    same(r, torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij"))


@pytest.mark.parametrize("rep,dim", [(2, None), (3, 0), (2, 1), (2, -1), ("t", 0), ("t1", 1)])
def test_repeat_interleave(rep, dim):
    o, t = both(rng.standard_normal((3, 2)), grad=True)
    if rep == "t":
        ro, rt = tl.tensor([1, 0, 2]), torch.tensor([1, 0, 2])
    elif rep == "t1":
        ro, rt = tl.tensor([2, 1]), torch.tensor([2, 1])
    else:
        ro = rt = rep
    a, b = tl.repeat_interleave(o, ro, dim=dim), torch.repeat_interleave(t, rt, dim=dim)
    same(a, b)
    same(o.repeat_interleave(ro, dim), t.repeat_interleave(rt, dim))
    a.sum().backward()
    b.sum().backward()
    same(o.grad, t.grad)
    same(tl.repeat_interleave(tl.tensor([1, 2, 0])), torch.repeat_interleave(torch.tensor([1, 2, 0])))


def test_stacks():
    v = [both(rng.standard_normal(3)) for _ in range(2)]
    m = [both(rng.standard_normal((2, 3))) for _ in range(2)]
    for fn in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
        same(getattr(tl, fn)([p[0] for p in v]), getattr(torch, fn)([p[1] for p in v]))
        same(getattr(tl, fn)([p[0] for p in m]), getattr(torch, fn)([p[1] for p in m]))


def test_select_take_along_dim_diff():
    o, t = both(rng.standard_normal((3, 4)), grad=True)
    for d, i in ((0, 1), (1, -1), (-1, 2)):
        same(tl.select(o, d, i), torch.select(t, d, i))
        same(o.select(d, i), t.select(d, i))
    assert tl.select(o, 0, 1).grad_fn.name() == torch.select(t, 0, 1).grad_fn.name()
    errors_alike(lambda: tl.select(o, 0, 5), lambda: torch.select(t, 0, 5))
    io, it = both(np.array([[0, 3], [1, 1], [2, 0]]))
    same(tl.take_along_dim(o, io, 1), torch.take_along_dim(t, it, 1))
    jo, jt = both(np.array([[0], [3], [2]]))
    same(o.take_along_dim(jo, dim=1), t.take_along_dim(jt, dim=1))
    same(tl.take_along_dim(o, tl.tensor([5, 0])), torch.take_along_dim(t, torch.tensor([5, 0])))
    same(tl.take_along_dim(o, tl.argsort(o, 1), 1), torch.take_along_dim(t, torch.argsort(t, 1), 1))
    for n, d in ((1, -1), (2, 0), (3, 1)):
        same(tl.diff(o, n, d), torch.diff(t, n, d))
    same(o.diff(prepend=o[:, :1], append=o[:, -1:]), t.diff(prepend=t[:, :1], append=t[:, -1:]))
    bo, bt = both(np.array([True, False, False, True]))
    same(tl.diff(bo), torch.diff(bt))
    same(tl.diff(tl.tensor([1, 4, 9])), torch.diff(torch.tensor([1, 4, 9])))


def test_type_as_count_nonzero_bincount():
    o, t = both(np.array([[0.0, 1.5], [2.0, 0.0]]))
    io, it = both(np.array([1, 2]))
    same(io.type_as(o), it.type_as(t))
    same(o.type_as(io), t.type_as(it))
    for dim in (None, 0, 1, (0, 1)):
        same(tl.count_nonzero(o, dim), torch.count_nonzero(t, dim))
    same(o.count_nonzero(), t.count_nonzero())
    xo, xt = both(np.array([0, 2, 2, 5, 1]))
    same(tl.bincount(xo), torch.bincount(xt))
    same(xo.bincount(minlength=8), xt.bincount(minlength=8))
    wo, wt = both(np.array([0.5, 1.0, 2.0, 0.25, -1.0]))
    same(tl.bincount(xo, wo), torch.bincount(xt, wt))
    same(tl.bincount(xo, wo.float()), torch.bincount(xt, wt.float()))
    same(tl.bincount(tl.tensor([], dtype=tl.int64)), torch.bincount(torch.tensor([], dtype=torch.int64)))
    errors_alike(lambda: tl.bincount(tl.tensor([-1, 2])), lambda: torch.bincount(torch.tensor([-1, 2])))


# --- addmm, baddbmm, cross ----------------------------------------------------------------------------

@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1)])
def test_addmm_baddbmm(beta, alpha):
    for fn, shapes in (("addmm", [(4,), (2, 3), (3, 4)]), ("addmm", [(2, 4), (2, 3), (3, 4)]),
                       ("baddbmm", [(2, 2, 4), (2, 2, 3), (2, 3, 4)]), ("baddbmm", [(4,), (2, 2, 3), (2, 3, 4)])):
        pairs = [both(rng.standard_normal(s), grad=True) for s in shapes]
        ro = getattr(tl, fn)(*[p[0] for p in pairs], beta=beta, alpha=alpha)
        rt = getattr(torch, fn)(*[p[1] for p in pairs], beta=beta, alpha=alpha)
        same(ro, rt)
        assert ro.grad_fn.name() == rt.grad_fn.name()
        ro.sum().backward()
        rt.sum().backward()
        for o, t in pairs:
            if t.grad is None:
                assert o.grad is None or not o.grad.numpy().any()
            else:
                same(o.grad, t.grad)
        same(getattr(pairs[0][0], fn)(pairs[1][0], pairs[2][0]), getattr(pairs[0][1], fn)(pairs[1][1], pairs[2][1]))
    errors_alike(lambda: tl.addmm(tl.ones(2, 2), tl.ones(2, 3), tl.ones(2, 3)),
                 lambda: torch.addmm(torch.ones(2, 2), torch.ones(2, 3), torch.ones(2, 3)))


def test_cross():
    ao, at = both(rng.standard_normal((4, 3)), grad=True)
    bo, bt = both(rng.standard_normal((4, 3)), grad=True)
    same(tl.cross(ao, bo, dim=1), torch.cross(at, bt, dim=1))
    same(ao.cross(bo, dim=-1), at.cross(bt, dim=-1))
    with pytest.warns(UserWarning, match="without specifying the dim"):
        r = tl.cross(ao, bo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(r, torch.cross(at, bt))
    ro, rt = tl.cross(ao, bo, dim=1), torch.cross(at, bt, dim=1)
    assert ro.grad_fn.name() == rt.grad_fn.name()
    w = rng.standard_normal((4, 3))
    (ro * tl.tensor(w)).sum().backward()
    (rt * torch.tensor(w)).sum().backward()
    same(ao.grad, at.grad)
    same(bo.grad, bt.grad)
    errors_alike(lambda: tl.cross(tl.ones(3, 4), tl.ones(3, 4), dim=1),
                 lambda: torch.cross(torch.ones(3, 4), torch.ones(3, 4), dim=1))


def test_gather_out_of_range_message():
    o, t = both(rng.standard_normal((2, 3)))
    for idx in ([[0, 5]], [[-1, 0]], [[0, 1], [2, 7]]):
        errors_alike(lambda: tl.gather(o, 1, tl.tensor(idx)), lambda: torch.gather(t, 1, torch.tensor(idx)))


# --- sampling: multinomial, bernoulli, random_ (distributions, shapes, dtypes, errors: not exact values) -----

def test_multinomial_like_torch():
    p = np.array([[0.1, 0.0, 0.4, 0.5], [1.0, 1.0, 0.0, 1.0]])
    o, t = both(p)
    tl.manual_seed(0)
    ro, rt = tl.multinomial(o, 3), torch.multinomial(t, 3)
    assert ro.dtype == tl.int64 and tuple(ro.shape) == tuple(rt.shape)
    for row in ro.numpy():
        assert len(set(row)) == 3
    ro, rt = o[0].multinomial(5000, replacement=True), t[0].multinomial(5000, replacement=True)
    assert tuple(ro.shape) == tuple(rt.shape) and ro.dtype == tl.int64
    np.testing.assert_allclose(np.bincount(ro.numpy(), minlength=4) / 5000,
                               np.bincount(rt.numpy(), minlength=4) / 5000, atol=0.04)
    for bad in ([1.0, 1.0], [-1.0, 1.0], [0.0, 0.0], [1.0, np.inf]):
        o, t = both(bad)
        errors_alike(lambda: tl.multinomial(o, 3 if bad == [1.0, 1.0] else 1),
                     lambda: torch.multinomial(t, 3 if bad == [1.0, 1.0] else 1))
    o, t = both(np.ones((2, 2, 2)))
    errors_alike(lambda: tl.multinomial(o, 1), lambda: torch.multinomial(t, 1))
    o, t = both([1, 2])
    errors_alike(lambda: tl.multinomial(o, 1), lambda: torch.multinomial(t, 1))
    o, t = both([1.0, 2.0])
    errors_alike(lambda: tl.multinomial(o, 0), lambda: torch.multinomial(t, 0))


def test_bernoulli_like_torch():
    o, t = both(np.full((100, 100), 0.3, dtype=np.float32), grad=True)
    ro, rt = tl.bernoulli(o), torch.bernoulli(t)
    assert ro.dtype == tl.float32 and tuple(ro.shape) == tuple(rt.shape)
    assert ro.grad_fn.name() == rt.grad_fn.name()
    assert abs(ro.detach().numpy().mean() - rt.detach().numpy().mean()) < 0.03
    ro.sum().backward()
    rt.sum().backward()
    same(o.grad, t.grad)
    x, y = tl.zeros(10000).bernoulli_(0.7), torch.zeros(10000).bernoulli_(0.7)
    assert abs(x.numpy().mean() - y.numpy().mean()) < 0.03


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8", "bool"])
def test_random_like_torch(dtype):
    o, t = tl.zeros(2000, dtype=getattr(tl, dtype)), torch.zeros(2000, dtype=getattr(torch, dtype))
    ro, rt = o.random_(), t.random_()
    assert ro is o and ro.dtype == o.dtype
    a, b = ro.numpy().astype(np.float64), rt.numpy().astype(np.float64)
    assert a.min() >= 0 and a.max() <= 2 * b.max() + 1 and a.max() >= b.max() / 4
    if dtype == "bool":
        errors_alike(lambda: o.random_(3), lambda: t.random_(3))
    else:
        a, b = o.random_(3).numpy(), t.random_(3).numpy()
        assert set(np.unique(a)) == set(np.unique(b))
        assert set(np.unique(o.random_(2, 5).numpy())) == set(np.unique(t.random_(2, 5).numpy()))
    errors_alike(lambda: o.random_(5, 2), lambda: t.random_(5, 2))


# --- in-place index updates ----------------------------------------------------------------------------------

def test_index_copy_fill_add_like_torch():
    a, s = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    (o, t), (os_, ts) = both(a, grad=True), both(s, grad=True)
    io, it = both([3, 0])
    same_backward(o.index_copy(1, io, os_), t.index_copy(1, it, ts), [(o, t), (os_, ts)])
    o, t = both(a, grad=True)
    same_backward(o.index_fill(1, io, -2.0), t.index_fill(1, it, -2.0), [(o, t)])
    (o, t), (os_, ts) = both(a, grad=True), both(rng.standard_normal((3, 4)), grad=True)
    io, it = both([2, 0, 2])
    same_backward(o * 1, t * 1, [])
    o2, t2 = (o * 1).index_add_(0, io, os_, alpha=2), (t * 1).index_add_(0, it, ts, alpha=2)
    same_backward(o2, t2, [(o, t), (os_, ts)])
    (o, t), (os_, ts) = both(a, grad=True), both(s, grad=True)
    io, it = both([3, 0])
    same_backward((o * 1).index_copy_(1, io, os_), (t * 1).index_copy_(1, it, ts), [(o, t), (os_, ts)])
    o, t = both(a)
    same(o.index_fill_(0, io[:1] * 0 + 1, 3.0), t.index_fill_(0, it[:1] * 0 + 1, 3.0))
    o, t = both(a)
    ff, ft = both([[0.5, 1.0]])
    errors_alike(lambda: o.index_fill(0, ff, 1.0), lambda: t.index_fill(0, ft, 1.0))
    io, it = both([[0, 1]])
    errors_alike(lambda: o.index_fill(0, io, 1.0), lambda: t.index_fill(0, it, 1.0))
    errors_alike(lambda: o.index_copy(0, io, o[:2]), lambda: t.index_copy(0, it, t[:2]))
    errors_alike(lambda: o.index_copy(0, ff[0], o[:2]), lambda: t.index_copy(0, ft[0], t[:2]))
    errors_alike(lambda: o.index_copy(0, io[0], o[:2].float()), lambda: t.index_copy(0, it[0], t[:2].float()))


def test_scatter_inplace_like_torch():
    a, s = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    io, it = both([[0, 1], [2, 3], [1, 0]])
    (o, t), (os_, ts) = both(a, grad=True), both(s, grad=True)
    same_backward((o * 1).scatter_(1, io, os_), (t * 1).scatter_(1, it, ts), [(o, t), (os_, ts)])
    (o, t), (os_, ts) = both(a, grad=True), both(s, grad=True)
    io, it = both([[0, 0], [2, 2], [1, 0]])
    same_backward((o * 1).scatter_add_(1, io, os_), (t * 1).scatter_add_(1, it, ts), [(o, t), (os_, ts)])
    o, t = both(a)
    same(o.scatter_(1, io, 5.0), t.scatter_(1, it, 5.0))


@pytest.mark.parametrize("mshape", [(3, 4), (4,)])
def test_masked_scatter_like_torch(mshape):
    a, s = rng.standard_normal((3, 4)), rng.standard_normal(13)
    mo, mt = both(rng.random(mshape) > 0.5)
    (o, t), (os_, ts) = both(a, grad=True), both(s, grad=True)
    same_backward(o.masked_scatter(mo, os_), t.masked_scatter(mt, ts), [(o, t), (os_, ts)])
    o, t = both(a)
    same(o.masked_scatter_(mo, tl.tensor(s)), t.masked_scatter_(mt, torch.tensor(s)))
    errors_alike(lambda: o.masked_scatter_(mo, tl.tensor(s, dtype=tl.float32)),
                 lambda: t.masked_scatter_(mt, torch.tensor(s, dtype=torch.float32)))


# --- in-place unary methods, tan/sgn/fix/deg2rad/logaddexp/xlogy/fmax/fmin -----------------------------------

@pytest.mark.parametrize("name", ["exp_", "log_", "sqrt_", "sigmoid_", "tanh_"])
def test_inplace_unary_like_torch(name):
    o, t = both(rng.uniform(0.5, 2.0, (3, 4)), grad=True)
    same_backward(getattr(o * 1, name)(), getattr(t * 1, name)(), [(o, t)])
    o, t = both(np.arange(4))
    errors_alike(lambda: getattr(o, name)(), lambda: getattr(t, name)())


@pytest.mark.parametrize("name", ["tan", "sgn", "fix", "deg2rad"])
def test_more_unary_like_torch(name):
    o, t = both(rng.uniform(-1.2, 1.2, (3, 4)), grad=True)
    ro, rt = getattr(tl, name)(o), getattr(torch, name)(t)
    if name == "sgn":       # torch's gradient of sgn is a ZeroTensor (no values to compare)
        same(ro, rt)
        assert ro.grad_fn.name() == rt.grad_fn.name()
    else:
        same_backward(ro, rt, [(o, t)])
    o, t = both(np.arange(-2, 3))
    same(getattr(o, name)(), getattr(t, name)(), tol=1e-6)


@pytest.mark.parametrize("name", ["logaddexp", "xlogy", "fmax", "fmin"])
def test_more_binary_like_torch(name):
    a = rng.standard_normal((3, 4))
    a[0, :2] = 0.0
    b = np.abs(rng.standard_normal(4)) + 0.1
    b[3] = np.nan if name in ("fmax", "fmin") else b[3]
    (o, t), (ob, tb) = both(a, grad=True), both(b, grad=True)
    same_backward(getattr(tl, name)(o, ob), getattr(torch, name)(t, tb), [(o, t), (ob, tb)])
    (o, t), (ob, tb) = both(np.arange(4)), both(np.arange(1, 5))
    if name == "logaddexp":
        errors_alike(lambda: tl.logaddexp(o, ob), lambda: torch.logaddexp(t, tb))
    else:
        same(getattr(o, name)(ob), getattr(t, name)(tb), tol=1e-6)


SUM_SHAPES = [((n,), None) for n in (1, 5, 8, 15, 16, 17, 31, 33, 100, 1000, 1031, 70001)] + [
    ((100, 10), (0,)), ((32, 64), (0,)), ((64, 256), (0,)), ((200, 3), (0,)), ((64, 13), (0,)), ((33, 47), (0,)),
    ((10, 100), (1,)), ((64, 32), (1,)), ((7, 17), (1,)), ((5, 7, 9), (1,)), ((5, 7, 9), (0, 1)), ((5, 7, 9), (1, 2)),
    ((16, 7, 16), (0,)), ((4, 5, 6, 7), (1, 2)), ((512, 300), (0,)), ((300, 512), (1,)), ((3, 1, 50), (0,))]
# (dims that are not adjacent, a convolution's per-channel (0, 2, 3), keep NumPy's order: not matched)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sums_and_means_are_torchs_bit_for_bit(dtype):
    """torch's sum is its cascade_sum (its AVX2 build, also on AVX-512 CPUs): a bias gradient's sum over a batch of
    100 differed from NumPy's pairwise sums in 7 of 10 columns; mean is that sum divided in the dtype."""
    torch.set_num_threads(1)
    tl.set_num_threads(1)
    rng = np.random.default_rng(11)
    for shape, dims in SUM_SHAPES:
        x = (rng.standard_normal(shape) * rng.choice([1.0, 1e3], shape)).astype(dtype)
        for keep in (False, True):
            if dims is None and keep:
                continue
            args = () if dims is None else (dims, keep)
            for name in ("sum", "mean"):
                want = getattr(torch.tensor(x), name)(*args).numpy()
                got = getattr(tl.tensor(x), name)(*args).numpy()
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {shape} {dims} {keep}")


def test_tanh_backward_and_dot_products_are_torchs_bit_for_bit():
    """torch's tanh_backward computes 1 - y * y as one fused multiply-add (GCC's contraction); a 1x1 product is
    MKL's sgemm with b transposed, as torch's addmm calls it; x ** 0.5 is torch's sqrt kernel (MKL VML's); float32
    silu and silu_backward are torch's kernels."""
    torch.set_num_threads(1)
    tl.set_num_threads(1)
    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64):
        x = np.abs(rng.standard_normal(10007) * 3).astype(dtype)
        np.testing.assert_array_equal((tl.tensor(x) ** 0.5).numpy(), (torch.tensor(x) ** 0.5).numpy())
    for n in (16, 33, 10007):       # silu and its backward (Sleef's exp, libm's in the tail, one fused multiply-add)
        x = (rng.standard_normal(n) * 3).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        got = []
        for lib in (tl, torch):
            t = lib.tensor(x, requires_grad=True)
            y = lib.nn.functional.silu(t)
            y.backward(lib.tensor(g))
            got.append((y.detach().numpy(), t.grad.numpy()))
        np.testing.assert_array_equal(got[0][0], got[1][0])
        np.testing.assert_array_equal(got[0][1], got[1][1])
    for n in (7, 100, 1001):
        x = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        grads = []
        for lib in (tl, torch):
            t = lib.tensor(x, requires_grad=True)
            t.tanh().backward(lib.tensor(g))
            grads.append(t.grad.numpy())
        np.testing.assert_array_equal(*grads)
    for k in (15, 300):
        a = rng.standard_normal((1, k)).astype(np.float32)
        b = rng.standard_normal((k, 1)).astype(np.float32)
        np.testing.assert_array_equal(tl.tensor(a).mm(tl.tensor(b)).numpy(),
                                      torch.tensor(a).mm(torch.tensor(b)).numpy())
        col = rng.standard_normal((k, 1)).astype(np.float32)
        np.testing.assert_array_equal((tl.tensor(col).t() @ tl.tensor(b)).numpy(),
                                      (torch.tensor(col).t() @ torch.tensor(b)).numpy())
