"""Debugging walkthrough: a training step that forgets optimizer.zero_grad(), caught by sanity_check.

    python samples/debug_sanity.py

sanity_check runs a few steps, prints the checklist with its evidence, then puts back what the steps
changed (parameters, gradients, buffers, train/eval mode, the optimizer's state).
"""
import tensorlib as tl
from tensorlib import nn
from profiler.debug import sanity_check

tl.manual_seed(0)
tl.set_num_threads(1)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = tl.optim.SGD(model.parameters(), lr=0.05)
batch = (tl.randn(32, 4), tl.randint(0, 3, (32,)))


def step(model, batch):
    x, y = batch
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()                      # the defect: no opt.zero_grad() before it
    opt.step()
    return loss


report = sanity_check(model, None, batch, optimizer=opt, train_step=step)
