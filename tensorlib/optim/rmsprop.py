"""RMSprop with momentum and the centered variant, as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._common import check_lr, check_range, lr_value, scalar_step
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop. Per parameter (s the square average, a the gradient average, b the buffer):

        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        d = sqrt(s - a * a) + eps with a = lerp(a, g, 1 - alpha)  (centered)  |  sqrt(s) + eps
        b = momentum * b + g / d;  p = p - lr * b                 (momentum > 0)  |  p = p - lr * g / d
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_lr(lr)
        check_range("epsilon value", eps)
        check_range("momentum value", momentum)
        check_range("weight_decay value", weight_decay)
        check_range("alpha value", alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                lr, alpha, eps = lr_value(group["lr"]), group["alpha"], group["eps"]
                wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
                for p, grad in self._grads(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = scalar_step(state)
                        state["square_avg"] = zeros_like(p)
                        if momentum > 0:
                            state["momentum_buffer"] = zeros_like(p)
                        if centered:
                            state["grad_avg"] = zeros_like(p)
                    state["step"].add_(1)
                    if wd != 0:
                        grad = grad.add(p, alpha=wd)
                    square_avg = state["square_avg"]
                    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                    if centered:
                        grad_avg = state["grad_avg"]
                        grad_avg.lerp_(grad, 1 - alpha)
                        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt()
                    else:
                        avg = square_avg.sqrt()
                    avg = avg.add_(eps)
                    if momentum > 0:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).addcdiv_(grad, avg)
                        p.add_(buf, alpha=-lr)
                    else:
                        p.addcdiv_(grad, avg, value=-lr)
        return loss
