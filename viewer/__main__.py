"""Command line: `python -m viewer TRACE` opens the TUI; `summary` and `diff` print text for logs/CI.

Every failure a user can cause (missing file, not a trace, bad arguments) ends in one line on stderr
and exit status 1 or 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, NoReturn

from safeio import literal

from .loader import STDIN, STREAM_LIMIT, InputOptions, TraceError
from .summary import COLUMNS

if TYPE_CHECKING:
    from .model import Trace


def _options(args: argparse.Namespace) -> InputOptions:
    if args.max_input_bytes < 1:
        raise TraceError(f"--max-input-bytes must be at least 1, not {args.max_input_bytes}")
    return InputOptions(allow_special=args.allow_special_files, max_bytes=args.max_input_bytes)


def _load(path: str, options: InputOptions = InputOptions()) -> Trace:
    from .model import load_trace

    trace = load_trace(path, options=options)
    for w in trace.warnings:  # warnings quote names, pids and tids from the file
        print(f"warning: {literal(path)}: {literal(w)}", file=sys.stderr)
    return trace


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import format_table, ops_table

    trace = _load(args.trace, _options(args))
    table = ops_table(trace, by_shape=args.by_shape)
    rows = table.rows(args.sort, not args.ascending, args.limit, args.filter or "")
    if args.json:
        print(json.dumps(table.as_dicts(rows), indent=1, ensure_ascii=True))
    else:
        print(format_table(table, rows))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff_dicts, diff_tables, format_diff
    from .summary import ops_table

    if args.a == args.b == STDIN:
        raise TraceError("standard input (-) can be only one of the two traces")
    options = _options(args)
    a, b = _load(args.a, options), _load(args.b, options)
    rows = diff_tables(ops_table(a), ops_table(b))
    if args.text or args.json or not sys.stdout.isatty():
        if args.json:
            print(json.dumps(diff_dicts(rows[: args.limit] if args.limit else rows), indent=1, ensure_ascii=True))
        else:
            print(format_diff(rows, args.limit))
        return 0
    from .app import ViewerApp

    if STDIN in (args.a, args.b):
        raise TraceError("the TUI reads keys from the terminal, not a trace from standard input: pass "
                         "--text or --json, or save the trace to a file")
    ViewerApp(args.a, diff_path=args.b).run()
    return 0


def cmd_open(path: str) -> int:
    from safeio import InputError, open_input

    if path == STDIN:
        raise TraceError("the TUI reads keys from the terminal, not a trace from standard input: use "
                         "`summary -` or `diff A - --text`, or save the trace to a file")
    try:  # refused here, before the terminal switches to the TUI: no FIFO, device or directory
        open_input(path, what="trace file")[0].close()
    except InputError as exc:
        raise TraceError(str(exc)) from None
    from .app import ViewerApp

    ViewerApp(path).run()
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """argparse quotes the bad argument: a file name with an escape sequence in it, say."""
        super().error(literal(message))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m viewer", description="Terminal viewer for Chrome trace files.")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("summary", help="print the ops table")
    s.add_argument("trace", help="a trace file (.json or .json.gz), or - for standard input")
    s.add_argument("--sort", default="total", choices=COLUMNS)
    s.add_argument("--ascending", action="store_true")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--filter", default=None, help="keep ops whose name or category contains this")
    s.add_argument("--by-shape", action="store_true", help="one row per (name, Input Dims)")
    s.add_argument("--json", action="store_true")
    d = sub.add_parser("diff", help="compare two traces op by op")
    d.add_argument("a", help="a trace file, or - for standard input")
    d.add_argument("b", help="a trace file, or - for standard input")
    d.add_argument("--text", action="store_true", help="print instead of opening the TUI")
    d.add_argument("--json", action="store_true")
    d.add_argument("--limit", type=int, default=None)
    for sp in (s, d):
        sp.add_argument("--allow-special-files", action="store_true",
                        help="read a named pipe (FIFO) or device as a trace, like standard input "
                             "(refused by default: a FIFO may never end, /dev/zero never does)")
        sp.add_argument("--max-input-bytes", type=int, default=STREAM_LIMIT, metavar="N",
                        help=f"the most bytes read from standard input, a FIFO or a device before it "
                             f"is refused (default {STREAM_LIMIT}); regular files are read to their size")
    o = sub.add_parser("open", help="open the TUI (the default)")
    o.add_argument("trace")
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
    if argv and argv[0] not in ("summary", "diff", "open", "-h", "--help"):
        argv = ["open"] + argv
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "summary":
            return cmd_summary(args)
        if args.cmd == "diff":
            return cmd_diff(args)
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
