"""ASGD (averaged SGD), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.arithmetic import ADD_, MUL_, SUB
from ..ops.creation import zeros_like
from ..ops.misc import COPY_, FILL_
from ._common import (check_lr, check_range, count_step, gradient, loop_ops, lr_value, scalar_tensor, step_value,
                      weight_decayed)
from .optimizer import Optimizer

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """torch.optim.ASGD. Per parameter at step t, with the scalars eta (step size) and mu (averaging
    weight) kept as 0-dim tensors of torch's scalar dtype (so their rounding is torch's):

        g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)              (ax = p while mu == 1)
        eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)
    """

    _capturable_what = "params, mus, etas, and state_steps"

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        check_lr(lr)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, group)
        return loss

    def _init_state(self, p, lr):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["eta"] = scalar_tensor(lr)
            state["mu"] = scalar_tensor(1.0)
            state["ax"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, group):
        """torch's single-tensor loop (see _common.Loop: dispatched, or the kernels on the arrays, alone when
        nothing observes, recorded as dispatched under a profile), but eta and mu are written by fill_ where
        torch copies a fresh `as_tensor` of the value into them (the same values: one op each instead of four)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        maximize = group["maximize"]
        lr, lambd, alpha, t0 = lr_value(group["lr"]), group["lambd"], group["alpha"], group["t0"]
        wd = group["weight_decay"]
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p, lr)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            x = of(p)
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            eta, mu, ax = state["eta"], state["mu"], state["ax"]
            eta_value = step_value(eta)
            run(MUL_, x, 1 - lambd * eta_value)                          # p.mul_(1 - lambd * eta_value)
            # p.add_(grad, alpha=-eta_value)
            run(ADD_, x, g) if eta_value == -1 else run(ADD_, x, g, alpha=-eta_value)
            wrote(step_t, p, p)
            if step_value(mu) != 1:                                      # ax.add_(p.sub(ax).mul_(mu))
                d = run(SUB, x, of(ax))
                run(MUL_, d, of(mu))
                run(ADD_, of(ax), d)
                del d                       # (the expression's temporary dies where its would)
            else:
                run(COPY_, of(ax), x)                                    # ax.copy_(p)
            wrote(ax)
            step = step_value(step_t)
            run(FILL_, of(eta), lr / ((1 + lambd * lr * step) ** alpha))   # eta.fill_(...)
            run(FILL_, of(mu), 1 / max(1, step - t0))                     # mu.fill_(...)
            wrote(eta, mu)
