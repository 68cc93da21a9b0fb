"""prof.events(): one FunctionEvent per recorded op or range, a view onto the event store.

Names follow torch's FunctionEvent where torch has them (times in µs: ``cpu_time_total``,
``self_cpu_time_total``; ``sequence_nr``, ``input_shapes``, ``thread``, ``cpu_children``...), plus
exact integer nanoseconds (``start_ns``, ``end_ns``, ``duration_ns``, ``self_time_ns``) for tools that
check invariants, e.g. a pytest budget plugin counting ops and bytes.
"""
from __future__ import annotations

from tensorlib.autograd import DeviceType


def format_time(time_us: float) -> str:
    """torch's FunctionEvent time format: 12.345us, 1.234ms, 1.234s."""
    if time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


class Interval:
    """torch's FunctionEvent.time_range: start and end in µs since the profile began."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start = start
        self.end = end

    def elapsed_us(self):
        return self.end - self.start

    def __repr__(self):
        return f"Interval(start={self.start}, end={self.end})"


class TorchEventFields:
    """The fields torch's FunctionEvent and FunctionEventAvg share that tensorlib answers with constants:
    its ops have no overloads, no remote or async events, and a profiled op is a CPU event (its GPU time is
    in the device columns, as torch's CPU op with its kernels). Also torch's ``*_str`` time formats."""

    __slots__ = ()
    overload_name = ""
    node_id = -1
    scope = 0
    is_async = False
    is_remote = False
    is_legacy = False
    use_device = None
    device_type = DeviceType.CPU
    cpu_time_str = property(lambda self: format_time(self.cpu_time))
    cpu_time_total_str = property(lambda self: format_time(self.cpu_time_total))
    self_cpu_time_total_str = property(lambda self: format_time(self.self_cpu_time_total))
    device_time_str = property(lambda self: format_time(self.device_time))
    device_time_total_str = property(lambda self: format_time(self.device_time_total))
    self_device_time_total_str = property(lambda self: format_time(self.self_device_time_total))
    is_user_annotation = property(lambda self: self.kind == "user")


class FunctionEvent(TorchEventFields):
    """One op or range. ``kind`` is "op" or the range kind ("module", "backward", "optimizer", "data",
    "user", "step", "sync"); ``phase`` is "forward" or "backward"."""

    __slots__ = ("_s", "id", "_children")

    def __init__(self, store, i, children):
        self._s = store
        self.id = i
        self._children = children

    @property
    def trace_name(self) -> str:
        """The name as recorded and written to the trace (``ProfilerStep#3``), torch's trace_name."""
        return self._s.names[self._s.name_id[self.id]]

    @property
    def name(self) -> str:
        """torch's name: the trace name, except every step is ``ProfilerStep*`` (the table's one row)."""
        n = self.trace_name
        return "ProfilerStep*" if n.startswith("ProfilerStep#") else n

    key = name
    display_name = name
    kind = property(lambda self: self._s.kind_of(self.id))
    phase = property(lambda self: self._s.phase_of(self.id))
    thread = property(lambda self: int(self._s.tid[self.id]))
    start_ns = property(lambda self: int(self._s.t0[self.id] - self._s.t_base))
    end_ns = property(lambda self: int(self._s.t1[self.id] - self._s.t_base))
    duration_ns = property(lambda self: int(self._s.t1[self.id] - self._s.t0[self.id]))
    self_time_ns = property(lambda self: int(self._s.self_ns[self.id]))
    cpu_time_total = property(lambda self: self.duration_ns / 1e3)
    self_cpu_time_total = property(lambda self: self.self_time_ns / 1e3)
    device_time_ns = property(lambda self: int(self._s.dev_ns[self.id]))
    self_device_time_ns = property(lambda self: int(self._s.self_dev_ns[self.id]))
    device_time_total = property(lambda self: self.device_time_ns / 1e3)
    self_device_time_total = property(lambda self: self.self_device_time_ns / 1e3)
    cuda_time_total = device_time_total
    self_cuda_time_total = self_device_time_total
    cpu_memory_usage = property(lambda self: int(self._s.cpu_mem[self.id]))
    self_cpu_memory_usage = property(lambda self: int(self._s.self_cpu_mem[self.id]))
    cuda_memory_usage = property(lambda self: int(self._s.cuda_mem[self.id]))
    self_cuda_memory_usage = property(lambda self: int(self._s.self_cuda_mem[self.id]))
    depth = property(lambda self: int(self._s.depth[self.id]))
    device_memory_usage = cuda_memory_usage
    self_device_memory_usage = self_cuda_memory_usage
    count = 1
    cpu_time = cpu_time_total
    device_time = device_time_total
    cuda_time = device_time_total
    time_range = property(lambda self: Interval(self.start_ns / 1e3, self.end_ns / 1e3))

    @property
    def sequence_nr(self) -> int:
        return int(self._s.seq[self.id])

    def _extra(self, k):
        ex = self._s.extra
        return None if ex is None else ex[self.id][k]

    @property
    def input_shapes(self):
        sd = self._extra(0)
        return sd[0] if sd else []

    @property
    def input_dtypes(self):
        sd = self._extra(0)
        return sd[1] if sd else []

    @property
    def stack(self):
        """User frames, innermost first (torch's order), as ``file(line): function``."""
        st = self._extra(1)
        return list(reversed(st)) if st else []

    @property
    def flops(self) -> int:
        f = self._extra(2)
        return int(f or 0)

    @property
    def parent(self):
        p = int(self._s.parent[self.id])
        return None if p < 0 else self._children.event(p)

    cpu_parent = parent
    is_top_level = property(lambda self: int(self._s.parent[self.id]) < 0)

    @property
    def children(self):
        return self._children.children_of(self.id)

    cpu_children = children

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name!r} kind={self.kind} phase={self.phase} "
                f"thread={self.thread} start_ns={self.start_ns} duration_ns={self.duration_ns} "
                f"self_time_ns={self.self_time_ns} "
                f"seq={self.sequence_nr}>")


class EventTree:
    """The FunctionEvent objects of a store, made on first use, with each event's children."""

    def __init__(self, store):
        self.store = store
        self._events = [FunctionEvent(store, i, self) for i in range(len(store))]
        self._kids = None

    def event(self, i):
        return self._events[i]

    def events(self):
        return list(self._events)

    def children_of(self, i):
        if self._kids is None:
            order, first, last = self.store.children_lists()
            self._kids = (order.tolist(), first, last)
        order, first, last = self._kids
        return [self._events[j] for j in order[first[i]:last[i]]]
