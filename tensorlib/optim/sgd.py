"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (torch's update order)."""
from __future__ import annotations

import numpy as np

from .._graph import tensor_of
from .._state import set_grad_mode
from ..ops.arithmetic import ADD, ADD_, MUL_
from ._common import (DISPATCHED, check_fused, check_lr, check_range, gradient, loop_ops, lr_value, multi_tensor_ok,
                      weight_decayed)
from .optimizer import Optimizer, required

__all__ = ["SGD"]


class SGD(Optimizer):
    """torch.optim.SGD. For each parameter with gradient g (v the momentum buffer):

        g = g + weight_decay * p
        v = g                                  (first step)
        v = momentum * v + (1 - dampening) * g (later steps)
        g = g + momentum * v if nesterov else v
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required:
            check_lr(lr)
        check_range("momentum value", momentum)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)

    def step(self, closure=None):
        loss = self._closure_loss(closure) if closure is not None else None
        # the update's grad mode (_update_mode's, set without its context-manager object)
        prev = set_grad_mode(bool(self.defaults.get("differentiable", False)))
        try:
            for group in self.param_groups:
                lr = lr_value(group["lr"])
                momentum = group["momentum"]
                dampening = group["dampening"]
                wd = group["weight_decay"]
                nesterov = group["nesterov"]
                pairs = self._grads(group, negate=False)
                if multi_tensor_ok(group, pairs):
                    self._multi_tensor_step(self._maximized(group, pairs), lr, momentum, dampening, wd, nesterov)
                    continue
                self._loop(loop_ops(group, pairs), pairs, group["maximize"], lr, momentum, dampening, wd, nesterov)
        finally:
            set_grad_mode(prev)
        return loss

    def _loop(self, ops, pairs, maximize, lr, momentum, dampening, wd, nesterov):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays,
        recorded as dispatched under a profile)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        state = self.state
        for p, grad in pairs:
            g, x = gradient(ops, grad, True) if maximize else of(grad), of(p)    # grad = -grad if maximize
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            if momentum != 0:
                st = state[p]
                buf = st.get("momentum_buffer")
                if buf is None:                                          # grad.detach().clone(), dispatched
                    buf = st["momentum_buffer"] = (g if ops is DISPATCHED else tensor_of(g)).detach().clone()
                else:                                                    # buf.mul_(momentum)
                    b = of(buf)
                    run(MUL_, b, momentum)
                    run(ADD_, b, g) if 1 - dampening == 1 else run(ADD_, b, g, alpha=1 - dampening)   # .add_(g, 1 - d)
                    wrote(buf, buf)
                if nesterov:                                             # grad = grad.add(buf, alpha=momentum)
                    g = run(ADD, g, of(buf)) if momentum == 1 else run(ADD, g, of(buf), alpha=momentum)
                else:                                                    # grad = buf
                    g = of(buf)
            run(ADD_, x, g) if lr == -1 else run(ADD_, x, g, alpha=-lr)  # p.add_(grad, alpha=-lr)
            wrote(p)

    def _multi_tensor_step(self, pairs, lr, momentum, dampening, wd, nesterov):
        """The same update as the loop in `step`, formula for formula and in the same float order (so the
        results are the same to the bit, versions counted alike), on the NumPy arrays: the loop's three
        dispatched ops per parameter cost more than a small model's arithmetic. Only when nothing
        observes ops (see multi_tensor_ok); under a profiler or an op hook the loop's ops run one by one, as
        torch's CPU default (foreach=None) does (on the arrays, recorded, under a profile: see _loop)."""
        state = self.state
        for p, grad in pairs:
            x, g = p._data, grad._data
            if wd != 0:
                g = ADD.kernel(np, g, x, wd)                    # grad.add(p, alpha=wd)
            if momentum != 0:
                st = state[p]
                buf = st.get("momentum_buffer")
                if buf is None:                                 # grad.detach().clone()
                    buf = st["momentum_buffer"] = tensor_of(g.copy())
                else:                                           # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    b = buf._data
                    b *= momentum
                    ADD_.kernel(np, b, g, 1 - dampening)        # (add_'s fused kernel)
                    buf._version += 2
                g = ADD.kernel(np, g, buf._data, momentum) if nesterov else buf._data     # grad.add(buf, alpha=m)
            ADD_.kernel(np, x, g, -lr)                          # p.add_(grad, alpha=-lr)
            p._version += 1
