"""The training loop the samples share: epochs of SGD on digits, loss per epoch, test accuracy."""
from __future__ import annotations

import argparse
import time

import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F

from _data import batches, digits


def accuracy(model, x, y, device, shape):
    model.eval()
    with tl.no_grad():
        pred = model(tl.tensor(x.reshape(shape), device=device)).argmax(1).cpu().numpy()
    model.train()
    return float((pred == y).mean())


def default_device() -> str:
    """CUDA when it is available, else the CPU: the samples run as they are on either."""
    return "cuda" if tl.cuda.is_available() else "cpu"


def fit(make_model, shape, epochs, batch_size, lr, seed, device, verbose, momentum=0.9, weight_decay=0.0,
        clip=None):
    """shape: how one batch of flat 64-pixel rows is viewed by the model (-1 for the batch); device None:
    CUDA when available."""
    device = device or default_device()
    if verbose:
        print(f"training on {device}")
    tl.manual_seed(seed)
    (xtr, ytr), (xte, yte) = digits(seed)
    model = make_model().to(device)
    opt = tl.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        total, n = 0.0, 0
        for xb, yb in batches(xtr, ytr, batch_size, rng):
            x, y = tl.tensor(xb.reshape(shape), device=device), tl.tensor(yb, device=device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                tl.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total += loss.item() * len(xb)
            n += len(xb)
        losses.append(total / n)
        if verbose:
            print(f"epoch {epoch + 1:2d}  loss {losses[-1]:.4f}")
    acc = accuracy(model, xte, yte, device, shape)
    if verbose:
        print(f"test accuracy {acc:.4f} ({len(yte)} images)")
    return losses, acc


def cli(train, default_epochs, doc, argv=None):
    """The samples' command line: --epochs, --device, --seed, --threads; prints the wall time."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--epochs", type=int, default=default_epochs)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1: these matrices are small, and more threads than free cores "
                         "fight for them)")
    args = ap.parse_args(argv)
    tl.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train(args.epochs, device=args.device, seed=args.seed)
    print(f"time {time.perf_counter() - t0:.2f}s")
