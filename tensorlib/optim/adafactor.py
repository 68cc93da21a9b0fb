"""Adafactor (factored second moments), as torch 2.13's single-tensor implementation."""
from __future__ import annotations

import numpy as np

from ..ops.creation import zeros_like
from ._common import is_complex, lr_value, scalar_tensor, step_value
from .optimizer import Optimizer

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    """torch.optim.Adafactor. Per parameter at step t, with beta2_t = 1 - t^beta2_decay,
    rho_t = min(lr, 1 / sqrt(t)) and alpha = max(eps2, RMS(p)) * rho_t:

        p = p * (1 - lr * weight_decay)
        matrices: R = lerp(R, mean_j g^2, 1 - beta2_t) ("row_var"), C = lerp(C, mean_i g^2, ...) ("col_var"),
                  V = R C / max(mean(R), eps1)
        vectors:  V = lerp(V, g^2, 1 - beta2_t) ("variance")
        u = g / sqrt(max(V, eps1^2));  p = p - alpha / max(1, RMS(u) / d) * u
    eps1 defaults to the parameter dtype's machine epsilon (of the first parameter of the group, as torch).
    """

    _complex_as_real = False      # (Optimizer._complex_as_real)

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        from .._tensor import Tensor
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr_value(lr):
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _init_state(self, p, grad):
        state = self.state[p]
        if is_complex(p):
            raise RuntimeError("Adafactor does not support complex parameters")
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            if grad.dim() > 1:
                state["row_var"] = grad.new_zeros(list(grad.shape[:-1]) + [1])
                state["col_var"] = grad.new_zeros(list(grad.shape[:-2]) + [1, grad.shape[-1]])
            else:
                state["variance"] = zeros_like(grad)
        return state

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                lr, d, wd, beta2_decay = lr_value(group["lr"]), group["d"], group["weight_decay"], group["beta2_decay"]
                eps1, eps2 = group["eps"]
                for p, grad in self._grads(group):
                    state = self._init_state(p, grad)
                    if eps1 is None:
                        eps1 = float(np.finfo(p._data.dtype).eps)
                    state["step"].add_(1)
                    step = step_value(state["step"])
                    one_minus_beta2_t = step ** beta2_decay
                    rho_t = min(lr, 1 / (step ** 0.5))
                    alpha = max(eps2, p.norm(2).item() / (p.numel() ** 0.5)) * rho_t
                    if wd != 0:
                        p.mul_(1 - lr * wd)
                    var_estimate = self._variance(state, grad, one_minus_beta2_t, eps1)
                    update = var_estimate.clamp_(min=eps1 * eps1).rsqrt()
                    update.mul_(grad)
                    denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
                    p.add_(update, alpha=-alpha / denom)
        return loss

    @staticmethod
    def _variance(state, grad, one_minus_beta2_t, eps1):
        """The second-moment estimate: factored into row and column means for matrices (and batches of
        them), a full running average for vectors."""
        if grad.dim() > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            row_mean = grad.norm(dim=-1, keepdim=True).square().div_(grad.size(-1))
            row_var.lerp_(row_mean, one_minus_beta2_t)
            col_mean = grad.norm(dim=-2, keepdim=True).square().div_(grad.size(-2))
            col_var.lerp_(col_mean, one_minus_beta2_t)
            var_estimate = row_var @ col_var
            return var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
        variance = state["variance"]
        variance.lerp_(grad * grad, one_minus_beta2_t)
        return variance.clone()
