"""sanity_check and device_watch on real tensorlib.nn models, each with a planted defect."""
from __future__ import annotations

import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from profiler.debug import device_watch, sanity_check

from .test_debug import _fake_cuda


def _setup(seed=0):
    tl.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = tl.randn(32, 4)
    y = tl.randint(0, 3, (32,))
    return m, (x, y), tl.optim.SGD(m.parameters(), lr=0.5)


def test_healthy_model_passes_every_check(capsys):
    m, batch, opt = _setup()
    r = sanity_check(m, F.cross_entropy, batch, opt)
    assert r.passed, str(r)
    assert len(r.losses) == 5 and r.losses[-1] < r.losses[0]
    assert "10/10 checks passed" in capsys.readouterr().out


def test_forgotten_zero_grad_is_detected():
    m, batch, opt = _setup()

    def step(model, b):          # the planted defect: no opt.zero_grad()
        loss = F.cross_entropy(model(b[0]), b[1])
        loss.backward()
        opt.step()
        return loss
    r = sanity_check(m, None, batch, train_step=step, verbose=False)
    item = r["gradients zeroed between steps"]
    assert not item.passed and "accumulated" in item.evidence and "0.weight" in item.evidence


def test_frozen_and_unused_layers_are_named():
    tl.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 3)
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x).relu())

    m = Net()
    m.a.weight.requires_grad_(False)         # a frozen layer
    x, y = tl.randn(16, 4), tl.randint(0, 3, (16,))
    r = sanity_check(m, F.cross_entropy, (x, y), tl.optim.SGD(m.parameters(), lr=0.1), verbose=False)
    assert "frozen: a.weight" in r["parameters require grad"].evidence
    never = r["every parameter receives a gradient"]
    assert not never.passed and "unused.weight" in never.evidence and "a.weight" not in never.evidence


def test_nan_from_log_zero_is_named():
    m, batch, opt = _setup()

    def loss_fn(out, y):
        return F.cross_entropy(out, y) + (out * 0).log().mean()   # the planted defect: log(0)
    r = sanity_check(m, loss_fn, batch, opt, verbose=False)
    item = r["no NaN/Inf"]
    assert not item.passed and "op 'log'" in item.evidence
    assert not r["loss decreasing"].passed


def test_eval_mode_during_training_is_flagged():
    m, batch, opt = _setup()

    def step(model, b):
        opt.zero_grad()
        loss = F.cross_entropy(model(b[0]), b[1])
        loss.backward()
        opt.step()
        model[0].eval()                  # the planted defect: a submodule left in eval()
        return loss
    r = sanity_check(m, None, batch, train_step=step, verbose=False)
    item = r["train mode during training"]
    assert not item.passed and "0" in item.evidence


def test_sanity_check_argument_errors():
    m, batch, _ = _setup()
    with pytest.raises(TypeError, match=r"batch=\(inputs, targets\)"):
        sanity_check(m, F.cross_entropy, batch[0], tl.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="needs an optimizer"):
        sanity_check(m, F.cross_entropy, batch)


def test_device_watch_names_cpu_tensor_in_cuda_model():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            bias = tl.zeros(3)            # the planted defect: created on the CPU
            return bias + 1

    m = Net()
    for p in m.parameters():
        _fake_cuda(p)                     # parameters "on CUDA" (no GPU here)
    with device_watch() as dw:
        with pytest.warns(RuntimeWarning, match=r"device_watch: op 'zeros' ran on the CPU inside Net"):
            m(None)
        n = len(dw.findings)
        m(None)                           # the same call sites again: warned once each
    assert len(dw.findings) == n == 2
    assert [f.op for f in dw.findings] == ["zeros", "add"]     # and the CPU work that follows from it
    assert "bias = tl.zeros(3)" in dw.findings[0].location[2]
    with device_watch() as dw2:
        nn.Linear(2, 2)(tl.ones(2))      # a CPU model: nothing to report
    assert dw2.findings == []


def test_sanity_check_leaves_model_and_optimizer_as_it_found_them():
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = tl.optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
    batch = (tl.randn(32, 4), tl.randint(0, 3, (32,)))
    m[3].eval()                        # a mode of the caller's, to be kept
    params = {n: p.detach().numpy().copy() for n, p in m.named_parameters()}
    bufs = {n: b.numpy().copy() for n, b in m.named_buffers()}
    weight = m[0].weight
    sanity_check(m, F.cross_entropy, batch, opt, verbose=False)
    assert m[0].weight is weight
    for n, p in m.named_parameters():
        assert (p.detach().numpy() == params[n]).all(), n
        assert p.grad is None, n
    for n, b in m.named_buffers():
        assert (b.numpy() == bufs[n]).all(), n
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == 0.5
    assert m.training and m[0].training and not m[3].training


def test_a_model_left_in_eval_is_reported_when_the_step_does_not_call_train():
    m, batch, opt = _setup()
    m.eval()                           # the planted defect: evaluation mode from an earlier validation pass

    def step(model, b):
        opt.zero_grad()
        loss = F.cross_entropy(model(b[0]), b[1])
        loss.backward()
        opt.step()
        return loss
    r = sanity_check(m, None, batch, optimizer=opt, train_step=step, verbose=False)
    item = r["train mode during training"]
    assert not item.passed and "Sequential" in item.evidence and "model.train()" in item.evidence
    assert not m.training                                    # left as it was given

    def step_with_train(model, b):
        model.train()
        return step(model, b)
    assert sanity_check(m, None, batch, optimizer=opt, train_step=step_with_train,
                        verbose=False)["train mode during training"].passed
