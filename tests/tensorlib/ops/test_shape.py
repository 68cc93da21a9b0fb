"""tensorlib/ops/shape.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


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


def test_ops_that_are_not_views_never_alias_their_inputs():
    """flip copies in torch; NumPy's flip is a view: writing into the result must not change the input."""
    a = tl.tensor([1.0, 2.0, 3.0])
    b = tl.flip(a, [0])
    b[0] = 100.0
    b.add_(1)
    eq(a, [1.0, 2.0, 3.0])
    assert b.is_contiguous()
    m = tl.tensor([[1.0, 2.0], [3.0, 4.0]])
    m.fliplr().zero_()
    m.flipud().zero_()
    eq(m, [[1.0, 2.0], [3.0, 4.0]])
