"""tensorlib.fx against torch.fx 2.13 side by side: the same modules and functions (an MLP with parameters read as
attributes, shapes, views, slicing and cat; a convnet with a Sequential stem, a residual user block and a
BatchNorm; a function with math.sqrt, an fx.wrap'd leaf and a None-specialized concrete argument) traced by both
give the same nodes (op, name, target name, arguments), the same printed graph and the same generated code once
"torch." reads "tensorlib.", and the same outputs with the same weights (float32 to 1e-5); ShapeProp records the
same shapes and dtypes; replace_pattern rewrites the same nodes; the tracing refusals say the same."""
from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.fx as tfx

torch = pytest.importorskip("torch")
pytest.importorskip("torch.fx")


def leaf_fn(x, k):
    return x * k + 1


torch.fx.wrap("leaf_fn")
tfx.wrap("leaf_fn")


def _models(L):
    nn = L.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(4, 8)
            self.l2 = nn.Linear(8, 3)
            self.p = nn.Parameter(L.ones(3) * 0.5)

        def forward(self, x):
            h = L.relu(self.l1(x))
            h = L.tanh(h) + 1
            s = h.shape[0]
            h = h.view(s, -1).sum(dim=1, keepdim=True) * h
            z = self.l2(h) + self.p
            a = z[:, 0:2]
            return L.cat([z, a], dim=1), z.size(1), self.l1.weight.T

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1)
            self.bn = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)

        def forward(self, x):
            y = L.relu(self.bn(self.conv1(x)))
            return L.relu(self.conv2(y) + x)

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block = Block(8)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            x = self.block(self.stem(x))
            x = L.flatten(self.pool(x), 1)
            return self.head(x).sigmoid() - x.mean(dim=1, keepdim=True)

    return {"mlp": MLP, "convnet": ConvNet}


def fn_with_leaves(x, bias=None):
    y = leaf_fn(x, 3) + math.sqrt(x.shape[-1])
    if bias is not None:
        y = y + bias
    return y.abs().max(dim=-1)[0]


def _copy_weights(tm, lm):
    sd = {k: tl.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()}
    lm.load_state_dict(sd)


def _node_rows(gm):
    def arg(a):
        if isinstance(a, (list, tuple)):
            return type(a)(arg(x) for x in a)
        if isinstance(a, dict):
            return {k: arg(v) for k, v in a.items()}
        if hasattr(a, "op") and hasattr(a, "users"):
            return f"%{a.name}"
        return a
    rows = []
    for n in gm.graph.nodes:
        target = n.target if isinstance(n.target, str) else n.target.__name__
        rows.append((n.op, n.name, target, arg(n.args), arg(n.kwargs)))
    return rows


def _t(s):
    return s.replace("torch.", "tensorlib.")


@pytest.mark.parametrize("name", ["mlp", "convnet"])
def test_modules_trace_alike(name):
    torch.manual_seed(0)
    tm = _models(torch)[name]().eval()
    lm = _models(tl)[name]().eval()
    _copy_weights(tm, lm)
    tg = torch.fx.symbolic_trace(tm)
    lg = tfx.symbolic_trace(lm)
    assert _node_rows(lg) == _node_rows(tg)
    assert str(lg.graph) == _t(str(tg.graph))
    assert lg.code == _t(tg.code)
    assert type(lg).__name__ == type(tg).__name__
    assert list(lg.state_dict()) == list(tg.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 4) if name == "mlp" else (2, 3, 6, 6)).astype(np.float32)
    to, lo = tg(torch.tensor(x)), lg(tl.tensor(x))
    to = to if isinstance(to, tuple) else (to,)
    lo = lo if isinstance(lo, tuple) else (lo,)
    for a, b in zip(to, lo):
        if isinstance(a, torch.Tensor):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-5)
        else:
            assert a == b


def test_function_with_wrap_math_and_concrete_args_alike():
    tg = torch.fx.symbolic_trace(fn_with_leaves, concrete_args={"bias": None})
    lg = tfx.symbolic_trace(fn_with_leaves, concrete_args={"bias": None})
    assert _node_rows(lg) == _node_rows(tg)
    assert lg.code == _t(tg.code)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(lg(tl.tensor(x)).numpy(), tg(torch.tensor(x)).numpy(), rtol=1e-6)
    with pytest.raises(AssertionError) as te:
        tg(torch.tensor(x), torch.ones(4))
    with pytest.raises(AssertionError) as le:
        lg(tl.tensor(x), tl.ones(4))
    assert str(le.value) == str(te.value)


def test_shape_prop_alike():
    from tensorlib.fx.passes.shape_prop import ShapeProp as LShapeProp
    from torch.fx.passes.shape_prop import ShapeProp as TShapeProp
    tm, lm = _models(torch)["convnet"]().eval(), _models(tl)["convnet"]().eval()
    tg, lg = torch.fx.symbolic_trace(tm), tfx.symbolic_trace(lm)
    x = np.ones((2, 3, 5, 5), np.float32)
    TShapeProp(tg).propagate(torch.tensor(x))
    LShapeProp(lg).propagate(tl.tensor(x))
    for tn, ln in zip(tg.graph.nodes, lg.graph.nodes):
        assert ("tensor_meta" in tn.meta) == ("tensor_meta" in ln.meta)
        if "tensor_meta" in tn.meta:
            tmeta, lmeta = tn.meta["tensor_meta"], ln.meta["tensor_meta"]
            assert tuple(lmeta.shape) == tuple(tmeta.shape), tn.name
            assert str(lmeta.dtype).split(".")[-1] == str(tmeta.dtype).split(".")[-1]
            assert lmeta.stride == tmeta.stride and lmeta.requires_grad == tmeta.requires_grad


def test_replace_pattern_alike():
    def make(L):
        class M(L.nn.Module):
            def forward(self, x, w):
                return L.sigmoid(L.relu(x) * w) + L.relu(w) * x

        def pattern(a, b):
            return L.relu(a) * b

        def replacement(a, b):
            return L.clamp(a, min=0.0).mul(b)
        return M(), pattern, replacement

    tm, tp, tr = make(torch)
    lm, lp, lr = make(tl)
    tg, lg = torch.fx.symbolic_trace(tm), tfx.symbolic_trace(lm)
    tmatches = torch.fx.subgraph_rewriter.replace_pattern(tg, tp, tr)
    lmatches = tfx.subgraph_rewriter.replace_pattern(lg, lp, lr)
    assert len(lmatches) == len(tmatches) == 2
    assert _node_rows(lg) == _node_rows(tg)
    assert lg.code == _t(tg.code)
    x, w = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32), np.full((2, 3), 0.5, np.float32)
    np.testing.assert_allclose(lg(tl.tensor(x), tl.tensor(w)).numpy(), tg(torch.tensor(x), torch.tensor(w)).numpy(),
                               rtol=1e-6)


def test_refusals_say_the_same():
    def cf(x):
        return x if x.sum() > 0 else -x

    def loop(x):
        return [t for t in x]

    for f in (cf, loop, lambda x: len(x)):
        with pytest.raises(Exception) as te:
            torch.fx.symbolic_trace(f)
        with pytest.raises(Exception) as le:
            tfx.symbolic_trace(f)
        assert type(le.value).__name__ == type(te.value).__name__ and str(le.value) == str(te.value)


def test_operator_targets_identical():
    def f(x, y):
        return (x + y, x - y, x * y, x / y, x // y, x % y, x ** 2, -x, abs(x), x @ y.T, x[0], x == y, x > y)

    tg, lg = torch.fx.symbolic_trace(f), tfx.symbolic_trace(f)
    assert [n.target for n in lg.graph.nodes if n.op == "call_function"] == \
        [n.target for n in tg.graph.nodes if n.op == "call_function"]
    assert all(isinstance(t, type(operator.add)) for t in [n.target for n in lg.graph.nodes if n.op == "call_function"])
    assert lg.code == _t(tg.code)
