"""The user's line of code behind an op: the first frame outside tensorlib and profiler."""
from __future__ import annotations

import linecache
import os
import sys
from types import FrameType

import tensorlib

INTERNAL_DIRS = (os.path.dirname(tensorlib.__file__) + os.sep,
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep)


def user_frame(depth: int = 1) -> FrameType | None:
    f: FrameType | None = sys._getframe(depth)
    while f is not None and f.f_code.co_filename.startswith(INTERNAL_DIRS):
        f = f.f_back
    return f


def user_location(depth: int = 2) -> tuple[str, int, str]:
    """(file, line, source text) of the innermost user frame; ("<unknown>", 0, "") if there is none."""
    f = user_frame(depth)
    if f is None:
        return "<unknown>", 0, ""
    fn, ln = f.f_code.co_filename, f.f_lineno
    return fn, ln, linecache.getline(fn, ln).strip()


def format_location(loc) -> str:
    fn, ln, text = loc
    try:
        fn = os.path.relpath(fn)
    except ValueError:
        pass
    return f"{fn}:{ln}" + (f": {text}" if text else "")
