"""tensorlib's CUDA memory snapshot (tensorlib.cuda.memory._dump_snapshot) read by torch 2.13's
torch.cuda._memory_viz: the flamegraph inputs (segments, memory, compare), the text reports (segsum checks that
each segment's blocks add up, trace), and the HTML plots (trace_plot, segment_plot). The snapshot is made in a
subprocess on the fake CuPy (tests/fakecupy; this machine has no GPU, and torch is not imported beside it).
Also: tensorlib's functions take torch's parameters. Skipped where torch is not installed."""
import inspect
import os
import pathlib
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

from torch.cuda import _memory_viz  # noqa: E402

import tensorlib as tl  # noqa: E402
from tensorlib.cuda import memory as M  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

_PROGRAM = r"""
import gc, sys
import tensorlib as tl
from tensorlib.cuda import memory as M
M._record_memory_history(max_entries=1000)
keep = tl.randn(64, 64, device="cuda")
w = tl.randn(256, 256, device="cuda", requires_grad=True)
y = (w @ w).relu().sum()
y.backward()
del y
big = tl.empty(3 << 20, dtype=tl.uint8, device="cuda")
M._dump_snapshot(sys.argv[1])
del big
gc.collect()
tl.cuda.empty_cache()
M._dump_snapshot(sys.argv[2])
"""


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("snap")
    before, after = d / "before.pickle", d / "after.pickle"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'fakecupy'}{os.pathsep}{ROOT}"}
    subprocess.run([sys.executable, "-c", _PROGRAM, str(before), str(after)], check=True, env=env, cwd=ROOT,
                   timeout=120)
    out = []
    for p in (before, after):
        with open(p, "rb") as f:
            out.append(pickle.load(f))
    return out


def test_flamegraphs_and_reports_read_it(snapshots):
    before, after = snapshots
    assert before["segments"] and before["device_traces"][0]
    fake_flamegraph = lambda lines: lines        # noqa: E731 - the flamegraph.pl step needs a download
    for s in snapshots:
        lines = _memory_viz.segments(s, format_flamegraph=fake_flamegraph)
        assert "active_allocated" in lines and "test_memory_viz" not in lines
        assert "<module>" in _memory_viz.memory(s, format_flamegraph=fake_flamegraph)
        assert "total_reserved" in _memory_viz.segsum(s)   # raises if a segment's blocks do not add up
        assert "cudaMalloc(" in _memory_viz.trace(s)
    # compare takes memory_snapshot()'s lists (it iterates its arguments as segments)
    diff = _memory_viz.compare(before["segments"], after["segments"], format_flamegraph=fake_flamegraph)
    assert "only_before" in diff                  # the 3 MiB segment empty_cache gave back


def test_plots_read_it(snapshots):
    before, _ = snapshots
    for html in (_memory_viz.trace_plot(before), _memory_viz.trace_plot(before, plot_segments=True),
                 _memory_viz.segment_plot(before), _memory_viz.trace_plot(dict(before), filter_freed=True)):
        assert "add_local_files" in html and "snapshot.pickle" in html


def test_the_trace_tells_the_same_story_as_the_segments(snapshots):
    """Replaying the trace's alloc/free_completed and segment_alloc/segment_free gives the snapshot's active
    blocks and segments (the check MemoryViz.js relies on to draw the timeline backwards from the state)."""
    for s in snapshots:
        blocks, segs = set(), set()
        for e in s["device_traces"][0]:
            a = e["action"]
            if a == "alloc":
                blocks.add((e["addr"], e["size"]))
            elif a == "free_completed":
                blocks.discard((e["addr"], e["size"]))
            elif a == "segment_alloc":
                segs.add((e["addr"], e["size"]))
            elif a == "segment_free":
                segs.discard((e["addr"], e["size"]))
        assert blocks == {(b["address"], b["size"]) for seg in s["segments"] for b in seg["blocks"]
                          if b["state"] == "active_allocated"}
        assert segs == {(seg["address"], seg["total_size"]) for seg in s["segments"]}


def test_tensorlibs_plots_are_torchs(snapshots):
    before, _ = snapshots
    assert tl.cuda._memory_viz.trace_plot(before) == _memory_viz.trace_plot(before)
    assert tl.cuda._memory_viz.trace_plot(before, plot_segments=True) == \
        _memory_viz.trace_plot(before, plot_segments=True)
    assert tl.cuda._memory_viz.segment_plot(before) == _memory_viz.segment_plot(before)
    ours = tl.cuda._memory_viz.trace_plot(before, filter_freed=True)
    assert ours == _memory_viz.trace_plot(pickle.loads(pickle.dumps(before)), filter_freed=True)
    for name in ("trace_plot", "segment_plot"):
        assert inspect.signature(getattr(tl.cuda._memory_viz, name)).parameters.keys() == \
            inspect.signature(getattr(_memory_viz, name)).parameters.keys()


@pytest.mark.parametrize("name", ["_record_memory_history", "_snapshot", "_dump_snapshot", "memory_snapshot"])
def test_same_parameters(name):
    ours, theirs = inspect.signature(getattr(M, name)), inspect.signature(getattr(torch.cuda.memory, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    assert hasattr(tl.cuda, name) == hasattr(torch.cuda, name)
