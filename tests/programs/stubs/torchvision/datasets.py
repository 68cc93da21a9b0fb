"""datasets.MNIST with synthetic 28x28 uint8 digits: each class a fixed random template plus noise, so a model
can learn it, CIFAR10 with synthetic 32x32 colour images made the same way, and FakeData's random images. Sizes
come from `MNIST.sizes`, `CIFAR10.sizes`, `FakeData.sizes` (set by tests/programs/runner.py);
MNIST.sizes["balanced"] draws the classes evenly instead of independently."""
from __future__ import annotations

import numpy as np


class MNIST:
    """`data` (N, 28, 28) uint8 and `targets` int64 are tensors, as torchvision's (programs use them directly:
    siamese_network's `dataset.data.unsqueeze(1)`); an item is the image as the array a PIL image would give."""
    sizes = {"train": 64, "test": 32}
    classes = [f"{i} - {w}" for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        n = self.sizes["train" if train else "test"]
        rng = np.random.default_rng(1 if train else 2)
        templates = np.random.default_rng(0).random((10, 28, 28)) < 0.3
        import torch        # the backend the program runs on (tensorlib under tensorlib.compat)
        if self.sizes.get("balanced"):      # every class about n/10 times (siamese_network pairs two of a class)
            targets = rng.permutation(np.arange(n) % 10)
        else:
            targets = rng.integers(0, 10, n)
        noise = rng.random((n, 28, 28)) < 0.1
        self.targets = torch.from_numpy(targets.astype(np.int64))
        self.data = torch.from_numpy(((templates[targets] ^ noise) * 255).astype(np.uint8))
        self.root, self.train, self.transform, self.target_transform = root, train, transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img, target = self.data[index].numpy(), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class CIFAR10:
    """torchvision's CIFAR10 of synthetic images: `data` a (N, 32, 32, 3) uint8 NumPy array and `targets` a list
    of ints, as torchvision's; an item is a PIL RGB image (what its transforms, Pad, RandomCrop, ..., take) and
    its class. Each class is a fixed smooth colour template (a few blurred colour blobs), an image its class's
    template shifted by up to 3 pixels, plus noise: learnable, and not by one pixel alone."""
    sizes = {"train": 64, "test": 32}
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        n = self.sizes["train" if train else "test"]
        rng = np.random.default_rng(11 if train else 12)
        trng = np.random.default_rng(10)
        yy, xx = np.mgrid[0:38, 0:38] / 38.0
        templates = np.zeros((10, 38, 38, 3))
        for c in range(10):
            for _ in range(4):
                cy, cx, r = trng.random(3) * [1, 1, 0.3] + [0, 0, 0.1]
                templates[c] += trng.random(3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None]
        templates = templates / templates.max(axis=(1, 2, 3), keepdims=True)
        self.targets = [int(t) for t in rng.integers(0, 10, n)]
        shifts = rng.integers(0, 7, (n, 2))
        imgs = np.stack([templates[t, y:y + 32, x:x + 32] for t, (y, x) in zip(self.targets, shifts)])
        imgs = imgs * 200 + rng.normal(0, 20, imgs.shape) + 25
        self.data = np.clip(imgs, 0, 255).astype(np.uint8)
        self.root, self.train, self.transform, self.target_transform = root, train, transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        from PIL import Image
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class FakeData:
    """Random uint8 images (H x W x C, as the PIL images torchvision's FakeData gives ToTensor) and class
    indices; each item is the same on every call. Its length is `sizes[str(size)]` when the harness sets one for
    the length the program asks for (imagenet's --dummy: 1281167 training and 50000 validation images), else
    `sizes["train"]` when that is set (runner.py)."""
    sizes: dict = {}

    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None, target_transform=None,
                 random_offset=0):
        self.size = self.sizes.get(str(size), self.sizes.get("train", size))
        self.image_size, self.num_classes, self.random_offset = tuple(image_size), num_classes, random_offset
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        if index >= len(self):
            raise IndexError(f"{type(self).__name__} index out of range")
        rng = np.random.default_rng(index + self.random_offset)
        c, h, w = self.image_size
        img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        target = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
