"""tensorlib.cuda.nvtx (torch.cuda.nvtx) as an NVTX tool sees it: default-domain ranges nested around the
profiler's own, marks, and torch's return values."""
from __future__ import annotations

import pytest

import tensorlib as tl

from .nvtx_injection.recorder import ranges, run_under_recorder

SCRIPT = """
import tensorlib as tl
n = tl.cuda.nvtx
assert n.range_push("outer") == 0
with n.range("step {}", 7):
    n.mark("here")
assert n.range_pop() == 0 and n.range_pop() == -1
rid = n.range_start("async")
n.range_end(rid)
"""


def test_ranges_reach_an_nvtx_tool(nvtx_recorder_lib, tmp_path):
    records = run_under_recorder(nvtx_recorder_lib, ["-c", SCRIPT], tmp_path / "r.jsonl")
    default = {r["domain"] for r in records if r.get("message") == "outer"}
    assert len(default) == 1
    domain = default.pop()
    assert [r[:3] for r in ranges(records, domain=domain)] == [
        ("push", 1, "outer"), ("push", 2, "step 7"), ("pop", 2), ("pop", 1)]
    events = [(r["event"], r.get("message")) for r in records if r["domain"] == domain and r["event"] != "domain"]
    assert ("mark", "here") in events        # (the recorder tool does not implement start/end ranges)


def test_pop_without_push_and_unknown_end():
    assert tl.cuda.nvtx.range_pop() == -1
    with pytest.raises(ValueError, match="no range with id 12345 was started"):
        tl.cuda.nvtx.range_end(12345)
