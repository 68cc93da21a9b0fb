"""LSTMCell's step: one fused op (`_thnn_fused_lstm_cell`, one backward node) when nothing observes ops, the
decomposed ops (add, chunk, sigmoid, tanh, mul) when something does (a profiler, an op hook), as torch's CPU
LSTMCell shows. The two paths give the same values and gradients to float64 rounding."""
import contextlib

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import dispatch as D
from tensorlib import nn


class _Names(D.Hook):
    """An op hook: puts ops on the observed (full) path and keeps the names of those dispatched."""

    def __init__(self):
        self.names = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.names.append((op.name, phase))


@contextlib.contextmanager
def _observed(on):
    hook = _Names()
    if on:
        D.add_hook(hook)
    try:
        yield hook
    finally:
        if on:
            D.remove_hook(hook)


def _run(observed, bias=True, hx_given=True, batch=(3,), dtype=tl.float64, steps=3, create_graph=False):
    """Values and gradients (input, h0, c0, parameters) of a few steps of one LSTMCell, its outputs used more
    than once (h feeds the next step and the loss; c likewise), and the names of the ops dispatched."""
    tl.manual_seed(0)
    cell = nn.LSTMCell(4, 5, bias=bias).to(dtype)
    x = tl.randn(*batch, 4, dtype=dtype, requires_grad=True)
    h0 = tl.randn(*batch, 5, dtype=dtype, requires_grad=True)
    c0 = tl.randn(*batch, 5, dtype=dtype, requires_grad=True)
    with _observed(observed) as hook:
        state = (h0, c0) if hx_given else None
        loss = 0
        for k in range(steps):
            h, c = cell(x, state)
            loss = loss + (h * h).sum() * (k + 1) + c.sum() * 0.5 + (h * c).sum() * 0.25
            state = (h, c)
        inputs = [x] + ([h0, c0] if hx_given else []) + list(cell.parameters())
        grads = tl.autograd.grad(loss, inputs, create_graph=create_graph)
        if create_graph:      # a second derivative: of the gradients' squares, w.r.t. the same inputs
            grads = tl.autograd.grad(sum((g * g).sum() for g in grads), inputs)
    return [h.detach().numpy(), c.detach().numpy()] + [g.detach().numpy() for g in grads], hook.names


@pytest.mark.parametrize("dtype", [tl.float64, tl.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("hx_given", [True, False], ids=["hx", "no-hx"])
@pytest.mark.parametrize("batch", [(3,), ()], ids=["batched", "unbatched"])
def test_fused_step_matches_the_decomposed_ops(dtype, bias, hx_given, batch):
    (fused, quiet_names), (decomposed, seen) = (_run(o, bias, hx_given, batch, dtype) for o in (False, True))
    assert quiet_names == []
    forward = {n for n, phase in seen if phase == "forward"}
    assert {"sigmoid", "tanh", "mul", "add"} <= forward and "_thnn_fused_lstm_cell" not in forward
    tol = 1e-12 if dtype == tl.float64 else 1e-5
    for a, b in zip(fused, decomposed):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_quiet_step_is_one_node_and_its_backward_reaches_hx_and_cx():
    tl.manual_seed(1)
    cell = nn.LSTMCell(3, 4).double()
    x = tl.randn(2, 3, dtype=tl.float64)
    h0 = tl.randn(2, 4, dtype=tl.float64, requires_grad=True)
    c0 = tl.randn(2, 4, dtype=tl.float64, requires_grad=True)
    h, c = cell(x, (h0, c0))
    assert h.grad_fn.name() == "ThnnFusedLstmCellBackward0" and c.grad_fn is h.grad_fn
    # only c's gradient: h0 gets it through W_hh, c0 through f * c0
    gh0, gc0 = tl.autograd.grad(c.sum(), [h0, c0], retain_graph=True)
    f = tl.sigmoid((tl.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)
                    + tl.nn.functional.linear(h0, cell.weight_hh, cell.bias_hh)).chunk(4, -1)[1])
    np.testing.assert_allclose(gc0.numpy(), f.detach().numpy(), rtol=1e-13)
    assert np.abs(gh0.numpy()).sum() > 0
    # retain_graph: a second backward through the same node accumulates the same gradients
    h.sum().backward(retain_graph=True)
    first = (h0.grad.numpy().copy(), c0.grad.numpy().copy(), cell.weight_hh.grad.numpy().copy())
    h.sum().backward()
    for a, b in zip(first, (h0.grad, c0.grad, cell.weight_hh.grad)):
        np.testing.assert_allclose(b.numpy(), 2 * a, rtol=1e-14)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        h.sum().backward()


def test_observed_backward_runs_the_fused_backward_op_and_the_quiet_one_agrees_bit_for_bit():
    """A node made on the quiet path and differentiated while an op hook watches dispatches torch's
    _thnn_fused_lstm_cell_backward_impl; the quiet formula (the same kernel on arrays) gives the same bits."""
    grads = []
    for observed in (False, True):
        tl.manual_seed(2)
        cell = nn.LSTMCell(3, 4).double()
        x = tl.randn(2, 3, dtype=tl.float64, requires_grad=True)
        h, c = cell(x)
        with _observed(observed) as hook:
            (h.sum() * 2 + (c * c).sum()).backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in cell.parameters()])
        if observed:
            assert ("_thnn_fused_lstm_cell_backward_impl", "backward") in hook.names
    for a, b in zip(*grads):
        assert np.array_equal(a, b)


def test_second_derivative_matches_the_decomposed_ops():
    """create_graph: the fused node's backward records the composite formula, differentiable again."""
    (fused, _), (decomposed, _) = (_run(o, steps=2, create_graph=True) for o in (False, True))
    for a, b in zip(fused, decomposed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_profile_shows_the_decomposed_ops():
    import profiler

    cell = nn.LSTMCell(3, 4)
    x = tl.randn(2, 3)
    with profiler.profile() as prof:
        h, c = cell(x)
        (h.sum() + c.sum()).backward()
    names = {e.name for e in prof.events()}
    assert {"aten::sigmoid", "aten::tanh", "aten::mul", "SigmoidBackward0", "TanhBackward0"} <= names
    assert not {n for n in names if "fused_lstm" in n.lower()}


def test_lstm_with_projections_steps_through_the_fused_cell_too():
    """nn.LSTM with proj_size runs step by step (_lstm_step): fused when quiet, decomposed when observed."""
    results = []
    for observed in (False, True):
        tl.manual_seed(4)
        m = nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True).double()
        x = tl.randn(4, 2, 3, dtype=tl.float64, requires_grad=True)
        with _observed(observed) as hook:
            out, (h, c) = m(x)
            (out.pow(2).sum() + h.sum() + c.sum() * 0.5).backward()
        names = {n for n, _ in hook.names}
        assert ("sigmoid" in names) == observed and "_thnn_fused_lstm_cell" not in names
        results.append([out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,args,err,msg", [
    ("LSTMCell", ((2, 4),), RuntimeError, "input has inconsistent input_size: got 4 expected 3"),
    ("LSTMCell", ((2, 3), ((3, 5), (2, 5))), RuntimeError, "Input batch size 2 doesn't match hidden0 batch size 3"),
    ("LSTMCell", ((2, 3), ((2, 5), (2, 4))), RuntimeError, "hidden1 has inconsistent hidden_size: got 4, expected 5"),
    ("LSTMCell", ((2, 2, 3),), ValueError, "LSTMCell: Expected input to be 1D or 2D, got 3D instead"),
    ("GRUCell", ((2, 3), (2, 4)), RuntimeError, "hidden0 has inconsistent hidden_size: got 4, expected 5"),
    ("RNNCell", ((3,), (2, 5)), ValueError, "RNNCell: Expected hidden to be 1D, got 2D instead"),
])
def test_cells_check_their_inputs_as_torch_does(kind, args, err, msg):
    def make(a):
        return tuple(make(x) for x in a) if isinstance(a[0], tuple) else tl.randn(*a)
    with pytest.raises(err, match=msg):
        getattr(nn, kind)(3, 5)(*make(args))
