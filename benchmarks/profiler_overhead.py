"""Profiler overhead, measured against baselines taken in the same run (best of --repeat).

1. In-loop cost per op over the unprofiled op, for a tiny-op loop (``t = t + 1`` on a 1-element tensor),
   per option: default, record_shapes, profile_memory, with_stack; torch.profiler side by side when
   torch is installed (same loop on a torch tensor). The loop alone is timed, inside the profile: starting and
   stopping a profile are not per-op costs (post-processing is part 2).
2. Post-processing per event (stop + key_averages + table + export_chrome_trace) at 20k, 200k and 2M
   events, to see that it stays linear; torch.profiler's at 20k events when torch is installed.
3. Memory per recorded op event (tracemalloc, default options).
4. The same in a process that has already run a detailed profile (record_shapes=True, profile_memory=True,
   post-processed, its profile object kept as a script would keep it): first that detailed profile and its
   own post-processing per event (each op event also has an allocation and a free record), then the
   default options' in-loop cost per op (against the unprofiled loop, interleaved) and post-processing per
   event at 200k events measured again.

Usage: python benchmarks/profiler_overhead.py [--quick] [--repeat N] [--post-repeat N] [--sizes 20000,200000,2000000]
(--quick leaves out the 2M-event run.)
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl

import profiler


def tiny_loop(n):
    t = tl.ones(1)
    for _ in range(n):
        t = t + 1
    return t


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def in_loop(n, repeat):
    """Configurations are interleaved and each keeps its best of `repeat` short runs, so a machine
    whose load drifts (shared CI boxes) penalises them alike."""
    print(f"\n## In-loop cost per op ({n} tiny ops per run, best of {repeat} interleaved runs)\n")
    configs = [("default", {}), ("record_shapes", {"record_shapes": True}),
               ("profile_memory", {"profile_memory": True}), ("with_stack", {"with_stack": True})]
    # each run returns the seconds of its loop alone: a profile's start and stop (a profile_memory start counts the
    # live tensors' bytes, 1-20 ms by the process's object count) are not per-op costs; post-processing is below
    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    runs = {"none": lambda: timed(lambda: tiny_loop(n))}
    for label, kw in configs:
        def run(kw=kw):
            with profiler.profile(**kw):
                return timed(lambda: tiny_loop(n))
        runs[label] = run
    try:
        import torch
        torch.set_num_threads(1)

        def tloop():
            t = torch.ones(1)
            for _ in range(n):
                t = t + 1
        runs["torch none"] = lambda: timed(tloop)
        for label, kw in configs:
            def trun(kw=kw):
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], **kw):
                    return timed(tloop)
            runs["torch " + label] = trun
    except ImportError:
        torch = None
    bestt = {k: float("inf") for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            gc.collect()
            bestt[k] = min(bestt[k], fn())
    us = {k: v / n * 1e6 for k, v in bestt.items()}
    print("| configuration | µs/op | added µs/op | ratio |\n|---|---:|---:|---:|")
    for prefix, name in (("", "tensorlib profile"), ("torch ", "torch.profiler")):
        if prefix + "none" not in us:
            print("\n(torch not installed: no torch.profiler comparison)")
            continue
        base = us[prefix + "none"]
        print(f"| {name.split(' ')[0].split('.')[0]}, no profiler | {base:.3f} | — | 1.00 |")
        for label, _ in configs:
            t = us[prefix + label]
            print(f"| {name}({label}) | {t:.3f} | +{t - base:.3f} | {t / base:.2f} |")


def postprocess(sizes, repeat, torch_row=True):
    """Each size is recorded and post-processed `repeat` times and the fastest total is kept (with its
    parts), as for the in-loop cost: a shared machine only ever adds time. Every export goes to a new
    file, deleted after timing, so that replacing the previous run's file is not counted."""
    print(f"\n## Post-processing per event (stop + key_averages + table + export_chrome_trace), best of {repeat}\n")
    print("| events | stop (build) | key_averages | table | export | total | µs/event | CPU µs/event |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|")
    tmp = tempfile.mkdtemp()
    for n in sizes:
        best_row = None
        for r in range(repeat):
            prof = profiler.profile()
            prof.start()
            tiny_loop(n)
            # stop() only unhooks; the store is built on first use, which is what we time as "stop"
            prof.stop()
            gc.collect()
            path = os.path.join(tmp, f"t{n}.{r}.json")
            c0 = time.process_time()        # CPU time as well: on a loaded machine wall time mostly waits
            t0 = time.perf_counter()
            store = prof.store
            t1 = time.perf_counter()
            rows = prof.key_averages()
            t2 = time.perf_counter()
            rows.table(sort_by="self_cpu_time_total")
            t3 = time.perf_counter()
            prof.export_chrome_trace(path)
            t4 = time.perf_counter()
            cpu = time.process_time() - c0
            ne = len(store)
            os.unlink(path)
            row = (t4 - t0, ne, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), cpu)
            if best_row is None or row[0] < best_row[0]:
                best_row = row
            del prof, store, rows
            gc.collect()
        total, ne, (a, b, c, d), cpu = best_row
        print(f"| {ne} | {a:.3f}s | {b:.3f}s | {c:.3f}s | {d:.3f}s | {total:.3f}s | {total / ne * 1e6:.3f} | "
              f"{cpu / ne * 1e6:.3f} |")
    if not torch_row:
        return
    try:
        import torch
    except ImportError:
        return
    n = sizes[0]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        t = torch.ones(1)
        for _ in range(n):
            t = t + 1
    t0 = time.perf_counter()
    ka = p.key_averages()
    ka.table(sort_by="self_cpu_time_total")
    p.export_chrome_trace(os.path.join(tmp, "torch.json"))
    t1 = time.perf_counter()
    ne = len(p.events())
    print(f"| torch.profiler, {ne} events | | | | | {t1 - t0:.3f}s | {(t1 - t0) / ne * 1e6:.3f} |")


def memory_per_event(n):
    print(f"\n## Memory per recorded op event (default options, {n} ops)\n")
    tiny_loop(100)
    prof = profiler.profile()
    gc.collect()
    tracemalloc.start()
    prof.start()
    t = tl.ones(1)
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        t = t + 1
    after = tracemalloc.get_traced_memory()[0]
    prof.stop()
    tracemalloc.stop()
    del t
    print(f"{(after - before) / n:.1f} bytes per event (records held until the store is built)")


def after_detailed(n_detailed, n_loop, repeat, post_size, post_repeat):
    print(f"\n## After a detailed profile of {n_detailed} ops (kept alive): default options again\n")
    tmp = tempfile.mkdtemp()
    with profiler.profile(record_shapes=True, profile_memory=True) as det:
        tiny_loop(n_detailed)
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    ne = len(det.store)
    det.key_averages().table(sort_by="self_cpu_time_total")
    det.export_chrome_trace(os.path.join(tmp, "detailed.json"))
    t1 = time.perf_counter()
    cpu = time.process_time() - c0
    os.unlink(os.path.join(tmp, "detailed.json"))
    print(f"post-processing of that detailed profile (its {ne} events and their allocation and free records): "
          f"{t1 - t0:.3f}s, {(t1 - t0) / ne * 1e6:.3f} µs/event ({cpu / ne * 1e6:.3f} µs/event CPU)")

    def prof_loop():
        with profiler.profile():
            tiny_loop(n_loop)
    best_t = {"none": float("inf"), "default": float("inf")}
    for _ in range(repeat):
        for k, fn in (("none", lambda: tiny_loop(n_loop)), ("default", prof_loop)):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            best_t[k] = min(best_t[k], time.perf_counter() - t0)
    base, prof_t = best_t["none"] / n_loop * 1e6, best_t["default"] / n_loop * 1e6
    print(f"in-loop, default options: {base:.3f} -> {prof_t:.3f} µs/op, **+{prof_t - base:.3f} µs/op**")
    postprocess([post_size], post_repeat, torch_row=False)
    del det


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--sizes", default="20000,200000,2000000")
    ap.add_argument("--post-repeat", type=int, default=3, help="post-processing runs per size (best kept)")
    a = ap.parse_args()
    n = 5000
    sizes = [int(s) for s in a.sizes.split(",")]
    if a.quick:
        sizes = [s for s in sizes if s <= 200000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    in_loop(n, a.repeat)
    memory_per_event(100000)
    postprocess(sizes, a.post_repeat)
    after_detailed(200000, n, a.repeat, 200000, a.post_repeat)


if __name__ == "__main__":
    main()
