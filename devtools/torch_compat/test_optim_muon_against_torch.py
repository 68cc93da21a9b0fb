"""tensorlib.optim.Muon against torch 2.13's: 10 steps on float32 matrices (tall, wide, square), every option."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
@pytest.mark.parametrize("kw", [{}, {"nesterov": False, "weight_decay": 0.0},
                                {"adjust_lr_fn": "match_rms_adamw", "momentum": 0.8, "ns_steps": 3}])
def test_muon_matches_torch(shape, kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(shape).astype(np.float32)
    ours, theirs = tl.tensor(p0.copy(), requires_grad=True), torch.tensor(p0.copy(), requires_grad=True)
    o1, o2 = tl.optim.Muon([ours], lr=0.02, **kw), torch.optim.Muon([theirs], lr=0.02, **kw)
    for _ in range(10):
        g = rng.standard_normal(shape).astype(np.float32)
        ours.grad, theirs.grad = tl.tensor(g.copy()), torch.tensor(g.copy())
        o1.step()
        o2.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(o1.state[ours]["momentum_buffer"].numpy(),
                               o2.state[theirs]["momentum_buffer"].numpy(), rtol=1e-6, atol=1e-7)
