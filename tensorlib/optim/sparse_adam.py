"""SparseAdam: Adam for sparse gradients (torch.optim.SparseAdam).

tensorlib has no sparse tensors, so no gradient reaching this optimizer can be sparse: it is built and
validated as in torch, and step() with a (dense) gradient raises torch's own error for dense gradients."""
from __future__ import annotations

from .._tensor import Tensor
from ._common import check_betas, is_complex, lr_value
from .optimizer import Optimizer

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    _complex_as_real = False      # (Optimizer._complex_as_real)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < lr_value(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))
        complex_params = [[i, j] for i, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])
                          if is_complex(p)]
        if complex_params:
            raise ValueError(f"Complex params at indices {complex_params}: SparseAdam does not support complex "
                             "parameters")

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            if any(p._grad is not None for p in group["params"]):
                raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        return loss
