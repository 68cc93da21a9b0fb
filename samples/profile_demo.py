"""Train a small MLP under the profiler, print torch's table, write trace.json for the viewer.

Plain PyTorch-style code (nn.Module, optim.SGD, DataLoader): the module, optimizer and data-loading regions in
the trace come from tensorlib itself, as torch's do. Run ``python samples/profile_demo.py [--steps N]
[-o trace.json]``, then open the trace with ``python -m viewer trace.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.utils.data import DataLoader, TensorDataset

import profiler
from safeio import literal


class MLP(nn.Module):
    def __init__(self, n_in=64, n_hidden=128, n_out=10):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("-o", "--output", default="trace.json")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1: these matrices are small, and more threads than free cores "
                         "make matmul look like the bottleneck)")
    args = ap.parse_args(argv)
    tl.set_num_threads(args.threads)
    tl.manual_seed(0)
    x = tl.randn(256 * 4, 64)
    y = x[:, :10].argmax(dim=1)                     # a learnable toy task
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = MLP()
    opt = tl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = iter(())
    # skip one step and warm up two (the first BLAS calls of a process are slow), then record args.steps
    sched = profiler.schedule(wait=1, warmup=2, active=args.steps)
    with profiler.profile(schedule=sched, record_shapes=True, profile_memory=True, with_flops=True,
                          with_modules=True) as prof:
        for step in range(3 + args.steps):
            try:
                xb, yb = next(batches)
            except StopIteration:
                batches = iter(loader)
                xb, yb = next(batches)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            prof.step()
    print(f"loss after {args.steps} steps: {loss.item():.4f}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    prof.export_chrome_trace(args.output)
    out = literal(args.output)          # a name from the command line, shown as text
    # What the count is: the ops and ranges; the file also holds memory records, counters and flows.
    print(f"wrote {out}: {len(prof.events())} ops and ranges, with memory records, counters and flows. "
          f"Open it with:  python -m viewer {out}")


if __name__ == "__main__":
    main()
