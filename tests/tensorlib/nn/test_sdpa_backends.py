"""torch.nn.attention.sdpa_kernel / SDPBackend and torch.backends.cuda's scaled-dot-product flags: which kernel
scaled_dot_product_attention runs on the CPU (torch's flash kernel where its conditions hold, else the math path),
torch's errors when none allowed can run, and the flags restored after the block."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from profiler import profile
from tensorlib.backends import cuda as bcuda
from tensorlib.nn.attention import SDPBackend, sdpa_kernel


def _q():
    return tl.tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 8)).astype(np.float32))


def _names(fn):
    with profile() as prof:
        fn()
    return [e.name for e in prof.events()]


def test_sdpa_kernel_picks_the_cpu_kernel_and_restores_the_flags():
    q = _q()
    ref = F.scaled_dot_product_attention(q, q, q)
    flash = "aten::_scaled_dot_product_flash_attention_for_cpu"
    assert flash in _names(lambda: F.scaled_dot_product_attention(q, q, q))
    with sdpa_kernel(SDPBackend.MATH):
        assert (bcuda.math_sdp_enabled(), bcuda.flash_sdp_enabled()) == (True, False)
        names = _names(lambda: F.scaled_dot_product_attention(q, q, q))
        np.testing.assert_allclose(F.scaled_dot_product_attention(q, q, q).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert "aten::_scaled_dot_product_attention_math" in names
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" not in names
    assert bcuda.math_sdp_enabled() and bcuda.flash_sdp_enabled() and bcuda.mem_efficient_sdp_enabled()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        F.scaled_dot_product_attention(q, q, q)             # flash can run these
        with pytest.raises(RuntimeError, match="No available kernel.  Aborting execution."):
            F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)      # flash takes no dropout; math is off
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):       # not a CPU kernel, as in torch
        with pytest.raises(RuntimeError, match="No viable backend for scaled_dot_product_attention was found"):
            F.scaled_dot_product_attention(q, q, q)
    with pytest.raises(AssertionError, match="Backend must be an instance of SDPBackend"):
        with sdpa_kernel(3):
            pass
    assert [int(b) for b in SDPBackend] == [-1, 0, 1, 2, 3, 4]


def test_backends_cuda_flags_and_the_deprecated_sdp_kernel():
    with pytest.warns(FutureWarning, match=r"`torch.backends.cuda.sdp_kernel\(\)` is deprecated"):
        with bcuda.sdp_kernel(enable_math=False):
            assert not bcuda.math_sdp_enabled() and bcuda.flash_sdp_enabled()
    assert bcuda.math_sdp_enabled()
    bcuda.enable_flash_sdp(False)
    try:
        q = _q()
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" not in _names(
            lambda: F.scaled_dot_product_attention(q, q, q))
    finally:
        bcuda.enable_flash_sdp(True)
    assert bcuda.SDPBackend is SDPBackend and tl.backends.cuda.cudnn_sdp_enabled()
