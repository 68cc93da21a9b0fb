"""scikit-learn's bundled digits (8x8 images, 10 classes, no download) split and standardised, and a
tiny batch iterator (the samples do not depend on tensorlib.utils.data, built in parallel)."""
from __future__ import annotations

import numpy as np


def digits(seed=0, test_fraction=0.25):
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise SystemExit("this sample needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    return (x[train], y[train]), (x[test], y[test])


def batches(x, y, batch_size, rng):
    order = rng.permutation(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]
