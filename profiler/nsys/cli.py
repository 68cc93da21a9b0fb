"""Argument parsing for the ``nsys`` and ``import-nsys`` subcommands of ``python -m profiler``.

Everything printed that came from the user or the database (paths, messages, table names) goes
through safeio.literal; a warning is one line on stderr, not Python's two-line warning format."""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from safeio import literal

from profiler._cli import ArgumentParser
from profiler.nsys.schema import NsysImportError


def summary(trace: dict[str, Any], path: Path | str) -> str:
    """The line import-nsys prints: from a whole trace, or from what import_nsys returns (its counts)."""
    if "traceEvents" in trace:
        counts = Counter(e.get("cat", "") for e in trace["traceEvents"] if e.get("ph") not in ("M", "s", "f"))
        flows = sum(1 for e in trace["traceEvents"] if e.get("ph") == "s")
    else:
        counts, flows = Counter(trace["eventsByCategory"]), trace["flowCount"]
    parts = [f"{n} {cat}" for cat, n in sorted(counts.items())] + [f"{flows} ac2g flows"]
    return f"wrote {literal(path)}: {', '.join(literal(p) for p in parts)}"


def import_nsys_main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="python -m profiler import-nsys",
        description="Convert an `nsys export --type sqlite` database into a Kineto-compatible Chrome trace.",
    )
    parser.add_argument("sqlite", type=Path, help="the nsys SQLite export (report.sqlite)")
    parser.add_argument("-o", "--output", type=Path, help="trace to write (default: REPORT.pt.trace.json)")
    args = parser.parse_args(argv)
    output = args.output or args.sqlite.with_suffix(".pt.trace.json")
    from profiler.nsys.convert import import_nsys

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trace = import_nsys(args.sqlite, output)
        except (NsysImportError, OSError) as exc:
            trace = None
            print(f"profiler import-nsys: error: {literal(exc)}", file=sys.stderr)
    for w in caught:
        print(f"profiler import-nsys: warning: {literal(w.message)}", file=sys.stderr)
    if trace is None:
        return 1
    print(summary(trace, output))
    return 0


NSYS_USAGE = "python -m profiler nsys [-o NAME] [nsys profile options...] -- PROGRAM [ARGS...]"


def nsys_main(argv: list[str]) -> int:
    if "--" not in argv:
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: {NSYS_USAGE}\n\nRuns PROGRAM under `nsys profile` (defaults --trace=cuda,nvtx,osrt "
                  "--capture-range=cudaProfilerApi, overridable) with TENSORLIB_NVTX=1, exports NAME.sqlite and "
                  "writes NAME.pt.trace.json. NAME defaults to nsys-profile.")
            return 0
        print(f"usage: {NSYS_USAGE}\nprofiler nsys: error: put the program after `--`", file=sys.stderr)
        return 2
    split = argv.index("--")
    ours, program = argv[:split], argv[split + 1 :]
    parser = ArgumentParser(prog="python -m profiler nsys", usage=NSYS_USAGE, add_help=False)
    parser.add_argument("-o", "--output", default="nsys-profile")
    args, nsys_options = parser.parse_known_args(ours)
    from profiler.nsys.run import run_nsys

    try:
        result = run_nsys(program, name=args.output, nsys_options=nsys_options)
    except NsysImportError as exc:
        print(f"profiler nsys: error: {literal(exc)}", file=sys.stderr)
        return 1
    print(literal(f"report {result.report}, export {result.sqlite}, trace {result.trace} ({result.events} events)"))
    if result.returncode != 0:
        print(f"profiler nsys: the profiled program exited with status {result.returncode}", file=sys.stderr)
    return result.returncode
