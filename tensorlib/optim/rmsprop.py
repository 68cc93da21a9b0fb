"""RMSprop with momentum and the centered variant, as torch's single-tensor implementation."""
from __future__ import annotations

from ..ops.arithmetic import ADD_, MUL_
from ..ops.creation import zeros_like
from ..ops.optim_ops import ADDCDIV_, ADDCMUL, ADDCMUL_, LERP_
from ..ops.unary_math import SQRT
from ._common import array_loop_run, check_lr, check_range, count_step, lr_value, scalar_step, weight_decayed
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
        held = [None]       # the array loop's `avg`, alive from group to group (see _array_loop)
        with self._update_mode():
            for group in self.param_groups:
                lr, alpha, eps = lr_value(group["lr"]), group["alpha"], group["eps"]
                wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
                pairs = list(self._grads(group))
                run = array_loop_run(group, pairs)
                if run is not None:
                    self._array_loop(run, pairs, held, lr, alpha, eps, wd, momentum, centered)
                    continue
                for p, grad in pairs:
                    state = self._init_state(p, momentum, centered)
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

    def _init_state(self, p, momentum, centered):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_step(state)
            state["square_avg"] = zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = zeros_like(p)
            if centered:
                state["grad_avg"] = zeros_like(p)
        return state

    def _array_loop(self, run, pairs, held, lr, alpha, eps, wd, momentum, centered):
        """The loop above on the arrays, op for op (see Adam._array_loop): each op's kernel run by `run` (the
        kernel alone when nothing observes: RMSprop has no multi-tensor path; recorded as its dispatch under a
        profile), each in-place op counted in its target's version; `avg` replaced where the loop's is, a
        group's last one alive into the next group's loop (`held`)."""
        avg = held[0]
        held[0] = None
        c = 1 - alpha
        for p, grad in pairs:
            g = grad._data
            state = self._init_state(p, momentum, centered)
            step_t = state["step"]
            count_step(run, step_t)                                      # state["step"].add_(1)
            x = p._data
            if wd != 0:
                g = weight_decayed(run, g, x, wd)                        # grad.add(p, alpha=wd)
            square_avg = state["square_avg"]
            v = square_avg._data
            run(MUL_, v, alpha)                                          # square_avg.mul_(alpha)
            run(ADDCMUL_, v, g, g) if c == 1 else run(ADDCMUL_, v, g, g, value=c)    # .addcmul_(grad, grad, c)
            square_avg._version += 2
            if centered:
                grad_avg = state["grad_avg"]
                run(LERP_, grad_avg._data, g, c)                         # grad_avg.lerp_(grad, 1 - alpha)
                grad_avg._version += 1
                avg = run(SQRT, run(ADDCMUL, v, grad_avg._data, grad_avg._data, value=-1))
            else:
                avg = run(SQRT, v)                                       # square_avg.sqrt()
            run(ADD_, avg, eps)                                          # avg.add_(eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                run(MUL_, buf._data, momentum)                           # buf.mul_(momentum).addcdiv_(grad, avg)
                run(ADDCDIV_, buf._data, g, avg)
                buf._version += 2
                run(ADD_, x, buf._data, alpha=-lr) if lr != -1 else run(ADD_, x, buf._data)    # p.add_(buf, -lr)
            else:
                run(ADDCDIV_, x, g, avg, value=-lr) if lr != -1 else run(ADDCDIV_, x, g, avg)
            p._version += 1
        held[0] = avg
