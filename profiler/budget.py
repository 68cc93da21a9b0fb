"""Deterministic cost counting for performance budgets: op calls, bytes allocated, syncs — never time.

`OpCounter` is a dispatcher hook that counts every op call (forward and backward) by name and the bytes
of the arrays ops allocate (outputs that own their memory, by device). The same code gives the same
numbers on every run and machine, so a budget over them cannot flake.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tensorlib import Tensor
from tensorlib import dispatch as D

_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "kib": 2 ** 10, "mib": 2 ** 20,
          "gib": 2 ** 30}


def parse_bytes(value) -> int:
    """An int, or a string like "10 MB", "1.5GiB", "512 kb"."""
    if isinstance(value, bool):
        raise TypeError(f"byte limit must be an int or a string like '10 MB', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ValueError(f"cannot read {value!r} as a byte count; use an int or a string like '10 MB', '512 KiB'")


@dataclass
class Counts:
    calls: Counter = field(default_factory=Counter)
    bytes_by_op: Counter = field(default_factory=Counter)
    device_bytes_by_op: Counter = field(default_factory=Counter)
    syncs: int = 0

    @property
    def ops(self) -> int:
        return sum(self.calls.values())

    @property
    def bytes(self) -> int:
        return sum(self.bytes_by_op.values())

    @property
    def device_bytes(self) -> int:
        return sum(self.device_bytes_by_op.values())


class OpCounter(D.Hook):
    def __init__(self):
        self.counts = Counts()
        self._lock = threading.Lock()

    def op_enter(self, op, inputs, attrs, phase, seq):
        return op.name

    def op_exit(self, name, outputs):
        c = self.counts
        host = dev = 0
        if outputs is not None:
            for o in (outputs if isinstance(outputs, tuple) else (outputs,)):
                if isinstance(o, Tensor):
                    d = o._data
                    if d.base is None:
                        if type(d) is np.ndarray:
                            host += d.nbytes
                        else:
                            dev += d.nbytes
        with self._lock:
            c.calls[name] += 1
            if host:
                c.bytes_by_op[name] += host
            if dev:
                c.device_bytes_by_op[name] += dev


LIMITS = ("max_ops", "max_calls", "max_bytes", "max_device_bytes", "max_syncs")


def check_budget(counts: Counts, max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None,
                 max_syncs=None) -> list[str]:
    """The limits exceeded, each as a line 'limit: measured > allowed' plus the ops that contributed most."""
    out = []
    if max_ops is not None and counts.ops > max_ops:
        out.append(f"max_ops: {counts.ops} op calls > {max_ops}; most called: {_top(counts.calls)}")
    if max_calls:
        if not isinstance(max_calls, dict):
            raise TypeError(f"max_calls must be a dict of op name -> count, e.g. {{'matmul': 3}}, got {max_calls!r}")
        for name, limit in sorted(max_calls.items()):
            got = counts.calls.get(name, 0)
            if got > limit:
                out.append(f"max_calls[{name!r}]: {got} calls > {limit}")
    if max_bytes is not None:
        lim = parse_bytes(max_bytes)
        if counts.bytes > lim:
            out.append(f"max_bytes: {_fmt_bytes(counts.bytes)} allocated > {_fmt_bytes(lim)}; "
                       f"largest: {_top(counts.bytes_by_op, _fmt_bytes)}")
    if max_device_bytes is not None:
        lim = parse_bytes(max_device_bytes)
        if counts.device_bytes > lim:
            out.append(f"max_device_bytes: {_fmt_bytes(counts.device_bytes)} allocated on the GPU > "
                       f"{_fmt_bytes(lim)}; largest: {_top(counts.device_bytes_by_op, _fmt_bytes)}")
    if max_syncs is not None and counts.syncs > max_syncs:
        out.append(f"max_syncs: {counts.syncs} host-device synchronisations > {max_syncs}")
    return out


def _top(counter, fmt=str, n=5):
    return ", ".join(f"{k} ({fmt(v)})" for k, v in counter.most_common(n)) or "-"


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


class count_ops:
    """Context manager: counts ops, bytes and syncs in a block (what op_budget measures)."""

    def __init__(self):
        self.hook = OpCounter()

    @property
    def counts(self) -> Counts:
        return self.hook.counts

    def __enter__(self):
        from .debug.sync_watch import sync_watch
        self._sync = sync_watch(mode="count").__enter__()
        D.add_hook(self.hook)
        return self

    def __exit__(self, *exc):
        D.remove_hook(self.hook)
        self._sync.__exit__(*exc)
        self.hook.counts.syncs = self._sync.count
        return False
