"""Train an MLP on scikit-learn's digits with tensorlib (the `make demo` sample).

Prints the loss per epoch and the test accuracy; runs in a few seconds on a CPU. `--profile out.json`
records it with tensorlib's profiler and writes a Chrome trace (if the profiler package is present)."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorlib as tl  # noqa: E402
from tensorlib import nn  # noqa: E402
import tensorlib.nn.functional as F  # noqa: E402

from _data import batches, digits  # noqa: E402
from _sgd import make_sgd  # noqa: E402


class MLP(nn.Module):
    def __init__(self, n_in=64, hidden=128, n_out=10, p_drop=0.1):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.act1 = nn.ReLU()
        self.drop = nn.Dropout(p_drop)
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.drop(self.act1(self.fc1(x))))))


def accuracy(model, x, y, device):
    model.eval()
    with tl.no_grad():
        pred = model(tl.tensor(x, device=device)).argmax(1).cpu().numpy()
    model.train()
    return float((pred == y).mean())


def train(epochs=20, batch_size=64, lr=0.05, seed=0, device="cpu", verbose=True):
    tl.manual_seed(seed)
    (xtr, ytr), (xte, yte) = digits(seed)
    model = MLP().to(device)
    opt = make_sgd(model.parameters(), lr=lr, momentum=0.9)
    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        total, n = 0.0, 0
        for xb, yb in batches(xtr, ytr, batch_size, rng):
            x, y = tl.tensor(xb, device=device), tl.tensor(yb, device=device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
            n += len(xb)
        losses.append(total / n)
        if verbose:
            print(f"epoch {epoch + 1:2d}  loss {losses[-1]:.4f}")
    acc = accuracy(model, xte, yte, device)
    if verbose:
        print(f"test accuracy {acc:.4f} ({len(yte)} images)")
    return losses, acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    train(args.epochs, device=args.device, seed=args.seed)
    print(f"time {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
