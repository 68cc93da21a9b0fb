"""Tensor methods added in tensorlib/ops/more_methods.py against torch 2.13: values (float64), gradients where
torch has them, and the in-place variants (same object back, same values)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
R = np.random.default_rng(1)
A = R.uniform(-0.9, 0.9, (3, 4))
B = R.uniform(0.1, 0.9, (3, 4))
M = R.uniform(-1, 1, (4, 4))
V = R.uniform(-1, 1, 4)
I1 = np.array([[12, 18, -4], [7, 0, 9]])
I2 = np.array([[8, 27, 6], [3, 5, 2]])
S = np.array([[1, 2, 1], [0, 3, 2]])
A[0, 1] = A[2, 2]          # a tie for cummax/cummin/kthvalue

FLOAT = {   # name -> (receiver, args, kwargs), differentiable in the receiver and in the float tensor args
    "addbmm": (M, (R.uniform(-1, 1, (2, 4, 3)), R.uniform(-1, 1, (2, 3, 4))), {"beta": 0.5, "alpha": 2}),
    "addmv": (V, (M, V), {"alpha": 3}),
    "addr": (M, (V, V), {"beta": 2}),
    "copysign": (A, (np.array([-1.0, 2.0, -0.0, 0.0]),), {}),
    "ldexp": (A, (np.array([1, 2, 3, 0]),), {}),   # torch: a negative int exponent gets grad 0 (int pow)
    "diagflat": (V, (1,), {}),
    "inner": (A, (B,), {}),
    "kron": (A[:2, :2], (M[:3, :2],), {}),
    "logcumsumexp": (A, (1,), {}),
    "quantile": (A, (0.3, 1), {}),
    "renorm": (A, (2, 0, 0.8), {}),
    "select_scatter": (A, (B[0], 0, 1), {}),
    "slice_scatter": (M, (M[:, ::2] * 2, 1, 0, None, 2), {}),
    "index_put": (M, ((np.array([0, 2]), np.array([1, 3])), np.array([5.0, 6.0])), {}),
    "put": (M, (np.array([0, 5, -1]), np.array([1.0, 2.0, 3.0])), {}),
    "cov": (A, (), {"correction": 0}),
    "corrcoef": (A, (), {}),
}
TUPLE = {"cummax": (A, (1,)), "cummin": (A, (0,)), "kthvalue": (A, (2, 1))}
INT = {"gcd": (I1, I2), "lcm": (I1, I2), "bitwise_left_shift": (I1, S), "bitwise_right_shift": (I1, S)}


def _pair(v, grad=False):
    if isinstance(v, np.ndarray):
        rg = grad and v.dtype.kind == "f"
        return (tl.tensor(v, requires_grad=rg), torch.tensor(v, requires_grad=rg))
    if isinstance(v, tuple):
        a, b = zip(*(_pair(x, grad) for x in v))
        return tuple(a), tuple(b)
    return v, v


@pytest.mark.parametrize("name", sorted(FLOAT))
def test_float_values_and_grads(name):
    recv, args, kw = FLOAT[name]
    x, tx = _pair(recv, True)
    la, ta = zip(*(_pair(a, True) for a in args)) if args else ((), ())
    out, tout = getattr(x, name)(*la, **kw), getattr(tx, name)(*ta, **kw)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(2).uniform(-1, 1, tuple(tout.shape))
    out.backward(tl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TUPLE))
def test_values_indices(name):
    recv, args = TUPLE[name]
    x, tx = _pair(recv, True)
    v, i = getattr(x, name)(*args)
    tv, ti = getattr(tx, name)(*args)
    np.testing.assert_allclose(v.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    v.sum().backward()
    tv.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("name", sorted(INT))
def test_integer_ops_and_inplace(name):
    a, b = INT[name]
    np.testing.assert_array_equal(getattr(tl.tensor(a), name)(tl.tensor(b)).numpy(),
                                  getattr(torch.tensor(a), name)(torch.tensor(b)).numpy())
    x, tx = tl.tensor(a), torch.tensor(a)
    assert getattr(x, name + "_")(tl.tensor(b)) is x
    getattr(tx, name + "_")(torch.tensor(b))
    np.testing.assert_array_equal(x.numpy(), tx.numpy())


def test_misc_against_torch():
    for q, interp in [(0.5, "linear"), (0.25, "lower"), (0.75, "higher"), (0.4, "midpoint"), (0.6, "nearest")]:
        np.testing.assert_allclose(tl.tensor(A).quantile(q, 0, interpolation=interp).numpy(),
                                   torch.tensor(A).quantile(q, 0, interpolation=interp).numpy())
    qs = np.array([0.1, 0.9])
    np.testing.assert_allclose(tl.tensor(A).quantile(tl.tensor(qs)).numpy(),
                               torch.tensor(A).quantile(torch.tensor(qs)).numpy())
    An = A.copy()
    An[1, 2] = np.nan
    np.testing.assert_allclose(tl.tensor(An).nanquantile(0.3, 1).numpy(), torch.tensor(An).nanquantile(0.3, 1).numpy())
    np.testing.assert_allclose(tl.tensor(An).quantile(0.3, 1).numpy(), torch.tensor(An).quantile(0.3, 1).numpy())
    z = np.array([-1.0, 0.0, -0.0, 2.0, -np.inf])
    np.testing.assert_array_equal(tl.tensor(z).signbit().numpy(), torch.tensor(z).signbit().numpy())
    np.testing.assert_array_equal(tl.tensor(A > 0).argwhere().numpy(), torch.tensor(A > 0).argwhere().numpy())
    np.testing.assert_array_equal(tl.tensor(A > 0).nonzero_static(size=20).numpy(),
                                  torch.tensor(A > 0).nonzero_static(size=20).numpy())
    np.testing.assert_array_equal(tl.tensor(A > 0).nonzero_static(size=2).numpy(),
                                  torch.tensor(A > 0).nonzero_static(size=2).numpy())
    for wrap in (False, True):
        x, tx = tl.zeros(7, 3), torch.zeros(7, 3)
        assert x.fill_diagonal_(5.0, wrap) is x
        np.testing.assert_array_equal(x.numpy(), tx.fill_diagonal_(5.0, wrap).numpy())
    np.testing.assert_array_equal(tl.zeros(3, 3, 3).fill_diagonal_(1).numpy(),
                                  torch.zeros(3, 3, 3).fill_diagonal_(1).numpy())
    idx = (np.array([0, 0, 2]), np.array([1, 1, 3]))
    x, tx = tl.tensor(M), torch.tensor(M)
    x.index_put_(tuple(tl.tensor(i) for i in idx), tl.tensor([1.0, 2.0, 3.0]), accumulate=True)
    tx.index_put_(tuple(torch.tensor(i) for i in idx), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
                  accumulate=True)
    np.testing.assert_allclose(x.numpy(), tx.numpy())
    np.testing.assert_allclose(tl.tensor(A).cov(fweights=tl.tensor([1, 2, 1, 3]), aweights=tl.tensor(V + 2)).numpy(),
                               torch.tensor(A).cov(fweights=torch.tensor([1, 2, 1, 3]),
                                                   aweights=torch.tensor(V + 2)).numpy(), rtol=1e-10)
    nx = np.array([1.0, 2.0]), np.array([2.0, 0.0])
    np.testing.assert_array_equal(tl.tensor(nx[0]).nextafter(tl.tensor(nx[1])).numpy(),
                                  torch.tensor(nx[0]).nextafter(torch.tensor(nx[1])).numpy())
    assert tuple(tl.tensor(A).new(2, 3).shape) == (2, 3) and tl.tensor(A).new([1.0, 2.0]).dtype is tl.float64
    assert tl.tensor(A).new().numel() == 0
    with pytest.raises(RuntimeError, match="kthvalue"):
        tl.tensor(A).kthvalue(9, 1)
    with pytest.raises(torch.RuntimeError if hasattr(torch, "RuntimeError") else RuntimeError):
        torch.tensor(A).kthvalue(9, 1)
    with pytest.raises(RuntimeError, match="q values must be in the range"):
        tl.tensor(A).quantile(1.5)
    with pytest.raises(NotImplementedError):
        tl.tensor(A).gcd(tl.tensor(A))
