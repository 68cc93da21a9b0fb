"""Muon (momentum orthogonalized by Newton-Schulz), as torch 2.13's single-tensor implementation: the update
is orthogonalized in bfloat16 (tensorlib.bfloat16, NumPy's through ml_dtypes on the CPU), each GEMM of the
iteration accumulated in float32 and rounded once, as torch's bfloat16 addmm does."""
from __future__ import annotations

import math

from .. import _dtype as D
from ..ops.creation import zeros_like
from ._common import is_complex, lr_value
from .optimizer import Optimizer

__all__ = ["Muon"]

EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


def _addmm(input, m1, m2, beta=1.0, alpha=1.0):
    """torch.addmm on bfloat16 operands: beta * input + alpha * (m1 @ m2) in float32, rounded once."""
    f = D.float32
    return (input.to(f) * beta + (m1.to(f) @ m2.to(f)) * alpha).to(input.dtype)


def _zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps):
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    ortho = grad.to(D.bfloat16)
    if grad.shape[0] > grad.shape[1]:
        ortho = ortho.T
    norm = ortho.to(D.float32).norm().to(D.bfloat16)
    ortho = ortho / norm.clamp(min=eps)
    for _ in range(ns_steps):
        gram = _addmm(ortho.new_zeros((ortho.shape[0], ortho.shape[0])), ortho, ortho.T, beta=0.0)
        gram_update = _addmm(gram, gram, gram, beta=b, alpha=c)
        ortho = _addmm(ortho, gram_update, ortho, beta=a)
    if grad.shape[0] > grad.shape[1]:
        ortho = ortho.T
    return ortho


def _adjust_lr(lr, adjust_lr_fn, param_shape):
    A, B = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, A / B))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(A, B))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    """torch.optim.Muon, for 2-d parameters (hidden layers' weights). Per parameter:

        B = lerp(B, g, 1 - momentum);  U = lerp(g, B, momentum) if nesterov else B
        O = NewtonSchulz_k(U) (in bfloat16);  p = p * (1 - lr * weight_decay) - AdjustLR(lr, shape) * O
    """

    _complex_as_real = False      # (Optimizer._complex_as_real)

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps=EPS, ns_steps=DEFAULT_NS_STEPS,
                 adjust_lr_fn=None):
        if hasattr(lr, "numel") and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        with self._update_mode():
            for group in self.param_groups:
                lr, wd, momentum = lr_value(group["lr"]), group["weight_decay"], group["momentum"]
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    if is_complex(p):
                        raise RuntimeError("Muon does not support complex parameters")
                    if grad.ndim != 2:
                        raise ValueError("Param gradient must be a 2D matrix")
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = zeros_like(grad)
                    buf = state["momentum_buffer"]
                    buf.lerp_(grad, 1 - momentum)
                    update = grad.lerp(buf, momentum) if group["nesterov"] else buf
                    update = _zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"],
                                                         group["eps"])
                    adjusted = _adjust_lr(lr, group["adjust_lr_fn"], p.shape)
                    p.mul_(1 - lr * wd)
                    p.add_(update.to(p.dtype), alpha=-adjusted)
        return loss
