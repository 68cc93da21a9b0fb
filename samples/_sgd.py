"""TEMPORARY local helper for the samples: plain SGD with momentum, used until `tensorlib.optim` lands
(being built in parallel). Replace `SGD(...)` with `tensorlib.optim.SGD(...)` then and delete this file."""
from __future__ import annotations

import tensorlib as tl


class SGD:
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self._buf = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with tl.dispatch.record_range("Optimizer.step#SGD.step", "optimizer"), tl.no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                if g is None:
                    continue
                if self.weight_decay:
                    g = g + p * self.weight_decay
                if self.momentum:
                    b = self._buf[i]
                    self._buf[i] = b = g.clone() if b is None else b.mul_(self.momentum).add_(g)
                    g = b
                p.sub_(g * self.lr)


def make_sgd(params, lr, momentum=0.0, weight_decay=0.0):
    """tensorlib.optim.SGD when it exists, else the local stand-in above."""
    try:
        from tensorlib import optim  # noqa: PLC0415
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    except ImportError:
        return SGD(params, lr, momentum, weight_decay)
