"""tensorlib.jit.trace / save / load / script (issue 19): the traced module replays the recorded ops through the
dispatcher (hooks and the profiler see them, in the module regions eager code opens), generalises over the
batch dimension where the ops allow, saves as JSON + .npy (no pickle) and warns as torch's tracer does."""
from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import jit, nn
from tensorlib.dispatch import Hook, add_hook, remove_hook

from .test_onnx_export import CNN, MLP, Encoder, LSTMNet


def _np(out):
    return [o.detach().numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("cls,shape", [(MLP, (4, 12)), (CNN, (2, 3, 8, 8)), (LSTMNet, (3, 5, 6)),
                                       (Encoder, (2, 7, 16))], ids=["MLP", "CNN", "LSTM", "Encoder"])
def test_traced_module_equals_eager_at_traced_and_other_batch(cls, shape):
    model = cls().eval()
    traced = jit.trace(model, tl.randn(*shape))
    for batch in (shape[0], shape[0] + 2):
        x = tl.randn(batch, *shape[1:])
        with tl.no_grad():
            want = _np(model(x))
            got = _np(traced(x))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


class _Recorder(Hook):
    def __init__(self):
        self.events = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        if phase == "forward":
            self.events.append(("op", op.name))

    def range_enter(self, name, kind):
        if kind != "op":            # composites (linear = t + addmm) are ranges of kind "op"; replay runs their ops
            self.events.append((kind, name))


def _events(fn, x):
    h = _Recorder()
    add_hook(h)
    try:
        with tl.no_grad():
            fn(x)
    finally:
        remove_hook(h)
    return h.events


def test_replay_runs_through_the_dispatcher_like_eager_code():
    model = MLP().eval()
    traced = jit.trace(model, tl.randn(2, 12))
    eager = _events(model, tl.randn(2, 12))
    replay = _events(traced, tl.randn(2, 12))
    assert [e for e in replay if e[0] == "op"] == [e for e in eager if e[0] == "op"]
    assert ("op", "addmm") in replay and ("op", "t") in replay       # linear's ops
    # the original's module regions, inside the traced module's own
    assert [e for e in replay if e[0] == "module"][1:] == [e for e in eager if e[0] == "module"]


def test_graph_is_printable_and_names_ops_and_parameters():
    traced = jit.trace(MLP().eval(), tl.randn(2, 12))
    text = str(traced.graph)
    assert text.startswith("graph(%x : float32(2, 12)")
    assert "aten::t(%net.0.weight)" in text and "aten::addmm(%net.0.bias, %x, " in text   # linear's ops
    assert "x.size(0)" in text          # the batch dimension follows the input
    assert "aten::softmax" in text and text.rstrip().endswith(")")
    assert traced.code == text


def test_traced_module_shares_parameters_and_supports_autograd():
    model = MLP().eval()
    traced = jit.trace(model, tl.randn(3, 12))
    assert list(traced.state_dict()) == list(model.state_dict())
    assert traced.get_parameter("net.0.weight") is model.net[0].weight
    x = tl.randn(3, 12)
    traced(x).sum().backward()
    g_traced = model.net[0].weight.grad.numpy().copy()
    model.zero_grad()
    model(x).sum().backward()
    np.testing.assert_allclose(g_traced, model.net[0].weight.grad.numpy(), rtol=1e-6, atol=1e-7)
    with tl.no_grad():
        model.net[0].weight.mul_(0.5)        # the trace follows the original's parameters
        np.testing.assert_array_equal(traced(x).numpy(), model(x).numpy())


def test_save_and_load_without_pickle(tmp_path):
    model = CNN().eval()
    traced = jit.trace(model, tl.randn(2, 3, 8, 8))
    path = tmp_path / "cnn.pt"
    jit.save(traced, str(path))
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert not [n for n in names if n.endswith(".pkl")]
    loaded = jit.load(str(path))
    assert list(loaded.state_dict()) == list(model.state_dict())
    x = tl.randn(5, 3, 8, 8)
    with tl.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    buf = io.BytesIO()
    traced.save(buf)
    buf.seek(0)
    again = jit.load(buf)
    print(again.graph)
    with tl.no_grad():
        np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())


def test_a_traced_function_saves_and_loads():
    def f(a, b):
        return (a * b + 1).relu().sum(dim=1)
    traced = jit.trace(f, (tl.randn(3, 4), tl.randn(3, 4)))
    buf = io.BytesIO()
    jit.save(traced, buf)
    buf.seek(0)
    g = jit.load(buf)
    a, b = tl.randn(6, 4), tl.randn(6, 4)
    np.testing.assert_array_equal(g(a, b).numpy(), f(a, b).numpy())


def test_load_refuses_other_files(tmp_path):
    p = tmp_path / "state.pt"
    tl.save({"w": tl.ones(2)}, str(p))
    with pytest.raises(RuntimeError, match="not a tensorlib.jit.save file"):
        jit.load(str(p))
    with pytest.raises(TypeError, match="expects a traced module"):
        jit.save(MLP(), io.BytesIO())


def test_script_is_refused_with_a_pointer_to_trace():
    with pytest.raises(RuntimeError, match=r"tensorlib.jit.script is not supported.*Use tensorlib.jit.trace"):
        jit.script(MLP())


class _Branchy(nn.Module):
    def forward(self, x):
        if x.mean() > 0:
            return x * 2
        return -x


def test_python_values_from_tensors_warn_and_stay_constant():
    with pytest.warns(jit.TracerWarning, match="Converting a tensor to a Python boolean"):
        traced = jit.trace(_Branchy(), tl.ones(2, 3))
    # the branch taken while tracing is the one replayed, as in torch
    np.testing.assert_array_equal(traced(-tl.ones(2, 3)).numpy(), -2 * np.ones((2, 3), np.float32))


def test_check_trace_warns_when_the_trace_does_not_reproduce_the_function():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    with pytest.warns(jit.TracerWarning, match=r"Output nr 1\. of the traced function does not match"):
        jit.trace(model, tl.randn(64, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jit.trace(model, tl.randn(64, 4), check_trace=False)


class _ShapeDependent(nn.Module):
    def forward(self, x):
        if x.shape[0] > 2:       # Python control flow on the batch size (the probe, batch 3, takes the other branch)
            return x + 1
        return x.reshape(-1)


def test_inputs_the_trace_cannot_generalise_to_are_refused():
    traced = jit.trace(_ShapeDependent(), tl.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"was traced with shape \[2, 3\] and the trace does not generalise to "
                                           r"shape \[5, 3\]"):
        traced(tl.randn(5, 3))
    with pytest.raises(RuntimeError, match="was traced as float32 and got float64"):
        traced(tl.randn(2, 3, dtype=tl.float64))


def test_concurrent_traces_leave_the_tensor_methods_as_they_were():
    import threading
    originals = {n: tl.Tensor.__dict__[n] for n in ("item", "__bool__", "numpy")}
    errors = []

    def work():
        try:
            for _ in range(5):
                jit.trace(_Branchy(), tl.ones(2, 3), check_trace=False)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jit.TracerWarning)
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert {n: tl.Tensor.__dict__[n] for n in originals} == originals


def test_nested_is_refused_with_what_to_use_instead():
    with pytest.raises(NotImplementedError, match="Pad the sequences to one length"):
        tl.nested.nested_tensor([tl.ones(2), tl.ones(3)])
