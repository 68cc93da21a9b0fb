"""Per-range cost of profiler.nvtx's hook, against a bare Python call pair measured in the same run.

With no NVTX tool attached (the normal case) the hook's methods are no-ops; with one attached
(run under nsys, or set NVTX_INJECTION64_PATH to any NVTX tool) the enabled path is measured too.
Usage: python benchmarks/nvtx_overhead.py [--loops N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from profiler.nvtx import NvtxHook


class Op:
    name = "add"


class Tensor:
    shape, dtype = (8, 8), "float32"


def best_ns(body, loops: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        body(loops)
        best = min(best, (time.perf_counter_ns() - start) / loops)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    op, inputs, attrs = Op(), (Tensor(), Tensor()), {}

    def enter(op, inputs, attrs, phase, seq):
        return None

    def leave(token, outputs):
        return None

    def baseline(n):
        for i in range(n):
            leave(enter(op, inputs, attrs, "forward", i), ())

    def op_range(hook):
        enter_, exit_ = hook.op_enter, hook.op_exit

        def body(n):
            for i in range(n):
                exit_(enter_(op, inputs, attrs, "forward", i), ())
        return body

    def module_range(hook):
        enter_, exit_ = hook.range_enter, hook.range_exit

        def body(n):
            for _ in range(n):
                exit_(enter_("model.encoder.0.fc1", "module"))
        return body

    plain, shapes = NvtxHook(), NvtxHook(record_shapes=True)
    tool = "attached" if plain.emitter.enabled else "none"
    base = best_ns(baseline, args.loops, args.repeat)
    rows = [("bare Python call pair (baseline)", base)]
    rows.append((f"op range, NvtxHook (tool: {tool})", best_ns(op_range(plain), args.loops, args.repeat)))
    rows.append((f"module range, NvtxHook (tool: {tool})", best_ns(module_range(plain), args.loops, args.repeat)))
    rows.append((f"op range, record_shapes (tool: {tool})", best_ns(op_range(shapes), args.loops // 4, args.repeat)))
    print(f"python {sys.version.split()[0]}, {args.loops} ranges x best of {args.repeat}")
    for label, ns in rows:
        print(f"{label:<44} {ns:8.1f} ns/range  {ns / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
