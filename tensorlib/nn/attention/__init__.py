"""torch.nn.attention: `SDPBackend` and `sdpa_kernel`, which choose the backends scaled_dot_product_attention may
use for a block (torch's global flags, tensorlib.backends.cuda.enable_*_sdp). On the CPU, as torch's dispatch, the
flash kernel (where its conditions hold) or the math path; with neither allowed, torch's "No viable backend" error.
On CUDA tensorlib has one attention kernel, which runs whichever backends are allowed (the math path's values)."""
from __future__ import annotations

import contextlib
import enum

from ..._state import GLOBAL

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch._C._SDPBackend's members and values."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_FLAGS = {SDPBackend.MATH: "sdp_math", SDPBackend.FLASH_ATTENTION: "sdp_flash",
          SDPBackend.EFFICIENT_ATTENTION: "sdp_mem_efficient", SDPBackend.CUDNN_ATTENTION: "sdp_cudnn"}


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Allow only `backends` (an SDPBackend or a list of them) for scaled_dot_product_attention in the block; the
    previous flags come back after it. set_priority orders torch's CUDA choice among several; tensorlib's CPU
    order is torch's (flash, then math) and its CUDA kernel is one, so the order changes nothing."""
    if isinstance(backends, SDPBackend):
        backends = [backends]
    if not isinstance(backends, list) or not all(isinstance(b, SDPBackend) for b in backends):
        got = type(backends).__name__ if not isinstance(backends, list) else "a list with other items"
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of SDPBackend instances, "
                             f"got {got}")
    saved = {f: getattr(GLOBAL, f) for f in _FLAGS.values()}
    for b, f in _FLAGS.items():
        setattr(GLOBAL, f, b in backends)
    try:
        yield {}
    finally:
        for f, v in saved.items():
            setattr(GLOBAL, f, v)
