"""Process targets for test_multiprocessing.py (top-level functions in an importable module: "spawn" pickles
them by name)."""
import tensorlib as tl
from tensorlib import nn


def add_rank(rank, t, n):
    """spawn's fn(i, *args): add rank + 1 to shared tensor t, n times, in place."""
    for _ in range(n):
        t.add_(rank + 1)


def raise_in(rank, bad_rank):
    if rank == bad_rank:
        raise ValueError(f"boom from {rank}")


def exit_with(rank, code):
    import sys
    sys.exit(code)


def hogwild_train(rank, model, steps):
    """One Hogwild worker (pytorch/examples mnist_hogwild's train loop, shrunk): SGD on the shared model."""
    tl.manual_seed(rank)
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    x = tl.randn(16, 4)
    y = x.sum(1, keepdim=True)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()


def echo(q_in, q_out, received):
    """Receive tensors and send them back (the same shared memory), after writing into the first; stay alive
    until the parent has them (a sender's file descriptors are fetched from it: torch's rule for its
    file_descriptor strategy too)."""
    t, p = q_in.get()
    t.mul_(2)
    q_out.put((t, p, p.requires_grad, type(p).__name__))
    received.wait(60)
