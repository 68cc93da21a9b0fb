"""One training step of an MLP: tensorlib (autograd + optim.SGD) against the same step written by hand in
NumPy (CuPy on the GPU) and against torch when it is installed, all measured in this run.

    python benchmarks/training_step.py [--device cpu|cuda] [--steps N] [--threads N] [--cpu-time] [--profile]
                                      [--mirror] [--block N]

Configurations: batch 64, 784-256-256-10 ("small") and batch 512, 784-4096-4096-10 ("large"); float32;
loss = cross-entropy (log-softmax + NLL composed from core ops); plain SGD (lr 0.01).
Targets (issue 17): tensorlib <= 1.1x the handwritten step, both configurations.
The time is the median over --steps steps after warm-up, the variants (torch included) taking turns (so a busy
machine slows them alike) of --block steps each (default 10), the first of each turn untimed: the timed steps
find the caches as their own previous step left them, as in a training loop, not as another library's step
did (one step per turn, --block 1, cost the variant with the larger working set up to 0.1x of the ratio
here); on CUDA each step ends with a synchronize. --threads (default 1)
sizes the BLAS/OpenMP pools (threadpoolctl) and torch's intra-op pool alike; --cpu-time times each step with
this thread's CPU clock (time.thread_time), so time spent descheduled on a shared machine does not count
(CPU only, and only meaningful with --threads 1).
--profile prints cProfile's top functions for the tensorlib step of each configuration (where the
framework's own time goes). --mirror (CPU) also times tensorlib's own NumPy calls without the framework
(make_mirror), which splits tensorlib's time into array work and framework cost.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorlib as tl
from tensorlib import optim
from tensorlib import _blas
import tensorlib.nn.functional as F

THREADS = 1
CLOCK = time.perf_counter
CONFIGS = {"small": (64, [784, 256, 256, 10]), "large": (512, [784, 4096, 4096, 10])}
LR = 0.01


def init_params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


def batch(n, sizes, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], n)


# --- handwritten (NumPy or CuPy) -------------------------------------------------------------------

def make_handwritten(xp, params, x, y):
    ps = [xp.asarray(p) for p in params]
    x = xp.asarray(x)
    y = xp.asarray(y)
    rows = xp.arange(x.shape[0])
    n = x.shape[0]

    def step():
        acts, pre = [x], []
        h = x
        for i in range(0, len(ps), 2):
            z = h @ ps[i].T + ps[i + 1]
            pre.append(z)
            h = xp.maximum(z, 0) if i + 2 < len(ps) else z
            acts.append(h)
        z = acts[-1]
        m = z.max(axis=1, keepdims=True)
        e = xp.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        logp = z - m - xp.log(s)
        loss = -logp[rows, y].mean()
        g = e / s
        g[rows, y] -= 1
        g /= n
        for li in range(len(ps) // 2 - 1, -1, -1):
            w = ps[2 * li]
            gw = g.T @ acts[li]
            gb = g.sum(axis=0)
            if li > 0:
                g = (g @ w) * (pre[li - 1] > 0)
            w -= LR * gw
            ps[2 * li + 1] -= LR * gb
        return loss
    return step


def make_mirror(params, x, y):
    """--mirror: the NumPy calls tensorlib's step makes (its kernels' and quiet backward formulas'), in its
    order, without the framework: log_softmax and nll_loss's kernels, the seed, nll_loss_backward's zeroed
    buffer, log_softmax's backward, per layer the bias sum and the products, threshold_backward, then the
    optimizer's loop. Its time against the handwritten step is the array work's; tensorlib's against it,
    the framework's own (Python) cost."""
    ps = [p.copy() for p in params]
    n = x.shape[0]
    grads = [None] * len(ps)

    def step():
        grads[:] = [None] * len(ps)                               # zero_grad(set_to_none=True)
        saved = []
        h = x
        for i in range(0, len(ps), 2):
            wt = ps[i].T
            saved.append((h, wt))
            z = np.matmul(h, wt) + ps[i + 1]
            h = np.maximum(z, 0) if i + 2 < len(ps) else z
        s = h - np.maximum.reduce(h, 1, keepdims=True)            # log_softmax
        lp = s - np.log(np.add.reduce(np.exp(s), 1, keepdims=True))
        int(np.maximum.reduce(y.view(np.uint64)))                 # nll_loss: the target check, rows
        loss = np.add.reduce(-lp[np.arange(n), y]) / np.float32(n)
        g = np.ones(loss.shape, loss.dtype)                       # backward: the seed
        int(np.maximum.reduce(y.view(np.uint64)))
        gz = np.zeros(lp.shape, lp.dtype)
        gz[np.arange(n), y] = -(g / np.float32(n))
        g = gz - np.exp(lp) * np.add.reduce(gz, 1, keepdims=True)
        for li in range(len(ps) // 2 - 1, -1, -1):
            hin, wt = saved[li]
            grads[2 * li + 1] = np.add.reduce(g, 0)
            grads[2 * li] = np.matmul(g.T, hin)
            if li > 0:
                out = np.empty_like(hin)
                np.greater(hin, 0, out=out)
                g = np.multiply(out, np.matmul(g, wt.T), out=out)
        for p, gr in zip(ps, grads):                              # SGD's multi-tensor update
            p += gr * -LR
        return loss
    return step


# --- tensorlib ---------------------------------------------------------------------------------

def make_tensorlib(params, x, y, device):
    ps = [tl.tensor(p, device=device, requires_grad=True) for p in params]
    x = tl.tensor(x, device=device)
    y = tl.tensor(y, device=device).reshape(-1, 1)
    opt = optim.SGD(ps, lr=LR)

    yf = y.reshape(-1)

    def step():          # what a user writes: nn.functional.linear / relu / cross_entropy, optim.SGD
        h = x
        for i in range(0, len(ps), 2):
            h = F.linear(h, ps[i], ps[i + 1])
            if i + 2 < len(ps):
                h = h.relu()
        loss = F.cross_entropy(h, yf)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


# --- torch -------------------------------------------------------------------------------------

def make_torch(params, x, y, device):
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.set_num_threads(THREADS)
    ps = [torch.tensor(p, device=device, requires_grad=True) for p in params]
    x = torch.tensor(x, device=device)
    y = torch.tensor(y, device=device)
    opt = torch.optim.SGD(ps, lr=LR)

    def step():
        h = x
        for i in range(0, len(ps), 2):
            h = torch.nn.functional.linear(h, ps[i], ps[i + 1])
            if i + 2 < len(ps):
                h = h.relu()
        loss = torch.nn.functional.cross_entropy(h, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def timeit_interleaved(steps_by_name, n, syncs, block=1):
    """Time the variants in turns, n timed steps each: per turn a variant runs `block` steps in a row, the first
    of them untimed when block > 1 (it finds the caches as the variant before left them; the others find them
    as the same program's previous step left them, as in a training loop of one library), the order of the
    variants rotated every turn, so that a busy or throttled machine slows them alike; returns
    {name: (median, min)} in seconds."""
    for name, step in steps_by_name.items():
        for _ in range(2):
            step()
        syncs[name]()
    times = {name: [] for name in steps_by_name}
    names = list(steps_by_name)
    timed = block - 1 if block > 1 else 1
    for r in range(-(-n // timed)):
        # each turn starts at the next variant, so that none always runs after the same one
        for name in names[r % len(names):] + names[:r % len(names)]:
            step = steps_by_name[name]
            if block > 1:
                step()
                syncs[name]()
            for _ in range(timed):
                t0 = CLOCK()
                step()
                syncs[name]()
                times[name].append(CLOCK() - t0)
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=0, help="timed steps per configuration (default: 30 small, 8 large)")
    ap.add_argument("--configs", default="small,large")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads (default 1)")
    ap.add_argument("--cpu-time", action="store_true", help="time with the thread's CPU clock (CPU, 1 thread)")
    ap.add_argument("--block", type=int, default=10,
                    help="steps each variant runs per turn, the first untimed (default 10; 1: one timed step per "
                         "turn, each step after another variant's)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--mirror", action="store_true",
                    help="also time tensorlib's NumPy calls without the framework (CPU)")
    args = ap.parse_args(argv)
    global THREADS, CLOCK
    THREADS = args.threads
    if args.cpu_time:
        CLOCK = time.thread_time
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=THREADS)
    except ImportError:
        print("threadpoolctl is not installed: BLAS threads left as they are")
    if args.device == "cuda":
        if not tl.cuda.is_available():
            print("CUDA is not available here; run with --device cpu")
            return 1
        import cupy as xp
        sync = xp.cuda.Device().synchronize
        hand_name = "CuPy (handwritten)"
    else:
        xp = np
        sync = lambda: None  # noqa: E731
        hand_name = "NumPy (handwritten)"
    rows = []
    for name in args.configs.split(","):
        n, sizes = CONFIGS[name]
        steps = args.steps or (30 if name == "small" else 8)
        params = init_params(sizes)
        x, y = batch(n, sizes)
        hand = make_handwritten(xp, params, x, y)
        ours = make_tensorlib(params, x, y, args.device)
        l_hand, l_ours = float(hand()), float(ours().item())
        if abs(l_hand - l_ours) > 1e-4 * max(1.0, abs(l_hand)):
            print(f"warning: first-step losses differ: handwritten {l_hand} vs tensorlib {l_ours}")
        variants = {"hand": hand, "ours": ours}
        syncs = {"hand": sync, "ours": sync}
        if args.mirror and args.device == "cpu":
            variants["mirror"] = make_mirror(params, x, y)
            syncs["mirror"] = sync
        th = make_torch(params, x, y, args.device)
        if th is not None and THREADS == 1:   # interleaved: one thread, so no OpenMP pool spins after an op
            variants["torch"] = th
            syncs["torch"] = sync if args.device == "cpu" else __import__("torch").cuda.synchronize
        t = timeit_interleaved(variants, steps, syncs, args.block)
        t_hand, t_ours, t_torch = t["hand"], t["ours"], t.get("torch")
        if th is not None and t_torch is None:   # on its own: torch's OpenMP threads spin after each op
            tsync = sync if args.device == "cpu" else __import__("torch").cuda.synchronize
            t_torch = timeit_interleaved({"torch": th}, steps, {"torch": tsync}, args.block)["torch"]
        rows.append((name, n, sizes, t_hand, t_ours, t_torch))
        if "mirror" in t:
            tm = t["mirror"][0]
            print(f"{name}: mirror (tensorlib's NumPy calls alone) {tm * 1e3:.2f} ms = {tm / t_hand[0]:.2f}x hand; "
                  f"tensorlib = {t_ours[0] / tm:.2f}x mirror (framework: {(t_ours[0] - tm) * 1e6:.0f} us per step)")
        if args.profile:
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(steps):
                ours()
            sync()
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(30)
            print(f"--- cProfile, tensorlib step, {name} ({steps} steps), by own time ---")
            print("\n".join(s.getvalue().splitlines()[:60]))
    target = {"small": 1.1, "large": 1.1}
    clock = "thread CPU time" if args.cpu_time else "wall clock"
    print(f"\ntraining step, {args.device}, {THREADS} thread(s), {clock}, median of timed steps (min in brackets); "
          f"tensorlib's large CPU GEMMs on {'MKL' if _blas.gemms_on_mkl() else 'NumPy BLAS'}")
    print(f"{'config':<7} {'shape':<24} {hand_name:>22} {'tensorlib':>18} {'torch':>18} "
          f"{'tl/hand':>8} {'target':>7} {'torch/hand':>10}")
    for name, n, sizes, th, to, tt in rows:
        shape = f"{n}x" + "-".join(map(str, sizes))
        tts = f"{tt[0] * 1e3:8.2f} ({tt[1] * 1e3:7.2f})" if tt else f"{'n/a':>18}"
        ratio_t = f"{tt[0] / th[0]:10.2f}" if tt else f"{'n/a':>10}"
        ok = "ok" if to[0] / th[0] <= target[name] else "MISSED"
        print(f"{name:<7} {shape:<24} {th[0] * 1e3:10.2f} ({th[1] * 1e3:8.2f}) {to[0] * 1e3:8.2f} ({to[1] * 1e3:7.2f}) "
              f"{tts} {to[0] / th[0]:8.2f} {target[name]:>5.1f}x {ratio_t}  {ok}")
    print("times in ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
