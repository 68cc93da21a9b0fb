"""The nn.functional names and layers of issue 13's second pass (unpooling, 3-d conv/pools, fold,
multilabel margin, pdist, conv_tbc, affine_grid) against torch 2.13: values and input/weight gradients in
float64, and the misuse errors."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
R = np.random.default_rng(3)


def _both(*arrays):
    return ([tl.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays],
            [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays])


def _check(name, arrays, *args, tfn=None, **kw):
    ours, theirs = _both(*arrays)
    out = getattr(F, name)(*ours, *args, **kw)
    tout = (tfn or getattr(TF, name))(*theirs, *args, **kw)
    if isinstance(out, tuple):
        for a, b in zip(out, tout):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-12)
        out, tout = out[0], tout[0]
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = R.uniform(-1, 1, tuple(tout.shape))
    out.backward(tl.tensor(g))
    tout.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        if b.grad is not None:     # no gradient path (grid_sample's nearest grid) reads as torch's zeros
            ga = a.grad.numpy() if a.grad is not None else np.zeros(tuple(a.shape))
            np.testing.assert_allclose(ga, b.grad.numpy(), rtol=1e-9, atol=1e-12)


X5 = R.standard_normal((2, 4, 5, 6, 7))


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=(2, 1, 1), groups=2),
                                dict(padding="same")])
def test_conv3d(kw):
    w = R.standard_normal((6, 4 // kw.get("groups", 1), 3, 2, 3))
    _check("conv3d", [X5, w, R.standard_normal(6)], **kw)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1), groups=2)])
def test_conv_transpose3d(kw):
    w = R.standard_normal((4, 6 // kw.get("groups", 1), 2, 3, 2))
    _check("conv_transpose3d", [X5, w, R.standard_normal(6)], **kw)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3, 2), stride=2, ceil_mode=True),
                                dict(kernel_size=3, stride=1, dilation=2)])
def test_max_pool3d_with_indices(kw):
    _check("max_pool3d", [X5], return_indices=True, **kw)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                dict(kernel_size=(2, 3, 2), stride=2, ceil_mode=True),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=2, divisor_override=3)])
def test_avg_pool3d(kw):
    _check("avg_pool3d", [X5], **kw)


@pytest.mark.parametrize("name", ["adaptive_avg_pool3d", "adaptive_max_pool3d"])
def test_adaptive3d(name):
    _check(name, [X5], (3, 4, None))
    _check(name, [X5[0]], 2)


def test_lp_pool3d():
    _check("lp_pool3d", [np.abs(X5) + 0.1], 2, 2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool(n):
    x = R.standard_normal((2, 3) + (6,) * n)
    pool = getattr(TF, f"max_pool{n}d")
    v, i = pool(torch.tensor(x), 2, return_indices=True)
    ours = tl.tensor(v.numpy(), requires_grad=True)
    theirs = v.detach().clone().requires_grad_(True)
    out = getattr(F, f"max_unpool{n}d")(ours, tl.tensor(i.numpy()), 2)
    tout = getattr(TF, f"max_unpool{n}d")(theirs, i, 2)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    out2 = getattr(F, f"max_unpool{n}d")(ours, tl.tensor(i.numpy()), 2, output_size=(7,) * n)
    np.testing.assert_array_equal(out2.detach().numpy(),
                                  getattr(TF, f"max_unpool{n}d")(theirs, i, 2, output_size=(7,) * n).detach().numpy())
    g = R.standard_normal(tuple(tout.shape))
    out.backward(tl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    layer, tlayer = getattr(tl.nn, f"MaxUnpool{n}d")(2), getattr(torch.nn, f"MaxUnpool{n}d")(2)
    assert repr(layer) == repr(tlayer)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2, padding=1, dilation=(1, 2))])
def test_fold(kw):
    cols = TF.unfold(torch.zeros(2, 3, 7, 8), **kw)
    _check("fold", [R.standard_normal(tuple(cols.shape))], (7, 8), **kw)
    assert repr(tl.nn.Fold((7, 8), **kw)) == repr(torch.nn.Fold((7, 8), **kw))


def test_multilabel_margin_loss():
    x = R.standard_normal((3, 5))
    t = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 1, 1, 1, 1]])
    for red in ("mean", "sum", "none"):
        _check("multilabel_margin_loss", [x, t], reduction=red)
    _check("multilabel_margin_loss", [x[0], t[0]])
    ours, theirs = tl.nn.MultiLabelMarginLoss(), torch.nn.MultiLabelMarginLoss()
    np.testing.assert_allclose(ours(tl.tensor(x), tl.tensor(t)).item(), theirs(torch.tensor(x), torch.tensor(t)).item())


@pytest.mark.parametrize("p", [2, 1, 3.5, float("inf")])
def test_pdist(p):
    _check("pdist", [R.standard_normal((5, 3))], p)


def test_conv_tbc():
    _check("conv_tbc", [R.standard_normal((7, 2, 3)), R.standard_normal((3, 3, 4)), R.standard_normal(4)], 1)


@pytest.mark.parametrize("align", [False, True])
def test_affine_grid(align):
    _check("affine_grid", [R.standard_normal((2, 2, 3))], [2, 3, 4, 5], align_corners=align)
    _check("affine_grid", [R.standard_normal((2, 3, 4))], [2, 3, 2, 4, 5], align_corners=align)


def test_modules_match_torch():
    x = R.standard_normal((2, 4, 5, 6, 7))
    torch.manual_seed(0)
    tconv = torch.nn.Conv3d(4, 6, 3, padding=1).double()
    conv = tl.nn.Conv3d(4, 6, 3, padding=1, dtype=tl.float64)
    conv.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tconv.state_dict().items()})
    assert repr(conv) == repr(tconv)
    np.testing.assert_allclose(conv(tl.tensor(x)).detach().numpy(), tconv(torch.tensor(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-12)
    for ours, theirs in [(tl.nn.MaxPool3d(2), torch.nn.MaxPool3d(2)),
                         (tl.nn.AvgPool3d(3, 2, 1), torch.nn.AvgPool3d(3, 2, 1)),
                         (tl.nn.AdaptiveAvgPool3d(2), torch.nn.AdaptiveAvgPool3d(2)),
                         (tl.nn.AdaptiveMaxPool3d((1, 2, 3)), torch.nn.AdaptiveMaxPool3d((1, 2, 3))),
                         (tl.nn.LPPool3d(2, 2), torch.nn.LPPool3d(2, 2))]:
        assert repr(ours) == repr(theirs)
        xin = np.abs(x) + 0.1
        np.testing.assert_allclose(ours(tl.tensor(xin)).numpy(), theirs(torch.tensor(xin)).numpy(), rtol=1e-9)
    bn, tbn = tl.nn.BatchNorm3d(4, dtype=tl.float64), torch.nn.BatchNorm3d(4).double()
    assert repr(bn) == repr(tbn)
    np.testing.assert_allclose(bn(tl.tensor(x)).detach().numpy(), tbn(torch.tensor(x)).detach().numpy(), rtol=1e-8)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-9)
    with pytest.raises(ValueError, match="expected 5D input"):
        bn(tl.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="expected 5D input"):
        tbn(torch.zeros(2, 4, 3))
    assert issubclass(tl.nn.NLLLoss2d, tl.nn.NLLLoss) and issubclass(torch.nn.NLLLoss2d, torch.nn.NLLLoss)
    assert issubclass(tl.nn.RNNCell, tl.nn.RNNCellBase) and issubclass(tl.nn.LSTMCell, tl.nn.RNNCellBase)
    assert issubclass(tl.nn.GRUCell, tl.nn.RNNCellBase)


def test_misuse_errors():
    with pytest.raises(RuntimeError, match="Expected shape of indices"):
        F.max_unpool2d(tl.zeros(1, 1, 2, 2), tl.zeros(1, 1, 2, 1, dtype=tl.int64), 2)
    with pytest.raises(RuntimeError, match="Expected shape of indices"):
        TF.max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 1, dtype=torch.int64), 2)
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 3D"):
        F.pdist(tl.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 3D"):
        TF.pdist(torch.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match="expected size of input's dimension 2 to match"):
        F.fold(tl.zeros(1, 4, 5), (3, 3), 2)
    with pytest.raises(RuntimeError, match="expected size of input's dimension 2 to match"):
        TF.fold(torch.zeros(1, 4, 5), (3, 3), 2)
    with pytest.raises(ValueError, match="Nx2x3"):
        F.affine_grid(tl.zeros(1, 3, 4), [1, 1, 2, 2], align_corners=False)
    with pytest.raises(ValueError, match="Nx2x3"):
        TF.affine_grid(torch.zeros(1, 3, 4), [1, 1, 2, 2], align_corners=False)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample(mode, padding_mode, align):
    grid = R.uniform(-1.4, 1.4, (2, 3, 5, 2))
    _check("grid_sample", [R.standard_normal((2, 3, 4, 6)), grid], mode=mode, padding_mode=padding_mode,
           align_corners=align)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("concat", [False, True])
def test_ctc_loss(reduction, concat):
    T, N, C = 8, 3, 5
    lp = np.log(R.dirichlet(np.ones(C), (T, N)))
    tgt = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [4, 4, 4, 0]])       # repeats need a blank between
    tl_len, il = [3, 2, 3], [8, 6, 7]
    targets = np.concatenate([tgt[i, :tl_len[i]] for i in range(N)]) if concat else tgt
    ours, theirs = _both(lp)
    out = F.ctc_loss(ours[0].log_softmax(2), tl.tensor(targets), tl.tensor(il), tl.tensor(tl_len),
                     reduction=reduction)
    tout = TF.ctc_loss(theirs[0].log_softmax(2), torch.tensor(targets), torch.tensor(il), torch.tensor(tl_len),
                       reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-9)
    g = R.uniform(0.5, 1, tuple(tout.shape))
    out.backward(tl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(ours[0].grad.numpy(), theirs[0].grad.numpy(), rtol=1e-7, atol=1e-10)
    mod, tmod = tl.nn.CTCLoss(blank=0, zero_infinity=True), torch.nn.CTCLoss(blank=0, zero_infinity=True)
    short = [2, 1, 7]                  # too short for their targets: inf, zeroed
    np.testing.assert_allclose(
        mod(tl.tensor(lp), tl.tensor(targets), tl.tensor(short), tl.tensor(tl_len)).item(),
        tmod(torch.tensor(lp), torch.tensor(targets), torch.tensor(short), torch.tensor(tl_len)).item(), rtol=1e-9)
