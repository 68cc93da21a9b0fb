"""Train an MLP on scikit-learn's digits with tensorlib (the `make demo` sample).

Prints the loss per epoch and the test accuracy; runs in a few seconds on a CPU. Every module's forward
is a named profiler region (`MLP`, `MLP.fc1`, ...), so a profiler hook sees the model's structure."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tensorlib import nn

from _loop import cli, fit


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


def train(epochs=20, batch_size=64, lr=0.05, seed=0, device=None, verbose=True):
    return fit(MLP, (-1, 64), epochs, batch_size, lr, seed, device, verbose)


def main(argv=None):
    cli(train, 20, __doc__, argv)


if __name__ == "__main__":
    main()
