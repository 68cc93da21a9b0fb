"""NAdam (Adam with Nesterov momentum), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.arithmetic import ADD_, DIV, MUL_
from ..ops.creation import zeros_like
from ..ops.optim_ops import ADDCDIV_
from ..ops.unary_math import SQRT
from ._common import (adam_moments, check_betas, check_lr, check_range, count_step, decayed, gradient, loop_ops,
                      lr_value, scalar_tensor, step_value)
from .optimizer import Optimizer

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """torch.optim.NAdam. Per parameter at step t, with mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
    and P the running product of the mu's (kept as a float32 0-dim tensor "mu_product", as torch does, so
    its rounding is torch's):

        g = g + weight_decay * p           (or p = p * (1 - lr * weight_decay) when decoupled)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P_t) * g / d - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d
    """

    _capturable_what = "params, mu_products and state_steps"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_lr(lr)
        check_range("epsilon value", eps)
        check_betas(betas)
        check_range("weight_decay value", weight_decay)
        check_range("momentum_decay value", momentum_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        held = [None]       # the loop's `denom`, alive from group to group (see _loop)
        with self._update_mode():
            for group in self.param_groups:
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, held, group)
        return loss

    def _init_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["mu_product"] = scalar_tensor(1.0)
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, held, group):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays,
        alone when nothing observes, recorded as dispatched under a profile); `denom` replaced where torch's
        is, a group's last one alive into the next group's loop (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        maximize = group["maximize"]
        lr, eps, wd = lr_value(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        momentum_decay = group["momentum_decay"]
        decoupled = group["decoupled_weight_decay"]
        denom = held[0]
        held[0] = None
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            step = step_value(step_t)
            bias_correction2 = 1 - beta2 ** step
            x = of(p)
            if wd != 0:                     # p.mul_(1 - lr * wd) if decoupled else grad = grad.add(p, alpha=wd)
                g = decayed(ops, p, g, x, lr, wd, decoupled)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            mu_product = state["mu_product"]
            run(MUL_, of(mu_product), mu)                                # mu_product.mul_(mu)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            m, v = adam_moments(ops, g, exp_avg, exp_avg_sq, beta1, beta2)   # lerp_, mul_ + addcmul_
            wrote(step_t, mu_product)
            denom = run(SQRT, run(DIV, v, bias_correction2))             # exp_avg_sq.div(bc2).sqrt()
            prod_next = step_value(mu_product) * mu_next                 # mu_product_next (torch reads it twice)
            run(ADD_, denom, eps)                                        # denom.add_(eps)
            a = -lr * (1.0 - mu) / (1.0 - step_value(mu_product))        # p.addcdiv_(grad, denom, value=a)
            run(ADDCDIV_, x, g, denom) if a == 1 else run(ADDCDIV_, x, g, denom, value=a)
            b = (-lr * mu_next) / (1.0 - prod_next)                      # p.addcdiv_(exp_avg, denom, value=b)
            run(ADDCDIV_, x, m, denom) if b == 1 else run(ADDCDIV_, x, m, denom, value=b)
            wrote(p, p)
        held[0] = denom
