"""``python -m profiler run script.py [args] [options]``: profile an unmodified script, like ``python -m cProfile``.

The script runs as ``__main__`` with its own argv; afterwards (also when it raises or is interrupted)
the table is printed and the Chrome trace written, and the exit status is the script's.

The profiler's options go before the script (as cProfile's) or after the script's arguments (as the
usage line shows): trailing words that are the profiler's own options (``-o X``, ``--sort X``, ...,
and ``--name=value``) are taken from the end of the script's arguments. ``--`` after the script ends
that: it is removed, and every word after the script (before and after the ``--``) goes to the
script, so ``run s.py a -- -o y.json`` gives the script ``['a', '-o', 'y.json']``. A ``--`` before the
script ends the profiler's options as usual.

With ``--wait/--warmup/--active/--repeat/--skip-first`` the profiler follows torch's schedule, a step
being one ``optimizer.step()`` (as torch's step tracker counts steps for on-demand tracing: the script
cannot call the runner's ``prof.step()``); the table and trace cover every active window, and a
per-step breakdown follows the table. ``--with-flops`` adds torch's FLOPs estimates (matrix products,
convolutions, mul and add). Every file written is named on stderr. A ``profile()`` the script starts itself
nests: it records nothing of its own and gets the ops of its block from this recording.

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
from tensorlib import compat, dispatch

from ._cli import ArgumentParser
from .aggregate import SORT_KEYS

# what reporting imports lazily, imported before the script runs (its imports cannot shadow them then)
_REPORT_MODULES = ("profiler.chrome", "profiler.stacks", "profiler.memory_report", "profiler.table",
                   "profiler.function_event", "profiler.memory_record", "profiler._atomic", "profiler._jsonrows",
                   "concurrent.futures.thread", "orjson", "uuid", "socket", "zlib")


_SCHEDULE = ("wait", "warmup", "active", "repeat", "skip_first")


def _parser():
    p = ArgumentParser(prog="python -m profiler run", allow_abbrev=False,
                       usage="python -m profiler run [options] script.py [args] [options]",
                       description="Profile a Python script (or -m module) that uses tensorlib: print the "
                                   "op table and write a Chrome trace.",
                       epilog="Options may follow the script's arguments. A -- after the script hands every "
                              "word after the script to it (the -- itself removed): run s.py a -- -o y.json "
                              "gives the script ['a', '-o', 'y.json'].")
    p.add_argument("-o", "--output", default="trace.json",
                   help="Chrome trace to write (.json or .json.gz; default trace.json)")
    p.add_argument("--sort", default="self_cpu_time_total", choices=SORT_KEYS, metavar="KEY",
                   help="table sort key (default self_cpu_time_total): " + ", ".join(SORT_KEYS))
    p.add_argument("--row-limit", type=int, default=30, help="table rows (default 30; 0 for all)")
    p.add_argument("--memory", action="store_true", help="profile_memory=True: allocations per op")
    p.add_argument("--shapes", action="store_true", help="record_shapes=True (table grouped by input shape)")
    p.add_argument("--stack", action="store_true", help="with_stack=True; also writes folded stacks beside the trace")
    p.add_argument("--with-flops", action="store_true",
                   help="with_flops=True: torch's FLOPs estimates (matrix products, convolutions, mul, add)")
    p.add_argument("--cuda-timing", choices=("events", "cupti"), default="events",
                   help="GPU time per op: CUDA events around each op (default) or CUPTI kernel records "
                        "(needs cupti-python: pip install 'tensorlib-profiler[cupti]')")
    sched = p.add_argument_group("schedule (torch.profiler.schedule; a step is one optimizer.step())")
    for name, help_ in (("wait", "idle steps at the start of each cycle"), ("warmup", "warm-up steps, not kept"),
                        ("active", "recorded steps per cycle (default 1 once any schedule option is given)"),
                        ("repeat", "cycles (0: until the script ends)"),
                        ("skip_first", "steps skipped before the first cycle")):
        sched.add_argument("--" + name.replace("_", "-"), type=int, default=None, metavar="N", help=help_)
    p.add_argument("--torch", action="store_true",
                   help="run a PyTorch script unchanged: its `import torch` imports tensorlib (as python -m "
                        "tensorlib.compat), so its ops are profiled")
    p.add_argument("-m", dest="module", action="store_true", help="run the target as a module (python -m)")
    p.add_argument("target", help="script path (or module name with -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return p


_TAIL_FLAGS = ("--memory", "--shapes", "--stack", "--with-flops")
_TAIL_VALUED = ("-o", "--output", "--sort", "--row-limit", "--cuda-timing", "--wait", "--warmup", "--active",
                "--repeat", "--skip-first")
_HEAD_FLAGS = _TAIL_FLAGS + ("-m", "-h", "--help")


def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the profiler's words up to and including the script, the words after the script), so that
    argparse never sees (and never strips) a -- that belongs to the script's arguments."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[:i] + argv[i + 1:i + 2], argv[i + 2:]
        if a in _TAIL_VALUED:
            i += 2
        elif a in _HEAD_FLAGS or (a.startswith("-") and len(a) > 1):
            i += 1          # a flag, --name=value, or an unknown option (argparse says what is wrong)
        else:
            return argv[:i + 1], argv[i + 1:]
    return argv, []


def _split_tail(args: list[str]) -> tuple[list[str], list[str]]:
    """(the script's arguments, the profiler options found at their end); see the module docstring."""
    args = list(args)
    if "--" in args:
        cut = args.index("--")
        return args[:cut] + args[cut + 1:], []
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


def _schedule(opts):
    """torch's schedule from --wait/--warmup/--active/--repeat/--skip-first, or None when none is given."""
    given = {k: getattr(opts, k) for k in _SCHEDULE if getattr(opts, k) is not None}
    if not given:
        return None
    from .schedule import schedule
    kw = {"wait": 0, "warmup": 0, "active": 1, "repeat": 0, "skip_first": 0, **given}
    return schedule(**kw)


class _OptimizerSteps:
    """Dispatcher range hook: each Optimizer.step range's end is one prof.step(). Registered before the
    recorder, so it runs after it on exit and the optimizer range closes inside its ProfilerStep."""

    def __init__(self, prof):
        self._prof = prof

    def range_enter(self, name, kind):
        return name if kind == "optimizer" and name.startswith("Optimizer.step#") else None

    def range_exit(self, token):
        if token is not None and self._prof._running:
            self._prof.step()


def run_main(argv: list[str]) -> int:
    parser = _parser()
    head, rest = _split_argv(list(argv))
    opts = parser.parse_args(head)
    script_args, tail = _split_tail(opts.args + rest)
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
        sched = _schedule(opts)
        prof = profile(record_shapes=opts.shapes, profile_memory=opts.memory, with_stack=opts.stack,
                       with_flops=opts.with_flops, with_modules=True, cuda_timing=opts.cuda_timing, schedule=sched,
                       acc_events=sched is not None)
    except (ValueError, ImportError) as e:     # a schedule option out of range; cupti missing (says what to do)
        _error(e)
        return 2
    prof.hosts_nested = True
    steps = _OptimizerSteps(prof) if sched is not None else None
    try:
        if steps is not None:
            dispatch.add_hook(steps)
        prof.start()
    except RuntimeError as e:       # cupti refused to start
        if steps is not None:
            dispatch.remove_hook(steps)
        _error(e)
        return 2
    owner = os.getpid()
    status = _run_script(opts, prof, steps)
    if os.getpid() != owner:            # a forked child leaving the script: the parent reports
        return status
    return _report(opts, prof, status)


def _error(message) -> None:
    print(f"profiler run: error: {literal(message)}", file=sys.stderr)


def _run_script(opts, prof, steps) -> int:
    """Runs the script as __main__ with its argv; returns its exit status. argv and sys.path are the
    profiler's again afterwards."""
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [opts.target] + list(opts.args)
    if not opts.module:
        sys.path.insert(0, os.path.dirname(os.path.abspath(opts.target)))
    status = 0
    if opts.torch:
        compat.install()
    try:
        try:
            if opts.module:
                runpy.run_module(opts.target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(opts.target, run_name="__main__")
        finally:
            if steps is not None and steps in dispatch.hooks():
                dispatch.remove_hook(steps)
            prof.stop()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(literal(e.code), file=sys.stderr)
    except KeyboardInterrupt:
        print("profiler run: interrupted; reporting what was recorded", file=sys.stderr)
        status = 130
    except BaseException as e:  # noqa: BLE001 - the script's own failure: printed, then what was recorded is reported
        missing = compat.missing_message(e, opts.target) if opts.torch and not opts.module else None
        if missing is not None:          # tensorlib's gap, not the script's bug: one line, as tensorlib.compat
            print(f"profiler run: {literal(missing)}", file=sys.stderr)
        else:
            for line in traceback.format_exc().splitlines():
                print(literal(line), file=sys.stderr)
        status = 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if opts.torch:
            compat.uninstall()
    return status


def _ran_real_torch() -> bool:
    """The script imported PyTorch itself (not tensorlib under torch's name)."""
    torch = sys.modules.get("torch")
    return torch is not None and getattr(torch, "__name__", "") == "torch"


def _report(opts, prof, status: int) -> int:
    """The table, the step breakdown, the trace (and stacks, memory summary); the exit status. The
    table goes to stdout; every file written is named on stderr."""
    if status and not len(prof.store):
        print(f"profiler run: the script exited with status {status} before any tensorlib op ran: no table, "
              f"nothing written", file=sys.stderr)
        return status
    if not len(prof.store) and _ran_real_torch():
        print("profiler run: the script ran PyTorch's own ops, which this profiler does not see (it profiles "
              "tensorlib); run it on tensorlib unchanged with --torch", file=sys.stderr)
    rows = prof.key_averages(group_by_input_shape=opts.shapes)
    print(rows.table(sort_by=opts.sort, row_limit=opts.row_limit))
    steps = prof.step_breakdown()
    if len(steps):
        print(steps.table())
    try:
        prof.export_chrome_trace(opts.output)
        out = literal(opts.output)
        print(f"profiler run: wrote {out} ({len(prof.store)} events); open it with: python -m viewer {out}",
              file=sys.stderr)
        if opts.stack:
            stacks = os.path.splitext(opts.output.removesuffix(".gz"))[0] + ".stacks.txt"
            prof.export_stacks(stacks)
            print(f"profiler run: wrote {literal(stacks)} (folded stacks for flamegraph.pl or speedscope)",
                  file=sys.stderr)
    except OSError as e:
        _error(e)
        return status or 1
    if opts.memory:
        print(prof.memory_summary())
    return status
