"""RMSprop with momentum and the centered variant, as torch's single-tensor implementation."""
from __future__ import annotations

from ..dispatch import op_named
from ..ops.arithmetic import ADD, ADD_, MUL_
from ..ops.creation import zeros_like
from ..ops.optim_ops import ADDCDIV_, ADDCMUL, ADDCMUL_, LERP_
from ..ops.unary_math import SQRT
from ._common import (check_lr, check_range, count_step, gradient, loop_ops, lr_value, scalar_tensor, weight_decayed)
from .optimizer import Optimizer

__all__ = ["RMSprop"]

SQRT_ = op_named("sqrt_")


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
        held = [None]       # the loop's `avg`, alive from group to group (see _loop)
        with self._update_mode():
            for group in self.param_groups:
                lr, alpha, eps = lr_value(group["lr"]), group["alpha"], group["eps"]
                wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
                pairs = self._grads(group, negate=False)
                self._loop(loop_ops(group, pairs), pairs, group["maximize"], held, lr, alpha, eps, wd, momentum,
                           centered, group["differentiable"])
        return loss

    def _init_state(self, p, momentum, centered):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            state["square_avg"] = zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = zeros_like(p)
            if centered:
                state["grad_avg"] = zeros_like(p)
        return state

    def _loop(self, ops, pairs, maximize, held, lr, alpha, eps, wd, momentum, centered, differentiable):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays, alone
        when nothing observes, RMSprop having no multi-tensor path, recorded as dispatched under a profile);
        `avg` replaced where torch's is, a group's last one alive into the next group's loop (`held`)."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        avg = held[0]
        held[0] = None
        c = 1 - alpha
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self._init_state(p, momentum, centered)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            x = of(p)
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad = grad.add(p, alpha=wd)
            square_avg = state["square_avg"]
            v = of(square_avg)
            run(MUL_, v, alpha)                                          # square_avg.mul_(alpha)
            run(ADDCMUL_, v, g, g) if c == 1 else run(ADDCMUL_, v, g, g, value=c)    # .addcmul_(grad, grad, c)
            wrote(step_t, square_avg, square_avg)
            if centered:
                grad_avg = state["grad_avg"]
                a = of(grad_avg)
                run(LERP_, a, g, c)                                      # grad_avg.lerp_(grad, 1 - alpha)
                wrote(grad_avg)
                avg = run(ADDCMUL, v, a, a, value=-1)                    # square_avg.addcmul(ga, ga, value=-1)
                run(SQRT_, avg)                                          # .sqrt_()
            else:
                avg = run(SQRT, v)                                       # square_avg.sqrt()
            if differentiable:                                           # (dispatched: differentiable)
                avg = run(ADD, avg, eps)                                 #   avg = avg.add(eps)
            else:
                run(ADD_, avg, eps)                                      # avg = avg.add_(eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                b = of(buf)
                run(MUL_, b, momentum)                                   # buf.mul_(momentum).addcdiv_(grad, avg)
                run(ADDCDIV_, b, g, avg)
                wrote(buf, buf)
                run(ADD_, x, b) if lr == -1 else run(ADD_, x, b, alpha=-lr)  # p.add_(buf, alpha=-lr)
            else:
                # p.addcdiv_(grad, avg, value=-lr)
                run(ADDCDIV_, x, g, avg) if lr == -1 else run(ADDCDIV_, x, g, avg, value=-lr)
            wrote(p)
        held[0] = avg
