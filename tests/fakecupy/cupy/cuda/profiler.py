"""cupy.cuda.profiler (fake): cudaProfilerStart/Stop as no-ops that remember the state."""
from __future__ import annotations

import contextlib

from . import runtime


def start():
    runtime.profilerStart()


def stop():
    runtime.profilerStop()


@contextlib.contextmanager
def profile():
    start()
    try:
        yield
    finally:
        stop()
