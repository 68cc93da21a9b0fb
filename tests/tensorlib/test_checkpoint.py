"""tensorlib.utils.checkpoint against the same model run without it: same outputs and gradients (dropout
masks replayed), torch's warnings and errors, and the recomputation profiled inside the backward node."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from profiler import profile
from tensorlib import nn
from tensorlib.utils.checkpoint import checkpoint, checkpoint_sequential


def _model():
    tl.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))


def _run(kind):
    m = _model()
    x = tl.tensor(np.random.RandomState(0).randn(5, 6).astype("float32"), requires_grad=True)
    tl.manual_seed(11)
    if kind == "plain":
        y = m(x)
    elif kind == "checkpoint":
        y = checkpoint(m, x, use_reentrant=False)
    else:
        y = checkpoint_sequential(m, 3, x, use_reentrant=True)
    y.sum().backward()
    return y.detach().numpy(), x.grad.numpy(), [p.grad.numpy() for p in m.parameters()]


@pytest.mark.parametrize("kind", ["checkpoint", "sequential"])
def test_same_outputs_and_gradients_as_without(kind):
    y0, gx0, gp0 = _run("plain")
    y1, gx1, gp1 = _run(kind)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_allclose(gx0, gx1, rtol=1e-6)
    for a, b in zip(gp0, gp1):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_without_preserved_rng_state_dropout_masks_differ():
    m = nn.Sequential(nn.Dropout(0.5))
    x = tl.ones(1000, requires_grad=True)
    y = checkpoint(m, x, use_reentrant=False, preserve_rng_state=False)
    y.sum().backward()
    assert not np.array_equal(x.grad.numpy() != 0, y.detach().numpy() != 0)


def test_keyword_arguments_and_torch_errors():
    lin = nn.Linear(3, 3)
    x = tl.randn(2, 3, requires_grad=True)
    out = checkpoint(lambda a, scale: lin(a) * scale, x, scale=2.0, use_reentrant=False)
    out.sum().backward()
    assert x.grad is not None and lin.weight.grad is not None
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda a, scale: a, x, scale=2.0, use_reentrant=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(lin, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint(lin, x, use_reentrant=False)
    with pytest.raises(ValueError, match=r"Unexpected keyword arguments: foo"):
        checkpoint_sequential(nn.Sequential(lin), 1, x, use_reentrant=False, foo=1)


def test_forward_keeps_no_graph_and_recomputation_is_profiled_in_backward():
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    x = tl.randn(2, 4, requires_grad=True)
    with profile() as prof:
        y = checkpoint(m, x, use_reentrant=False)
        assert y.grad_fn.name() == "CheckpointFunctionBackward"
        y.sum().backward()
    names = [(e.name, e.kind) for e in prof.events()]
    start = names.index(("CheckpointFunctionBackward", "backward"))
    inside = [n for n, _ in names[start:]]
    assert "aten::linear" in inside and "aten::relu" in inside and "ReluBackward0" in inside
    assert [n for n, _ in names[:start]].count("ReluBackward0") == 0


def test_parameters_get_gradients_when_no_input_requires_grad():
    """The first layer's input is data: torch's non-reentrant checkpoint still trains the parameters; the
    reentrant one warns that gradients will be None, as torch's does."""
    lin = nn.Linear(3, 2)
    x = tl.randn(4, 3)
    checkpoint(lin, x, use_reentrant=False).sum().backward()
    expected = x.sum(0).numpy()
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.stack([expected, expected]), rtol=1e-5)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
        y = checkpoint(lin, x, use_reentrant=True)
    assert not y.requires_grad
