"""optim.Muon: trains a hidden layer, torch's argument checks. Step by step against torch:
devtools/torch_compat/test_optim_muon_against_torch.py."""
from __future__ import annotations

import pytest

import tensorlib as tl


def test_muon_trains_a_hidden_layer():
    tl.manual_seed(0)
    x = tl.randn(64, 8)
    y = x @ tl.randn(8, 4)
    w = tl.zeros(8, 4).requires_grad_(True)
    opt = tl.optim.Muon([w], lr=0.05, weight_decay=0.0)
    first = None
    for _ in range(30):
        loss = ((x @ w - y) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert opt.state[w]["momentum_buffer"].dtype is tl.float32 and w.dtype is tl.float32


def test_muon_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match=r"Muon only supports 2D parameters whereas we found a parameter with size"):
        tl.optim.Muon([tl.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="Adjust learning rate function cube is not supported"):
        tl.optim.Muon([tl.zeros(2, 2, requires_grad=True)], adjust_lr_fn="cube")
    with pytest.raises(ValueError, match="momentum should be >= 0 but is: -1"):
        tl.optim.Muon([tl.zeros(2, 2, requires_grad=True)], momentum=-1)
