"""nn.Module: registration, iteration, modes, conversions, state_dict, hooks, repr and profiler ranges."""
import copy

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.dispatch import Hook, add_hook, remove_hook


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(), Block())
        self.head = nn.Linear(4, 2)
        self.register_buffer("steps", tl.zeros(1))
        self.register_buffer("scratch", tl.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(self.encoder(x))


class RangeLog(Hook):
    def __init__(self):
        self.events = []

    def range_enter(self, name, kind):
        self.events.append(("enter", name, kind))
        return name

    def range_exit(self, token):
        self.events.append(("exit", token))


def test_registration_and_iteration_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["encoder.0.fc1.weight", "encoder.0.fc1.bias", "encoder.0.fc2.weight", "encoder.0.fc2.bias",
                     "encoder.1.fc1.weight", "encoder.1.fc1.bias", "encoder.1.fc2.weight", "encoder.1.fc2.bias",
                     "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "scratch"]
    assert [n for n, _ in net.named_children()] == ["encoder", "head"]
    assert [n for n, _ in net.named_modules()][:4] == ["", "encoder", "encoder.0", "encoder.0.fc1"]
    assert len(list(net.modules())) == 11
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p._is_param for p in net.parameters())


def test_shared_parameters_are_listed_once():
    fc = nn.Linear(3, 3)
    seq = nn.Sequential(fc, fc)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(tl.ones(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = tl.ones(2)
    m.w = None
    assert m._parameters["w"] is None
    m.sub = nn.Linear(1, 1)
    assert "sub" in m._modules
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", tl.zeros(1))  # torch raises KeyError too
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)


def test_train_eval_and_requires_grad():
    net = Net()
    net.eval()
    assert not net.training and not net.encoder[0].fc1.training
    net.train()
    assert all(m.training for m in net.modules())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_zero_grad():
    net = Block()
    net(tl.randn(3, 4)).sum().backward()
    assert net.fc1.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert float(net.fc1.weight.grad.abs().sum()) == 0.0
    net.zero_grad()
    assert net.fc1.weight.grad is None


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    w = net.head.weight
    net.double()
    assert net.head.weight is w and w.dtype == tl.float64 and net.steps.dtype == tl.float64
    bn = nn.BatchNorm1d(3).to(tl.float64)
    assert bn.num_batches_tracked.dtype == tl.int64   # integer buffers keep their dtype
    net.to(dtype=tl.float32)
    assert w.dtype == tl.float32
    net.half()
    assert w.dtype == tl.float16
    with pytest.raises(TypeError, match="floating point"):
        net.to(tl.int64)


def test_state_dict_round_trip():
    tl.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert "scratch" not in sd and "steps" in sd
    assert not any(v.requires_grad for v in sd.values())
    x = tl.randn(5, 4)
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == str(result) == "<All keys matched successfully>"      # what torch prints
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    sd["head.weight"]._data[...] = 7
    assert float(a.head.weight[0, 0]) == 7.0     # state_dict entries alias the parameters, as torch's do
    assert float(b.head.weight[0, 0]) != 7.0     # load_state_dict copied the values


def test_load_state_dict_errors_in_torch_words():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra"] = tl.zeros(1)
    sd["head.weight"] = tl.zeros(3, 3)
    with pytest.raises(RuntimeError) as e:
        Net().load_state_dict(sd)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "head.bias".' in msg
    assert 'Unexpected key(s) in state_dict: "extra".' in msg
    assert "size mismatch for head.weight: copying a param with shape" in msg
    sd["head.weight"] = tl.zeros(2, 4)
    r = Net().load_state_dict(sd, strict=False)
    assert r.missing_keys == ["head.bias"] and r.unexpected_keys == ["extra"]
    assert repr(r) == "_IncompatibleKeys(missing_keys=['head.bias'], unexpected_keys=['extra'])"


def test_forward_hooks_modify_and_remove():
    fc = nn.Linear(2, 2)
    calls = []
    h1 = fc.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = fc.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = fc(tl.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), fc.bias.detach().numpy()[None] + 1, rtol=1e-6)
    assert calls == [tl.Size([1, 2])]
    h1.remove()
    h2.remove()
    assert not fc._forward_hooks and not fc._forward_pre_hooks


def test_module_ranges_have_qualified_names_and_nest():
    net = Net()
    log = RangeLog()
    add_hook(log)
    try:
        net(tl.randn(2, 4))
    finally:
        remove_hook(log)
    enters = [e[1] for e in log.events if e[0] == "enter" and e[2] == "module"]
    assert enters == ["Net", "Net.encoder", "Net.encoder.0", "Net.encoder.0.fc1", "Net.encoder.0.act",
                      "Net.encoder.0.fc2", "Net.encoder.1", "Net.encoder.1.fc1", "Net.encoder.1.act",
                      "Net.encoder.1.fc2", "Net.head"]
    assert {e[2] for e in log.events if e[0] == "enter"} == {"module", "op"}     # op: linear, torch's composite
    # strict nesting: a stack replay closes every range in reverse order of opening
    stack = []
    for e in log.events:
        if e[0] == "enter":
            stack.append(e[1])
        else:
            assert stack.pop() == e[1]
    assert stack == []


def test_modules_reached_through_module_lists_and_dicts_have_their_paths():
    """A ModuleList / ModuleDict is never called: the modules in it are named by their path from the
    module whose forward calls them (torch's module names: encoder.layers.0.self_attn)."""
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 2)})

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return self.heads["a"](x) + nn.Identity()(x)[:, :2]     # a module made on the fly: by class

    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2)
    log = RangeLog()
    add_hook(log)
    try:
        Stack()(tl.randn(2, 4))
        enc(tl.randn(1, 3, 8))
    finally:
        remove_hook(log)
    enters = [e[1] for e in log.events if e[0] == "enter" and e[2] == "module"]
    assert enters[:5] == ["Stack", "Stack.blocks.0", "Stack.blocks.1", "Stack.heads.a", "Stack.Identity"]
    assert {"TransformerEncoder.layers.0", "TransformerEncoder.layers.1", "TransformerEncoder.layers.0.self_attn",
            "TransformerEncoder.layers.1.linear2"} <= set(enters)
    assert not any(n.startswith("TransformerEncoder.TransformerEncoderLayer") for n in enters)


def test_range_names_follow_renames_and_standalone_calls():
    net = Net()
    log = RangeLog()
    add_hook(log)
    try:
        net.head(tl.randn(1, 4))                 # called on its own: it is a root
        net.add_module("out", net._modules.pop("head"))
        net.head = nn.Identity()
        net(tl.randn(1, 4))
    finally:
        remove_hook(log)
    enters = [e[1] for e in log.events if e[0] == "enter" and e[2] == "module"]
    assert enters[0] == "Linear"
    assert "Net.head" in enters and enters.count("Net.encoder.1.fc2") == 1


def test_no_range_hooks_no_stack_growth():
    from tensorlib.nn.modules.module import module_stack
    Net()(tl.randn(1, 4))
    assert module_stack() == []


def test_repr_matches_torch_layout():
    assert repr(Block()) == ("Block(\n  (fc1): Linear(in_features=4, out_features=6, bias=True)\n  (act): ReLU()\n"
                             "  (fc2): Linear(in_features=6, out_features=4, bias=True)\n)")
    assert repr(nn.Sequential(nn.Sequential(nn.Tanh()))) == \
        "Sequential(\n  (0): Sequential(\n    (0): Tanh()\n  )\n)"


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    seq.append(nn.Sigmoid())
    assert seq(tl.randn(4, 2)).shape == (4, 1)
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 1))
    assert len(list(ml.parameters())) == 8 and isinstance(ml[-1], nn.Linear)
    md = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Tanh()})
    assert list(md.keys()) == ["a", "b"] and "a" in md
    pl = nn.ParameterList([nn.Parameter(tl.ones(1)), tl.zeros(2)])
    assert len(list(pl.parameters())) == 2


def test_apply_and_deepcopy():
    net = Block()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Block"]
    c = copy.deepcopy(net)
    assert c.fc1.weight is not net.fc1.weight and isinstance(c.fc1.weight, nn.Parameter)
    np.testing.assert_array_equal(c.fc1.weight.detach().numpy(), net.fc1.weight.detach().numpy())


def test_parameter():
    p = nn.Parameter(tl.zeros(2, 2))
    assert p.requires_grad and p.is_leaf and repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(tl.zeros(1), requires_grad=False).requires_grad
    y = p * 2
    assert type(y) is tl.Tensor


def test_parameter_prints_its_header():
    """print() (str, f-strings, str.format) shows "Parameter containing:" as repr does, as torch's: the
    pytorch-tutorial's `print('w: ', linear.weight)`; a plain tensor and a user subclass's own __repr__ too."""
    p = nn.Parameter(tl.tensor([1.0, 2.0]))
    expected = "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == str(p) == f"{p}" == "{}".format(p) == "%s" % p == expected
    assert str([p]) == f"[{expected}]"
    assert str(tl.tensor([1.0, 2.0])) == "tensor([1., 2.])"

    class Tagged(tl.Tensor):
        def __repr__(self):
            return "tagged"
    assert str(tl.zeros(1).as_subclass(Tagged)) == "tagged"


class OpAndRangeLog(Hook):
    def __init__(self):
        self.events = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.events.append(("op", op.name, phase))

    def range_enter(self, name, kind):
        self.events.append(("enter", name, kind))
        return name

    def range_exit(self, token):
        self.events.append(("exit", token))


def test_profile_sees_torch_op_names_inside_module_ranges():
    import tensorlib.nn.functional as F
    net = Block()
    log = OpAndRangeLog()
    add_hook(log)
    try:
        loss = F.cross_entropy(net(tl.randn(3, 4)), tl.tensor([0, 1, 2]))
        loss.backward()
    finally:
        remove_hook(log)
    steps = {"transpose", "as_strided", "clamp_min"}      # kernel steps torch dispatches as ops (issue 15)
    ev = [e for e in log.events if not (e[0] in ("enter", "exit") and e[1] in steps)]
    assert ("enter", "as_strided", "op") in log.events and ("enter", "clamp_min", "op") in log.events
    i_fc1 = ev.index(("enter", "Block.fc1", "module"))
    # linear is torch's composite: t and addmm inside its own range (kind "op")
    assert ev[i_fc1 + 1:i_fc1 + 6] == [("enter", "linear", "op"), ("op", "t", "forward"), ("op", "addmm", "forward"),
                                       ("exit", "linear"), ("exit", "Block.fc1")]
    assert ev[ev.index(("enter", "Block.act", "module")) + 1] == ("op", "relu", "forward")
    fwd = [e[1] for e in ev if e[0] == "op" and e[2] == "forward"]
    # backward()'s implicit grad_output: ones_like (empty_like's empty_strided, fill_)
    assert fwd[-4:] == ["log_softmax", "nll_loss", "empty_strided", "fill_"]
    bwd = [e[1] for e in ev if e[0] == "op" and e[2] == "backward"]
    assert bwd[0] == "nll_loss_backward" and "addmm" not in bwd and "mm" in bwd and "t" in bwd


def test_forward_hook_always_call_runs_when_forward_raises_as_torch():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m, seen = Boom(), []
    h = m.register_forward_hook(lambda mod, a, out: seen.append(("always", out)), always_call=True)
    m.register_forward_hook(lambda mod, a, out: seen.append(("normal", out)))
    with pytest.raises(ValueError, match="boom"):
        m(tl.ones(1))
    assert seen == [("always", None)]          # torch 2.13 gives the same list
    h.remove()
    assert not m._forward_hooks_always_called
    with pytest.raises(ValueError):
        m(tl.ones(1))
    assert seen == [("always", None)]


def test_parameters_are_named_parameters_tensors_in_their_order():
    """parameters() lists named_parameters' tensors without making their names where nothing overrides how the tree
    is listed: the same tensors in the same order with shared submodules and tied weights (each once), None
    children and parameters, a module reached twice, recurse=False; and through named_parameters where the root
    overrides it or a module in the tree overrides named_modules (the override's effect kept)."""
    import types

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = self.a
            self.c = None
            self.seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), self.a))
            self.w = nn.Parameter(tl.ones(2))
            self.register_parameter("none", None)
            self.tied = nn.Linear(4, 4)
            self.tied.weight = self.seq[2][0].weight

    class Filtered(nn.Module):
        def __init__(self):
            super().__init__()
            self.l, self.k = nn.Linear(2, 2), nn.Linear(2, 3)

        def named_parameters(self, *a, **kw):
            return ((n, p) for n, p in super().named_parameters(*a, **kw) if n.startswith("l."))

    class Hidden(nn.Linear):
        def named_modules(self, memo=None, prefix="", remove_duplicate=True):
            return iter(())         # its own parameters hidden from a parent's walk

    for m in (Shared(), Filtered(), nn.Sequential(nn.Linear(2, 2), Hidden(2, 2)), nn.Transformer(8, 2, 1, 1, 16)):
        ps = m.parameters()
        assert isinstance(ps, types.GeneratorType)
        assert [id(p) for p in ps] == [id(p) for _, p in m.named_parameters()]
        assert [id(p) for p in m.parameters(recurse=False)] == [id(p) for _, p in m.named_parameters(recurse=False)]
    assert len(list(Shared().parameters())) == 8 and len(list(Filtered().parameters())) == 2
    assert len(list(nn.Sequential(nn.Linear(2, 2), Hidden(2, 2)).parameters())) == 2
