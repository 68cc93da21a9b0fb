"""``python -m profiler run script.py [args]``: profile an unmodified script, like ``python -m cProfile``.

The script runs as ``__main__`` with its own argv; afterwards (also when it raises or is interrupted)
the table is printed and the Chrome trace written, and the exit status is the script's.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback

from .aggregate import SORT_KEYS


def _parser():
    p = argparse.ArgumentParser(prog="python -m profiler run",
                                description="Profile a Python script (or -m module) that uses tensorlib: print the "
                                            "op table and write a Chrome trace.")
    p.add_argument("-o", "--output", default="trace.json", help="Chrome trace to write (.json or .json.gz; default trace.json)")
    p.add_argument("--sort", default="self_cpu_time_total", choices=SORT_KEYS, metavar="KEY",
                   help="table sort key (default self_cpu_time_total): " + ", ".join(SORT_KEYS))
    p.add_argument("--row-limit", type=int, default=30, help="table rows (default 30; 0 for all)")
    p.add_argument("--memory", action="store_true", help="profile_memory=True: allocations per op")
    p.add_argument("--shapes", action="store_true", help="record_shapes=True (table grouped by input shape)")
    p.add_argument("--stack", action="store_true", help="with_stack=True; also writes folded stacks beside the trace")
    p.add_argument("--cuda-timing", choices=("events", "cupti"), default="events",
                   help="GPU time per op: CUDA events around each op (default) or CUPTI kernel records "
                        "(needs cupti-python: pip install 'tensorlib-profiler[cupti]')")
    p.add_argument("-m", dest="module", action="store_true", help="run the target as a module (python -m)")
    p.add_argument("target", help="script path (or module name with -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return p


def run_main(argv: list[str]) -> int:
    opts = _parser().parse_args(argv)
    if not opts.module and not os.path.isfile(opts.target):
        print(f"profiler run: error: {opts.target}: no such file (give a script path, or -m for a module)",
              file=sys.stderr)
        return 2
    from . import profile
    try:
        prof = profile(record_shapes=opts.shapes, profile_memory=opts.memory, with_stack=opts.stack,
                       cuda_timing=opts.cuda_timing)
        prof.start()
    except (ImportError, RuntimeError) as e:   # cupti: not installed (says what to install) or refused to start
        print(f"profiler run: error: {e}", file=sys.stderr)
        return 2
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [opts.target] + list(opts.args)
    if not opts.module:
        sys.path.insert(0, os.path.dirname(os.path.abspath(opts.target)))
    status = 0
    try:
        try:
            if opts.module:
                runpy.run_module(opts.target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(opts.target, run_name="__main__")
        finally:
            prof.stop()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        print("profiler run: interrupted; reporting what was recorded", file=sys.stderr)
        status = 130
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        sys.argv = saved_argv
        if not opts.module and sys.path and saved_path0 is not None and sys.path[0] != saved_path0:
            sys.path.pop(0)
    rows = prof.key_averages(group_by_input_shape=opts.shapes)
    print(rows.table(sort_by=opts.sort, row_limit=opts.row_limit))
    try:
        prof.export_chrome_trace(opts.output)
        if opts.stack:
            prof.export_stacks(os.path.splitext(opts.output.removesuffix(".gz"))[0] + ".stacks.txt")
    except OSError as e:
        print(f"profiler run: error: {e}", file=sys.stderr)
        return status or 1
    if opts.memory:
        print(prof.memory_summary())
    print(f"wrote {opts.output} ({len(prof.store)} events); open it with: python -m viewer {opts.output}")
    return status
