"""nn.Module's full backward hooks and pre-hooks, the deprecated backward hook, the process-wide hooks, the
state-dict protocol (_save_to_state_dict / _load_from_state_dict, metadata, hooks, extra state),
set_submodule, to_empty and compile, with the values torch gives (checked side by side in
devtools/torch_compat/test_module_api_against_torch.py)."""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
import tensorlib.nn.modules.module as MM


@pytest.fixture(autouse=True)
def _clean_globals():
    yield
    for d in (MM._global_forward_pre_hooks, MM._global_forward_hooks, MM._global_backward_hooks,
              MM._global_backward_pre_hooks, MM._global_forward_hooks_always_called,
              MM._global_forward_hooks_with_kwargs, MM._global_buffer_registration_hooks,
              MM._global_module_registration_hooks, MM._global_parameter_registration_hooks):
        d.clear()
    MM._global_is_full_backward_hook = None
    MM._global_hooks_changed()


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(tl.tensor([2.0, 3.0]))

    def forward(self, x, y, k=1.0):
        return x * self.w * k, y * 3


def test_full_backward_hook_gets_module_input_and_output_grads():
    m = Scale()
    seen = []
    m.register_full_backward_pre_hook(lambda mod, go: seen.append(("pre", mod, go)))
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(("hook", mod, gi, go)))
    x = tl.ones(2, requires_grad=True)
    y = tl.ones(2)
    a, b = m(x, y, 2.0)
    assert a.grad_fn.name() == "BackwardHookFunctionBackward" and not b.requires_grad
    a.sum().backward()
    assert [s[0] for s in seen] == ["pre", "hook"] and seen[0][1] is m
    go = seen[0][2]
    assert len(go) == 2 and go[1] is None and np.allclose(go[0].numpy(), [1, 1])
    gi = seen[1][2]
    assert len(gi) == 3 and gi[2] is None                      # the float argument
    assert np.allclose(gi[0].numpy(), [4, 6])
    assert np.allclose(gi[1].numpy(), [0, 0])                  # y takes no grad: zeros, as torch's
    assert np.allclose(x.grad.numpy(), [4, 6])


def test_hooks_replace_grads_and_fire_once_per_backward():
    m = Scale()
    calls = []
    m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 10, go[1]))
    m.register_full_backward_hook(lambda mod, gi, go: calls.append(1) or (gi[0] + 1, gi[1]))
    x = tl.ones(2, requires_grad=True)
    out = m(x, tl.ones(2))[0].sum()
    out.backward(retain_graph=True)
    assert np.allclose(x.grad.numpy(), [21, 31]) and np.allclose(m.w.grad.numpy(), [10, 10])
    out.backward()
    assert len(calls) == 2


def test_hook_order_prepend_and_wrong_counts():
    lin = nn.Linear(2, 2)
    order = []
    lin.register_full_backward_hook(lambda m, gi, go: order.append("h1"))
    lin.register_full_backward_hook(lambda m, gi, go: order.append("h0"), prepend=True)
    lin.register_full_backward_pre_hook(lambda m, go: order.append("p1"))
    lin.register_full_backward_pre_hook(lambda m, go: order.append("p0"), prepend=True)
    lin(tl.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == ["p0", "p1", "h0", "h1"]
    bad = nn.Linear(2, 2)
    bad.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of grad_input, got 2, but "
                                           "expected 1"):
        bad(tl.ones(1, 2, requires_grad=True)).sum().backward()


def test_no_input_requires_grad_warns_and_passes_none():
    lin = nn.Linear(2, 1)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are computed with respect to "
                                         "module outputs"):
        lin(tl.ones(1, 2)).sum().backward()
    assert seen[0][0] == (None,) and np.allclose(seen[0][1][0].numpy(), [[1.0]])


def test_inplace_on_hooked_tensors_raises_as_torch():
    class Inplace(nn.Module):
        def forward(self, x):
            return x.relu_()
    m = Inplace()
    m.register_full_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="Output 0 of BackwardHookFunction is a view and is being modified inplace"):
        m(tl.ones(2, requires_grad=True) * 1)


def test_deprecated_backward_hook_is_a_post_hook_of_the_output_node():
    lin = nn.Linear(2, 1)
    seen = []
    lin.register_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    with pytest.warns(FutureWarning, match="non-full backward hook when the forward contains multiple autograd Nodes"):
        out = lin(tl.ones(1, 2, requires_grad=True))
    out.sum().backward()
    assert len(seen) == 1 and len(seen[0][1]) == 1
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks"):
        lin.register_full_backward_hook(lambda *a: None)


def test_node_hooks():
    x = tl.ones(2, requires_grad=True)
    y = x * 2
    seen = []
    y.grad_fn.register_prehook(lambda go: (go[0] * 5,))
    h = y.grad_fn.register_hook(lambda gi, go: seen.append((gi, go)))
    y.sum().backward(retain_graph=True)
    assert np.allclose(x.grad.numpy(), [10, 10]) and np.allclose(seen[0][1][0].numpy(), [5, 5])
    h.remove()
    y.grad_fn.register_hook(lambda gi, go: gi[0])
    with pytest.raises(TypeError, match="expected tuple, but hook returned 'Tensor'"):
        y.sum().backward()


def test_global_hooks_run_first_and_are_removed():
    order = []
    hs = [MM.register_module_forward_pre_hook(lambda m, a: order.append("gfpre")),
          MM.register_module_forward_hook(lambda m, a, o: order.append("gfhook")),
          MM.register_module_full_backward_pre_hook(lambda m, go: order.append("gpre")),
          MM.register_module_full_backward_hook(lambda m, gi, go: order.append("ghook"))]
    lin = nn.Linear(2, 1)
    lin.register_forward_hook(lambda m, a, o: order.append("fhook"))
    lin.register_full_backward_hook(lambda m, gi, go: order.append("hook"))
    lin(tl.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == ["gfpre", "gfhook", "fhook", "gpre", "ghook", "hook"]
    for h in hs:
        h.remove()
    assert MM._call_route is None or MM._call_route is MM._H.module_pair
    order.clear()
    nn.Linear(2, 1)(tl.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == []
    with pytest.raises(RuntimeError, match="as a global Module hook"):
        MM.register_module_backward_hook(lambda *a: None)


def test_registration_hooks_can_replace():
    made = []
    MM.register_module_parameter_registration_hook(
        lambda m, n, p: made.append(nn.Parameter(p.detach().clone())) or made[-1] if n == "bias" else None)
    names = []
    MM.register_module_buffer_registration_hook(lambda m, n, b: names.append(n))
    MM.register_module_module_registration_hook(lambda m, n, s: names.append(n))
    lin = nn.Linear(2, 2)
    assert lin.bias is made[0]
    nn.Sequential(nn.BatchNorm1d(2))
    assert names == ["running_mean", "running_var", "num_batches_tracked", "0"]


class Versioned(nn.Module):
    _version = 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(tl.ones(2))
        self.count = 4
        self.loaded = []

    def get_extra_state(self):
        return {"count": self.count}

    def set_extra_state(self, state):
        self.count = state["count"]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        self.loaded.append((prefix, dict(local_metadata)))
        if prefix + "old_w" in state_dict:
            state_dict[prefix + "w"] = state_dict.pop(prefix + "old_w")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def test_state_dict_metadata_extra_state_and_overrides():
    net = nn.Sequential(Versioned(), nn.BatchNorm1d(2))
    sd = net.state_dict()
    assert list(sd) == ["0.w", "0._extra_state", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    assert dict(sd._metadata) == {"": {"version": 1}, "0": {"version": 3}, "1": {"version": 2}}
    assert sd["0._extra_state"] == {"count": 4}
    sd["0.old_w"] = sd.pop("0.w") * 5
    sd["0._extra_state"] = {"count": 9}
    del sd["1.num_batches_tracked"]
    sd._metadata["1"]["version"] = 1                 # a BatchNorm checkpoint before num_batches_tracked
    net2 = nn.Sequential(Versioned(), nn.BatchNorm1d(2))
    assert str(net2.load_state_dict(sd)) == "<All keys matched successfully>"
    assert np.allclose(net2[0].w.detach().numpy(), [5, 5]) and net2[0].count == 9
    assert net2[0].loaded == [("0.", {"version": 3})]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "0._extra_state"'):
        net2.load_state_dict({k: v for k, v in net.state_dict().items() if k != "0._extra_state"})


def test_state_dict_hooks():
    lin = nn.Linear(1, 1)
    seen = []
    lin.register_state_dict_pre_hook(lambda m, prefix, keep_vars: seen.append(("pre", prefix, keep_vars)))
    lin.register_state_dict_post_hook(lambda m, d, prefix, meta: seen.append(("post", list(d), meta)))
    lin._register_state_dict_hook(lambda m, d, prefix, meta: OrderedDict([("only", 1)]))
    assert dict(lin.state_dict(prefix="p.", keep_vars=True)) == {"only": 1}
    assert seen == [("pre", "p.", True), ("post", ["p.weight", "p.bias"], {"version": 1})]
    lin2 = nn.Linear(1, 1)
    lin2.register_load_state_dict_pre_hook(lambda m, sd, prefix, *a: sd.update({prefix + "bias": tl.ones(1) * 3}))
    lin2.register_load_state_dict_post_hook(lambda m, keys: keys.unexpected_keys.clear())
    r = lin2.load_state_dict({"weight": tl.ones(1, 1), "zz": tl.ones(1)})
    assert float(lin2.bias.detach()[0]) == 3.0 and r.unexpected_keys == [] and r.missing_keys == []


def test_set_submodule_to_empty_compile():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    net.set_submodule("0", nn.Linear(2, 3))
    assert net[0].out_features == 3
    with pytest.raises(AttributeError, match="Sequential has no attribute `zz`"):
        net.set_submodule("zz", nn.ReLU(), strict=True)
    w = net[0].weight
    net.to_empty(device="cpu")
    assert net[0].weight is w and tuple(w.shape) == (3, 2) and w.requires_grad
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = tl.linspace(-1, 1, 15).reshape(5, 3)
    ref = m(x).detach().numpy()
    assert m.compile() is None and type(m) is nn.Sequential and list(m.state_dict())[0] == "0.weight"
    with tl.no_grad():
        assert np.allclose(m(x).numpy(), ref) and np.allclose(m(x).numpy(), ref)
    assert m._compiled_call_impl._runner.compiled is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m(x).sum().backward()                    # with grad: eager, as before
    assert m[0].weight.grad is not None


def test_no_hook_call_takes_the_fast_path_again_after_removal():
    lin = nn.Linear(2, 2)
    h = lin.register_full_backward_hook(lambda *a: None)
    assert lin._slow_call
    h.remove()
    lin(tl.ones(1, 2))
    assert not lin._slow_call


def test_torch_utils_hooks_names():
    from tensorlib.utils.hooks import BackwardHook, RemovableHandle
    from tensorlib.nn.modules._functions import BackwardHookFunction
    h = nn.Linear(1, 1).register_forward_hook(lambda *a: None)
    assert isinstance(h, RemovableHandle) and BackwardHook.__name__ == "BackwardHook"
    x = tl.ones(2, requires_grad=True)
    y, z = BackwardHookFunction.apply(x, tl.ones(2))
    assert y.grad_fn.name() == "BackwardHookFunctionBackward" and not z.requires_grad
