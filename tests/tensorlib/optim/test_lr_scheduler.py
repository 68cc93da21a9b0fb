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


# --- the schedulers added for torch 2.13's full lr_scheduler.__all__ ---------------------------------------

def _close(a, b):
    assert len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15) for x, y in zip(a, b)), (a, b)


def test_multiplicative_lr():
    opt = _opt(1.0)
    _close(_lrs(L.MultiplicativeLR(opt, lambda e: 0.5), opt, 4), [1.0, 0.5, 0.25, 0.125])
    with pytest.raises(TypeError, match="lr_lambda should be a function, but got int"):
        L.MultiplicativeLR(_opt(), 3)


def test_constant_lr():
    opt = _opt(1.0)
    _close(_lrs(L.ConstantLR(opt, factor=0.25, total_iters=3), opt, 5), [0.25, 0.25, 0.25, 1.0, 1.0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        L.ConstantLR(_opt(), factor=2)


def test_linear_lr_follows_its_closed_form():
    opt = _opt(2.0)
    got = _lrs(L.LinearLR(opt, start_factor=0.2, end_factor=0.8, total_iters=6), opt, 9)
    _close(got, [2.0 * (0.2 + 0.6 * min(6, t) / 6) for t in range(9)])
    with pytest.raises(ValueError, match="greater than 0 and less or equal to 1"):
        L.LinearLR(_opt(), start_factor=0)


def test_polynomial_lr_follows_its_closed_form():
    opt = _opt(1.0)
    got = _lrs(L.PolynomialLR(opt, total_iters=5, power=2.0), opt, 8)
    _close(got, [(1 - min(5, t) / 5) ** 2 for t in range(8)])


def test_cyclic_lr_triangular_and_momentum():
    opt = _opt(1.0, momentum=0.9)
    s = L.CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2)
    lrs, moms = [], []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        s.step()
    _close(lrs, [0.1, 0.3, 0.5, 0.3, 0.1, 0.3])
    _close(moms, [0.9, 0.85, 0.8, 0.85, 0.9, 0.85])
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        L.CyclicLR(_opt(cls=optim.Adagrad), 0.1, 0.5)
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        L.CyclicLR(_opt(momentum=0.9), 0.1, 0.5, mode="sine")


def test_cyclic_lr_state_dict_drops_plain_functions():
    s = L.CyclicLR(_opt(momentum=0.9), 0.1, 0.5, scale_fn=lambda x: 1.0)
    sd = s.state_dict()
    assert sd["_scale_fn_custom"] is None and "_scale_fn_ref" not in sd


def test_cosine_annealing_warm_restarts_closed_form():
    opt = _opt(1.0)
    got = _lrs(L.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.0), opt, 8)
    t_cur = [0, 1, 0, 1, 2, 3, 0, 1]
    t_i = [2, 2, 4, 4, 4, 4, 8, 8]
    _close(got, [(1 + math.cos(math.pi * c / i)) / 2 for c, i in zip(t_cur, t_i)])
    with pytest.raises(ValueError, match="Expected positive integer T_0, but got 0"):
        L.CosineAnnealingWarmRestarts(_opt(), T_0=0)


def test_sequential_lr_switches_at_milestones():
    opt = _opt(1.0)
    s = L.SequentialLR(opt, [L.ConstantLR(opt, factor=0.1, total_iters=2), L.ExponentialLR(opt, gamma=0.5)],
                       milestones=[3])
    _close(_lrs(s, opt, 6), [0.1, 0.1, 1.0, 1.0, 0.5, 0.25])
    sd = s.state_dict()
    assert len(sd["_schedulers"]) == 2 and "optimizer" not in sd
    with pytest.raises(ValueError, match="one more than the number of milestone points"):
        L.SequentialLR(opt, [L.ExponentialLR(opt, gamma=0.5)], milestones=[3])
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        L.SequentialLR(opt, [L.ReduceLROnPlateau(opt), L.ExponentialLR(opt, 0.5)], milestones=[3])


def test_chained_scheduler_composes():
    opt = _opt(1.0)
    s = L.ChainedScheduler([L.ConstantLR(opt, factor=0.5, total_iters=2), L.ExponentialLR(opt, gamma=0.9)])
    _close(_lrs(s, opt, 4), [0.5, 0.45, 0.81, 0.729])
    other = _opt(1.0)
    with pytest.raises(ValueError, match="expects all schedulers to belong to the same optimizer"):
        L.ChainedScheduler([L.ExponentialLR(opt, 0.9), L.ExponentialLR(other, 0.9)])


def test_get_lr_outside_step_warns_and_overridden_step_warns():
    opt = _opt()
    s = L.ExponentialLR(opt, gamma=0.5)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        s.get_lr()
    opt.step = lambda closure=None: None
    with pytest.warns(UserWarning, match="has been overridden after learning rate scheduler initialization"):
        s.step()


def test_tensor_lr_is_updated_in_place():
    lr = tl.tensor(1.0)
    opt = optim.Adam([tl.zeros(1, requires_grad=True)], lr=lr)
    s = L.ExponentialLR(opt, gamma=0.5)
    opt.step()
    s.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.5
    assert s.get_last_lr()[0] is not lr and s.get_last_lr()[0].item() == 0.5


def test_swalr_anneals_to_swa_lr_and_round_trips():
    from tensorlib.optim.swa_utils import SWALR
    opt = _opt(1.0)
    s = SWALR(opt, swa_lr=0.1, anneal_epochs=2, anneal_strategy="linear")
    _close(_lrs(s, opt, 4), [1.0, 0.55, 0.1, 0.1])
    sd = s.state_dict()
    assert "anneal_func" not in sd and sd["_anneal_strategy"] == "linear"
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        SWALR(opt, 0.1, anneal_strategy="step")


def test_averaged_model_swa_and_ema():
    from tensorlib.optim import swa_utils
    model = tl.nn.Linear(2, 1)
    swa = swa_utils.AveragedModel(model)
    ema = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5))
    for v in (1.0, 2.0, 6.0):
        with tl.no_grad():
            model.weight.fill_(v)
        swa.update_parameters(model)
        ema.update_parameters(model)
    assert swa.module.weight.detach().numpy().tolist() == [[3.0, 3.0]] and swa.n_averaged.item() == 3
    assert ema.module.weight.detach().numpy().tolist() == [[3.75, 3.75]]      # 1, then 1.5, then 3.75
    with pytest.raises(ValueError, match="Invalid decay value 2"):
        swa_utils.get_ema_avg_fn(2)


def test_update_bn_recomputes_running_stats():
    import numpy as np
    from tensorlib.optim import swa_utils
    model = tl.nn.Sequential(tl.nn.Linear(3, 3), tl.nn.BatchNorm1d(3))
    rng = np.random.default_rng(0)
    batches = [tl.tensor(rng.standard_normal((4, 3)).astype(np.float32)) for _ in range(3)]
    model.eval()
    swa_utils.update_bn([(b, 0) for b in batches], model)
    with tl.no_grad():
        feats = np.concatenate([model[0](b).numpy() for b in batches])
    np.testing.assert_allclose(model[1].running_mean.numpy(), feats.mean(0), rtol=1e-5, atol=1e-6)
    assert not model.training and model[1].momentum == 0.1
