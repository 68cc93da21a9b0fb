"""RNN/LSTM/GRU and MultiheadAttention/Transformer against NumPy step-by-step references; gradcheck."""
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.autograd import gradcheck

from . import _ref


def npy(t):
    return t.detach().numpy()


def _w(m, name):
    return npy(getattr(m, name))


def _np_lstm_layer(x, h, c, m, sfx, reverse=False):
    outs = [None] * len(x)
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        h, c = _ref.lstm_cell(x[t], h, c, _w(m, "weight_ih" + sfx), _w(m, "weight_hh" + sfx), _w(m, "bias_ih" + sfx),
                              _w(m, "bias_hh" + sfx))
        outs[t] = h
    return np.stack(outs), h, c


def test_lstm_bidirectional_two_layers_matches_numpy():
    tl.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    x = tl.randn(5, 2, 3, dtype=tl.float64)
    out, (h, c) = m(x)
    assert out.shape == (5, 2, 8) and h.shape == (4, 2, 4) and c.shape == (4, 2, 4)
    z = np.zeros((2, 4))
    f0, hf0, cf0 = _np_lstm_layer(x.numpy(), z, z, m, "_l0")
    b0, hb0, cb0 = _np_lstm_layer(x.numpy(), z, z, m, "_l0_reverse", True)
    x1 = np.concatenate([f0, b0], -1)
    f1, hf1, cf1 = _np_lstm_layer(x1, z, z, m, "_l1")
    b1, hb1, cb1 = _np_lstm_layer(x1, z, z, m, "_l1_reverse", True)
    np.testing.assert_allclose(npy(out), np.concatenate([f1, b1], -1), rtol=1e-10)
    np.testing.assert_allclose(npy(h), np.stack([hf0, hb0, hf1, hb1]), rtol=1e-10)
    np.testing.assert_allclose(npy(c), np.stack([cf0, cb0, cf1, cb1]), rtol=1e-10)


def test_lstm_batch_first_initial_state_unbatched_and_gradcheck():
    tl.manual_seed(1)
    m = nn.LSTM(3, 2, batch_first=True).double()
    x = tl.randn(2, 4, 3, dtype=tl.float64, requires_grad=True)
    h0 = tl.randn(1, 2, 2, dtype=tl.float64, requires_grad=True)
    c0 = tl.randn(1, 2, 2, dtype=tl.float64, requires_grad=True)
    out, _ = m(x, (h0, c0))
    ref, _, _ = _np_lstm_layer(x.detach().numpy().transpose(1, 0, 2), h0.detach().numpy()[0], c0.detach().numpy()[0],
                               m, "_l0")
    np.testing.assert_allclose(npy(out), ref.transpose(1, 0, 2), rtol=1e-10)
    assert gradcheck(lambda x, h, c: m(x, (h, c))[0], (x, h0, c0))
    assert gradcheck(lambda w: m(x.detach())[0], (m.weight_hh_l0,))   # through the recurrent weight
    o1, (h1, _) = m(x[0].detach())
    assert o1.shape == (4, 2) and h1.shape == (1, 2)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        m(tl.randn(2, 4, 5, dtype=tl.float64))


def test_gru_and_rnn_match_numpy_and_gradcheck():
    tl.manual_seed(2)
    g = nn.GRU(3, 4).double()
    x = tl.randn(5, 2, 3, dtype=tl.float64, requires_grad=True)
    out, h = g(x)
    hh = np.zeros((2, 4))
    outs = []
    for t in range(5):
        hh = _ref.gru_cell(x.detach().numpy()[t], hh, _w(g, "weight_ih_l0"), _w(g, "weight_hh_l0"),
                           _w(g, "bias_ih_l0"), _w(g, "bias_hh_l0"))
        outs.append(hh)
    np.testing.assert_allclose(npy(out), np.stack(outs), rtol=1e-10)
    np.testing.assert_allclose(npy(h)[0], hh, rtol=1e-10)
    assert gradcheck(lambda x: g(x)[0], (x,))
    r = nn.RNN(3, 4, nonlinearity="relu", num_layers=2).double()
    out, h = r(x)
    hh0, hh1 = np.zeros((2, 4)), np.zeros((2, 4))
    for t in range(5):
        hh0 = np.maximum(x.detach().numpy()[t] @ _w(r, "weight_ih_l0").T + _w(r, "bias_ih_l0")
                         + hh0 @ _w(r, "weight_hh_l0").T + _w(r, "bias_hh_l0"), 0)
        hh1 = np.maximum(hh0 @ _w(r, "weight_ih_l1").T + _w(r, "bias_ih_l1")
                         + hh1 @ _w(r, "weight_hh_l1").T + _w(r, "bias_hh_l1"), 0)
    np.testing.assert_allclose(npy(out)[-1], hh1, rtol=1e-10)
    assert gradcheck(lambda x: r(x)[0], (x,))


def test_rnn_parameters_and_init_like_torch():
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names and m.weight_ih_l1.shape == (80, 40)
    assert max(np.abs(p.detach().numpy()).max() for p in m.parameters()) <= 1 / math.sqrt(20)
    assert repr(m) == "LSTM(10, 20, num_layers=2, bidirectional=True)"
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(2, 2, nonlinearity="gelu")


def test_cells():
    tl.manual_seed(3)
    c = nn.LSTMCell(3, 4).double()
    x = tl.randn(2, 3, dtype=tl.float64)
    h, cc = c(x)
    rh, rc = _ref.lstm_cell(x.numpy(), np.zeros((2, 4)), np.zeros((2, 4)), _w(c, "weight_ih"), _w(c, "weight_hh"),
                            _w(c, "bias_ih"), _w(c, "bias_hh"))
    np.testing.assert_allclose(npy(h), rh, rtol=1e-10)
    assert nn.GRUCell(3, 4)(tl.randn(2, 3)).shape == (2, 4)
    assert nn.RNNCell(3, 4)(tl.randn(3)).shape == (4,)


def _np_mha(q, k, v, m, mask_add=None):
    E = q.shape[-1]
    H = m.num_heads
    D = E // H
    W, b = _w(m, "in_proj_weight"), _w(m, "in_proj_bias")
    Q, K, V = q @ W[:E].T + b[:E], k @ W[E:2 * E].T + b[E:2 * E], v @ W[2 * E:].T + b[2 * E:]   # (N, L, E)
    N, L, S = q.shape[0], q.shape[1], k.shape[1]
    Q = Q.reshape(N, L, H, D).transpose(0, 2, 1, 3)
    K = K.reshape(N, S, H, D).transpose(0, 2, 1, 3)
    V = V.reshape(N, S, H, D).transpose(0, 2, 1, 3)
    s = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(D)
    if mask_add is not None:
        s = s + mask_add
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = (a @ V).transpose(0, 2, 1, 3).reshape(N, L, E)
    return o @ _w(m.out_proj, "weight").T + _w(m.out_proj, "bias"), a.mean(1)


def test_multihead_attention_matches_numpy_with_masks():
    tl.manual_seed(4)
    m = nn.MultiheadAttention(8, 2, batch_first=True).double()
    nn.init.normal_(m.in_proj_bias)
    q = tl.randn(2, 3, 8, dtype=tl.float64)
    kv = tl.randn(2, 5, 8, dtype=tl.float64)
    out, w = m(q, kv, kv)
    ro, rw = _np_mha(q.numpy(), kv.numpy(), kv.numpy(), m)
    np.testing.assert_allclose(npy(out), ro, rtol=1e-10)
    np.testing.assert_allclose(npy(w), rw, rtol=1e-10)
    kpm = tl.tensor(np.array([[False, False, False, True, True], [False] * 5]))
    am = tl.tensor(np.array([[False, True, False, False, False]] * 3))
    out, w = m(q, kv, kv, key_padding_mask=kpm, attn_mask=am)
    add = np.where(am.numpy(), -np.inf, 0)[None, None] + np.where(kpm.numpy(), -np.inf, 0)[:, None, None, :]
    ro, rw = _np_mha(q.numpy(), kv.numpy(), kv.numpy(), m, add)
    np.testing.assert_allclose(npy(out), ro, rtol=1e-10)
    assert np.all(npy(w)[0][:, 3:] == 0) and np.all(npy(w)[:, :, 1] == 0)
    # sequence-first layout gives the same result
    m.batch_first = False
    out2, _ = m(q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), key_padding_mask=kpm, attn_mask=am)
    np.testing.assert_allclose(npy(out2).transpose(1, 0, 2), ro, rtol=1e-10)


def test_multihead_attention_gradcheck_and_causal():
    tl.manual_seed(5)
    m = nn.MultiheadAttention(4, 2).double()
    x = tl.randn(3, 2, 4, dtype=tl.float64, requires_grad=True)
    assert gradcheck(lambda x: m(x, x, x, need_weights=False)[0], (x,))
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=tl.float64)
    _, w = m(x, x, x, is_causal=True, attn_mask=mask)
    assert np.all(np.triu(npy(w)[0], 1) == 0)
    causal, _ = m(x, x, x, is_causal=True, attn_mask=mask, need_weights=False)     # the hint: SDPA's is_causal
    np.testing.assert_allclose(npy(causal), npy(m(x, x, x, attn_mask=mask, need_weights=False)[0]), rtol=1e-12)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):   # as torch's
        m(x, x, x, is_causal=True, attn_mask=None)
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(6, 4)


def test_transformer_encoder_layer_matches_manual_composition():
    tl.manual_seed(6)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    x = tl.randn(2, 5, 8, dtype=tl.float64)
    sa = layer.self_attn(x, x, x, need_weights=False)[0]
    h = layer.norm1(x + sa)
    ref = layer.norm2(h + layer.linear2(nn.functional.relu(layer.linear1(h))))
    np.testing.assert_allclose(npy(layer(x)), npy(ref), rtol=1e-10)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(8).double())
    assert len(enc.layers) == 3 and enc.layers[0] is not layer
    assert enc(x).shape == (2, 5, 8)
    xg = tl.randn(2, 3, 8, dtype=tl.float64, requires_grad=True)
    pre = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True, activation="gelu").double()
    assert gradcheck(lambda x: pre(x), (xg,))


def test_lstm_projections_match_numpy_and_torch_layout():
    tl.manual_seed(7)
    m = nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True).double()
    names = [n for n, _ in m.named_parameters()]
    assert names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert m.weight_hh_l0.shape == (20, 2) and m.weight_hr_l0.shape == (2, 5) and m.weight_ih_l1.shape == (20, 4)
    assert [len(w) for w in m.all_weights] == [5, 5, 5, 5]
    assert repr(m) == "LSTM(3, 5, proj_size=2, num_layers=2, bidirectional=True)"
    x = tl.randn(4, 2, 3, dtype=tl.float64)
    out, (h, c) = m(x)
    assert out.shape == (4, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 5)

    def layer(xs, sfx, reverse):
        hh, cc = np.zeros((2, 2)), np.zeros((2, 5))
        outs = [None] * len(xs)
        for t in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
            full, cc = _ref.lstm_cell(xs[t], hh, cc, _w(m, "weight_ih" + sfx), _w(m, "weight_hh" + sfx),
                                      _w(m, "bias_ih" + sfx), _w(m, "bias_hh" + sfx))
            hh = full @ _w(m, "weight_hr" + sfx).T
            outs[t] = hh
        return np.stack(outs), hh, cc
    f0, hf0, cf0 = layer(x.numpy(), "_l0", False)
    b0, hb0, cb0 = layer(x.numpy(), "_l0_reverse", True)
    x1 = np.concatenate([f0, b0], -1)
    f1, hf1, cf1 = layer(x1, "_l1", False)
    b1, hb1, cb1 = layer(x1, "_l1_reverse", True)
    np.testing.assert_allclose(npy(out), np.concatenate([f1, b1], -1), rtol=1e-10)
    np.testing.assert_allclose(npy(h), np.stack([hf0, hb0, hf1, hb1]), rtol=1e-10)
    np.testing.assert_allclose(npy(c), np.stack([cf0, cb0, cf1, cb1]), rtol=1e-10)
    xg = tl.randn(3, 1, 3, dtype=tl.float64, requires_grad=True)
    assert gradcheck(lambda x: m(x)[0], (xg,))
    assert gradcheck(lambda w: m(xg.detach())[0], (m.weight_hr_l1_reverse,))


def test_lstm_projection_errors_and_state_shapes_as_torch():
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        nn.LSTM(3, 5, proj_size=-1)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 5, proj_size=5)
    with pytest.raises(ValueError, match="only supported for LSTM, not RNN or GRU"):
        nn.modules.rnn.RNNBase("GRU", 3, 5, proj_size=2)
    m = nn.LSTM(3, 5, proj_size=2)
    x = tl.randn(4, 1, 3)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 1, 2\), got \[1, 1, 5\]"):
        m(x, (tl.zeros(1, 1, 5), tl.zeros(1, 1, 5)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 1, 5\), got \[1, 1, 2\]"):
        m(x, (tl.zeros(1, 1, 2), tl.zeros(1, 1, 2)))
    out, (h, c) = m(x, (tl.zeros(1, 1, 2), tl.zeros(1, 1, 5)))
    assert out.shape == (4, 1, 2)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 1, 5\), got \[2, 1, 5\]"):
        nn.GRU(3, 5)(x, tl.zeros(2, 1, 5))


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_multihead_attention_bias_kv_and_zero_attn_match_numpy(bias_kv, zero_attn):
    tl.manual_seed(8)
    m = nn.MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn).double()
    assert (m.bias_k is not None) == bias_kv and (m.bias_k is None or m.bias_k.shape == (1, 1, 8))
    nn.init.normal_(m.in_proj_bias)
    L, S, N, E, H, D = 3, 5, 2, 8, 2, 4
    q = tl.randn(L, N, E, dtype=tl.float64)
    kv = tl.randn(S, N, E, dtype=tl.float64)
    am = np.zeros((L, S), bool)
    am[:, 1] = True
    kpm = np.zeros((N, S), bool)
    kpm[0, 3:] = True
    out, w = m(q, kv, kv, attn_mask=tl.tensor(am), key_padding_mask=tl.tensor(kpm))

    W, b = _w(m, "in_proj_weight"), _w(m, "in_proj_bias")
    Q = q.numpy() @ W[:E].T + b[:E]
    K = kv.numpy() @ W[E:2 * E].T + b[E:2 * E]
    V = kv.numpy() @ W[2 * E:].T + b[2 * E:]
    mask = np.where(am, -np.inf, 0.0)[None] + np.where(kpm, -np.inf, 0.0)[:, None, :]     # (N, L, S)
    if bias_kv:   # one more key and value, never masked
        K = np.concatenate([K, np.broadcast_to(_w(m, "bias_k"), (1, N, E))])
        V = np.concatenate([V, np.broadcast_to(_w(m, "bias_v"), (1, N, E))])
        mask = np.concatenate([mask, np.zeros((N, L, 1))], -1)
    Qh = Q.reshape(L, N, H, D).transpose(1, 2, 0, 3)
    Kh = K.reshape(len(K), N, H, D).transpose(1, 2, 0, 3)
    Vh = V.reshape(len(V), N, H, D).transpose(1, 2, 0, 3)
    if zero_attn:
        Kh = np.concatenate([Kh, np.zeros((N, H, 1, D))], 2)
        Vh = np.concatenate([Vh, np.zeros((N, H, 1, D))], 2)
        mask = np.concatenate([mask, np.zeros((N, L, 1))], -1)
    s = Qh @ Kh.transpose(0, 1, 3, 2) / math.sqrt(D) + mask[:, None]
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = (a @ Vh).transpose(2, 0, 1, 3).reshape(L, N, E) @ _w(m.out_proj, "weight").T + _w(m.out_proj, "bias")
    np.testing.assert_allclose(npy(out), o, rtol=1e-10)
    np.testing.assert_allclose(npy(w), a.mean(1), rtol=1e-10)
    assert w.shape == (N, L, S + bias_kv + zero_attn)
    x = tl.randn(3, 2, 8, dtype=tl.float64, requires_grad=True)
    assert gradcheck(lambda x: m(x, x, x, need_weights=False)[0], (x,))
    if bias_kv:
        assert gradcheck(lambda bk: m(x.detach(), x.detach(), x.detach(), need_weights=False)[0], (m.bias_k,))


def test_transformer_encoder_decoder_trains_and_masks():
    """nn.Transformer: torch's state-dict layout, a causal target mask that keeps the future out, and a step
    that lowers the loss (compared with torch itself in devtools/torch_compat)."""
    import numpy as np
    import tensorlib as tl
    from tensorlib import nn
    tl.manual_seed(0)
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                       dropout=0.0, batch_first=True)
    keys = list(m.state_dict())
    assert keys[0] == "encoder.layers.0.self_attn.in_proj_weight" and "decoder.layers.0.multihead_attn.in_proj_weight" \
        in keys and keys[-2:] == ["decoder.norm.weight", "decoder.norm.bias"] and len(keys) == 34
    src, tgt = tl.randn(2, 5, 8), tl.randn(2, 4, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert mask[0, 1].item() == float("-inf") and mask[1, 0].item() == 0.0
    out = m(src, tgt, tgt_mask=mask)
    changed = tgt.clone()
    changed[:, 3] += 5.0                               # the last target step must not change earlier outputs
    out2 = m(src, changed, tgt_mask=mask)
    np.testing.assert_allclose(out[:, :3].detach().numpy(), out2[:, :3].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, 3].detach().numpy(), out2[:, 3].detach().numpy())
    opt = tl.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = ((m(src, tgt, tgt_mask=mask) - tgt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# (L, N): short loops run on W_hh's transposed view, longer ones on a contiguous copy (recurrent._copies_weight)
LOOPS = [(5, 3), (1, 2), (8, 4)]


def test_loops_cover_both_weight_layouts():
    from tensorlib.ops.recurrent import _copies_weight
    assert [_copies_weight(L, N) for L, N in LOOPS] == [False, False, True]


@pytest.mark.parametrize("L,N", LOOPS)
def test_lstm_layer_op_matches_the_step_by_step_cells_forward_and_backward(L, N):
    """nn.LSTM runs each layer's recurrence as one lstm_layer op; LSTMCell steps are the reference."""
    import numpy as np

    tl.manual_seed(3)
    I, H = 4, 6
    for bidirectional in (False, True):
        m = tl.nn.LSTM(I, H, num_layers=2, bidirectional=bidirectional).double()
        x = tl.randn(L, N, I, dtype=tl.float64, requires_grad=True)
        out, (h, c) = m(x)
        (out.pow(2).sum() + h.sum() * 0.3 + c.sum() * 0.7).backward()
        got = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]
        x.grad = None
        m.zero_grad()
        dirs = 2 if bidirectional else 1
        inp, hs, cs = x, [], []
        for layer in range(2):
            outs_d = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                cell = tl.nn.LSTMCell(inp.shape[-1], H).double()
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    setattr(cell, k, getattr(m, k + sfx))
                hh = cc = tl.zeros(N, H, dtype=tl.float64)
                outs = [None] * L
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    hh, cc = cell(inp[t], (hh, cc))
                    outs[t] = hh
                outs_d.append(tl.stack(outs))
                hs.append(hh)
                cs.append(cc)
            inp = tl.cat(outs_d, -1)
        np.testing.assert_allclose(out.detach().numpy(), inp.detach().numpy(), atol=1e-12)
        (inp.pow(2).sum() + tl.stack(hs).sum() * 0.3 + tl.stack(cs).sum() * 0.7).backward()
        want = [x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("L,N", LOOPS)
@pytest.mark.parametrize("kind", ["GRU", "RNN_TANH", "RNN_RELU"])
def test_gru_and_rnn_layer_ops_match_the_step_by_step_cells_forward_and_backward(kind, L, N):
    import numpy as np

    tl.manual_seed(4)
    I, H = 4, 6
    make = {"GRU": lambda i: tl.nn.GRU(I, H, num_layers=2, bidirectional=i),
            "RNN_TANH": lambda i: tl.nn.RNN(I, H, num_layers=2, bidirectional=i),
            "RNN_RELU": lambda i: tl.nn.RNN(I, H, num_layers=2, bidirectional=i, nonlinearity="relu")}[kind]
    make_cell = {"GRU": lambda i: tl.nn.GRUCell(i, H), "RNN_TANH": lambda i: tl.nn.RNNCell(i, H),
                 "RNN_RELU": lambda i: tl.nn.RNNCell(i, H, nonlinearity="relu")}[kind]
    for bidirectional in (False, True):
        m = make(bidirectional).double()
        x = tl.randn(L, N, I, dtype=tl.float64, requires_grad=True)
        out, h = m(x)
        (out.pow(2).sum() + h.sum() * 0.3).backward()
        got = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]
        x.grad = None
        m.zero_grad()
        dirs = 2 if bidirectional else 1
        inp, hs = x, []
        for layer in range(2):
            outs_d = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                cell = make_cell(inp.shape[-1]).double()
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    setattr(cell, k, getattr(m, k + sfx))
                hh = tl.zeros(N, H, dtype=tl.float64)
                outs = [None] * L
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    hh = cell(inp[t], hh)
                    outs[t] = hh
                outs_d.append(tl.stack(outs))
                hs.append(hh)
            inp = tl.cat(outs_d, -1)
        np.testing.assert_allclose(out.detach().numpy(), inp.detach().numpy(), atol=1e-12)
        (inp.pow(2).sum() + tl.stack(hs).sum() * 0.3).backward()
        want = [x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-10)


def test_lstm_refuses_an_empty_sequence_as_torch():
    with pytest.raises(RuntimeError, match="^Expected sequence length to be larger than 0 in RNN$"):
        tl.nn.LSTM(3, 4)(tl.randn(0, 2, 3))



@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_a_decoding_loop_of_one_step_calls_gives_the_whole_sequence_run(kind):
    """A sampling loop feeds one step at a time, carrying the state (the pytorch-tutorial language model's
    1000 words): each call's one-step loop (W_hh's transposed view, products halved after for the LSTM's gates)
    gives the outputs of one call over the whole sequence (a contiguous copy of W_hh^T), float32 to rounding."""
    tl.manual_seed(5)
    m = getattr(tl.nn, kind)(8, 32, batch_first=True)
    x = tl.randn(2, 12, 8)
    with tl.no_grad():
        whole, _ = m(x)
        state, steps = None, []
        for t in range(12):
            out, state = m(x[:, t:t + 1], state)
            steps.append(out)
    np.testing.assert_allclose(tl.cat(steps, 1).numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)


def test_recurrent_output_node_names_are_torchs_cpu_names():
    """print(lstm_out) shows torch's CPU node: the oneDNN layer for a float32 LSTM (pytorch/tutorials'
    sequence_models_tutorial), the stacked steps for float64, projections, GRU and RNN; the final states are
    stacked in every case."""
    x = tl.randn(5, 1, 3)
    out, (h, c) = nn.LSTM(3, 3)(x)
    assert out.grad_fn.name() == "MkldnnRnnLayerBackward0" and h.grad_fn.name() == "StackBackward0"
    assert "grad_fn=<MkldnnRnnLayerBackward0>" in repr(out)
    out, _ = nn.LSTM(3, 3, num_layers=2)(x)
    assert out.grad_fn.name() == "MkldnnRnnLayerBackward0"
    out, _ = nn.LSTM(3, 3).double()(x.double())
    assert out.grad_fn.name() == "StackBackward0"
    out, _ = nn.LSTM(3, 3, proj_size=2)(x)
    assert out.grad_fn.name() == "StackBackward0"
    for cls in (nn.GRU, nn.RNN):
        out, h = cls(3, 3)(x)
        assert out.grad_fn.name() == "StackBackward0" and h.grad_fn.name() == "StackBackward0"
