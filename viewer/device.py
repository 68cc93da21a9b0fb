"""CPU and GPU lanes, device time per op, and busy time per kind of lane.

Kineto (and the profiler here) draw kernels, memcpys and memsets on GPU lanes (pid = device, tid =
stream) and bind each to its launch (`cudaLaunchKernel`, a `cuda_runtime` event nested in the op that
launched it) with an `ac2g` flow. An op's device time is then the time of the kernels launched by it
or by anything nested in it (torch's "CUDA total"); its self device time, that of the kernels whose
launch has it as the nearest op (torch's "Self CUDA").

Envelope spans (Kineto's `Trace` span over the whole profile, `gpu_user_annotation` over a stream)
cover time without being busy: they count in no busy time, so that a `%` reads as a share of what
its lanes really did.
"""

from __future__ import annotations

import numpy as np

from .convert import unique, unique_inverse
from .model import KIND_SPAN, Trace

GPU_CATS = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
ENVELOPE_CATS = frozenset({"Trace", "gpu_user_annotation"})


def cat_mask(trace: Trace, cats: frozenset[str]) -> np.ndarray:
    """Per event: its category is one of `cats`."""
    ids = np.array([k for k, c in enumerate(trace.cats) if c in cats], dtype=np.int64)
    return np.isin(trace.cat_id, ids) if len(ids) else np.zeros(len(trace), dtype=bool)


def gpu_lanes(trace: Trace) -> np.ndarray:
    """Per lane: it holds device activity (kernels, memcpys, memsets)."""
    out = np.zeros(len(trace.lanes), dtype=bool)
    gpu = cat_mask(trace, GPU_CATS)
    out[trace.lane[gpu]] = True
    return out


def gpu_activity(trace: Trace) -> np.ndarray:
    """Indices of the device activity spans (kernels, memcpys, memsets)."""
    return np.flatnonzero(cat_mask(trace, GPU_CATS) & (trace.kind == KIND_SPAN))


def busy_ns(trace: Trace) -> tuple[int, int]:
    """(CPU busy, GPU busy): the time the lanes of each kind were in a span that is not an envelope.

    Within a lane spans nest, so the sum of self times of non-envelope spans is the time covered."""
    span = (trace.kind == KIND_SPAN) & ~cat_mask(trace, ENVELOPE_CATS)
    on_gpu = gpu_lanes(trace)[trace.lane] if len(trace) else np.zeros(0, dtype=bool)
    cpu = int(trace.self_ns[span & ~on_gpu].sum())
    gpu = int(trace.self_ns[span & on_gpu].sum())
    return cpu, gpu


def device_time(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(device total, self device) ns per event, from the launch flows.

    Each launched kernel's duration goes to its launch event's nearest enclosing op (self) and to
    every ancestor (total), summed up the nesting one depth level at a time."""
    n = len(trace)
    total = np.zeros(n, dtype=np.int64)
    selfd = np.zeros(n, dtype=np.int64)
    src, dst, _ = trace.flows
    if not len(src):
        return total, selfd
    gpu = cat_mask(trace, GPU_CATS)
    keep = gpu[dst] & ~gpu[src]  # a flow from the CPU into a kernel: its launch (ac2g)
    s, d = src[keep], dst[keep]
    if not len(s):
        return total, selfd
    # One kernel, one launch: a kernel bound by two flows counts once.
    d, first = unique_inverse(d, first=True)
    s = s[first]
    dur = trace.dur[d]
    # The op that launched: the launch event (cudaLaunchKernel) is a runtime call nested in the op.
    runtime = cat_mask(trace, frozenset({"cuda_runtime", "cuda_driver"}))
    owner = np.where(runtime[s] & (trace.parent[s] >= 0), trace.parent[s], s)
    np.add.at(selfd, owner, dur)
    np.add.at(total, s, dur)
    # Bottom-up, deepest first: every event passes its total to its parent.
    depth = trace.depth.astype(np.int64)
    has = np.flatnonzero(total > 0)
    if not len(has):
        return total, selfd
    # Only the chains above the launches carry time: walk them level by level.
    frontier = has
    seen = np.zeros(n, dtype=bool)
    seen[frontier] = True
    order_depth = int(depth[frontier].max())
    levels: dict[int, list[np.ndarray]] = {}
    for lv in range(order_depth, -1, -1):
        here = frontier[depth[frontier] == lv]
        if lv in levels:
            here = unique(np.concatenate([here, *levels.pop(lv)]))
        if not len(here):
            continue
        par = trace.parent[here]
        ok = par >= 0
        np.add.at(total, par[ok], total[here[ok]])
        up = unique(par[ok])
        up = up[~seen[up]]
        seen[up] = True
        for d_ in unique(depth[up]).tolist():
            levels.setdefault(int(d_), []).append(up[depth[up] == d_])
    return total, selfd
