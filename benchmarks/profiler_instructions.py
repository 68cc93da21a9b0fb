"""The profiler's observer effect counted in machine instructions (valgrind's callgrind): deterministic.

Timed figures on this project's shared 2-core machine move by 5-15% between runs of one program, more than most
changes to the recording path are worth; bytecode counts (profiler_bytecodes.py) miss what C code does. Under
callgrind, with address-space randomisation off (`setarch -R`), a fixed hash seed and one BLAS thread, a training
step executes the same instructions to within a few thousand in every run: run this before and after a change to
the dispatcher, the recorder or the engine's recorded paths and compare the added instructions per step and per
event (confirm the time with profiler_models.py or programs.py).

Per model of profiler_models.py (the same steps; Adam with foreach=False), and word_lm_transformer (that program's
model and step, with AdamW and clip_grad_norm_: word_lm_step): instructions per step unprofiled and
under the default and detailed (record_shapes + profile_memory) options, their ratio, events per step and added
instructions per event. Only the counted steps are measured (callgrind collects inside one C function that runs
them, itertools.starmap's next: imports, the warm-up steps and the profile's post-processing are left out); a
step's count is the difference of two runs, of --steps and 2 x --steps steps, so what the first counted step
does once (caches filled) cancels out. Needs `valgrind` (apt install valgrind); about a minute per model and
mode (the two runs side by side).
Usage: python benchmarks/profiler_instructions.py [--models mlp,transformer,gru,word_lm_transformer] [--steps N]
       [--modes default,...]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODES = {"none": None, "default": {}, "detailed": {"record_shapes": True, "profile_memory": True}}


def word_lm_step():
    """word_language_model's Transformer (tests/programs/vendor, its own source, `torch` resolving to tensorlib in
    this child) in a training step as that program's with AdamW: forward, NLLLoss, backward, clip_grad_norm_(0.25),
    the optimizer's step; a small configuration, so that what a profile adds is most of the difference."""
    import importlib
    import tensorlib
    sys.modules["torch"] = tensorlib
    for sub in ("nn", "nn.functional", "optim", "utils", "utils.data"):
        sys.modules["torch." + sub] = importlib.import_module("tensorlib." + sub)
    sys.path.insert(0, os.path.join(ROOT, "tests", "programs", "vendor", "word_language_model"))
    from model import TransformerModel      # (the vendored program's module)
    tensorlib.manual_seed(0)
    model = TransformerModel(24, 16, 2, 16, 2, 0.0)
    opt = tensorlib.optim.AdamW(model.parameters(), lr=0.003)
    crit = tensorlib.nn.NLLLoss()
    data, target = tensorlib.randint(0, 24, (8, 4)), tensorlib.randint(0, 24, (32,))

    def step():
        opt.zero_grad()
        crit(model(data).view(-1, 24), target).backward()
        tensorlib.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    return step


def child(model, mode, steps, warm):
    """Run in the child under callgrind: `warm` steps, then a profile in `mode` and `steps` counted steps."""
    import collections
    import itertools
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    import profiler
    import profiler_models
    step = word_lm_step() if model == "word_lm_transformer" else profiler_models.make(model)
    for _ in range(warm):
        step()
    kw = MODES[mode]
    prof = profiler.profile(**kw) if kw is not None else None
    if prof is not None:
        prof.start()
        for _ in range(warm):       # (the profile's own first-use costs: its signature caches, a new thread buffer)
            step()
        before = prof._recorder.total_records()
    collections.deque(itertools.starmap(step, itertools.repeat((), steps)), maxlen=0)     # the counted steps
    events = prof._recorder.total_records() - before if prof is not None else 0
    print(f"EVENTS {events}", flush=True)
    os._exit(0)      # (no post-processing: nothing after the counted steps matters)


def start(model, mode, steps, warm):
    """A child run under callgrind of `steps` counted steps (a Popen; `collect` reads it)."""
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT, HERE]))
    cmd = ["setarch", "-R", "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=starmap_next",
           "--callgrind-out-file=/dev/null", sys.executable, os.path.abspath(__file__), "--child", model, mode,
           str(steps), str(warm)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(p, what):
    """(instructions, events) of a child run."""
    out, err = p.communicate(timeout=1800)
    ir = re.search(r"Collected : (\d+)", err)
    ev = re.search(r"EVENTS (\d+)", out)
    if p.returncode != 0 or ir is None or ev is None:
        raise RuntimeError(f"{what} under callgrind failed ({p.returncode}):\n{out[-2000:]}\n{err[-3000:]}")
    return int(ir.group(1)), int(ev.group(1))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mlp,transformer,gru")
    ap.add_argument("--modes", default="default,detailed", help="profiled modes, compared with unprofiled steps")
    ap.add_argument("--steps", type=int, default=4, help="counted steps of the shorter run (the longer: twice)")
    ap.add_argument("--warm", type=int, default=3, help="steps before the counted ones (and again once profiled)")
    args = ap.parse_args()
    missing = [t for t in ("valgrind", "setarch") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"profiler_instructions.py needs {' and '.join(missing)} on PATH "
                         "(Debian: apt install valgrind util-linux)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES or m == "none":
            raise SystemExit(f"unknown profiled mode {m!r}: default or detailed")
    n = args.steps
    print(f"instructions per training step (callgrind; the difference of {n}- and {2 * n}-step runs)")
    print(f"{'model':20s} {'mode':9s} {'Mi/step':>9s} {'ratio':>7s} {'events':>7s} {'added i/event':>14s}")
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        per = {}
        for mode in ["none", *modes]:      # (the two runs side by side: they take a core each)
            runs = [start(model, mode, k, args.warm) for k in (n, 2 * n)]
            (a, ea), (b, eb) = (collect(p, f"{model}/{mode}") for p in runs)
            per[mode] = ((b - a) / n, (eb - ea) / n)
        base = per["none"][0]
        print(f"{model:20s} {'none':9s} {base / 1e6:9.3f} {'':>7s} {'':>7s} {'':>14s}")
        for mode in modes:
            ir, ev = per[mode]
            added = f"{(ir - base) / ev:14.0f}" if ev else f"{'-':>14s}"
            print(f"{model:20s} {mode:9s} {ir / 1e6:9.3f} {ir / base:6.3f}x {ev:7.0f} {added}")


if __name__ == "__main__":
    main()
