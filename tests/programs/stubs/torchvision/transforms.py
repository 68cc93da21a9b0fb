"""ToTensor (HxW uint8 -> 1xHxW float in [0, 1]), Normalize, Compose, Lambda, and CenterCrop and Resize of PIL
images, as torchvision computes them."""
from __future__ import annotations

import numpy as np


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img


class ToTensor:
    def __call__(self, pic):
        import torch
        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div(255)


class Normalize:
    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = mean, std

    def __call__(self, tensor):
        import torch
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
        return (tensor - mean) / std


class Lambda:
    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


def _size_pair(size):
    return (int(size), int(size)) if isinstance(size, int) else (size[0], size[0]) if len(size) == 1 else tuple(size)


class CenterCrop:
    """A PIL image's centre (torchvision.transforms.functional.center_crop; PIL pads with 0 where the crop is
    larger than the image, as torchvision does)."""

    def __init__(self, size):
        self.size = _size_pair(size)

    def __call__(self, img):
        crop_h, crop_w = self.size
        w, h = img.size
        if crop_w > w or crop_h > h:
            from PIL import Image
            left, top = max(crop_w - w, 0) // 2, max(crop_h - h, 0) // 2
            padded = Image.new(img.mode, (max(w, crop_w), max(h, crop_h)), 0)
            padded.paste(img, (left, top))
            img, (w, h) = padded, padded.size
            if (w, h) == (crop_w, crop_h):
                return img
        top, left = int(round((h - crop_h) / 2.0)), int(round((w - crop_w) / 2.0))
        return img.crop((left, top, left + crop_w, top + crop_h))


class Resize:
    """A PIL image resized by PIL's bilinear filter (antialiased, as torchvision's PIL path always is): an int
    size is the shorter edge's, the longer one scaled to keep the aspect ratio (truncated, as torchvision's
    _compute_resized_output_size)."""

    def __init__(self, size, interpolation=None, max_size=None, antialias=True):
        if max_size is not None:
            raise NotImplementedError("torchvision stand-in: Resize(max_size=) is not implemented")
        self.size, self.interpolation = size, interpolation

    def __call__(self, img):
        from PIL import Image
        w, h = img.size
        if isinstance(self.size, int) or len(self.size) == 1:
            req = self.size if isinstance(self.size, int) else self.size[0]
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = req, int(req * long / short)
            new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        else:
            new_h, new_w = self.size
        return img.resize((new_w, new_h), Image.BILINEAR if self.interpolation is None else self.interpolation)
