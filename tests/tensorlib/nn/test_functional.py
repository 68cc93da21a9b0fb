"""nn.functional losses and helpers against NumPy references; gradcheck through each."""
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.autograd import gradcheck
import tensorlib.nn.functional as F

from . import _ref

rng = np.random.default_rng(1)


def t64(*shape, grad=True, low=None):
    a = rng.random(shape) * 0.8 + 0.1 if low == "prob" else rng.standard_normal(shape)
    return tl.tensor(a, requires_grad=grad)


def npy(t):
    return t.detach().numpy()


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_pointwise_losses(reduction):
    x, y = t64(4, 3), t64(4, 3)
    d = npy(x) - npy(y)
    cases = {
        F.mse_loss: d ** 2,
        F.l1_loss: np.abs(d),
        F.smooth_l1_loss: np.where(np.abs(d) < 1, 0.5 * d ** 2, np.abs(d) - 0.5),
        (lambda a, b, reduction: F.huber_loss(a, b, reduction, delta=0.5)):
            np.where(np.abs(d) < 0.5, 0.5 * d ** 2, 0.5 * (np.abs(d) - 0.25)),
    }
    for fn, ref in cases.items():
        np.testing.assert_allclose(npy(fn(x, y, reduction=reduction)), _reduce(ref, reduction), rtol=1e-10)
        assert gradcheck(lambda a, b: fn(a, b, reduction=reduction), (x, y))


def test_bce_and_bce_with_logits():
    p, t, z = t64(5, 2, low="prob"), t64(5, 2, low="prob"), t64(5, 2)
    P, T, Z = npy(p), npy(t), npy(z)
    np.testing.assert_allclose(npy(F.binary_cross_entropy(p, t)), (-(T * np.log(P) + (1 - T) * np.log(1 - P))).mean())
    assert gradcheck(F.binary_cross_entropy, (p, t))
    s = 1 / (1 + np.exp(-Z))
    ref = -(T * np.log(s) + (1 - T) * np.log(1 - s))
    np.testing.assert_allclose(npy(F.binary_cross_entropy_with_logits(z, t, reduction="none")), ref, rtol=1e-10)
    pw = tl.tensor(np.array([2.0, 0.5]))
    ref_pw = -(npy(pw) * T * np.log(s) + (1 - T) * np.log(1 - s))
    np.testing.assert_allclose(npy(F.binary_cross_entropy_with_logits(z, t, pos_weight=pw, reduction="sum")),
                               ref_pw.sum(), rtol=1e-10)
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw), (z, t))
    w = tl.tensor(np.array([1.0, 3.0]))
    np.testing.assert_allclose(npy(F.binary_cross_entropy_with_logits(z, t, weight=w)), (ref * [1, 3]).mean())
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(z, t[:2])


def test_kl_div():
    x = tl.tensor(_ref.log_softmax(rng.standard_normal((3, 4)), 1), requires_grad=True)
    tgt = t64(3, 4, low="prob")
    T = npy(tgt)
    ref = T * (np.log(T) - npy(x))
    np.testing.assert_allclose(npy(F.kl_div(x, tgt, reduction="batchmean")), ref.sum() / 3)
    assert gradcheck(lambda a, b: F.kl_div(a, b, reduction="sum"), (x, tgt))
    lt = tl.tensor(np.log(T), requires_grad=True)
    np.testing.assert_allclose(npy(F.kl_div(x, lt, reduction="sum", log_target=True)), ref.sum(), rtol=1e-10)
    assert gradcheck(lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True), (x, lt))


def _ce_ref(logits, target, weight=None, ignore_index=-100, reduction="mean", ls=0.0):
    lp = _ref.log_softmax(logits, 1)
    C = logits.shape[1]
    w = np.ones(C) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -lp[np.arange(len(target)), safe] * w[safe] * valid
    smooth = -(lp * w).sum(1) * valid
    loss = (1 - ls) * nll + ls / C * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[safe] * valid).sum()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_class_indices(reduction, weighted, ls):
    x = t64(6, 4)
    target = tl.tensor([0, 3, -100, 1, 2, 3])
    w = tl.tensor(rng.random(4) + 0.5) if weighted else None
    out = F.cross_entropy(x, target, w, ignore_index=-100, reduction=reduction, label_smoothing=ls)
    ref = _ce_ref(npy(x), target.numpy(), None if w is None else w.numpy(), -100, reduction, ls)
    np.testing.assert_allclose(npy(out), ref, rtol=1e-10)
    assert gradcheck(lambda a: F.cross_entropy(a, target, w, reduction=reduction, label_smoothing=ls), (x,))


def test_cross_entropy_probability_targets_and_spatial():
    x = t64(3, 5)
    p = tl.tensor(np.exp(_ref.log_softmax(rng.standard_normal((3, 5)), 1)))
    ref = -(_ref.log_softmax(npy(x), 1) * p.numpy()).sum(1).mean()
    np.testing.assert_allclose(npy(F.cross_entropy(x, p)), ref, rtol=1e-10)
    assert gradcheck(lambda a: F.cross_entropy(a, p, label_smoothing=0.1), (x,))
    xs = t64(2, 3, 4, 2)
    ts = tl.tensor(rng.integers(0, 3, (2, 4, 2)))
    lp = _ref.log_softmax(npy(xs), 1)
    ref = -np.take_along_axis(lp, ts.numpy()[:, None], 1).mean()
    np.testing.assert_allclose(npy(F.cross_entropy(xs, ts)), ref, rtol=1e-10)
    assert gradcheck(lambda a: F.cross_entropy(a, ts), (xs,))


def test_nll_loss_errors_and_module():
    lp = F.log_softmax(tl.randn(3, 4), 1)
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.nll_loss(lp, tl.tensor([0, 7, 1]))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but got Float"):
        F.nll_loss(lp, tl.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="Expected input batch_size"):
        F.nll_loss(lp, tl.tensor([0, 1]))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.mse_loss(lp, lp, reduction="avg")
    crit = nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2)
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(crit(tl.randn(3, 4), tl.tensor([2, 2, 2]))))   # torch: nan when all are ignored


def test_loss_modules_match_functional():
    x, y = t64(3, 4), t64(3, 4)
    for mod, fn in [(nn.MSELoss(reduction="sum"), lambda a, b: F.mse_loss(a, b, reduction="sum")),
                    (nn.L1Loss(), F.l1_loss),
                    (nn.SmoothL1Loss(beta=0.5), lambda a, b: F.smooth_l1_loss(a, b, beta=0.5)),
                    (nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits)]:
        b = y if not isinstance(mod, nn.BCEWithLogitsLoss) else t64(3, 4, low="prob")
        np.testing.assert_allclose(npy(mod(x, b)), npy(fn(x, b)))
    t = tl.tensor([0, 1, 3])
    np.testing.assert_allclose(npy(nn.NLLLoss()(F.log_softmax(x, 1), t)), npy(F.cross_entropy(x, t)), rtol=1e-12)


def test_softmax_family():
    x = t64(2, 3, 4)
    for d in (0, 1, 2, -1):
        e = np.exp(npy(x) - npy(x).max(d, keepdims=True))
        np.testing.assert_allclose(npy(F.softmax(x, d)), e / e.sum(d, keepdims=True), rtol=1e-10)
        np.testing.assert_allclose(npy(F.log_softmax(x, d)), _ref.log_softmax(npy(x), d), rtol=1e-10)
        assert gradcheck(lambda a: F.log_softmax(a, d), (x,))
    assert F.softmax(tl.randn(3, 4), 1, dtype=tl.float64).dtype == tl.float64
    with pytest.warns(UserWarning, match="Implicit dimension"):
        F.softmax(tl.randn(3, 4))


def test_pad_modes_against_numpy():
    x = t64(2, 3, 4)
    for mode, np_mode in [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge"),
                          ("circular", "wrap")]:
        out = F.pad(x, (1, 2, 2, 1), mode=mode)
        np.testing.assert_array_equal(npy(out), np.pad(npy(x), ((0, 0), (2, 1), (1, 2)), mode=np_mode))
        assert gradcheck(lambda a: F.pad(a, (1, 2, 2, 1), mode=mode), (x,))
    np.testing.assert_array_equal(npy(F.pad(x, (1, 1), value=5.0))[..., 0], 5.0)
    with pytest.raises(RuntimeError, match="divisible by 2"):
        F.pad(x, (1,))


def test_one_hot_normalize_sdpa():
    np.testing.assert_array_equal(F.one_hot(tl.tensor([0, 2]), 3).numpy(), [[1, 0, 0], [0, 0, 1]])
    x = t64(3, 4)
    np.testing.assert_allclose(npy(F.normalize(x)), npy(x) / np.linalg.norm(npy(x), axis=1, keepdims=True))
    assert gradcheck(F.normalize, (x,))
    q, k, v = t64(2, 3, 4), t64(2, 5, 4), t64(2, 5, 6)
    s = npy(q) @ npy(k).transpose(0, 2, 1) / math.sqrt(4)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    np.testing.assert_allclose(npy(F.scaled_dot_product_attention(q, k, v)), a @ npy(v), rtol=1e-10)
    assert gradcheck(F.scaled_dot_product_attention, (q, k, v))
    q2 = t64(2, 5, 4)
    out = F.scaled_dot_product_attention(q2, k, v, is_causal=True)
    s = npy(q2) @ npy(k).transpose(0, 2, 1) / 2
    s = np.where(np.tril(np.ones((5, 5), bool)), s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    np.testing.assert_allclose(npy(out), a @ npy(v), rtol=1e-10)
    mask = tl.tensor(rng.standard_normal((3, 5)))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), (q, k, v))


def test_fused_ops_have_torch_names_and_amp_tags():
    from tensorlib.dispatch import registry
    reg = registry()
    for name in ("addmm", "conv2d", "conv_transpose2d"):     # linear: torch's composite of t and addmm
        assert reg[name].amp == "lower"
    for name in ("softmax", "log_softmax", "nll_loss", "mse_loss", "layer_norm", "group_norm",
                 "binary_cross_entropy_with_logits"):
        assert reg[name].amp == "fp32"
    # as in torch, batch_norm is on neither list: it runs in its input's dtype (and its running
    # statistics are updated in place, which a cast copy would lose)
    assert reg["batch_norm"].amp is None
    for name in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "embedding", "dropout", "pad"):
        assert name in reg


def test_autocast_runs_linear_lower_and_softmax_fp32():
    x = tl.randn(2, 3)
    fc = nn.Linear(3, 4)
    with tl.autocast("cpu", dtype=tl.float16):
        y = fc(x)
        z = F.softmax(y, 1)
    assert y.dtype == tl.float16 and z.dtype == tl.float32


def test_legacy_size_average_and_reduce():
    x, y = t64(3, 4), t64(3, 4)
    with pytest.warns(UserWarning, match="size_average and reduce"):
        out = F.mse_loss(x, y, size_average=False)
    np.testing.assert_allclose(npy(out), npy(F.mse_loss(x, y, reduction="sum")))
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    # torch's warning names the reduction the legacy arguments map to (pytorch/tutorials' dynamic_net.py)
    for kwargs, reduction in (({"size_average": False}, "sum"), ({"reduce": False}, "none"),
                              ({"size_average": True}, "mean")):
        with pytest.warns(UserWarning) as rec:
            assert nn.MSELoss(**kwargs).reduction == reduction
        assert str(rec[0].message) == ("size_average and reduce args will be deprecated, please use "
                                       f"reduction='{reduction}' instead.")
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(3, 2, sparse=True)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_nll_loss_unweighted_path_matches_weighted_bitwise(reduction):
    """No weight and every target in range takes a shorter kernel; it must give exactly what the general
    one (all-ones weights) gives, forward and backward, in float32."""
    x = tl.tensor(rng.standard_normal((7, 5)).astype(np.float32), requires_grad=True)
    target = tl.tensor(rng.integers(0, 5, 7))
    outs, grads = [], []
    for w in (None, tl.ones(5)):
        x.grad = None
        out = F.cross_entropy(x, target, w, reduction=reduction)
        out.sum().backward()
        outs.append(out.detach().numpy())
        grads.append(x.grad.numpy())
    assert outs[0].dtype == outs[1].dtype == np.float32
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])


def test_nll_loss_negative_target_and_ignore_index_in_range():
    lp = F.log_softmax(tl.randn(3, 4), 1)
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.nll_loss(lp, tl.tensor([0, -1, 1]))
    x = t64(4, 3)
    target = tl.tensor([0, 1, 2, 1])
    out = F.cross_entropy(x, target, ignore_index=1)
    np.testing.assert_allclose(npy(out), _ce_ref(npy(x), target.numpy(), None, 1), rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, target, ignore_index=1), (x,))


def test_scaled_dot_product_attention_is_one_op_each_way_and_matches_the_math_path():
    """The fused op against softmax(Q K^T * scale + mask) V written with separate ops, values and gradients;
    enable_gqa repeats key/value heads (a flag that did nothing before)."""
    import numpy as np

    from tensorlib import dispatch as D

    rng = np.random.default_rng(5)
    shapes = ((2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8))
    q, k, v = (tl.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)
    mask = tl.tensor(rng.random((3, 5)) > 0.3)
    names = []

    class Names(D.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            names.append(op.name)

    hook = D.add_hook(Names())
    try:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        (out * out).sum().backward()
        math_out = F.scaled_dot_product_attention(*(t.detach()[0, :2].requires_grad_() for t in (q, k, v)))  # 3-D: math
        math_out.sum().backward()
    finally:
        D.remove_hook(hook)
    # 4-D without dropout: the op torch's CPU dispatch runs there, its flash kernel (and its node's name)
    assert names.count("_scaled_dot_product_flash_attention_for_cpu") == 1
    assert names.count("_scaled_dot_product_flash_attention_for_cpu_backward") == 1
    assert out.grad_fn.name() == "ScaledDotProductFlashAttentionForCpuBackward0"
    assert names.count("scaled_dot_product_attention") == 1
    assert names.count("scaled_dot_product_attention_backward") == 1
    assert "softmax" not in names and "bmm" not in names
    got = [t.grad.numpy().copy() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    kk, vv = k.repeat_interleave(2, dim=-3), v.repeat_interleave(2, dim=-3)
    s = tl.matmul(q, kk.transpose(-2, -1)) / np.sqrt(8)
    ref = F.softmax(s.masked_fill(~mask, float("-inf")), -1) @ vv
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    (ref * ref).sum().backward()
    for a, t in zip(got, (q, k, v)):
        np.testing.assert_allclose(a, t.grad.numpy(), atol=1e-10)
    with pytest.raises(RuntimeError, match="must divide the number of heads in query"):
        F.scaled_dot_product_attention(tl.ones(1, 3, 2, 4), tl.ones(1, 2, 2, 4), tl.ones(1, 2, 2, 4), enable_gqa=True)


def test_scaled_dot_product_attention_takes_torchs_cpu_kernel_choice():
    """The attention op is the one torch 2.13's CPU dispatch picks (sdp_utils_cpp.cpp): its flash kernel for 4-D
    inputs of one float dtype, equal batch, heads and head dims, unit last-dim strides, no dropout, and a mask of 2
    or 4 dims that broadcasts and needs no gradient; the math path otherwise (each case as torch 2.13 chose it)."""
    from tensorlib.ops.attention import _torch_runs_flash
    q, k = tl.randn(2, 3, 4, 8), tl.randn(2, 3, 5, 8)
    flash = [
        (q, k, k, None, 0.0), (q, k, k, tl.ones(4, 5, dtype=tl.bool), 0.0), (q, k, k, tl.randn(4, 5), 0.0),
        (q, k, k, tl.ones(2, 1, 4, 5, dtype=tl.bool), 0.0), (q, k, k, tl.randn(1, 1, 4, 1), 0.0),
        (q.double(), k.double(), k.double(), None, 0.0)]
    math_path = [
        (q, k, k, None, 0.2),                                   # dropout
        (q[0], k[0], k[0], None, 0.0),                          # 3-D
        (q, k, k, tl.randn(1, 4, 5), 0.0),                      # a 3-D mask
        (q, k, k, tl.randn(4, 5, requires_grad=True), 0.0),     # a mask that needs its gradient
        (q, k, k, tl.ones(2, 2, 4, 5, dtype=tl.bool), 0.0),     # a mask of 2 heads for 3
        (q, k[:1], k[:1], None, 0.0),                           # batch 1 for 2
        (q, k[..., :6], k[..., :6], None, 0.0),                 # head dims 8 and 6
        (q.transpose(2, 3).contiguous().transpose(2, 3), k, k, None, 0.0),     # last-dim stride 4
        (q, k.double(), k.double(), None, 0.0)]                 # two dtypes
    assert all(_torch_runs_flash(*c) for c in flash)
    assert not any(_torch_runs_flash(*c) for c in math_path)
    out = F.scaled_dot_product_attention(q.requires_grad_(), k, k)
    assert out.grad_fn.name() == "ScaledDotProductFlashAttentionForCpuBackward0"
    assert F.scaled_dot_product_attention(q, k, k, dropout_p=0.1).grad_fn.name() == "ScaledDotProductAttentionBackward0"


def test_scaled_dot_product_attention_dropout_keeps_the_expected_share():
    tl.manual_seed(0)
    q = tl.ones(1, 64, 8)
    v = tl.ones(1, 64, 8)
    out = F.scaled_dot_product_attention(q, q, v, dropout_p=0.25)
    # each output is the kept share of a uniform attention row, rescaled by 1/(1-p): mean 1
    assert abs(float(out.mean()) - 1.0) < 0.05
    assert float(out.std()) > 0.05


def test_sigmoid_tails_as_torch():
    """1 / (1 + exp(-x)): 0 where exp overflows (torch's value there), for 0-d inputs as for others; 1 above."""
    x = tl.tensor([-1000.0, -100.0, 0.0, 100.0])
    assert tl.sigmoid(x).tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tl.sigmoid(tl.tensor(-100.0)).item() == 0.0 and tl.sigmoid(tl.tensor(0.0)).item() == 0.5


def test_softmax_and_log_softmax_of_a_0d_tensor_backward():
    """torch: a 0-d input's (log_)softmax is 1 (0) and its gradient 0."""
    for f, want in ((tl.softmax, 1.0), (tl.log_softmax, 0.0)):
        x = tl.tensor(2.0, requires_grad=True)
        y = f(x, 0)
        y.backward()
        assert y.item() == want and x.grad.item() == 0.0


def test_scaled_dot_product_attention_gives_zeros_for_a_fully_masked_query_without_warnings():
    """torch's _safe_softmax: a query whose keys are all masked gets zeros (no NaN, no NumPy warning), on the
    fused path (nothing observing) as on the math path (a profile's), and the other rows are untouched."""
    import warnings

    import numpy as np

    import profiler

    rng = np.random.default_rng(7)
    q, k, v = (tl.tensor(rng.standard_normal((2, 2, 4, 8)).astype(np.float32)) for _ in range(3))
    m = rng.random((4, 4)) > 0.3
    m[:, 0] = True
    m[2] = False                                            # query 2 attends to nothing
    for mask in (tl.tensor(m), tl.tensor(np.where(m, 0.0, -np.inf).astype(np.float32))):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).numpy()
            with profiler.profile():
                math = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).numpy()
        assert (fused[:, :, 2] == 0).all() and not np.isnan(fused).any()
        np.testing.assert_allclose(fused, math, rtol=1e-6, atol=1e-6)
        assert (np.abs(fused[:, :, [0, 1, 3]]) > 0).any()


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_conv2d_backward_is_torchs_one_convolution_backward_op(dtype):
    """A plain backward runs ConvolutionBackward0 as torch's one aten::convolution_backward (input, weight and
    bias gradients; no aten::sum for the bias), on oneDNN or not; create_graph runs the differentiable ops, and
    both give the same gradients, a frozen weight's included."""
    import profiler
    m = nn.Conv2d(4, 6, 3, stride=2, padding=1).to(dtype)
    x = tl.randn(3, 4, 9, 7, dtype=dtype, requires_grad=True)
    with profiler.profile() as p:
        (m(x) ** 2).sum().backward()
    names = [e.name for e in p.events()]
    i = names.index("ConvolutionBackward0")
    assert names[i + 1] == "aten::convolution_backward" and "aten::sum" not in names[i + 1:]
    plain = [t.grad.numpy().copy() for t in (x, m.weight, m.bias)]
    x.grad = None
    m.zero_grad()
    gs = tl.autograd.grad((m(x) ** 2).sum(), [x, m.weight, m.bias], create_graph=True)
    for a, b in zip(plain, gs):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-4 if dtype == tl.float32 else 1e-10, atol=1e-4)
    m.weight.requires_grad_(False)
    x.grad = None
    m.zero_grad()
    (m(x) ** 2).sum().backward()
    assert m.weight.grad is None
    np.testing.assert_allclose(m.bias.grad.numpy(), plain[2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), plain[0], rtol=1e-4, atol=1e-4)
