"""torch.backends.mkl: whether tensorlib's large CPU matrix products run on Intel MKL (the `mkl` wheel,
`pip install tensorlib-profiler[mkl]`; see tensorlib/_blas.py), and MKL's on-demand verbose mode."""
from __future__ import annotations

from .. import _blas

__all__ = ["is_available", "verbose", "VERBOSE_OFF", "VERBOSE_ON"]

VERBOSE_OFF = 0
VERBOSE_ON = 1


def is_available() -> bool:
    """Whether MKL's CBLAS is loaded for tensorlib's GEMMs (False with TENSORLIB_BLAS=numpy or without the
    mkl wheel: NumPy's own BLAS then runs every product)."""
    return _blas.available()


class verbose:
    """torch.backends.mkl.verbose(level): MKL prints one line per call it runs (its duration, sizes) inside
    the block, as MKL_VERBOSE=1 does for the whole process."""

    def __init__(self, enable):
        self.enable = enable

    def __enter__(self):
        if self.enable == VERBOSE_OFF:
            return None
        if not _blas.set_verbose(self.enable):
            raise AssertionError("Failed to set MKL into verbose mode. Please consider to disable this verbose scope.")
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        _blas.set_verbose(VERBOSE_OFF)
        return False
