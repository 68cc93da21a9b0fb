"""Adadelta, as torch's single-tensor implementation."""
from __future__ import annotations

import numpy as np

from ..dispatch import op_named
from ..ops.arithmetic import ADD, ADD_, DIV_, MUL_
from ..ops.creation import zeros_like
from ..ops.optim_ops import ADDCMUL_
from ..ops.unary_math import SQRT
from ._common import (check_lr, check_range, count_step, gradient, loop_ops, lr_value, multi_tensor_ok,
                      scalar_tensor, weight_decayed)
from .optimizer import Optimizer

__all__ = ["Adadelta"]

SQRT_ = op_named("sqrt_")


class Adadelta(Optimizer):
    """torch.optim.Adadelta. Per parameter (v the square average, u the accumulated update):

        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
    """

    _capturable_devices = ["cuda", "xpu", "hpu", "privateuseone"]

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        check_lr(lr)
        check_range("rho value", rho, 0.0, 1.0, include_high=True)
        check_range("epsilon value", eps)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        held = [None, None]     # the loop's `std` and `delta`, alive from group to group (see _loop)
        with self._update_mode():
            for group in self.param_groups:
                lr, rho, eps, wd = lr_value(group["lr"]), group["rho"], group["eps"], group["weight_decay"]
                pairs = self._grads(group, negate=False)
                if multi_tensor_ok(group, pairs):
                    self._multi_tensor_step(self._maximized(group, pairs), lr, rho, eps, wd)
                    continue
                self._loop(loop_ops(group, pairs), pairs, group["maximize"], held, lr, rho, eps, wd,
                           group["differentiable"])
        return loss

    def _init_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["square_avg"] = zeros_like(p)
            state["acc_delta"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, maximize, held, lr, rho, eps, wd, differentiable):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays,
        recorded as dispatched under a profile); `std` and `delta` replaced where torch's are (after their
        sqrt_), a group's last ones alive into the next group's loop (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        std, delta = held
        held[:] = (None, None)
        c = 1 - rho
        for p, grad in pairs:
            state = self._init_state(p)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize (torch's order)
            x = of(p)
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            v, u = of(square_avg), of(acc_delta)
            run(MUL_, v, rho)                                            # square_avg.mul_(rho)
            run(ADDCMUL_, v, g, g) if c == 1 else run(ADDCMUL_, v, g, g, value=c)    # .addcmul_(grad, grad, c)
            s = run(ADD, v, eps)                                         # std = square_avg.add(eps).sqrt_()
            run(SQRT_, s)
            std = s
            d = run(ADD, u, eps)                                         # delta = acc_delta.add(eps).sqrt_()
            run(SQRT_, d)
            delta = d
            if differentiable:                                           # (dispatched: differentiable)
                delta = d = d.clone()
            run(DIV_, d, std)                                            # delta.div_(std).mul_(grad)
            run(MUL_, d, g)
            run(MUL_, u, rho)                                            # acc_delta.mul_(rho)
            run(ADDCMUL_, u, d, d) if c == 1 else run(ADDCMUL_, u, d, d, value=c)    # .addcmul_(delta, delta, c)
            run(ADD_, x, d) if lr == -1 else run(ADD_, x, d, alpha=-lr)  # p.add_(delta, alpha=-lr)
            wrote(step_t, square_avg, square_avg, acc_delta, acc_delta, p)
        held[:] = (std, delta)

    def _multi_tensor_step(self, pairs, lr, rho, eps, wd):
        """The loop's update on the NumPy arrays, formula for formula in the same float order (the same
        results to the bit) with in-place writes: when nothing observes ops (as Adam's, see there)."""
        c = 1 - rho
        for p, g in pairs:
            state = self._init_state(p)
            state["step"]._data += 1
            x, g = p._data, g._data
            if wd != 0:
                g = ADD.kernel(np, g, x, wd)                # grad.add(p, alpha=wd)
            v, u = state["square_avg"]._data, state["acc_delta"]._data
            v *= rho
            ADDCMUL_.kernel(np, v, g, g, c)                 # square_avg.addcmul_(grad, grad, value=c): fused
            std = v + eps
            SQRT.kernel._into(np, std)                      # (sqrt_'s values: the SQRT kernel's, VML's)
            delta = u + eps
            SQRT.kernel._into(np, delta)
            delta /= std
            delta *= g
            u *= rho
            ADDCMUL_.kernel(np, u, delta, delta, c)         # acc_delta.addcmul_(delta, delta, value=c)
            ADD_.kernel(np, x, delta, -lr)                  # p.add_(delta, alpha=-lr): add_'s fused kernel
            for t_ in (p, state["step"], state["square_avg"], state["acc_delta"]):
                t_._version += 1

