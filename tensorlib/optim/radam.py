"""RAdam (rectified Adam), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._common import check_betas, check_lr, check_range, lr_value, scalar_tensor, step_value
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
        with self._update_mode():
            for group in self.param_groups:
                lr, eps, wd = lr_value(group["lr"]), group["eps"], group["weight_decay"]
                beta1, beta2 = group["betas"]
                for p, grad in self._grads(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = scalar_tensor(0.0)
                        state["exp_avg"] = zeros_like(p)
                        state["exp_avg_sq"] = zeros_like(p)
                    state["step"].add_(1)
                    step = step_value(state["step"])
                    if wd != 0:
                        if group["decoupled_weight_decay"]:
                            p.mul_(1 - lr * wd)
                        else:
                            grad = grad.add(p, alpha=wd)
                    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    bias_correction1 = 1 - beta1 ** step
                    bias_correction2 = 1 - beta2 ** step
                    bias_corrected_exp_avg = exp_avg / bias_correction1
                    rho_inf = 2 / (1 - beta2) - 1
                    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
                    if rho_t > 5.0:
                        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                        sqrt_v = exp_avg_sq.sqrt()
                        sqrt_v = sqrt_v.add(eps) if group["differentiable"] else sqrt_v.add_(eps)
                        adaptive_lr = (bias_correction2 ** 0.5) / sqrt_v
                        p.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
                    else:
                        p.add_(bias_corrected_exp_avg * lr, alpha=-1.0)
        return loss
