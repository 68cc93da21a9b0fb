"""Added cost per recorded event on small models, in one process: unprofiled, default options, and
record_shapes / profile_memory / both, interleaved; a step's time is its thread CPU time, best of the
steps of all rounds.

Models: a 64-128-10 MLP, a 2-layer d=32 Transformer encoder (batch_first, dropout 0.1), a GRU language
model; Adam with foreach=False, so that profiled and unprofiled steps run the same ops (torch's per-parameter
loop, on the arrays in tensorlib, recorded when profiled; unprofiled, foreach=None takes the multi-tensor
path). Prints per model the
events per step and the added µs per event, (profiled step - unprofiled step) / events per step. When
torch is installed, the same models written with torch (only the import changed) under torch.profiler
(CPU activity), interleaved with tensorlib's runs, both on one thread, print a row of their own
(`--no-torch` leaves it out); torch's events per step are its profile's function events (ops and
ranges), as ours are.
Usage: python benchmarks/profiler_models.py [--rounds N] [--models mlp,transformer,gru] [--no-torch]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tensorlib as tl  # noqa: E402
import profiler  # noqa: E402

MODES = {"none": None, "default": {}, "shapes": {"record_shapes": True}, "memory": {"profile_memory": True},
         "detailed": {"record_shapes": True, "profile_memory": True}}


def make(name, lib=tl):
    """The model's training step, written against `lib` (tensorlib, or torch: the same program)."""
    nn, F = lib.nn, lib.nn.functional
    rng = np.random.default_rng(0)
    if name == "mlp":
        m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        x, y = lib.randn(64, 64), lib.tensor(rng.integers(0, 10, 64))
        loss = lambda: F.cross_entropy(m(x), y)      # noqa: E731
    elif name == "transformer":
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.1, batch_first=True)
        enc, emb, head = nn.TransformerEncoder(layer, 2), nn.Linear(8, 32), nn.Linear(32, 10)
        m = nn.ModuleList([enc, emb, head])
        x, y = lib.randn(32, 8, 8), lib.tensor(rng.integers(0, 10, 32))
        loss = lambda: F.cross_entropy(head(enc(emb(x)).mean(1)), y)      # noqa: E731
    elif name == "gru":
        emb, rnn, head = nn.Embedding(30, 16), nn.GRU(16, 32, batch_first=True), nn.Linear(32, 30)
        m = nn.ModuleList([emb, rnn, head])
        x, y = lib.tensor(rng.integers(0, 30, (16, 12))), lib.tensor(rng.integers(0, 30, (16, 12)))
        loss = lambda: F.cross_entropy(head(rnn(emb(x))[0]).reshape(-1, 30), y.reshape(-1))      # noqa: E731
    else:
        raise SystemExit(f"unknown model {name!r}: mlp, transformer or gru")
    opt = lib.optim.Adam(m.parameters(), lr=1e-3, foreach=False)

    def step():
        opt.zero_grad()
        loss().backward()
        opt.step()
    return step


def _ours(kw):
    return profiler.profile(**kw)


def _events_ours(p):
    return len(p.store)


def timed(step, mode, steps, prof=_ours, events_of=_events_ours):
    gc.collect()
    ts = []
    kw = MODES[mode]
    if kw is None:
        for _ in range(steps):
            t0 = time.thread_time_ns()
            step()
            ts.append(time.thread_time_ns() - t0)
        return min(ts), 0
    with prof(kw) as p:
        for _ in range(steps):
            t0 = time.thread_time_ns()
            step()
            ts.append(time.thread_time_ns() - t0)
    return min(ts), events_of(p) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--models", default="mlp,transformer,gru")
    ap.add_argument("--no-torch", action="store_true", help="leave out the torch.profiler rows")
    a = ap.parse_args()
    tl.set_num_threads(1)       # both libraries on one thread: the step's time is the thread's CPU time
    libs = [("tensorlib", tl, _ours, _events_ours)]
    if not a.no_torch:
        try:
            import torch
        except ImportError:
            print("(torch not installed: no torch.profiler rows)")
        else:
            torch.set_num_threads(1)
            libs.append(("torch", torch, lambda kw: torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], **kw), lambda p: len(p.events())))
    print(f"{'model':22} {'events':>7} {'none µs':>9}" + "".join(f" {m + ' µs/ev':>16}" for m in list(MODES)[1:]))
    for name in a.models.split(","):
        runs = []
        for label, lib, prof, events_of in libs:
            step = make(name, lib)
            for _ in range(3):
                step()
            runs.append((label, step, prof, events_of))
        best = {(label, m): float("inf") for label, *_ in runs for m in MODES}
        events = dict.fromkeys([label for label, *_ in runs], 0.0)
        for r in range(a.rounds):
            for label, step, prof, events_of in runs:
                for m in (MODES if r % 2 == 0 else list(MODES)[::-1]):
                    t, n = timed(step, m, a.steps, prof, events_of)
                    best[label, m] = min(best[label, m], t)
                    events[label] = n or events[label]
        for label, *_ in runs:
            base = best[label, "none"]
            ev = events[label]
            print(f"{name + ' (' + label + ')':22} {ev:7.0f} {base / 1e3:9.1f}" +
                  "".join(f" {(best[label, m] - base) / ev / 1e3:+16.2f}" for m in list(MODES)[1:]), flush=True)


if __name__ == "__main__":
    main()
