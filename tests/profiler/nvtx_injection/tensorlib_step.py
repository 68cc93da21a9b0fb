"""A real tensorlib training step for the NVTX recorder: run with TENSORLIB_NVTX=1, so the ranges come
from the dispatcher itself (import-time hook), not from calls made by the test."""
import tensorlib as tl
from tensorlib.dispatch import record_range

tl.manual_seed(0)
x = tl.randn(4, 3)
w = tl.randn(3, 2, requires_grad=True)
with record_range("model.fc1", "module"):
    y = x @ w
loss = y.sum()
loss.backward()
with record_range("Optimizer.step#SGD.step", "optimizer"):
    with tl.no_grad():
        w.sub_(w.grad * 0.1)
