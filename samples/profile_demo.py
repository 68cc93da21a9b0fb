"""Train a small MLP classifier under the profiler, print torch's table, write trace.json.

Uses tensorlib ops with hand-written SGD; the model's layers and the optimizer step are marked with
``record_range(..., "module")`` / ``"optimizer"`` regions (as nn.Module and optim will mark them), so
the trace shows the same structure a torch user expects. Run: ``python samples/profile_demo.py
[--steps N] [-o trace.json]``, then open the trace with ``python -m viewer trace.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402
from tensorlib.dispatch import record_range  # noqa: E402

import profiler  # noqa: E402


def init(n_in, n_hidden, n_out):
    tl.manual_seed(0)
    params = {
        "fc1.weight": tl.randn(n_in, n_hidden) * (2 / n_in) ** 0.5,
        "fc1.bias": tl.zeros(n_hidden),
        "fc2.weight": tl.randn(n_hidden, n_out) * (1 / n_hidden) ** 0.5,
        "fc2.bias": tl.zeros(n_out),
    }
    for p in params.values():
        p.requires_grad_(True)
    return params


def forward(params, x):
    with record_range("MLP", "module"):
        with record_range("MLP.fc1", "module"):
            h = x @ params["fc1.weight"] + params["fc1.bias"]
        with record_range("MLP.relu", "module"):
            h = h.relu()
        with record_range("MLP.fc2", "module"):
            return h @ params["fc2.weight"] + params["fc2.bias"]


def cross_entropy(logits, target_onehot):
    logp = logits - logits.logsumexp(dim=1, keepdim=True)
    return -(logp * target_onehot).sum() / logits.shape[0]


def sgd_step(params, lr):
    with record_range("Optimizer.step#SGD.step", "optimizer"):
        with tl.no_grad():
            for p in params.values():
                p.sub_(p.grad * lr)
                p.grad = None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("-o", "--output", default="trace.json")
    args = ap.parse_args(argv)
    params = init(64, 128, 10)
    x = tl.randn(256, 64)
    labels = (x[:, :10].argmax(dim=1))
    target = tl.zeros(256, 10)
    target[tl.arange(256), labels] = 1.0
    with profiler.profile(record_shapes=True, profile_memory=True, with_flops=True) as prof:
        for step in range(args.steps):
            with record_range("DataLoader.__next__", "data"):
                xb, tb = x * 1.0, target
            loss = cross_entropy(forward(params, xb), tb)
            loss.backward()
            sgd_step(params, 0.1)
            prof.step()
    print(f"loss after {args.steps} steps: {loss.item():.4f}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    prof.export_chrome_trace(args.output)
    print(f"wrote {args.output} ({len(prof.events())} events). Open it with:  python -m viewer {args.output}")


if __name__ == "__main__":
    main()
