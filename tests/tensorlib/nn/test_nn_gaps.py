"""Issue 13's last nn names, checked without torch (devtools/torch_compat/test_nn_gaps_against_torch.py
compares them with torch 2.13): gradients by gradcheck, and the identities that tie each to simpler ops."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.autograd import gradcheck

R = np.random.default_rng(13)


def T(*shape):
    return tl.tensor(R.standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("mode,kw", [("bicubic", dict(size=(5, 7), align_corners=False)),
                                     ("bicubic", dict(scale_factor=0.6, align_corners=True)),
                                     ("bilinear", dict(size=(2, 3), antialias=True)),
                                     ("bicubic", dict(size=(2, 3), antialias=True)),
                                     ("lanczos", dict(size=(2, 2), antialias=True)),
                                     ("nearest-exact", dict(size=(5, 3))), ("area", dict(size=(2, 3)))])
def test_interpolate_modes_gradcheck(mode, kw):
    assert gradcheck(lambda a: F.interpolate(a, mode=mode, **kw), [T(1, 2, 4, 5)])


def test_interpolate_identities():
    x = T(2, 3, 6, 8)
    # area is the adaptive average pool; a constant image stays constant under every antialiased filter
    np.testing.assert_allclose(F.interpolate(x, size=(3, 4), mode="area").detach().numpy(),
                               F.adaptive_avg_pool2d(x, (3, 4)).detach().numpy())
    c = tl.full((1, 1, 9, 11), 2.5, dtype=tl.float64)
    for mode in ("bilinear", "bicubic", "lanczos"):
        np.testing.assert_allclose(F.interpolate(c, size=(4, 5), mode=mode, antialias=True).numpy(), 2.5)
    # bicubic with align_corners at the same size returns the input; nearest-exact picks pixel centres
    np.testing.assert_allclose(F.interpolate(x, size=(6, 8), mode="bicubic", align_corners=True).detach().numpy(),
                               x.detach().numpy(), atol=1e-12)
    r = tl.arange(6.0).reshape(1, 1, 6)
    assert F.interpolate(r, size=4, mode="nearest-exact").tolist() == [[[0.0, 2.0, 3.0, 5.0]]]
    assert F.interpolate(r, size=4, mode="nearest").tolist() == [[[0.0, 1.0, 3.0, 4.0]]]


def test_grid_sample_bicubic_and_volumetric_gradcheck():
    g = tl.tensor(R.uniform(-1.1, 1.1, (1, 3, 2, 2)), requires_grad=True)
    for pm in ("zeros", "border", "reflection"):
        assert gradcheck(lambda a, b: F.grid_sample(a, b, mode="bicubic", padding_mode=pm, align_corners=False),
                         [T(1, 2, 4, 5), g])
    g5 = tl.tensor(R.uniform(-0.9, 0.9, (1, 2, 2, 2, 3)), requires_grad=True)
    assert gradcheck(lambda a, b: F.grid_sample(a, b, align_corners=True), [T(1, 2, 3, 4, 5), g5])


def test_adaptive_and_fractional_max_pools_point_at_their_maxima():
    x = T(2, 3, 5, 7, 6)
    v, i = F.adaptive_max_pool3d(x, (2, 3, 4), return_indices=True)
    flat = x.detach().numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, i.numpy().reshape(2, 3, -1), 2).reshape(v.shape),
                                  v.detach().numpy())
    u = tl.tensor(R.random((2, 3, 2)))
    x2 = T(2, 3, 9, 11)
    v2, i2 = F.fractional_max_pool2d(x2, 2, output_size=(5, 6), return_indices=True, _random_samples=u)
    again = F.fractional_max_pool2d(x2, 2, output_size=(5, 6), _random_samples=u)
    np.testing.assert_array_equal(v2.detach().numpy(), again.detach().numpy())
    flat2 = x2.detach().numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat2, i2.numpy().reshape(2, 3, -1), 2).reshape(v2.shape),
                                  v2.detach().numpy())
    # windows start at 0 and end at the last pixel, whatever the sample
    rows = (i2.numpy() // 11)
    assert rows.min() == 0 and rows.max() >= 9 - 2
    assert gradcheck(lambda a: F.fractional_max_pool3d(a, 2, output_size=(2, 2, 3), _random_samples=tl.tensor(
        [[[0.3, 0.6, 0.1]]])), [T(1, 1, 4, 4, 5)])
    m = tl.nn.FractionalMaxPool2d(3, output_ratio=0.5)
    assert tuple(m(tl.randn(2, 3, 10, 12)).shape) == (2, 3, 5, 6)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        tl.nn.FractionalMaxPool2d(2, output_ratio=1.5)


def test_adaptive_log_softmax_is_a_distribution():
    m = tl.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, dtype=tl.float64)
    assert list(m.state_dict()) == ["head.weight", "tail.0.0.weight", "tail.0.1.weight", "tail.1.0.weight",
                                    "tail.1.1.weight"]
    x = tl.tensor(R.standard_normal((5, 8)))
    lp = m.log_prob(x)
    np.testing.assert_allclose(np.exp(lp.detach().numpy()).sum(1), 1.0, rtol=1e-12)
    target = tl.tensor([0, 4, 8, 11, 2])
    out = m(x, target)
    np.testing.assert_allclose(out.output.detach().numpy(), lp.detach().numpy()[np.arange(5), target.numpy()],
                               rtol=1e-12)
    np.testing.assert_allclose(out.loss.item(), -out.output.detach().numpy().mean(), rtol=1e-12)
    np.testing.assert_array_equal(m.predict(x).numpy(), lp.detach().numpy().argmax(1))
    out.loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 11\]"):
        m(x, tl.tensor([0, 1, 2, 3, 12]))


def test_functional_mha_is_the_module():
    mha = tl.nn.MultiheadAttention(8, 2, dtype=tl.float64)
    q = tl.tensor(R.standard_normal((4, 3, 8)))
    ref, w = mha(q, q, q)
    out, w2 = F.multi_head_attention_forward(q, q, q, 8, 2, mha.in_proj_weight, mha.in_proj_bias, None, None, False,
                                             0.0, mha.out_proj.weight, mha.out_proj.bias)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy())
    np.testing.assert_allclose(w2.detach().numpy(), w.detach().numpy())
    fused, none = mha(q, q, q, need_weights=False)
    assert none is None
    np.testing.assert_allclose(fused.detach().numpy(), ref.detach().numpy(), atol=1e-12)


def test_linear_cross_entropy_is_linear_then_cross_entropy():
    x, w, b = T(4, 6), T(5, 6), T(5)
    t = tl.tensor([0, 3, 4, 1])
    np.testing.assert_allclose(F.linear_cross_entropy(x, w, t, linear_bias=b).item(),
                               F.cross_entropy(F.linear(x, w, b), t).item(), rtol=1e-12)
    assert gradcheck(lambda a, c: F.linear_cross_entropy(a, c, t, label_smoothing=0.1), [x, w])
    with pytest.raises(NotImplementedError, match="pass options=None"):
        F.linear_cross_entropy(x, w, t, options=object())
    loss = tl.nn.LinearCrossEntropyLoss(6, 5, out_features=(2,), bias=True)
    assert tuple(loss.linear.weight.shape) == (10, 6)
    assert tuple(loss(tl.randn(3, 6), tl.zeros(3, 2, dtype=tl.int64)).shape) == ()


def test_cross_map_lrn2d_legacy_formula():
    x = R.standard_normal((2, 7, 3, 2))
    size, alpha, beta, k = 3, 0.2, 0.75, 2.0
    out = tl.nn.CrossMapLRN2d(size, alpha, beta, k)(tl.tensor(x)).numpy()
    sq = x ** 2
    pre = int((size - 1) / 2 + 1)
    scale = np.zeros_like(x)
    for c in range(7):      # the Lua module's running window: channels c-pre+1 .. c+pre-1, channel 0 never leaves
        lo, hi = (0 if c <= pre else c - pre + 1), min(c + pre - 1, 6)
        scale[:, c] = sq[:, lo:hi + 1].sum(1) + (sq[:, 0] if c > pre else 0)
    np.testing.assert_allclose(out, x * (k + alpha / size * scale) ** -beta, rtol=1e-12)
    with pytest.raises(ValueError, match="CrossMapLRN2d: Expected input to be 4D, got 3D instead."):
        tl.nn.CrossMapLRN2d(3)(tl.zeros(2, 3, 4))


def test_embedding_scale_grad_by_freq_divides_by_each_rows_count():
    w = tl.ones(4, 2, requires_grad=True)
    idx = tl.tensor([[0, 0, 1], [2, 0, 1]])
    F.embedding(idx, w, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1, 1], [1, 1], [1, 1], [0, 0]])
    m = tl.nn.Embedding(4, 2, scale_grad_by_freq=True)
    m(idx).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), [[1, 1], [1, 1], [1, 1], [0, 0]])
    bag = tl.nn.EmbeddingBag(4, 2, mode="sum", scale_grad_by_freq=True)
    bag(idx).sum().backward()
    np.testing.assert_allclose(bag.weight.grad.numpy(), [[1, 1], [1, 1], [1, 1], [0, 0]])
    with pytest.raises(NotImplementedError, match="leave sparse=False"):
        tl.nn.Embedding(4, 2, sparse=True)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_output_size_picks_the_output_padding(nd):
    m = getattr(tl.nn, f"ConvTranspose{nd}d")(2, 3, 3, stride=2, padding=1)
    x = tl.randn(1, 2, *([4] * nd))
    assert tuple(m(x).shape[2:]) == (7,) * nd
    assert tuple(m(x, output_size=[8] * nd).shape[2:]) == (8,) * nd
    assert tuple(m(x, output_size=[1, 3] + [8] * nd).shape[2:]) == (8,) * nd
    with pytest.raises(ValueError, match=r"valid sizes range from \[7(, 7)*\] to \[8(, 8)*\]"):
        m(x, output_size=[9] * nd)
