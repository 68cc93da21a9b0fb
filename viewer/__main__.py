"""Command line: `python -m viewer TRACE` opens the TUI; `summary` and `diff` print text for logs/CI.

A distributed job (a directory of rank traces, or several files) opens as one trace with the ranks side
by side (viewer/job.py); `summary --rank R` / `--per-rank` split its table by rank, and `ranks` prints
each step's compute and collective time per rank with the slowest rank marked.

Every failure a user can cause (missing file, not a trace, bad arguments) ends in one line on stderr
and exit status 1 or 2, never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import TYPE_CHECKING, NoReturn

from safeio import literal

from .loader import STDIN, STREAM_LIMIT, InputOptions, TraceError
from .summary import COLUMNS

if TYPE_CHECKING:
    from .model import Trace
    from .summary import OpsTable


def _options(args: argparse.Namespace) -> InputOptions:
    if args.max_input_bytes < 1:
        raise TraceError(f"--max-input-bytes must be at least 1, not {args.max_input_bytes}")
    return InputOptions(allow_special=args.allow_special_files, max_bytes=args.max_input_bytes)


def _load(path: str | list[str], options: InputOptions = InputOptions(), keep_text: bool = True) -> Trace:
    from .model import load_trace

    trace = load_trace(path, options=options, keep_text=keep_text)
    where = path if isinstance(path, str) else path[0] if len(path) == 1 else "job"
    for w in trace.warnings:  # warnings quote names, pids and tids from the file
        print(f"warning: {literal(where)}: {literal(w)}", file=sys.stderr)
    return trace


def _is_job(paths: list[str]) -> bool:
    import os

    return len(paths) > 1 or os.path.isdir(paths[0])


def cmd_summary(args: argparse.Namespace) -> int:
    import numpy as np

    from .job import rank_of_pid
    from .summary import ops_table, table_lines

    paths: list[str] = args.trace
    if (args.rank is not None or args.per_rank) and not _is_job(paths):
        raise TraceError("--rank and --per-rank need a job: a directory of rank traces, or several trace files")
    if STDIN in paths and len(paths) > 1:
        raise TraceError("standard input (-) is one trace: it cannot be part of a job")
    if args.limit is not None and args.limit < 0:
        raise TraceError(f"--limit must be at least 0 (0: every row), not {args.limit}")
    if args.all and args.limit is not None:
        raise TraceError("--all and --limit cannot be used together")
    # torch's table prints 100 rows unless told otherwise (row_limit); so do we (a trace of a million
    # distinct names would otherwise print a million lines).
    limit = None if args.all or args.limit == 0 else args.limit if args.limit is not None else DEFAULT_ROWS
    # The ops table reads no event's text again (it is as many bytes as the file): let go while loading.
    keep_text = bool(args.by_shape or args.steps or args.memory)
    trace = _load(paths if len(paths) > 1 else paths[0], _options(args), keep_text)
    if args.steps:
        from .steps import format_steps, step_breakdown

        bd = step_breakdown(trace)
        if args.json:
            print(json.dumps(bd.as_dicts(), indent=1, ensure_ascii=True))
        else:
            print(format_steps(bd, args.limit))
        return 0
    if args.memory:
        from .memory_tab import format_report, memory_report

        report = memory_report(trace)
        if args.json:
            print(json.dumps(report, indent=1, ensure_ascii=True))
        else:
            print(format_report(report))
        return 0
    lane_rank = np.array([rank_of_pid(ln.pid) for ln in trace.lanes] or [-1], np.int64)
    ranks = sorted(set(lane_rank.tolist()) - {-1})
    if args.rank is not None and args.rank not in ranks:
        raise TraceError(f"--rank {args.rank}: the job has ranks {ranks}")
    chosen = ranks if args.per_rank else [args.rank] if args.rank is not None else [None]
    out: dict[str, object] = {}
    for r in chosen:
        mask = None if r is None or not len(trace.lane) else lane_rank[trace.lane] == r
        table = ops_table(trace, by_shape=args.by_shape, mask=mask)
        rows = table.rows(args.sort, not args.ascending, limit, args.filter or "")
        left = _rows_left(table, rows, limit, args.filter)
        if args.json:
            out["all" if r is None else f"rank {r}"] = table.as_dicts(rows)
            if left:
                print(f"note: {len(rows)} of {len(rows) + left} rows{'' if r is None else f' of rank {r}'}; "
                      f"pass --all (or --limit N) for more", file=sys.stderr)
        else:
            if r is not None:
                print(f"rank {r}")
            lines = table_lines(table, rows)
            while chunk := list(itertools.islice(lines, 4096)):
                print("\n".join(chunk))
            if left:
                print(f"... {left} more rows (--all or --limit N to show them)")
    if args.json:
        print(json.dumps(out["all"] if chosen == [None] else out, indent=1, ensure_ascii=True))
    return 0


DEFAULT_ROWS = 100


def _rows_left(table: OpsTable, rows: list[int], limit: int | None, needle: str | None) -> int:
    """How many rows the limit left out."""
    if limit is None or len(rows) < limit:
        return 0
    if not needle:
        return len(table) - len(rows)
    n = needle.lower()
    return sum(1 for a, b in zip(table.name, table.cat) if n in a.lower() or n in b.lower()) - len(rows)


def cmd_ranks(args: argparse.Namespace) -> int:
    from .job import per_rank_steps

    if not _is_job(args.trace):
        raise TraceError("ranks needs a job: a directory of rank traces, or several trace files")
    rows = per_rank_steps(_load(args.trace if len(args.trace) > 1 else args.trace[0]))
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=True))
        return 0
    if not rows:
        print("no ProfilerStep#N ranges: profile with a schedule and call prof.step() each step")
        return 0
    print(f"{'step':<18} {'rank':>5} {'step ms':>10} {'compute ms':>11} {'comm ms':>10}")
    for row in rows:
        mark = "  <- slowest" if row["slowest"] else ""
        print(f"{literal(row['step']):<18} {row['rank']:>5} {row['step_ns'] / 1e6:>10.3f} "
              f"{row['compute_ns'] / 1e6:>11.3f} {row['comm_ns'] / 1e6:>10.3f}{mark}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff_dicts, diff_tables, format_diff, per_step
    from .summary import ops_table

    from .steps import step_events

    if args.a == args.b == STDIN:
        raise TraceError("standard input (-) can be only one of the two traces")
    options = _options(args)
    a, b = _load(args.a, options), _load(args.b, options)
    steps = (len(step_events(a)), len(step_events(b)))
    rows = diff_tables(ops_table(a), ops_table(b), *steps)
    if args.text or args.json or not sys.stdout.isatty():
        if args.json:
            out = diff_dicts(rows[: args.limit] if args.limit else rows)
            for d in out:  # the list stays a list; each row says whether its numbers are per step
                d["per_step"] = per_step(*steps)
            print(json.dumps(out, indent=1, ensure_ascii=True))
        else:
            print(format_diff(rows, args.limit, steps=steps))
        return 0
    from .app import ViewerApp

    if STDIN in (args.a, args.b):
        raise TraceError("the TUI reads keys from the terminal, not a trace from standard input: pass "
                         "--text or --json, or save the trace to a file")
    ViewerApp(args.a, diff_path=args.b).run()
    return 0


def cmd_open(paths: list[str]) -> int:
    from safeio import InputError, open_input

    if STDIN in paths:
        raise TraceError("the TUI reads keys from the terminal, not a trace from standard input: use "
                         "`summary -` or `diff A - --text`, or save the trace to a file")
    from .job import job_files

    files = job_files(paths[0]) if _is_job(paths) and len(paths) == 1 else paths
    try:  # refused here, before the terminal switches to the TUI: no FIFO or device
        for path in files:
            open_input(path, what="trace file")[0].close()
    except InputError as exc:
        raise TraceError(str(exc)) from None
    from .app import ViewerApp

    ViewerApp(paths[0] if len(paths) == 1 else None, job=None if len(paths) == 1 else paths).run()
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """argparse quotes the bad argument: a file name with an escape sequence in it, say."""
        super().error(literal(message))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m viewer", description="Terminal viewer for Chrome trace files.")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("summary", help="print the ops table")
    s.add_argument("trace", nargs="+", help="a trace file (.json or .json.gz), or - for standard input; or a job: "
                                            "a directory of rank traces, or several files")
    s.add_argument("--rank", type=int, default=None, help="a job's rank r only")
    s.add_argument("--per-rank", action="store_true", help="one table per rank of a job")
    s.add_argument("--sort", default="total", choices=COLUMNS)
    s.add_argument("--ascending", action="store_true")
    s.add_argument("--limit", type=int, default=None,
                   help=f"print the first N rows (default {DEFAULT_ROWS}, as torch's table; 0: every row)")
    s.add_argument("--all", action="store_true", help="print every row (the default is the first 100)")
    s.add_argument("--filter", default=None, help="keep ops whose name or category contains this")
    s.add_argument("--by-shape", action="store_true", help="one row per (name, Input Dims)")
    s.add_argument("--steps", action="store_true",
                   help="one row per ProfilerStep#N: data loading, forward, backward, optimizer, other "
                        "(and GPU busy/idle), with the average step")
    s.add_argument("--memory", action="store_true",
                   help="memory instead of ops: per device the peak, when, what was alive when profiling "
                        "began, and the op at the peak with its call path and stack")
    s.add_argument("--json", action="store_true")
    d = sub.add_parser("diff", help="compare two traces op by op")
    d.add_argument("a", help="a trace file, or - for standard input")
    d.add_argument("b", help="a trace file, or - for standard input")
    d.add_argument("--text", action="store_true", help="print instead of opening the TUI")
    d.add_argument("--json", action="store_true")
    d.add_argument("--limit", type=int, default=None)
    r = sub.add_parser("ranks", help="a job's steps per rank: compute and collective time, the slowest rank")
    r.add_argument("trace", nargs="+", help="a directory of rank traces, or several trace files")
    r.add_argument("--json", action="store_true")
    for sp in (s, d):
        sp.add_argument("--allow-special-files", action="store_true",
                        help="read a named pipe (FIFO) or device as a trace, like standard input "
                             "(refused by default: a FIFO may never end, /dev/zero never does)")
        sp.add_argument("--max-input-bytes", type=int, default=STREAM_LIMIT, metavar="N",
                        help=f"the most bytes read from standard input, a FIFO or a device before it "
                             f"is refused (default {STREAM_LIMIT}); regular files are read to their size")
    o = sub.add_parser("open", help="open the TUI (the default)")
    o.add_argument("trace", nargs="+", help="a trace file; or a job: a directory of rank traces, or several files")
    return p


def _keep_large_blocks_mapped() -> None:
    """glibc raises its mmap threshold to the size of the largest block freed so far, so after the first
    few lane-sized arrays of a large load every later one comes from the heap, and freed heap stays
    resident: a fixed threshold (1 MiB) hands each freed array back at once (about 10 MB less peak per
    million events). The CLI's own process only; elsewhere (musl, macOS) this does nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _keep_large_blocks_mapped()
    if argv and argv[0] not in ("summary", "diff", "ranks", "open", "-h", "--help"):
        argv = ["open"] + argv
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "summary":
            return cmd_summary(args)
        if args.cmd == "diff":
            return cmd_diff(args)
        if args.cmd == "ranks":
            return cmd_ranks(args)
        if args.cmd == "open":
            return cmd_open(args.trace)
        _parser().print_help()
        return 2
    except TraceError as exc:
        print(f"error: {literal(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory; the trace is too large for this machine", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
