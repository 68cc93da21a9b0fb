"""The nn stack on a GPU (CuPy) gives the CPU's results. Skipped, saying why, where there is no GPU."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
import tensorlib.nn.functional as F

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _need_gpu():
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device with CuPy on this machine")


def _same(model_fn, x_shape, target=None):
    tl.manual_seed(0)
    cpu = model_fn().double()
    gpu = model_fn().double()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    assert all(p.is_cuda for p in gpu.parameters())
    x = np.random.default_rng(0).standard_normal(x_shape)
    outs = []
    for m, dev in ((cpu, "cpu"), (gpu, "cuda")):
        xt = tl.tensor(x, device=dev, requires_grad=True)
        y = m(xt)
        y = y[0] if isinstance(y, tuple) else y
        loss = F.cross_entropy(y, tl.tensor(target, device=dev)) if target is not None else (y * y).sum()
        loss.backward()
        outs.append((y.detach().cpu().numpy(), xt.grad.cpu().numpy(),
                     [p.grad.cpu().numpy() for p in m.parameters()]))
    (y0, g0, p0), (y1, g1, p1) = outs
    np.testing.assert_allclose(y1, y0, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(g1, g0, rtol=1e-7, atol=1e-9)
    for a, b in zip(p1, p0):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_cnn_on_gpu_matches_cpu():
    _same(lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                nn.ConvTranspose2d(4, 3, 2, stride=2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
                                nn.Flatten(), nn.Linear(3, 5)), (4, 2, 8, 8), target=[0, 1, 4, 2])


def test_lstm_and_attention_on_gpu_match_cpu():
    _same(lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), (5, 2, 3))
    _same(lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), (2, 5, 8))


def test_losses_and_embedding_on_gpu():
    x = tl.randn(4, 5, device="cuda", requires_grad=True)
    t = tl.tensor([0, 3, -100, 1], device="cuda")
    loss = F.cross_entropy(x, t, label_smoothing=0.1) + F.mse_loss(x, x.detach() * 2)
    loss.backward()
    ref_x = tl.tensor(x.detach().cpu().numpy(), requires_grad=True)
    ref = (F.cross_entropy(ref_x, tl.tensor([0, 3, -100, 1]), label_smoothing=0.1)
           + F.mse_loss(ref_x, ref_x.detach() * 2))
    ref.backward()
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-5)
    np.testing.assert_allclose(x.grad.cpu().numpy(), ref_x.grad.numpy(), rtol=1e-4, atol=1e-6)
    emb = nn.Embedding(10, 3, padding_idx=0).cuda()
    emb(tl.tensor([[0, 2], [2, 9]], device="cuda")).sum().backward()
    assert emb.weight.grad.is_cuda and float(emb.weight.grad[2, 0]) == 2.0
