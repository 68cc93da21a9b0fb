"""Train an LSTM on scikit-learn's digits read as sequences: each 8x8 image is 8 steps of 8 pixels.

Prints the loss per epoch and the test accuracy (seconds on a CPU)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tensorlib import nn

from _loop import cli, fit


class RowLSTM(nn.Module):
    def __init__(self, hidden=64, n_out=10):
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):                  # x: (N, 8 rows, 8 pixels)
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def train(epochs=6, batch_size=32, lr=0.1, seed=0, device=None, verbose=True):
    return fit(RowLSTM, (-1, 8, 8), epochs, batch_size, lr, seed, device, verbose, clip=1.0)


def main(argv=None):
    cli(train, 6, __doc__, argv)


if __name__ == "__main__":
    main()
