"""Same weights, same inputs: tensorlib.nn against torch.nn (skipped where torch is not installed; the
NumPy-reference tests beside this one do not need it)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402
from tensorlib import nn  # noqa: E402
import tensorlib.nn.functional as F  # noqa: E402

rng = np.random.default_rng(0)


def arr(*shape):
    return rng.standard_normal(shape)


def to_tl_state(tmod):
    return {k: tl.tensor(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()}


def close(a, b, tol=1e-9):
    a = a.detach().numpy() if isinstance(a, tl.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def pair(ours_cls, theirs_cls, *args, **kw):
    torch.manual_seed(0)
    t = theirs_cls(*args, **kw).double()
    o = ours_cls(*args, **kw).double()
    assert list(o.state_dict().keys()) == list(t.state_dict().keys())
    o.load_state_dict(to_tl_state(t))
    return o, t


def run_both(o, t, *inputs, train=True, **kw):
    o.train(train)
    t.train(train)
    ti = [torch.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x for x in inputs]
    oi = [tl.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x for x in inputs]
    return o(*oi, **kw), t(*ti, **kw), oi, ti


@pytest.mark.parametrize("ctor,args,kw,shape", [
    ("Linear", (5, 3), {}, (4, 5)),
    ("Bilinear", (3, 4, 2), {}, None),
    ("Conv2d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 7, 8)),
    ("Conv2d", (3, 2, (4, 3)), {"padding": "same", "dilation": 2, "padding_mode": "circular"}, (2, 3, 9, 8)),
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 2}, (2, 3, 11)),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (2, 4, 5, 4)),
    ("BatchNorm1d", (5,), {"momentum": 0.3}, (6, 5, 3)),
    ("BatchNorm2d", (3,), {}, (4, 3, 5, 5)),
    ("BatchNorm2d", (3,), {"bias": False, "momentum": None}, (4, 3, 5, 5)),
    ("LayerNorm", (5,), {"bias": False}, (3, 5)),
    ("LayerNorm", ((4, 5),), {}, (3, 4, 5)),
    ("GroupNorm", (2, 6), {}, (3, 6, 4)),
    ("MaxPool2d", (3, 2, 1), {"ceil_mode": True}, (2, 3, 8, 7)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 8, 7)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True}, (2, 3, 8, 7)),
    ("AdaptiveAvgPool2d", ((3, 5),), {}, (2, 3, 8, 7)),
    ("GELU", (), {"approximate": "tanh"}, (4, 5)),
    ("ELU", (0.5,), {}, (4, 5)),
    ("LogSoftmax", (1,), {}, (4, 5)),
])
def test_layers_forward_backward(ctor, args, kw, shape):
    o, t = pair(getattr(nn, ctor), getattr(torch.nn, ctor), *args, **kw)
    inputs = (arr(3, 3), arr(3, 4)) if ctor == "Bilinear" else (arr(*shape),)
    yo, yt, oi, ti = run_both(o, t, *inputs)
    close(yo, yt)
    g = arr(*yt.shape)
    yo.backward(tl.tensor(g))
    yt.backward(torch.tensor(g))
    for a, b in zip(oi, ti):
        close(a.grad, b.grad)
    for (n, p), (_, q) in zip(o.named_parameters(), t.named_parameters()):
        close(p.grad, q.grad)
    for (n, b), (_, c) in zip(o.named_buffers(), t.named_buffers()):
        close(b, c)
    if "BatchNorm" in ctor:
        yo, yt, _, _ = run_both(o, t, *inputs, train=False)
        close(yo, yt)


@pytest.mark.parametrize("cls,kw", [
    ("LSTM", {"num_layers": 2, "bidirectional": True}), ("GRU", {"batch_first": True, "num_layers": 2}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True})])
def test_recurrent(cls, kw):
    o, t = pair(getattr(nn, cls), getattr(torch.nn, cls), 3, 4, **kw)
    x = arr(5, 2, 3)
    yo, yt, oi, ti = run_both(o, t, x)
    close(yo[0], yt[0])
    ho, ht = (yo[1][0], yt[1][0]) if cls == "LSTM" else (yo[1], yt[1])
    close(ho, ht)
    yo[0].sum().backward()
    yt[0].sum().backward()
    close(oi[0].grad, ti[0].grad)
    for (n, p), (_, q) in zip(o.named_parameters(), t.named_parameters()):
        close(p.grad, q.grad)


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_multihead_attention_bias_kv_zero_attn(bias_kv, zero_attn):
    o, t = pair(nn.MultiheadAttention, torch.nn.MultiheadAttention, 8, 2, add_bias_kv=bias_kv,
                add_zero_attn=zero_attn)
    q, kv = arr(3, 2, 8), arr(5, 2, 8)
    kpm = np.array([[False, False, True, False, True], [False] * 5])
    am = np.zeros((3, 5), bool)
    am[:, 1] = True
    ro = o(tl.tensor(q), tl.tensor(kv), tl.tensor(kv), key_padding_mask=tl.tensor(kpm), attn_mask=tl.tensor(am))
    rt = t(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=torch.tensor(kpm),
           attn_mask=torch.tensor(am))
    close(ro[0], rt[0])
    close(ro[1], rt[1])


def test_multihead_attention_and_encoder():
    o, t = pair(nn.MultiheadAttention, torch.nn.MultiheadAttention, 8, 2, batch_first=True)
    q, kv = arr(2, 3, 8), arr(2, 5, 8)
    kpm = np.array([[False, False, True, False, True], [False] * 5])
    am = arr(3, 5)
    ro, rt = o(tl.tensor(q), tl.tensor(kv), tl.tensor(kv), key_padding_mask=tl.tensor(kpm), attn_mask=tl.tensor(am)), \
        t(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=torch.tensor(kpm),
          attn_mask=torch.tensor(am))
    close(ro[0], rt[0])
    close(ro[1], rt[1])
    o, t = pair(nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer, 8, 2, 16, 0.0, batch_first=True)
    x = arr(2, 4, 8)
    close(o(tl.tensor(x)), t(torch.tensor(x)))
    o, t = pair(nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer, 8, 2, 16, 0.0, norm_first=True,
                activation="gelu")
    x = arr(4, 2, 8)
    close(o(tl.tensor(x), is_causal=True, src_mask=tl.tensor(np.triu(np.full((4, 4), -np.inf), 1))),
          t(torch.tensor(x), is_causal=True, src_mask=torch.nn.Transformer.generate_square_subsequent_mask(4,
                                                                                                           dtype=torch.float64)))


def test_embedding():
    o, t = pair(nn.Embedding, torch.nn.Embedding, 7, 3, padding_idx=2)
    idx = np.array([[2, 1, 6], [1, 1, 0]])
    yo, yt = o(tl.tensor(idx)), t(torch.tensor(idx))
    close(yo, yt)
    yo.sum().backward()
    yt.sum().backward()
    close(o.weight.grad, t.weight.grad)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_losses(reduction):
    x, y = arr(4, 5), arr(4, 5)
    p, q = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(-y))
    T = torch.tensor
    cases = [
        (F.mse_loss(tl.tensor(x), tl.tensor(y), reduction=reduction),
         torch.nn.functional.mse_loss(T(x), T(y), reduction=reduction)),
        (F.l1_loss(tl.tensor(x), tl.tensor(y), reduction=reduction),
         torch.nn.functional.l1_loss(T(x), T(y), reduction=reduction)),
        (F.smooth_l1_loss(tl.tensor(x), tl.tensor(y), reduction=reduction, beta=0.7),
         torch.nn.functional.smooth_l1_loss(T(x), T(y), reduction=reduction, beta=0.7)),
        (F.binary_cross_entropy(tl.tensor(p), tl.tensor(q), reduction=reduction),
         torch.nn.functional.binary_cross_entropy(T(p), T(q), reduction=reduction)),
        (F.binary_cross_entropy_with_logits(tl.tensor(x), tl.tensor(q), reduction=reduction,
                                            pos_weight=tl.tensor(p[0])),
         torch.nn.functional.binary_cross_entropy_with_logits(T(x), T(q), reduction=reduction, pos_weight=T(p[0]))),
        (F.kl_div(tl.tensor(x), tl.tensor(q), reduction=reduction),
         torch.nn.functional.kl_div(T(x), T(q), reduction=reduction)),
        (F.huber_loss(tl.tensor(x), tl.tensor(y), reduction=reduction, delta=0.5),
         torch.nn.functional.huber_loss(T(x), T(y), reduction=reduction, delta=0.5)),
    ]
    for a, b in cases:
        close(a, b)
    tgt = np.array([1, 0, -100, 4])
    w = rng.random(5) + 0.5
    for ls in (0.0, 0.3):
        close(F.cross_entropy(tl.tensor(x), tl.tensor(tgt), tl.tensor(w), reduction=reduction, label_smoothing=ls),
              torch.nn.functional.cross_entropy(T(x), T(tgt), T(w), reduction=reduction, label_smoothing=ls))
        close(F.cross_entropy(tl.tensor(x), tl.tensor(q), tl.tensor(w), reduction=reduction, label_smoothing=ls),
              torch.nn.functional.cross_entropy(T(x), T(q), T(w), reduction=reduction, label_smoothing=ls))


def test_functional_helpers():
    x = arr(2, 3, 5, 4)
    T = torch.tensor
    for mode in ("constant", "reflect", "replicate", "circular"):
        close(F.pad(tl.tensor(x), (1, 2, 3, 1), mode=mode), torch.nn.functional.pad(T(x), (1, 2, 3, 1), mode=mode))
    close(F.normalize(tl.tensor(x), p=1, dim=2), torch.nn.functional.normalize(T(x), p=1, dim=2))
    q, k, v = arr(2, 4, 3), arr(2, 6, 3), arr(2, 6, 5)
    m = rng.random((4, 6)) > 0.3
    m[:, 0] = True
    close(F.scaled_dot_product_attention(tl.tensor(q), tl.tensor(k), tl.tensor(v), attn_mask=tl.tensor(m)),
          torch.nn.functional.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(m)))
    close(F.scaled_dot_product_attention(tl.tensor(q), tl.tensor(k), tl.tensor(v), is_causal=True, scale=0.3),
          torch.nn.functional.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True, scale=0.3))


def test_sdpa_fully_masked_rows_and_negative_scale():
    """torch's math path: a query with every key masked gets zeros (_safe_softmax), not NaN, and so do its
    gradients; a negative scale goes on Q's side."""
    q, k, v = arr(2, 3, 4, 5), arr(2, 3, 6, 5), arr(2, 3, 6, 5)
    m = rng.random((4, 6)) > 0.3
    m[1] = False                                            # query 1 attends to nothing
    for mask in (m, np.where(m, 0.0, -np.inf)):
        for scale in (None, -0.4):
            ours = [tl.tensor(a, requires_grad=True) for a in (q, k, v)]
            theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
            o = F.scaled_dot_product_attention(*ours, attn_mask=tl.tensor(mask), scale=scale)
            t = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask), scale=scale)
            assert not np.isnan(o.detach().numpy()).any()
            close(o, t)
            (o * o).sum().backward()
            (t * t).sum().backward()
            for a, b in zip(ours, theirs):
                close(a.grad, b.grad)


def test_reprs_match_torch():
    for ours, theirs in [(nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=False),
                          torch.nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=False)),
                         (nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)), (nn.LayerNorm(6), torch.nn.LayerNorm(6)),
                         (nn.Dropout(0.2), torch.nn.Dropout(0.2)),
                         (nn.Embedding(5, 2, padding_idx=1), torch.nn.Embedding(5, 2, padding_idx=1)),
                         (nn.LSTM(3, 4, 2, batch_first=True), torch.nn.LSTM(3, 4, 2, batch_first=True)),
                         (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)), (nn.GELU(), torch.nn.GELU()),
                         (nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
                          torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())),
                         (nn.Flatten(), torch.nn.Flatten()), (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
                         (nn.GroupNorm(2, 4, bias=False), torch.nn.GroupNorm(2, 4, bias=False)),
                         (nn.BatchNorm1d(3, affine=False), torch.nn.BatchNorm1d(3, affine=False)),
                         (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2),
                          torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)),
                         (nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1), nn.ReLU()]),
                          torch.nn.ModuleList([torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), torch.nn.ReLU()]))]:
        assert repr(ours) == repr(theirs)


def test_attention_3d_mask_and_encoder_padding_mask():
    o, t = pair(nn.MultiheadAttention, torch.nn.MultiheadAttention, 6, 3)
    x = arr(4, 2, 6)
    m3 = rng.random((2 * 3, 4, 4)) > 0.6
    m3[:, :, 0] = False
    ro = o(tl.tensor(x), tl.tensor(x), tl.tensor(x), attn_mask=tl.tensor(m3), average_attn_weights=False)
    rt = t(torch.tensor(x), torch.tensor(x), torch.tensor(x), attn_mask=torch.tensor(m3), average_attn_weights=False)
    close(ro[0], rt[0])
    close(ro[1], rt[1])
    torch.manual_seed(0)
    tlayer = torch.nn.TransformerEncoderLayer(6, 3, 12, 0.0, batch_first=True).double()
    tenc = torch.nn.TransformerEncoder(tlayer, 2, enable_nested_tensor=False).double()
    oenc = nn.TransformerEncoder(nn.TransformerEncoderLayer(6, 3, 12, 0.0, batch_first=True), 2).double()
    oenc.load_state_dict(to_tl_state(tenc))
    xb = arr(2, 5, 6)
    kpm = np.array([[False, False, False, True, True], [False] * 5])
    close(oenc(tl.tensor(xb), src_key_padding_mask=tl.tensor(kpm)),
          tenc(torch.tensor(xb), src_key_padding_mask=torch.tensor(kpm)))


@pytest.mark.parametrize("kw", [{}, {"batch_first": True}, {"norm_first": True, "activation": "gelu"}])
def test_transformer_encoder_decoder(kw):
    o, t = pair(nn.Transformer, torch.nn.Transformer, d_model=8, nhead=2, num_encoder_layers=2,
                num_decoder_layers=2, dim_feedforward=16, dropout=0.0, **kw)
    src, tgt = (arr(5, 3, 8), arr(4, 3, 8)) if not kw.get("batch_first") else (arr(3, 5, 8), arr(3, 4, 8))
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=tl.float64)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    close(mask, tmask)
    pad = np.zeros((3, 5), dtype=bool)
    pad[1, 3:] = True
    oo, to, oi, ti = run_both(o, t, src, tgt, train=False, tgt_mask=None)
    oo = o(*oi, tgt_mask=mask, src_key_padding_mask=tl.tensor(pad), memory_key_padding_mask=tl.tensor(pad))
    to = t(*ti, tgt_mask=tmask, src_key_padding_mask=torch.tensor(pad), memory_key_padding_mask=torch.tensor(pad))
    close(oo, to, 1e-7)
    oo.sum().backward()
    to.sum().backward()
    close(oi[0].grad, ti[0].grad, 1e-7)
    for (name, p), (_, q) in zip(o.named_parameters(), t.named_parameters()):
        close(p.grad, q.grad, 1e-7)


def test_transformer_init_and_errors_as_torch():
    torch.manual_seed(0)
    t = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    o = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    assert list(o.state_dict()) == list(t.state_dict())
    for (name, p), (_, q) in zip(o.named_parameters(), t.named_parameters()):
        bound = np.sqrt(6 / sum(p.shape[:2])) if p.dim() > 1 else None
        if bound is not None:        # xavier-uniform everywhere, as torch's _reset_parameters
            assert np.abs(p.detach().numpy()).max() <= bound + 1e-6
        elif "norm" in name or "proj_bias" in name or "out_proj.bias" in name:
            close(p, q)              # ones and zeros; the feed-forward biases are random in both
    for theirs, ours in ((t, o),):
        with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
            theirs(torch.zeros(5, 3, 8), torch.zeros(4, 2, 8))
        with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
            ours(tl.zeros(5, 3, 8), tl.zeros(4, 2, 8))
        with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
            ours(tl.zeros(5, 3, 6), tl.zeros(4, 3, 6))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name,kw", [("mse_loss", {}), ("smooth_l1_loss", {"beta": 0.7}), ("smooth_l1_loss", {}),
                                     ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {"delta": 1.3}),
                                     ("binary_cross_entropy", {})])
def test_loss_gradients_are_torchs_bit_for_bit(name, kw, reduction):
    """mse/smooth_l1/huber/binary_cross_entropy's gradients by torch's `<loss>_backward` kernels, in their order:
    torch's values bit for bit for float32 inputs a multiple of its vector width long (a tail past the last whole
    vector pair takes torch's scalar formula, whose rounding can differ by an ulp), for the input and, swapped,
    the target (beta=0 is l1_loss, as torch's F.smooth_l1_loss); their second derivatives close to torch's."""
    r = np.random.default_rng(3)
    if name == "binary_cross_entropy":
        a, b = r.uniform(0.02, 0.98, (4, 64)).astype(np.float32), r.uniform(0, 1, (4, 64)).astype(np.float32)
    else:
        a, b = (r.standard_normal((4, 64)) * 2).astype(np.float32), r.standard_normal((4, 64)).astype(np.float32)
        a[0, :3] = b[0, :3] + np.float32(kw.get("beta", kw.get("delta", 1.0)))     # at the kink
    grad_t = name != "binary_cross_entropy"
    xo, to = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=grad_t)
    xt, tt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=grad_t)
    lo = getattr(F, name)(xo, to, reduction=reduction, **kw)
    lt = getattr(torch.nn.functional, name)(xt, tt, reduction=reduction, **kw)
    g = r.standard_normal(lt.shape).astype(np.float32)
    go = tl.autograd.grad(lo, [xo, to] if grad_t else [xo], tl.tensor(g), create_graph=True)
    gt = torch.autograd.grad(lt, [xt, tt] if grad_t else [xt], torch.tensor(g), create_graph=True)
    for u, v in zip(go, gt):
        np.testing.assert_array_equal(u.detach().numpy(), v.detach().numpy())
    if name == "smooth_l1_loss" and kw.get("beta") == 0.0:
        return      # (torch's l1_loss has no second derivative to compare)
    so = tl.autograd.grad(go[0].sum(), [xo, to] if grad_t else [xo], allow_unused=True)
    st = torch.autograd.grad(gt[0].sum(), [xt, tt] if grad_t else [xt], allow_unused=True)
    for u, v in zip(so, st):
        assert (u is None) == (v is None)
        if u is not None:
            close(u, v, 1e-5)


def test_weighted_losses_and_huber_checks_are_torchs():
    """torch 2.13's `weight=` of mse_loss, l1_loss and huber_loss (a mean divides by the weights' sum for the
    first two) and its refusals: a weight of another size, huber's non-positive delta."""
    x, y, w = arr(4, 5), arr(4, 5), rng.random((4, 5))
    T = torch.tensor
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        for reduction in ("none", "mean", "sum"):
            xo, xt = tl.tensor(x, requires_grad=True), T(x, requires_grad=True)
            lo = getattr(F, name)(xo, tl.tensor(y), reduction=reduction, weight=tl.tensor(w))
            lt = getattr(torch.nn.functional, name)(xt, T(y), reduction=reduction, weight=T(w))
            close(lo, lt)
            lo.sum().backward()
            lt.sum().backward()
            close(xo.grad, xt.grad)
        with pytest.raises(ValueError, match="Weights and input must have the same size."):
            getattr(F, name)(tl.tensor(x), tl.tensor(y), weight=tl.tensor(w[0]))
        with pytest.raises(ValueError, match="Weights and input must have the same size."):
            getattr(torch.nn.functional, name)(T(x), T(y), weight=T(w[0]))
    for d in (0.0, -1.0):
        with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values for delta."):
            F.huber_loss(tl.tensor(x), tl.tensor(y), delta=d)
        with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values for delta."):
            torch.nn.functional.huber_loss(T(x), T(y), delta=d)


def _backward_tree(lib, loss):
    """(depth, name) of the events of loss().backward() from the backward seed on, leaving out torch's dtype
    conversions (aten::to and everything under it: a scalar's wrapping, which tensorlib's ops do not record)."""
    prof_mod = torch.profiler if lib is torch else __import__("profiler")
    loss().backward()
    with prof_mod.profile() as p:
        loss().backward()
    evs = sorted(p.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    out = []
    for e in evs:
        chain, d = [], 0
        while e is not None:
            chain.append(e.name)
            e, d = e.cpu_parent, d + 1
        if "aten::to" not in chain:
            out.append((d - 1, chain[0]))
    seed = out.index((0, "aten::ones_like"))
    return out[seed:]


@pytest.mark.parametrize("name", ["mse", "smooth_l1", "huber", "l1", "bce", "bce_logits", "bce_logits_weights",
                                  "kl_div", "kl_div_log_target", "gather"])
def test_loss_backward_trees_are_torchs(name):
    """The events a profile records for these losses' backward passes, side by side with torch 2.13's: the same
    nodes, the ops in each, nested as torch's (a trace diff lines them up name for name)."""
    r = np.random.default_rng(5)
    x, y = r.standard_normal((4, 6)).astype(np.float32), r.uniform(0.1, 0.9, (4, 6)).astype(np.float32)
    w, idx = r.uniform(0.5, 2, 6).astype(np.float32), np.array([[0, 5], [1, 1], [3, 2], [4, 0]])

    def case(lib, fn):
        xs = lib.tensor(x, requires_grad=True)
        return _backward_tree(lib, lambda: fn(lib, lib.nn.functional, xs))
    fns = {
        "mse": lambda lib, f, a: f.mse_loss(a, lib.tensor(y)),
        "smooth_l1": lambda lib, f, a: f.smooth_l1_loss(a, lib.tensor(y), beta=0.5),
        "huber": lambda lib, f, a: f.huber_loss(a, lib.tensor(y), delta=0.5),
        "l1": lambda lib, f, a: f.l1_loss(a, lib.tensor(y)),
        "bce": lambda lib, f, a: f.binary_cross_entropy(a.sigmoid(), lib.tensor(y)),
        "bce_logits": lambda lib, f, a: f.binary_cross_entropy_with_logits(a, lib.tensor(y), reduction="sum"),
        "bce_logits_weights": lambda lib, f, a: f.binary_cross_entropy_with_logits(
            a, lib.tensor(y), weight=lib.tensor(w), pos_weight=lib.tensor(w)),
        "kl_div": lambda lib, f, a: f.kl_div(a.log_softmax(1), lib.tensor(y), reduction="batchmean"),
        "kl_div_log_target": lambda lib, f, a: f.kl_div(a, lib.tensor(y).log(), reduction="sum", log_target=True),
        "gather": lambda lib, f, a: a.gather(1, lib.tensor(idx)).sum(),
    }
    assert case(tl, fns[name]) == case(torch, fns[name])


def test_torch_namespace_losses_default_to_no_reduction_as_torchs():
    """torch.kl_div, torch.binary_cross_entropy_with_logits, the margin/embedding losses and torch.ctc_loss return the
    elementwise loss when no reduction is given (torch 2.13's bindings), unlike their nn.functional forms."""
    x, y = np.abs(arr(3, 4)) + 0.1, np.abs(arr(3, 4)) + 0.1
    s = np.sign(arr(3, 4))
    cases = [("kl_div", (np.log(x), y)), ("binary_cross_entropy_with_logits", (x, y / y.max())),
             ("hinge_embedding_loss", (x, s)), ("margin_ranking_loss", (x[0], y[0], s[0])),
             ("cosine_embedding_loss", (x, y, s[:, 0])), ("triplet_margin_loss", (x, y, x * 2))]
    for name, args in cases:
        close(getattr(tl, name)(*map(tl.tensor, args)), getattr(torch, name)(*map(torch.tensor, args)))
        close(getattr(tl, name)(*map(tl.tensor, args), reduction=2), getattr(torch, name)(*map(torch.tensor, args),
                                                                                         reduction=2))


@pytest.mark.parametrize("name,fn", [
    ("div", lambda L, a, b: a / b), ("div by a number", lambda L, a, b: L.div(2.0, b)),
    ("reciprocal", lambda L, a, b: b.reciprocal()), ("pow 3", lambda L, a, b: b ** 3),
    ("pow 2", lambda L, a, b: a ** 2),
    ("pow -1", lambda L, a, b: b ** -1), ("elu", lambda L, a, b: L.nn.functional.elu(a, 0.7)),
    ("selu", lambda L, a, b: L.nn.functional.selu(a)), ("celu", lambda L, a, b: L.nn.functional.celu(a, 1.3)),
    ("mish", lambda L, a, b: L.nn.functional.mish(a)),
    ("glu", lambda L, a, b: L.nn.functional.glu(L.cat([a, b], 1), 1)),
    ("logit", lambda L, a, b: L.logit(1 / (b + 0.1), 0.2)),
    ("addcdiv", lambda L, a, b: L.addcdiv(a, a * 0.5, b, value=0.3)), ("cumsum", lambda L, a, b: a.cumsum(0)),
    ("cumprod", lambda L, a, b: (b * 0.5 + 0.6).cumprod(0)),
    ("prod over a dim", lambda L, a, b: b.prod(1, keepdim=True) * a),
    ("prelu", lambda L, a, b: L.nn.functional.prelu(a, L.tensor([0.25, -0.5, 1.5]))),
    ("hardshrink", lambda L, a, b: L.nn.functional.hardshrink(a, 0.3)),
    ("softshrink", lambda L, a, b: L.nn.functional.softshrink(a, 0.3)),
])
def test_gradients_are_torchs_bit_for_bit(name, fn):
    """Backward formulas in torch's form and order (div's -grad * ((self / other) / other), reciprocal's
    -grad * (result * result), pow's grad * (exponent * self.pow(exponent - 1)), prelu's and the shrinks'
    kernels, prod's grad * (result / input), cumsum and cumprod accumulated in double precision as torch's CPU
    kernels): float32 values and gradients equal to torch's to the bit; those through exp, tanh or log (the elu family's
    elu_backward, mish, glu, logit) within an ulp or two of NumPy's against torch's vectorised functions."""
    r = np.random.default_rng(5)
    a = r.standard_normal((64, 3)).astype(np.float32) * 2
    b = np.abs(r.standard_normal((64, 3))).astype(np.float32) + 0.5
    g = r.standard_normal((64, 3)).astype(np.float32)
    out = []
    for L in (tl, torch):
        x, y = L.tensor(a, requires_grad=True), L.tensor(b, requires_grad=True)
        z = fn(L, x, y)
        grads = L.autograd.grad(z, [x, y], L.tensor(g), allow_unused=True)
        out.append([None if u is None else u.numpy() for u in grads] + [z.detach().numpy()])
    exact = name not in ("elu", "selu", "celu", "mish", "glu", "logit")
    for u, v in zip(*out):
        assert (u is None) == (v is None)
        if u is not None and exact:
            np.testing.assert_array_equal(u, v)
        elif u is not None:
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["sigmoid", "silu", "elu", "celu", "selu", "mish", "logsigmoid", "softmax",
                                  "log_softmax", "layer_norm", "logit"])
def test_half_precision_ops_compute_in_float32_as_torchs(name, dtype):
    """float16 and bfloat16 through float32, rounded once (torch's opmath on the CPU; _define.half_in_float32): the
    values and gradients are torch's to the bit, but for exp/log differences torch's vectorised functions make in
    float32 (log_softmax, and sigmoid's bfloat16 gradient through a differing forward), layer_norm's summation
    order, and logit, which torch computes in the half dtype op by op (its clamp bounds are taken as torch's)."""
    r = np.random.default_rng(3)
    a = (r.standard_normal((32, 40)) * 3).astype(np.float32)
    g = r.standard_normal((32, 40)).astype(np.float32)
    out = []
    for L in (tl, torch):
        F = L.nn.functional
        fn = {"sigmoid": L.sigmoid, "logit": lambda x: L.logit(L.sigmoid(x), 1e-3),
              "softmax": lambda x: F.softmax(x, -1), "log_softmax": lambda x: F.log_softmax(x, -1),
              "layer_norm": lambda x: F.layer_norm(x, (40,))}.get(name) or getattr(F, name)
        x = L.tensor(a).to(getattr(L, dtype)).requires_grad_()
        y = fn(x)
        y.backward(L.tensor(g).to(getattr(L, dtype)))
        assert y.dtype == x.grad.dtype == getattr(L, dtype)
        out.append((y.detach().float().numpy(), x.grad.float().numpy()))
    (y1, g1), (y2, g2) = out
    if name in ("log_softmax", "logit", "layer_norm"):
        assert name == "logit" or ((y1 != y2).mean() < 0.25 and (g1 != g2).mean() < 0.25)
        np.testing.assert_allclose(y1, y2, rtol=1e-2, atol=1e-2)
        np.testing.assert_allclose(g1, g2, rtol=2e-2, atol=2e-2)
    else:
        np.testing.assert_array_equal(y1, y2)
        if not (name == "sigmoid" and dtype == "bfloat16"):
            np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("m,k,n", [(128, 1024, 256), (20, 650, 650), (8, 2048, 96), (640, 200, 1000), (16, 32, 16),
                                   (100, 784, 10), (64, 13, 7), (4, 6, 3), (2, 300, 300), (16, 1, 1)])
def test_linear_and_addmm_are_torchs_bit_for_bit(m, k, n):
    """torch's addmm (a Linear layer with a bias) copies the bias into its output and runs one GEMM with beta 1,
    so MKL adds it inside its k-blocked sums: the product plus the bias afterwards differed from torch's in a
    third of the outputs once k passed ~256. tensorlib's addmm runs the same GEMM on MKL, small products too
    (_blas.small: on OpenBLAS a 16x32 by 32x16 layer differed from torch's in 71% of its outputs)."""
    from tensorlib import _blas
    if not _blas.gemms_on_mkl():
        pytest.skip("MKL's GEMMs are not used here (no mkl wheel, another CPU, TENSORLIB_BLAS=numpy)")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    want = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy()
    np.testing.assert_array_equal(F.linear(tl.tensor(x), tl.tensor(w), tl.tensor(b)).numpy(), want)
    x3 = x.reshape(2, m // 2, k)        # a batch of sequences: viewed as rows, as torch's
    np.testing.assert_array_equal(F.linear(tl.tensor(x3), tl.tensor(w), tl.tensor(b)).numpy(),
                                  torch.nn.functional.linear(torch.tensor(x3), torch.tensor(w),
                                                             torch.tensor(b)).numpy())
    wt = w.T.copy()
    for c in (b, rng.standard_normal((m, n)).astype(np.float32), b[None], b[:m, None] if n >= m else None):
        if c is None:
            continue
        for beta, alpha in ((1, 1), (2.0, 0.5), (0, 3)):
            got = tl.addmm(tl.tensor(c), tl.tensor(x), tl.tensor(wt), beta=beta, alpha=alpha).numpy()
            ref = torch.addmm(torch.tensor(c), torch.tensor(x), torch.tensor(wt), beta=beta, alpha=alpha).numpy()
            np.testing.assert_array_equal(got, ref, err_msg=f"bias {c.shape}, beta {beta}, alpha {alpha}")


@pytest.mark.parametrize("shape", [(3,), (31,), (33,), (5, 7), (64, 300), (8, 3, 33), (4, 32000)])
def test_sigmoid_and_softmax_are_torchs_bit_for_bit(shape):
    """torch's float32 sigmoid and softmax take their exp from Sleef (Vectorized<float>::exp), sum a row in its
    vector's lanes and multiply by 1 / sum; sigmoid's last n % (2 * lanes) elements take libm's expf. tensorlib's C
    loops run the same steps (_fastmath.sigmoid, softmax_rows): torch's values to the bit, in place too."""
    from tensorlib.ops import _fastmath
    if _fastmath._SIGMOID is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): NumPy's exp, within an ulp")
    rng = np.random.default_rng(13)
    x = (rng.standard_normal(shape) * 6).astype(np.float32)
    flat = x.reshape(-1)
    if flat.size > 8:
        flat[:6] = (np.inf, -np.inf, np.nan, -120.0, 95.0, -90.0) if len(shape) == 1 else (-np.inf, 0, -200.0, 3, 4, 5)
    want = torch.sigmoid(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(tl.sigmoid(tl.tensor(x)).numpy(), want)
    t = tl.tensor(x)
    t.sigmoid_()
    np.testing.assert_array_equal(t.numpy(), want)
    if len(shape) > 1:
        np.testing.assert_array_equal(tl.softmax(tl.tensor(x), -1).numpy(),
                                      torch.softmax(torch.tensor(x), -1).numpy())
        if shape[-1] >= 8 or x.size <= 1024:     # (the C rows: shorter rows in bulk keep NumPy's faster path)
            np.testing.assert_array_equal(tl.log_softmax(tl.tensor(x), -1).numpy(),
                                          torch.log_softmax(torch.tensor(x), -1).numpy())


@pytest.mark.parametrize("n,c", [(1, 5), (17, 10), (64, 27), (512, 65), (2240, 1000), (5000, 12)])
def test_cross_entropy_is_torchs_bit_for_bit(n, c):
    """cross_entropy = log_softmax (Sleef's exp and log, torch's lane order: _cmath.c) + nll_loss, whose mean sums
    the picked log-probabilities in torch's cascade of partial sums (nll_sum), with class weights and ignored rows
    too: a classifier's loss is torch's to the bit, and so is its gradient."""
    from tensorlib.ops import _fastmath
    if _fastmath._SOFTMAX is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): NumPy's exp and log, within an ulp")
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    y = rng.integers(0, c, n)
    w = rng.random(c).astype(np.float32)
    ignored = y.copy()
    ignored[::7] = -100         # (row 0 among them: torch skips an ignored row's flush too)
    for reduction in ("mean", "sum"):
        for target, weight in ((y, None), (y, w), (ignored, None), (ignored, w)):
            a, b = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            la = tl.nn.functional.cross_entropy(a, tl.tensor(target), None if weight is None else tl.tensor(weight),
                                                reduction=reduction)
            lb = torch.nn.functional.cross_entropy(b, torch.tensor(target),
                                                   None if weight is None else torch.tensor(weight),
                                                   reduction=reduction)
            assert la.item() == lb.item() or (np.isnan(la.item()) and np.isnan(lb.item()))
            la.backward()
            lb.backward()
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
