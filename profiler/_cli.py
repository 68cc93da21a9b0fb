"""``python -m profiler SUBCOMMAND ...``: one entry point whose subcommands live in a dict, so each
feature registers its own without touching the others. Handlers take the remaining argv and return
the exit status; they import their module lazily so one subcommand never pays for another."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from safeio import literal


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its error line through safeio.literal: "unrecognized arguments: ..." quotes the
    user's words raw, so a control character in one would reach the terminal."""

    def error(self, message):
        super().error(literal(message))


def _nsys(argv: list[str]) -> int:
    from profiler.nsys.cli import nsys_main

    return nsys_main(argv)


def _import_nsys(argv: list[str]) -> int:
    from profiler.nsys.cli import import_nsys_main

    return import_nsys_main(argv)


def _run(argv: list[str]) -> int:
    from profiler.run import run_main

    return run_main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "nsys": _nsys,
    "import-nsys": _import_nsys,
    "run": _run,
}

# one line each for `python -m profiler --help`
SUMMARIES = {
    "run": "profile a script (run [options] script.py [args]): print the op table, write a Chrome trace",
    "nsys": "run a command under NVIDIA Nsight Systems and import its report as a Chrome trace",
    "import-nsys": "convert an `nsys export --type sqlite` database into a Chrome trace",
}


def usage() -> str:
    return f"usage: python -m profiler {{{','.join(sorted(SUBCOMMANDS))}}} ..."


def full_help() -> str:
    """The usage line, a line per subcommand, and where each one's options are explained."""
    width = max(map(len, SUBCOMMANDS))
    lines = [usage(), "", "tensorlib's profiler (torch.profiler's API) from the command line.", "", "commands:"]
    lines += [f"  {name:<{width}}  {SUMMARIES[name]}" for name in sorted(SUBCOMMANDS)]
    lines += ["", "python -m profiler COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(full_help(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    handler = SUBCOMMANDS.get(args[0])
    if handler is None:
        print(f"{usage()}\nprofiler: error: unknown command {literal(repr(args[0]))}", file=sys.stderr)
        return 2
    return handler(args[1:])
