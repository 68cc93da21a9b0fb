"""Public PyTorch programs that compute in complex numbers, vendored unchanged (tests/programs/README.md), train
on tensorlib: llama2.c's LLaMA, whose rotary embeddings are complex64 (`torch.polar` for the frequencies,
`torch.view_as_complex` / `view_as_real` around the rotation, `.real` / `.imag` when the model is exported).
devtools/torch_compat/test_programs_against_torch.py runs the same program step by step against torch."""
from __future__ import annotations

import struct

import numpy as np

from tests.programs import harness


def test_llama2c_trains(tmp_path):
    """4 iterations of 2 micro-batches (8 backward calls, each loss / 2 as the program scales it): the loss falls
    from ln(32000) / 2, the program's vocabulary being 32000 whatever the data's; the model it exports at the
    last evaluation holds the rotary frequencies torch.polar made."""
    r = harness.run("llama2c", "tensorlib", tmp_path / "w", 8)
    losses = np.array(r["losses"])
    assert r["torch"] == "tensorlib"
    assert len(losses) == 8 and np.isfinite(losses).all()
    assert abs(losses[0] - np.log(32000) / 2) < 0.05
    assert losses[-2:].mean() < losses[0] - 0.05, losses
    assert "step 3: train loss" in r["stdout"] and "saving checkpoint to out" in r["stdout"]
    _exported_rotary_frequencies(tmp_path / "w" / "out" / "model.bin")


def _exported_rotary_frequencies(path):
    """Transformer.export wrote model.bin from tensors' `.view(-1)`: the weights, then `freqs_cis.real` and
    `freqs_cis.imag` (strided views of the complex64 buffer, sliced to max_seq_len) - cos and sin of
    position * 10000^(-2i/head_dim), as torch.polar(ones, angles) gave them."""
    raw = path.read_bytes()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq = struct.unpack("7i", raw[:28])
    assert (dim, n_layers, n_heads, n_kv_heads, vocab, seq) == (32, 2, 4, 4, 32000, 16)
    assert hidden == 96                     # int(2 * 4 * 32 / 3) = 85, rounded up to a multiple of 16
    body = np.frombuffer(raw[28:], np.float32)
    head = dim // n_heads
    weights = vocab * dim + n_layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim
    assert body.size == weights + 2 * seq * head // 2
    angles = np.outer(np.arange(seq, dtype=np.float32),
                      1.0 / 10000.0 ** (np.arange(0, head, 2, dtype=np.float32) / head)).astype(np.float32)
    cos, sin = body[weights:].reshape(2, seq, head // 2)
    np.testing.assert_allclose(cos, np.cos(angles), atol=1e-6)
    np.testing.assert_allclose(sin, np.sin(angles), atol=1e-6)
    assert np.isfinite(body[:weights]).all() and body[:weights].std() > 0.01


def test_llama2c_resumes_from_its_checkpoint(tmp_path):
    """ckpt.pt (model state without the non-persistent complex freqs_cis buffer, AdamW state, model_args,
    config) read back by torch.load with weights_only's default: training carries on from iteration 2."""
    work = tmp_path / "w"
    first = harness.run("llama2c", "tensorlib", work, 6)
    again = harness.run("llama2c", "tensorlib", work, 6, fresh=False,
                        extra_args=["--init_from=resume", "--max_iters=4"])
    assert "Resuming training from out" in again["stdout"]
    assert "step 2: train loss" in again["stdout"] and len(again["losses"]) == 2 * 3     # iterations 2, 3, 4
    assert np.isfinite(again["losses"]).all() and again["losses"][-1] < first["losses"][0]
