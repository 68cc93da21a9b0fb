"""GradScaler on CPU tensors: scaling, unscaling, skipped steps on inf/NaN, the growth/backoff rule."""
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim
from tensorlib.amp import GradScaler


def _setup(scale=2.0 ** 16, **kw):
    p = tl.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    return p, opt, GradScaler("cpu", init_scale=scale, **kw)


def _backward(scaler, p, factor=1.0):
    loss = (p * factor).sum()
    scaler.scale(loss).backward()


def test_scale_multiplies_and_unscale_divides():
    p, opt, s = _setup(scale=1024.0)
    loss = (p * 3).sum()
    scaled = s.scale(loss)
    assert scaled.item() == loss.item() * 1024
    scaled.backward()
    assert p.grad.tolist() == [3072.0, 3072.0]
    s.unscale_(opt)
    assert p.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        s.unscale_(opt)
    s.step(opt)
    assert p.tolist() == [-0.5, 0.5]
    s.update()


def test_step_skips_on_inf_and_update_backs_off():
    p, opt, s = _setup(scale=8.0)
    _backward(s, p, factor=float("inf"))
    assert s.step(opt) is None
    assert p.tolist() == [1.0, 2.0]          # the step was skipped
    s.update()
    assert s.get_scale() == 4.0 and s._get_growth_tracker() == 0


def test_nan_is_caught_too():
    p, opt, s = _setup(scale=8.0)
    _backward(s, p, factor=float("nan"))
    s.step(opt)
    s.update()
    assert p.tolist() == [1.0, 2.0] and s.get_scale() == 4.0


def test_growth_after_interval_of_clean_steps():
    p, opt, s = _setup(scale=4.0, growth_interval=3, growth_factor=3.0)
    scales = []
    for _ in range(7):
        opt.zero_grad()
        _backward(s, p)
        s.step(opt)
        s.update()
        scales.append(s.get_scale())
    assert scales == [4.0, 4.0, 12.0, 12.0, 12.0, 36.0, 36.0]


def test_multiple_outputs_and_structures():
    _, _, s = _setup(scale=2.0)
    a, b = s.scale((tl.ones(1), [tl.ones(2)]))
    assert a.tolist() == [2.0] and b[0].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="outputs must be a Tensor"):
        s.scale(3)


def test_misuse_errors():
    p, opt, s = _setup()
    with pytest.raises(AssertionError, match="did not use scaler.scale"):
        s.step(opt)
    _backward(s, p)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        GradScaler("cpu").step(opt, closure=lambda: 0)


def test_fp16_gradients_are_refused():
    p = tl.ones(2, dtype=tl.float16, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    s = GradScaler("cpu", init_scale=4.0)
    s.scale(p.sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        s.unscale_(opt)


def test_state_dict_round_trip_and_disabled():
    p, opt, s = _setup(scale=8.0)
    _backward(s, p)
    s.step(opt)
    s.update()
    sd = s.state_dict()
    assert sd == {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                  "_growth_tracker": 1}
    s2 = GradScaler("cpu")
    s2.load_state_dict(sd)
    assert s2.get_scale() == 8.0 and s2._get_growth_tracker() == 1
    off = GradScaler("cpu", enabled=False)
    assert off.state_dict() == {} and off.scale(p) is p and off.get_scale() == 1.0
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        s2.load_state_dict({})


def test_cuda_scaler_without_cuda_disables_itself():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        s = GradScaler()
    assert not s.is_enabled()


def test_update_with_explicit_scale():
    p, opt, s = _setup()
    _backward(s, p)
    s.step(opt)
    s.update(new_scale=5.0)
    assert s.get_scale() == 5.0
    s.update(new_scale=tl.tensor([7.0]))
    assert s.get_scale() == 7.0


def test_float16_training_step_with_autocast_matches_float32_direction():
    """A tiny fp16-autocast step: the scaler keeps gradients finite and the step moves the weight."""
    w = tl.tensor(np.full((4, 4), 0.1, dtype=np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    s = GradScaler("cpu", init_scale=1024.0)
    x = tl.ones(2, 4)
    with tl.autocast("cpu", dtype=tl.float16):
        y = x @ w
        loss = y.float().sum()
    s.scale(loss).backward()
    s.step(opt)
    s.update()
    assert w.grad.dtype == tl.float32 and math.isclose(w.grad[0, 0].item(), 2.0, rel_tol=1e-3)
    assert math.isclose(w[0, 0].item(), 0.1 - 0.2, rel_tol=1e-3)
