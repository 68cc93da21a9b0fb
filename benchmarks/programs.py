"""The real-program suite (tests/programs) timed per training step, tensorlib against torch in the same run.

Each program runs unchanged (only `import torch` answered by tensorlib) in a child process, 1 BLAS/OpenMP
thread each (threadpoolctl + torch.set_num_threads), tensorlib and torch runs alternating, `--repeat` runs per
backend and mode; a run's time per step is the best of its steps after the first two (warm-up), and a
configuration's figure is the best over its runs. Steps are timed with the child's CPU time (process_time),
so a shared machine's other load does not count; --wall-clock times them with perf_counter instead.
Without torch installed only tensorlib's columns are filled.

Table 1, per program: tensorlib's and torch's time per step and their ratio, and where tensorlib's step
goes, measured with our own profiler in one more run (profile="share": default options, and every
registered op's kernel wrapped in a timer, tests/programs/runner.py `time_kernels`), over the timed steps'
wall-clock window W (from the third step's end to the last one's, marked in the trace):
  kernel%    time inside op kernels (the NumPy/BLAS calls an op makes on arrays; a kernel calling another
             op's kernel counts once) / W;
  dispatch%  the ops' self time (profiler: op events' durations minus their child ops') minus the kernel
             time and minus the kernel timer's own cost (calibrated in the child), / W: the dispatcher's
             unwrap, promotion, wrap, autograd node creation, and the profiler's record per op;
  python%    the rest, 1 - op self time / W: everything outside ops (the autograd engine, nn.Module calls,
             the optimizer's loops, the program's own Python, the data loader), the Python overhead
             that is not per-op. "Python overhead" in all = dispatch% + python% = 100 - kernel%.
Table 2, per program and library (torch.profiler on torch): the profiled/unprofiled step ratio with default options
(`prof def`) and detailed ones (`prof det`: record_shapes=True, profile_memory=True, with_stack off), measured in
one process per run: the program runs --profile-steps steps (default 24) under the profiler, which records two
steps of every four (toggle_collection_dynamic at each step's end, torch's API in both libraries; in pairs, so that
a program whose steps alternate in kind, nanoGPT's micro-batches, has both kinds on each side), and the ratio is
the best recorded step over the best unrecorded one, so that the machine's speed, which moves between processes,
cancels (--separate-runs: profiled and unprofiled runs in separate processes, as before); events recorded per step
(ops and ranges, not memory records; counted in the same window), and the added cost per recorded event, (profiled
step - unprofiled step) / events per step, in µs, for default and detailed options; `µs/op def` is the default
options' added cost per op ("aten::" event).
Targets (issue 17): prof def <= 1.2x, µs/op def <= 0.5, tensorlib's µs/event det <= torch's.
`--all` times every program of tests/programs that runs to its end on torch (the default is the 10 above). A step
of the policy-gradient programs (reinforce, actor_critic) is an episode, whose length follows the actions sampled:
with each library drawing its own random numbers their episodes differ, and so do their best steps (actor_critic
read 2.13x with each library's own numbers, 1.27x with shared ones): `--rng shared` draws the programs' random
numbers from one NumPy stream in both (harness.run's rng="shared"), so that they take the same actions while their
probabilities agree. The default, `--rng auto`, does so for those programs (harness.EPISODE_STEPS, marked * in the
table) and lets the others draw their own. Their figures are per action (a step's time divided by its outermost module
calls, harness.run's count_calls), as are their events per step in Table 2: within one run their episodes still differ
in length, and the best recorded episode against the best unrecorded one compared unlike episodes (a reinforce run:
18 actions in 7.63 ms against 11 in 4.83 ms, 1.58x, where its best recorded and unrecorded actions were 415 and 361 µs,
1.15x).
Usage: python benchmarks/programs.py [--quick | --all] [--programs a,b] [--steps N] [--profile-steps N] [--repeat N]
       [--threads N] [--no-profile] [--wall-clock] [--rng auto|native|shared] [--separate-runs]
(--quick: word_lm_lstm, word_lm_transformer, makemore_gru, 6 steps (12 toggled), 1 run per cell: a few minutes.)
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
from tests.programs.runner import toggled_on  # noqa: E402

DEFAULT = ["mnist", "vae", "word_lm_lstm", "word_lm_gru", "word_lm_transformer", "nanogpt", "makemore_gru",
           "makemore_transformer", "makemore_mlp", "llama2c"]
QUICK = ["word_lm_lstm", "word_lm_transformer", "makemore_gru"]
MODES = (None, "default", "detailed")


def _mkl():
    """Whether the children's tensorlib runs its large GEMMs on MKL (tensorlib/_blas.py; they inherit
    TENSORLIB_BLAS)."""
    from tensorlib import _blas
    return _blas.gemms_on_mkl()


def rng_of(name, rng):
    """The random numbers program `name` runs with under --rng `rng` (auto: shared for episode programs)."""
    if rng != "auto":
        return rng
    return "shared" if name in harness.EPISODE_STEPS else "native"


def _rng_words(rng):
    if rng == "auto":
        return "native random numbers (* shared: steps are episodes of sampled actions; times per action)"
    return f"{rng} random numbers" + ("; episode programs' times per action" if rng == "shared" else "")


def step_times(result):
    """The run's step times, each per action where the run counted them (harness.run's count_calls: a step of an
    episode program divided by its outermost module calls, the episode's actions; a step without one left out)."""
    steps = result["step_s"]
    calls = result.get("calls_at_step")
    if calls is None:
        return list(enumerate(steps))
    return [(i, t / c) for i, (t, c) in enumerate(zip(steps, calls)) if c]


def per_step(result):
    steps = [t for i, t in step_times(result) if i >= 2] or [t for _, t in step_times(result)]
    if not steps:
        raise RuntimeError("the program recorded no training step")
    return min(steps)


def split_steps(result):
    """(best recorded step, best unrecorded step) of a toggled run (harness.run's toggle: steps recorded and not
    in pairs, runner.toggled_on), after its first two steps; per action where the run counted them (an episode
    program's steps differ in length: its best recorded and unrecorded episodes would not be alike)."""
    steps = step_times(result)
    on = [t for i, t in steps if i >= 2 and toggled_on(i)]
    off = [t for i, t in steps if i >= 2 and not toggled_on(i)]
    if not on or not off:
        raise RuntimeError("the toggled run recorded too few training steps")
    return min(on), min(off)


def per_action_counts(result, toggled):
    """A profiled run's events and ops per step (runner.step_events) made per action where the run counted its
    actions: over the steps step_events counts, the recorded ones from the fourth on (their ends are the
    window's markers, the first three's the warm-up), all from the fourth on in a run not toggled."""
    calls = result.get("calls_at_step")
    if calls is None or "events_per_step" not in result:
        return result
    rec = [i for i in range(len(calls)) if not toggled or toggled_on(i)][3:]
    n = sum(calls[i] for i in rec)
    if not n:
        return result
    return dict(result, events_per_step=result["events_per_step"] * len(rec) / n,
                ops_per_step=result["ops_per_step"] * len(rec) / n)


def measure(name, backends, steps, repeat, threads, modes, tmp, clock, share, rng="native", separate=False,
            profile_steps=None):
    """{(backend, mode): best step s}, {(backend, mode): the run's result (counts)}, the share run's result.
    Profiled modes: unless `separate`, one run of `profile_steps` (default 2 x steps) per backend, mode and
    repeat, its steps recorded and not recorded in turn; best[backend, (mode, "off")] is then its best
    unrecorded step, the baseline of its profiled/unprofiled ratio. (Eight steps gave too few: makemore_rnn's
    default-options ratio read 1.26x over 3 runs of 16 toggled steps, 1.11x over 3 runs of 48.)"""
    profile_steps = profile_steps or 2 * steps
    best = {(b, m): float("inf") for b in backends for m in modes}
    counts = {}
    for r in range(repeat):
        for m in modes:
            order = backends if r % 2 == 0 else backends[::-1]
            toggled = bool(m) and not separate
            for b in order:
                work = os.path.join(tmp, f"{name}-{b}-{m}-{r}")
                res = harness.run(name, b, work, profile_steps if toggled else steps, threads=threads, profile=m,
                                  clock=clock, rng=rng, toggle=toggled, count_calls=name in harness.EPISODE_STEPS)
                if toggled:
                    on, off = split_steps(res)
                    best[b, m] = min(best[b, m], on)
                    best[b, (m, "off")] = min(best.get((b, (m, "off")), float("inf")), off)
                else:
                    best[b, m] = min(best[b, m], per_step(res))
                if m and "events_per_step" in res:
                    counts[b, m] = per_action_counts(res, toggled)
    share_res = None
    if share:
        share_res = harness.run(name, "tensorlib", os.path.join(tmp, f"{name}-share"), steps, threads=threads,
                                profile="share", clock=clock, rng=rng)
    return best, counts, share_res


def shares(res):
    """(kernel%, dispatch%, python%) from a share run (see the module docstring)."""
    if not res or "kernel_ns_per_step" not in res:
        return None
    w = res["window_ns_per_step"]
    k = res["kernel_ns_per_step"]
    op = res["op_self_ns_per_step"] - res["timing_ns_per_step"]
    return 100 * k / w, 100 * max(op - k, 0) / w, 100 * max(w - op, 0) / w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default=None,
                    help=f"comma-separated names out of: {', '.join(harness.PROGRAMS)}")
    ap.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)}; 6 steps, 1 run per cell")
    ap.add_argument("--all", action="store_true", help="every program of tests/programs")
    ap.add_argument("--rng", choices=("auto", "native", "shared"), default="auto",
                    help="each library's own random numbers, or one NumPy stream for both; auto: shared for the "
                         "programs whose steps are episodes of sampled actions (see above)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default 8, --quick 6)")
    ap.add_argument("--profile-steps", type=int, default=None,
                    help="steps of a toggled profiled run, half of them recorded (default 24, --quick 12)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per backend and mode (default 2, --quick 1)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads per run (default 1)")
    ap.add_argument("--no-profile", action="store_true", help="time unprofiled steps only")
    ap.add_argument("--wall-clock", action="store_true", help="time steps by the wall clock, not CPU time")
    ap.add_argument("--separate-runs", action="store_true",
                    help="profiled/unprofiled ratios from separate processes (before session 13's default: "
                         "recorded and unrecorded steps alternating in one process)")
    args = ap.parse_args(argv)
    if args.all and (args.quick or args.programs):
        ap.error("--all takes every program: no --quick or --programs with it")
    # (--all: not the programs that stop with an error on torch too, harness.FAILS_ON_TORCH: no step to time)
    default = [n for n in harness.PROGRAMS if n not in harness.FAILS_ON_TORCH] if args.all else \
        QUICK if args.quick else DEFAULT
    names = [n for n in (args.programs or ",".join(default)).split(",") if n]
    steps = args.steps or (6 if args.quick else 8)
    repeat = args.repeat or (1 if args.quick else 2)
    profile_steps = args.profile_steps or (12 if args.quick else 24)
    unknown = [n for n in names if n not in harness.PROGRAMS]
    if unknown:
        ap.error(f"unknown program {', '.join(unknown)}; choose from {', '.join(harness.PROGRAMS)}")
    if steps < 4 or profile_steps < 8 or repeat < 1 or args.threads < 1:
        ap.error("--steps must be >= 4, --profile-steps >= 8, --repeat and --threads >= 1")
    backends = ["tensorlib"] + (["torch"] if importlib.util.find_spec("torch") else [])
    modes = MODES[:1] if args.no_profile else MODES
    print(f"{args.threads} thread(s), {'wall' if args.wall_clock else 'CPU'} time, {steps} steps per run "
          f"({profile_steps} in a toggled profiled run), "
          f"best step of {repeat} run(s) per cell, {_rng_words(args.rng)}, tensorlib's large GEMMs on "
          f"{'MKL' if _mkl() else 'NumPy BLAS'} (TENSORLIB_BLAS={os.environ.get('TENSORLIB_BLAS', '')!r})")
    ratios = []
    rows2 = []
    print(f"\n{'program':22} {'tl ms':>8} {'torch ms':>9} {'ratio':>6} {'kernel%':>8} {'dispatch%':>9} {'python%':>8}")
    with tempfile.TemporaryDirectory(prefix="tl-programs-") as tmp:
        for name in names:
            best, counts, share_res = measure(name, backends, steps, repeat, args.threads, modes, tmp,
                                              "wall" if args.wall_clock else "cpu", not args.no_profile,
                                              rng_of(name, args.rng), args.separate_runs, profile_steps)
            tl = best["tensorlib", None]
            th = best.get(("torch", None))
            label = name + ("*" if args.rng == "auto" and rng_of(name, "auto") == "shared" else "")
            line = f"{label:22} {tl * 1e3:8.2f} " + (f"{th * 1e3:9.2f} {tl / th:5.2f}x" if th else f"{'-':>9} {'-':>6}")
            if th:
                ratios.append(tl / th)
            sh = shares(share_res)
            line += f" {sh[0]:7.1f}% {sh[1]:8.1f}% {sh[2]:7.1f}%" if sh else f" {'-':>8} {'-':>9} {'-':>8}"
            print(line, flush=True)
            if len(modes) > 1:
                rows2.append((name, best, counts))
    if ratios:
        ratios.sort()
        mid = len(ratios) // 2
        median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        print(f"median tensorlib/torch {median:.2f}x, max {ratios[-1]:.2f}x (targets <= 1.3x, <= 2x)")
    if not rows2:
        return
    print("\nprofiled / unprofiled step, events per step, added µs per recorded event (and per op, default)")
    print(f"{'program':22} {'library':9} {'prof def':>8} {'prof det':>8} {'events':>7} {'µs/ev def':>9} "
          f"{'µs/ev det':>9} {'µs/op def':>9}")
    for name, best, counts in rows2:
        for b in backends:
            base = {m: best.get((b, (m, "off")), best[b, None]) for m in modes[1:]}    # (separate runs: None's)
            line = f"{name:22} {b:9}"
            for m in modes[1:]:
                line += f" {best[b, m] / base[m]:7.2f}x"
            ev = counts.get((b, "default"), {})
            n_ev, n_op = ev.get("events_per_step"), ev.get("ops_per_step")
            line += f" {n_ev:7.0f}" if n_ev else f" {'-':>7}"
            for m in modes[1:]:
                c = counts.get((b, m), {}).get("events_per_step")
                line += f" {(best[b, m] - base[m]) / c * 1e6:+9.2f}" if c else f" {'-':>9}"
            line += f" {(best[b, 'default'] - base['default']) / n_op * 1e6:+9.2f}" if n_op else f" {'-':>9}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
