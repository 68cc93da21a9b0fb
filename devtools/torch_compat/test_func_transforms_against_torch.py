"""torch.autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) and torch.func's transforms (grad,
grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap) against torch 2.13 side by side, on float64 inputs:
the same result structure (tuples, lists, dicts nested alike, tensor shapes), values within 1e-10, which results
carry history (requires_grad), and the same errors (type and message) for bad arguments."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.autograd.functional  # noqa: F401 - torch.autograd.functional after `import torch`
import tensorlib.func

torch = pytest.importorskip("torch")

R = np.random.default_rng(5)
A = R.standard_normal(3)
B = R.standard_normal((2, 3))
C = R.standard_normal(4)


def _same(a, b, path="result"):
    """a (torch's) and b (tensorlib's): the same nesting, shapes, values and requires_grad."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, tl.Tensor), f"{path}: {type(b)} where torch has a Tensor"
        assert tuple(a.shape) == tuple(b.shape), f"{path}: shape {tuple(b.shape)} vs torch's {tuple(a.shape)}"
        assert a.requires_grad == b.requires_grad, f"{path}: requires_grad {b.requires_grad} vs {a.requires_grad}"
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=path)
        return
    assert type(a) is type(b), f"{path}: {type(b)} where torch has {type(a)}"
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"{path}: length {len(b)} vs torch's {len(a)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(b)} vs {list(a)}"
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    else:
        assert a == b, f"{path}: {b} vs torch's {a}"


def both(fn):
    """fn(L, AF, F) with L torch then tensorlib (AF its autograd.functional, F its func): the same results."""
    _same(fn(torch, torch.autograd.functional, torch.func), fn(tl, tl.autograd.functional, tl.func))


def errs(fn):
    """fn raises the same exception type and message on both."""
    got = []
    for L, AF, F in ((torch, torch.autograd.functional, torch.func), (tl, tl.autograd.functional, tl.func)):
        with pytest.raises(Exception) as e:
            fn(L, AF, F)
        got.append((type(e.value).__name__, str(e.value).replace("tensorlib", "torch")))
    assert got[0] == got[1]


def t(L, a, grad=False):
    return L.tensor(a, dtype=L.float64, requires_grad=grad)


def f_single(L, x):
    return (x.sin() * x).exp()


def f_multi(L, x, y):
    return (x * y[0].sum(), (x.unsqueeze(0) * y).tanh())


def f_scalar(L, x, y=None):
    out = (x ** 3).sum() + x.sin().prod()
    return out if y is None else out + (x.unsqueeze(0) * y).cos().sum()


# --- torch.autograd.functional ----------------------------------------------------------------------------

@pytest.mark.parametrize("create_graph", [False, True])
def test_af_vjp_jvp(create_graph):
    both(lambda L, AF, F: AF.vjp(functools.partial(f_single, L), t(L, A), t(L, C[:3]), create_graph=create_graph))
    both(lambda L, AF, F: AF.vjp(functools.partial(f_multi, L), (t(L, A), t(L, B)),
                                 (t(L, C[:3]), t(L, B * 0.3)), create_graph=create_graph))
    both(lambda L, AF, F: AF.vjp(lambda x: (x ** 2).sum(), t(L, A, True), create_graph=create_graph))
    both(lambda L, AF, F: AF.jvp(functools.partial(f_single, L), t(L, A), t(L, C[:3]), create_graph=create_graph))
    both(lambda L, AF, F: AF.jvp(functools.partial(f_multi, L), (t(L, A), t(L, B)),
                                 (t(L, C[:3]), t(L, B * 0.3)), create_graph=create_graph))
    both(lambda L, AF, F: AF.jvp(lambda x: x * 3, t(L, [2.0], True), create_graph=create_graph))


@pytest.mark.parametrize("vectorize", [False, True])
def test_af_jacobian(vectorize):
    both(lambda L, AF, F: AF.jacobian(functools.partial(f_single, L), t(L, A), vectorize=vectorize))
    both(lambda L, AF, F: AF.jacobian(functools.partial(f_multi, L), (t(L, A), t(L, B)), vectorize=vectorize))
    both(lambda L, AF, F: AF.jacobian(lambda x, y: x * 2, (t(L, A), t(L, C))))          # y unused: zeros
    both(lambda L, AF, F: AF.jacobian(lambda x: (x.sum(), x * 2), t(L, A)))
    both(lambda L, AF, F: AF.jacobian(lambda x: x ** 2, t(L, A, True), create_graph=True, vectorize=vectorize))
    both(lambda L, AF, F: AF.jacobian(lambda x: x ** 2, t(L, A), strategy="forward-mode", vectorize=True))


def test_af_hessian_hvp_vhp():
    both(lambda L, AF, F: AF.hessian(functools.partial(f_scalar, L), t(L, A)))
    both(lambda L, AF, F: AF.hessian(functools.partial(f_scalar, L), (t(L, A), t(L, B))))
    both(lambda L, AF, F: AF.hessian(lambda x, y: (x ** 2).sum() * 1.0, (t(L, A), t(L, C))))
    both(lambda L, AF, F: AF.hessian(functools.partial(f_scalar, L), t(L, A, True), create_graph=True))
    for name in ("hvp", "vhp"):
        both(lambda L, AF, F: getattr(AF, name)(functools.partial(f_scalar, L), t(L, A), t(L, C[:3])))
        both(lambda L, AF, F: getattr(AF, name)(functools.partial(f_scalar, L), (t(L, A), t(L, B)),
                                                (t(L, C[:3]), t(L, B))))
        both(lambda L, AF, F: getattr(AF, name)(functools.partial(f_scalar, L), t(L, A, True), t(L, C[:3]),
                                                create_graph=True))


def test_af_strict_and_errors():
    errs(lambda L, AF, F: AF.jacobian(lambda x, y: x * 2, (t(L, A), t(L, C)), strict=True))
    errs(lambda L, AF, F: AF.jacobian(lambda x: t(L, A), t(L, A), strict=True))
    errs(lambda L, AF, F: AF.vjp(lambda x, y: x * 2, (t(L, A), t(L, C)), t(L, A), strict=True))
    errs(lambda L, AF, F: AF.jvp(lambda x, y: x * 2, (t(L, A), t(L, C)), (t(L, A), t(L, C)), strict=True))
    errs(lambda L, AF, F: AF.hessian(lambda x: x.sum(), t(L, A), strict=True))
    errs(lambda L, AF, F: AF.hvp(lambda x: x.sum(), t(L, A), t(L, A), strict=True))
    errs(lambda L, AF, F: AF.vhp(lambda x: x ** 2, t(L, A), t(L, A)))
    errs(lambda L, AF, F: AF.hessian(lambda x: x ** 2, t(L, A)))
    errs(lambda L, AF, F: AF.vjp(lambda x: x ** 2, t(L, A)))
    errs(lambda L, AF, F: AF.jvp(lambda x: x ** 2, t(L, A)))
    errs(lambda L, AF, F: AF.vjp(lambda x: x ** 2, t(L, A), t(L, C)))
    errs(lambda L, AF, F: AF.vjp(lambda x: (x, x), t(L, A), (t(L, A),)))
    errs(lambda L, AF, F: AF.jacobian(lambda x: x, [t(L, A)]))
    errs(lambda L, AF, F: AF.jacobian(lambda x: x, (t(L, A), 3.0)))
    errs(lambda L, AF, F: AF.jacobian(lambda x: 3.0, t(L, A)))
    errs(lambda L, AF, F: AF.jacobian(lambda x: x, t(L, A), strategy="sideways"))
    errs(lambda L, AF, F: AF.jacobian(lambda x: x, t(L, A), strategy="forward-mode"))
    errs(lambda L, AF, F: AF.jacobian(lambda x: x, t(L, A), vectorize=True, strict=True))
    # not strict: an output independent of the input gives zeros
    both(lambda L, AF, F: AF.vjp(lambda x, y: x * 2, (t(L, A), t(L, C)), t(L, A)))
    both(lambda L, AF, F: AF.jvp(lambda x: (x * 2, t(L, C)), t(L, A), t(L, A)))
    both(lambda L, AF, F: AF.hvp(lambda x: x.sum(), t(L, A), t(L, A)))


# --- torch.func ---------------------------------------------------------------------------------------------

def test_func_grad_and_value_argnums_aux():
    both(lambda L, AF, F: F.grad(functools.partial(f_scalar, L))(t(L, A)))
    both(lambda L, AF, F: F.grad(functools.partial(f_scalar, L), argnums=1)(t(L, A), t(L, B)))
    both(lambda L, AF, F: F.grad(functools.partial(f_scalar, L), argnums=(0, 1))(t(L, A), t(L, B)))
    both(lambda L, AF, F: F.grad(functools.partial(f_scalar, L), argnums=-1)(t(L, A), t(L, B)))
    both(lambda L, AF, F: F.grad_and_value(lambda x: ((x ** 2).sum(), x.cos()), has_aux=True)(t(L, A)))
    both(lambda L, AF, F: F.grad_and_value(functools.partial(f_scalar, L), argnums=(1, 0))(t(L, A), t(L, B)))
    both(lambda L, AF, F: F.grad(lambda p: (p["w"] * p["b"][0]).sum() + p["b"][1].sum())(
        {"w": t(L, A), "b": (t(L, C[:3]), t(L, B))}))
    both(lambda L, AF, F: F.grad(lambda x, k=2.0: (x * k).sum())(t(L, A), k=3.0))


def test_func_grad_is_functional():
    """No .grad accumulates; history only where the input or a capture requires grad, and grad mode is on."""
    for L, F in ((torch, torch.func), (tl, tl.func)):
        x = t(L, A, True)
        g = F.grad(lambda x: (x ** 3).sum())(x)
        assert x.grad is None and g.requires_grad
        with L.no_grad():
            g2 = F.grad(lambda x: (x ** 3).sum())(x)
        assert not g2.requires_grad
        np.testing.assert_allclose(g2.numpy(), 3 * A ** 2)
    both(lambda L, AF, F: F.grad(lambda x: (x ** 3).sum())(t(L, A, True)))
    both(lambda L, AF, F: F.grad(lambda x: (x ** 3).sum())(t(L, A)))
    w = {}

    def captured(L, AF, F):
        w[L] = t(L, C[:3], True)
        return F.grad_and_value(lambda x: (w[L] * x ** 2).sum())(t(L, A))
    both(captured)

    def higher(L, AF, F):                       # differentiate a transform's result with regular autograd
        x = t(L, A, True)
        g = F.grad(lambda x: (x ** 3).sum())(x)
        return L.autograd.grad(g.sum(), x)
    both(higher)


def test_func_nested_transforms():
    both(lambda L, AF, F: F.grad(F.grad(lambda x: (x ** 3).sin()))(t(L, 0.7)))
    both(lambda L, AF, F: F.grad(lambda x: F.grad(lambda y: (x * y ** 2).sum())(x).sum())(t(L, A)))
    both(lambda L, AF, F: F.jacrev(F.jacrev(functools.partial(f_single, L)))(t(L, A)))
    both(lambda L, AF, F: F.hessian(functools.partial(f_scalar, L))(t(L, A)))
    both(lambda L, AF, F: F.hessian(functools.partial(f_scalar, L), argnums=(0, 1))(t(L, A), t(L, B)))

    def inner_no_grad(L, AF, F):
        def f(x):
            with L.no_grad():
                g = F.grad(lambda y: (y ** 3).sum())(x)
            return (g * x).sum()
        return F.grad(f)(t(L, A))
    both(inner_no_grad)


def test_func_vjp_jvp():
    def vjp_case(L, AF, F):
        out, fn = F.vjp(functools.partial(f_multi, L), t(L, A), t(L, B))
        return out, fn((t(L, C[:3]), t(L, B * 0.5)))
    both(vjp_case)

    def vjp_aux(L, AF, F):
        out, fn, aux = F.vjp(lambda x: (x.sin(), {"c": x.cos()}), t(L, A), has_aux=True)
        return out, fn(t(L, C[:3])), aux
    both(vjp_aux)
    both(lambda L, AF, F: F.jvp(functools.partial(f_multi, L), (t(L, A), t(L, B)), (t(L, C[:3]), t(L, B))))
    both(lambda L, AF, F: F.jvp(lambda x: (x.exp(), x.sum()), (t(L, A),), (t(L, C[:3]),)))
    both(lambda L, AF, F: F.jvp(lambda x: (x.exp(), x.sum()), (t(L, A),), (t(L, C[:3]),), has_aux=True))
    both(lambda L, AF, F: F.jvp(lambda x, y: x * 2, (t(L, A), t(L, C)), (t(L, A), t(L, C))))
    errs(lambda L, AF, F: F.jvp(lambda x: x, t(L, A), (t(L, A),)))
    errs(lambda L, AF, F: F.jvp(lambda x: x, (t(L, A),), [t(L, A)]))
    errs(lambda L, AF, F: F.jvp(lambda x: t(L, C), (t(L, A),), (t(L, A),), strict=True))

    def vjp_bad_cot(L, AF, F):
        _, fn = F.vjp(lambda x: (x, x), t(L, A))
        fn(t(L, A))
    errs(vjp_bad_cot)
    errs(lambda L, AF, F: F.vjp(lambda x: x.long(), t(L, A)))
    errs(lambda L, AF, F: F.vjp(lambda x: x, t(L, A), has_aux=True))


def test_func_jacrev_jacfwd():
    for name in ("jacrev", "jacfwd"):
        both(lambda L, AF, F: getattr(F, name)(functools.partial(f_single, L))(t(L, A)))
        both(lambda L, AF, F: getattr(F, name)(functools.partial(f_multi, L), argnums=(0, 1))(t(L, A), t(L, B)))
        both(lambda L, AF, F: getattr(F, name)(functools.partial(f_multi, L), argnums=1)(t(L, A), t(L, B)))
        both(lambda L, AF, F: getattr(F, name)(lambda x: {"s": x.sum(), "l": [x * 2]})(t(L, A)))
        both(lambda L, AF, F: getattr(F, name)(lambda p: p["a"] * p["b"].sum())({"a": t(L, A), "b": t(L, C)}))
        both(lambda L, AF, F: getattr(F, name)(lambda x: (x ** 2, x.sum()), has_aux=True)(t(L, A)))
        errs(lambda L, AF, F: getattr(F, name)(lambda x: x, argnums=3)(t(L, A)))
    both(lambda L, AF, F: F.jacrev(functools.partial(f_single, L), chunk_size=2)(t(L, A)))
    errs(lambda L, AF, F: F.jacrev(lambda x: x, chunk_size=0))
    errs(lambda L, AF, F: F.jacfwd(lambda x: x * L.rand(3, dtype=L.float64))(t(L, A)))
    errs(lambda L, AF, F: F.jacrev(lambda x: x)(t(L, A).to(L.complex128)))


def test_func_argnums_errors():
    for argnums in (2, -3, (0, 0), (), 1.0, [0]):
        errs(lambda L, AF, F: F.grad(lambda x, y: (x * y).sum(), argnums=argnums)(t(L, A), t(L, A)))
    errs(lambda L, AF, F: F.grad(lambda x: x)(t(L, A)))
    errs(lambda L, AF, F: F.grad(lambda x: 3.0)(t(L, A)))
    errs(lambda L, AF, F: F.grad(lambda x: x.sum())(3.0))
    errs(lambda L, AF, F: F.grad(lambda x: x.sum(), has_aux=True)(t(L, A)))
    errs(lambda L, AF, F: F.grad(lambda x: (x.sum(), 3), has_aux=True)(t(L, A)))


def test_vmap_values_and_dims():
    both(lambda L, AF, F: F.vmap(lambda x: x.sin() * x.sum())(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: x.sin(), in_dims=1)(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x, y: x * y, in_dims=(1, None))(t(L, B), t(L, [2.0, 3.0])))
    both(lambda L, AF, F: F.vmap(lambda x, y: x * y[0] + y[1], in_dims=(0, (None, 0)))(t(L, B), (t(L, 2.0),
                                                                                                t(L, [1.0, 2.0]))))
    both(lambda L, AF, F: F.vmap(lambda a, b: a * b["k"], in_dims=(0, {"k": None}))(t(L, B), {"k": t(L, 2.0)}))
    both(lambda L, AF, F: F.vmap(lambda x: (x, x.sum()), out_dims=(1, 0))(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: x, out_dims=-1)(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: [x, {"q": x * 2}])(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: (x, 3.0), out_dims=(0, None))(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: L.ones(2, dtype=L.float64))(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: L.ones(2, dtype=L.float64), out_dims=None)(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x, k=1.0: x * k)(t(L, B), k=3.0))
    both(lambda L, AF, F: F.vmap(F.vmap(lambda x: x.exp().sum()))(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: x.sum(), chunk_size=1)(t(L, B)))
    both(lambda L, AF, F: F.vmap(lambda x: x * 2)(t(L, B, True)))
    both(lambda L, AF, F: F.vmap(lambda x: x * 2)(t(L, np.zeros((0, 3)))))


def test_vmap_of_grad_per_sample_gradients():
    both(lambda L, AF, F: F.vmap(F.grad(lambda x: (x ** 3).sum()))(t(L, B)))

    def per_sample(L, AF, F):
        L.manual_seed(0)
        model = L.nn.Linear(3, 2).double()
        with L.no_grad():
            model.weight.copy_(t(L, B))
            model.bias.copy_(t(L, [0.1, -0.2]))
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(p, x, y):
            out = F.functional_call(model, p, (x.unsqueeze(0),))
            return L.nn.functional.mse_loss(out, y.unsqueeze(0))
        X, Y = t(L, R_X), t(L, R_Y)
        return F.vmap(F.grad(loss), in_dims=(None, 0, 0))(params, X, Y)
    both(per_sample)
    both(lambda L, AF, F: F.vmap(F.jacrev(lambda x: x.sin() * x[0]))(t(L, B)))
    both(lambda L, AF, F: F.vmap(F.hessian(lambda x: (x ** 3).sum()))(t(L, B)))


R_X = R.standard_normal((5, 3))
R_Y = R.standard_normal((5, 2))


def test_vmap_errors():
    x = B
    for kw in ({"in_dims": 2}, {"in_dims": 1.0}, {"in_dims": (1.0,)}, {"in_dims": None}, {"in_dims": [0]},
               {"in_dims": (0, 0)}, {"out_dims": "a"}, {"out_dims": (0, 0)}):
        errs(lambda L, AF, F: F.vmap(lambda a: a, **kw)(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a, b: a, in_dims=(0, [None]))(t(L, x), (1,)))
    errs(lambda L, AF, F: F.vmap(lambda a: a, in_dims=0)(3.0))
    errs(lambda L, AF, F: F.vmap(lambda a, b: a)(t(L, x), t(L, C)))
    errs(lambda L, AF, F: F.vmap(lambda a: 3)(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a: (a, None))(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a: (a, a.sum()), out_dims=(1,))(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a: a, out_dims=None)(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a: a, randomness="x"))
    errs(lambda L, AF, F: F.vmap(lambda a: a, chunk_size=0))
    errs(lambda L, AF, F: F.vmap(lambda a: a)())
    errs(lambda L, AF, F: F.vmap(lambda a: a * L.rand(3, dtype=L.float64))(t(L, x)))
    errs(lambda L, AF, F: F.vmap(lambda a: L.nn.functional.dropout(a, 0.5))(t(L, x)))


def test_vmap_randomness():
    for L, F in ((torch, torch.func), (tl, tl.func)):
        L.manual_seed(3)
        same = F.vmap(lambda a: a + L.rand(3, dtype=L.float64), randomness="same")(L.zeros(4, 3, dtype=L.float64))
        assert all(L.equal(same[0], same[i]) for i in range(4))
        after_same = L.rand(1).item()
        L.manual_seed(3)
        L.rand(3, dtype=L.float64)
        assert L.rand(1).item() == after_same       # the generator advanced as by one element's draws
        diff = F.vmap(lambda a: a + L.rand(3, dtype=L.float64), randomness="different")(
            L.zeros(4, 3, dtype=L.float64))
        assert not L.equal(diff[0], diff[1])
