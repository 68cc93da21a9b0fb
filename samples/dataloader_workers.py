"""A DataLoader with worker threads feeding a training loop.

The dataset "decodes" each sample (a little NumPy work per item, as image decoding or augmentation
would be); four worker threads prepare batches while the main thread trains a small MLP with Adam and a
cosine learning-rate schedule. Run it twice to see the effect of the workers:

    python samples/dataloader_workers.py               # 4 worker threads
    python samples/dataloader_workers.py --workers 0   # everything in the main thread
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorlib as tl
from tensorlib import optim
from tensorlib.utils.data import DataLoader, Dataset, get_worker_info, random_split


class SyntheticDigits(Dataset):
    """10 classes of 28x28 'images': a class-specific pattern plus noise, built on every access."""

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 10, n)
        self.patterns = rng.standard_normal((10, 28 * 28)).astype(np.float32)
        self.seed = seed

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, i))
        img = 0.08 * self.patterns[self.labels[i]] + rng.standard_normal(28 * 28).astype(np.float32)
        img = np.convolve(img, np.ones(5, np.float32) / 5, mode="same")      # the "decode" work
        return img.astype(np.float32), int(self.labels[i])


def init_mlp(sizes, seed=0):
    g = tl.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / fan_in ** 0.5
        params.append((tl.rand(fan_out, fan_in, generator=g) * 2 - 1).mul_(bound).requires_grad_())
        params.append(tl.zeros(fan_out, requires_grad=True))
    return params


def forward(params, x):
    for i in range(0, len(params), 2):
        x = x @ params[i].t() + params[i + 1]
        if i + 2 < len(params):
            x = x.relu()
    return x


def cross_entropy(logits, y):
    logp = logits - logits.logsumexp(1, keepdim=True)
    return -logp.gather(1, y.reshape(-1, 1)).mean()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=4096)
    args = ap.parse_args(argv)
    tl.manual_seed(0)
    full = SyntheticDigits(args.samples)
    train, val = random_split(full, [0.9, 0.1], generator=tl.Generator().manual_seed(1))
    seen_workers = set()

    def note_worker(worker_id):
        seen_workers.add(get_worker_info().id)

    loader = DataLoader(train, batch_size=128, shuffle=True, num_workers=args.workers, drop_last=True,
                        persistent_workers=args.workers > 0, worker_init_fn=note_worker if args.workers else None,
                        prefetch_factor=4 if args.workers else None, generator=tl.Generator().manual_seed(2))
    val_loader = DataLoader(val, batch_size=256)
    params = init_mlp([784, 128, 10])
    opt = optim.Adam(params, lr=2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * len(loader))
    print(f"{len(train)} training samples in {len(loader)} batches, {args.workers} worker thread(s)")
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        wait = 0.0
        total = 0.0
        it = iter(loader)
        while True:
            tw = time.perf_counter()
            try:
                x, y = next(it)
            except StopIteration:
                break
            wait += time.perf_counter() - tw
            loss = cross_entropy(forward(params, x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        with tl.no_grad():
            correct = sum(int((forward(params, x).argmax(1) == y).sum()) for x, y in val_loader)
        dt = time.perf_counter() - t0
        print(f"epoch {epoch}: loss {total / len(loader):.4f}  val acc {correct / len(val):.3f}  "
              f"{dt:.2f}s ({wait / dt:.0%} waiting for data)  lr {sched.get_last_lr()[0]:.2e}")
    if args.workers:
        print(f"worker threads used: {sorted(seen_workers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
