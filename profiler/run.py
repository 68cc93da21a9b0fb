"""``python -m profiler run script.py [args] [options]``: profile an unmodified script, like ``python -m cProfile``.

The script runs as ``__main__`` with its own argv; afterwards (also when it raises or is interrupted)
the table is printed and the Chrome trace written, and the exit status is the script's.

The profiler's options go before the script (as cProfile's) or after the script's arguments (as the
usage line shows): trailing words that are the profiler's own options (``-o X``, ``--sort X``,
``--row-limit N``, ``--cuda-timing X``, ``--memory``, ``--shapes``, ``--stack``, and ``--name=value``)
are taken from the end of the script's arguments. To hand such words to the script instead, end its
arguments with ``--`` (removed, and nothing after the script is read as the profiler's).

Only the process that started profiling reports: a child the script forks (os.fork, a fork-started
multiprocessing worker) stops recording at the fork and, when it returns here, exits with its status
without printing a table or writing the trace, which would overwrite the parent's complete one. The
report does not depend on the script's import state either: what it needs is imported before the
script runs, and sys.path is restored afterwards (a script may clear it or put a directory of
shadowing modules first). Everything printed that came from the user (names, paths, messages) goes
through safeio.literal.
"""
from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
import traceback

from safeio import literal

from ._cli import ArgumentParser
from .aggregate import SORT_KEYS

# what reporting imports lazily, imported before the script runs (its imports cannot shadow them then)
_REPORT_MODULES = ("profiler.chrome", "profiler.stacks", "profiler.memory_report", "profiler.table",
                   "profiler.function_event", "profiler.memory", "profiler._atomic", "profiler._jsonrows",
                   "concurrent.futures.thread", "orjson", "uuid", "socket", "zlib")


def _parser():
    p = ArgumentParser(prog="python -m profiler run",
                                usage="python -m profiler run [options] script.py [args] [options]",
                                description="Profile a Python script (or -m module) that uses tensorlib: print the "
                                            "op table and write a Chrome trace.",
                                epilog="Options may follow the script's arguments; end those with -- to pass "
                                       "words like -o or --memory to the script itself.")
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


_TAIL_FLAGS = ("--memory", "--shapes", "--stack")
_TAIL_VALUED = ("-o", "--output", "--sort", "--row-limit", "--cuda-timing")


def _split_tail(args: list[str]) -> tuple[list[str], list[str]]:
    """(the script's arguments, the profiler options found at their end); see the module docstring."""
    args = list(args)
    if args and args[-1] == "--":
        return args[:-1], []
    tail: list[str] = []
    while args:
        a = args[-1]
        if a in _TAIL_FLAGS or (a.startswith("--") and a.split("=", 1)[0] in _TAIL_VALUED and "=" in a):
            tail[:0] = [args.pop()]
        elif len(args) >= 2 and args[-2] in _TAIL_VALUED:
            tail[:0] = [args.pop(-2), args.pop()]
        else:
            break
    return args, tail


def run_main(argv: list[str]) -> int:
    parser = _parser()
    opts = parser.parse_args(argv)
    script_args, tail = _split_tail(opts.args)
    if tail:    # after the script's arguments: they override the same options given before the script
        parser.parse_args(tail + [opts.target], namespace=opts)
    opts.args = script_args
    if not opts.module and not os.path.isfile(opts.target):
        _error(f"{opts.target}: no such file (give a script path, or -m for a module)")
        return 2
    from . import profile
    for name in _REPORT_MODULES:
        importlib.import_module(name)
    try:
        prof = profile(record_shapes=opts.shapes, profile_memory=opts.memory, with_stack=opts.stack,
                       cuda_timing=opts.cuda_timing)
        prof.start()
    except (ImportError, RuntimeError) as e:   # cupti: not installed (says what to install) or refused to start
        _error(e)
        return 2
    owner = os.getpid()
    status = _run_script(opts, prof)
    if os.getpid() != owner:            # a forked child leaving the script: the parent reports
        return status
    return _report(opts, prof, status)


def _error(message) -> None:
    print(f"profiler run: error: {literal(message)}", file=sys.stderr)


def _run_script(opts, prof) -> int:
    """Runs the script as __main__ with its argv; returns its exit status. argv and sys.path are the
    profiler's again afterwards."""
    saved_argv, saved_path = sys.argv[:], sys.path[:]
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
            print(literal(e.code), file=sys.stderr)
    except KeyboardInterrupt:
        print("profiler run: interrupted; reporting what was recorded", file=sys.stderr)
        status = 130
    except BaseException:
        for line in traceback.format_exc().splitlines():
            print(literal(line), file=sys.stderr)
        status = 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return status


def _report(opts, prof, status: int) -> int:
    """The table, the trace (and stacks, memory summary); the exit status."""
    rows = prof.key_averages(group_by_input_shape=opts.shapes)
    print(rows.table(sort_by=opts.sort, row_limit=opts.row_limit))
    try:
        prof.export_chrome_trace(opts.output)
        if opts.stack:
            prof.export_stacks(os.path.splitext(opts.output.removesuffix(".gz"))[0] + ".stacks.txt")
    except OSError as e:
        _error(e)
        return status or 1
    if opts.memory:
        print(prof.memory_summary())
    out = literal(opts.output)
    print(f"wrote {out} ({len(prof.store)} events); open it with: python -m viewer {out}")
    return status
