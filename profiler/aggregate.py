"""key_averages: one row per (name[, input shapes][, stack]), from the event store, as torch's.

Honest totals: an event nested inside another of the same row (recursion, a range re-entered) adds
its calls and self time but not its total time again, so "CPU total" never exceeds the time actually
spent (torch counts such time twice). Names are the trace's (torch_names.py), so forward and backward
ops of the same name share a row, as in torch's table.
Times are microseconds (floats), as in torch's FunctionEventAvg.
"""
from __future__ import annotations

import numpy as np

from ._nogc import no_gc
from .events import EventStore, dense_unique, extra_table
from .function_event import TorchEventFields

SORT_KEYS = ("self_cpu_time_total", "cpu_time_total", "cuda_time_total", "self_cuda_time_total",
             "device_time_total", "self_device_time_total", "cpu_memory_usage", "self_cpu_memory_usage",
             "cuda_memory_usage", "self_cuda_memory_usage", "device_memory_usage", "self_device_memory_usage",
             "count", "flops", "cpu_time", "cuda_time")


class FunctionEventAvg(TorchEventFields):
    """One row of key_averages(); attribute names follow torch's FunctionEventAvg."""

    __slots__ = ("key", "kind", "phase", "count", "self_cpu_time_total", "cpu_time_total", "self_device_time_total",
                 "device_time_total", "cpu_memory_usage", "self_cpu_memory_usage", "cuda_memory_usage",
                 "self_cuda_memory_usage", "input_shapes", "stack", "flops", "is_top_level")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def name(self):
        return self.key

    @property
    def display_name(self):
        """The table's name: the trace's (torch_names.py)."""
        return self.key

    @property
    def cpu_time(self):
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def device_time(self):
        return self.device_time_total / self.count if self.count else 0.0

    cuda_time = device_time
    cpu_parent = None
    cpu_children: list = []
    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)
    device_memory_usage = property(lambda self: self.cuda_memory_usage)
    self_device_memory_usage = property(lambda self: self.self_cuda_memory_usage)

    def add(self, other):
        """torch's FunctionEventAvg.add: `other` (an event or a row of the same key) summed into this row."""
        if other.key != self.key:
            raise AssertionError(f"Expected keys to match, but got {other.key} vs {self.key}")
        for f in ("cpu_time_total", "device_time_total", "self_cpu_time_total", "self_device_time_total",
                  "cpu_memory_usage", "self_cpu_memory_usage", "cuda_memory_usage", "self_cuda_memory_usage", "count",
                  "flops"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key!r} kind={self.kind} phase={self.phase} count={self.count} "
                f"self_cpu_time_total={self.self_cpu_time_total:.3f}us cpu_time_total={self.cpu_time_total:.3f}us>")


class EventList(list):
    """torch's EventList: key_averages()'s rows (FunctionEventAvg), or prof.events() (FunctionEvent), with
    table(), total_average(), key_averages(), self_cpu_time_total and the profile's exports."""

    def __init__(self, rows=(), *, store: EventStore | None = None, group_by_input_shape=False, group_by_stack_n=0,
                 profile=None):
        super().__init__(rows)
        self._store = store
        self._by_shape = group_by_input_shape
        self._stack_n = group_by_stack_n
        self._profile = profile

    def _source(self, what):
        if self._profile is None:
            raise RuntimeError(f"{what} needs the profile this list came from (prof.events() or prof.key_averages())")
        return self._profile

    def key_averages(self, group_by_input_shapes=False, group_by_stack_n=0, group_by_overload_name=False):
        """The profile's rows (torch's EventList.key_averages; tensorlib's ops have no overloads, so grouping
        by overload name changes nothing)."""
        return self._source("key_averages()").key_averages(group_by_input_shapes, group_by_stack_n)

    def export_chrome_trace(self, path):
        return self._source("export_chrome_trace()").export_chrome_trace(path)

    def export_stacks(self, path, metric="self_cpu_time_total"):
        return self._source("export_stacks()").export_stacks(path, metric)

    @staticmethod
    def supported_export_stacks_metrics():
        from .stacks import METRICS
        return list(METRICS)

    @property
    def self_cpu_time_total(self) -> float:
        """The profiled time (µs): every event's self time, i.e. the root events' durations."""
        if self._store is not None:
            return self._store.self_total_ns() / 1e3
        return sum(r.self_cpu_time_total for r in self)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75, max_name_column_width=55,
              max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None):
        from .table import build_table
        return build_table(self, sort_by=sort_by, row_limit=row_limit, max_name_column_width=max_name_column_width,
                           max_src_column_width=max_src_column_width, max_shapes_column_width=max_shapes_column_width,
                           header=header, top_level_events_only=top_level_events_only, time_unit=time_unit)

    def total_average(self) -> FunctionEventAvg:
        """All rows summed into one ("Total"), torch's total_average(); CPU total is the profiled time."""
        tot = FunctionEventAvg(key="Total", kind="total", phase="", count=sum(r.count for r in self), input_shapes=None,
                               stack=None, is_top_level=True)
        for f in ("self_cpu_time_total", "self_device_time_total", "self_cpu_memory_usage", "self_cuda_memory_usage",
                  "flops"):
            setattr(tot, f, sum(getattr(r, f) for r in self))
        top = [r for r in self if r.is_top_level]
        for f in ("cpu_time_total", "device_time_total", "cpu_memory_usage", "cuda_memory_usage"):
            setattr(tot, f, sum(getattr(r, f) for r in top))
        return tot

    def __str__(self):
        return self.table()


STEP_ROW = "ProfilerStep*"


def _row_names(store: EventStore) -> list[str]:
    """The row name of each name id: torch's, where every ProfilerStep#N is one "ProfilerStep*" row."""
    return [STEP_ROW if n.startswith("ProfilerStep#") else n for n in store.names]


def _group_ids(store: EventStore, by_shape: bool, stack_n: int):
    # by name, as torch: forward and backward aten::mm are one row, and so are all ProfilerStep#N
    row_names = _row_names(store)
    first_id: dict[str, int] = {}
    canon = np.fromiter((first_id.setdefault(nm, k) for k, nm in enumerate(row_names)), np.int64, len(row_names))
    key = canon[store.name_id] if len(row_names) else store.name_id.astype(np.int64)
    extra_keys = []
    if (by_shape or stack_n > 0) and store.extra is not None:
        table, eid = extra_table(store)         # per distinct extra, then per event by its index
        if by_shape:
            idx: dict = {}
            extra_keys.append(np.fromiter((idx.setdefault(_freeze(e[0][0]) if e[0] else (), len(idx))
                                           for e in table), np.int64, len(table))[eid])
        if stack_n > 0:
            idx2: dict = {}
            extra_keys.append(np.fromiter((idx2.setdefault(tuple(e[1][-stack_n:]) if e[1] else (), len(idx2))
                                           for e in table), np.int64, len(table))[eid])
    for k in extra_keys:
        _, key = np.unique(np.stack([key, k]), axis=1, return_inverse=True)
        key = key.reshape(-1)
    uniq, gid = dense_unique(key, int(key.max()) + 1 if len(key) else 0)
    return gid, len(uniq)


def _freeze(x):
    return tuple(_freeze(v) for v in x) if isinstance(x, list) else x


def _nested_in_same_group(store: EventStore, gid):
    """True for events with an ancestor in the same group (their time is already in that ancestor's)."""
    dup = np.zeros(len(store), bool)
    anc = store.parent.copy()
    live = np.flatnonzero(anc >= 0)
    while len(live):
        a = anc[live]
        dup[live] |= gid[a] == gid[live]
        nxt = store.parent[a]
        anc[live] = nxt
        live = live[(nxt >= 0) & ~dup[live]]
    return dup


@no_gc
def key_averages(store: EventStore, group_by_input_shape=False, group_by_stack_n=0, profile=None) -> EventList:
    n = len(store)
    if n == 0:
        return EventList([], store=store, group_by_input_shape=group_by_input_shape, group_by_stack_n=group_by_stack_n,
                         profile=profile)
    gid, g = _group_ids(store, group_by_input_shape, group_by_stack_n)
    outer = ~_nested_in_same_group(store, gid)
    dur = store.t1 - store.t0

    nested = not outer.all()
    none = np.zeros(g, np.int64)

    def s(values, mask=None, present=True):
        """Per-group sums (a column that was not recorded is all zeros: skipped)."""
        if not present:
            return none
        w = values if mask is None or not nested else np.where(mask, values, 0)
        return np.rint(np.bincount(gid, weights=w, minlength=g)).astype(np.int64)

    count = np.bincount(gid, minlength=g)
    dev, mem, ext = store.has_device_time, store.has_memory, store.extra is not None
    self_cpu = s(store.self_ns)
    cpu_tot = s(dur, outer)
    self_dev = s(store.self_dev_ns, present=dev)
    dev_tot = s(store.dev_ns, outer, present=dev)
    self_cm = s(store.self_cpu_mem, present=mem)
    cm = s(store.cpu_mem, outer, present=mem)
    self_gm = s(store.self_cuda_mem, present=mem)
    gm = s(store.cuda_mem, outer, present=mem)
    flops = s(store.flops(), present=ext)
    top = np.bincount(gid, weights=(store.parent < 0), minlength=g) > 0
    first = np.full(g, n, np.int64)
    np.minimum.at(first, gid, np.arange(n))
    rows = []
    row_names = _row_names(store)
    for k in range(g):
        i = int(first[k])
        ex = store.extra[i] if store.extra is not None else None
        shapes = (ex[0][0] if ex is not None and ex[0] else []) if group_by_input_shape else None
        stack = list(ex[1][-group_by_stack_n:][::-1]) if (group_by_stack_n and ex is not None and ex[1]) else []
        rows.append(FunctionEventAvg(
            key=row_names[store.name_id[i]], kind=store.kind_of(i),
            phase=store.phase_of(i),
            count=int(count[k]), self_cpu_time_total=int(self_cpu[k]) / 1e3, cpu_time_total=int(cpu_tot[k]) / 1e3,
            self_device_time_total=int(self_dev[k]) / 1e3, device_time_total=int(dev_tot[k]) / 1e3,
            cpu_memory_usage=int(cm[k]), self_cpu_memory_usage=int(self_cm[k]), cuda_memory_usage=int(gm[k]),
            self_cuda_memory_usage=int(self_gm[k]), input_shapes=shapes, stack=stack, flops=int(flops[k]),
            is_top_level=bool(top[k])))
    return EventList(rows, store=store, group_by_input_shape=group_by_input_shape, group_by_stack_n=group_by_stack_n,
                     profile=profile)
