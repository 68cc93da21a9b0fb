"""What each part of a detailed profile adds per recorded event, in one process, step by step.

Per round every configuration registers its recorder (as profiler.profile does), runs one training step of
a profiler_models.py model (its thread CPU time) and unregisters, configurations interleaved (their order
reversed every other round), so that the machine's load moves all of them alike. Configurations: `none`
(unprofiled), `default`, `shapes` (record_shapes), `memory` (profile_memory), `detailed` (both); a `+old`
suffix takes the recorder's `op_arrays` away (tensorlib.Hook.op_arrays), so the engine dispatches its
backward formulas under those options, as before the detailed options kept the sink formulas. Prints per
configuration, in µs per recorded event over `none`, the difference of the best steps and the median of the
per-round differences.
Usage: python benchmarks/profiler_parts.py [--model mlp|transformer|gru] [--rounds N] [--configs a,b,...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorlib as tl  # noqa: E402
from tensorlib import dispatch  # noqa: E402
from profiler.memory_record import MemoryRecorder  # noqa: E402
from profiler.recorder import Recorder  # noqa: E402
from profiler_models import make  # noqa: E402

OPTIONS = {"default": (False, False), "shapes": (True, False), "memory": (False, True), "detailed": (True, True)}


def start(config):
    """Register the configuration's recorder (None for `none`): (recorder, memory recorder)."""
    name, _, old = config.partition("+")
    if name == "none":
        return None
    if name not in OPTIONS or old not in ("", "old"):
        raise SystemExit(f"unknown configuration {config!r}: none, {', '.join(OPTIONS)}, each optionally +old")
    shapes, memory = OPTIONS[name]
    mem = MemoryRecorder() if memory else None
    rec = Recorder(record_shapes=shapes, profile_memory=memory, memory=mem)
    if old:
        rec.op_arrays = None
    rec.active = True
    if mem is not None:
        mem.active = True       # (not mem.start(): its count of the bytes alive walks every object)
    dispatch.add_hook(rec)
    if rec.uses_sink:
        dispatch.set_op_sink(rec)
    return rec, mem


def stop(state) -> int:
    """Unregister; the records kept."""
    if state is None:
        return 0
    rec, mem = state
    if rec.uses_sink:
        dispatch.set_op_sink(None)
    dispatch.remove_hook(rec)
    if mem is not None:
        mem.stop()
    return rec.total_records()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--configs", default="none,default,shapes,memory,detailed,detailed+old")
    a = ap.parse_args()
    configs = a.configs.split(",")
    if configs[0] != "none":
        configs.insert(0, "none")
    tl.set_num_threads(1)
    step = make(a.model)
    for _ in range(3):
        step()
    times: dict[str, list[int]] = {c: [] for c in configs}
    events = 0
    for r in range(a.rounds):
        for c in configs if r % 2 == 0 else configs[::-1]:
            state = start(c)
            t0 = time.thread_time_ns()
            step()
            times[c].append(time.thread_time_ns() - t0)
            events = max(events, stop(state))
    base = times["none"]
    print(f"{a.model}: {events} events per step; unprofiled step best {min(base) / 1e3:.1f} µs, "
          f"median {statistics.median(base) / 1e3:.1f} µs ({a.rounds} rounds)")
    for c in configs[1:]:
        diff = statistics.median([x - y for x, y in zip(times[c], base)])
        print(f"  {c:14} best {(min(times[c]) - min(base)) / events / 1e3:+6.2f}  "
              f"median of differences {diff / events / 1e3:+6.2f} µs/event")


if __name__ == "__main__":
    main()
