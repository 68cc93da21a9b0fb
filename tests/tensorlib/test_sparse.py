"""Sparse COO tensors (tensorlib/ops/sparse.py) against NumPy references: construction and its checks,
coalescing, conversions, the products and sums with their gradients (gradcheck in float64), the refusals of
dense ops, and the repr. devtools/torch_compat/test_sparse_against_torch.py compares the same with torch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import dispatch as D
from tensorlib.autograd import gradcheck

IDX = [[0, 1, 1, 2, 1], [2, 0, 2, 3, 2]]       # (1, 2) twice
VAL = [3.0, 4.0, 5.0, 6.0, 7.0]


def _dense_ref(idx=IDX, val=VAL, shape=(3, 4)):
    out = np.zeros(shape)
    np.add.at(out, tuple(np.asarray(idx)), np.asarray(val))
    return out


def _s(dtype=tl.float64, **kw):
    return tl.sparse_coo_tensor(IDX, tl.tensor(VAL, dtype=dtype), (3, 4), **kw)


def test_construction_and_metadata():
    s = _s()
    assert s.is_sparse and s.layout is tl.sparse_coo and s.layout == "sparse_coo"
    assert not tl.ones(2).is_sparse and tl.ones(2).layout is tl.strided and repr(tl.strided) == "torch.strided"
    assert s.shape == (3, 4) and s.size(1) == 4 and s.dim() == 2 and s.dtype is tl.float64
    assert str(s.device) == "cpu" and s.is_cpu and not s.is_cuda
    assert s._nnz() == 5 and s.sparse_dim() == 2 and s.dense_dim() == 0 and not s.is_coalesced()
    assert s.numel() == 12 and not s.is_contiguous()
    np.testing.assert_array_equal(s._indices().numpy(), IDX)
    np.testing.assert_array_equal(s._values().numpy(), VAL)
    np.testing.assert_array_equal(s.to_dense().numpy(), _dense_ref())


def test_size_is_inferred_and_dense_dims_are_kept():
    s = tl.sparse_coo_tensor(IDX, VAL)
    assert s.shape == (3, 4)
    h = tl.sparse_coo_tensor([[0, 2, 0]], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], (4, 2))
    assert (h.sparse_dim(), h.dense_dim()) == (1, 1)
    np.testing.assert_array_equal(h.to_dense().numpy(), [[6, 8], [0, 0], [3, 4], [0, 0]])
    c = h.coalesce()
    np.testing.assert_array_equal(c.indices().numpy(), [[0, 2]])
    np.testing.assert_array_equal(c.values().numpy(), [[6, 8], [3, 4]])


def test_numpy_indices_and_dtype_as_gcn_builds_its_adjacency():
    edges = np.array([[0, 1], [1, 2], [2, 0]], dtype=np.int32)
    adj = tl.sparse_coo_tensor(edges.T, tl.ones(3), (3, 3), dtype=tl.int64)
    assert adj.dtype is tl.int64 and adj._indices().dtype is tl.int64
    a = tl.eye(3) + adj
    assert a.dtype is tl.float32 and not a.is_sparse
    np.testing.assert_array_equal(a.numpy(), np.eye(3) + np.roll(np.eye(3), 1, axis=1))


def test_construction_errors():
    with pytest.raises(RuntimeError, match=r"indices and values must have same nnz, but got nnz from indices: 5, "
                                           r"nnz from values: 2"):
        tl.sparse_coo_tensor(IDX, [1.0, 2.0], (3, 4))
    with pytest.raises(RuntimeError, match=r"indices must be sparse_dim x nnz, but got: \[1, 1, 1\]"):
        tl.sparse_coo_tensor([[[0]]], [1.0], (1,))
    with pytest.raises(RuntimeError, match=r"'len\(size\) == sparse_dim \+ dense_dim' is not satisfied: "
                                           r"len\(size\) = 3, sparse_dim = 2, dense_dim = 0"):
        tl.sparse_coo_tensor(IDX, VAL, (3, 4, 5))
    with pytest.raises(RuntimeError, match="found negative index -1 for dim 0"):
        tl.sparse_coo_tensor([[-1], [0]], [1.0], (3, 4), check_invariants=True)
    with pytest.raises(RuntimeError, match="size is inconsistent with indices: for dim 1, size is 4 but found index 4"):
        tl.sparse_coo_tensor([[0], [4]], [1.0], (3, 4), check_invariants=True)
    with tl.sparse.check_sparse_tensor_invariants():
        with pytest.raises(RuntimeError, match="found negative index"):
            tl.sparse_coo_tensor([[-1], [0]], [1.0], (3, 4))
    for check in (None, False):     # checked always: torch leaves it unchecked (and reads out of bounds)
        with pytest.raises(RuntimeError, match="found negative index -1 for dim 0"):
            tl.sparse_coo_tensor([[-1], [0]], [1.0], (3, 4), check_invariants=check)
        with pytest.raises(RuntimeError, match="for dim 0, size is 3 but found index 5"):
            tl.sparse_coo_tensor([[5], [0]], [1.0], (3, 4), check_invariants=check)


def test_coalesce_sums_repeats_and_sorts():
    s = _s()
    c = s.coalesce()
    assert c.is_coalesced() and c.coalesce() is c and c._nnz() == 4
    np.testing.assert_array_equal(c.indices().numpy(), [[0, 1, 1, 2], [2, 0, 2, 3]])
    np.testing.assert_array_equal(c.values().numpy(), [3, 4, 12, 6])
    with pytest.raises(RuntimeError, match=r"Cannot get indices on an uncoalesced tensor, please call \.coalesce\(\) "
                                           r"first"):
        s.indices()
    with pytest.raises(RuntimeError, match=r"Cannot get values on an uncoalesced tensor, please call \.coalesce\(\) "
                                           r"first"):
        s.values()


def test_to_sparse_round_trip():
    a = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, -3.0]])
    s = tl.tensor(a).to_sparse()
    assert s.is_coalesced() and s._nnz() == 3 and s.to_sparse() is s and s.to_sparse_coo() is s
    np.testing.assert_array_equal(s.indices().numpy(), np.stack(np.nonzero(a)))
    np.testing.assert_array_equal(s.to_dense().numpy(), a)
    h = tl.tensor(a).to_sparse(1)
    assert (h.sparse_dim(), h.dense_dim(), h._nnz()) == (1, 1, 2)
    x = tl.tensor(a)
    assert x.to_dense() is x


@pytest.mark.parametrize("mm", [tl.mm, tl.spmm, tl.matmul, lambda a, b: a @ b, tl.sparse.mm])
def test_sparse_times_dense(mm):
    d = np.random.default_rng(0).standard_normal((4, 2))
    out = mm(_s(), tl.tensor(d))
    assert not out.is_sparse
    np.testing.assert_allclose(out.numpy(), _dense_ref() @ d)


def test_dense_times_sparse():
    d = np.random.default_rng(1).standard_normal((2, 3))
    np.testing.assert_allclose((tl.tensor(d) @ _s()).numpy(), d @ _dense_ref())
    np.testing.assert_allclose(tl.mm(tl.tensor(d), _s()).numpy(), d @ _dense_ref())


def test_product_errors():
    with pytest.raises(RuntimeError, match="addmm: Argument #3 \\(dense\\): Expected dim 0 size 4, got 3"):
        tl.mm(_s(), tl.ones(3, 2, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        tl.mm(_s(), tl.ones(4, 2))


def test_gradients_of_sparse_times_dense():
    """mm (MmBackward0): dense gradients for both operands, as torch; torch.sparse.mm: the sparse operand's
    gradient sparse, on its indices."""
    rng = np.random.default_rng(2)
    d = rng.standard_normal((4, 2))
    w = rng.standard_normal((3, 2))
    dense = tl.tensor(d, requires_grad=True)
    s = _s(requires_grad=True)
    out = tl.mm(s, dense)
    assert out.grad_fn.name() == "MmBackward0"
    (out * tl.tensor(w)).sum().backward()
    np.testing.assert_allclose(dense.grad.numpy(), _dense_ref().T @ w)
    assert not s.grad.is_sparse
    np.testing.assert_allclose(s.grad.numpy(), w @ d.T)
    s2 = _s(requires_grad=True)
    out = tl.sparse.mm(s2, tl.tensor(d))
    assert out.grad_fn.name() == "SparseAddmmBackward0"
    (out * tl.tensor(w)).sum().backward()
    g = s2.grad
    assert g.is_sparse and g.is_coalesced()
    full = w @ d.T
    np.testing.assert_allclose(g.values().numpy(), full[tuple(g.indices().numpy())])


def test_gradient_through_values_and_to_dense():
    v = tl.tensor(VAL, dtype=tl.float64, requires_grad=True)
    s = tl.sparse_coo_tensor(IDX, v, (3, 4))
    assert s.requires_grad and s.grad_fn.name() == "SparseCooTensorWithDimsAndTensorsBackward0"
    m = np.arange(12.0).reshape(3, 4)
    (s.to_dense() * tl.tensor(m)).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), m[tuple(np.asarray(IDX))])
    leaf = _s(requires_grad=True)
    d = leaf.to_dense()
    assert d.grad_fn.name() == "ToDenseBackward0"
    (d * tl.tensor(m)).sum().backward()
    assert leaf.grad.is_sparse
    np.testing.assert_allclose(leaf.grad.to_dense().numpy(), np.where(_dense_ref() != 0, m, 0))


def test_sparse_gradients_accumulate():
    leaf = _s(requires_grad=True)
    for _ in range(2):
        leaf.to_dense().sum().backward()
    assert leaf.grad.is_sparse
    np.testing.assert_allclose(leaf.grad.to_dense().numpy(), 2 * (_dense_ref() != 0))


@pytest.mark.parametrize("case", ["mm_dense", "mm_values", "dense_mm", "add", "sparse_mm", "sum_dim", "to_sparse",
                                  "scaled"])
def test_gradcheck(case):
    rng = np.random.default_rng(3)
    d = tl.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    a = tl.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    v = tl.tensor(rng.standard_normal(5), requires_grad=True)
    x = tl.tensor(rng.standard_normal((3, 4)), requires_grad=True)

    def sp(v):
        return tl.sparse_coo_tensor(IDX, v, (3, 4))
    fn, inputs = {
        "mm_dense": (lambda d: tl.mm(_s(), d), [d]),
        "mm_values": (lambda v, d: tl.mm(sp(v), d), [v, d]),
        "dense_mm": (lambda a, v: a @ sp(v), [a, v]),
        "add": (lambda x, v: x + sp(v) + sp(v), [x, v]),
        "sparse_mm": (lambda v, d: tl.sparse.mm(sp(v), d), [v, d]),
        "sum_dim": (lambda v: tl.sparse.sum(sp(v), 0).to_dense() + sp(v).sum(), [v]),
        "to_sparse": (lambda x: (x.to_sparse() * 3.0 / 2).to_dense(), [x]),
        "scaled": (lambda v: (-(2 * sp(v))).coalesce().values(), [v]),
    }[case]
    assert gradcheck(fn, inputs)


def test_add_and_scale():
    s = _s()
    ones = np.ones((3, 4))
    np.testing.assert_array_equal((tl.tensor(ones) + s).numpy(), ones + _dense_ref())
    np.testing.assert_array_equal(tl.add(tl.tensor(ones), s, alpha=2).numpy(), ones + 2 * _dense_ref())
    ss = s + s
    assert ss.is_sparse
    np.testing.assert_array_equal(ss.to_dense().numpy(), 2 * _dense_ref())
    for t, ref in ((2 * s, 2), (s * 2.5, 2.5), (s / 2, 0.5), (-s, -1)):
        assert t.is_sparse
        np.testing.assert_allclose(t.to_dense().numpy(), ref * _dense_ref())
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported. Use add\(dense, sparse\) "
                                           r"instead."):
        s + tl.tensor(ones)
    with pytest.raises(RuntimeError, match=r"add: expected 'self' and 'other' to have same size, but self has size "
                                           r"\[2, 4\] while other has size \[3, 4\] \(FYI: dense-sparse addition"):
        tl.ones(2, 4, dtype=tl.float64) + s
    with pytest.raises(RuntimeError, match=r"add: expected sizes of 'self' and 'other' to match, but \[3, 4\] != "
                                           r"\[3, 3\]"):
        s + tl.sparse_coo_tensor([[0], [0]], [1.0], (3, 3))
    t = s.t()
    assert t.is_sparse and t.shape == (4, 3) and not t.is_coalesced()
    np.testing.assert_array_equal(t.to_dense().numpy(), _dense_ref().T)


def test_sums():
    s = _s()
    ref = _dense_ref()
    total = s.sum()
    assert not total.is_sparse and total.ndim == 0 and total.item() == ref.sum()
    assert tl.sparse.sum(s).item() == ref.sum()
    rows = s.sum(1)
    assert rows.is_sparse
    np.testing.assert_array_equal(rows.to_dense().numpy(), ref.sum(1))
    np.testing.assert_array_equal(tl.sparse.sum(s, 0).to_dense().numpy(), ref.sum(0))
    both = tl.sparse.sum(s, (0, 1))
    assert not both.is_sparse and both.item() == ref.sum()


def test_conversions_keep_the_layout():
    s = _s()
    f = s.to(tl.float32)
    assert f.is_sparse and f.dtype is tl.float32 and s.float().dtype is tl.float32
    assert s.to("cpu") is s and s.cpu() is s
    c = s.clone()
    assert c.is_sparse and c._values()._data is not s._values()._data
    np.testing.assert_array_equal(c.to_dense().numpy(), _dense_ref())
    assert s.detach().is_sparse and s.data.is_sparse


def test_dense_ops_refuse_sparse_operands_as_torch():
    s = _s()
    for f, name in ((lambda: s.exp(), "exp"), (lambda: s.view(12), "view"), (lambda: s > 0, "gt"),
                    (lambda: tl.cat([s, s]), "cat"), (lambda: s.relu(), "relu")):
        with pytest.raises(NotImplementedError, match=f"Could not run 'aten::{name}' with arguments from the "
                                                      f"'SparseCPU' backend"):
            f()
    with pytest.raises(TypeError, match="can't convert Sparse layout tensor to numpy. Use Tensor.to_dense"):
        s.numpy()
    with pytest.raises(RuntimeError, match="Cannot access data pointer of Tensor that doesn't have storage"):
        s.data_ptr()


def test_sparse_ops_are_dispatched():
    """Every op on a sparse tensor passes the dispatcher, by torch's names (aten::mm for a sparse product)."""
    seen = []

    class Rec(D.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            seen.append(op.name)

    h = D.add_hook(Rec())
    try:
        s = tl.sparse_coo_tensor(IDX, tl.tensor(VAL), (3, 4))
        tl.mm(s, tl.ones(4, 2)).sum()
        s.to_dense()
        s.coalesce()
        tl.eye(3, 4) + s
    finally:
        D.remove_hook(h)
    ours = [n for n in seen if n not in ("sum", "ones", "eye", "tensor")]
    assert ours == ["sparse_coo_tensor", "mm", "to_dense", "coalesce", "add"]


def test_cuda_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="sparse COO tensors are CPU-only"):
        tl.sparse_coo_tensor(IDX, VAL, (3, 4), device="cuda")


def test_repr_is_torchs():
    s = tl.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3))
    assert repr(s) == ("tensor(indices=tensor([[0, 1, 1],\n"
                       "                       [2, 0, 2]]),\n"
                       "       values=tensor([3., 4., 5.]),\n"
                       "       size=(2, 3), nnz=3, layout=torch.sparse_coo)")
    e = tl.sparse_coo_tensor(tl.zeros(2, 0, dtype=tl.int64), tl.zeros(0), (2, 2))
    assert repr(e) == ("tensor(indices=tensor([], size=(2, 0)),\n"
                       "       values=tensor([], size=(0,)),\n"
                       "       size=(2, 2), nnz=0, layout=torch.sparse_coo)")
    g = tl.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [1, 2, 3], (2, 3), dtype=tl.float64, requires_grad=True)
    assert repr(g).endswith("size=(2, 3), nnz=3, dtype=torch.float64, layout=torch.sparse_coo,\n"
                            "       requires_grad=True)") or "dtype=tensorlib.float64" in repr(g)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_over_the_nonzeros(dim, log):
    """torch.sparse.softmax: the unspecified entries count as -inf; a row (column) of them is left empty."""
    s = _s()
    f = tl.sparse.log_softmax if log else tl.sparse.softmax
    out = f(s, dim)
    assert out.is_sparse and out.is_coalesced()
    dense = _dense_ref()
    present = np.zeros((3, 4), bool)
    present[tuple(np.asarray(IDX))] = True
    m = np.where(present, dense, -np.inf).max(axis=dim, keepdims=True)
    e = np.where(present, np.exp(dense - np.where(np.isinf(m), 0, m)), 0)
    ref = np.divide(e, e.sum(axis=dim, keepdims=True), out=np.zeros_like(e), where=present)
    got = out.to_dense().numpy()
    if log:
        np.testing.assert_allclose(got[present], np.log(ref[present]))
    else:
        np.testing.assert_allclose(got, ref)
    assert gradcheck(lambda v: f(tl.sparse_coo_tensor(IDX, v, (3, 4)), dim).to_dense(),
                     [tl.tensor(np.random.default_rng(4).standard_normal(5), requires_grad=True)])
    h = tl.sparse_coo_tensor([[0, 2, 0]], tl.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]], dtype=tl.float64), (4, 2))
    assert gradcheck(lambda v: f(tl.sparse_coo_tensor([[0, 2, 0]], v, (4, 2)), dim).to_dense(),
                     [h._values().detach().clone().requires_grad_()])


def test_payload_never_read_as_an_array():
    """Reads of a tensor's array refuse a sparse one (torch's errors), or read its dense value (item)."""
    import io
    s = _s()
    with pytest.raises(RuntimeError, match="Cannot access data pointer of Tensor that doesn't have storage"):
        s.tolist()
    with pytest.raises(RuntimeError, match="a Tensor with 12 elements cannot be converted to Scalar"):
        s.item()
    assert tl.sparse_coo_tensor([[0, 0]], [1.5, 2.0], (1,)).item() == 3.5
    with pytest.raises(RuntimeError, match="Cannot access strides of a sparse tensor"):
        s.stride()
    with pytest.raises(NotImplementedError, match="tensorlib.save: sparse COO tensors are not saved yet"):
        tl.save({"adj": s}, io.BytesIO())
