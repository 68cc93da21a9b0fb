"""torch.autograd.graph's saved-tensor hooks against torch 2.13 side by side: the same pack and unpack counts,
gradients (float64, within 1e-10), what the pack hook receives, and the same errors (type and message)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.autograd.graph  # noqa: F401

torch = pytest.importorskip("torch")

X = np.array([0.5, -1.0, 2.0, 0.25])

GRAPHS = {
    "mul_sin_sum": lambda m, x: (x * x).sin().sum(),
    "exp": lambda m, x: x.exp().sum(),
    "exp_mul": lambda m, x: (x.exp() * x).sum(),
    "tanh": lambda m, x: x.tanh().sum(),
    "sigmoid_mean": lambda m, x: x.sigmoid().mean(),
    "matmul": lambda m, x: (x @ x.unsqueeze(1)).sum(),
    "div": lambda m, x: (x / (x * x + 1)).sum(),
    "log_sqrt": lambda m, x: (x * x + 1).log().sqrt().sum(),
}


def _run(m, f, pack_wrap=None, create_graph=False):
    counts = [0, 0]

    def pack(t):
        counts[0] += 1
        return ("boxed", t) if pack_wrap else t

    def unpack(p):
        counts[1] += 1
        return p[1] if pack_wrap else p

    x = m.tensor(X, requires_grad=True)
    with m.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = f(m, x)
        packs = counts[0]
        if create_graph:
            (g,) = m.autograd.grad(y, x, create_graph=True)
            y = g.sum()
    y.backward()
    return packs, counts[1] if not create_graph else None, x.grad.detach().numpy()


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("wrap", [False, True])
def test_counts_and_gradients(name, wrap):
    a = _run(torch, GRAPHS[name], wrap)
    b = _run(tl, GRAPHS[name], wrap)
    assert b[:2] == a[:2], f"(packs, unpacks) {b[:2]} vs torch's {a[:2]}"
    np.testing.assert_allclose(b[2], a[2], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["mul_sin_sum", "exp_mul", "div"])
def test_double_backward(name):
    a = _run(torch, GRAPHS[name], True, create_graph=True)
    b = _run(tl, GRAPHS[name], True, create_graph=True)
    assert b[0] == a[0]
    np.testing.assert_allclose(b[2], a[2], rtol=1e-10, atol=1e-12)


def _error(m, pack, unpack):
    x = m.tensor(X, requires_grad=True)
    try:
        with m.autograd.graph.saved_tensors_hooks(pack, unpack):
            y = (x * x).sum()
        y.backward()
    except Exception as e:      # noqa: BLE001 - the error itself is compared
        return type(e).__name__, str(e)
    return None


def _inplace_pack(m):
    def pack(t):
        with m.no_grad():
            t.add_(1)
        return t
    return pack


@pytest.mark.parametrize("case", ["non_tensor", "shape", "inplace"])
def test_errors(case):
    def hooks(m):
        if case == "non_tensor":
            return (lambda t: t, lambda p: 3)
        if case == "shape":
            return (lambda t: t, lambda p: m.ones(5, dtype=m.float64))
        return (_inplace_pack(m), lambda p: p)
    a = _error(torch, *hooks(torch))
    b = _error(tl, *hooks(tl))
    assert a is not None and b == a


def test_what_pack_receives():
    def seen(m):
        x = m.tensor(X, requires_grad=True)
        got = []
        with m.autograd.graph.saved_tensors_hooks(lambda t: (got.append(t), t)[1], lambda p: p):
            y = x * x
            e = x.exp()
        return [(t is x, t.requires_grad, t.grad_fn is e.grad_fn, t.grad_fn is y.grad_fn) for t in got]
    assert seen(tl) == seen(torch)


def test_save_on_cpu_and_disable():
    for m in (torch, tl):
        x = m.tensor(X, requires_grad=True)
        with m.autograd.graph.save_on_cpu(pin_memory=False):
            y = (x * x).sin().sum()
        y.backward()
    msgs = []
    for m in (torch, tl):
        g = m.autograd.graph
        with g.disable_saved_tensors_hooks("no hooks here"):
            try:
                with g.save_on_cpu():
                    pass
            except RuntimeError as e:
                msgs.append(str(e))
    assert msgs == ["no hooks here"] * 2


def test_custom_function_counts():
    def run(m):
        class Mul(m.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, g):
                a, b = ctx.saved_tensors
                a, b = ctx.saved_tensors
                return g * b, g * a
        c = [0, 0]
        x = m.tensor(X, requires_grad=True)
        with m.autograd.graph.saved_tensors_hooks(lambda t: (c.__setitem__(0, c[0] + 1), t)[1],
                                                  lambda p: (c.__setitem__(1, c[1] + 1), p)[1]):
            o = Mul.apply(x, x.detach() * 3)
        o.sum().backward()
        return c, x.grad.numpy()
    a, b = run(torch), run(tl)
    assert a[0] == b[0]
    np.testing.assert_allclose(b[1], a[1], rtol=1e-10)
