"""Train a small Transformer encoder on scikit-learn's digits: each 8x8 image is a sequence of 8 row
tokens (a linear embedding plus a learned position embedding), mean-pooled into a classifier.

Prints the loss per epoch and the test accuracy (seconds on a CPU)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorlib as tl
from tensorlib import nn

from _loop import cli, fit


class RowTransformer(nn.Module):
    def __init__(self, d_model=32, nhead=4, layers=2, n_out=10):
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(tl.zeros(8, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d_model, n_out)

    def forward(self, x):                  # x: (N, 8 rows, 8 pixels)
        h = self.encoder(self.embed(x) + self.pos)
        return self.head(h.mean(1))


def train(epochs=10, batch_size=32, lr=0.05, seed=0, device=None, verbose=True):
    return fit(RowTransformer, (-1, 8, 8), epochs, batch_size, lr, seed, device, verbose, clip=1.0)


def main(argv=None):
    cli(train, 10, __doc__, argv)


if __name__ == "__main__":
    main()
