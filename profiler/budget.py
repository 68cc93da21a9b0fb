"""Deterministic cost counting for performance budgets: op calls, bytes allocated, syncs — never time.

`OpCounter` is a dispatcher hook that counts every op call (forward and backward) by name and the bytes
of the arrays ops allocate (outputs that own their memory, by device). The same code gives the same
numbers on every run and machine, so a budget over them cannot flake.
"""
from __future__ import annotations

import difflib
import numbers
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlib import Tensor
from tensorlib import dispatch as D
from tensorlib.dispatch import array_of

from .memory_record import format_bytes
from .torch_names import COMPOSITES, composite_name, op_name

# one convention everywhere (tables, the --tl-profile summary, budget limits and messages): torch's
# table units, KB = 1024 B, MB = 1024 KB, GB = 1024 MB (memory.format_bytes); KiB/MiB/GiB say the same
_UNITS = {"": 1, "b": 1, "kb": 2 ** 10, "mb": 2 ** 20, "gb": 2 ** 30, "kib": 2 ** 10, "mib": 2 ** 20,
          "gib": 2 ** 30}
_BYTES_HELP = ("a non-negative int or a string like '10 MB' (units B, KB, MB, GB, 1024-based as torch's tables; "
               "KiB, MiB, GiB alike)")
_COUNT_HELP = "a non-negative int"


def parse_bytes(value, name: str = "byte limit") -> int:
    """An int, or a string like "10 MB", "1.5GiB", "512 kb"; anything else (a bool, NaN, a negative or
    fractional count, an unknown unit) is a ValueError/TypeError naming `name` and what is accepted."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float, str)):
        raise TypeError(f"{name}={value!r}: expected {_BYTES_HELP}, got {type(value).__name__}")
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"{name}={value!r}: cannot read it as a byte count; expected {_BYTES_HELP}")
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name}={value!r}: expected {_BYTES_HELP}, got a fractional or non-finite float")
    if value < 0:
        raise ValueError(f"{name}={value!r}: expected {_BYTES_HELP}, got a negative number")
    return int(value)


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r}: expected {_COUNT_HELP}, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name}={value!r}: expected {_COUNT_HELP}, got a negative number")
    return int(value)


def _calls(value, ops) -> dict:
    if not isinstance(value, Mapping):
        raise TypeError(f"max_calls must be a dict of op name -> count, e.g. {{'matmul': 3}}, got {value!r}")
    out = {}
    for name, limit in value.items():
        if not isinstance(name, str):
            raise TypeError(f"max_calls key {name!r}: expected an op name (str), got {type(name).__name__}")
        if ops is not None and name not in ops:
            every = set(ops) | set(COMPOSITES)
            known = sorted(every | {op_name(o) for o in ops} | {composite_name(o) for o in COMPOSITES})
            if name not in known:
                near = difflib.get_close_matches(name, known, n=3)
                hint = (f"; did you mean {' or '.join(map(repr, near))}?" if near
                        else " (register custom ops before the test runs)")
                raise ValueError(f"max_calls[{name!r}]: no tensorlib op has this name (tensorlib's or torch's "
                                 f"profiled name, e.g. 'linear' or 'aten::linear'){hint}")
        out[name] = _count(f"max_calls[{name!r}]", limit)
    return out


LIMITS = ("max_ops", "max_calls", "max_bytes", "max_device_bytes", "max_syncs")


def budget_limits(limits: dict, ops=None) -> dict:
    """The limits of an op budget checked and normalised (byte strings to ints, None left out), so that
    a wrong argument is an error before the measured code runs, never a nonsense verdict after it.
    `ops`: the op names max_calls may use (None: any). Raises TypeError/ValueError whose message names
    the argument and what it accepts."""
    out: dict[str, Any] = {}
    for key, value in limits.items():
        if key not in LIMITS:
            raise TypeError(f"unknown limit {key!r}; valid: {', '.join(LIMITS)}")
        if value is None:
            continue
        if key == "max_calls":
            out[key] = _calls(value, ops)
        elif key in ("max_bytes", "max_device_bytes"):
            out[key] = parse_bytes(value, key)
        else:
            out[key] = _count(key, value)
    return out


@dataclass
class Counts:
    calls: Counter = field(default_factory=Counter)
    composite_calls: Counter = field(default_factory=Counter)   # composite ops (linear...): not in `ops`
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

    def range_enter(self, name, kind):
        return name if kind == "op" else None

    def range_exit(self, name):
        if name is not None:
            with self._lock:
                self.counts.composite_calls[name] += 1

    def op_exit(self, name, outputs):
        c = self.counts
        host = dev = 0
        if outputs is not None:
            for o in (outputs if isinstance(outputs, tuple) else (outputs,)):
                if isinstance(o, Tensor):
                    d = array_of(o)
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


def check_budget(counts: Counts, max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None,
                 max_syncs=None) -> list[str]:
    """The limits exceeded, each as a line 'limit: measured > allowed' plus the ops that contributed most."""
    lim = budget_limits({"max_ops": max_ops, "max_calls": max_calls, "max_bytes": max_bytes,
                         "max_device_bytes": max_device_bytes, "max_syncs": max_syncs})
    out = []
    if "max_ops" in lim and counts.ops > lim["max_ops"]:
        out.append(f"max_ops: {counts.ops} op calls > {lim['max_ops']}; most called: {_top(counts.calls)}")
    for name, limit in sorted(lim.get("max_calls", {}).items()):
        got = calls_of(counts, name)
        if got > limit:
            out.append(f"max_calls[{name!r}]: {got} calls > {limit}")
    if "max_bytes" in lim and counts.bytes > lim["max_bytes"]:
        out.append(f"max_bytes: {_fmt_bytes(counts.bytes)} allocated > {_fmt_bytes(lim['max_bytes'])}; "
                   f"largest: {_top(counts.bytes_by_op, _fmt_bytes)}")
    if "max_device_bytes" in lim and counts.device_bytes > lim["max_device_bytes"]:
        out.append(f"max_device_bytes: {_fmt_bytes(counts.device_bytes)} allocated on the GPU > "
                   f"{_fmt_bytes(lim['max_device_bytes'])}; largest: {_top(counts.device_bytes_by_op, _fmt_bytes)}")
    if "max_syncs" in lim and counts.syncs > lim["max_syncs"]:
        out.append(f"max_syncs: {counts.syncs} host-device synchronisations > {lim['max_syncs']}")
    return out


def calls_of(counts: Counts, name: str) -> int:
    """Calls of op `name`, a tensorlib op name ('linear') or torch's profiled one ('aten::linear', which
    may cover several tensorlib ops)."""
    if name in counts.calls:
        return counts.calls[name]
    if name in counts.composite_calls:
        return counts.composite_calls[name]
    return (sum(n for op, n in counts.calls.items() if op_name(op) == name)
            + sum(n for op, n in counts.composite_calls.items() if composite_name(op) == name))


def _top(counter, fmt=str, n=5):
    return ", ".join(f"{k} ({fmt(v)})" for k, v in counter.most_common(n)) or "-"


def _fmt_bytes(n: int) -> str:
    return format_bytes(n)


def exceeded_message(counts: Counts, over: list[str]) -> str:
    """The failure text of a budget: what was measured, then a line per limit exceeded."""
    report = "\n".join(f"  - {line}" for line in over)
    return (f"op budget exceeded ({counts.ops} op calls, {_fmt_bytes(counts.bytes)} allocated, {counts.syncs} "
            f"syncs measured):\n{report}")


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


class BudgetExceeded(AssertionError):
    """An op_budget block did more than its limits allow (an AssertionError, as a failed check in a test)."""


class op_budget:
    """``with profiler.op_budget(max_ops=..., max_calls={...}, max_bytes=..., max_device_bytes=...,
    max_syncs=...):`` the pytest marker's budget scoped to a block (the step under test, not the model's
    construction), usable outside pytest. The limits are checked on entry (TypeError/ValueError naming
    the argument); leaving the block without an exception raises BudgetExceeded, an AssertionError naming
    the counts, when a limit is exceeded. ``.counts`` holds what was measured."""

    def __init__(self, *, max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None, max_syncs=None):
        self.limits = budget_limits({"max_ops": max_ops, "max_calls": max_calls, "max_bytes": max_bytes,
                                     "max_device_bytes": max_device_bytes, "max_syncs": max_syncs},
                                    ops=D.registry())
        self._counter = None

    @property
    def counts(self) -> Counts:
        return self._counter.counts if self._counter is not None else Counts()

    def __enter__(self):
        self._counter = count_ops().__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._counter.__exit__(exc_type, exc, tb)
        if exc_type is None:
            over = check_budget(self.counts, **self.limits)
            if over:
                raise BudgetExceeded(exceeded_message(self.counts, over))
        return False
