"""python -m tensorlib.compat script.py [args]: run a PyTorch script on tensorlib (see tensorlib.compat)."""
from __future__ import annotations

import os
import runpy
import sys

from safeio import literal

from . import gap_message, install, missing_message

USAGE = ("usage: python -m tensorlib.compat script.py [args...]  "
         "(runs a PyTorch script with torch mapped onto tensorlib)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    script = os.path.abspath(argv[0])
    if not os.path.isfile(script):
        print(f"tensorlib.compat: {literal(argv[0])}: no such script", file=sys.stderr)
        return 2
    install()
    sys.argv = [argv[0], *argv[1:]]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (AttributeError, ImportError) as e:
        message = missing_message(e, script)
        if message is None:
            raise
        print(f"tensorlib.compat: {literal(message)}", file=sys.stderr)
        return 1
    except (NotImplementedError, RuntimeError, ValueError) as e:
        message = gap_message(e, script)
        if message is None:
            raise
        print(f"tensorlib.compat: {literal(message)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
