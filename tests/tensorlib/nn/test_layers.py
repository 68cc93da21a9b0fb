"""Layers against NumPy references, and gradcheck (float64) through each."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.autograd import gradcheck
import tensorlib.nn.functional as F

from . import _ref

rng = np.random.default_rng(0)


def t64(*shape, grad=True):
    return tl.tensor(rng.standard_normal(shape), requires_grad=grad)


def npy(t):
    return t.detach().numpy()


def test_linear_matches_numpy_and_default_init_bounds():
    tl.manual_seed(0)
    fc = nn.Linear(20, 7)
    w = npy(fc.weight)
    assert np.abs(w).max() <= 1 / np.sqrt(20) and np.abs(w).max() > 0.8 / np.sqrt(20)
    x = tl.randn(3, 5, 20)
    np.testing.assert_allclose(npy(fc(x)), x.numpy() @ w.T + npy(fc.bias), rtol=1e-5, atol=1e-6)
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        fc(tl.randn(2, 3))
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got Double and Float"):
        fc(tl.randn(2, 20, dtype=tl.float64))


def test_linear_gradcheck():
    x, w, b = t64(2, 3, 4), t64(5, 4), t64(5)
    assert gradcheck(F.linear, (x, w, b))
    assert gradcheck(lambda x, w: F.linear(x, w), (x, w))


def test_bilinear():
    x1, x2, w, b = t64(3, 4), t64(3, 5), t64(2, 4, 5), t64(2)
    ref = np.einsum("ni,oij,nj->no", npy(x1), npy(w), npy(x2)) + npy(b)
    np.testing.assert_allclose(npy(F.bilinear(x1, x2, w, b)), ref, rtol=1e-10)
    assert gradcheck(F.bilinear, (x1, x2, w, b))
    assert nn.Bilinear(4, 5, 2)(tl.randn(3, 4), tl.randn(3, 5)).shape == (3, 2)


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (1, 1, 1, 1), ((2, 1), (1, 2), (1, 2), 2), (2, 0, 1, 4), (1, "same", 2, 1)])
def test_conv2d_matches_numpy_and_gradcheck(stride, padding, dilation, groups):
    x, w, b = t64(2, 4, 7, 6), t64(4, 4 // groups, 3, 2), t64(4)
    y = F.conv2d(x, w, b, stride, padding, dilation, groups)
    from tensorlib.ops.conv_ops import _padding4, _pair
    pad = _padding4(padding, (3, 2), _pair(dilation), _pair(stride))
    ref = _ref.conv2d(npy(x), npy(w), npy(b), _pair(stride), pad, _pair(dilation), groups)
    np.testing.assert_allclose(npy(y), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), (x, w, b))


def test_conv2d_same_keeps_size_even_kernel():
    x = tl.randn(1, 2, 5, 6)
    assert nn.Conv2d(2, 3, 4, padding="same")(x).shape == (1, 3, 5, 6)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")


def test_conv2d_errors():
    with pytest.raises(RuntimeError, match="expected input.*to have 4 channels, but got 3"):
        F.conv2d(tl.randn(1, 3, 5, 5), tl.randn(2, 4, 3, 3))
    with pytest.raises(RuntimeError, match=r"Input type \(Double\) and weight type \(Float\) should be the same"):
        nn.Conv2d(1, 1, 3)(tl.randn(1, 1, 5, 5, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        F.conv2d(tl.randn(1, 1, 2, 2), tl.randn(1, 1, 3, 3))


def test_conv2d_module_padding_modes_and_init():
    tl.manual_seed(0)
    c = nn.Conv2d(3, 5, 3, padding=1, padding_mode="reflect")
    x = tl.randn(2, 3, 6, 6)
    ref = _ref.conv2d(np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"), npy(c.weight),
                      npy(c.bias))
    np.testing.assert_allclose(npy(c(x)), ref, rtol=1e-4, atol=1e-5)
    assert np.abs(npy(c.weight)).max() <= 1 / np.sqrt(27)
    assert repr(c) == "Conv2d(3, 5, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), padding_mode=reflect)"


def test_conv1d():
    x, w, b = t64(2, 3, 9), t64(4, 3, 3), t64(4)
    y = F.conv1d(x, w, b, stride=2, padding=1)
    ref = _ref.conv2d(npy(x)[:, :, None], npy(w)[:, :, None], npy(b), (1, 2), (0, 0, 1, 1))[:, :, 0]
    np.testing.assert_allclose(npy(y), ref, rtol=1e-10)
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), (x, w, b))
    assert nn.Conv1d(3, 4, 4, padding="same")(tl.randn(2, 3, 9)).shape == (2, 4, 9)


@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 1, 0, 2, 2), (3, 0, 2, 1, 1)])
def test_conv_transpose2d(stride, padding, output_padding, groups, dilation):
    x, w, b = t64(2, 4, 3, 4), t64(4, 6 // groups, 3, 2), t64(6)
    y = F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
    ref = _ref.conv_transpose2d(npy(x), npy(w), npy(b), (stride,) * 2, (padding,) * 2, (output_padding,) * 2,
                                (dilation,) * 2, groups)
    np.testing.assert_allclose(npy(y), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
                                                        dilation), (x, w, b))


def test_conv_transpose2d_module_output_size():
    m = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    assert m(tl.randn(1, 3, 4, 4)).shape == (1, 2, 7, 7)
    assert m(tl.randn(1, 3, 4, 4), output_size=(8, 8)).shape == (1, 2, 8, 8)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool2d(k, s, p):
    x = tl.tensor(rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 7.0, requires_grad=True)
    y = F.max_pool2d(x, k, s, p)
    np.testing.assert_allclose(npy(y), _ref.pool2d(npy(x), k, s, p, np.max, -np.inf))
    assert gradcheck(lambda x: F.max_pool2d(x, k, s, p), (x,))
    out, idx = nn.MaxPool2d(k, s, p, return_indices=True)(x)
    flat = npy(x).reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2),
                                  npy(out).reshape(2, 3, -1))


def test_max_pool2d_ceil_mode_and_dilation():
    x = t64(1, 2, 7, 7)
    assert F.max_pool2d(x, 2, ceil_mode=True).shape == (1, 2, 4, 4)
    assert F.max_pool2d(x, 2, ceil_mode=False).shape == (1, 2, 3, 3)
    assert gradcheck(lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True), (x,))
    assert gradcheck(lambda x: F.max_pool2d(x, 2, 1, dilation=2), (x,))


@pytest.mark.parametrize("k,s,p,cip", [(2, 2, 0, True), (3, 2, 1, True), (3, 2, 1, False)])
def test_avg_pool2d(k, s, p, cip):
    x = t64(2, 3, 7, 6)
    y = F.avg_pool2d(x, k, s, p, count_include_pad=cip)
    if cip:
        ref = _ref.pool2d(npy(x), k, s, p, np.mean, 0.0)
    else:
        ref = _ref.pool2d(npy(x), k, s, p, np.sum, 0.0) / _ref.pool2d(np.ones((1, 1, 7, 6)), k, s, p, np.sum, 0.0)
    np.testing.assert_allclose(npy(y), ref, rtol=1e-10)
    assert gradcheck(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=cip), (x,))


@pytest.mark.parametrize("out", [1, (2, 3), (3, 4)])
def test_adaptive_avg_pool2d(out):
    x = t64(2, 3, 6, 7)
    o = (out, out) if isinstance(out, int) else out
    ref = np.zeros((2, 3) + o)
    for i in range(o[0]):
        for j in range(o[1]):
            h0, h1 = (i * 6) // o[0], -(-((i + 1) * 6) // o[0])
            w0, w1 = (j * 7) // o[1], -(-((j + 1) * 7) // o[1])
            ref[:, :, i, j] = npy(x)[:, :, h0:h1, w0:w1].mean((2, 3))
    np.testing.assert_allclose(npy(nn.AdaptiveAvgPool2d(out)(x)), ref, rtol=1e-10)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, out), (x,))


def test_batchnorm_training_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.2).double()
    x = t64(4, 3, 5, 5, grad=False) * 2 + 1
    y = bn(x)
    xn = npy(x)
    mu, var = xn.mean((0, 2, 3)), xn.var((0, 2, 3))
    np.testing.assert_allclose(npy(y), (xn - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5),
                               rtol=1e-8, atol=1e-10)
    n = 4 * 25
    np.testing.assert_allclose(npy(bn.running_mean), 0.2 * mu, rtol=1e-10)
    np.testing.assert_allclose(npy(bn.running_var), 0.8 + 0.2 * var * n / (n - 1), rtol=1e-10)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    y2 = bn(x)
    rm, rv = npy(bn.running_mean), npy(bn.running_var)
    np.testing.assert_allclose(npy(y2), (xn - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5),
                               rtol=1e-8)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_gradcheck_both_modes():
    x, w, b = t64(4, 3, 2), t64(3), t64(3)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = tl.tensor(rng.standard_normal(3)), tl.tensor(rng.random(3) + 0.5)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(tl.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tl.randn(1, 3))


def test_layer_norm():
    x, w, b = t64(2, 3, 4), t64(3, 4), t64(3, 4)
    xn = npy(x)
    mu, var = xn.mean((1, 2), keepdims=True), xn.var((1, 2), keepdims=True)
    ref = (xn - mu) / np.sqrt(var + 1e-5) * npy(w) + npy(b)
    np.testing.assert_allclose(npy(F.layer_norm(x, (3, 4), w, b)), ref, rtol=1e-10)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), (x, w, b))
    ln = nn.LayerNorm(4)
    assert ln(tl.randn(2, 4)).shape == (2, 4)
    assert repr(ln) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    with pytest.raises(RuntimeError, match="normalized_shape"):
        ln(tl.randn(2, 5))


def test_group_norm():
    x, w, b = t64(2, 6, 3), t64(6), t64(6)
    xg = npy(x).reshape(2, 3, -1)
    ref = ((xg - xg.mean(2, keepdims=True)) / np.sqrt(xg.var(2, keepdims=True) + 1e-5)).reshape(2, 6, 3)
    ref = ref * npy(w)[None, :, None] + npy(b)[None, :, None]
    np.testing.assert_allclose(npy(F.group_norm(x, 3, w, b)), ref, rtol=1e-10)
    assert gradcheck(lambda x, w, b: F.group_norm(x, 3, w, b), (x, w, b))
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize("shape,groups,affine,offset", [((2, 6, 3), 3, True, 0.0), ((4, 8, 5, 5), 2, False, 0.0),
                                                         ((3, 4, 7), 4, True, 3.0), ((2, 9, 2, 2, 2), 3, True, -2.0)])
def test_group_norm_backward_kernel_matches_the_centred_formulas(shape, groups, affine, offset):
    """native_group_norm_backward's NumPy kernel (torch's sums form: gx = c1 g + c2 x + c3 from sum(g x) and
    sum(g)) against the differentiable composite's centred formulas, which create_graph runs."""
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal(shape) + offset, requires_grad=True)
    w = tl.tensor(rng.standard_normal(shape[1]), requires_grad=True) if affine else None
    b = tl.tensor(rng.standard_normal(shape[1]), requires_grad=True) if affine else None
    g = tl.tensor(rng.standard_normal(shape))
    wanted = [x] + ([w, b] if affine else [])
    fast = tl.autograd.grad(F.group_norm(x, groups, w, b), wanted, g)
    composite = tl.autograd.grad(F.group_norm(x, groups, w, b), wanted, g, create_graph=True)
    for a, c in zip(fast, composite):
        np.testing.assert_allclose(a.numpy(), c.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_dropout_train_eval_and_scaling():
    tl.manual_seed(0)
    d = nn.Dropout(0.25)
    x = tl.ones(2000)
    y = npy(d(x))
    assert np.all((y == 0) | np.isclose(y, 1 / 0.75))
    assert 0.2 < (y == 0).mean() < 0.3
    d.eval()
    assert d(x) is x
    x = t64(5, 4)
    tl.manual_seed(3)
    y = F.dropout(x, 0.5)
    mask = npy(y) / npy(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-10)


def test_dropout2d_zeroes_whole_channels():
    tl.manual_seed(1)
    y = npy(nn.Dropout2d(0.5)(tl.ones(4, 8, 3, 3)))
    per_channel = y.reshape(4, 8, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert (per_channel == 0).all(-1).any()


def test_embedding():
    tl.manual_seed(0)
    emb = nn.Embedding(10, 3, padding_idx=0)
    assert np.all(npy(emb.weight)[0] == 0)
    idx = tl.tensor([[0, 2], [2, 9]])
    out = emb(idx)
    np.testing.assert_array_equal(npy(out), npy(emb.weight)[idx.numpy()])
    out.sum().backward()
    g = emb.weight.grad.numpy()
    assert np.all(g[0] == 0) and np.all(g[2] == 2) and np.all(g[9] == 1) and np.all(g[1] == 0)
    w = t64(6, 3)
    assert gradcheck(lambda w: F.embedding(tl.tensor([[1, 5], [5, 0]]), w), (w,))
    with pytest.raises(IndexError, match="index out of range"):
        emb(tl.tensor([10]))


@pytest.mark.parametrize("mod,ref", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)), (nn.LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))), (nn.Tanh(), np.tanh),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))), (nn.ELU(), lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (nn.GELU(), lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda x: _ref.log_softmax(x, 1)),
    (nn.Softmin(dim=1), lambda x: np.exp(-x) / np.exp(-x).sum(1, keepdims=True)),
    (nn.Softplus(beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (nn.Hardtanh(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)), (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.GLU(), lambda x: x[:, :2] / (1 + np.exp(-x[:, 2:4])))])
def test_activations(mod, ref):
    x = t64(3, 4) if isinstance(mod, nn.GLU) else t64(3, 5)
    np.testing.assert_allclose(npy(mod(x)), ref(npy(x)), rtol=1e-7, atol=1e-10)
    assert gradcheck(mod, (x,))


def test_flatten_unflatten_identity():
    x = tl.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Identity(54, unused=1)(x) is x


def test_embedding_max_norm_renormalises_rows_in_place():
    w = tl.tensor(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
    out = F.embedding(tl.tensor([0, 1]), w, max_norm=1.0)
    np.testing.assert_allclose(out.numpy(), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)
    np.testing.assert_allclose(w.numpy()[2], [6.0, 8.0])      # rows not looked up are left alone


@pytest.mark.parametrize("make", [lambda: nn.BatchNorm2d(3), lambda: nn.GroupNorm(1, 3), lambda: nn.LayerNorm([4, 4])],
                         ids=["batch_norm", "group_norm", "layer_norm"])
def test_norm_output_rewritten_in_place_while_alive(make):
    """A ResNet block's `out = bn(conv(x)); out = relu(out)` with ReLU(inplace=True), then `out += residual`: the
    norm's backward reads its input and its saved mean and 1/std, not its output (torch saves only those), so
    rewriting the output in place while it is still referenced is no error, and the gradients are those of
    the out-of-place computation; rewriting the saved input still is an error, as in torch."""
    grads = []
    for inplace in (False, True):
        tl.manual_seed(0)
        m = make().double()
        x = tl.tensor(np.random.default_rng(1).standard_normal((2, 3, 4, 4)), requires_grad=True)
        out = m(x)
        out = out.relu_() if inplace else out.relu()
        if inplace:
            out += x
        else:
            out = out + x
        (out * tl.arange(out.numel(), dtype=tl.float64).reshape(out.shape).sin()).sum().backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)
    m = make()
    x = tl.randn(2, 3, 4, 4, requires_grad=True)
    x2 = x * 1
    y = m(x2)
    x2.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
