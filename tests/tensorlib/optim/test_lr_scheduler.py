"""Schedulers against closed forms of torch's documented schedules (and torch itself when installed)."""
import math

import pytest

import tensorlib as tl
from tensorlib import optim
from tensorlib.optim import lr_scheduler as L


def _opt(lr=1.0, cls=optim.SGD, **kw):
    return cls([tl.zeros(1, requires_grad=True)], lr=lr, **kw)


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_lr():
    opt = _opt(1.0)
    got = _lrs(L.StepLR(opt, step_size=3, gamma=0.5), opt, 8)
    assert got == pytest.approx([0.5 ** (e // 3) for e in range(8)])


def test_multistep_lr_with_repeated_milestone():
    opt = _opt(1.0)
    got = _lrs(L.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.1), opt, 7)
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.001, 0.001])


def test_exponential_lr():
    opt = _opt(2.0)
    assert _lrs(L.ExponentialLR(opt, gamma=0.9), opt, 5) == pytest.approx([2 * 0.9 ** e for e in range(5)])


def test_cosine_annealing_follows_closed_form_and_restarts():
    opt = _opt(1.0)
    T, eta = 5, 0.1
    got = _lrs(L.CosineAnnealingLR(opt, T_max=T, eta_min=eta), opt, 16)
    want = [eta + (1 - eta) * (1 + math.cos(math.pi * e / T)) / 2 for e in range(16)]
    assert got == pytest.approx(want, abs=1e-12)


def test_lambda_lr_per_group():
    a, b = tl.zeros(1, requires_grad=True), tl.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 10.0}], lr=1.0)
    s = L.LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.5 ** e])
    for _ in range(3):
        opt.step()
        s.step()
    assert s.get_last_lr() == pytest.approx([0.25, 10 * 0.125])
    assert s.state_dict()["lr_lambdas"] == [None, None]


def test_one_cycle_shape_and_momentum():
    opt = _opt(0.1, momentum=0.9)
    s = L.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs, moms = [], []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        s.step()
    assert lrs[0] == pytest.approx(1.0 / 25) and max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 2
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert moms[0] == pytest.approx(0.95) and moms[2] == pytest.approx(0.85) and moms[-1] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        s.step()


def test_one_cycle_uses_adam_beta1_and_needs_momentum():
    opt = _opt(0.1, cls=optim.Adam)
    L.OneCycleLR(opt, max_lr=0.01, epochs=2, steps_per_epoch=5)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    with pytest.raises(ValueError, match="either total_steps OR"):
        L.OneCycleLR(_opt(), max_lr=1.0)


def test_reduce_lr_on_plateau():
    opt = _opt(1.0)
    s = L.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    lrs = []
    for metric in [5, 4] + [4] * 18:
        s.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    # 3 bad epochs (> patience) reduce; the epoch after a reduction is cooldown; min_lr floors it
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25] + [0.2] * 8
    assert s.get_last_lr() == [0.2]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        L.ReduceLROnPlateau(opt, factor=2)


def test_state_dict_resumes_schedule():
    opt = _opt(1.0)
    s = L.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        opt.step()
        s.step()
    sd = s.state_dict()
    assert sd["last_epoch"] == 3 and "optimizer" not in sd
    opt2 = _opt(1.0)
    s2 = L.StepLR(opt2, step_size=2, gamma=0.1)
    s2.load_state_dict(sd)
    assert s2.last_epoch == 3 and s2.base_lrs == [1.0]


def test_resuming_without_initial_lr_is_an_error():
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(_opt(), step_size=1, last_epoch=5)


def test_warns_when_stepped_before_optimizer():
    opt = _opt()
    s = L.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
