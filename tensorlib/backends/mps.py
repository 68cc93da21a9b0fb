"""torch.backends.mps: Apple's Metal backend, which tensorlib does not have (NumPy or CuPy only)."""
from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """False: tensorlib has no MPS device."""
    return False


def is_built() -> bool:
    """False: tensorlib is not built with MPS."""
    return False
