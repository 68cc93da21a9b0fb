"""Adagrad, as torch's single-tensor implementation (dense gradients: tensorlib has no sparse tensors)."""
from __future__ import annotations

from ..ops.arithmetic import ADD, ADD_
from ..ops.creation import full_like
from ..ops.optim_ops import ADDCDIV_, ADDCMUL_
from ..ops.unary_math import SQRT
from ._common import (check_fused, check_lr, check_range, count_step, gradient, loop_ops, lr_value, scalar_tensor,
                      step_value, weight_decayed)
from .optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """torch.optim.Adagrad. Per parameter, at step t (s the sum of squares, started at
    initial_accumulator_value when the optimizer is built, as torch does):

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_lr(lr)
        check_range("lr_decay value", lr_decay)
        check_range("weight_decay value", weight_decay)
        check_range("initial_accumulator_value value", initial_accumulator_value)
        check_range("epsilon value", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["sum"] = full_like(p, self.defaults["initial_accumulator_value"])
        return state

    def share_memory(self) -> None:
        """torch's: the state sums moved to shared memory (Tensor.share_memory_), for Hogwild training."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["sum"].share_memory_()

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        held = [None]       # the loop's `std`, alive from group to group (see _loop)
        with self._update_mode():
            for group in self.param_groups:
                lr, wd, lr_decay, eps = lr_value(group["lr"]), group["weight_decay"], group["lr_decay"], group["eps"]
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, group["maximize"], held, lr, wd, lr_decay, eps,
                           group["differentiable"])
        return loss

    def _loop(self, ops, pairs, maximize, held, lr, wd, lr_decay, eps, differentiable):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays, alone
        when nothing observes, Adagrad having no multi-tensor path, recorded as dispatched under a profile);
        `std` replaced where torch's is, a group's last one alive into the next group's loop (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        std = held[0]
        held[0] = None
        for p, grad in pairs:
            state = self._init_state(p)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            step = step_value(step_t)
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize (torch's order)
            x = of(p)
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            clr = lr / (1 + (step - 1) * lr_decay)
            total = state["sum"]
            run(ADDCMUL_, of(total), g, g)                               # state["sum"].addcmul_(grad, grad, value=1)
            std = run(SQRT, of(total))                                   # std = state["sum"].sqrt().add_(eps)
            if differentiable:                                           # (dispatched: differentiable)
                std = run(ADD, std, eps)                                 #   state["sum"].sqrt() + eps
            else:
                run(ADD_, std, eps)
            # p.addcdiv_(grad, std, value=-clr)
            run(ADDCDIV_, x, g, std) if clr == -1 else run(ADDCDIV_, x, g, std, value=-clr)
            wrote(step_t, total, p)
        held[0] = std
