"""Debugging walkthrough: plant a NaN, let nan_watch name the op, its phase, shapes and your line.

    python samples/debug_nan.py
"""
import tensorlib as tl
from profiler.debug import NanInfError, grad_monitor, nan_watch

tl.manual_seed(0)
w = tl.randn(4, 3, requires_grad=True)
x = tl.rand(8, 4) + 0.5
x[0, 0] = 0.25                                   # the planted defect: one input below 0.5...

try:
    with nan_watch():                            # checks every op's outputs, forward and backward
        h = (x @ w).sigmoid()
        y = (x - 0.5).sqrt()                     # ...whose square root is NaN
        loss = (h.sum() + y.sum())
        loss.backward()
except NanInfError as e:
    print(e)
    print("found:", e.finding.op, e.finding.phase, e.finding.input_shapes)

# the fix, and a gradient check on the way
x = x.clamp(min=0.5)


class Model:
    def named_parameters(self):
        return iter([("w", w)])


with grad_monitor(Model(), explode=10.0) as gm:
    for step in range(3):
        w.grad = None
        loss = ((x @ w).sigmoid().sum() + (x - 0.5).sqrt().sum())
        loss.backward()
print(gm.table())
