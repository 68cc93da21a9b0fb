"""An empty batch (N = 0: a filtered evaluation set, a mixture-of-experts expert that got no tokens) through the
layers and ops that reshaped with -1 (ambiguous for 0 rows in NumPy) or reduced without an identity: torch gives
empty outputs and empty gradients of the input's shape, and logsumexp over an empty dim -inf.
(devtools/torch_compat/test_zero_dim_against_torch.py checks the same against torch.)"""
from __future__ import annotations

import math

import pytest

import tensorlib as tl

LAYERS = {
    "maxpool2d": (lambda: tl.nn.MaxPool2d(2), (0, 3, 8, 8), (0, 3, 4, 4)),
    "groupnorm": (lambda: tl.nn.GroupNorm(1, 3), (0, 3, 4), (0, 3, 4)),
    "lstm": (lambda: tl.nn.LSTM(4, 5), (3, 0, 4), (3, 0, 5)),
    "gru_batch_first": (lambda: tl.nn.GRU(4, 5, batch_first=True), (0, 3, 4), (0, 3, 5)),
    "rnn": (lambda: tl.nn.RNN(4, 5), (3, 0, 4), (3, 0, 5)),
    "transformer_encoder_layer": (lambda: tl.nn.TransformerEncoderLayer(4, 2, 8, 0.0), (3, 0, 4), (3, 0, 4)),
    "linear": (lambda: tl.nn.Linear(4, 3), (0, 4), (0, 3)),
    "conv2d": (lambda: tl.nn.Conv2d(3, 2, 3), (0, 3, 8, 8), (0, 2, 6, 6)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_take_an_empty_batch_forward_and_backward(name):
    make, shape, out_shape = LAYERS[name]
    tl.manual_seed(0)
    layer = make()
    x = tl.zeros(shape, requires_grad=True)
    y = layer(x)
    y = y[0] if isinstance(y, tuple) else y
    assert tuple(y.shape) == out_shape
    y.sum().backward()
    assert tuple(x.grad.shape) == shape
    for p in layer.parameters():
        assert p.grad is not None and not p.grad.abs().sum().item()     # no rows: zero gradients


def test_logsumexp_over_an_empty_dim_is_minus_infinity():
    x = tl.zeros((0, 3), requires_grad=True)
    y = x.logsumexp(0)
    assert tuple(y.shape) == (3,) and all(v == -math.inf for v in y.tolist())
    assert tuple(x.logsumexp(1, keepdim=True).shape) == (0, 1)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3)
