"""Per-op times of convolution and pooling on the CPU against torch in the same run (1 thread each, best of
N, the two libraries alternating): the pieces of layers.py's convolutional net (batch 64, 3-32-64 3x3 and a
2x2 max pool) and a few other shapes (strided, grouped, a 1x1 and a 5x5), one line per op and direction.

The backward pieces are timed as the ops that autograd dispatches: conv2d's input gradient is
conv_transpose2d, its weight gradient tensorlib's convolution_backward_weight op (torch: its
convolution_backward with only that output asked for), max pooling's backward
max_pool2d_with_indices_backward. Times are the process's CPU time (a shared machine's other load does
not count); --wall-clock times them by perf_counter.
Usage: python benchmarks/conv_ops.py [--repeat N] [--cases substring,...] [--wall-clock]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402
from tensorlib.dispatch import dispatch  # noqa: E402
from tensorlib.ops.conv_ops import CONV_WEIGHT  # noqa: E402
from tensorlib.ops.pool_ops import MAX_POOL2D_BACKWARD  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

# name: (N, C, H, W, O, k, stride, padding, groups)
CONVS = {
    "net conv1 3->32 3x3 p1, 32x32": (64, 3, 32, 32, 32, 3, 1, 1, 1),
    "net conv2 32->64 3x3, 32x32": (64, 32, 32, 32, 64, 3, 1, 0, 1),
    "64->64 3x3 s2 p1, 32x32": (64, 64, 32, 32, 64, 3, 2, 1, 1),
    "64->64 3x3 p1 groups 4, 16x16": (64, 64, 16, 16, 64, 3, 1, 1, 4),
    "64->128 1x1, 16x16": (64, 64, 16, 16, 128, 1, 1, 0, 1),
    "16->32 5x5 p2, 28x28": (64, 16, 28, 28, 32, 5, 1, 2, 1),
}


def conv_cases(name, shape, rng):
    """(label, tensorlib thunk, torch thunk or None) for one convolution's forward, input and weight grads."""
    N, C, H, W, O, k, s, p, G = shape
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C // G, k, k), dtype=np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    g = rng.standard_normal((N, O, OH, OW), dtype=np.float32)
    oph, opw = H + 2 * p - ((OH - 1) * s + k), W + 2 * p - ((OW - 1) * s + k)
    tx, tw, tb, tg = (tl.tensor(a) for a in (x, w, b, g))
    F = tl.nn.functional
    out = [(f"{name} fwd", lambda: F.conv2d(tx, tw, tb, stride=s, padding=p, groups=G), None),
           (f"{name} grad input", lambda: F.conv_transpose2d(tg, tw, None, stride=s, padding=p,
                                                             output_padding=(oph, opw), groups=G), None),
           (f"{name} grad weight", lambda: dispatch(CONV_WEIGHT, tx, tg, weight_shape=tuple(w.shape), stride=(s, s),
                                                    padding=(p, p, p, p), dilation=(1, 1), groups=G), None)]
    if torch is None:
        return out
    px, pw_, pb, pg = (torch.from_numpy(a) for a in (x, w, b, g))

    def bwd(mask):
        return lambda: torch.ops.aten.convolution_backward(pg, px, pw_, None, [s, s], [p, p], [1, 1], False, [0, 0],
                                                           G, mask)
    refs = [lambda: torch.nn.functional.conv2d(px, pw_, pb, stride=s, padding=p, groups=G),
            bwd([True, False, False]), bwd([False, True, False])]
    return [(label, ours, ref) for (label, ours, _), ref in zip(out, refs)]


def pool_cases(rng):
    """The net's 2x2 max pool over (64, 64, 30, 30), forward (with indices) and backward; its ReLU and bias
    gradient sum for scale."""
    y = rng.standard_normal((64, 64, 30, 30), dtype=np.float32)
    ty = tl.tensor(y)
    _, idx = tl.nn.functional.max_pool2d(ty, 2, return_indices=True)
    g = rng.standard_normal(tuple(idx.shape), dtype=np.float32)
    tg = tl.tensor(g)
    F = tl.nn.functional
    out = [("max_pool2d 2x2, 64x64x30x30 fwd", lambda: F.max_pool2d(ty, 2, return_indices=True)),
           ("max_pool2d 2x2 backward", lambda: dispatch(MAX_POOL2D_BACKWARD, tg, idx, shape=y.shape, unique=True)),
           ("relu 64x64x30x30", lambda: F.relu(ty)),
           ("bias grad: sum over (0, 2, 3)", lambda: tl.sum(ty, (0, 2, 3)))]
    if torch is None:
        return [(a, b, None) for a, b in out]
    py, pg = torch.from_numpy(y), torch.from_numpy(g)
    _, pidx = torch.nn.functional.max_pool2d_with_indices(py, 2)
    refs = [lambda: torch.nn.functional.max_pool2d_with_indices(py, 2),
            lambda: torch.ops.aten.max_pool2d_with_indices_backward(pg, py, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                                     pidx),
            lambda: torch.relu(py),
            lambda: py.sum((0, 2, 3))]
    return [(a, b, r) for (a, b), r in zip(out, refs)]


def timed(thunks, repeat, clock):
    """Best time per thunk, the thunks alternating (and their order too)."""
    for f in thunks:
        f()                                 # warm up
    best = [float("inf")] * len(thunks)
    for r in range(repeat):
        for i in (range(len(thunks)) if r % 2 == 0 else reversed(range(len(thunks)))):
            t0 = clock()
            thunks[i]()
            best[i] = min(best[i], clock() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cases", default="", help="comma-separated substrings of the case names to run")
    ap.add_argument("--wall-clock", action="store_true", help="time by the wall clock, not CPU time")
    args = ap.parse_args()
    clock = time.perf_counter if args.wall_clock else time.process_time
    wanted = [w for w in args.cases.split(",") if w]
    from threadpoolctl import threadpool_limits
    if torch is not None:
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"{'op (float32, CPU, 1 thread)':52} {'tensorlib ms':>12} {'torch ms':>9} {'ratio':>6}")
    with threadpool_limits(1):
        cases = [c for name, shape in CONVS.items() for c in conv_cases(name, shape, rng)] + pool_cases(rng)
        for label, ours, ref in cases:
            if wanted and not any(w in label for w in wanted):
                continue
            a, b = timed([ours] + ([ref] if ref is not None else []), args.repeat, clock) + \
                ([] if ref is not None else [float("nan")])
            print(f"{label:52} {a * 1e3:12.2f} {b * 1e3:9.2f} {a / b:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
