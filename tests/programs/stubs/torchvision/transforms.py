"""ToTensor (HxW uint8 -> 1xHxW float in [0, 1]), Normalize, Compose, Lambda, and CenterCrop, Resize, Pad,
RandomHorizontalFlip and RandomCrop of PIL images, as torchvision computes them (the random ones drawing from
torch's generator with the calls torchvision makes: `torch.rand(1)`, `torch.randint(0, n, size=(1,))`)."""
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


def _padding4(padding):
    """(left, top, right, bottom) from torchvision's int, (lr, tb) or (l, t, r, b) padding."""
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 1:
        return (padding[0],) * 4
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    return tuple(padding)


def _pad(img, padding, fill=0, padding_mode="constant"):
    """torchvision.transforms.functional.pad of a PIL image (constant fill, or NumPy's edge/reflect/symmetric
    modes as torchvision's PIL path uses them)."""
    from PIL import Image
    left, top, right, bottom = _padding4(padding)
    arr = np.asarray(img)
    widths = ((top, bottom), (left, right)) + ((0, 0),) * (arr.ndim - 2)
    if padding_mode == "constant":
        out = np.pad(arr, widths, mode="constant", constant_values=fill)
    else:
        out = np.pad(arr, widths, mode=padding_mode)
    return Image.fromarray(out, mode=img.mode)


class Pad:
    def __init__(self, padding, fill=0, padding_mode="constant"):
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        return _pad(img, self.padding, self.fill, self.padding_mode)


class RandomHorizontalFlip:
    """Flips with probability p, decided by `torch.rand(1) < p` as torchvision's forward does."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        import torch
        if torch.rand(1) < self.p:
            from PIL import Image
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return img


class RandomCrop:
    """torchvision's RandomCrop: optional padding first (and pad_if_needed), then a crop at
    (torch.randint(0, h - th + 1, size=(1,)), torch.randint(0, w - tw + 1, size=(1,))), as get_params draws it."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _size_pair(size)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    def __call__(self, img):
        import torch
        if self.padding is not None:
            img = _pad(img, self.padding, self.fill, self.padding_mode)
        w, h = img.size
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = _pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = _pad(img, [0, th - h], self.fill, self.padding_mode)
        w, h = img.size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if w == tw and h == th:
            return img
        i = torch.randint(0, h - th + 1, size=(1,)).item()
        j = torch.randint(0, w - tw + 1, size=(1,)).item()
        return img.crop((j, i, j + tw, i + th))
