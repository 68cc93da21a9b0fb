"""Adamax (Adam with the infinity norm), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.arithmetic import ADD_, MAXIMUM, MUL_
from ..ops.misc import COPY_
from ..ops.optim_ops import ADDCDIV_, LERP_
from ..ops.unary_math import ABS
from ._common import (check_betas, check_lr, check_range, count_step, gradient, loop_ops, lr_value, scalar_tensor,
                      step_value, weight_decayed)
from .optimizer import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """torch.optim.Adamax. Per parameter at step t (m the first moment, u the infinity norm):

        g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        check_lr(lr)
        check_range("epsilon value", eps)
        check_betas(betas)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, group)
        return loss

    def _init_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["exp_avg"] = zeros_like(p)
            state["exp_inf"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, group):
        """torch's single-tensor loop (see _common.Loop: dispatched, or the kernels on the arrays, alone when
        nothing observes, recorded as dispatched under a profile), but for its `maximum(..., out=exp_inf)`,
        which is maximum + copy_ here (tensorlib's out= copies: the same values, one event more)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        maximize = group["maximize"]
        lr, eps, wd = lr_value(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            x = of(p)
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            m, u = of(exp_avg), of(exp_inf)
            run(LERP_, m, g, 1 - beta1)                                  # exp_avg.lerp_(grad, 1 - beta1)
            # exp_inf.copy_(maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)))
            run(MUL_, u, beta2)
            norm = run(ABS, g)
            run(ADD_, norm, eps)
            top = run(MAXIMUM, u, norm)
            del norm                        # (the expression's temporaries die where its would)
            run(COPY_, u, top)
            del top
            wrote(step_t, exp_avg, exp_inf, exp_inf)
            clr = lr / (1 - beta1 ** step_value(step_t))
            # p.addcdiv_(exp_avg, exp_inf, value=-clr)
            run(ADDCDIV_, x, m, u) if clr == -1 else run(ADDCDIV_, x, m, u, value=-clr)
            wrote(p)
