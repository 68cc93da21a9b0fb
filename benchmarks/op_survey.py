"""Forward + backward of single ops and functionals against torch, in one process (1 thread each, the two
libraries' steps alternating), to find the ops where tensorlib is far off torch's time: each case's input
requires grad, the output is summed and backpropagated, and the 20th-percentile step time of each library is
compared. Inputs: (16, 32, 32, 32) for activations, pooling, normalisation and upsampling; (256, 512) for
losses, softmax, reductions and indexing; (32, 64, 100) for conv1d, einsum and bmm. Needs torch installed.
The "small" cases take a small transformer's shapes, where a call's fixed cost dominates.
Cases at or above --flag (default 1.6x) are marked <<<.
Usage: python benchmarks/op_survey.py [--cases name,...] [--repeat N] [--flag R]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402

X4 = (16, 32, 32, 32)
X2 = (256, 512)
X3 = (32, 64, 100)

# name -> (input shape, f(lib, F, x) -> output)
CASES = {
    "relu": (X4, lambda L, F, x: F.relu(x)),
    "leaky_relu": (X4, lambda L, F, x: F.leaky_relu(x, 0.2)),
    "elu": (X4, lambda L, F, x: F.elu(x)),
    "selu": (X4, lambda L, F, x: F.selu(x)),
    "softplus": (X4, lambda L, F, x: F.softplus(x)),
    "hardtanh": (X4, lambda L, F, x: F.hardtanh(x)),
    "relu6": (X4, lambda L, F, x: F.relu6(x)),
    "silu": (X4, lambda L, F, x: F.silu(x)),
    "mish": (X4, lambda L, F, x: F.mish(x)),
    "hardswish": (X4, lambda L, F, x: F.hardswish(x)),
    "hardsigmoid": (X4, lambda L, F, x: F.hardsigmoid(x)),
    "gelu": (X4, lambda L, F, x: F.gelu(x)),
    "gelu_tanh": (X4, lambda L, F, x: F.gelu(x, approximate="tanh")),
    "sigmoid": (X4, lambda L, F, x: L.sigmoid(x)),
    "tanh": (X4, lambda L, F, x: L.tanh(x)),
    "dropout": (X4, lambda L, F, x: F.dropout(x, 0.5)),
    "avg_pool2d": (X4, lambda L, F, x: F.avg_pool2d(x, 2)),
    "max_pool2d": (X4, lambda L, F, x: F.max_pool2d(x, 2)),
    "adaptive_avg_pool2d(1)": (X4, lambda L, F, x: F.adaptive_avg_pool2d(x, 1)),
    "adaptive_avg_pool2d(7)": (X4, lambda L, F, x: F.adaptive_avg_pool2d(x, 7)),
    "interpolate nearest x2": (X4, lambda L, F, x: F.interpolate(x, scale_factor=2)),
    "interpolate bilinear x2": (X4, lambda L, F, x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                                                 align_corners=False)),
    "batch_norm": (X4, lambda L, F, x: F.batch_norm(x, None, None, training=True)),
    "group_norm": (X4, lambda L, F, x: F.group_norm(x, 8)),
    "layer_norm": (X4, lambda L, F, x: F.layer_norm(x, (32,))),
    "softmax": (X2, lambda L, F, x: F.softmax(x, -1)),
    "log_softmax": (X2, lambda L, F, x: F.log_softmax(x, -1)),
    "cross_entropy": (X2, lambda L, F, x: F.cross_entropy(x, L.arange(256) % 512)),
    "mse_loss": (X2, lambda L, F, x: F.mse_loss(x, L.zeros_like(x))),
    "smooth_l1_loss": (X2, lambda L, F, x: F.smooth_l1_loss(x, L.zeros_like(x))),
    "huber_loss": (X2, lambda L, F, x: F.huber_loss(x, L.zeros_like(x))),
    "bce_with_logits": (X2, lambda L, F, x: F.binary_cross_entropy_with_logits(x, L.ones_like(x))),
    "clamp": (X2, lambda L, F, x: x.clamp(-0.5, 0.5)),
    "where": (X2, lambda L, F, x: L.where(x > 0, x, x * 2)),
    "pow 3": (X2, lambda L, F, x: x ** 3),
    "cumsum": (X2, lambda L, F, x: x.cumsum(1)),
    "topk 5": (X2, lambda L, F, x: x.topk(5, dim=1)[0]),
    "norm": (X2, lambda L, F, x: x.norm(dim=1)),
    "logsumexp": (X2, lambda L, F, x: x.logsumexp(1)),
    "pad": (X4, lambda L, F, x: F.pad(x, (1, 1, 1, 1))),
    "conv1d": (X3, lambda L, F, x: F.conv1d(x, L.ones(64, 64, 3) * 0.01, padding=1)),
    "einsum bij,bkj->bik": (X3, lambda L, F, x: L.einsum("bij,bkj->bik", x, x)),
    "bmm": (X3, lambda L, F, x: L.bmm(x, x.transpose(1, 2))),
    "gather": (X2, lambda L, F, x: x.gather(1, (L.arange(256 * 8).reshape(256, 8) * 7) % 512)),
    "index_select": (X2, lambda L, F, x: x.index_select(0, (L.arange(512) * 5) % 256)),
    "scatter_add": (X2, lambda L, F, x: L.zeros(256, 64).scatter_add(1, (L.arange(256 * 512).reshape(256, 512) * 3)
                                                                       % 64, x)),
    "masked_fill": (X2, lambda L, F, x: x.masked_fill((L.arange(512) % 3 == 0), 0.0)),
    "cat": (X2, lambda L, F, x: L.cat([x, x * 2, x], 1)),
    "transpose contiguous": (X2, lambda L, F, x: x.t().contiguous()),
    "sum dim 0": (X2, lambda L, F, x: x.sum(0)),
    "var": (X2, lambda L, F, x: x.var(1)),
    "max dim": (X2, lambda L, F, x: x.max(1)[0]),
    "normalize": (X2, lambda L, F, x: F.normalize(x, dim=1)),
    "cosine_similarity": (X2, lambda L, F, x: F.cosine_similarity(x, x.flip(0), dim=1)),
    "logsigmoid": (X2, lambda L, F, x: F.logsigmoid(x)),
    "abs": (X2, lambda L, F, x: x.abs()),
    "sqrt abs": (X2, lambda L, F, x: (x.abs() + 1).sqrt()),
    "log abs": (X2, lambda L, F, x: (x.abs() + 1).log()),
    "div": (X2, lambda L, F, x: x / (x.abs() + 1)),
    "sdpa 8x8x128x64": ((8, 8, 128, 64), lambda L, F, x: F.scaled_dot_product_attention(x, x, x)),
    "conv2d 3x3": ((8, 16, 32, 32), lambda L, F, x: F.conv2d(x, L.ones(32, 16, 3, 3) * 0.01, padding=1)),
    "embedding 1000x64": ((1000, 64), lambda L, F, x: F.embedding((L.arange(2048).reshape(16, 128) * 7) % 1000,
                                                                      x)),
    "unfold": ((8, 16, 16, 16), lambda L, F, x: F.unfold(x, 3, padding=1)),
    "instance_norm": (X4, lambda L, F, x: F.instance_norm(x)),
    "pixel_shuffle": (X4, lambda L, F, x: F.pixel_shuffle(x, 2)),
    # a small transformer's shapes (nanoGPT at n_embd 32, 2 heads, 16 tokens, batch 4): per-call costs
    "small layer_norm": ((4, 16, 32), lambda L, F, x: F.layer_norm(x, (32,))),
    "small gelu": ((4, 16, 128), lambda L, F, x: F.gelu(x)),
    "small softmax": ((4, 2, 16, 16), lambda L, F, x: F.softmax(x, -1)),
    "small sdpa causal": ((4, 2, 16, 16), lambda L, F, x: F.scaled_dot_product_attention(x, x, x, is_causal=True)),
    "small cross_entropy": ((64, 32), lambda L, F, x: F.cross_entropy(x, L.arange(64) % 32)),
    "small embedding": ((32, 32), lambda L, F, x: F.embedding(L.arange(64).reshape(4, 16) % 32, x)),
    "small linear": ((4, 16, 32), lambda L, F, x: F.linear(x, L.ones(96, 32) * 0.01)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--repeat", type=int, default=60, help="steps per library and case")
    ap.add_argument("--flag", type=float, default=1.6)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("op_survey.py compares against torch: pip install torch") from None
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(1)
    wanted = [c for c in args.cases.split(",") if c]
    rng = np.random.default_rng(0)
    print(f"{'case (forward + backward)':28} {'tensorlib us':>12} {'torch us':>10} {'ratio':>7}")
    ratios = []
    with threadpool_limits(1):
        for name, (shape, f) in CASES.items():
            if wanted and name not in wanted:
                continue
            x = rng.standard_normal(shape).astype(np.float32)
            steps = []
            for lib in (tl, torch):
                xt = lib.tensor(x, requires_grad=True)

                def step(lib=lib, xt=xt):
                    f(lib, lib.nn.functional, xt).sum().backward()
                    xt.grad = None
                step()
                steps.append(step)
            times = [[], []]
            for r in range(args.repeat):
                for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                    t0 = time.perf_counter()
                    steps[i]()
                    times[i].append(time.perf_counter() - t0)
            a, b = (sorted(t)[len(t) // 5] * 1e6 for t in times)
            ratios.append(a / b)
            flag = " <<<" if a / b >= args.flag else ""
            print(f"{name:28} {a:12.1f} {b:10.1f} {a / b:6.2f}x{flag}", flush=True)
    if ratios:
        print(f"median {float(np.median(ratios)):.2f}x, max {max(ratios):.2f}x over {len(ratios)} cases")


if __name__ == "__main__":
    main()
