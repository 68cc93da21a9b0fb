"""Whole layers, forward + backward, against torch in the same run (1 thread each, best of N, alternating).

The recurrent layers (LSTM, GRU, RNN: one op per layer and direction, tensorlib/ops/recurrent.py) and a
Transformer encoder layer (scaled_dot_product_attention as one op). Needs torch installed for the ratio;
without it, prints tensorlib's times only.
Usage: python benchmarks/layers.py [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

CASES = {
    "LSTM 2x200, seq 35, batch 20": (lambda lib: lib.nn.LSTM(200, 200, num_layers=2), (35, 20, 200)),
    "GRU 2x200, seq 35, batch 20": (lambda lib: lib.nn.GRU(200, 200, num_layers=2), (35, 20, 200)),
    "RNN 2x200, seq 35, batch 20": (lambda lib: lib.nn.RNN(200, 200, num_layers=2), (35, 20, 200)),
    "TransformerEncoderLayer d128 h4, seq 32, batch 16": (
        lambda lib: lib.nn.TransformerEncoderLayer(128, 4, 256, dropout=0.1), (32, 16, 128)),
}


def step(lib, model, x):
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()


def timed(lib, make, shape, repeat):
    model = make(lib)
    x = lib.randn(*shape)
    step(lib, model, x)                     # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        step(lib, model, x)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    if torch is not None:
        torch.set_num_threads(1)
    print(f"{'layer (fwd + bwd)':52} {'tensorlib ms':>12} {'torch ms':>9} {'ratio':>6}")
    with threadpool_limits(1):
        for name, (make, shape) in CASES.items():
            a = timed(tl, make, shape, args.repeat)
            b = timed(torch, make, shape, args.repeat) if torch is not None else float("nan")
            print(f"{name:52} {a * 1e3:12.1f} {b * 1e3:9.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
