"""python -m tensorlib.compat script.py [args]: run a PyTorch script on tensorlib (see tensorlib.compat)."""
from __future__ import annotations

import os
import runpy
import sys
import traceback
import types

from safeio import literal

from . import MissingInTensorlib, install

USAGE = ("usage: python -m tensorlib.compat script.py [args...]  "
         "(runs a PyTorch script with torch mapped onto tensorlib)")


def _script_line(exc: BaseException, script: str) -> str:
    """Where in the user's script the missing name was used (the innermost frame in that file)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == script:
            where = f"{os.path.basename(script)}:{frame.lineno}"
    return where or os.path.basename(script)


def _missing_name(exc: BaseException) -> str | None:
    if isinstance(exc, MissingInTensorlib):
        return exc.name
    obj = getattr(exc, "obj", None)
    if isinstance(exc, AttributeError) and isinstance(obj, types.ModuleType):
        mod = obj.__name__
        if mod == "tensorlib" or mod.startswith("tensorlib."):
            return "torch" + mod[len("tensorlib"):] + "." + str(exc.name)
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and exc.name \
            and (exc.name == "tensorlib" or exc.name.startswith("tensorlib.")):
        what = str(exc).split("'")[1] if str(exc).count("'") >= 2 else "?"
        return "torch" + exc.name[len("tensorlib"):] + "." + what
    return None


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
        name = _missing_name(e)
        if name is None:
            raise
        print(f"tensorlib.compat: {_script_line(e, script)} uses {literal(name)}, which tensorlib does not "
              f"have yet", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
