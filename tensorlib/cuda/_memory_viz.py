"""torch.cuda._memory_viz's HTML plots for tensorlib's memory snapshots (tensorlib.cuda.memory._snapshot):
`trace_plot` (memory over time, from the trace) and `segment_plot` (how blocks fill the segments). As torch's,
the page embeds the pickled snapshot and draws it with PyTorch's MemoryViz.js (loaded from its CDN when the page
is opened; pytorch.org/memory_viz reads the pickle from _dump_snapshot too). torch's text and flamegraph tools
(segsum, trace, segments, memory, compare) read the same snapshot when torch is installed."""
from __future__ import annotations

import base64
import json
import pickle
import warnings

__all__ = ["trace_plot", "segment_plot"]

_TEMPLATE = r"""
<!DOCTYPE html>
<html>
<head>
</head>
<body>
<script type="module">
import {add_local_files} from "https://cdn.jsdelivr.net/gh/pytorch/pytorch@main/torch/utils/viz/MemoryViz.js"
const local_files = $SNAPSHOT
add_local_files(local_files, $VIZ_KIND)
</script>
</body>
"""


def _format_viz(data, viz_kind, device):
    if device is not None:
        warnings.warn("device argument is deprecated, plots now contain all device", FutureWarning, stacklevel=3)
    buffer = pickle.dumps(data)
    buffer += b"\x00" * (3 - len(buffer) % 3)          # as torch pads it (the page strips it)
    encoded = base64.b64encode(buffer).decode("utf-8")
    files = json.dumps([{"name": "snapshot.pickle", "base64": encoded}])
    return _TEMPLATE.replace("$VIZ_KIND", repr(viz_kind)).replace("$SNAPSHOT", files)


def _filter_freed(data):
    """The trace without the alloc/free pairs of memory freed within it (what is left: the memory still live)."""
    data = dict(data)
    traces = []
    for trace in data["device_traces"]:
        drop, alloc_at, requested = set(), {}, set()
        for i, e in enumerate(trace):
            a = e["action"]
            if a == "alloc":
                alloc_at[e["addr"]] = i
            elif a == "free_requested":
                requested.add(e["addr"])
                if e["addr"] in alloc_at:
                    drop.update((i, alloc_at.pop(e["addr"])))
            elif a == "free_completed" and e["addr"] in requested:
                requested.discard(e["addr"])
                drop.add(i)
        traces.append([e for i, e in enumerate(trace) if i not in drop])
    data["device_traces"] = traces
    return data


def trace_plot(data, device=None, plot_segments=False, filter_freed=False) -> str:
    """HTML of the memory in use over the snapshot's trace (plot_segments: the segments instead of the
    allocations; filter_freed: only the allocations not freed within the trace)."""
    if filter_freed:
        data = _filter_freed(data)
    return _format_viz(data, "Active Memory Timeline" if not plot_segments else "Active Cached Memory Timeline",
                       device)


def segment_plot(data, device=None) -> str:
    """HTML of how the allocations are packed into the segments at each point of the trace."""
    return _format_viz(data, "Allocator State History", device)
