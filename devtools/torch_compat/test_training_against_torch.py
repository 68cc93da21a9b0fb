"""Comparisons with PyTorch itself (torch is not a dependency: `make check-torch` runs these where torch is
installed; `make test` does not collect this folder)."""
import math  # noqa: F401
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim
from tensorlib.optim import lr_scheduler as L
from tests.tensorlib.test_amp_grad_scaler import _backward, _setup
from tests.tensorlib.optim.test_lr_scheduler import _opt


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
                                     ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01)),
                                     ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True))])
def test_matches_torch_in_float32(name, kw):
    """Agreement to a few float32 ulps: torch's vectorised kernels use fused multiply-add."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((5, 7)).astype(np.float32)
    grads = [rng.standard_normal((5, 7)).astype(np.float32) for _ in range(5)]
    ours = tl.tensor(p0.copy(), requires_grad=True)
    theirs = torch.tensor(p0.copy(), requires_grad=True)
    o1 = getattr(optim, name)([ours], **kw)
    o2 = getattr(torch.optim, name)([theirs], foreach=False, **kw)
    for g in grads:
        ours.grad = tl.tensor(g.copy())
        theirs.grad = torch.tensor(g.copy())
        o1.step()
        o2.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda m, o: m.StepLR(o, step_size=2, gamma=0.3),
    lambda m, o: m.MultiStepLR(o, milestones=[1, 4], gamma=0.5),
    lambda m, o: m.ExponentialLR(o, gamma=0.8),
    lambda m, o: m.CosineAnnealingLR(o, T_max=4, eta_min=0.01),
    lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=12, three_phase=True),
    lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=12, anneal_strategy="linear"),
])
def test_same_floats_as_torch(make):
    torch = pytest.importorskip("torch")
    o1 = _opt(0.1, momentum=0.9)
    o2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    s1, s2 = make(L, o1), make(torch.optim.lr_scheduler, o2)
    for _ in range(11):
        assert o1.param_groups[0]["lr"] == o2.param_groups[0]["lr"]
        assert o1.param_groups[0]["momentum"] == o2.param_groups[0]["momentum"]
        o1.step()
        o2.step()
        s1.step()
        s2.step()


def test_plateau_same_as_torch():
    torch = pytest.importorskip("torch")
    o1 = _opt(1.0)
    o2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s1 = L.ReduceLROnPlateau(o1, mode="max", patience=1, threshold=0.1, threshold_mode="abs", cooldown=2)
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(o2, mode="max", patience=1, threshold=0.1,
                                                    threshold_mode="abs", cooldown=2)
    for m in [1, 1.05, 1.2, 1.2, 1.25, 1.3, 0.9, 0.9, 0.9, 2, 2, 2, 2]:
        s1.step(m)
        s2.step(m)
        assert o1.param_groups[0]["lr"] == o2.param_groups[0]["lr"]



def test_matches_torch_scaler_sequence():
    torch = pytest.importorskip("torch")
    factors = [1.0, float("inf"), 1.0, 1.0, float("nan"), 1.0, 1.0, 1.0]
    p, opt, s = _setup(scale=16.0, growth_interval=2)
    tp = torch.tensor([1.0, 2.0], requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.5)
    ts = torch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=2)
    for f in factors:
        opt.zero_grad()
        topt.zero_grad()
        _backward(s, p, f)
        ts.scale((tp * f).sum()).backward()
        s.step(opt)
        ts.step(topt)
        s.update()
        ts.update()
        assert s.get_scale() == ts.get_scale()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy())

