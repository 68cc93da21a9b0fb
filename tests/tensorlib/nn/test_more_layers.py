"""Issue 13's second pass of nn names (3-d conv/pools/norm, unpooling, fold, multilabel margin, pdist,
conv_tbc, affine_grid): gradcheck of each composition and the identities that tie them to the 2-d ops,
without torch (devtools/torch_compat/test_nn_more_against_torch.py compares with torch)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.autograd import gradcheck

R = np.random.default_rng(7)


def T(*shape):
    return tl.tensor(R.standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("fn, shapes", [
    (lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=2),
     [(1, 2, 3, 4, 3), (2, 1, 2, 2, 2), (2,)]),
    (lambda x: F.max_pool3d(x, 2, 1, ceil_mode=True), [(1, 1, 3, 3, 3)]),
    (lambda x: F.avg_pool3d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False), [(1, 2, 3, 4, 3)]),
    (lambda x: F.adaptive_avg_pool3d(x, (2, 3, 1)), [(1, 2, 3, 4, 3)]),
    (lambda x: F.adaptive_max_pool3d(x, 2), [(1, 1, 3, 4, 3)]),
    (lambda x: F.fold(x, (4, 5), (2, 3), padding=1, stride=2), [(1, 12, 9)]),
    (lambda x: F.pdist(x), [(4, 3)]),
    (lambda x, w, b: F.conv_tbc(x, w, b, 1), [(5, 2, 3), (2, 3, 4), (4,)]),
    (lambda t: F.affine_grid(t, [1, 1, 3, 4], align_corners=False), [(1, 2, 3)]),
    (lambda x, g: F.grid_sample(x, g * 1.3, padding_mode="reflection"), [(1, 2, 3, 4), (1, 2, 3, 2)]),
    (lambda x, g: F.grid_sample(x, g * 1.3, align_corners=True), [(1, 2, 3, 4), (1, 2, 3, 2)]),
])
def test_gradcheck(fn, shapes):
    assert gradcheck(fn, [T(*s) for s in shapes])


def test_conv3d_with_depth_one_is_conv2d():
    x, w, b = T(2, 4, 1, 6, 5), T(4, 2, 1, 3, 3), T(4)
    out = F.conv3d(x, w, b, padding=(0, 1, 1), groups=2)
    ref = F.conv2d(x[:, :, 0], w[:, :, 0], b, padding=1, groups=2)
    np.testing.assert_allclose(out[:, :, 0].detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    layer = tl.nn.Conv3d(4, 6, 3, padding="same", bias=False)
    assert tuple(layer(tl.randn(1, 4, 5, 5, 5)).shape) == (1, 6, 5, 5, 5) and layer.bias is None
    with pytest.raises(RuntimeError, match="Expected 4D .unbatched. or 5D"):
        F.conv3d(tl.zeros(1, 2, 3), tl.zeros(1, 2, 1, 1, 1))
    with pytest.raises(RuntimeError, match="expected weight to be divisible by 2 at dimension 0"):
        F.conv3d(x, T(3, 2, 1, 3, 3), groups=2)


def test_pool3d_values_and_unpool_round_trip():
    x = tl.tensor(R.permutation(4 * 4 * 4).reshape(1, 1, 4, 4, 4).astype(float))
    v, i = F.max_pool3d(x, 2, return_indices=True)
    blocks = x.numpy().reshape(2, 2, 2, 2, 2, 2).transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, 2, 8)
    np.testing.assert_array_equal(v.numpy()[0, 0], blocks.max(-1))
    np.testing.assert_array_equal(x.numpy().reshape(-1)[i.numpy().reshape(-1)], v.numpy().reshape(-1))
    up = tl.nn.MaxUnpool3d(2)(v, i)
    assert tuple(up.shape) == (1, 1, 4, 4, 4)
    assert float(up.sum()) == float(v.sum()) and int((up != 0).sum()) == 8
    np.testing.assert_allclose(F.avg_pool3d(x, 2).numpy()[0, 0], blocks.mean(-1))
    np.testing.assert_allclose(F.adaptive_avg_pool3d(x, 1).numpy().reshape(()), x.numpy().mean())
    np.testing.assert_allclose(tl.nn.LPPool3d(1, 2)(x.abs()).numpy()[0, 0], np.abs(blocks).sum(-1))


def test_fold_inverts_unfold_counts():
    x = tl.randn(2, 3, 5, 6, dtype=tl.float64)
    cols = F.unfold(x, 2, padding=1)
    counts = F.fold(F.unfold(tl.ones_like(x), 2, padding=1), (5, 6), 2, padding=1)
    np.testing.assert_allclose((F.fold(cols, (5, 6), 2, padding=1) / counts).numpy(), x.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="divisible by the product of kernel_size"):
        F.fold(tl.zeros(1, 5, 4), (3, 3), 2)


def test_losses_and_small_functions():
    x = tl.tensor([[0.1, 0.2, 0.4, 0.8]], requires_grad=True)
    y = tl.tensor([[3, 0, -1, 1]])
    # torch's documented example: 0.85
    np.testing.assert_allclose(tl.nn.MultiLabelMarginLoss()(x, y).item(), 0.85, rtol=1e-6)
    assert gradcheck(lambda a: F.multilabel_margin_loss(a, tl.tensor([[2, 1, -1, 0], [0, -1, 3, 3]])),
                     [T(2, 4)])
    np.testing.assert_allclose(F.pdist(tl.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])).numpy(),
                               [5.0, 1.0, np.sqrt(18)])
    g = F.affine_grid(tl.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), [1, 1, 2, 2], align_corners=True)
    np.testing.assert_array_equal(g.numpy()[0], [[[-1, -1], [1, -1]], [[-1, 1], [1, 1]]])
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        assert isinstance(tl.nn.NLLLoss2d(), tl.nn.NLLLoss)
    with pytest.warns(FutureWarning, match="Container"):
        c = tl.nn.Container(lin=tl.nn.Linear(2, 2))
    assert list(dict(c.named_children())) == ["lin"]
    bn = tl.nn.BatchNorm3d(2)
    out = bn(tl.randn(3, 2, 2, 2, 2))
    assert abs(float(out.mean())) < 1e-6 and int(bn.num_batches_tracked) == 1
    with pytest.raises(ValueError, match="expected 5D input"):
        bn(tl.randn(3, 2, 2))
    cell = tl.nn.RNNCellBase(3, 4, True, 2)
    assert tuple(cell.weight_ih.shape) == (8, 3) and isinstance(tl.nn.GRUCell(2, 2), tl.nn.RNNCellBase)


def test_grid_sample_identity():
    x = tl.randn(2, 3, 4, 5, dtype=tl.float64)
    theta = tl.tensor([[[1.0, 0, 0], [0, 1.0, 0]]] * 2, dtype=tl.float64)
    for align in (False, True):
        g = F.affine_grid(theta, [2, 3, 4, 5], align_corners=align)
        for mode in ("bilinear", "nearest", "bicubic"):
            np.testing.assert_allclose(F.grid_sample(x, g, mode=mode, align_corners=align).numpy(), x.numpy(),
                                       atol=1e-12)
    x5 = tl.randn(2, 2, 3, 4, 5, dtype=tl.float64)
    theta5 = tl.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]] * 2, dtype=tl.float64)
    for align in (False, True):
        g5 = F.affine_grid(theta5, [2, 2, 3, 4, 5], align_corners=align)
        for mode in ("bilinear", "nearest"):
            np.testing.assert_allclose(F.grid_sample(x5, g5, mode=mode, align_corners=align).numpy(), x5.numpy(),
                                       atol=1e-12)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(x5, g5, mode="bicubic")
    with pytest.raises(ValueError, match="expected padding_mode"):
        F.grid_sample(x, g, padding_mode="wrap")


def test_ctc_loss_gradcheck_and_single_path():
    lp = T(4, 2, 3)
    targets, il, tlen = tl.tensor([[1, 2], [1, 1]]), tl.tensor([4, 3]), tl.tensor([2, 2])
    assert gradcheck(lambda x: F.ctc_loss(x.log_softmax(2), targets, il, tlen, reduction="sum"), [lp])
    # one frame per label and no room for blanks: the only path is the targets themselves
    p = np.full((2, 1, 3), 0.25)
    p[0, 0, 1], p[1, 0, 2] = 0.5, 0.5
    loss = tl.nn.CTCLoss(reduction="none")(tl.tensor(np.log(p)), tl.tensor([[1, 2]]), tl.tensor([2]), tl.tensor([2]))
    np.testing.assert_allclose(loss.numpy(), [-2 * np.log(0.5)])
    inf = F.ctc_loss(tl.tensor(np.log(p)), tl.tensor([[1, 1]]), tl.tensor([2]), tl.tensor([2]), reduction="sum")
    assert float(inf) == float("inf")      # a repeat needs a blank between: no path in 2 frames


def test_conv_transpose3d_is_conv3ds_adjoint_and_gradchecks():
    """<conv3d(x, w), y> == <x, conv_transpose3d(y, w)> (the definition of the transposed convolution), and
    gradcheck through it; devtools/torch_compat checks the values against torch."""
    rng = np.random.default_rng(2)
    x = tl.tensor(rng.standard_normal((2, 4, 5, 6, 5)))
    w = tl.tensor(rng.standard_normal((3, 4, 2, 3, 2)))
    y = F.conv3d(x, w, stride=(2, 1, 2), padding=(1, 0, 1))
    g = tl.tensor(rng.standard_normal(tuple(y.shape)))
    xt = F.conv_transpose3d(g, w, stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 1))
    assert tuple(xt.shape) == tuple(x.shape)
    np.testing.assert_allclose(float((y * g).sum()), float((x * xt).sum()), rtol=1e-10)
    a = tl.tensor(rng.standard_normal((1, 2, 2, 2, 2)), requires_grad=True)
    k = tl.tensor(rng.standard_normal((2, 1, 2, 2, 2)), requires_grad=True)
    assert gradcheck(lambda a, k: F.conv_transpose3d(a, k, stride=2), (a, k))
    m = tl.nn.ConvTranspose3d(2, 3, 2)
    assert repr(m) == "ConvTranspose3d(2, 3, kernel_size=(2, 2, 2), stride=(1, 1, 1))"
    assert sorted(m.state_dict()) == ["bias", "weight"] and tuple(m.weight.shape) == (2, 3, 2, 2, 2)


def test_conv_transpose_1d_3d_reprs_name_every_argument_as_torch():
    """ConvTranspose1d's repr left out dilation, groups and bias=False, and ConvTranspose3d put output_padding before
    dilation; both are _ConvNd's repr now (torch's order)."""
    assert repr(tl.nn.ConvTranspose1d(2, 4, 3, bias=False, dilation=2)) == \
        "ConvTranspose1d(2, 4, kernel_size=(3,), stride=(1,), dilation=(2,), bias=False)"
    assert repr(tl.nn.ConvTranspose3d(2, 4, 3, groups=2, dilation=2, output_padding=1, stride=2)) == \
        ("ConvTranspose3d(2, 4, kernel_size=(3, 3, 3), stride=(2, 2, 2), dilation=(2, 2, 2), "
         "output_padding=(1, 1, 1), groups=2)")
