"""RAdam (rectified Adam), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.arithmetic import ADD, ADD_, DIV, MUL
from ..ops.creation import zeros_like
from ..ops.unary_math import RECIPROCAL, SQRT
from ._common import (adam_moments, check_betas, check_lr, check_range, count_step, decayed, gradient, loop_ops,
                      lr_value, scalar_tensor, step_value)
from .optimizer import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """torch.optim.RAdam. Per parameter at step t, rho_inf = 2 / (1 - beta2) - 1 and
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t):

        g = g + weight_decay * p           (or p = p * (1 - lr * weight_decay) when decoupled)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1^t)
        p = p - lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)   if rho_t > 5
        p = p - lr * m_hat                                               otherwise
    with the rectification r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        check_lr(lr)
        check_range("epsilon value", eps)
        check_betas(betas)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        # the loop's bias-corrected exp_avg, sqrt_v and adaptive_lr, alive from group to group (see _loop)
        held = [None, None, None]
        with self._update_mode():
            for group in self.param_groups:
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, held, group)
        return loss

    def _init_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, held, group):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays,
        alone when nothing observes, recorded as dispatched under a profile); its named temporaries replaced
        where torch's are, a group's last ones alive into the next group's loop (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        maximize = group["maximize"]
        lr, eps, wd = lr_value(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        differentiable = group["differentiable"]
        decoupled = group["decoupled_weight_decay"]
        bias_corrected_exp_avg, sqrt_v, adaptive_lr = held
        held[:] = (None, None, None)
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            step = step_value(step_t)
            x = of(p)
            if wd != 0:                     # p.mul_(1 - lr * wd) if decoupled else grad = grad.add(p, alpha=wd)
                g = decayed(ops, p, g, x, lr, wd, decoupled)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            m, v = adam_moments(ops, g, exp_avg, exp_avg_sq, beta1, beta2)   # lerp_, mul_ + addcmul_
            wrote(step_t)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            bias_corrected_exp_avg = run(DIV, m, bias_correction1)      # exp_avg / bias_correction1
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                sqrt_v = run(SQRT, v)                                    # exp_avg_sq.sqrt()
                if differentiable:                                       # (dispatched: differentiable)
                    sqrt_v = run(ADD, sqrt_v, eps)                       #   sqrt_v.add(eps)
                else:
                    run(ADD_, sqrt_v, eps)                               #   sqrt_v.add_(eps)
                # (bias_correction2 ** 0.5) / sqrt_v: a number over a tensor, torch's Tensor.__rdiv__,
                # reciprocal(sqrt_v) * number (its rounding and its ops in a profile)
                adaptive_lr = run(MUL, run(RECIPROCAL, sqrt_v), bias_correction2 ** 0.5)
                # p.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
                run(ADD_, x, run(MUL, run(MUL, run(MUL, bias_corrected_exp_avg, lr), adaptive_lr), rect), alpha=-1.0)
            else:                                                        # p.add_(bias_corrected_exp_avg * lr, -1.0)
                run(ADD_, x, run(MUL, bias_corrected_exp_avg, lr), alpha=-1.0)
            wrote(p)
        held[:] = (bias_corrected_exp_avg, sqrt_v, adaptive_lr)
