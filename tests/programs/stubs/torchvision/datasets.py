"""datasets.MNIST with synthetic 28x28 uint8 digits: each class a fixed random template plus noise, so a
model can learn it. Sizes come from `MNIST.sizes` (set by tests/programs/runner.py)."""
from __future__ import annotations

import numpy as np


class MNIST:
    sizes = {"train": 64, "test": 32}
    classes = [f"{i} - {w}" for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        n = self.sizes["train" if train else "test"]
        rng = np.random.default_rng(1 if train else 2)
        templates = np.random.default_rng(0).random((10, 28, 28)) < 0.3
        self.targets = rng.integers(0, 10, n)
        noise = rng.random((n, 28, 28)) < 0.1
        self.data = ((templates[self.targets] ^ noise) * 255).astype(np.uint8)
        self.root, self.train, self.transform, self.target_transform = root, train, transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
