"""The profiler's observer effect counted in Python bytecodes: deterministic, unlike the machine's time.

Timed figures on this project's shared 2-core machine move by 20-50% between processes and phases (see
README.md), which hides a change of a few percent in the profiler's per-event cost. The bytecodes a training
step executes (sys.settrace's opcode events, counted per function) do not move: run this before and after a
change to the dispatcher, the recorder or the engine's recorded paths and compare. A bytecode is not a unit of
time (a call or an allocation costs more than a load), so confirm a change's effect on time with
profiler_models.py; this tells where the added bytecodes are and whether a change removed them.

Per model of profiler_models.py (the same steps): bytecodes per step unprofiled and under the default and
detailed (record_shapes + profile_memory) options, events per step, bytecodes added per event, and the
functions that add the most (--top N). The first profiled steps of a profile build its per-signature caches,
so each mode runs --warm steps before the counted ones.
Usage: python benchmarks/profiler_bytecodes.py [--models mlp,transformer,gru] [--top N] [--steps N] [--warm N]
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import profiler  # noqa: E402
import profiler_models  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def count(step, kw, steps, warm):
    """(bytecodes per step by (file, line, function), events per step) for `steps` steps after `warm` ones."""
    counts: collections.Counter = collections.Counter()

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode":
            co = frame.f_code
            counts[(co.co_filename, co.co_firstlineno, co.co_name)] += 1
        return tracer

    with profiler.profile(**kw) if kw is not None else contextlib.nullcontext() as prof:
        for _ in range(warm):
            step()
        before = len(prof.store) if prof is not None else 0
        sys.settrace(tracer)
        try:
            for _ in range(steps):
                step()
        finally:
            sys.settrace(None)
        events = (len(prof.store) - before) / steps if prof is not None else 0
    return {k: v / steps for k, v in counts.items()}, events


def _where(key):
    f, line, name = key
    return f"{f[len(ROOT):] if f.startswith(ROOT) else os.path.basename(f)}:{line} {name}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,transformer,gru")
    ap.add_argument("--top", type=int, default=8, help="functions adding the most bytecodes, per model and mode")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warm", type=int, default=2)
    a = ap.parse_args()
    modes = {"default": {}, "detailed": {"record_shapes": True, "profile_memory": True}}
    print(f"{'model':12} {'none/step':>10} {'mode':>9} {'/step':>8} {'events':>7} {'added/event':>12}")
    for name in a.models.split(","):
        step = profiler_models.make(name)
        for _ in range(3):
            step()
        base, _ = count(step, None, a.steps, 0)
        total = sum(base.values())
        for mode, kw in modes.items():
            got, events = count(step, kw, a.steps, a.warm)
            added = sum(got.values()) - total
            print(f"{name:12} {total:10.0f} {mode:>9} {sum(got.values()):8.0f} {events:7.0f} "
                  f"{added / events:+12.1f}", flush=True)
            diff = sorted(((got.get(k, 0) - base.get(k, 0), k) for k in set(got) | set(base)), key=lambda r: -abs(r[0]))
            for d, k in diff[:a.top]:
                print(f"{'':12} {d / events:+10.1f} per event  {_where(k)}")


if __name__ == "__main__":
    main()
