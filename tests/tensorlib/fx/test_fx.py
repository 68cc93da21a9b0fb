"""tensorlib.fx: symbolic tracing (MLPs, convnets with residual blocks, control flow refused, concrete_args,
wrap), graph edits, GraphModule code / round trip (outputs and gradients equal the eager module's),
Interpreter / Transformer, subgraph_rewriter.replace_pattern and ShapeProp, on real values."""
from __future__ import annotations

import copy
import gc
import operator
import os
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.fx as fx
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib import relu as imported_relu


def my_leaf(x, k):
    return x * k + 1


fx.wrap("my_leaf")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 4)
        self.scale = nn.Parameter(tl.ones(4) * 0.5)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = tl.tanh(h) + h
        return self.fc2(h) * self.scale


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.bn(self.conv1(x)))
        return F.relu(self.conv2(y) + x)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.block = Block(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = self.pool(x).flatten(1)
        return tl.log_softmax(self.head(x), dim=1)


def _x(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _close(a, b, tol=1e-6):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def test_mlp_nodes_code_and_round_trip():
    m = MLP()
    gm = fx.symbolic_trace(m)
    assert [(n.op, n.name) for n in gm.graph.nodes] == [
        ("placeholder", "x"), ("call_module", "fc1"), ("call_function", "relu"), ("call_function", "tanh"),
        ("call_function", "add"), ("call_module", "fc2"), ("get_attr", "scale"), ("call_function", "mul"),
        ("output", "output")]
    nodes = {n.name: n for n in gm.graph.nodes}
    assert nodes["relu"].target is F.relu and nodes["tanh"].target is tl.tanh
    assert nodes["add"].target is operator.add and nodes["mul"].target is operator.mul
    assert list(nodes["fc1"].users) == [nodes["relu"]]
    assert "relu = tensorlib.nn.functional.relu(fc1);  fc1 = None" in gm.code
    assert "tanh = tensorlib.tanh(relu)" in gm.code
    assert type(gm).__name__ == "MLP" and isinstance(gm, fx.GraphModule)
    assert list(gm.state_dict()) == list(m.state_dict()) or set(gm.state_dict()) == set(m.state_dict())
    x = _x(5, 6)
    _close(gm(x), m(x))
    # gradients through the generated forward equal the eager module's
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    m(xa).sum().backward()
    gm(xb).sum().backward()
    _close(xa.grad, xb.grad)
    _close(m.fc1.weight.grad, gm.fc1.weight.grad)     # gm holds the root's parameters
    assert gm.fc1.weight is m.fc1.weight


def test_convnet_residual_traced_through_user_modules():
    m = ConvNet().eval()
    gm = fx.symbolic_trace(m)
    ops = [(n.op, n.target if isinstance(n.target, str) else n.target.__name__) for n in gm.graph.nodes]
    assert ("call_module", "stem.0") in ops and ("call_module", "stem.1") in ops      # Sequential traced through
    assert ("call_module", "block.conv1") in ops and ("call_module", "block.bn") in ops   # user Block too
    assert ("call_function", "add") in ops and ("call_method", "flatten") in ops
    assert ("call_function", "log_softmax") in ops
    x = _x(2, 3, 8, 8)
    _close(gm(x), m(x), 1e-5)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (m(xa) * tl.arange(5.0)).sum().backward()
    (gm(xb) * tl.arange(5.0)).sum().backward()
    _close(xa.grad, xb.grad, 1e-5)


def test_control_flow_len_and_iteration_refused():
    class CF(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(fx.TraceError, match="symbolically traced variables cannot be used as inputs to control flow"):
        fx.symbolic_trace(CF())

    def loop(x):
        return [t for t in x]

    with pytest.raises(fx.TraceError, match="Proxy object cannot be iterated"):
        fx.symbolic_trace(loop)

    with pytest.raises(RuntimeError, match="'len' is not supported in symbolic tracing by default"):
        fx.symbolic_trace(lambda x: len(x))

    def unpack(x):
        a, b = x
        return a - b

    gm = fx.symbolic_trace(unpack)
    assert [n.name for n in gm.graph.nodes] == ["x", "getitem", "getitem_1", "sub", "output"]
    x = _x(2, 3)
    _close(gm(x), x[0] - x[1])


def test_patches_restored_even_after_an_error():
    before = (tl.relu, F.relu, tl.cat, nn.Module.__call__, nn.Module.__getattr__)

    def bad(x):
        tl.relu(x)
        if x:
            pass

    with pytest.raises(fx.TraceError):
        fx.symbolic_trace(bad)
    assert (tl.relu, F.relu, tl.cat, nn.Module.__call__, nn.Module.__getattr__) == before
    assert imported_relu is tl.relu


def test_concrete_args_specialize_and_check():
    def f(x, flag, bias=None):
        if flag:
            x = x * 2
        if bias is not None:
            x = x + bias
        return x

    gm = fx.symbolic_trace(f, concrete_args={"flag": True, "bias": None})
    names = [n.name for n in gm.graph.nodes]
    # the placeholders (and their checks) come first, as torch records them before running f
    assert names == ["x", "flag_1", "eq", "_assert", "bias_1", "_assert_is_none", "mul", "output"]
    x = _x(3)
    _close(gm(x, True), x * 2)
    with pytest.raises(AssertionError, match="flag has been specialized to have value True but got another value"):
        gm(x, False)


def test_functions_imported_by_name_and_wrap_are_leaves():
    def f(x):
        return my_leaf(imported_relu(x), 3)

    gm = fx.symbolic_trace(f)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets == [tl.relu, my_leaf]
    hint = my_leaf.__module__.replace(".", "_") + "_my_leaf"
    assert f'tensorlib.fx._symbolic_trace.wrap("{hint}")' in gm.code      # torch's statement for wrapped fns
    assert f"my_leaf = {hint}(relu, 3);  relu = None" in gm.code
    x = _x(4)
    _close(gm(x), tl.relu(x) * 3 + 1)


def test_nested_proxy_arguments_and_tensor_methods():
    def f(x, y):
        z = tl.cat([x, y], dim=0)
        s = tl.stack((x, y)).sum(0)
        return z.view(-1, 2).mean(dim=1, keepdim=True), s.shape[0], x.T

    gm = fx.symbolic_trace(f)
    ops = [(n.op, n.name) for n in gm.graph.nodes]
    assert ("call_function", "cat") in ops and ("call_function", "stack") in ops
    assert ("call_method", "view") in ops and ("call_method", "mean") in ops and ("call_method", "sum_1") in ops
    assert ("call_function", "getattr_1") in ops
    x, y = _x(4, 2), _x(4, 2, seed=1)
    a, n, t = gm(x, y)
    _close(a, tl.cat([x, y]).view(-1, 2).mean(dim=1, keepdim=True))
    assert n == 4
    _close(t, x.T)


def test_graph_edits_insert_erase_dce_and_lint():
    gm = fx.symbolic_trace(MLP())
    g = gm.graph
    relu = next(n for n in g.nodes if n.name == "relu")
    with g.inserting_after(relu):
        sig = g.call_function(tl.sigmoid, (relu,))
    relu.replace_all_uses_with(sig)
    sig.args = (relu,)                     # replace_all_uses_with also rewired sig's own input
    assert list(relu.users) == [sig]
    with g.inserting_before(g.output_node):
        dead = g.call_function(tl.exp, (relu,))
    assert g.eliminate_dead_code() is True
    assert dead not in list(g.nodes)
    g.lint()
    gm.recompile()
    assert "sigmoid = tensorlib.sigmoid(relu);  relu = None" in gm.code
    x = _x(2, 6)
    m = gm
    h = tl.sigmoid(F.relu(m.fc1(x)))
    _close(gm(x), m.fc2(tl.tanh(h) + h) * m.scale)
    with pytest.raises(RuntimeError, match="still had 1 users in the graph"):
        g.erase_node(relu)
    # a node used before it is defined
    first = next(iter(g.nodes))
    tanh = next(n for n in g.nodes if n.name == "tanh")
    with g.inserting_before(first):
        bad = g.call_function(tl.neg, (tanh,))
    with pytest.raises(RuntimeError, match="was used before it has been defined"):
        g.lint()
    g.erase_node(bad)
    g.lint()


def test_graph_built_by_hand_and_python_code():
    g = fx.Graph()
    x = g.placeholder("x")
    w = g.get_attr("w")
    mm = g.call_function(tl.matmul, (x, w))
    s = g.call_method("sum", (mm,), {"dim": 0})
    g.output(s)
    root = nn.Module()
    root.register_buffer("w", _x(3, 2))
    gm = fx.GraphModule(root, g)
    assert gm.code.strip().splitlines()[0] == "def forward(self, x):"
    assert "matmul = tensorlib.matmul(x, w);  x = w = None" in gm.code
    assert "sum_1 = matmul.sum(dim = 0);  matmul = None" in gm.code
    x = _x(4, 3)
    _close(gm(x), (x @ root.w).sum(dim=0))
    assert str(g).splitlines()[0] == "graph():"
    assert "%matmul : [num_users=1] = call_function[target=tensorlib.matmul](args = (%x, %w), kwargs = {})" in str(g)
    gm2 = copy.deepcopy(gm)
    _close(gm2(x), gm(x))
    assert gm2.w is not gm.w


def test_print_tabular_needs_tabulate(capsys):
    gm = fx.symbolic_trace(MLP())
    try:
        import tabulate  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            gm.graph.print_tabular()
        assert "`print_tabular` relies on the library `tabulate`" in capsys.readouterr().out
    else:
        gm.graph.print_tabular()
        assert "opcode" in capsys.readouterr().out


def test_interpreter_and_transformer():
    m = MLP()
    gm = fx.symbolic_trace(m)
    x = _x(3, 6)
    _close(fx.Interpreter(gm).run(x), m(x))

    class NegateRelu(fx.Transformer):
        def call_function(self, target, args, kwargs):
            if target == F.relu:                 # as torch's docs compare targets
                return super().call_function(tl.sigmoid, args, kwargs)
            return super().call_function(target, args, kwargs)

    new = NegateRelu(gm).transform()
    assert any(n.target is tl.sigmoid for n in new.graph.nodes)
    h = tl.sigmoid(m.fc1(x))
    _close(new(x), m.fc2(tl.tanh(h) + h) * m.scale)

    class Count(fx.Interpreter):
        def __init__(self, mod):
            super().__init__(mod)
            self.calls = []

        def call_module(self, target, args, kwargs):
            self.calls.append(target)
            return super().call_module(target, args, kwargs)

    c = Count(gm)
    c.run(x)
    assert c.calls == ["fc1", "fc2"]
    with pytest.raises(RuntimeError, match="Expected positional argument for parameter x"):
        fx.Interpreter(gm).run()


def test_replace_pattern():
    class M(nn.Module):
        def forward(self, x, w1, w2):
            a = tl.cat([w1, w2]).sum()
            b = tl.cat([w1, w2]).sum()
            return x + tl.max(a) + tl.max(b)

    def pattern(w1, w2):
        return tl.cat([w1, w2]).sum()

    def replacement(w1, w2):
        return tl.stack([w1, w2])

    gm = fx.symbolic_trace(M())
    matches = fx.subgraph_rewriter.replace_pattern(gm, pattern, replacement)
    assert len(matches) == 2
    assert [n.target for n in gm.graph.nodes if n.op == "call_function"] == [
        tl.stack, tl.max, operator.add, tl.stack, tl.max, operator.add]     # each before its first user
    gm.graph.lint()
    x, w1, w2 = _x(2), _x(2, seed=1), _x(2, seed=2)
    _close(gm(x, w1, w2), x + tl.max(tl.stack([w1, w2])) * 2)


def test_shape_prop():
    from tensorlib.fx.passes.shape_prop import ShapeProp, TensorMetadata
    gm = fx.symbolic_trace(ConvNet().eval())
    x = _x(2, 3, 8, 8)
    out = ShapeProp(gm).propagate(x)
    assert tuple(out.shape) == (2, 5)
    meta = {n.name: n.meta["tensor_meta"] for n in gm.graph.nodes if "tensor_meta" in n.meta}
    assert isinstance(meta["x"], TensorMetadata)
    assert tuple(meta["stem_0"].shape) == (2, 8, 8, 8) and meta["stem_0"].dtype == tl.float32
    assert tuple(meta["pool"].shape) == (2, 8, 1, 1)
    assert tuple(meta["flatten"].shape) == (2, 8)
    assert meta["flatten"].stride == (8, 1) and meta["flatten"].memory_format == tl.contiguous_format
    assert tuple(meta["output"].shape) == (2, 5)
    assert all(n.meta["type"] is tl.Tensor for n in gm.graph.nodes if n.op != "output")


def test_torch_fx_under_compat():
    code = ("import tensorlib.compat as c; c.install()\n"
            "import torch, torch.fx\n"
            "from torch.fx import symbolic_trace\n"
            "class M(torch.nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__(); self.l = torch.nn.Linear(3, 2)\n"
            "    def forward(self, x):\n"
            "        return torch.nn.functional.gelu(self.l(x)) + torch.sin(x).sum()\n"
            "m = M(); gm = symbolic_trace(m); x = torch.randn(4, 3)\n"
            "assert torch.allclose(gm(x), m(x))\n"
            "print(gm.code)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                       env={**os.environ, "PYTHONPATH": root})
    assert r.returncode == 0, r.stderr
    assert "gelu = tensorlib.nn.functional.gelu(l);  l = None" in r.stdout
    assert "sin = tensorlib.sin(x);  x = None" in r.stdout


def test_import_tensorlib_does_not_load_fx():
    r = subprocess.run([sys.executable, "-c", "import sys, tensorlib; print('tensorlib.fx' in sys.modules); "
                        "tensorlib.fx; print('tensorlib.fx' in sys.modules)"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.stdout.split() == ["False", "True"], r.stderr


def test_transformer_records_tensorlib_calls():
    gm = fx.symbolic_trace(lambda x: tl.atan(x) * 2)
    assert "atan = tensorlib.atan(x)" in gm.code        # the function's own name, not its alias arctan

    class Clip(fx.Transformer):
        def call_function(self, target, args, kwargs):
            out = super().call_function(target, args, kwargs)
            return tl.clamp(out, -1.0, 1.0) if target is operator.mul else out

    new = Clip(gm).transform()
    assert [n.name for n in new.graph.nodes] == ["x", "atan", "mul", "clamp", "output"]
    assert tl.clamp is not None and new.graph.find_nodes(op="call_function", target=tl.clamp)
    x = _x(5) * 3
    _close(new(x), tl.clamp(tl.atan(x) * 2, -1.0, 1.0))
    assert fx.replace_pattern is fx.subgraph_rewriter.replace_pattern



def test_a_graph_built_from_proxies_outside_a_trace():
    """pytorch/examples fx/proxy_based_graph_creation.py and inline_function.py: proxies made by hand record the
    tensorlib functions, modules and GraphModules called on them (torch's __torch_function__ does it at any
    time); the recording patches go once the last such proxy is gone."""
    orig_tanh, orig_leaky = tl.tanh, F.leaky_relu
    g = fx.Graph()
    tracer = fx.proxy.GraphAppendingTracer(g)
    x, y = fx.Proxy(g.placeholder("x"), tracer), fx.Proxy(g.placeholder("y"), tracer)
    assert tl.tanh is not orig_tanh                    # recording while proxies made by hand live
    b = tl.tanh(tl.cat([x, y]))
    c = tl.neg(b)
    d = nn.LeakyReLU(0.2)(c)                           # a module: traced through, as torch inlines it
    e = fx.symbolic_trace(nn.Sigmoid())(d)             # a GraphModule called on a proxy
    g.output((e + 1).node)
    gm = fx.GraphModule(nn.Module(), g)
    assert "tanh = tensorlib.tanh(cat)" in gm.code and "tensorlib.nn.functional.leaky_relu(neg, 0.2" in gm.code
    assert "sigmoid = tensorlib.nn.functional.sigmoid(leaky_relu)" in gm.code
    a1, a2 = _x(2, 3), _x(1, 3)
    _close(gm(a1, a2), tl.sigmoid(F.leaky_relu(-tl.tanh(tl.cat([a1, a2])), 0.2)) + 1)
    # a trace while they live: the names stay patched by them (deduplicated), and the trace records as usual
    assert "relu = tensorlib.relu(v)" in fx.symbolic_trace(lambda v: tl.relu(v)).code
    assert tl.tanh is not orig_tanh
    del x, y, b, c, d, e
    gc.collect()
    assert tl.tanh is orig_tanh and F.leaky_relu is orig_leaky      # reverted with the last of them
    assert fx.symbolic_trace(lambda v: tl.tanh(v)).code.count("tensorlib.tanh(v)") == 1


def test_a_tensor_constant_times_a_proxy_is_recorded():
    """Tensor.__matmul__ gives a non-tensor operand back (NotImplemented), so the proxy's __rmatmul__ records it;
    with a plain Python operand that leaves Python's TypeError, as torch's."""
    class M(nn.Module):
        def forward(self, x):
            return tl.eye(3) @ x

    gm = fx.symbolic_trace(M())
    assert "matmul = _tensor_constant0 @ x" in gm.code
    x = _x(3, 2)
    _close(gm(x), x)
    with pytest.raises(TypeError, match="unsupported operand type"):
        tl.ones(2) @ 2


def test_graph_module_saved_and_loaded_whole():
    """torch.save of a GraphModule (torch's __reduce__: its code and the imports it needs, traced again on load
    with its submodules as leaves): parameters, buffers, a wrapped global function and a math constant come
    back, and the loaded module computes what the saved one did."""
    import io
    import math

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.bn = nn.BatchNorm1d(3)
            self.register_buffer("scale", tl.ones(3) * 2)
            self.w = nn.Parameter(tl.randn(3))

        def forward(self, x):
            h = F.relu(self.bn(self.fc(x))) * self.scale + self.w
            return my_leaf(tl.tanh(h).sum(-1, keepdim=True), 2.0) + math.pi

    gm = fx.symbolic_trace(M()).eval()
    assert "my_leaf(" in gm.code and "3.141592653589793" in gm.code
    buf = io.BytesIO()
    tl.save(gm, buf)
    buf.seek(0)
    back = tl.load(buf, weights_only=False)
    assert type(back).__name__ == "M" and back.code == gm.code
    assert [n.op for n in back.graph.nodes] == [n.op for n in gm.graph.nodes]
    assert sorted(back.state_dict()) == sorted(gm.state_dict()) and not back.training
    x = _x(5, 4)
    _close(back(x), gm(x))
    nested = fx.symbolic_trace(nn.Sequential(fx.symbolic_trace(nn.Linear(4, 2)), nn.ReLU()))
    buf = io.BytesIO()
    tl.save(nested, buf)
    buf.seek(0)
    _close(tl.load(buf, weights_only=False)(x), nested(x))
