"""Train an LSTM on scikit-learn's digits read as sequences: each 8x8 image is 8 steps of 8 pixels.

Prints the loss per epoch and the test accuracy (seconds on a CPU)."""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tensorlib import nn  # noqa: E402

from _loop import fit  # noqa: E402


class RowLSTM(nn.Module):
    def __init__(self, hidden=64, n_out=10):
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):                  # x: (N, 8 rows, 8 pixels)
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def train(epochs=6, batch_size=32, lr=0.1, seed=0, device="cpu", verbose=True):
    return fit(RowLSTM, (-1, 8, 8), epochs, batch_size, lr, seed, device, verbose, clip=1.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    train(args.epochs, device=args.device, seed=args.seed)
    print(f"time {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
