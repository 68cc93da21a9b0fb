"""tensorlib.autograd.functional: vjp, jvp, jacobian, hessian, vhp, hvp against closed-form NumPy derivatives
and central finite differences, with torch's input/output conventions (see devtools/torch_compat for the
side-by-side check against torch)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

R = np.random.default_rng(2)
A = R.standard_normal(3)
B = R.standard_normal((2, 3))
V = R.standard_normal(3)


def T(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def f(x):                                  # R^3 -> R^3, J = diag(cos x * exp(sin x))
    return x.sin().exp()


def fd_jacobian(fn, a, eps=1e-6):
    """Central differences of the NumPy function fn at a: out.shape + a.shape."""
    cols = []
    for i in range(a.size):
        d = np.zeros(a.size)
        d[i] = eps
        cols.append((fn(a + d.reshape(a.shape)) - fn(a - d.reshape(a.shape))) / (2 * eps))
    return np.stack(cols, -1).reshape(np.shape(fn(a)) + a.shape)


def test_jacobian_matches_finite_differences_and_nests_output_then_input():
    J = jacobian(f, T(A))
    np.testing.assert_allclose(J.numpy(), np.diag(np.cos(A) * np.exp(np.sin(A))), rtol=1e-12)
    np.testing.assert_allclose(J.numpy(), fd_jacobian(lambda a: np.exp(np.sin(a)), A), rtol=1e-7)
    J2 = jacobian(lambda x, y: ((x.unsqueeze(0) * y).tanh(), x.sum()), (T(A), T(B)))
    assert isinstance(J2, tuple) and len(J2) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in J2)
    assert [tuple(j.shape) for j in J2[0]] == [(2, 3, 3), (2, 3, 2, 3)]
    assert [tuple(j.shape) for j in J2[1]] == [(3,), (2, 3)]
    np.testing.assert_allclose(J2[0][1].numpy(), fd_jacobian(lambda b: np.tanh(A * b), B), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(J2[1][1].numpy(), 0.0)          # x.sum() does not depend on y: zeros
    assert not J2[0][0].requires_grad


def test_jacobian_strict_and_create_graph():
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent of input 1"):
        jacobian(lambda x, y: x * 2, (T(A), T(B)), strict=True)
    x = T(A, grad=True)
    J = jacobian(lambda x: x ** 3, x, create_graph=True)
    assert J.requires_grad
    (g,) = tl.autograd.grad(J.sum(), x)
    np.testing.assert_allclose(g.numpy(), 6 * A, rtol=1e-12)
    np.testing.assert_allclose(jacobian(f, T(A), vectorize=True).numpy(), jacobian(f, T(A)).numpy())


def test_vjp_jvp():
    out, g = vjp(f, T(A), T(V))
    np.testing.assert_allclose(out.numpy(), np.exp(np.sin(A)))
    np.testing.assert_allclose(g.numpy(), V * np.cos(A) * np.exp(np.sin(A)), rtol=1e-12)
    out, jv = jvp(lambda x, y: x * y.sum(0), (T(A), T(B)), (T(V), T(B * 0.5)))
    np.testing.assert_allclose(jv.numpy(), V * B.sum(0) + A * (B * 0.5).sum(0), rtol=1e-12)
    _, (gx, gy) = vjp(lambda x, y: x * 2, (T(A), T(B)), T(V))
    np.testing.assert_allclose(gx.numpy(), 2 * V)
    np.testing.assert_allclose(gy.numpy(), np.zeros_like(B))
    with pytest.raises(RuntimeError, match="The vector v can only be None"):
        vjp(f, T(A))


def test_hessian_hvp_vhp():
    def g(x):
        return (x ** 3).sum() + x.prod()

    def g_np(a):
        return (a ** 3).sum() + a.prod()
    H = hessian(g, T(A))
    exact = np.diag(6 * A) + np.array([[0 if i == j else np.prod(np.delete(A, [i, j])) for j in range(3)]
                                       for i in range(3)])
    np.testing.assert_allclose(H.numpy(), exact, rtol=1e-12, atol=1e-14)
    grad_np = lambda a: fd_jacobian(g_np, a, 1e-5)   # noqa: E731
    np.testing.assert_allclose(H.numpy(), fd_jacobian(grad_np, A, 1e-4), rtol=1e-5, atol=1e-6)
    _, hv = hvp(g, T(A), T(V))
    _, vh = vhp(g, T(A), T(V))
    np.testing.assert_allclose(hv.numpy(), exact @ V, rtol=1e-12)
    np.testing.assert_allclose(vh.numpy(), V @ exact, rtol=1e-12)
    H2 = hessian(lambda x, y: (x.unsqueeze(0) * y).sum() ** 2, (T(A), T(B)))
    assert [[tuple(h.shape) for h in row] for row in H2] == [[(3, 3), (3, 2, 3)], [(2, 3, 3), (2, 3, 2, 3)]]
    with pytest.raises(RuntimeError, match="should contain a single element"):
        hessian(lambda x: x ** 2, T(A))


def test_reachable_as_an_attribute_and_through_compat():
    assert tl.autograd.functional.jacobian is jacobian
    import importlib.util
    assert importlib.util.find_spec("tensorlib.autograd.functional") is not None


def test_grad_is_grads_batched_one_vjp_per_row():
    """autograd.grad(is_grads_batched=True): each row of grad_outputs gives one vector-Jacobian product, the
    results stacked (the full Jacobian from the identity), the graph kept until the last row."""
    x = tl.tensor([0.5, -1.0, 2.0], dtype=tl.float64, requires_grad=True)
    y = x ** 2
    (jac,) = tl.autograd.grad(y, x, tl.eye(3, dtype=tl.float64), is_grads_batched=True)
    np.testing.assert_allclose(jac.numpy(), np.diag(2 * x.detach().numpy()))
    w = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    y = x ** 2              # (the first call freed its graph after the last row, as torch's)
    z = (w * 3).sum()
    gx, gw = tl.autograd.grad((y.sum(), z), (x, w), (tl.tensor([1.0, 2.0], dtype=tl.float64),
                                                     tl.tensor([0.0, 1.0], dtype=tl.float64)),
                              is_grads_batched=True)
    np.testing.assert_allclose(gx.numpy(), [2 * x.detach().numpy(), 4 * x.detach().numpy()])
    np.testing.assert_allclose(gw.numpy(), [[0.0, 0.0], [3.0, 3.0]])
    with pytest.raises(RuntimeError, match="sizes of the batch dimensions must all be equal"):
        tl.autograd.grad((y.sum(), z), (x, w), (tl.ones(2), tl.ones(3)), is_grads_batched=True)
    with pytest.warns(FutureWarning, match="only_inputs argument is deprecated"):
        tl.autograd.grad((x * 2).sum(), x, only_inputs=False)
