"""Post-processing builds millions of short-lived containers that never form cycles; the cyclic GC
would re-scan the growing result again and again (quadratic-looking times at 200k+ events), so it is
paused for the duration, and restored exactly as it was."""
from __future__ import annotations

import contextlib
import functools
import gc


@contextlib.contextmanager
def paused_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def no_gc(fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        with paused_gc():
            return fn(*a, **k)
    return wrapper
