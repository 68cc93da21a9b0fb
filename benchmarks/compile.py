"""tensorlib.compile against eager inference on the samples' models, as ratios measured in the same run.

For each of the samples' models (MLP, CNN, LSTM, Transformer) in eval mode, at a small batch (where
per-op overhead dominates, as in serving) and a training-size batch: the best of many short timed loops
of eager `model(x)` and of the compiled module, under no_grad and under inference_mode, interleaved so
that both see the same machine. ratio = eager / compiled (> 1: compiled is faster). The outputs are
checked equal first. Timing is this thread's CPU time (time.thread_time_ns) with one BLAS thread, so a
machine shared with other jobs (preemption) does not distort the ratio; --wall times wall-clock instead.
Usage: python benchmarks/compile.py [--loops N] [--repeat R] [--wall]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "samples"))

import tensorlib as tl  # noqa: E402
from train_cnn import CNN  # noqa: E402
from train_lstm import RowLSTM  # noqa: E402
from train_mlp import MLP  # noqa: E402
from train_transformer import RowTransformer  # noqa: E402

MODELS = [("MLP", MLP, (64,)), ("CNN", CNN, (1, 8, 8)), ("LSTM", RowLSTM, (8, 8)),
          ("Transformer", RowTransformer, (8, 8))]


def timed(fn, x, loops, clock):
    t0 = clock()
    for _ in range(loops):
        fn(x)
    return (clock() - t0) / loops / 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--wall", action="store_true", help="time wall-clock (perf_counter) instead of thread CPU time")
    args = ap.parse_args(argv)
    clock = time.perf_counter_ns if args.wall else time.thread_time_ns
    if not args.wall:
        tl.set_num_threads(1)
    tl.manual_seed(0)
    print(f"{'model':<12} {'batch':>5} {'mode':<15} {'eager us':>9} {'compiled us':>12} {'ratio':>6}")
    for name, cls, shape in MODELS:
        model = cls().eval()
        for batch in (1, 64):
            x = tl.randn(batch, *shape)
            for ctx_name, ctx in (("no_grad", tl.no_grad), ("inference_mode", tl.inference_mode)):
                with ctx(), warnings.catch_warnings():
                    warnings.simplefilter("error")          # a fallback to eager would make the figure meaningless
                    c = tl.compile(model)
                    np.testing.assert_array_equal(c(x).numpy(), model(x).numpy())
                    np.testing.assert_array_equal(c(x).numpy(), model(x).numpy())
                    e_best = c_best = float("inf")
                    for _ in range(args.repeat):
                        e_best = min(e_best, timed(model, x, args.loops, clock))
                        c_best = min(c_best, timed(c, x, args.loops, clock))
                print(f"{name:<12} {batch:>5} {ctx_name:<15} {e_best:>9.1f} {c_best:>12.1f} {e_best / c_best:>6.2f}")


if __name__ == "__main__":
    main()
