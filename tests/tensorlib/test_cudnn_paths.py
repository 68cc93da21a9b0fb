"""The cuDNN convolution path (CuPy's `cupyx.cudnn`, present in CuPy 13 with cuDNN) and what the
backends.cudnn flags pass to it. These run under the fake CuPy (tests/fakecupy), whose cuDNN stand-in
(`cupy._cudnn_fake`) computes the convolutions in NumPy and records each call; on a real GPU the
`cuda` tests of test_cuda.py / test_init_utils.py cover whichever CuPy is installed."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.backends import cudnn

pytestmark = pytest.mark.cuda


@pytest.fixture
def fake_cudnn(monkeypatch):
    import cupy
    if not getattr(cupy, "__fake__", False):
        pytest.skip("uses the fake CuPy's cuDNN stand-in (PYTHONPATH=tests/fakecupy); a real GPU runs the real one")
    from cupy import _cudnn_fake
    monkeypatch.setitem(sys.modules, "cupyx.cudnn", _cudnn_fake)
    saved = (cudnn.benchmark, cudnn.deterministic, cudnn.enabled)
    cudnn.clear_cache()
    _cudnn_fake.calls.clear()
    yield _cudnn_fake.calls
    cudnn.benchmark, cudnn.deterministic, cudnn.enabled = saved
    monkeypatch.delitem(sys.modules, "cupyx.cudnn")
    cudnn.clear_cache()


def _conv_grads(device, x, w, b, **kw):
    xt = tl.tensor(x, device=device, requires_grad=True)
    wt = tl.tensor(w, device=device, requires_grad=True)
    bt = tl.tensor(b, device=device, requires_grad=True)
    y = F.conv2d(xt, wt, bt, **kw)
    (y * y).sum().backward()
    return [t.detach().cpu().numpy() for t in (y, xt.grad, wt.grad, bt.grad)]


CASES = [dict(stride=1, padding=1), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
         dict(stride=2, padding=0, groups=4)]


@pytest.mark.parametrize("kw", CASES)
def test_cudnn_conv_matches_the_cpu(fake_cudnn, kw):
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 8, 9, 10)).astype(np.float32)
    w = r.standard_normal((4, 8 // kw.get("groups", 1), 3, 3)).astype(np.float32)
    b = r.standard_normal(4).astype(np.float32)
    assert cudnn.is_available()
    want = _conv_grads("cpu", x, w, b, **kw)
    got = _conv_grads("cuda", x, w, b, **kw)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
    names = {c[0] for c in fake_cudnn}
    assert names == {"convolution_forward", "convolution_backward_data", "convolution_backward_filter"}


def test_flags_reach_cudnn(fake_cudnn):
    x = tl.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
    w = tl.randn(4, 3, 3, 3, device="cuda", requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert all(not c[1]["auto_tune"] for c in fake_cudnn)
    assert all(not c[1]["deterministic"] for c in fake_cudnn if "deterministic" in c[1])
    fake_cudnn.clear()
    cudnn.benchmark = True
    cudnn.deterministic = True
    F.conv2d(x, w, padding=1).sum().backward()
    assert fake_cudnn and all(c[1]["auto_tune"] for c in fake_cudnn)
    assert all(c[1]["deterministic"] for c in fake_cudnn if c[0] != "convolution_forward")
    # benchmark timed cuDNN against the CuPy algorithms for each step, and kept one per shape
    fwd = [k for k in cudnn.timings if k[0][0] == "conv2d"]
    assert fwd and set(cudnn.timings[fwd[0]]) == {"cudnn", "gemm", "taps"}
    assert "scatter" not in cudnn.timings[next(k for k in cudnn.timings if k[0][0] == "col2im")]   # deterministic


def test_no_cudnn_where_it_cannot_or_must_not_run(fake_cudnn):
    r = np.random.default_rng(1)
    x, w, b = (r.standard_normal(s).astype(np.float32) for s in ((1, 2, 7, 7), (3, 2, 4, 4), (3,)))
    # padding="same" with an even kernel pads one more row/column at the end: cuDNN takes one number
    got = _conv_grads("cuda", x, w, b, padding="same")
    assert fake_cudnn == []
    for g, e in zip(got, _conv_grads("cpu", x, w, b, padding="same")):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
    cudnn.enabled = False
    assert cudnn.version() is None
    _conv_grads("cuda", x, w, b, padding=1)
    assert fake_cudnn == []
    cudnn.enabled = True
    _conv_grads("cuda", x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1)
    assert len(fake_cudnn) == 3


def test_conv_transpose_uses_cudnn_backward_data(fake_cudnn):
    r = np.random.default_rng(2)
    x = r.standard_normal((2, 4, 5, 6)).astype(np.float32)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1)
    want = F.conv_transpose2d(tl.tensor(x), tl.tensor(w), **kw).numpy()
    got = F.conv_transpose2d(tl.tensor(x, device="cuda"), tl.tensor(w, device="cuda"), **kw).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert [c[0] for c in fake_cudnn] == ["convolution_backward_data"]
