"""The real-program suite (tests/programs) timed per training step, tensorlib against torch in the same run.

Each program runs unchanged (only `import torch` answered by tensorlib) in a child process, 1 BLAS/OpenMP
thread each (threadpoolctl + torch.set_num_threads), tensorlib and torch runs alternating, `--repeat` runs per
backend and mode; a run's time per step is the best of its steps after the first two (warm-up), and a
configuration's figure is the best over its runs. Printed per program: tensorlib/torch per step, and for each
library the profiled/unprofiled step ratio under torch.profiler.profile with default options and with
detailed ones (record_shapes=True, profile_memory=True). Without torch installed only tensorlib's columns are
filled. Steps are timed with the child's CPU time (process_time), so a shared machine's other load does not
count; --wall-clock times them with perf_counter instead.
Usage: python benchmarks/programs.py [--programs a,b] [--steps N] [--repeat N] [--threads N] [--no-profile]
       [--wall-clock]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.programs import harness  # noqa: E402

DEFAULT = ["mnist", "vae", "word_lm_lstm", "word_lm_gru", "word_lm_transformer", "nanogpt", "makemore_gru",
           "makemore_transformer", "makemore_mlp"]
MODES = (None, "default", "detailed")


def per_step(result):
    steps = result["step_s"][2:] or result["step_s"]
    if not steps:
        raise RuntimeError("the program recorded no training step")
    return min(steps)


def measure(name, backends, steps, repeat, threads, modes, tmp, clock):
    best = {(b, m): float("inf") for b in backends for m in modes}
    for r in range(repeat):
        for m in modes:
            order = backends if r % 2 == 0 else backends[::-1]
            for b in order:
                work = os.path.join(tmp, f"{name}-{b}-{m}-{r}")
                res = harness.run(name, b, work, steps, threads=threads, profile=m, clock=clock)
                best[b, m] = min(best[b, m], per_step(res))
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default=",".join(DEFAULT),
                    help=f"comma-separated names out of: {', '.join(harness.PROGRAMS)}")
    ap.add_argument("--steps", type=int, default=8, help="training steps per run (default 8)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend and mode (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads per run (default 1)")
    ap.add_argument("--no-profile", action="store_true", help="time unprofiled steps only")
    ap.add_argument("--wall-clock", action="store_true", help="time steps by the wall clock, not CPU time")
    args = ap.parse_args(argv)
    names = [n for n in args.programs.split(",") if n]
    unknown = [n for n in names if n not in harness.PROGRAMS]
    if unknown:
        ap.error(f"unknown program {', '.join(unknown)}; choose from {', '.join(harness.PROGRAMS)}")
    if args.steps < 3 or args.repeat < 1 or args.threads < 1:
        ap.error("--steps must be >= 3, --repeat and --threads >= 1")
    backends = ["tensorlib"] + (["torch"] if importlib.util.find_spec("torch") else [])
    modes = MODES[:1] if args.no_profile else MODES
    print(f"{args.threads} thread(s), {'wall' if args.wall_clock else 'CPU'} time, {args.steps} steps per run, "
          f"best step of {args.repeat} run(s) per cell; "
          "prof = profiled step / unprofiled step")
    head = f"{'program':24} {'tl ms':>8} {'torch ms':>9} {'ratio':>6}"
    if len(modes) > 1:
        head += f" {'tl def':>7} {'tl det':>7} {'th def':>7} {'th det':>7}"
    print(head)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="tl-programs-") as tmp:
        for name in names:
            best = measure(name, backends, args.steps, args.repeat, args.threads, modes, tmp,
                           "wall" if args.wall_clock else "cpu")
            tl = best["tensorlib", None]
            th = best.get(("torch", None))
            line = f"{name:24} {tl * 1e3:8.2f} " + (f"{th * 1e3:9.2f} {tl / th:5.2f}x" if th else f"{'-':>9} {'-':>6}")
            if th:
                ratios.append(tl / th)
            if len(modes) > 1:
                for b in ("tensorlib", "torch"):
                    for m in modes[1:]:
                        v = best.get((b, m))
                        line += f" {v / best[b, None]:6.2f}x" if v else f" {'-':>7}"
            print(line, flush=True)
    if ratios:
        ratios.sort()
        mid = len(ratios) // 2
        median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        print(f"median tensorlib/torch {median:.2f}x, max {ratios[-1]:.2f}x (targets <= 1.3x, <= 2x)")


if __name__ == "__main__":
    main()
