"""tensorlib.func's transforms (grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap) against
closed-form NumPy derivatives, and their functional behaviour: nothing accumulates into .grad, they work under
no_grad, they nest, and vmap(grad(f)) gives per-sample gradients (devtools/torch_compat checks them against
torch side by side)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.func import functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap

R = np.random.default_rng(4)
A = R.standard_normal(3)
B = R.standard_normal((4, 3))


def T(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_grad_argnums_aux_and_pytrees():
    def f(x, y):
        return (x ** 3).sum() * y.sum()
    np.testing.assert_allclose(grad(f)(T(A), T(B)).numpy(), 3 * A ** 2 * B.sum(), rtol=1e-12)
    gx, gy = grad(f, argnums=(0, 1))(T(A), T(B))
    np.testing.assert_allclose(gy.numpy(), np.full(B.shape, (A ** 3).sum()), rtol=1e-12)
    (g, aux) = grad(lambda x: ((x ** 2).sum(), x * 3), has_aux=True)(T(A))
    np.testing.assert_allclose(g.numpy(), 2 * A)
    np.testing.assert_allclose(aux.numpy(), 3 * A)
    g, (value, aux) = grad_and_value(lambda x: ((x ** 2).sum(), {"m": x.mean()}), has_aux=True)(T(A))
    np.testing.assert_allclose(value.item(), (A ** 2).sum())
    assert set(aux) == {"m"}
    gp = grad(lambda p: (p["w"] * p["b"][0]).sum())({"w": T(A), "b": [T(2 * A)]})
    np.testing.assert_allclose(gp["w"].numpy(), 2 * A)
    np.testing.assert_allclose(gp["b"][0].numpy(), A)
    with pytest.raises(RuntimeError, match="Got argnum=2, but only 2 positional inputs"):
        grad(f, argnums=2)(T(A), T(B))
    with pytest.raises(RuntimeError, match="to return a scalar Tensor, got tensor with 1 dims"):
        grad(lambda x: x)(T(A))


def test_grad_is_functional():
    x = T(A, grad=True)
    g = grad(lambda x: (x ** 3).sum())(x)
    assert x.grad is None and g.requires_grad          # differentiable back to x, as torch's
    (gg,) = tl.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * A, rtol=1e-12)
    with tl.no_grad():
        g = grad(lambda x: (x ** 3).sum())(x)
    assert not g.requires_grad and x.grad is None
    np.testing.assert_allclose(g.numpy(), 3 * A ** 2, rtol=1e-12)
    assert not grad(lambda x: (x ** 3).sum())(T(A)).requires_grad


def test_nested_transforms():
    d2 = grad(grad(lambda x: (x ** 3).sin()))(T(0.7))
    x = 0.7
    np.testing.assert_allclose(d2.item(), 6 * x * np.cos(x ** 3) - 9 * x ** 4 * np.sin(x ** 3), rtol=1e-12)
    # the inner transform differentiates y only, not the x it captures (x * y ** 2 -> 2 x y, at y = x: 4 x)
    g = grad(lambda x: grad(lambda y: (x * y ** 2).sum())(x).sum())(T(A))
    np.testing.assert_allclose(g.numpy(), 4 * A, rtol=1e-12)
    H = hessian(lambda x: (x ** 3).sum())(T(A))
    np.testing.assert_allclose(H.numpy(), np.diag(6 * A), rtol=1e-12)
    np.testing.assert_allclose(jacrev(jacrev(lambda x: (x ** 3).sum()))(T(A)).numpy(), np.diag(6 * A))


def test_vjp_jvp_jacobians():
    out, fn = vjp(lambda x: x.sin(), T(A))
    (g,) = fn(T(B[0]))
    np.testing.assert_allclose(g.numpy(), B[0] * np.cos(A), rtol=1e-12)
    out, jv = jvp(lambda x, y: x * y, (T(A), T(B[0])), (T(B[1]), T(B[2])))
    np.testing.assert_allclose(jv.numpy(), B[1] * B[0] + A * B[2], rtol=1e-12)
    for jac in (jacrev, jacfwd):
        J = jac(lambda x, y: (x * y, x.sum()), argnums=(0, 1))(T(A), T(B[0]))
        np.testing.assert_allclose(J[0][0].numpy(), np.diag(B[0]))
        np.testing.assert_allclose(J[0][1].numpy(), np.diag(A))
        np.testing.assert_allclose(J[1][0].numpy(), np.ones(3))
        assert tuple(J[1][1].shape) == (3,)


def test_vmap_loops_and_stacks():
    np.testing.assert_allclose(vmap(lambda x: x.sin() * x.sum())(T(B)).numpy(),
                               np.sin(B) * B.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(vmap(lambda x, y: x * y, in_dims=(1, None))(T(B), T(2.0)).numpy(), 2 * B.T)
    out = vmap(lambda x: (x, x.sum()), out_dims=(1, 0))(T(B))
    np.testing.assert_allclose(out[0].numpy(), B.T)
    np.testing.assert_allclose(out[1].numpy(), B.sum(1))
    assert tuple(vmap(lambda x: x * 2)(T(np.zeros((0, 3)))).shape) == (0, 3)
    with pytest.raises(ValueError, match="Expected all tensors to have the same size in the mapped dimension"):
        vmap(lambda x, y: x)(T(B), T(A))
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda x: x * tl.rand(3))(T(B))
    same = vmap(lambda x: x + tl.rand(3, dtype=tl.float64), randomness="same")(T(np.zeros((3, 3))))
    assert tl.equal(same[0], same[2])


def test_per_sample_gradients():
    model = tl.nn.Linear(3, 2).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    X, Y = T(B), T(R.standard_normal((4, 2)))

    def loss(p, x, y):
        return ((functional_call(model, p, (x.unsqueeze(0),)) - y) ** 2).sum()
    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, X, Y)
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    r = B @ W.T + b - Y.numpy()                                   # (4, 2) residuals
    np.testing.assert_allclose(per["weight"].numpy(), 2 * r[:, :, None] * B[:, None, :], rtol=1e-12)
    np.testing.assert_allclose(per["bias"].numpy(), 2 * r, rtol=1e-12)
    assert model.weight.grad is None
