"""torch.backends.cuda: `matmul.allow_tf32`, and the float32 matmul precision behind it.

One setting, as in torch: `tensorlib.set_float32_matmul_precision("highest" | "high" | "medium")`, read back
by `get_float32_matmul_precision()`; `matmul.allow_tf32 = True` is "high", `False` is "highest". On CUDA it
is CuPy's compute type for float32 GEMMs (`cupy._core.set_compute_type(float32, COMPUTE_TYPE_TF32)`, the
cuBLAS math mode behind `cupy.matmul`): "high" and "medium" let cuBLAS use TF32 tensor cores, "highest"
keeps IEEE float32 (CuPy has no bfloat16-based float32 GEMM, so "medium" is TF32, as torch does where it has
none). It is applied when CuPy is first used and on every change. Convolutions follow
`backends.cudnn.allow_tf32` instead (tensorlib's CUDA convolutions are GEMMs; that flag switches the same
compute type around them). NumPy has no reduced-precision GEMM, so on the CPU the setting is only kept and
read back, as torch's is on its CPU builds. Where CuPy lacks `set_compute_type`, asking for TF32 on CUDA
warns once, saying the GEMMs stay IEEE float32.
"""
from __future__ import annotations

import contextlib
import warnings

from .._state import GLOBAL

__all__ = ["matmul", "is_built", "get_float32_matmul_precision", "set_float32_matmul_precision", "enable_flash_sdp",
           "flash_sdp_enabled", "enable_mem_efficient_sdp", "mem_efficient_sdp_enabled", "enable_math_sdp",
           "math_sdp_enabled", "enable_cudnn_sdp", "cudnn_sdp_enabled", "sdp_kernel"]

_PRECISIONS = ("highest", "high", "medium")
# CuPy's compute types (cupy/_core/_routines_linalg.pyx, the same in CuPy 13 and 14; CuPy exports the names
# only from that private module, so the values are spelled here and checked against the installed CuPy in
# tests/tensorlib/test_dropin_names.py)
_COMPUTE_TYPE_DEFAULT = 1
_COMPUTE_TYPE_TF32 = 7
_precision = "highest"
_warned = False


def is_built() -> bool:
    """Whether tensorlib can run CUDA code at all: True when CuPy is importable (torch: built with CUDA)."""
    import importlib.util
    return importlib.util.find_spec("cupy") is not None


def get_float32_matmul_precision() -> str:
    return _precision


def set_float32_matmul_precision(precision: str) -> None:
    """torch.set_float32_matmul_precision: "highest" (IEEE float32), "high" or "medium" (TF32 on CUDA)."""
    global _precision
    if precision not in _PRECISIONS:
        raise RuntimeError(f"Invalid precision {precision!r}: expected one of \"highest\", \"high\", \"medium\"")
    _precision = precision
    _apply_to_loaded_cupy()


def _tf32(flag: bool) -> None:
    set_float32_matmul_precision("high" if flag else "highest")


def _cupy_loaded():
    from .. import _device
    return _device._cupy


def _set_compute_type(cp, tf32: bool) -> bool:
    """Set CuPy's float32 GEMM compute type; False where this CuPy cannot."""
    import numpy as np
    try:
        cp._core.set_compute_type(np.float32, _COMPUTE_TYPE_TF32 if tf32 else _COMPUTE_TYPE_DEFAULT)
    except AttributeError:
        return False
    return True


def _apply(cp, tf32: bool | None = None) -> None:
    global _warned
    tf32 = (_precision != "highest") if tf32 is None else tf32
    if not _set_compute_type(cp, tf32) and tf32 and not _warned:
        _warned = True
        warnings.warn("tensorlib.backends.cuda: TF32 was asked for, but this CuPy has no "
                      "cupy._core.set_compute_type; float32 matmuls and convolutions stay IEEE float32",
                      RuntimeWarning, stacklevel=3)


def _apply_to_loaded_cupy() -> None:
    cp = _cupy_loaded()
    if cp is not None:
        _apply(cp)


@contextlib.contextmanager
def conv_math(allow_tf32: bool):
    """CuPy's float32 compute type for the GEMMs of a CUDA convolution: TF32 when `allow_tf32`
    (backends.cudnn.allow_tf32), then back to the matmul setting."""
    cp = _cupy_loaded()
    if cp is None or bool(allow_tf32) == (_precision != "highest"):
        yield
        return
    _apply(cp, bool(allow_tf32))
    try:
        yield
    finally:
        _apply(cp)


class cuBLASModule:
    """torch.backends.cuda.matmul: `allow_tf32` reads and writes the float32 matmul precision."""

    def __getattr__(self, name):
        if name == "allow_tf32":
            return _precision != "highest"
        raise AttributeError("Unknown attribute " + name)

    def __setattr__(self, name, value):
        if name == "allow_tf32":
            return _tf32(bool(value))
        raise AttributeError("Unknown attribute " + name)


matmul = cuBLASModule()


# --- scaled_dot_product_attention's backends (torch's global flags; tensorlib.nn.attention.sdpa_kernel sets them) ---
def enable_flash_sdp(enabled: bool) -> None:
    """Allow (or not) the flash backend of scaled_dot_product_attention (on the CPU too, as torch's)."""
    GLOBAL.sdp_flash = bool(enabled)


def flash_sdp_enabled() -> bool:
    return GLOBAL.sdp_flash


def enable_mem_efficient_sdp(enabled: bool) -> None:
    GLOBAL.sdp_mem_efficient = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return GLOBAL.sdp_mem_efficient


def enable_math_sdp(enabled: bool) -> None:
    GLOBAL.sdp_math = bool(enabled)


def math_sdp_enabled() -> bool:
    return GLOBAL.sdp_math


def enable_cudnn_sdp(enabled: bool) -> None:
    GLOBAL.sdp_cudnn = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return GLOBAL.sdp_cudnn


@contextlib.contextmanager
def sdp_kernel(enable_flash=True, enable_math=True, enable_mem_efficient=True, enable_cudnn=True):
    """The deprecated context manager of torch.backends.cuda: the four backend flags for the block."""
    warnings.warn("`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be "
                  "removed. Please see `torch.nn.attention.sdpa_kernel()` for the new context manager, with updated "
                  "signature.", FutureWarning, stacklevel=3)
    saved = (GLOBAL.sdp_flash, GLOBAL.sdp_math, GLOBAL.sdp_mem_efficient, GLOBAL.sdp_cudnn)
    enable_flash_sdp(enable_flash)
    enable_math_sdp(enable_math)
    enable_mem_efficient_sdp(enable_mem_efficient)
    enable_cudnn_sdp(enable_cudnn)
    try:
        yield {}
    finally:
        GLOBAL.sdp_flash, GLOBAL.sdp_math, GLOBAL.sdp_mem_efficient, GLOBAL.sdp_cudnn = saved


def _on_cupy_init(cp) -> None:
    if _precision != "highest":
        _apply(cp)


def _register() -> None:
    from .. import _device
    if _on_cupy_init not in _device.on_cupy_init:
        _device.on_cupy_init.append(_on_cupy_init)


_register()


def __getattr__(name):
    if name == "SDPBackend":        # torch.backends.cuda.SDPBackend is torch.nn.attention's
        from ..nn.attention import SDPBackend
        return SDPBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
