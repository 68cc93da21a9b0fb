"""torch.backends.mkldnn: whether tensorlib's float32 CPU convolutions run on oneDNN (the `onednn-cpu-gomp` wheel,
`pip install tensorlib-profiler[onednn]` or `[mkl]`; see tensorlib/_dnnl.py), the switch that turns it off, and
oneDNN's verbose mode.

- `enabled = False` (or `with flags(enabled=False):`): every convolution runs on tensorlib's im2col kernels.
- `deterministic`, `allow_tf32`: accepted as torch's are; oneDNN's float32 CPU convolutions are deterministic for
  a given thread count and never use TF32, so neither changes a result. `fp32_precision` other than "none" or
  "ieee" (bf16 or tf32 math) is refused.
- `verbose(level)`: oneDNN prints one line per primitive it runs (its implementation, layouts, milliseconds)
  inside the block, as ONEDNN_VERBOSE=1 does for the whole process.
"""
from __future__ import annotations

from contextlib import contextmanager

from .. import _dnnl

__all__ = ["is_available", "enabled", "deterministic", "allow_tf32", "flags", "set_flags", "verbose",
           "VERBOSE_OFF", "VERBOSE_ON", "VERBOSE_ON_CREATION"]

VERBOSE_OFF = 0
VERBOSE_ON = 1
VERBOSE_ON_CREATION = 2

enabled = True
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """Whether oneDNN is loaded for tensorlib's CPU convolutions (False without its wheel, with
    TENSORLIB_DNNL=0, or where the library or the system's libgomp does not load)."""
    return _dnnl.available()


def _check_precision(p):
    if p not in ("none", "ieee"):
        raise ValueError(f"fp32_precision={p!r} is not supported: tensorlib's oneDNN convolutions compute float32 in "
                         "IEEE float32 ('none' or 'ieee'); bf16 or tf32 math is not available here")


def set_flags(_enabled=None, _deterministic=None, _allow_tf32=None, _fp32_precision="none"):
    """torch's: sets the flags given (None leaves one as it is) and returns their previous values."""
    global enabled, deterministic, allow_tf32
    _check_precision(_fp32_precision)
    old = (enabled, deterministic, allow_tf32)
    if _enabled is not None:
        enabled = bool(_enabled)
    if _deterministic is not None:
        deterministic = bool(_deterministic)
    if _allow_tf32 is not None:
        allow_tf32 = bool(_allow_tf32)
    return old


@contextmanager
def flags(enabled=False, deterministic=False, allow_tf32=True, fp32_precision="none"):
    """torch's: the flags set inside the block (note torch's default: enabled=False), restored after it."""
    old = set_flags(enabled, deterministic, allow_tf32, fp32_precision)
    try:
        yield
    finally:
        set_flags(*old)


class verbose:
    """torch.backends.mkldnn.verbose(level): oneDNN's verbose output (VERBOSE_ON: each primitive run;
    VERBOSE_ON_CREATION: also each one created) inside the block."""

    def __init__(self, level):
        self.level = level

    def __enter__(self):
        if self.level == VERBOSE_OFF:
            return None
        if not _dnnl.set_verbose(self.level):
            raise AssertionError("Failed to set MKLDNN into verbose mode. Please consider to disable this verbose "
                                 "scope.")
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        _dnnl.set_verbose(VERBOSE_OFF)
        return False
