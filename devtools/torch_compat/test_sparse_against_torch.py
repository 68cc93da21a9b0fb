"""Sparse COO tensors side by side with torch 2.13 (skipped where torch is not installed): construction and
metadata, coalesce, the conversions, products, sums and additions with their values, gradients and autograd
node names, the reprs (under tensorlib.compat's "torch" namespace) and the errors (class and message).
tests/tensorlib/test_sparse.py checks the same against NumPy without torch."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402
from tensorlib import _dtype  # noqa: E402

IDX = [[0, 1, 1, 2, 1], [2, 0, 2, 3, 2]]
VAL = [3.0, 4.0, 5.0, 6.0, 7.0]


@pytest.fixture(autouse=True)
def _quiet_torch():
    with warnings.catch_warnings():     # torch 2.13: "Sparse invariant checks are implicitly disabled"
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.fixture
def torch_names():
    _dtype.set_namespace("torch")
    yield
    _dtype.set_namespace("tensorlib")


def _both(fn):
    """fn(lib) on tensorlib and on torch."""
    return fn(tl), fn(torch)


def _np(t):
    if t.is_sparse:
        t = t.to_dense()
    return t.detach().numpy()


def _sp(lib, dtype=None, requires_grad=False, size=(3, 4)):
    return lib.sparse_coo_tensor(lib.tensor(IDX), lib.tensor(VAL, dtype=dtype or lib.float64), size,
                                 requires_grad=requires_grad)


REPRS = {
    "plain": lambda lib: lib.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3)),
    "repeated": lambda lib: _sp(lib, lib.float32),
    "coalesced": lambda lib: _sp(lib, lib.float32).coalesce(),
    "float64_grad": lambda lib: _sp(lib, requires_grad=True),
    "int64": lambda lib: lib.sparse_coo_tensor(IDX, lib.ones(5), (3, 4), dtype=lib.int64),
    "int32": lambda lib: lib.sparse_coo_tensor(IDX, lib.ones(5), (3, 4), dtype=lib.int32),
    "empty": lambda lib: lib.sparse_coo_tensor(lib.zeros(2, 0, dtype=lib.int64), lib.zeros(0), (2, 2)),
    "hybrid": lambda lib: lib.sparse_coo_tensor([[0, 0]], [[1.0, 2.0], [3.0, 4.0]], (3, 2)),
    "to_sparse": lambda lib: lib.tensor([[0.0, 1.5], [2.0, 0.0]]).to_sparse(),
    "grad_fn": lambda lib: lib.sparse_coo_tensor(IDX, lib.tensor(VAL, requires_grad=True), (3, 4)),
    "sum_dim": lambda lib: lib.sparse.sum(_sp(lib, lib.float32), 1),
    "scaled": lambda lib: 2.5 * _sp(lib, lib.float32),
    # (of two uncoalesced tensors torch's order of the nonzeros is its merge's own; the values are compared below)
    "added_coalesced": lambda lib: _sp(lib, lib.float32).coalesce() + _sp(lib, lib.float32).coalesce(),
    "grad_of_to_dense": lambda lib: _grad_of(lib, lambda s: (s.to_dense() * 2).sum()),
    "grad_of_sparse_mm": lambda lib: _grad_of(lib, lambda s: lib.sparse.mm(s, lib.ones(4, 2, dtype=lib.float64))
                                              .sum()),
}


def _grad_of(lib, f):
    s = _sp(lib, requires_grad=True)
    f(s).backward()
    return s.grad


@pytest.mark.parametrize("case", sorted(REPRS))
def test_repr(case, torch_names):
    ours, theirs = _both(REPRS[case])
    assert repr(ours) == repr(theirs)


def test_metadata():
    ours, theirs = _both(_sp)
    for f in (lambda t: t.is_sparse, lambda t: str(t.layout), lambda t: tuple(t.shape), lambda t: t._nnz(),
              lambda t: t.sparse_dim(), lambda t: t.dense_dim(), lambda t: t.is_coalesced(), lambda t: t.numel(),
              lambda t: t.is_contiguous(), lambda t: t.coalesce().is_coalesced(), lambda t: t.coalesce()._nnz(),
              lambda t: str(t.dtype).split(".")[1], lambda t: str(t.device), lambda t: t.dim(),
              lambda t: t.to_dense().to_sparse().is_coalesced(), lambda t: str(t.to_dense().layout)):
        assert f(ours) == f(theirs)
    np.testing.assert_array_equal(ours.coalesce().indices().numpy(), theirs.coalesce().indices().numpy())
    np.testing.assert_array_equal(ours.coalesce().values().numpy(), theirs.coalesce().values().numpy())


VALUES = {
    "to_dense": lambda lib: _sp(lib).to_dense(),
    "mm": lambda lib: lib.mm(_sp(lib), lib.arange(8.0, dtype=lib.float64).reshape(4, 2)),
    "spmm": lambda lib: lib.spmm(_sp(lib), lib.arange(8.0, dtype=lib.float64).reshape(4, 2)),
    "matmul": lambda lib: _sp(lib) @ lib.arange(8.0, dtype=lib.float64).reshape(4, 2),
    "dense_mm": lambda lib: lib.arange(6.0, dtype=lib.float64).reshape(2, 3) @ _sp(lib),
    "sparse_mm": lambda lib: lib.sparse.mm(_sp(lib), lib.arange(8.0, dtype=lib.float64).reshape(4, 2)),
    "eye_plus": lambda lib: lib.eye(3, 4) + lib.sparse_coo_tensor(IDX, lib.ones(5), (3, 4), dtype=lib.int64),
    "add_alpha": lambda lib: lib.add(lib.ones(3, 4, dtype=lib.float64), _sp(lib), alpha=3),
    "sum": lambda lib: _sp(lib).sum(),
    "sum_dim0": lambda lib: _sp(lib).sum(0),
    "sparse_sum": lambda lib: lib.sparse.sum(_sp(lib)),
    "sparse_sum_dims": lambda lib: lib.sparse.sum(_sp(lib), (0, 1)),
    "sparse_mask": lambda lib: lib.arange(12.0).reshape(3, 4).sparse_mask(_sp(lib, lib.float32)),
    "div": lambda lib: _sp(lib) / 4,
    "added": lambda lib: _sp(lib) + lib.sparse_coo_tensor([[1, 2, 0], [2, 2, 2]], [10.0, 20.0, 30.0], (3, 4)),
    "t": lambda lib: _sp(lib).t(),
    "neg": lambda lib: -_sp(lib),
    "to_float": lambda lib: _sp(lib).float(),
    "to_sparse_1": lambda lib: lib.tensor([[0.0, 1.0], [0.0, 0.0], [2.0, 3.0]]).to_sparse(1),
    "values_after_coalesce": lambda lib: _sp(lib).coalesce().values(),
    "softmax_-1": lambda lib: lib.sparse.softmax(_sp(lib), -1),
    "log_softmax_0": lambda lib: lib.sparse.log_softmax(_sp(lib), 0),
    "softmax_hybrid_dense_dim": lambda lib: lib.sparse.softmax(lib.sparse_coo_tensor([[0, 2, 0]], [[1.0, 2.0], [
        3.0, 4.0], [5.0, 9.0]], (4, 2)), 1),
    "softmax_hybrid_sparse_dim": lambda lib: lib.sparse.softmax(lib.sparse_coo_tensor([[0, 2, 0]], [[1.0, 2.0], [
        3.0, 4.0], [5.0, 9.0]], (4, 2)), 0),
}


@pytest.mark.parametrize("case", sorted(VALUES))
def test_values(case):
    ours, theirs = _both(VALUES[case])
    assert ours.is_sparse == theirs.is_sparse
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-6 if ours.dtype is tl.float32 else 1e-10)


GRADS = {
    # name: (function of (lib, sparse leaf, dense leaf, values leaf), which leaves)
    "mm": lambda lib, s, d, v: (lib.mm(s, d) ** 2).sum(),
    "spmm_values": lambda lib, s, d, v: (lib.spmm(lib.sparse_coo_tensor(IDX, v, (3, 4)), d) ** 2).sum(),
    "dense_mm": lambda lib, s, d, v: ((d.t() @ lib.sparse_coo_tensor(IDX, v, (3, 4)).t()) ** 2).sum(),
    "t_leaf": lambda lib, s, d, v: ((d.t() @ s.t()) ** 2).sum(),
    "sparse_mask": lambda lib, s, d, v: (d.sparse_mask(lib.sparse_coo_tensor([[0, 3, 3], [1, 0, 0]], lib.ones(
        3, dtype=lib.float64), (4, 2))).to_dense() ** 2).sum(),
    "sparse_mm": lambda lib, s, d, v: (lib.sparse.mm(s, d) ** 2).sum(),
    "to_dense": lambda lib, s, d, v: (s.to_dense() * lib.arange(12.0, dtype=lib.float64).reshape(3, 4)).sum(),
    "values": lambda lib, s, d, v: (lib.sparse_coo_tensor(IDX, v, (3, 4)).to_dense() ** 2).sum(),
    "eye_plus": lambda lib, s, d, v: ((lib.eye(3, 4, dtype=lib.float64) + lib.sparse_coo_tensor(IDX, v, (3, 4)))
                                      ** 2).sum(),
    "sparse_sum": lambda lib, s, d, v: lib.sparse.sum(lib.sparse_coo_tensor(IDX, v, (3, 4)) * 3.0, 1).to_dense()
    .pow(2).sum(),
    # (dims 0 and 1: torch 2.13's backward of a softmax over dim=-1 differs from its own over dim=1, whose
    # forward is the same; tensorlib's is the same for both, tests/tensorlib/test_sparse.py gradchecks it)
    "softmax_0": lambda lib, s, d, v: _softmaxed(lib, lib.sparse.softmax, v, 0),
    "softmax_1": lambda lib, s, d, v: _softmaxed(lib, lib.sparse.softmax, v, 1),
    "log_softmax_0": lambda lib, s, d, v: _softmaxed(lib, lib.sparse.log_softmax, v, 0),
    "log_softmax_1": lambda lib, s, d, v: _softmaxed(lib, lib.sparse.log_softmax, v, 1),
    "coalesced_values": lambda lib, s, d, v: (lib.sparse_coo_tensor(IDX, v, (3, 4)).coalesce().values() ** 2).sum(),
}


def _softmaxed(lib, f, v, dim):
    out = f(lib.sparse_coo_tensor(IDX, v, (3, 4)), dim)
    return (out.to_dense() * lib.arange(12.0, dtype=lib.float64).reshape(3, 4)).sum()


@pytest.mark.parametrize("case", sorted(GRADS))
def test_gradients(case):
    def run(lib):
        rng = np.random.default_rng(0)
        s = _sp(lib, requires_grad=True)
        d = lib.tensor(rng.standard_normal((4, 2)), requires_grad=True)
        v = lib.tensor(rng.standard_normal(5), requires_grad=True)
        out = GRADS[case](lib, s, d, v)
        out.backward()
        return out, [t.grad for t in (s, d, v)]
    (o1, g1), (o2, g2) = _both(run)
    np.testing.assert_allclose(o1.item(), o2.item(), rtol=1e-12)
    for a, b in zip(g1, g2):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.is_sparse == b.is_sparse, case
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12)


NODES = {
    "mm": lambda lib, s: lib.mm(s, lib.ones(4, 2, dtype=lib.float64)),
    "sparse_mm": lambda lib, s: lib.sparse.mm(s, lib.ones(4, 2, dtype=lib.float64)),
    "to_dense": lambda lib, s: s.to_dense(),
    "add": lambda lib, s: lib.ones(3, 4, dtype=lib.float64) + s,
    "coalesce": lambda lib, s: s.coalesce(),
    "to_sparse": lambda lib, s: s.to_dense().to_sparse(),
    "values": lambda lib, s: s.coalesce().values(),
    "t": lambda lib, s: s.t(),
    "softmax": lambda lib, s: lib.sparse.softmax(s, 1),
    "log_softmax": lambda lib, s: lib.sparse.log_softmax(s, 1),
    "construct": lambda lib, s: lib.sparse_coo_tensor(IDX, lib.tensor(VAL, requires_grad=True), (3, 4)),
}


@pytest.mark.parametrize("case", sorted(NODES))
def test_node_names(case):
    ours, theirs = _both(lambda lib: NODES[case](lib, _sp(lib, requires_grad=True)).grad_fn.name())
    assert ours == theirs


ERRORS = {
    "sparse_plus_dense": lambda lib: _sp(lib) + lib.ones(3, 4, dtype=lib.float64),
    "nnz": lambda lib: lib.sparse_coo_tensor(IDX, [1.0, 2.0], (3, 4)),
    "indices_dims": lambda lib: lib.sparse_coo_tensor([0, 1, 2, 3, 4], VAL, (5,)),
    "ndims": lambda lib: lib.sparse_coo_tensor(IDX, VAL, (3, 4, 5)),
    "negative": lambda lib: lib.sparse_coo_tensor([[-1], [0]], [1.0], (3, 4), check_invariants=True),
    "out_of_size": lambda lib: lib.sparse_coo_tensor([[0], [4]], [1.0], (3, 4), check_invariants=True),
    "values_uncoalesced": lambda lib: _sp(lib).values(),
    "indices_uncoalesced": lambda lib: _sp(lib).indices(),
    "mm_sizes": lambda lib: lib.mm(_sp(lib), lib.ones(3, 2, dtype=lib.float64)),
    "mm_dtypes": lambda lib: lib.mm(_sp(lib), lib.ones(4, 2)),
    "numpy": lambda lib: _sp(lib).numpy(),
    "data_ptr": lambda lib: _sp(lib).data_ptr(),
    "exp": lambda lib: _sp(lib).exp(),
    "view": lambda lib: _sp(lib).view(12),
    "add_sizes": lambda lib: lib.ones(2, 4, dtype=lib.float64) + _sp(lib),
    "add_sparse_sizes": lambda lib: _sp(lib) + lib.sparse_coo_tensor([[0], [0]], [1.0], (3, 3)),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors(case):
    def err(lib):
        with pytest.raises(Exception) as e:
            ERRORS[case](lib)
        return e.value
    ours, theirs = _both(err)
    assert type(ours).__name__ == type(theirs).__name__
    # torch's NotImplementedError goes on to list its backends (ours lists three): compare up to that list
    assert str(ours).split(" is only available for these backends")[0] == \
        str(theirs).split(" is only available for these backends")[0]


def test_gcn_normalisation_as_the_program_computes_it():
    """pytorch/examples gcn/main.py's load_cora steps on a small graph: the same adjacency and features."""
    edges = np.array([[0, 1], [1, 2], [2, 0], [3, 1], [1, 3]], dtype=np.int32)
    feats = np.random.default_rng(0).integers(0, 2, (4, 6)).astype(np.float32)

    def run(lib):
        features = lib.FloatTensor(feats)
        scale = 1 / lib.sum(features, dim=1)
        scale[scale == float("inf")] = 0
        features = lib.diag(scale).to_sparse() @ features
        adj = lib.sparse_coo_tensor(edges.T, lib.ones(5), (4, 4), dtype=lib.int64)
        adj = lib.eye(4) + adj
        deg = lib.sqrt(1 / lib.sum(adj, dim=1))
        deg[deg == float("inf")] = 0
        deg = lib.diag(deg).to_sparse()
        adj = deg @ adj @ deg
        return features.to_sparse(), adj.to_sparse()
    (f1, a1), (f2, a2) = _both(run)
    for x, y in ((f1, f2), (a1, a2)):
        assert x.is_sparse and y.is_sparse and x._nnz() == y._nnz()
        np.testing.assert_array_equal(x.indices().numpy(), y.indices().numpy())
        np.testing.assert_allclose(x.values().numpy(), y.values().numpy(), rtol=1e-6)


def test_profiled_op_names():
    """The ops a profile shows for the sparse calls, outermost, in order: torch's names (aten::mm for a
    sparse product, aten::to_dense, aten::_sparse_sum ...) and the autograd nodes of their backward."""
    def run(lib):
        i, v = lib.tensor(IDX), lib.tensor(VAL)
        d = lib.ones(4, 2, requires_grad=True)
        e = lib.ones(4, 2, requires_grad=True)      # a leaf per product: tensorlib's engine records the sum of a
        f = lib.ones(4, 2, requires_grad=True)      # reused leaf's gradients (aten::add) outside the nodes' ranges
        s = lib.sparse_coo_tensor(i, v, (3, 4))
        with lib.profiler.profile() as p:
            s2 = lib.sparse_coo_tensor(i, v, (3, 4), dtype=lib.float32)
            r = lib.mm(s2, d) + s2 @ e + lib.spmm(s2, f)
            s.to_dense().to_sparse().coalesce()
            lib.eye(3, 4) + s
            2 * s
            lib.sparse.sum(s)
            lib.sparse.mm(s, d)
            lib.sparse.softmax(s, 1)
            r.sum().backward()
        return [e.name for e in p.events() if e.cpu_parent is None]
    ours, theirs = _both(run)
    assert ours == theirs
