"""Kineto's per-kernel figures (blocks per SM, warps per SM, est. achieved occupancy %) as our CUPTI traces
write them, against every distinct kernel of torch 2.11's traces of three training steps on an H200, and
against worked limits where a grid fills the SMs (which none of those kernels did)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiler.occupancy import from_kineto, kernel_args, kernel_figures, resident_blocks

H200 = {"multiProcessorCount": 132, "maxThreadsPerMultiProcessor": 2048, "regsPerMultiprocessor": 65536,
        "sharedMemPerMultiprocessor": 233472, "sharedMemPerBlock": 49152, "maxBlocksPerMultiProcessor": 32,
        "major": 9}
DATA = Path(__file__).parent / "data" / "torch_h200_kernel_figures.json"


def test_every_kernel_of_torchs_h200_traces():
    rows = json.loads(DATA.read_text())["rows"]
    assert len(rows) == 101
    for regs, smem, grid, block, per_sm, warps, occupancy in rows:
        got = kernel_figures(H200, grid, block, regs, smem)
        assert got == {"blocks per SM": per_sm, "warps per SM": warps, "est. achieved occupancy %": occupancy}, \
            (regs, smem, grid, block)


@pytest.mark.parametrize("threads, regs, smem, blocks", [
    (1024, 16, 0, 2),          # warps: 64 per SM, 32 per block
    (128, 16, 0, 16),          # 4 warps a block: 16 blocks by warps
    (32, 16, 0, 32),           # one warp a block: the SM's 32-block limit
    (256, 64, 0, 4),           # 2048 registers a warp: 32 warps by registers, 8 a block
    (256, 255, 0, 1),          # 8192 a warp: 2 warps per sub-partition, 8 in all
    (128, 16, 40 * 1024, 5),   # 41 KiB a block with the 1 KiB reserve: 5 in 228 KiB
    (128, 16, 53504, 0),       # beyond 48 KiB needs the opt-in, which Kineto's estimate does not assume
])
def test_the_limits_where_a_grid_fills_the_sms(threads, regs, smem, blocks):
    assert resident_blocks(H200, threads, regs, smem) == blocks
    got = kernel_figures(H200, (132 * 64, 1, 1), (threads, 1, 1), regs, smem)
    assert got["blocks per SM"] == 64 and got["est. achieved occupancy %"] == int(0.5 + 100 * blocks * threads / 2048)


def test_kernel_args_are_in_kinetos_order():
    extra = {"registers per thread": 34, "shared memory": 0, "grid": [26, 1, 1], "block": [512, 1, 1]}
    args = kernel_args(extra, H200)
    assert list(args) == ["registers per thread", "shared memory", "blocks per SM", "warps per SM", "grid", "block",
                          "est. achieved occupancy %"]
    assert (args["blocks per SM"], args["warps per SM"], args["est. achieved occupancy %"]) == (0.19697, 3.151515, 5)
    assert list(kernel_args(extra, None)) == list(extra)       # no device properties: CUPTI's fields alone


def test_a_traces_device_properties_give_the_same_figures():
    """nsys imports compute the figures from the trace's deviceProperties (Kineto's keys)."""
    kineto = {"id": 0, "numSms": 132, "maxThreadsPerMultiprocessor": 2048, "regsPerMultiprocessor": 65536,
              "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": 233472, "computeMajor": 9, "computeMinor": 0}
    props = from_kineto(kineto)
    for shape in ((1024, 16, 0), (256, 64, 0), (128, 16, 40 * 1024), (32, 16, 0)):
        assert resident_blocks(props, *shape) == resident_blocks(H200, *shape)
    assert from_kineto({"id": 0, "numSms": 132}) is None and from_kineto(None) is None
    assert resident_blocks(dict(props, major=8, minor=6), 32, 16, 0) == 16     # sm_86 holds 16 blocks an SM


@pytest.mark.cuda
def test_device_properties_carry_kinetos_fields(tmp_path):
    import tensorlib as tl
    from profiler import ProfilerActivity, profile
    x = tl.ones(4, device="cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        x + 1
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    props = json.loads((tmp_path / "t.json").read_text())["deviceProperties"]
    assert props and set(props[0]) >= {"id", "name", "numSms", "maxThreadsPerMultiprocessor", "regsPerMultiprocessor",
                                       "sharedMemPerBlockOptin", "sharedMemPerMultiprocessor"}
