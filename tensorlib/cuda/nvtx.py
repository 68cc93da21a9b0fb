"""torch.cuda.nvtx: NVTX ranges a user places by hand, seen by Nsight Systems and CUPTI.

On the `nvtx` package (a dependency), in NVTX's default domain as torch's are, so they sit beside the
profiler's per-op ranges (domain "tensorlib") on the timeline. With no tool attached a range costs a
Python call pair. Unlike a CPU-only torch build, which raises "NVTX functions not installed", these work
on any machine: NVTX needs no GPU.
"""
from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager

import nvtx as _nvtx

__all__ = ["range_push", "range_pop", "range_start", "range_end", "mark", "range"]

_depth = threading.local()
_started: dict[int, tuple] = {}
_next_id = itertools.count(1)
_lock = threading.Lock()


def range_push(msg) -> int:
    """Push a range; returns its zero-based depth, as torch's does."""
    _nvtx.push_range(str(msg), color=None)
    d = getattr(_depth, "n", 0)
    _depth.n = d + 1
    return d


def range_pop() -> int:
    """Pop the innermost range; returns the depth of the range ended (-1 when none was open)."""
    d = getattr(_depth, "n", 0)
    if d == 0:
        return -1
    _nvtx.pop_range()
    _depth.n = d - 1
    return d - 1


def range_start(msg) -> int:
    """Start a range that may end on another thread; returns its id for range_end."""
    handle = _nvtx.start_range(str(msg))
    with _lock:
        rid = next(_next_id)
        _started[rid] = handle
    return rid


def range_end(range_id) -> None:
    with _lock:
        handle = _started.pop(range_id, _started)
    if handle is _started:
        raise ValueError(f"range_end: no range with id {range_id} was started (or it has ended)")
    _nvtx.end_range(handle)


def mark(msg) -> None:
    _nvtx.mark(str(msg), color=None)


@contextmanager
def range(msg, *args, **kwargs):
    """`with range("step {}", i):` pushes `msg.format(*args, **kwargs)` for the block."""
    range_push(msg.format(*args, **kwargs))
    try:
        yield
    finally:
        range_pop()
