"""export_memory_timeline (torch's files: plot points, raw events or an HTML plot) and memory_summary (text)."""
from __future__ import annotations

import os

import numpy as np
import orjson

from ._atomic import write_bytes
from .memory_record import CPU, CUDA, device_name, format_bytes, timeline


def _need(store, profile_memory):
    if not profile_memory:
        raise RuntimeError("no memory was recorded: profile with profile_memory=True")


def timelines(store):
    if store.mem_events is None:
        return {}
    return timeline(store.mem_events, getattr(store, "cuda_base", {}), getattr(store, "cpu_base", 0))


# torch.profiler._memory_profiler's categories, in the order of its plot rows (_CATEGORY_TO_INDEX); tensorlib
# does not infer them (torch's data-flow analysis of parameters, gradients, activations...): every byte is UNKNOWN
CATEGORIES = ("PARAMETER", "OPTIMIZER_STATE", "INPUT", "TEMPORARY", "ACTIVATION", "GRADIENT", "AUTOGRAD_DETAIL",
              "UNKNOWN")
UNKNOWN = CATEGORIES.index("UNKNOWN")
PREEXISTING, CREATE, DESTROY = 1, 2, 4          # torch's _ACTION_TO_INDEX


def _device_key(device):
    """(device type, index) of `device` ("cpu", "cuda:1", a tensorlib.device); None: torch's default,
    cuda:0 where CUDA is available, else the CPU."""
    import tensorlib
    if device is None:
        device = "cuda:0" if tensorlib.cuda.is_available() else "cpu"
    try:
        d = tensorlib.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"export_memory_timeline: device must be 'cpu' or 'cuda:N', got {device!r:.60} ({e})"
                         ) from None
    return (CPU, 0) if d.type == "cpu" else (CUDA, d.index or 0)


def export_memory_timeline(store, path, device=None, profile_memory=True):
    """torch's export_memory_timeline for one device, the file's kind by its suffix as torch's: ``.html`` a
    plot (an inline SVG: no matplotlib needed), ``.raw.json.gz`` the raw events ``[t_ns, action, bytes,
    category]``, else (``.json``, ``.json.gz``) ``[times_us, sizes]`` with one row of 9 sizes per time
    (a 0, then bytes per category). Times are the Chrome trace's (µs since the profile began); the memory
    alive when profiling began shows as PREEXISTING at time 0."""
    _need(store, profile_memory)
    key = _device_key(device)
    mem = store.mem_events
    t_ns, deltas = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if mem is not None:
        m = (mem["dev_type"] == key[0]) & (mem["dev_id"] == key[1])
        t_ns, deltas = mem["t"][m] - store.t_base, mem["bytes"][m]
    base = int(getattr(store, "cuda_base", {}).get(key[1], 0) if key[0] == CUDA else getattr(store, "cpu_base", 0))
    name = os.fspath(path)
    if name.endswith("raw.json.gz"):
        raw = [[-1, PREEXISTING, base, UNKNOWN]] if base else []
        raw += [[t, CREATE if b > 0 else DESTROY, b, UNKNOWN] for t, b in zip(t_ns.tolist(), deltas.tolist())]
        write_bytes(path, orjson.dumps(raw), what="memory timeline")
        return path
    times, totals = _coalesced(t_ns, deltas, base)
    if name.endswith(".html"):
        write_bytes(path, _html(times, totals, device_name(key)).encode(), what="memory timeline")
        return path
    sizes = [[0] * UNKNOWN + [0, v] for v in totals.tolist()]
    write_bytes(path, orjson.dumps([times.tolist(), sizes]), what="memory timeline")
    return path


def _coalesced(t_ns, deltas, base):
    """(times in whole µs, bytes allocated after the last record of each) as torch's plot points, starting
    at time 0 with the bytes alive when profiling began."""
    t_us = t_ns // 1000
    totals = base + np.cumsum(deltas)
    last = np.flatnonzero(np.append(t_us[1:] != t_us[:-1], True)) if len(t_us) else np.zeros(0, np.int64)
    return np.concatenate([[0], t_us[last]]).astype(np.int64), np.concatenate([[base], totals[last]]).astype(np.int64)


def _html(times, totals, device: str) -> str:
    """A self-contained page: the allocated bytes over time as an SVG step line, the peak in the title."""
    from html import escape
    w, h, pad = 1000, 400, 50
    t_max = max(int(times[-1]), 1)
    peak = int(totals.max())
    y_max = max(peak, 1)
    xs = pad + (times / t_max) * (w - 2 * pad)
    ys = h - pad - (totals / y_max) * (h - 2 * pad)
    pts = [f"{xs[0]:.1f},{ys[0]:.1f}"]
    for i in range(1, len(xs)):
        pts += [f"{xs[i]:.1f},{ys[i - 1]:.1f}", f"{xs[i]:.1f},{ys[i]:.1f}"]
    title = escape(f"Memory timeline ({device}): peak {format_bytes(peak)}, at end {format_bytes(int(totals[-1]))}")
    return (f"<html>\n<head><meta charset=\"utf-8\" /><title>{title}</title></head>\n<body>\n<h3>{title}</h3>\n"
            f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\n"
            f"<line x1=\"{pad}\" y1=\"{h - pad}\" x2=\"{w - pad}\" y2=\"{h - pad}\" stroke=\"black\"/>\n"
            f"<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{h - pad}\" stroke=\"black\"/>\n"
            f"<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"2\" points=\"{' '.join(pts)}\"/>\n"
            f"<text x=\"{w - pad}\" y=\"{h - pad + 20}\" text-anchor=\"end\">{t_max / 1e3:.3f} ms</text>\n"
            f"<text x=\"{pad}\" y=\"{pad - 10}\">{escape(format_bytes(y_max))}</text>\n"
            f"</svg>\n<p>Bytes allocated on {escape(device)} over time (ms since the profile began); categories are "
            f"not inferred (all Unknown).</p>\n</body>\n</html>\n")


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
