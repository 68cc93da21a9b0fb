"""Whole layers, forward + backward, against torch in the same run (1 thread each, best of N, alternating).

The recurrent layers (LSTM, GRU, RNN: one op per layer and direction, tensorlib/ops/recurrent.py), a
Transformer encoder layer (scaled_dot_product_attention as one op) and two compute-bound models (issue 17's
target: <= 1.05x torch): an MLP of 1024x1024 layers at batch 256 and a convolutional net at batch 64. Needs
torch installed for the ratio; without it, prints tensorlib's times only. Steps are timed by the process's
CPU time (a shared machine's other load does not count); --wall-clock times them by perf_counter.
Usage: python benchmarks/layers.py [--repeat N] [--cases substring,...] [--wall-clock]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402
from tensorlib import _blas  # noqa: E402

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
    "MLP 3x Linear 1024 + ReLU, b256 (compute)": (
        lambda lib: lib.nn.Sequential(lib.nn.Linear(1024, 1024), lib.nn.ReLU(), lib.nn.Linear(1024, 1024),
                                      lib.nn.ReLU(), lib.nn.Linear(1024, 1024)), (256, 1024)),
    "conv 3-32-64 3x3 + pool, b64 32x32 (compute)": (
        lambda lib: lib.nn.Sequential(lib.nn.Conv2d(3, 32, 3, padding=1), lib.nn.ReLU(), lib.nn.Conv2d(32, 64, 3),
                                      lib.nn.ReLU(), lib.nn.MaxPool2d(2), lib.nn.Flatten(),
                                      lib.nn.Linear(64 * 15 * 15, 10)), (64, 3, 32, 32)),
}


def step(lib, model, x):
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()


def timed(libs, make, shape, repeat, clock):
    """Best step time per library, the libraries' steps alternating (and their order too)."""
    runs = []
    for lib in libs:
        model, x = make(lib), lib.randn(*shape)
        step(lib, model, x)                 # warm up
        runs.append((lib, model, x))
    best = [float("inf")] * len(runs)
    for r in range(repeat):
        for i in (range(len(runs)) if r % 2 == 0 else reversed(range(len(runs)))):
            lib, model, x = runs[i]
            t0 = clock()
            step(lib, model, x)
            best[i] = min(best[i], clock() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cases", default="", help="comma-separated substrings of the case names to run")
    ap.add_argument("--wall-clock", action="store_true", help="time steps by the wall clock, not CPU time")
    args = ap.parse_args()
    clock = time.perf_counter if args.wall_clock else time.process_time
    wanted = [w for w in args.cases.split(",") if w]
    from threadpoolctl import threadpool_limits
    if torch is not None:
        torch.set_num_threads(1)
    print(f"tensorlib's large GEMMs on {'MKL' if _blas.gemms_on_mkl() else 'NumPy BLAS'}")
    print(f"{'layer (fwd + bwd)':52} {'tensorlib ms':>12} {'torch ms':>9} {'ratio':>6}")
    with threadpool_limits(1):
        for name, (make, shape) in CASES.items():
            if wanted and not any(w in name for w in wanted):
                continue
            a, b = timed([tl] + ([torch] if torch is not None else []), make, shape, args.repeat, clock) + \
                ([] if torch is not None else [float("nan")])
            print(f"{name:52} {a * 1e3:12.1f} {b * 1e3:9.1f} {a / b:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
