"""tensorlib.distributed against raw MPI, and DDP at 2 ranks against 1 process, measured in the same job.

    mpiexec -n 2 python benchmarks/distributed.py [--quick]

1. all_reduce throughput: `dist.all_reduce(t)` (the dispatched c10d op, the descriptor exchange that turns
   mismatched calls into errors, the hand-off to the group's worker thread and back) against mpi4py's raw
   `comm.Allreduce(MPI.IN_PLACE, buf)` on the same buffers, per size; ratio = ours / raw throughput. The two
   are timed alternately, in batches, so that a machine's changing load weighs on both alike.
2. DDP step time: a compute-bound MLP, the global batch on one process (the other ranks wait) against DDP
   with half the batch per rank; ratio = DDP step / single-process step (0.5 is perfect scaling on 2 free
   cores; on a loaded machine, or with fewer cores than ranks, expect more).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP


def timed(fn, reps):
    """Median seconds per call over `reps` calls, every rank starting each call together."""
    comm = dist._default().comm
    out = []
    for _ in range(reps):
        comm.Barrier()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def timed_pair(f, g, reps, inner=20):
    """Median seconds per call of f and of g, measured alternately (f's batch, then g's, `reps` times): on
    a machine whose load drifts, both see the same conditions. Each batch is `inner` calls after a barrier."""
    comm = dist._default().comm
    a, b = [], []
    for _ in range(reps):
        for fn, out in ((f, a), (g, b)):
            comm.Barrier()
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t) / inner)
    return float(np.median(a)), float(np.median(b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--allreduce-only", action="store_true", help="part 1 only (no DDP step)")
    args = ap.parse_args(argv)
    reps = 5 if args.quick else 30
    from mpi4py import MPI
    dist.init_process_group("mpi")
    comm = dist._default().comm
    r, n = dist.get_rank(), dist.get_world_size()
    say = print if r == 0 else (lambda *a, **k: None)
    say(f"world size {n}\n\n1. all_reduce throughput (float32), ours vs mpi4py Allreduce on the same buffer")
    say(f"{'bytes':>12} {'raw GB/s':>10} {'ours GB/s':>10} {'ratio':>7}")
    for nbytes in (1 << 12, 1 << 16, 1 << 20, 1 << 24) if not args.quick else (1 << 16, 1 << 20):
        a = np.ones(nbytes // 4, np.float32)
        t = tl.from_numpy(a)
        inner = max(1, min(50, (1 << 22) // nbytes))
        raw, ours = timed_pair(lambda: comm.Allreduce(MPI.IN_PLACE, a), lambda: dist.all_reduce(t), reps, inner)
        say(f"{nbytes:>12} {nbytes / raw / 1e9:>10.3f} {nbytes / ours / 1e9:>10.3f} {raw / ours:>7.2f}")

    if args.allreduce_only:
        dist.destroy_process_group()
        return 0
    say("\n2. DDP step (MLP 512-2048-2048-10, global batch 256, SGD) vs one process on the whole batch")
    tl.manual_seed(0)

    def mlp():
        return nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))
    x = tl.randn(256, 512)
    y = tl.randint(0, 10, (256,))
    single = mlp()
    opt1 = tl.optim.SGD(single.parameters(), lr=0.01)

    def step_single():
        if r == 0:
            opt1.zero_grad()
            nn.functional.cross_entropy(single(x), y).backward()
            opt1.step()
    ddp = DDP(mlp())
    opt2 = tl.optim.SGD(ddp.parameters(), lr=0.01)
    lo, hi = r * 256 // n, (r + 1) * 256 // n
    xs, ys = x[lo:hi], y[lo:hi]

    def step_ddp():
        opt2.zero_grad()
        nn.functional.cross_entropy(ddp(xs), ys).backward()
        opt2.step()
    steps = 3 if args.quick else 10
    step_single()
    step_ddp()
    t1 = timed(step_single, steps)
    t2 = timed(step_ddp, steps)
    say(f"one process: {t1 * 1e3:.1f} ms/step   DDP on {n} ranks: {t2 * 1e3:.1f} ms/step   ratio {t2 / t1:.2f}")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
