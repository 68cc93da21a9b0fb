"""llama2.c (tests/programs/vendor/llama2c) against torch 2.13 beyond its losses (which
test_programs_against_torch.py compares with every program's): the model.bin that Transformer.export writes
at the last evaluation - the trained weights, and the complex64 rotary buffer's `.real` and `.imag` views
flattened by `.view(-1)` - from the same run on both sides (torch's initial weights, the shared random stream).
Measured: header identical, weights within 1.2e-7, frequencies within 6e-8."""
from __future__ import annotations

import numpy as np
import pytest

from tests.programs import harness


def test_llama2c_exports_the_same_model_as_torch(tmp_path):
    pytest.importorskip("torch")
    ref = harness.run("llama2c", "torch", tmp_path / "torch", 6, rng="shared", init="dump")
    ours = harness.run("llama2c", "tensorlib", tmp_path / "tensorlib", 6, rng="shared", init="load",
                       init_file=tmp_path / "torch" / "init.npz")
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-5)
    theirs = (tmp_path / "torch" / "out" / "model.bin").read_bytes()
    mine = (tmp_path / "tensorlib" / "out" / "model.bin").read_bytes()
    assert len(mine) == len(theirs) and mine[:28] == theirs[:28]      # 7 int32: dim, hidden, layers, ...
    a, b = np.frombuffer(mine[28:], np.float32), np.frombuffer(theirs[28:], np.float32)
    freqs = 2 * 16 * (32 // 4) // 2                                    # real and imag, max_seq_len x head_dim / 2
    np.testing.assert_allclose(a[-freqs:], b[-freqs:], rtol=0, atol=1e-7)
    np.testing.assert_allclose(a[:-freqs], b[:-freqs], rtol=0, atol=1e-6)
