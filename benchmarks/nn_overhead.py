"""tensorlib.nn costs, as ratios against baselines measured in the same run.

1. Module.__call__ with no hooks against calling forward() directly (the module-region machinery must
   cost next to nothing when nobody listens), and with a range-listening hook registered.
2. conv2d forward + backward on the CPU against a hand-written NumPy im2col + matmul of the same
   convolution (and torch, when installed).
Usage: python benchmarks/nn_overhead.py [--loops N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl
from tensorlib import nn
from tensorlib.dispatch import Hook, add_hook, remove_hook


def best(fn, loops, repeat=5):
    b = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(loops)
        b = min(b, (time.perf_counter_ns() - t0) / loops)
    return b


class Ranges(Hook):
    def range_enter(self, name, kind):
        return None

    def range_exit(self, token):
        return None


def module_call(loops):
    m = nn.Identity()
    x = tl.zeros(1)
    fwd = m.forward

    def direct(n):
        for _ in range(n):
            fwd(x)

    def called(n):
        for _ in range(n):
            m(x)

    base = best(direct, loops)
    plain = best(called, loops)
    h = add_hook(Ranges())
    try:
        hooked = best(called, loops)
    finally:
        remove_hook(h)
    print(f"Module.__call__ (no hooks):    {plain:8.0f} ns/call  forward(): {base:6.0f} ns  "
          f"overhead {plain - base:6.0f} ns ({plain / base:.2f}x)")
    print(f"Module.__call__ (range hook):  {hooked:8.0f} ns/call  ({hooked / base:.2f}x forward())")


def numpy_conv(x, w, g):
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, C * kh * kw)
    y = (cols @ w.reshape(O, -1).T).reshape(N, H, W, O).transpose(0, 3, 1, 2)
    gf = g.transpose(0, 2, 3, 1).reshape(-1, O)
    gw = gf.T @ cols
    gcols = (gf @ w.reshape(O, -1)).reshape(N, H, W, C, kh, kw)
    gx = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + H, j:j + W] += gcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return y, gw, gx


def conv(loops):
    r = np.random.default_rng(0)
    x = r.standard_normal((32, 16, 16, 16)).astype(np.float32)
    w = r.standard_normal((32, 16, 3, 3)).astype(np.float32)
    g = r.standard_normal((32, 32, 16, 16)).astype(np.float32)
    X = tl.tensor(x, requires_grad=True)
    Wt = tl.tensor(w, requires_grad=True)
    G = tl.tensor(g)

    def ours(n):
        for _ in range(n):
            X.grad = Wt.grad = None
            tl.nn.functional.conv2d(X, Wt, padding=1).backward(G)

    def base(n):
        for _ in range(n):
            numpy_conv(x, w, g)

    a, b = best(ours, loops, 3), best(base, loops, 3)
    print(f"conv2d fwd+bwd 32x16x16x16, 3x3x32: tensorlib {a / 1e6:7.2f} ms  NumPy im2col {b / 1e6:7.2f} ms  "
          f"ratio {a / b:.2f}x")
    try:
        import torch
    except ImportError:
        return
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tg = torch.tensor(g)

    def tt(n):
        for _ in range(n):
            tx.grad = tw.grad = None
            torch.nn.functional.conv2d(tx, tw, padding=1).backward(tg)
    c = best(tt, loops, 3)
    print(f"                                     torch     {c / 1e6:7.2f} ms  ratio {a / c:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=20000)
    args = ap.parse_args()
    module_call(args.loops)
    conv(max(args.loops // 2000, 3))


if __name__ == "__main__":
    main()
