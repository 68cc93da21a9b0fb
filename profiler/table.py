"""torch.profiler's table: same columns, widths, number formats and footers, so eyes (and scripts)
used to torch's output read ours. A column appears only when some row has data for it.

Names (record_function's user strings, module names) and source locations are shown through
safeio.literal, so a control character in one cannot drive the terminal; torch prints them raw. Only
the rendering escapes: the stored names and the exported trace keep them as they were."""
from __future__ import annotations

from safeio import literal

from .memory_record import format_bytes

from .aggregate import SORT_KEYS

_ALIASES = {"cuda_time_total": "device_time_total", "self_cuda_time_total": "self_device_time_total",
            "device_memory_usage": "cuda_memory_usage", "self_device_memory_usage": "self_cuda_memory_usage",
            "cuda_time": "device_time"}


def format_time(us: float, unit: str | None = None) -> str:
    """torch's _format_time: 3 decimals in s, ms or us (chosen per value unless `unit` is given)."""
    if unit is None:
        unit = "s" if us >= 1e6 else "ms" if us >= 1e3 else "us"
    if unit == "s":
        return f"{us / 1e6:.3f}s"
    if unit == "ms":
        return f"{us / 1e3:.3f}ms"
    if unit == "us":
        return f"{us:.3f}us"
    raise ValueError(f"time_unit must be one of 's', 'ms', 'us' (or None to choose per value), got {unit!r}")


def _pct(part, total):
    return f"{(part / total * 100 if total else 0.0):.2f}%"


def _flops_scale(max_flops):
    for scale, unit in ((1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs"), (1e6, "MFLOPs"), (1e3, "KFLOPs")):
        if max_flops >= scale:
            return scale, unit
    return 1.0, "FLOPs"


def sort_rows(rows, sort_by):
    if sort_by is None:
        return list(rows)
    if sort_by not in SORT_KEYS:
        raise ValueError(f"unknown sort_by key {sort_by!r}; valid keys: {', '.join(SORT_KEYS)}")
    attr = _ALIASES.get(sort_by, sort_by)
    return sorted(rows, key=lambda r: getattr(r, attr), reverse=True)


def build_table(events, sort_by=None, row_limit=100, max_name_column_width=55, max_src_column_width=75,
                max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None):
    if time_unit not in (None, "s", "ms", "us"):
        raise ValueError(f"time_unit must be one of 's', 'ms', 'us' (or None to choose per value), got {time_unit!r}")
    rows = sort_rows(events, sort_by)
    if top_level_events_only:
        rows = [r for r in rows if r.is_top_level]
    if row_limit is not None and row_limit > 0:
        rows = rows[:row_limit]
    store = getattr(events, "_store", None)
    self_cpu_total = store.self_total_ns() / 1e3 if store is not None else sum(r.self_cpu_time_total for r in events)
    self_dev_total = (int(store.self_dev_ns.sum()) / 1e3 if store is not None
                      else sum(r.self_device_time_total for r in events))
    has_cuda = bool(store is not None and store.has_device_time)
    has_mem = bool(store is not None and store.has_memory)
    has_cpu_mem = has_mem and any(r.cpu_memory_usage or r.self_cpu_memory_usage for r in events)
    has_cuda_mem = has_mem and any(r.cuda_memory_usage or r.self_cuda_memory_usage for r in events)
    by_shape = getattr(events, "_by_shape", False)
    stack_n = getattr(events, "_stack_n", 0)
    has_stack = stack_n > 0 and any(r.stack for r in events)
    stacks = [[literal(f) for f in r.stack] for r in rows] if has_stack else [[] for _ in rows]
    max_flops = max((r.flops for r in events), default=0)

    names = [literal(r.display_name) for r in rows]
    name_w = max([len(n) for n in names] + [4])
    if max_name_column_width is not None:
        name_w = min(name_w, max_name_column_width)
    w = 12
    cols = [("Name", name_w)]
    cols += [("Self CPU %", w), ("Self CPU", w), ("CPU total %", w), ("CPU total", w), ("CPU time avg", w)]
    if has_cuda:
        cols += [("Self CUDA", w), ("Self CUDA %", w), ("CUDA total", w), ("CUDA time avg", w)]
    if has_cpu_mem:
        cols += [("CPU Mem", w), ("Self CPU Mem", w)]
    if has_cuda_mem:
        cols += [("CUDA Mem", w), ("Self CUDA Mem", w)]
    cols += [("# of Calls", w)]
    if by_shape:
        shapes_w = min(max([len(str(r.input_shapes)) for r in rows] + [12]) + 4, max_shapes_column_width)
        cols.append(("Input Shapes", shapes_w))
    if has_stack:
        src_w = min(max([len(f) for st in stacks for f in st] + [15]) + 4, max_src_column_width)
        cols.append(("Source Location", src_w))
    if max_flops > 0:
        scale, unit = _flops_scale(max_flops)
        cols.append((f"Total {unit}", w))

    sep = "".join("-" * cw + "  " for _, cw in cols)
    lines = []
    if header:
        lines += ["=" * len(sep), header]
    lines += [sep, "".join(f"{name:>{cw}}  " for name, cw in cols), sep]

    def trunc(s, width):
        return s if len(s) <= width else s[:width - 3] + "..."

    for r, name, stack in zip(rows, names, stacks):
        cells = [trunc(name, name_w),
                 _pct(r.self_cpu_time_total, self_cpu_total), format_time(r.self_cpu_time_total, time_unit),
                 _pct(r.cpu_time_total, self_cpu_total), format_time(r.cpu_time_total, time_unit),
                 format_time(r.cpu_time, time_unit)]
        if has_cuda:
            cells += [format_time(r.self_device_time_total, time_unit), _pct(r.self_device_time_total, self_dev_total),
                      format_time(r.device_time_total, time_unit), format_time(r.device_time, time_unit)]
        if has_cpu_mem:
            cells += [format_bytes(r.cpu_memory_usage), format_bytes(r.self_cpu_memory_usage)]
        if has_cuda_mem:
            cells += [format_bytes(r.cuda_memory_usage), format_bytes(r.self_cuda_memory_usage)]
        cells.append(str(r.count))
        if by_shape:
            cells.append(trunc(str(r.input_shapes), shapes_w))
        extra_src = []
        if has_stack:
            cells.append(trunc(stack[0], src_w) if stack else "")
            extra_src = stack[1:]
        if max_flops > 0:
            cells.append(f"{r.flops / scale:.3f}" if r.flops > 0 else "--")
        lines.append("".join(f"{c:>{cw}}  " for c, (_, cw) in zip(cells, cols)))
        for frame in extra_src:   # torch prints further stack frames on rows of their own
            blank = ["" for _ in cols]
            blank[[c for c, _ in cols].index("Source Location")] = trunc(frame, src_w)
            lines.append("".join(f"{c:>{cw}}  " for c, (_, cw) in zip(blank, cols)))
    lines.append(sep)
    lines.append(f"Self CPU time total: {format_time(self_cpu_total, time_unit)}")
    if has_cuda:
        lines.append(f"Self CUDA time total: {format_time(self_dev_total, time_unit)}")
        if getattr(store, "device_time_note", None):
            lines.append(store.device_time_note)
    return "\n".join(lines) + "\n"
