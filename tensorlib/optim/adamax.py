"""Adamax (Adam with the infinity norm), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ..ops.arithmetic import maximum
from ._common import check_betas, check_lr, check_range, lr_value, scalar_tensor, step_value
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
                lr, eps, wd = lr_value(group["lr"]), group["eps"], group["weight_decay"]
                beta1, beta2 = group["betas"]
                for p, grad in self._grads(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = scalar_tensor(0.0)
                        state["exp_avg"] = zeros_like(p)
                        state["exp_inf"] = zeros_like(p)
                    state["step"].add_(1)
                    if wd != 0:
                        grad = grad.add(p, alpha=wd)
                    exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_inf.copy_(maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)))
                    clr = lr / (1 - beta1 ** step_value(state["step"]))
                    p.addcdiv_(exp_avg, exp_inf, value=-clr)
        return loss
