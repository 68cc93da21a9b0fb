"""avg_pool2d's window sums by strided tap additions and its one-op backward (avg_pool2d_backward), against a
loop over the windows, for overlapping, tiling, padded and ceil-mode configurations."""
import numpy as np
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F


def _reference(x, k, s, p, ceil, count_include_pad):
    N, C, H, W = x.shape
    out_h = (H + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    out_w = (W + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out_h - 1) * s >= H + p:
        out_h -= 1
    if ceil and (out_w - 1) * s >= W + p:
        out_w -= 1
    y = np.zeros((N, C, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            h0, w0 = i * s - p, j * s - p
            h1, w1 = min(h0 + k, H + p), min(w0 + k, W + p)
            n = (h1 - h0) * (w1 - w0)
            hs, ws = max(h0, 0), max(w0, 0)
            he, we = min(h1, H), min(w1, W)
            window = x[:, :, hs:he, ws:we]
            y[:, :, i, j] = window.sum(axis=(2, 3)) / (n if count_include_pad else window.shape[2] * window.shape[3])
    return y


@pytest.mark.parametrize("k,s,p,ceil,cip", [(2, 2, 0, False, True), (3, 1, 1, False, True), (3, 2, 1, False, False),
                                            (3, 2, 1, True, True), (4, 3, 2, True, False), (5, 2, 0, False, True)])
def test_values_and_gradient(k, s, p, ceil, cip):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    xt = tl.tensor(x, requires_grad=True)
    y = F.avg_pool2d(xt, k, s, p, ceil, cip)
    want = _reference(x, k, s, p, ceil, cip)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(want.shape)
    y.backward(tl.tensor(g))
    x2 = np.random.default_rng(2).standard_normal(x.shape)      # the adjoint: <pool(x2), g> == <x2, grad>
    assert float((_reference(x2, k, s, p, ceil, cip) * g).sum()) == pytest.approx(float((x2 * xt.grad.numpy()).sum()))


def test_backward_is_one_op():
    x = tl.randn(1, 2, 4, 4, requires_grad=True)
    with profiler.profile() as p:
        F.avg_pool2d(x * 1, 2).sum().backward()
    names = [e.name for e in p.events()]
    i = names.index("AvgPool2DBackward0")
    assert names[i + 1] == "aten::avg_pool2d_backward"
    assert "aten::conv_transpose2d" not in names


@pytest.mark.parametrize("out", [(7, 7), (1, 1), (3, 2), (5, 5), (1, 3), (9, 8)])
def test_adaptive_average_by_bin_matrices(out):
    """adaptive_avg_pool2d as A_h @ x @ A_w^T (and its backward transposed): each output the mean of torch's
    bin [floor(i n / o), ceil((i + 1) n / o)) in each dim."""
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    xt = tl.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(xt, out)
    want = np.zeros((2, 3) + out)
    for i in range(out[0]):
        h0, h1 = i * 9 // out[0], -(-(i + 1) * 9 // out[0])
        for j in range(out[1]):
            w0, w1 = j * 8 // out[1], -(-(j + 1) * 8 // out[1])
            want[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12, atol=1e-13)
    g = np.random.default_rng(1).standard_normal(want.shape)
    y.backward(tl.tensor(g))
    x2 = np.random.default_rng(2).standard_normal(x.shape)
    y2 = F.adaptive_avg_pool2d(tl.tensor(x2), out).numpy()
    assert float((y2 * g).sum()) == pytest.approx(float((x2 * xt.grad.numpy()).sum()))
