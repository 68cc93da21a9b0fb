"""torch.xpu (Intel GPUs): tensorlib has none, so `torch.xpu.is_available()` is False, as on a machine without
one, and scripts that pick their device with it (the PyTorch recipes do) fall through to CUDA or the CPU."""
from __future__ import annotations

__all__ = ["device_count", "is_available", "is_initialized"]


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False
