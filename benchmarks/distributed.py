"""tensorlib.distributed against raw MPI, and DDP at N ranks against 1 process, measured in the same job.

    mpiexec -n 2 python benchmarks/distributed.py [--quick] [--allreduce-only] [--threads T] [--clock cpu|wall]

1. all_reduce: `dist.all_reduce(t)` against mpi4py's raw `comm.Allreduce(MPI.IN_PLACE, buf)` on the same
   buffers, per size; ratio = raw time / ours (1.0: no overhead). Ours is measured twice: on the default
   group, whose collectives first check that every rank makes the same call (on one host: each rank's
   64-bit signature in a shared-memory slot, read by the others; across hosts an 8-byte-per-rank allgather),
   and on a group made with TORCH_DISTRIBUTED_DEBUG=OFF, which skips the check (torch's own default: it
   checks only at DETAIL). The three are timed in batches, in an order shuffled per round (the same on
   every rank), so that a machine's changing load and the order weigh on all alike; each batch is timed
   with the thread's CPU clock (--clock cpu, the default: time a loaded machine gives other processes does
   not count; MPI's waiting spins, so it is CPU time too) or the wall clock (--clock wall). The floors
   printed first: the check alone (a lockstep round between the ranks, as the group makes it), the 8-byte
   allgather that the check used before and still uses across hosts, and a raw 16-byte Allreduce; with
   them, the best ratio a checked call could reach at each size (raw / (raw + check)), before any Python.
   Last, at 64 KiB, the time each call spends outside the MPI call itself (wall clock around it, medians of
   single calls): our Python and the check, which a loaded host's scheduling disturbs far less than the
   batches (whose raw time varies 2x from run to run there).
2. DDP step time: a compute-bound MLP, the global batch on one process (the other ranks wait without
   spinning) against DDP with 1/N of the batch per rank, every process with the same BLAS thread count
   (--threads, default 1, as torchrun's OMP_NUM_THREADS default for several ranks a host: N ranks each
   running a pool as wide as the machine oversubscribe its cores). Single and DDP steps alternate; ratio =
   DDP step / single step per pair (1/N is perfect scaling on N free cores). Also: DDP with
   gradient_as_bucket_view=True (each .grad a view of its bucket: no copy out) and DDP with one bucket
   (launched when backward ends, so no communication overlaps backward) against the default buckets, the
   bucket copies (gradients in, averages out) as a share of the step, and where a DDP step's CPU goes on
   each rank (the thread's CPU clock per phase: forward, backward's own work, DDP's gradient hooks that
   copy each gradient into its bucket, the end of backward that waits for the all-reduces and copies the
   averages out, the optimizer, and the group's worker thread, which runs the all-reduces) against the
   same model's forward, backward and optimizer on the rank's share of the batch without DDP.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP


CLOCK = time.perf_counter


def timed_alternately(fns, reps, inner):
    """Seconds per call of each of `fns` (each a batch of `inner` calls after a barrier, on CLOCK), `reps`
    rounds, the functions in a shuffled order each round (the same on every rank: each rank must make the
    same collectives): a list of per-batch times per function."""
    comm = dist._default().comm
    out: list[list[float]] = [[] for _ in fns]
    order = np.random.default_rng(0)
    clock = CLOCK
    for _ in range(reps):
        for k in order.permutation(len(fns)):
            fn = fns[k]
            comm.Barrier()
            t = clock()
            for _ in range(inner):
                fn()
            out[k].append((clock() - t) / inner)
    return out


def idle_barrier(comm):
    """A barrier that waits without spinning (MPI's blocking one polls a core, which the single-process step
    on another rank may need)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(0.0005)


def spread(ratios) -> str:
    """Median and range of a list of ratios."""
    r = sorted(ratios)
    return f"{np.median(r):.2f} ({r[0]:.2f}-{r[-1]:.2f})"


def best(a, b) -> str:
    """min(a) / min(b): the ratio of the least-disturbed batches, steadier than any one pair on a loaded
    machine."""
    return f"{min(a) / min(b):.2f}"


def part_allreduce(args, say):
    from mpi4py import MPI
    comm = dist._default().comm
    n = comm.Get_size()
    os.environ["TORCH_DISTRIBUTED_DEBUG"] = "OFF"
    unchecked = dist.new_group(list(range(n)))
    del os.environ["TORCH_DISTRIBUTED_DEBUG"]
    reps = 5 if args.quick else 30
    sig, sigs = array("q", [0]), array("q", [0]) * n
    tiny = np.zeros(2, np.int64)
    pg = dist._default()
    check, gather, tiny_ar = timed_alternately([lambda: pg.check("all_reduce", np.float32, 16384, -1, 0),
                                                lambda: comm.Allgather(sig, sigs),
                                                lambda: comm.Allreduce(MPI.IN_PLACE, tiny, op=MPI.MAX)], reps, 200)
    c = min(check)
    how = "shared-memory slots" if getattr(pg, "_slots", None) is not None else "an 8-byte allgather"
    say(f"floors (best / median of {reps} batches): the check ({how}) {c * 1e6:.1f} / "
        f"{np.median(check) * 1e6:.1f} us, an 8-byte allgather {min(gather) * 1e6:.1f} / "
        f"{np.median(gather) * 1e6:.1f} us, a raw 16-byte Allreduce {min(tiny_ar) * 1e6:.1f} / "
        f"{np.median(tiny_ar) * 1e6:.1f} us\n")
    say(f"times ({args.clock} clock): medians of the batches; ratio = raw / ours, median (range) over the rounds, "
        f"and best: the ratio of the best batches;\nbound: raw / (raw + the check), best batches, the most a checked "
        f"call could reach")
    say(f"{'bytes':>9} {'raw us':>8} {'ours us':>8} {'unchecked':>9}   {'ratio (range)':>17} {'best':>5}   "
        f"{'unchecked (range)':>17} {'best':>5}  {'bound':>5}")
    for nbytes in (1 << 12, 1 << 16, 1 << 20, 1 << 24) if not args.quick else (1 << 16, 1 << 20):
        a = np.ones(nbytes // 4, np.float32)
        t = tl.from_numpy(a)
        inner = max(1, min(100, (1 << 23) // nbytes))
        raw, ours, off = timed_alternately([lambda: comm.Allreduce(MPI.IN_PLACE, a), lambda: dist.all_reduce(t),
                                            lambda: dist.all_reduce(t, group=unchecked)], reps, inner)
        say(f"{nbytes:>9} {np.median(raw) * 1e6:>8.1f} {np.median(ours) * 1e6:>8.1f} {np.median(off) * 1e6:>9.1f}   "
            f"{spread([x / y for x, y in zip(raw, ours)]):>17} {best(raw, ours):>5}   "
            f"{spread([x / y for x, y in zip(raw, off)]):>17} {best(raw, off):>5}  {min(raw) / (min(raw) + c):>5.2f}")
    outside_mpi(say, pg, unchecked, reps)
    dist.destroy_process_group(unchecked)


class TimedComm:
    """A communicator whose Allreduce records the wall-clock ns it spent inside MPI (`inside`)."""

    def __init__(self, comm):
        from mpi4py import MPI
        self.comm = comm
        self.inside = 0
        self.sum = MPI.SUM

    def Allreduce(self, send, recv, op=None):  # noqa: N802 - mpi4py's name
        t = time.perf_counter_ns()
        self.comm.Allreduce(send, recv, op=self.sum if op is None else op)
        self.inside = time.perf_counter_ns() - t

    def __getattr__(self, name):
        return getattr(self.comm, name)


def outside_mpi(say, pg, unchecked, reps):
    """Per-call wall time outside MPI's Allreduce at 64 KiB: raw (a call through the same wrapper), ours
    checked and unchecked; the three in a shuffled order per round."""
    from mpi4py import MPI
    a = np.ones(1 << 14, np.float32)
    t = tl.from_numpy(a)
    groups = (pg, unchecked)
    saved = [g.comm for g in groups]
    timed = [TimedComm(c) for c in saved]
    for g, c in zip(groups, timed):
        g.comm = c
    fns = [(lambda: timed[0].Allreduce(MPI.IN_PLACE, a), timed[0]), (lambda: dist.all_reduce(t), timed[0]),
           (lambda: dist.all_reduce(t, group=unchecked), timed[1])]
    out: list[list[int]] = [[] for _ in fns]
    order = np.random.default_rng(1)
    try:
        for _ in range(reps * 4):
            for k in order.permutation(len(fns)):
                fn, c = fns[k]
                saved[0].Barrier()
                for _ in range(100):
                    t0 = time.perf_counter_ns()
                    fn()
                    out[k].append(time.perf_counter_ns() - t0 - c.inside)
    finally:
        for g, c in zip(groups, saved):
            g.comm = c
    raw, ours, off = (float(np.median(v)) / 1e3 for v in out)
    say(f"outside the MPI call, 64 KiB (wall us per call, medians of {len(out[0])}): raw {raw:.2f}, ours {ours:.2f} "
        f"(+{ours - raw:.2f}), unchecked {off:.2f} (+{off - raw:.2f})")


def mlp():
    return nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))


class TimedDDP(DDP):
    """DDP whose gradient hooks and end-of-backward work add their thread CPU time to `spent`."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        object.__setattr__(self, "spent", {"hooks": 0.0, "end": 0.0})

    def _ready(self, *a):
        t = time.thread_time()
        super()._ready(*a)
        self.spent["hooks"] += time.thread_time() - t

    def _finalize(self):
        t = time.thread_time()
        super()._finalize()
        self.spent["end"] += time.thread_time() - t


def phases(args, say, xs, ys):
    """Median thread CPU ms per phase of a DDP step (gradient_as_bucket_view=False and True) and of the
    same step without DDP, on every rank, steps alternating."""
    comm = dist._default().comm
    pg = dist._default()
    worker = time.pthread_getcpuclockid(pg._thread.ident)
    models = {"no DDP": mlp(), "DDP": TimedDDP(mlp()), "DDP views": TimedDDP(mlp(), gradient_as_bucket_view=True)}
    opts = {k: tl.optim.SGD(m.parameters(), lr=0.01) for k, m in models.items()}
    cols = ("forward", "backward", "hooks", "end", "optimizer", "worker", "total")
    got: dict = {k: {c: [] for c in cols} for k in models}
    for rep in range(-1, 3 if args.quick else 8):
        for name, m in models.items():
            idle_barrier(comm)
            opt, spent = opts[name], getattr(m, "spent", None)
            if spent:
                spent.update(hooks=0.0, end=0.0)
            w0, c0 = time.clock_gettime(worker), time.thread_time()
            opt.zero_grad()
            out = m(xs)
            c1 = time.thread_time()
            nn.functional.cross_entropy(out, ys).backward()
            c2 = time.thread_time()
            opt.step()
            c3 = time.thread_time()
            w = time.clock_gettime(worker) - w0 if spent else 0.0
            if rep >= 0:
                hooks, end = (spent["hooks"], spent["end"]) if spent else (0.0, 0.0)
                for c, v in zip(cols, (c1 - c0, c2 - c1 - hooks - end, hooks, end, c3 - c2, w, c3 - c0 + w)):
                    got[name][c].append(v)
    rows = comm.gather({k: {c: float(np.median(v)) * 1e3 for c, v in d.items()} for k, d in got.items()}, root=0)
    say("where a step's CPU goes, per rank (thread CPU ms, medians; hooks: DDP's gradient copies into the "
        "buckets; end: waiting for the all-reduces and copying out; worker: the thread running the all-reduces)")
    say(f"{'':>6} {'':>10} " + " ".join(f"{c:>9}" for c in cols))
    for r, row in enumerate(rows or []):
        for name, d in row.items():
            say(f"rank {r} {name:>10} " + " ".join(f"{d[c]:>9.1f}" for c in cols))


def part_ddp(args, say):
    comm = dist._default().comm
    r, n = dist.get_rank(), dist.get_world_size()
    say(f"\n2. DDP step (MLP 512-2048-2048-10, global batch 256, SGD), {tl.get_num_threads()} BLAS thread(s) in "
        f"every process, vs one process on the whole batch")
    tl.manual_seed(0)
    x = tl.randn(256, 512)
    y = tl.randint(0, 10, (256,))
    single = mlp()
    opt1 = tl.optim.SGD(single.parameters(), lr=0.01)
    lo, hi = r * 256 // n, (r + 1) * 256 // n
    xs, ys = x[lo:hi], y[lo:hi]

    def step_single():
        if r == 0:
            opt1.zero_grad()
            nn.functional.cross_entropy(single(x), y).backward()
            opt1.step()

    def ddp_step(model, opt):
        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs), ys).backward()
            opt.step()
        return step
    ddp = DDP(mlp())
    views = DDP(mlp(), gradient_as_bucket_view=True)
    one = DDP(mlp(), bucket_cap_mb=1024)
    steps = {"single": step_single, "ddp": ddp_step(ddp, tl.optim.SGD(ddp.parameters(), lr=0.01)),
             "views": ddp_step(views, tl.optim.SGD(views.parameters(), lr=0.01)),
             "one bucket": ddp_step(one, tl.optim.SGD(one.parameters(), lr=0.01))}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for rep in range(-1, 3 if args.quick else 10):          # rep -1: warm-up, not kept
        for name, fn in steps.items():
            if name == "single":
                idle_barrier(comm)
            else:
                comm.Barrier()
            t = time.perf_counter()
            fn()
            if name == "single":
                idle_barrier(comm)       # the others wait for rank 0 without taking a core from it
            if rep >= 0:
                times[name].append(time.perf_counter() - t)
    t1, t2, t3, tv = (float(np.median(times[k])) for k in ("single", "ddp", "one bucket", "views"))
    say(f"one process: {t1 * 1e3:.1f} ms/step   DDP on {n} ranks: {t2 * 1e3:.1f} ms/step   ratio "
        f"{spread([b / a for a, b in zip(times['single'], times['ddp'])])} (median (range) over "
        f"{len(times['ddp'])} alternating pairs), best {best(times['ddp'], times['single'])}")
    say(f"DDP with gradient_as_bucket_view=True: {tv * 1e3:.1f} ms/step, ratio to one process "
        f"{spread([b / a for a, b in zip(times['single'], times['views'])])}, best "
        f"{best(times['views'], times['single'])}; to the default DDP "
        f"{spread([c / b for b, c in zip(times['ddp'], times['views'])])}")
    say(f"DDP with one bucket (no overlap with backward): {t3 * 1e3:.1f} ms/step, ratio to the default buckets "
        f"{spread([c / b for b, c in zip(times['ddp'], times['one bucket'])])}, best "
        f"{best(times['one bucket'], times['ddp'])}")
    # the bucket copies alone: every gradient divided into its slot, every average copied out
    grads = [p._data.copy() for p in ddp.parameters()]
    flat = np.empty(sum(g.size for g in grads), grads[0].dtype)
    offs = np.cumsum([0] + [g.size for g in grads]).tolist()

    def copies():
        for g, a, b in zip(grads, offs, offs[1:]):
            np.divide(g.reshape(-1), n, out=flat[a:b])
        for g, a, b in zip(grads, offs, offs[1:]):
            g.reshape(-1)[...] = flat[a:b]
    cp = float(np.median(timed_alternately([copies], 5, 1)[0]))
    say(f"bucket copies (in, divided, and out): {cp * 1e3:.1f} ms/step, {cp / t2:.0%} of the DDP step")
    phases(args, say, xs, ys)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--allreduce-only", action="store_true", help="part 1 only (no DDP step)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads in every process (default 1)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="part 1's clock: the thread's CPU time (default) or the wall clock")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    tl.set_num_threads(args.threads)
    dist.init_process_group("mpi")
    say = print if dist.get_rank() == 0 else (lambda *a, **k: None)
    say(f"world size {dist.get_world_size()}\n\n1. all_reduce (float32): ours (checked; unchecked: a group made "
        f"with TORCH_DISTRIBUTED_DEBUG=OFF) vs mpi4py Allreduce on the same buffer; ratio = raw / ours")
    part_allreduce(args, say)
    if not args.allreduce_only:
        part_ddp(args, say)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
