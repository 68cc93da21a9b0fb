"""save_image: checks what it is given (a 3-d or 4-d tensor) and keeps the last call's shape; writes no file."""
from __future__ import annotations

saved: list = []


def save_image(tensor, fp, nrow=8, padding=2, normalize=False, **kwargs):
    if tensor.dim() not in (3, 4):
        raise ValueError(f"save_image: expected a 3-d or 4-d tensor, got {tensor.dim()}-d")
    saved.append((str(fp), tuple(tensor.shape)))
