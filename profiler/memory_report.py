"""export_memory_timeline (JSON per device: time and allocated bytes) and memory_summary (text)."""
from __future__ import annotations

import orjson

from ._atomic import write_bytes
from .memory_record import device_name, format_bytes, timeline


def _need(store, profile_memory):
    if not profile_memory:
        raise RuntimeError("no memory was recorded: profile with profile_memory=True")


def timelines(store):
    if store.mem_events is None:
        return {}
    return timeline(store.mem_events, getattr(store, "cuda_base", {}), getattr(store, "cpu_base", 0))


def export_memory_timeline(store, path, profile_memory=True):
    """``{"devices": {"cpu": {"times_us": [...], "allocated_bytes": [...], "peak_bytes": N}}, ...}``;
    times in µs since the profile started, as in the Chrome trace."""
    _need(store, profile_memory)
    out = {}
    for key, (t, total) in timelines(store).items():
        out[device_name(key)] = {"times_us": ((t - store.t_base) / 1e3).round(3).tolist(),
                                 "allocated_bytes": total.tolist(),
                                 "peak_bytes": int(total.max()) if len(total) else 0}
    doc = {"baseTimeNanoseconds": store.wall_base_ns, "devices": out}
    write_bytes(path, orjson.dumps(doc), what="memory timeline")
    return path


def memory_summary(store, profile_memory=True) -> str:
    _need(store, profile_memory)
    lines = ["Memory summary (bytes allocated while profiling)"]
    tls = timelines(store)
    if not tls:
        lines.append("  no allocations recorded")
    mem = store.mem_events
    for key, (t, total) in tls.items():
        m = (mem["dev_type"] == key[0]) & (mem["dev_id"] == key[1])
        b = mem["bytes"][m]
        lines.append(f"  {device_name(key)}: peak {format_bytes(int(total.max()))}, "
                     f"at end {format_bytes(int(total[-1]))}, "
                     f"{int((b > 0).sum())} allocations ({format_bytes(int(b[b > 0].sum()))}), "
                     f"{int((b < 0).sum())} frees ({format_bytes(int(-b[b < 0].sum()))})")
    return "\n".join(lines)
