"""tensorlib/ops/linalg.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


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


@pytest.mark.parametrize("rows, k, n", [(16, 784, 400), (64, 300, 256), (65, 300, 256), (16, 20, 400)])
def test_linear_of_a_few_rows_is_the_product_and_contiguous(rows, k, n):
    """x @ W.t() with few rows and a large W is computed the other way round on NumPy ((W @ x.T).T, which
    OpenBLAS runs faster): the same product, C-contiguous (view works), gradients included."""
    x = rng.standard_normal((rows, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    xt, wt = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    y = tl.nn.functional.linear(xt, wt)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert y.is_contiguous() and y.detach().numpy().flags.c_contiguous
    y.view(-1).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), np.broadcast_to(w.sum(0), x.shape), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(wt.grad.numpy(), np.broadcast_to(x.sum(0), w.shape), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_a_batch_times_a_matrix_folds_as_torch(layout):
    """`x @ w` and matmul of a 3+-d batch by a matrix, contiguous or not, run as torch folds them: reshape to
    rows (view, or clone and _unsafe_view), one mm, _unsafe_view back; the result is no autograd view (an
    in-place op on it is AddBackward0), the weight's gradient one product; values as NumPy's."""
    from profiler import profile
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 6, 8)).astype(np.float32)
    xa = {"contiguous": base, "transposed": base.transpose(1, 0, 2), "strided": base[:, ::2]}[layout]
    wa = rng.standard_normal((8, 5)).astype(np.float32)
    for fn in (lambda x, w: x @ w, tl.matmul):
        x = tl.tensor(base, requires_grad=True)
        xv = {"contiguous": x, "transposed": x.transpose(0, 1), "strided": x[:, ::2]}[layout]
        w = tl.tensor(wa, requires_grad=True)
        with profile() as p:
            y = fn(xv, w)
        names = [e.name for e in p.events()]
        view = {"contiguous": ["aten::view"], "strided": ["aten::_reshape_alias"],       # (torch 2.13's)
                "transposed": ["aten::clone", "aten::empty_like", "aten::empty", "aten::copy_", "aten::_unsafe_view"]}
        view = view[layout]
        assert names == ["aten::matmul", "aten::reshape", *view, "aten::mm", "aten::_unsafe_view"]
        assert y.grad_fn.name() == "UnsafeViewBackward0" and y._base is None
        assert y.grad_fn.next_functions[0][0].name() == "MmBackward0"
        np.testing.assert_allclose(y.detach().numpy(), xa @ wa, rtol=1e-5, atol=1e-5)
        g = rng.standard_normal(y.shape).astype(np.float32)
        (y * tl.tensor(g)).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), xa.reshape(-1, 8).T @ g.reshape(-1, 5), rtol=1e-4, atol=1e-4)
        y2 = fn(xv, w)
        y2.add_(1)
        assert y2.grad_fn.name() == "AddBackward0"
