"""tensorlib.compile (issue 19): inference replays the traced graph as generated code with eager's results;
training and failed guards run eagerly and say so once; unsupported arguments are refused."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.dispatch import Hook, add_hook, remove_hook

from .test_onnx_export import CNN, MLP, Encoder, LSTMNet


@pytest.mark.parametrize("cls,shape", [(MLP, (4, 12)), (CNN, (2, 3, 8, 8)), (LSTMNet, (3, 5, 6)),
                                       (Encoder, (2, 7, 16))], ids=["MLP", "CNN", "LSTM", "Encoder"])
def test_compiled_inference_equals_eager(cls, shape):
    model = cls().eval()
    compiled = tl.compile(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ctx in (tl.no_grad, tl.inference_mode):
            for _ in range(3):                     # the first call traces, the next ones replay
                x = tl.randn(*shape)
                with ctx():
                    got, want = compiled(x), model(x)
                for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple)
                                else (want,)):
                    np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert compiled.compiled_source.startswith("def compiled(x0):")


def test_temporaries_are_freed_after_last_use_and_large_ones_reused_in_place():
    model = MLP().eval()
    small, big = tl.compile(model), tl.compile(model)
    with tl.no_grad():
        small(tl.randn(2, 12))
        x = tl.randn(1024, 12)
        np.testing.assert_array_equal(big(x).numpy(), model(x).numpy())
        np.testing.assert_array_equal(big(x).numpy(), model(x).numpy())
    assert small._runner.compiled.fn.inplace == 0               # (2, 32): an allocation is cheaper
    assert big._runner.compiled.fn.inplace == 1                 # the ReLU on the (1024, 32) Linear output
    src = big.compiled_source
    assert "del v0" in src and src.count("_D(") == 9     # (t addmm) relu (t addmm) gelu (t addmm) softmax


class _Count(Hook):
    def __init__(self):
        self.ops, self.ranges = [], []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.ops.append(op.name)

    def range_enter(self, name, kind):
        self.ranges.append((kind, name))


def test_compiled_ops_are_profiled_without_module_regions():
    model = MLP().eval()
    compiled = tl.compile(model)
    x = tl.randn(2, 12)
    with tl.no_grad():
        compiled(x)
        h = _Count()
        add_hook(h)
        try:
            compiled(x)
        finally:
            remove_hook(h)
    assert h.ops.count("addmm") == 3 and h.ops.count("t") == 3       # the three linears' ops
    assert "relu" in h.ops
    # the region, and inside it only the kernels' own steps that torch dispatches as ops (issue 15)
    assert [r for r in h.ranges if r[0] != "op"] == [("user", "Torch-Compiled Region: 0/0")]
    assert {r[1] for r in h.ranges if r[0] == "op"} <= {"transpose", "as_strided", "clamp_min"}


def test_training_and_failed_guards_run_eagerly_and_say_so_once():
    model = MLP().eval()
    compiled = tl.compile(model)
    x = tl.randn(2, 12)
    with pytest.warns(UserWarning, match="running MLP eagerly: gradients are enabled") as rec:
        out = compiled(x)
        compiled(x)
    assert len([w for w in rec if "gradients" in str(w.message)]) == 1
    assert out.grad_fn is not None          # eager autograd
    with tl.no_grad():
        compiled(x)
        with pytest.warns(UserWarning, match=r"a guard failed: input 0 has shape \[5, 12\], compiled for \[2, 12\]"):
            y = compiled(tl.randn(5, 12))
        assert tuple(y.shape) == (5, 5)
        with pytest.warns(UserWarning, match="input 0 has requires_grad=True, compiled for False"):
            compiled(tl.randn(2, 12).requires_grad_())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled(tl.randn(5, 12))           # the same reason again: said once already
        model.train()
        with pytest.warns(UserWarning, match="training flag changed"):
            compiled(x)


class _Branchy(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else -x


def test_data_dependent_flow_falls_back_or_fails_with_fullgraph():
    compiled = tl.compile(_Branchy())
    with tl.no_grad():
        with pytest.warns(UserWarning, match="data-dependent control flow"):
            np.testing.assert_array_equal(compiled(-tl.ones(2)).numpy(), np.ones(2, np.float32))
        np.testing.assert_array_equal(compiled(tl.ones(2)).numpy(), 2 * np.ones(2, np.float32))   # eager: follows x
        with pytest.raises(RuntimeError, match=r"fullgraph=True.*data-dependent"):
            tl.compile(_Branchy(), fullgraph=True)(tl.ones(2))


def test_functions_decorators_and_options():
    @tl.compile
    def f(a, b):
        return (a @ b).relu()
    a, b = tl.randn(3, 4), tl.randn(4, 2)
    with tl.no_grad():
        np.testing.assert_array_equal(f(a, b).numpy(), (a @ b).relu().numpy())
        np.testing.assert_array_equal(f(a, b).numpy(), (a @ b).relu().numpy())
    model = MLP()
    assert tl.compile(model, disable=True) is model
    assert list(tl.compile(model).state_dict())[0] == "_orig_mod.net.0.weight"
    eager = tl.compile(model, backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager(tl.randn(1, 12))


def test_unsupported_arguments_are_refused():
    model = MLP()
    with pytest.raises(ValueError, match="backend 'cudagraphs' is not available"):
        tl.compile(model, backend="cudagraphs")
    with pytest.raises(ValueError, match="mode 'max-autotune' is not supported"):
        tl.compile(model, mode="max-autotune")
    with pytest.raises(ValueError, match="dynamic=True is not supported"):
        tl.compile(model, dynamic=True)
    with pytest.raises(ValueError, match="options are not supported"):
        tl.compile(model, options={"trace.enabled": True})
    with pytest.raises(TypeError, match="'recompile_limit' is not supported"):
        tl.compile(model, recompile_limit=4)
