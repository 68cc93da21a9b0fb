"""nn.utils beyond clipping and pruning: packed sequences (nn.utils.rnn) and the recurrent layers on them,
against NumPy references and identities (a packed batch through an RNN is each sequence run alone), with
gradcheck in float64."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.autograd import gradcheck
from tensorlib.nn.utils import rnn as R
from tensorlib.nn.utils.spectral_norm import SpectralNorm
from tensorlib.nn.utils.weight_norm import _weight_norm

rng = np.random.default_rng(0)


def npy(t):
    return t.detach().cpu().numpy()


# --- nn.utils.rnn -----------------------------------------------------------------------------------------------

def test_pack_padded_sequence_rows_and_batch_sizes_match_a_numpy_packing():
    x = rng.standard_normal((5, 4, 2))          # (T, B, *)
    lengths = [3, 5, 1, 4]
    p = R.pack_padded_sequence(tl.tensor(x), lengths, enforce_sorted=False)
    order = np.argsort(-np.asarray(lengths), kind="stable")
    ref = [x[t, b] for t in range(5) for b in order if lengths[b] > t]
    np.testing.assert_array_equal(npy(p.data), np.stack(ref))
    assert p.batch_sizes.tolist() == [4, 3, 3, 2, 1] and p.batch_sizes.dtype == tl.int64
    assert p.sorted_indices.tolist() == order.tolist()
    assert p.unsorted_indices.tolist() == np.argsort(order).tolist()
    assert isinstance(p, tuple) and p._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")


@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_packed_sequence_inverts_the_packing_with_padding_value_and_total_length(batch_first):
    x = rng.standard_normal((4, 6, 3) if batch_first else (6, 4, 3))
    lengths = tl.tensor([2, 6, 4, 1])
    p = R.pack_padded_sequence(tl.tensor(x), lengths, batch_first=batch_first, enforce_sorted=False)
    out, ln = R.pad_packed_sequence(p, batch_first=batch_first, padding_value=-7.0, total_length=8)
    assert ln.tolist() == [2, 6, 4, 1]
    ref = np.full((4, 8, 3), -7.0)
    xb = x if batch_first else x.transpose(1, 0, 2)
    for b, n in enumerate([2, 6, 4, 1]):
        ref[b, :n] = xb[b, :n]
    np.testing.assert_array_equal(npy(out), ref if batch_first else ref.transpose(1, 0, 2))


def test_pack_and_pad_carry_gradients_and_pass_gradcheck():
    x = tl.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    p = R.pack_padded_sequence(x, [1, 3, 2, 3], batch_first=True, enforce_sorted=False)
    assert p.data.grad_fn.name() == "PackPaddedSequenceBackward0"
    p.data.sum().backward()
    mask = np.arange(3)[None, :] < np.array([1, 3, 2, 3])[:, None]
    np.testing.assert_array_equal(npy(x.grad), np.broadcast_to(mask[:, :, None], (4, 3, 2)).astype(float))
    assert gradcheck(lambda a: R.pad_packed_sequence(R.pack_padded_sequence(a, [3, 2, 2], enforce_sorted=True),
                                                     padding_value=1.5)[0], (tl.tensor(rng.standard_normal((4, 3, 2)),
                                                                                        requires_grad=True),))


def test_pack_padded_sequence_gives_torchs_errors():
    x = tl.randn(4, 3, 2)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order when `enforce_sorted` "
                                           "is True. You can pass `enforce_sorted=False`"):
        R.pack_padded_sequence(x, [2, 3, 1])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        R.pack_padded_sequence(x, [3, 0, 0], enforce_sorted=False)
    with pytest.raises(RuntimeError, match=r"Expected `len\(lengths\)` to be equal to batch_size, but got 2 "
                                           r"\(batch_size=3\)"):
        R.pack_padded_sequence(x, [3, 3])
    with pytest.raises(RuntimeError, match="'lengths' argument should be a 1D CPU int64 tensor, but got 2D cpu Long"):
        R.pack_padded_sequence(x, tl.tensor([[3, 2, 1]]))
    with pytest.raises(ValueError, match="total_length=3 and max sequence length being 4"):
        R.pad_packed_sequence(R.pack_padded_sequence(x, [4, 2, 1]), total_length=3)


def test_pad_sequence_both_sides_and_its_errors():
    a, b = tl.tensor([[1.0, 2.0]]), tl.tensor([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    right = R.pad_sequence([a, b], batch_first=True, padding_value=-1)
    np.testing.assert_array_equal(npy(right), [[[1, 2], [-1, -1], [-1, -1]], [[3, 4], [5, 6], [7, 8]]])
    left = R.pad_sequence([a, b], padding_side="left")
    np.testing.assert_array_equal(npy(left), np.array([[[0, 0], [0, 0], [1, 2]], [[3, 4], [5, 6], [7, 8]]])
                                  .transpose(1, 0, 2))
    with pytest.raises(RuntimeError, match="received an empty list of sequences"):
        R.pad_sequence([])
    with pytest.raises(RuntimeError, match="Expected padding_side to be one of left or right, but got up."):
        R.pad_sequence([a], padding_side="up")
    with pytest.raises(RuntimeError, match="pad_sequence: Expected iterable for input sequences"):
        R.pad_sequence(5)


def test_pack_sequence_unpack_sequence_and_unpad_sequence_round_trip():
    seqs = [tl.tensor(rng.standard_normal((n, 2))) for n in (2, 4, 1)]
    back = R.unpack_sequence(R.pack_sequence(seqs, enforce_sorted=False))
    for s, u in zip(seqs, back):
        np.testing.assert_array_equal(npy(u), npy(s))
    padded = R.pad_sequence(seqs)
    for s, u in zip(seqs, R.unpad_sequence(padded, tl.tensor([2, 4, 1]))):
        np.testing.assert_array_equal(npy(u), npy(s))
    assert padded.shape == (4, 3, 2)        # (torch transposes it in place; tensorlib leaves it)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted"):
        R.pack_sequence(seqs)


def test_packed_sequence_conversions_return_itself_when_nothing_changes():
    p = R.pack_sequence([tl.ones(3, 2), tl.ones(2, 2)])
    assert p.float() is p and p.to(tl.float32) is p and p.cpu() is p
    d = p.double()
    assert d.data.dtype == tl.float64 and d.batch_sizes is p.batch_sizes and isinstance(d, R.PackedSequence)
    assert p.long().data.dtype == tl.int64 and not p.is_cuda
    with pytest.raises(ValueError, match="batch_sizes should always be on CPU"):
        R.PackedSequence(p.data, _FakeDevice())
    assert R.invert_permutation(tl.tensor([2, 0, 1])).tolist() == [1, 2, 0]


class _FakeDevice:
    class device:
        type = "cuda"


# --- recurrent layers on a PackedSequence ---------------------------------------------------------------------

def _layer(kind, **kw):
    tl.manual_seed(0)
    return getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=tl.float64, **kw)


@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"}),
                                     ("LSTM", {"proj_size": 2})])
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_batch_through_a_recurrent_layer_is_each_sequence_run_alone(kind, kw, batch_first):
    m = _layer(kind, batch_first=batch_first, **kw)
    lengths = [3, 5, 1, 4]
    x = rng.standard_normal((4, 5, 3) if batch_first else (5, 4, 3))
    H = kw.get("proj_size") or 4
    h0 = rng.standard_normal((4, 4, H))
    c0 = rng.standard_normal((4, 4, 4))
    hx = (tl.tensor(h0), tl.tensor(c0)) if kind == "LSTM" else tl.tensor(h0)
    out, hn = m(R.pack_padded_sequence(tl.tensor(x), lengths, batch_first=batch_first, enforce_sorted=False), hx)
    assert isinstance(out, R.PackedSequence)
    padded, ln = R.pad_packed_sequence(out, batch_first=True)
    assert ln.tolist() == lengths and padded.shape == (4, 5, 2 * H)
    for b, n in enumerate(lengths):
        xb = x[b:b + 1, :n] if batch_first else x[:n, b:b + 1]
        hb = (tl.tensor(h0[:, b:b + 1]), tl.tensor(c0[:, b:b + 1])) if kind == "LSTM" else tl.tensor(h0[:, b:b + 1])
        ob, hnb = m(tl.tensor(xb), hb)
        ob = ob[0] if batch_first else ob[:, 0]
        np.testing.assert_allclose(npy(padded[b, :n]), npy(ob), rtol=0, atol=1e-13)
        assert not npy(padded[b, n:]).any()
        if kind == "LSTM":
            np.testing.assert_allclose(npy(hn[0][:, b]), npy(hnb[0][:, 0]), rtol=0, atol=1e-13)
            np.testing.assert_allclose(npy(hn[1][:, b]), npy(hnb[1][:, 0]), rtol=0, atol=1e-13)
        else:
            np.testing.assert_allclose(npy(hn[:, b]), npy(hnb[:, 0]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_packed_recurrent_layer_passes_gradcheck(kind):
    tl.manual_seed(0)
    m = getattr(nn, kind)(2, 3, bidirectional=True, dtype=tl.float64)
    x = tl.tensor(rng.standard_normal((3, 3, 2)), requires_grad=True)
    h0 = tl.tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)

    def f(x, h0, w):
        hx = (h0, h0 * 0.5) if kind == "LSTM" else h0
        out, hn = m(R.pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False), hx)
        hn = hn[0] if kind == "LSTM" else hn
        return out.data.sum() * 0 + (out.data * out.data).sum() + (hn * w).sum()
    assert gradcheck(f, (x, h0, tl.tensor(rng.standard_normal((2, 3, 3)))))


def test_packed_input_gives_torchs_errors():
    m = nn.GRU(3, 4)
    p = R.pack_sequence([tl.randn(3, 3), tl.randn(2, 3)])
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        m(p, tl.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        m(R.pack_sequence([tl.randn(3, 2)]))


@pytest.mark.cuda
def test_packed_lstm_on_cuda_matches_the_cpu():
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device with CuPy on this machine")
    m = _layer("LSTM")
    x = rng.standard_normal((5, 4, 3))
    res = []
    for dev in ("cpu", "cuda"):
        m.to(dev)
        xt = tl.tensor(x, device=dev, requires_grad=True)
        out, (hn, cn) = m(R.pack_padded_sequence(xt, [3, 5, 1, 4], enforce_sorted=False))
        (R.pad_packed_sequence(out)[0].sum() + hn.sum() + cn.sum()).backward()
        res.append((npy(out.data), npy(hn), npy(xt.grad), npy(m.weight_hh_l1_reverse.grad)))
        m.zero_grad()
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


# --- functional_call, fusions, clipping, skip_init, memory format -------------------------------------------------

def test_functional_call_runs_with_given_tensors_and_restores_the_modules_own():
    lin = nn.Linear(3, 2, dtype=tl.float64)
    w0 = lin.weight
    w = tl.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    x = rng.standard_normal((4, 3))
    out = tl.func.functional_call(lin, {"weight": w}, tl.tensor(x))
    np.testing.assert_allclose(npy(out), x @ npy(w).T + npy(lin.bias), rtol=1e-14)
    out.sum().backward()
    np.testing.assert_allclose(npy(w.grad), np.broadcast_to(x.sum(0), (2, 3)), rtol=1e-14)
    assert lin.weight is w0 and w0.grad is None and lin.bias.grad is not None
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        tl.func.functional_call(lin, [{"weight": w}, {"weight": w}], tl.tensor(x))
    with pytest.raises(RuntimeError, match=r"Error\(s\) in reparametrizing for Linear:\n\tMissing key\(s\): 'bias'\."):
        tl.func.functional_call(lin, {"weight": w}, tl.tensor(x), strict=True)
    with pytest.warns(FutureWarning):
        tl.nn.utils.stateless.functional_call(lin, {}, (tl.tensor(x),))


@pytest.mark.parametrize("transpose", [False, True])
def test_fused_conv_bn_computes_conv_then_eval_batch_norm(transpose):
    tl.manual_seed(0)
    conv = (nn.ConvTranspose2d if transpose else nn.Conv2d)(2, 3, 3, dtype=tl.float64).eval()
    bn = nn.BatchNorm2d(3, dtype=tl.float64).eval()
    bn.running_mean.copy_(tl.tensor(rng.standard_normal(3)))
    bn.running_var.copy_(tl.tensor(rng.uniform(0.5, 2.0, 3)))
    with tl.no_grad():
        bn.weight.copy_(tl.tensor(rng.standard_normal(3)))
    fused = nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    x = tl.tensor(rng.standard_normal((2, 2, 5, 5)))
    np.testing.assert_allclose(npy(fused(x)), npy(bn(conv(x))), rtol=1e-12, atol=1e-12)
    lin, bn1 = nn.Linear(4, 3, bias=False, dtype=tl.float64).eval(), nn.BatchNorm1d(3, dtype=tl.float64).eval()
    bn1.running_var.fill_(2.0)
    x = tl.tensor(rng.standard_normal((5, 4)))
    np.testing.assert_allclose(npy(nn.utils.fuse_linear_bn_eval(lin, bn1)(x)), npy(bn1(lin(x))), rtol=1e-12)


def test_clip_grads_with_norm_scales_by_the_given_norm():
    p = tl.tensor(rng.standard_normal(6), requires_grad=True)
    g = rng.standard_normal(6)
    p.grad = tl.tensor(g)
    nn.utils.clip_grads_with_norm_([p], 1.0, tl.tensor(4.0, dtype=tl.float64))
    np.testing.assert_allclose(npy(p.grad), g * (1.0 / (4.0 + 1e-6)), rtol=1e-15)
    with pytest.warns(FutureWarning, match="clip_grad_norm` is now deprecated"):
        n = nn.utils.clip_grad_norm(p, 100.0)
    np.testing.assert_allclose(float(n), np.linalg.norm(g / (4.0 + 1e-6)), rtol=1e-14)


def test_skip_init_builds_on_the_device_and_weight_format_keeps_values():
    m = nn.utils.skip_init(nn.Linear, 3, 4, bias=False)
    assert m.weight.shape == (4, 3) and m.bias is None
    with pytest.raises(RuntimeError, match="Expected a Module; got"):
        nn.utils.skip_init(int)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.Conv3d(1, 1, 1)))
    before = npy(net[0].weight).copy()
    assert nn.utils.convert_conv2d_weight_memory_format(net, tl.channels_last) is net
    assert nn.utils.convert_conv3d_weight_memory_format(net, tl.channels_last_3d) is net
    np.testing.assert_array_equal(npy(net[0].weight), before)


# --- weight_norm, spectral_norm, parametrize ----------------------------------------------------------------------

def _linear64(i=3, o=4):
    tl.manual_seed(0)
    return nn.Linear(i, o, dtype=tl.float64)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_both_apis_compute_g_times_v_over_its_norm(dim):
    for parametrized in (False, True):
        m = _linear64()
        w = npy(m.weight).copy()
        if parametrized:
            nn.utils.parametrizations.weight_norm(m, dim=dim)
            g, v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
        else:
            with pytest.warns(FutureWarning):
                nn.utils.weight_norm(m, dim=dim)
            g, v = m.weight_g, m.weight_v
        axes = None if dim is None else tuple(k for k in range(2) if k != dim)
        np.testing.assert_allclose(npy(g), np.sqrt((w * w).sum(axis=axes, keepdims=dim is not None)), rtol=1e-14)
        np.testing.assert_allclose(npy(m.weight), w, rtol=1e-14)       # g = ||v|| at the start: w unchanged
        with tl.no_grad():
            g.mul_(2.0)
        x = tl.tensor(rng.standard_normal((2, 3)))
        np.testing.assert_allclose(npy(m(x)), npy(x) @ (2 * w).T + npy(m.bias), rtol=1e-13)
        assert gradcheck(lambda g_, v_: _weight_norm(v_, g_, -1 if dim is None else dim),
                         (g.detach().requires_grad_(), v.detach().requires_grad_()))


def test_spectral_norm_divides_by_the_largest_singular_value_and_is_fixed_in_eval():
    m = _linear64(6, 5)
    w = npy(m.weight).copy()
    nn.utils.parametrizations.spectral_norm(m, n_power_iterations=50)
    x = tl.tensor(rng.standard_normal((2, 6)))
    m(x)                                        # 15 iterations at registration, 50 more here
    np.testing.assert_allclose(npy(m.weight), w / np.linalg.svd(w, compute_uv=False)[0], rtol=1e-10)
    m.eval()
    u = npy(m.parametrizations.weight[0]._u).copy()
    m(x)
    np.testing.assert_array_equal(npy(m.parametrizations.weight[0]._u), u)
    h = _linear64(6, 5)
    nn.utils.spectral_norm(h, n_power_iterations=80)
    h(x)
    np.testing.assert_allclose(npy(h.weight), w / np.linalg.svd(w, compute_uv=False)[0], rtol=1e-10)
    h.eval()
    assert gradcheck(lambda w_: SpectralNorm("weight").compute_weight(_Holder(w_, h.weight_u, h.weight_v), False),
                     (tl.tensor(w, requires_grad=True),))


class _Holder:
    def __init__(self, w, u, v):
        self.weight_orig, self.weight_u, self.weight_v = w, u, v


def test_parametrize_register_remove_cache_copy_and_pickle():
    import copy
    import pickle
    from tensorlib.nn.utils import parametrize as P

    class Double(nn.Module):
        def forward(self, X):
            return 2 * X

        def right_inverse(self, A):
            return A / 2

    m = _linear64()
    w = npy(m.weight).copy()
    P.register_parametrization(m, "weight", Double())
    assert type(m).__name__ == "ParametrizedLinear" and type(nn.Linear(2, 2)) is nn.Linear
    np.testing.assert_allclose(npy(m.weight), w, rtol=1e-15)     # right_inverse halved the original
    np.testing.assert_allclose(npy(m.parametrizations.weight.original), w / 2, rtol=1e-15)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    with P.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    c = copy.deepcopy(m)
    np.testing.assert_array_equal(npy(c.weight), npy(m.weight))
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules is only supported through "
                                           "state_dict()"):
        pickle.dumps(m)
    P.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(npy(m.weight), w, rtol=1e-15)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(m, "weight")


def test_parametrized_weight_norm_loads_a_hook_weight_norm_state_dict():
    old = _linear64()
    w = npy(old.weight).copy()
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(old)
    with tl.no_grad():
        old.weight_g.mul_(3.0)
    new = nn.Linear(3, 4, dtype=tl.float64)
    nn.utils.parametrizations.weight_norm(new)
    sd = old.state_dict()
    new.load_state_dict(sd)
    assert list(sd) == ["bias", "weight_g", "weight_v"]       # the caller's dict is left as it was
    np.testing.assert_allclose(npy(new.weight), 3 * w, rtol=1e-14)


@pytest.mark.parametrize("shape,orthogonal_map,triv", [((5, 5), None, True), ((5, 5), "cayley", True),
                                                        ((6, 3), None, True), ((3, 6), "householder", False),
                                                        ((6, 3), "householder", False), ((3, 6), "cayley", True),
                                                        ((6, 3), "matrix_exp", True)])
def test_orthogonal_parametrization_keeps_the_weight_orthogonal(shape, orthogonal_map, triv):
    """parametrizations.orthogonal: orthonormal columns (rows when wide) at registration and after an optimizer
    step on the original; a square orthogonal weight (or, without the trivialisation, any weight's QR Q) is kept."""
    from tensorlib.nn.utils import parametrizations as P
    tl.manual_seed(0)
    m = nn.Linear(shape[1], shape[0]).double()
    w0 = m.weight.detach().numpy().copy()
    P.orthogonal(m, orthogonal_map=orthogonal_map, use_trivialization=triv)
    assert "parametrizations.weight.original" in m.state_dict()
    assert ("parametrizations.weight.0.base" in m.state_dict()) == triv

    def orthonormal():
        w = m.weight.detach().numpy()
        q = w if shape[0] >= shape[1] else w.T
        np.testing.assert_allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-12)
    orthonormal()
    if shape[0] == shape[1] or not triv:     # deterministic: the weight's own Q with diag(R) >= 0
        q, r = np.linalg.qr(w0 if shape[0] >= shape[1] else w0.T)
        q = q * np.sign(np.diag(r))
        np.testing.assert_allclose(m.weight.detach().numpy(), q if shape[0] >= shape[1] else q.T, atol=1e-12)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    (m(tl.randn(4, shape[1], dtype=tl.float64)) ** 2).sum().backward()
    opt.step()
    orthonormal()


def test_orthogonal_errors_and_geqrf():
    from tensorlib.nn.utils import parametrizations as P
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."):
        P.orthogonal(nn.Linear(3, 3), "bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp"'):
        P.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    a = np.random.default_rng(0).standard_normal((2, 5, 3))
    raw, tau = tl.geqrf(tl.tensor(a))
    q = tl.linalg.householder_product(raw, tau).numpy()
    np.testing.assert_allclose(q @ np.triu(raw.numpy()[..., :3, :]), a, atol=1e-12)     # A = QR
    with pytest.raises(NotImplementedError, match="the derivative for 'geqrf' is not implemented."):
        tl.geqrf(tl.tensor(a, requires_grad=True)).a.sum().backward()
