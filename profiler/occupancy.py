"""Kineto's per-kernel launch figures for a trace's ``kernel`` events: "blocks per SM", "warps per SM" and
"est. achieved occupancy %", which TensorBoard's profiler plugin averages in its kernel view and GPU
overview (SM efficiency, achieved occupancy).

As Kineto computes them (libkineto DeviceProperties.cpp and CuptiActivity.cpp): blocks per SM = the grid's
blocks / the device's SMs; warps per SM = blocks per SM x threads per block / 32; occupancy = min(blocks per
SM, the blocks one SM can hold at once) x threads per block / the SM's maximum threads, printed as
``int(0.5 + 100 x occupancy)``. Kineto asks CUDA's occupancy calculator (cuda_occupancy.h) for the blocks an SM
can hold; here the same limits are computed from the device's properties: the SM's block and warp limits,
its registers (allocated per warp in units of 256, split over 4 sub-partitions) and its shared memory (with
the 1 KiB the runtime reserves per block on compute capability 8.0 and later, in units of 128 bytes; none
beyond the default per-block limit, as Kineto asks without the opt-in). Checked against every kernel of torch
2.11's traces of an H200 (tests/profiler/test_occupancy.py); those kernels' grids were all below the SMs'
capacity, so the register and shared-memory limits are checked there only by worked examples.
"""
from __future__ import annotations

import math

WARP = 32
# the blocks an SM holds at most, by compute capability (CUDA C++ Programming Guide, "Technical
# Specifications"), where the device's properties do not say (nsys's TARGET_INFO_GPU)
_MAX_BLOCKS = {(5, 0): 32, (6, 0): 32, (7, 0): 32, (7, 5): 16, (8, 0): 32, (8, 6): 16, (8, 7): 16, (8, 9): 24,
               (9, 0): 32}


def kernel_args(extra: dict, props: dict | None) -> dict:
    """A kernel event's args in Kineto's order: CUPTI's registers per thread and shared memory, blocks and
    warps per SM, grid, block, estimated occupancy (the figures only where the device's properties are known,
    in CuPy's getDeviceProperties keys; see from_kineto)."""
    out = {k: extra[k] for k in ("registers per thread", "shared memory") if k in extra}
    figures = None
    if props is not None and "grid" in extra and "block" in extra:
        figures = kernel_figures(props, extra["grid"], extra["block"], extra.get("registers per thread") or 0,
                                 extra.get("shared memory") or 0)
        out["blocks per SM"] = figures["blocks per SM"]
        out["warps per SM"] = figures["warps per SM"]
    out.update((k, v) for k, v in extra.items() if k not in out)
    if figures is not None:
        out["est. achieved occupancy %"] = figures["est. achieved occupancy %"]
    return out


def from_kineto(device: dict | None) -> dict | None:
    """A trace's deviceProperties entry (Kineto's keys) as the properties kernel_figures reads, or None when it
    lacks the SM count or threads per SM."""
    if not device or not device.get("numSms") or not device.get("maxThreadsPerMultiprocessor"):
        return None
    out = {"multiProcessorCount": device["numSms"],
           "maxThreadsPerMultiProcessor": device["maxThreadsPerMultiprocessor"],
           "major": device.get("computeMajor", 0), "minor": device.get("computeMinor", 0)}
    for key in ("regsPerMultiprocessor", "sharedMemPerBlock", "sharedMemPerMultiprocessor"):
        if device.get(key):
            out[key] = device[key]
    return out


def kernel_figures(props: dict, grid, block, registers: int, shared_memory: int) -> dict:
    """{"blocks per SM", "warps per SM", "est. achieved occupancy %"} for one kernel launch, in Kineto's
    rounding; `props` as CuPy's getDeviceProperties gives them (multiProcessorCount, maxThreadsPerMultiProcessor,
    and where present regsPerMultiprocessor, sharedMemPerMultiprocessor, maxBlocksPerMultiProcessor, major)."""
    sms = props["multiProcessorCount"]
    blocks = grid[0] * grid[1] * grid[2]
    threads = block[0] * block[1] * block[2]
    per_sm = blocks / sms
    occupancy = min(per_sm, resident_blocks(props, threads, registers, shared_memory)) * threads \
        / props["maxThreadsPerMultiProcessor"]
    return {"blocks per SM": round(per_sm, 6), "warps per SM": round(per_sm * threads / WARP, 6),
            "est. achieved occupancy %": int(0.5 + occupancy * 100.0)}


def resident_blocks(props: dict, threads: int, registers: int, shared_memory: int) -> int:
    """How many blocks of this shape one SM holds at once: the least of its limits by blocks, warps,
    registers and shared memory (0 when one block does not fit)."""
    if threads <= 0:
        return 0
    warps = math.ceil(threads / WARP)
    cc = (props.get("major", 0), props.get("minor", 0))
    limits = [props.get("maxBlocksPerMultiProcessor") or _MAX_BLOCKS.get(cc, 32),
              props["maxThreadsPerMultiProcessor"] // WARP // warps]
    if registers > 0:
        regs_per_warp = math.ceil(registers * WARP / 256) * 256
        per_partition = props.get("regsPerMultiprocessor", 65536) // 4
        limits.append(per_partition // regs_per_warp * 4 // warps)
    if shared_memory > props.get("sharedMemPerBlock", 49152):
        # beyond the default per-block limit a kernel needs the opt-in, which Kineto's call to the calculator
        # does not assume: it reports 0 (a 53504-byte kernel on an H200 in torch's trace)
        return 0
    if shared_memory > 0:
        reserved = 1024 if props.get("major", 0) >= 8 else 0
        per_block = math.ceil((shared_memory + reserved) / 128) * 128
        smem = props.get("sharedMemPerMultiprocessor") or props.get("sharedMemPerBlock", 49152)
        limits.append(smem // per_block)
    return max(min(limits), 0)
