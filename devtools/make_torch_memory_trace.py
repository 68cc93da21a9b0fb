"""Write tests/viewer/data/torch_cpu_memory.json, the torch trace tests/viewer/test_memory_tab.py reads.

torch 2.13 (CPU), `profile(profile_memory=True, with_stack=True, record_shapes=True)` around one
training step of a 64→128→10 MLP whose parameters and Adam state exist before profiling begins. The
host name is replaced by "host". Run with a Python that has torch:
    /work/main/.venv/bin/python devtools/make_torch_memory_trace.py [out.json]
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn, optim
from torch.profiler import profile

from safeio import read_bounded, write_bytes

OUT = Path(__file__).resolve().parents[1] / "tests" / "viewer" / "data" / "torch_cpu_memory.json"


def main(out: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    opt.zero_grad()
    with profile(profile_memory=True, with_stack=True, record_shapes=True) as prof:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(raw)
        doc = json.loads(read_bounded(raw, what="torch trace"))
    doc["host_name"] = "host"
    write_bytes(out, json.dumps(doc).encode(), what="torch memory trace")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
