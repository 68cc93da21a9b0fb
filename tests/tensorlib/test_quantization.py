"""tensorlib.quantization.quantize_dynamic (issue 19): int8 Linear weights (per tensor or per channel), uint8
activations quantized per batch, int32 accumulation; the digits MLP keeps its accuracy within a point with 4x
less weight memory, and the quantized op is profiled under torch's name."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "samples"))


@pytest.fixture(scope="module")
def trained_mlp():
    from _data import batches, digits
    from train_mlp import MLP
    tl.manual_seed(0)
    (xtr, ytr), (xte, yte) = digits(0)
    model = MLP()
    opt = tl.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(2):          # two epochs (the sample trains 20): enough to compare float and int8
        for xb, yb in batches(xtr, ytr, 64, rng):
            loss = F.cross_entropy(model(tl.tensor(xb)), tl.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), xte, yte


def _acc(model, x, y):
    with tl.no_grad():
        return float((model(tl.tensor(x)).argmax(1).numpy() == y).mean())


@pytest.mark.parametrize("qconfig", ["default", "per_channel"])
def test_digits_mlp_keeps_its_accuracy_with_a_quarter_of_the_weight_memory(trained_mlp, qconfig):
    model, x, y = trained_mlp
    qc = getattr(tl.quantization, f"{qconfig}_dynamic_qconfig")
    q = tl.quantization.quantize_dynamic(model, {nn.Linear: qc}, dtype=tl.qint8)
    assert type(model.fc1) is nn.Linear                          # a copy (inplace=False)
    assert type(q.fc1).__name__ == "DynamicQuantizedLinear" and "dtype=torch.qint8" in repr(q)
    base, quant = _acc(model, x, y), _acc(q, x, y)
    assert base > 0.8 and abs(base - quant) <= 0.01
    float_bytes = sum(p.nbytes for n, p in model.named_parameters() if n.endswith("weight"))
    int8_bytes = sum(b.nbytes for n, b in q.named_buffers() if n.endswith("_packed_weight"))
    assert float_bytes == 4 * int8_bytes
    assert q.fc1._packed_weight.dtype == tl.int8
    assert tuple(q.fc1.scale.shape) == ((128,) if qconfig == "per_channel" else ())
    # the dequantized weight is within half a step of the float one
    step = q.fc1.scale.numpy().reshape(-1, 1) if qconfig == "per_channel" else q.fc1.scale.numpy()
    assert np.all(np.abs(q.fc1.weight().numpy() - model.fc1.weight.detach().numpy()) <= step / 2 + 1e-7)


def test_the_quantized_op_is_int32_accumulation_of_uint8_activations():
    lin = nn.Linear(5, 3)
    q = tl.quantization.quantize_dynamic(nn.Sequential(lin), {nn.Linear}).get_submodule("0")
    x = tl.randn(4, 5)
    xs = x.numpy()
    lo, hi = min(xs.min(), 0.0), max(xs.max(), 0.0)
    s = (hi - lo) / 255
    zp = int(round(-lo / s))
    xq = np.clip(np.rint(xs / s) + zp, 0, 255).astype(np.int32) - zp
    want = (xq @ q._packed_weight.numpy().astype(np.int32).T) * (np.float32(s) * q.scale.numpy()) + q.bias.numpy()
    np.testing.assert_allclose(q(x).numpy(), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(q(x).numpy(), lin(x).detach().numpy(), atol=0.05)


def test_profiled_under_torchs_name():
    q = tl.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear})
    with tl.profiler.profile() as prof:
        q(tl.randn(3, 8))
    assert "quantized::linear_dynamic" in [e.key for e in prof.key_averages()]


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(num_layers=2, bidirectional=True)])
def test_lstm_is_quantized_dynamically(kw):
    tl.manual_seed(1)
    lstm = nn.LSTM(6, 8, **kw).eval()
    q = tl.quantization.quantize_dynamic(nn.Sequential(lstm), {nn.LSTM})[0]
    assert type(q).__name__ == "DynamicQuantizedLSTM"
    x = tl.randn(3, 5, 6)
    with tl.no_grad():
        (y, (h, c)), (qy, (qh, qc)) = lstm(x), q(x)
    for a, b in ((y, qy), (h, qh), (c, qc)):
        assert a.shape == b.shape
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=0.03)
    with tl.profiler.profile() as prof:
        q(x)
    ops = {e.key: e.count for e in prof.key_averages()}
    steps = 5 if kw.get("batch_first") else 3
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    assert ops["quantized::linear_dynamic"] == layers * (1 + steps)      # input projection + one per step
    assert "aten::linear" not in ops


def test_torch_ao_spelling_and_bad_arguments():
    assert tl.ao.quantization.quantize_dynamic is tl.quantization.quantize_dynamic
    m = nn.Sequential(nn.Linear(4, 4), nn.GRU(4, 4))
    with pytest.raises(NotImplementedError, match="dynamic quantization of GRU is not supported"):
        tl.quantization.quantize_dynamic(m, {nn.Linear, nn.GRU})
    with pytest.warns(UserWarning, match="GRU layers stay float32"):
        q = tl.quantization.quantize_dynamic(m)
    assert type(q[0]).__name__ == "DynamicQuantizedLinear" and type(q[1]) is nn.GRU
    with pytest.raises(ValueError, match="supports dtype=qint8 only"):
        tl.quantization.quantize_dynamic(m, {nn.Linear}, dtype=tl.float16)
    inplace = nn.Sequential(nn.Linear(2, 2))
    assert tl.quantization.quantize_dynamic(inplace, {"0"}, inplace=True) is inplace
    assert type(inplace[0]).__name__ == "DynamicQuantizedLinear"
