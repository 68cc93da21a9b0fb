"""Rprop (resilient backpropagation), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.creation import full_like, zeros_like
from ._common import check_lr, lr_value, scalar_tensor
from .optimizer import Optimizer

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """torch.optim.Rprop. Per parameter (prev the last gradient used, s the per-element step sizes,
    started at lr):

        sign = sign(g * prev) mapped to etaplus (> 0), etaminus (< 0), 1 (= 0)
        s = clamp(s * sign, step_size_min, step_size_max)
        g = 0 where sign == etaminus (a sign change skips that element once)
        p = p - sign(g) * s;  prev = g
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                etaminus, etaplus = group["etas"]
                step_size_min, step_size_max = group["step_sizes"]
                for p, grad in self._grads(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = scalar_tensor(0.0)
                        state["prev"] = zeros_like(p)
                        state["step_size"] = full_like(grad, lr_value(group["lr"]))
                    state["step"].add_(1)
                    prev, step_size = state["prev"], state["step_size"]
                    sign = grad.mul(prev.clone() if group["differentiable"] else prev).sign()
                    sign.masked_fill_(sign.gt(0), etaplus)
                    sign.masked_fill_(sign.lt(0), etaminus)
                    sign.masked_fill_(sign.eq(0), 1)
                    step_size.mul_(sign).clamp_(step_size_min, step_size_max)
                    grad = grad.clone()
                    grad.masked_fill_(sign.eq(etaminus), 0)
                    p.addcmul_(grad.sign(), step_size, value=-1)
                    prev.copy_(grad)
        return loss
