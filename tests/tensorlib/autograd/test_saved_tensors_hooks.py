"""torch.autograd.graph's saved-tensor hooks: saved_tensors_hooks, save_on_cpu, disable_saved_tensors_hooks.
The pack / unpack counts are torch 2.13's, measured side by side (devtools/torch_compat/
test_saved_tensors_hooks_against_torch.py checks them against torch directly)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd.graph import disable_saved_tensors_hooks, save_on_cpu, saved_tensors_hooks

X = np.array([0.5, -1.0, 2.0], dtype=np.float32)


class Counter:
    def __init__(self):
        self.packs = self.unpacks = 0

    def pack(self, t):
        self.packs += 1
        return t

    def unpack(self, p):
        self.unpacks += 1
        return p


def _grad(f, hooks=None):
    x = tl.tensor(X, requires_grad=True)
    if hooks is None:
        y = f(x)
    else:
        with hooks:
            y = f(x)
    y.backward()
    return x.grad.numpy()


# (graph, packs and unpacks in torch 2.13)
GRAPHS = [
    (lambda x: (x * x).sin().sum(), 3, 3),
    (lambda x: x.exp().sum(), 1, 1),
    (lambda x: (x.exp() * x).sum(), 3, 3),
    (lambda x: x.tanh().sum(), 1, 1),
    (lambda x: x.sigmoid().mean(), 1, 1),
    (lambda x: (x @ x.unsqueeze(1)).sum(), 2, 2),
    (lambda x: (x / (x * x + 1)).sum(), 4, 4),
]


@pytest.mark.parametrize("k", range(len(GRAPHS)))
def test_counts_and_gradients(k):
    f, packs, unpacks = GRAPHS[k]
    c = Counter()
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(c.pack, c.unpack):
        y = f(x)
    assert (c.packs, c.unpacks) == (packs, 0)
    y.backward()
    assert (c.packs, c.unpacks) == (packs, unpacks)
    np.testing.assert_allclose(x.grad.numpy(), _grad(f), rtol=1e-6)


def test_pack_gets_the_saved_tensors_and_outputs():
    x = tl.tensor(X, requires_grad=True)
    seen = []
    with saved_tensors_hooks(lambda t: (seen.append(t), t)[1], lambda p: p):
        x * x
        e = x.exp()
    assert seen[0] is x and seen[1] is x
    assert seen[2].grad_fn is e.grad_fn and seen[2].requires_grad


def test_non_tensor_packed_object():
    f = GRAPHS[0][0]
    g = _grad(f, saved_tensors_hooks(lambda t: ("box", t.detach().numpy().copy()), lambda p: tl.tensor(p[1])))
    np.testing.assert_allclose(g, _grad(f), rtol=1e-6)


def test_unpack_must_return_a_tensor():
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(lambda t: t, lambda p: 3):
        y = (x * x).sum()
    with pytest.raises(TypeError, match="^Output of saved tensor unpack_hook expected to be a Tensor but got result "
                                        "of type int$"):
        y.backward()


def test_unpack_of_another_shape_fails_in_the_formula_and_another_dtype_is_cast():
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(lambda t: t, lambda p: tl.ones(5)):
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(5\)"):
        y.backward()
    with saved_tensors_hooks(lambda t: t, lambda p: p.double()):
        y = (x * x).sum()
    y.backward()
    assert x.grad.dtype == tl.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * X, rtol=1e-6)


def test_pack_hook_modifying_its_input():
    def pack(t):
        with tl.no_grad():
            t.add_(1)
        return t
    x = tl.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="^A saved tensor pack hook is modifying its input in place. Tensors "
                                           "provided as input to pack hook cannot be modified"):
        with saved_tensors_hooks(pack, lambda p: p):
            (x * x).sum()


def test_no_version_check_through_hooks():
    a = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a.clone()
    with saved_tensors_hooks(lambda t: t, lambda p: p):
        y = (b * b).sum()
    with tl.no_grad():
        b.add_(1)
    y.backward()        # as torch: hooks' saved tensors are not version checked
    np.testing.assert_allclose(a.grad.numpy(), [4.0, 6.0, 8.0])


def test_nested_innermost_applies_and_pack_runs_without_grad():
    x = tl.tensor(X, requires_grad=True)
    log = []
    with saved_tensors_hooks(lambda t: (log.append("outer"), t)[1], lambda p: p):
        with saved_tensors_hooks(lambda t: (log.append("inner"), t)[1], lambda p: p):
            (x * x).sum()
        (x * x).sum()
    assert log == ["inner", "inner", "outer", "outer"]
    c = Counter()
    with saved_tensors_hooks(lambda t: (c.pack(t), t * 2)[1], lambda p: p / 2):   # t * 2 records nothing
        y = (x * x).sin().sum()
    y.backward()
    assert c.packs == 3
    np.testing.assert_allclose(x.grad.numpy(), _grad(GRAPHS[0][0]), rtol=1e-6)


def test_thread_local():
    c = Counter()
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(c.pack, c.unpack):
        th = threading.Thread(target=lambda: (x * x).sum())
        th.start()
        th.join()
    assert c.packs == 0


def test_backward_twice_and_retain_graph():
    c = Counter()
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(c.pack, c.unpack):
        y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert (c.packs, c.unpacks) == (2, 4)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * X, rtol=1e-6)


def test_double_backward():
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(lambda t: ("p", t), lambda p: p[1]):
        y = (x * x * x).sum()
        (g,) = tl.autograd.grad(y, x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * X, rtol=1e-6)
    x.grad = None
    y = x.sin().sum()
    with saved_tensors_hooks(lambda t: ("p", t), lambda p: p[1]):     # only the backward's graph packs
        (g,) = tl.autograd.grad(y, x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.sin(X), rtol=1e-6)


class Mul(tl.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a2, b2 = ctx.saved_tensors
        return g * b, g * a


class Exp(tl.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        r = a.exp()
        ctx.save_for_backward(r)
        return r

    @staticmethod
    def backward(ctx, g):
        (r,) = ctx.saved_tensors
        return g * r


def test_custom_function_saves_go_through_hooks():
    c = Counter()
    x = tl.tensor(X, requires_grad=True)
    with saved_tensors_hooks(c.pack, c.unpack):
        o = Mul.apply(x, x.detach() * 3)
    assert (c.packs, c.unpacks) == (2, 0)
    o.sum().backward()
    assert (c.packs, c.unpacks) == (2, 4)       # torch's: each saved_tensors read unpacks
    np.testing.assert_allclose(x.grad.numpy(), 3 * X, rtol=1e-6)
    seen = []
    x.grad = None
    with saved_tensors_hooks(lambda t: (seen.append(t.requires_grad), t)[1], lambda p: p):
        o = Exp.apply(x)
    assert seen == [True]          # a saved output is packed as the output, as torch's
    o.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(X), rtol=1e-6)


def test_save_on_cpu():
    f = GRAPHS[0][0]
    assert issubclass(save_on_cpu, saved_tensors_hooks)
    for pin in (False, True):
        np.testing.assert_allclose(_grad(f, save_on_cpu(pin_memory=pin)), _grad(f), rtol=1e-6)
    s = save_on_cpu()
    device, packed = s.pack_hook(tl.ones(2))
    assert device == tl.device("cpu") and packed.device == tl.device("cpu")


def test_disable_saved_tensors_hooks():
    with disable_saved_tensors_hooks("msg A"):
        with pytest.raises(RuntimeError, match="^msg A$"):
            with save_on_cpu():
                pass
        with disable_saved_tensors_hooks("msg B"):
            with pytest.raises(RuntimeError, match="^msg B$"):
                with saved_tensors_hooks(len, len):
                    pass
        with pytest.raises(RuntimeError, match="^msg A$"):
            with saved_tensors_hooks(len, len):
                pass
    with saved_tensors_hooks(len, len):
        with pytest.raises(RuntimeError, match="^msg C$"):     # torch: not while hooks are on
            with disable_saved_tensors_hooks("msg C"):
                pass


def test_no_hooks_left_behind():
    from tensorlib import _graph
    before = _graph._saved_any
    with saved_tensors_hooks(len, len):
        assert _graph._slow_any
    assert _graph._saved_any == before
    x = tl.tensor(X, requires_grad=True)
    y = x * x
    assert type(y.grad_fn) is _graph.Node


def test_torch_names():
    import tensorlib.autograd.graph as g
    assert tl.autograd.graph.saved_tensors_hooks is g.saved_tensors_hooks
    for name in ("saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks"):
        assert name in g.__all__
