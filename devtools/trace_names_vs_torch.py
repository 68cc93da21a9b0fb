"""How many of torch's profiled op names a tensorlib trace of the same training step carries.

One training step (DataLoader batch, forward, loss, backward, clip_grad_norm_, optimizer step,
zero_grad) of an MLP, a CNN and a Transformer encoder is profiled twice: with torch.profiler on torch
and with this project's profiler on tensorlib, from the same code (`step(torch_or_tensorlib)`). The
score is the share of torch's distinct names (``cpu_op`` and ``user_annotation`` events: aten ops,
autograd nodes, AccumulateGrad, optimizer and DataLoader ranges) that our trace also has, which is
what HTA's TraceDiff can match by name.

    python -m devtools.trace_names_vs_torch                  # print the scores (needs torch)
    python -m devtools.trace_names_vs_torch --write DIR      # also write torch's name sets as JSON

The JSON files (one sorted list per model) are the fixtures of tests/profiler/test_torch_names.py,
which checks the same score in CI without torch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

MODELS = ("mlp", "cnn", "transformer")
NAME_CATS = ("cpu_op", "user_annotation")


def build(lib, kind):
    """(model, input batch shape) for one of MODELS, built from `lib` (torch or tensorlib)."""
    nn = lib.nn
    lib.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)), (16, 64)
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 8 * 8, 10)), (8, 3, 16, 16)
    if kind == "transformer":
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        return _Encoder(lib, nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)), (4, 12, 32)
    raise ValueError(f"unknown model {kind!r}; one of {MODELS}")


def _Encoder(lib, encoder):
    """The encoder, its tokens' mean and a linear head, as a Module of `lib`."""
    class Encoder(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.head = lib.nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))
    return Encoder()


def data(lib, shape):
    """A DataLoader of two batches of `shape` with integer class labels."""
    n = shape[0] * 2
    x = lib.randn(n, *shape[1:])
    y = lib.randint(0, 10, (n,))
    return lib.utils.data.DataLoader(lib.utils.data.TensorDataset(x, y), batch_size=shape[0])


def train_step(lib, model, batches, opt):
    """The profiled step: a batch, forward, loss, backward, clip_grad_norm_, step, zero_grad."""
    x, y = next(batches)
    loss = lib.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()


def trace_names(path) -> set[str]:
    with open(path, "rb") as f:
        doc = json.load(f)
    return {e["name"] for e in doc["traceEvents"] if e.get("ph") == "X" and e.get("cat") in NAME_CATS}


def profiled_names(lib, kind) -> set[str]:
    """The names in the trace of one training step of model `kind` run on `lib`."""
    model, shape = build(lib, kind)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(data(lib, shape))
    train_step(lib, model, batches, opt)           # warm up: optimizer state, lazy imports
    if lib.__name__ == "torch":
        import torch.profiler as prof
        ctx = prof.profile(activities=[prof.ProfilerActivity.CPU])
    else:
        import profiler as prof
        ctx = prof.profile()
    with ctx as p:
        train_step(lib, model, batches, opt)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        p.export_chrome_trace(path)
        return trace_names(path)


def score(torch_names, ours) -> tuple[float, list[str]]:
    """(% of torch's names that ours has, torch's names we lack)."""
    missing = sorted(set(torch_names) - set(ours))
    return 100.0 * (len(torch_names) - len(missing)) / max(len(torch_names), 1), missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", metavar="DIR", help="write torch's name set per model as DIR/torch_names_<model>.json")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    args = ap.parse_args(argv)
    import tensorlib
    import torch
    for kind in args.models:
        theirs = profiled_names(torch, kind)
        ours = profiled_names(tensorlib, kind)
        pct, missing = score(theirs, ours)
        print(f"{kind}: {pct:.1f} % of torch's {len(theirs)} names matched ({len(ours)} names in ours)")
        for name in missing:
            print(f"    missing: {name}")
        if args.write:
            os.makedirs(args.write, exist_ok=True)
            with open(os.path.join(args.write, f"torch_names_{kind}.json"), "w") as f:
                json.dump({"torch": torch.__version__, "names": sorted(theirs)}, f, indent=0)
                f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
