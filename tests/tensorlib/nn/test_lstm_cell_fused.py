"""LSTMCell's step: one fused op (`_thnn_fused_lstm_cell`, one backward node), observed or not (a profile
shows what runs unprofiled); under autocast the decomposed ops (add, chunk, sigmoid, tanh, mul). The fused
step gives the decomposed formula's values and gradients to float64 rounding."""
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


def _decomposed(cell, x, state):
    """LSTMCell's formula in separate ops (torch's CPU LSTMCell): the reference for the fused step."""
    F = nn.functional
    h, c = state if state is not None else (tl.zeros(*x.shape[:-1], 5, dtype=x.dtype),) * 2
    i, f, g, o = (F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)).chunk(4, -1)
    c = tl.sigmoid(f) * c + tl.sigmoid(i) * tl.tanh(g)
    return tl.sigmoid(o) * tl.tanh(c), c


def _run(reference, bias=True, hx_given=True, batch=(3,), dtype=tl.float64, steps=3, create_graph=False,
         observed=False):
    """Values and gradients (input, h0, c0, parameters) of a few steps of one LSTMCell (reference: its formula
    in separate ops), its outputs used more than once (h feeds the next step and the loss; c likewise), and
    the names of the ops dispatched (observed: an op hook watching)."""
    tl.manual_seed(0)
    cell = nn.LSTMCell(4, 5, bias=bias).to(dtype)
    x = tl.randn(*batch, 4, dtype=dtype, requires_grad=True)
    h0 = tl.randn(*batch, 5, dtype=dtype, requires_grad=True)
    c0 = tl.randn(*batch, 5, dtype=dtype, requires_grad=True)
    with _observed(observed) as hook:
        state = (h0, c0) if hx_given else None
        loss = 0
        for k in range(steps):
            h, c = _decomposed(cell, x, state) if reference else cell(x, state)
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
    fused, decomposed = (_run(r, bias, hx_given, batch, dtype)[0] for r in (False, True))
    tol = 1e-12 if dtype == tl.float64 else 1e-5
    for a, b in zip(fused, decomposed):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_observed_step_is_the_same_fused_op_with_the_same_bits():
    """An op hook (a profiler's detailed options) sees the fused op and its backward: observing changes
    nothing that runs."""
    (quiet, none_seen), (observed, seen) = (_run(False, observed=o) for o in (False, True))
    assert none_seen == []
    forward = {n for n, phase in seen if phase == "forward"}
    assert "_thnn_fused_lstm_cell" in forward and not {"sigmoid", "tanh", "split_with_sizes"} & forward
    assert ("_thnn_fused_lstm_cell_backward_impl", "backward") in seen
    for a, b in zip(quiet, observed):
        assert np.array_equal(a, b)


def test_under_autocast_the_step_runs_decomposed():
    cell = nn.LSTMCell(4, 5)
    x = tl.randn(3, 4)
    with _observed(True) as hook, tl.autocast("cpu", dtype=tl.bfloat16):
        h, c = cell(x)
    names = {n for n, _ in hook.names}
    assert {"sigmoid", "tanh"} <= names and "_thnn_fused_lstm_cell" not in names
    assert h.shape == c.shape == (3, 5)


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


def test_a_profile_shows_the_fused_op_in_torchs_lstm_cell_region():
    """What torch's profiler shows of LSTMCell on CUDA: aten::lstm_cell over two linears and the fused op; its
    backward node runs the fused backward op, under default options (a sink formula) and detailed ones alike."""
    import profiler

    for kw in ({}, {"record_shapes": True, "profile_memory": True}):
        cell = nn.LSTMCell(3, 4)
        x = tl.randn(2, 3)
        with profiler.profile(**kw) as prof:
            h, c = cell(x)
            (h.sum() + c.sum()).backward()
        evs = prof.events()
        region = [e for e in evs if e.name == "aten::lstm_cell"]
        assert len(region) == 1
        children = [e.name for e in region[0].cpu_children]
        assert children == ["aten::linear", "aten::linear", "aten::_thnn_fused_lstm_cell"]
        names = {e.name for e in evs}
        assert {"ThnnFusedLstmCellBackward0", "aten::_thnn_fused_lstm_cell_backward_impl"} <= names
        assert not {"aten::sigmoid", "SigmoidBackward0"} & names
        if kw:
            assert region[0].input_shapes == [[2, 3], [[2, 4], [2, 4]], [16, 3], [16, 4], [16], [16]]


def test_lstm_with_projections_steps_through_the_fused_cell_observed_or_not():
    """nn.LSTM with proj_size runs step by step (_lstm_step): the fused cell, with or without an op hook."""
    results = []
    for observed in (False, True):
        tl.manual_seed(4)
        m = nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True).double()
        x = tl.randn(4, 2, 3, dtype=tl.float64, requires_grad=True)
        with _observed(observed) as hook:
            out, (h, c) = m(x)
            (out.pow(2).sum() + h.sum() + c.sum() * 0.5).backward()
        names = {n for n, _ in hook.names}
        assert "sigmoid" not in names and ("_thnn_fused_lstm_cell" in names) == observed
        results.append([out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


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
