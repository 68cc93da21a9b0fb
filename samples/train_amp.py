"""Mixed-precision training with autocast and GradScaler.

On a CUDA machine: matmuls run in float16 under `tensorlib.autocast("cuda")`, and `tensorlib.amp.GradScaler`
scales the loss so small float16 gradients survive, unscales before gradient clipping, skips steps whose
gradients overflowed and adapts the scale. Without CUDA the same loop runs on the CPU with
`autocast("cpu", dtype=float16)` and `GradScaler("cpu")` (NumPy's float16 matmul is slow, so the model is
kept small); the script says which it is doing.

    python samples/train_amp.py [--steps 60]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorlib as tl
from tensorlib import optim
from tensorlib.amp import GradScaler


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args(argv)
    if tl.cuda.is_available():
        device, hidden = "cuda", 1024
        print(f"CUDA available ({tl.cuda.get_device_name()}): float16 autocast on the GPU")
    else:
        device, hidden = "cpu", 64
        print("CUDA is not available: running the same AMP loop on the CPU with autocast('cpu', dtype=float16) "
              "and GradScaler('cpu') on a small model")
    tl.manual_seed(0)
    rng = np.random.default_rng(0)
    n_in, n_out = 32, 4
    teacher = rng.standard_normal((n_in, n_out)).astype(np.float32)
    params = [(tl.randn(hidden, n_in) * n_in ** -0.5).to(device).requires_grad_(),
              tl.zeros(hidden, device=device, requires_grad=True),
              (tl.randn(n_out, hidden) * hidden ** -0.5).to(device).requires_grad_(),
              tl.zeros(n_out, device=device, requires_grad=True)]
    opt = optim.SGD(params, lr=0.05, momentum=0.9)
    # a small initial scale and growth interval so that a short run shows the scale adapting
    scaler = GradScaler(device, init_scale=2.0 ** 24, growth_interval=20)
    # float16 overflows while the scale is too large: that is what GradScaler detects, so NumPy's
    # overflow warnings are expected noise here
    with np.errstate(over="ignore", invalid="ignore"):
        skipped = train(args.steps, device, rng, teacher, n_in, params, opt, scaler)
    print(f"{skipped} step(s) skipped for inf/NaN gradients (each halved the scale); final scale "
          f"{scaler.get_scale():.0f}")
    return 0


def train(steps, device, rng, teacher, n_in, params, opt, scaler):
    skipped = 0
    for step in range(steps):
        xb = rng.standard_normal((256, n_in)).astype(np.float32)
        x = tl.tensor(xb, device=device)
        target = tl.tensor(np.tanh(xb @ teacher), device=device)
        with tl.autocast(device, dtype=tl.float16):
            z = x @ params[0].t()                # float16 under autocast
            h = (z + params[1]).relu()
            out = h @ params[2].t() + params[3]
            loss = ((out.float() - target) ** 2).mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)                     # gradients are true-sized from here: clip them
        with tl.no_grad():
            total = sum(float((p.grad.float() ** 2).sum()) for p in params if p.grad is not None) ** 0.5
            if total > 1.0 and np.isfinite(total):
                for p in params:
                    p.grad.mul_(1.0 / total)
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        if scaler.get_scale() < before:
            skipped += 1
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {loss.item():.4f}  scale {scaler.get_scale():.0f}  "
                  f"matmul dtype {z.dtype}")
    return skipped


if __name__ == "__main__":
    sys.exit(main())
