"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (torch's update order)."""
from __future__ import annotations

import numpy as np

from .._graph import quiet_run, tensor_of
from .._state import set_grad_mode
from ..ops.arithmetic import ADD, ADD_, MUL_
from ._common import array_loop_run, check_fused, check_lr, check_range, lr_value, multi_tensor_ok, weight_decayed
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
                pairs = self._grads(group)
                if multi_tensor_ok(group, pairs):
                    self._multi_tensor_step(pairs, lr, momentum, dampening, wd, nesterov)
                    continue
                run = array_loop_run(group, pairs)
                if run is not None and (momentum == 0 or run is quiet_run or all(
                        self.state[p].get("momentum_buffer") is not None for p, _ in pairs)):
                    self._array_loop(run, pairs, lr, momentum, dampening, wd, nesterov)
                    continue
                for p, grad in pairs:
                    if wd != 0:
                        grad = grad.add(p, alpha=wd)
                    if momentum != 0:
                        state = self.state[p]
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = grad.detach().clone()
                            state["momentum_buffer"] = buf
                        else:
                            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                        grad = grad.add(buf, alpha=momentum) if nesterov else buf
                    p.add_(grad, alpha=-lr)
        finally:
            set_grad_mode(prev)
        return loss

    def _array_loop(self, run, pairs, lr, momentum, dampening, wd, nesterov):
        """The loop above on the arrays, op for op (see Adam._array_loop): each op's kernel run by `run`,
        recorded as its dispatch under a profile; each in-place op counted in its target's version. Under a
        profile the first step with momentum (its buffers are made by detach and clone) dispatches instead:
        see step."""
        state = self.state
        for p, grad in pairs:
            g, x = grad._data, p._data
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad.add(p, alpha=wd)
            if momentum != 0:
                st = state[p]
                buf = st.get("momentum_buffer")
                if buf is None:                                          # grad.detach().clone() (unobserved)
                    buf = st["momentum_buffer"] = tensor_of(g.copy())
                else:                                                    # buf.mul_(momentum).add_(grad, ...)
                    b = buf._data
                    run(MUL_, b, momentum)
                    run(ADD_, b, g) if 1 - dampening == 1 else run(ADD_, b, g, alpha=1 - dampening)
                    buf._version += 2
                g = (run(ADD, g, buf._data, alpha=momentum) if momentum != 1 else run(ADD, g, buf._data)) \
                    if nesterov else buf._data                           # grad.add(buf, alpha=momentum) or buf
            run(ADD_, x, g, alpha=-lr) if lr != -1 else run(ADD_, x, g)  # p.add_(grad, alpha=-lr)
            p._version += 1

    def _multi_tensor_step(self, pairs, lr, momentum, dampening, wd, nesterov):
        """The same update as the loop in `step`, formula for formula and in the same float order (so the
        results are the same to the bit, versions counted alike), on the NumPy arrays: the loop's three
        dispatched ops per parameter cost more than a small model's arithmetic. Only when nothing
        observes ops (see multi_tensor_ok); under a profiler or an op hook the loop's ops run one by one, as
        torch's CPU default (foreach=None) does (on the arrays, recorded, under a profile: _array_loop)."""
        state = self.state
        for p, grad in pairs:
            x, g = p._data, grad._data
            if wd != 0:
                g = g + wd * x                                  # grad.add(p, alpha=wd)
            if momentum != 0:
                st = state[p]
                buf = st.get("momentum_buffer")
                if buf is None:                                 # grad.detach().clone()
                    buf = st["momentum_buffer"] = tensor_of(g.copy())
                else:                                           # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    b = buf._data
                    b *= momentum
                    ADD_.kernel(np, b, g, 1 - dampening)        # (add_'s kernel: its axpy where it applies)
                    buf._version += 2
                g = g + momentum * buf._data if nesterov else buf._data
            ADD_.kernel(np, x, g, -lr)                          # p.add_(grad, alpha=-lr)
            p._version += 1
