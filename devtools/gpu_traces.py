"""Real GPU traces of the same training steps from torch.profiler and from ours, for torch's own tools to read
side by side (HolisticTraceAnalysis, TensorBoard's profiler plugin) on a machine without a GPU.

    python devtools/gpu_traces.py --out traces.tar.gz [--steps N]

On a GPU: each model of devtools/trace_names_vs_torch (MLP, CNN, Transformer encoder; batch, forward,
cross-entropy, backward, clip_grad_norm_, Adam step, zero_grad) runs a warm-up step, then N profiled steps
(CPU + CUDA activities, prof.step() after each) with torch 2.x on CUDA and with tensorlib on CuPy, ours once
with CUDA-event timing and once with CUPTI when cupti-python is there. The traces go into one tar.gz, one folder
per model and way (HTA reads a folder of rank traces): <model>/<way>/rank0.pt.trace.json. Printed per trace:
events by category, kernels, and the share of torch's op names that ours has.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools import trace_names_vs_torch as tnt  # noqa: E402


def _profiled(lib, kind, path, steps, cuda_timing=None):
    dev = "cuda"
    model, shape = tnt.build(lib, kind)
    model = model.to(dev)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    n = shape[0] * (steps + 1)
    x, y = lib.randn(n, *shape[1:], device=dev), lib.randint(0, 10, (n,), device=dev)
    batches = iter(lib.utils.data.DataLoader(lib.utils.data.TensorDataset(x, y), batch_size=shape[0]))
    tnt.train_step(lib, model, batches, opt)             # warm-up: optimizer state, kernels compiled
    lib.cuda.synchronize()
    if lib.__name__ == "torch":
        import torch.profiler as prof
        kw = {}
    else:
        import profiler as prof
        kw = {"cuda_timing": cuda_timing} if cuda_timing else {}
    with prof.profile(activities=[prof.ProfilerActivity.CPU, prof.ProfilerActivity.CUDA], **kw) as p:
        for _ in range(steps):
            tnt.train_step(lib, model, batches, opt)
            lib.cuda.synchronize()
            p.step()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    p.export_chrome_trace(path)
    with open(path, "rb") as f:
        return json.load(f)["traceEvents"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the tar.gz to write")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--models", default=",".join(tnt.MODELS))
    args = ap.parse_args(argv)
    import tensorlib
    if not tensorlib.cuda.is_available():
        print("CUDA is not available: this script needs an NVIDIA GPU with CuPy.")
        return 2
    try:
        import torch
        libs = [("torch", torch, None)] if torch.cuda.is_available() else []
    except ImportError:
        libs = []
    libs.append(("tensorlib-events", tensorlib, "events"))
    try:
        from profiler.cupti import load_cupti
        load_cupti()
        libs.append(("tensorlib-cupti", tensorlib, "cupti"))
    except Exception as e:      # noqa: BLE001 - said, and the other traces still made
        print(f"no CUPTI trace: {e}")
    root = tempfile.mkdtemp(prefix="gpu-traces-")
    for kind in args.models.split(","):
        names = {}
        for way, lib, timing in libs:
            path = os.path.join(root, kind, way, "rank0.pt.trace.json")
            try:
                evs = _profiled(lib, kind, path, args.steps, timing)
            except Exception as e:      # noqa: BLE001 - one failing way must not lose the others
                print(f"{kind} {way}: FAILED {type(e).__name__}: {e}")
                continue
            cats = collections.Counter(e.get("cat", "?") for e in evs if e.get("ph") == "X")
            names[way] = {e["name"] for e in evs if e.get("ph") == "X" and e.get("cat") in tnt.NAME_CATS}
            print(f"{kind} {way}: {sum(cats.values())} complete events; " +
                  ", ".join(f"{c} {n}" for c, n in sorted(cats.items())))
        if "torch" in names:
            for way in names:
                if way != "torch":
                    pct, missing = tnt.score(names["torch"], names[way])
                    print(f"{kind} {way}: {pct:.1f} % of torch's {len(names['torch'])} op/annotation names; "
                          f"missing: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")
    with tarfile.open(args.out, "w:gz") as tar:
        tar.add(root, arcname="gpu-traces")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
