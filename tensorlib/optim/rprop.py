"""Rprop (resilient backpropagation), as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.arithmetic import CLAMP_, MUL, MUL_
from ..ops.comparison import EQ, GT, LT
from ..ops.creation import full_like, zeros_like
from ..ops.index import MASKED_FILL_
from ..ops.misc import CLONE, COPY_
from ..ops.optim_ops import ADDCMUL_
from ..ops.unary_math import SIGN
from ._common import (check_lr, count_step, gradient, loop_ops, lr_value, scalar_tensor)
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
        held = [None, None]     # the loop's `sign` and cloned gradient, alive from group to group (see _loop)
        with self._update_mode():
            for group in self.param_groups:
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, held, group)
        return loss

    def _init_state(self, p, grad, lr):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["prev"] = zeros_like(p)
            state["step_size"] = full_like(grad, lr)
        return state

    def _loop(self, ops, pairs, held, group):
        """torch's single-tensor loop (see _common.Loop: dispatched, or the kernels on the arrays, alone when
        nothing observes, recorded as dispatched under a profile), with masked_fill_ where torch assigns
        through a boolean index (`sign[sign.gt(0)] = etaplus`: its index_put_, the same values); `sign` and the
        cloned gradient replaced where torch's are, a group's last ones alive into the next group's loop
        (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        maximize = group["maximize"]
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        differentiable = group["differentiable"]
        lr = lr_value(group["lr"])       # (the first step's step sizes)
        sign, g = held
        held[:] = (None, None)
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p, grad, lr)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            prev, step_size = state["prev"], state["step_size"]
            q, s = of(prev), of(step_size)
            # sign = grad.mul(prev.clone() if differentiable else prev).sign()
            sign = run(SIGN, run(MUL, g, run(CLONE, q) if differentiable else q))
            run(MASKED_FILL_, sign, run(GT, sign, 0), etaplus)           # sign.masked_fill_(sign.gt(0), etaplus)
            run(MASKED_FILL_, sign, run(LT, sign, 0), etaminus)          # sign.masked_fill_(sign.lt(0), etaminus)
            run(MASKED_FILL_, sign, run(EQ, sign, 0), 1)                 # sign.masked_fill_(sign.eq(0), 1)
            run(MUL_, s, sign)                                           # step_size.mul_(sign).clamp_(min, max)
            run(CLAMP_, s, min=step_size_min, max=step_size_max)
            g = run(CLONE, g)                                            # grad = grad.clone()
            run(MASKED_FILL_, g, run(EQ, sign, etaminus), 0)             # grad.masked_fill_(sign.eq(etaminus), 0)
            run(ADDCMUL_, of(p), run(SIGN, g), s, value=-1)              # p.addcmul_(grad.sign(), step_size, value=-1)
            run(COPY_, q, g)                                             # prev.copy_(grad)
            wrote(step_t, step_size, step_size, p, prev)
        held[:] = (sign, g)
