"""torch.nn.utils' packed sequences, weight and spectral norms, parametrizations, functional_call and the conv/bn
fusions against torch 2.13: float64 values and gradients side by side, state-dict keys, and misuse errors
(class and message)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.nn.utils import rnn as LR

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _l(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _np(t):
    return t.detach().cpu().numpy()


def _same_error(call):
    """call(lib, rnn utils) raises the same exception class and message in torch and tensorlib."""
    got = []
    for lib, mod in ((torch, TR), (tl, LR)):
        with pytest.raises((RuntimeError, ValueError, IndexError, TypeError)) as info:
            call(lib, mod)
        got.append(f"{type(info.value).__name__}: {info.value}")
    assert got[0] == got[1], got


# --- nn.utils.rnn ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_pad_round_trip_values_indices_and_gradients(batch_first, enforce_sorted):
    rng = np.random.default_rng(1)
    lengths = [5, 4, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4, 4]
    x = rng.standard_normal((5, 6, 3) if batch_first else (6, 5, 3))
    w = rng.standard_normal(sum(lengths) * 3).reshape(-1, 3)
    res = []
    for lib, mod, mk in ((torch, TR, _t), (tl, LR, _l)):
        xx = mk(x, True)
        p = mod.pack_padded_sequence(xx, lib.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted)
        out, ln = mod.pad_packed_sequence(p, batch_first=batch_first, padding_value=2.5, total_length=7)
        ((p.data * mk(w)).sum() + (out * out).sum()).backward()
        idx = [None if i is None else i.tolist() for i in (p.sorted_indices, p.unsorted_indices)]
        res.append((_np(p.data), p.batch_sizes.tolist(), idx, _np(out), ln.tolist(), _np(xx.grad)))
        assert p.data.grad_fn.name() == "PackPaddedSequenceBackward0"
    for a, b in zip(*res):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def test_pad_sequence_pack_sequence_unpack_and_unpad_as_torch():
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((n, 2, 3)) for n in (3, 1, 4)]
    for kw in ({}, {"batch_first": True, "padding_value": -1.0}, {"padding_side": "left"},
               {"batch_first": True, "padding_side": "left"}):
        np.testing.assert_array_equal(_np(TR.pad_sequence([_t(s) for s in seqs], **kw)),
                                      _np(LR.pad_sequence([_l(s) for s in seqs], **kw)))
    pt = TR.pack_sequence([_t(s) for s in seqs], enforce_sorted=False)
    pl = LR.pack_sequence([_l(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(_np(pt.data), _np(pl.data))
    assert pt.batch_sizes.tolist() == pl.batch_sizes.tolist()
    for a, b in zip(TR.unpack_sequence(pt), LR.unpack_sequence(pl)):
        np.testing.assert_array_equal(_np(a), _np(b))
    assert pl.double() is pl and pt.double() is pt
    assert type(pl.float()) is LR.PackedSequence and pl.float().data.dtype == tl.float32


@pytest.mark.parametrize("call", [
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), [2, 3, 1]),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), [3, 3, 0]),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), [0, 0, 0], enforce_sorted=False),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), [3, 3]),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), [-1, 2, 1]),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4), [1, 2, 1]),
    lambda lib, m: m.pack_padded_sequence(lib.zeros(4, 3, 2), lib.tensor([[4, 3, 1]])),
    lambda lib, m: m.pad_packed_sequence(m.pack_padded_sequence(lib.zeros(4, 3, 2), [4, 3, 1]), total_length=3),
    lambda lib, m: m.pad_sequence([lib.ones(2, 3), lib.ones(3, 2)]),
    lambda lib, m: m.pad_sequence([]),
    lambda lib, m: m.pad_sequence([lib.ones(2, 3)], padding_side="up"),
    lambda lib, m: m.pad_sequence(5),
    lambda lib, m: m.pack_sequence([lib.ones(2), lib.ones(3)]),
])
def test_rnn_utils_errors_as_torch(call):
    _same_error(call)


@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"}),
                                     ("LSTM", {"proj_size": 2}), ("GRU", {"batch_first": True, "bias": False})])
@pytest.mark.parametrize("with_hx", [False, True])
def test_packed_bidirectional_multilayer_recurrent_layers_match_torch(kind, kw, with_hx):
    """Unsorted lengths (enforce_sorted=False): the packed output, h_n (and c_n) and every gradient to 1e-10."""
    rng = np.random.default_rng(3)
    tm = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, **kw).double()
    lm = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=tl.float64, **kw)
    lm.load_state_dict({k: _l(_np(v)) for k, v in tm.state_dict().items()})
    lengths = [3, 5, 1, 4]
    bf = kw.get("batch_first", False)
    x = rng.standard_normal((4, 5, 3) if bf else (5, 4, 3))
    h0 = rng.standard_normal((4, 4, kw.get("proj_size") or 4))
    c0 = rng.standard_normal((4, 4, 4))
    res = []
    for lib, mod, m, mk in ((torch, TR, tm, _t), (tl, LR, lm, _l)):
        xx, hh, cc = mk(x, True), mk(h0, True), mk(c0, True)
        p = mod.pack_padded_sequence(xx, lengths, batch_first=bf, enforce_sorted=False)
        hx = ((hh, cc) if kind == "LSTM" else hh) if with_hx else None
        out, hn = m(p, hx)
        assert isinstance(out, mod.PackedSequence)
        hn, cn = hn if kind == "LSTM" else (hn, None)
        wo = mk(np.cos(np.arange(out.data.numel())).reshape(tuple(out.data.shape)))
        loss = (out.data * wo).sum() + (hn * mk(np.sin(np.arange(hn.numel())).reshape(tuple(hn.shape)))).sum()
        if cn is not None:
            loss = loss + (cn * cn).sum()
        loss.backward()
        got = [_np(out.data), _np(hn), _np(xx.grad)] + ([_np(cn)] if cn is not None else [])
        if with_hx:
            got += [_np(hh.grad)] + ([_np(cc.grad)] if kind == "LSTM" else [])
        got += [_np(p.grad) for _, p in sorted(m.named_parameters())]
        assert out.batch_sizes.tolist() == [4, 3, 3, 2, 1]
        res.append(got)
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)


# --- functional_call, fusions, clipping, skip_init ------------------------------------------------------------

def _pair(make_torch, make_tl):
    """A torch module and a tensorlib one with the torch one's state (float64)."""
    tm = make_torch(torch.nn).double()
    lm = make_tl(tl.nn).double()
    lm.load_state_dict({k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()})
    return tm, lm


def test_functional_call_values_gradients_tied_weights_and_errors_as_torch():
    rng = np.random.default_rng(4)

    def make(nn_):
        m = nn_.Sequential(nn_.Linear(3, 4), nn_.BatchNorm1d(4), nn_.Linear(4, 4))
        m.add_module("tied", nn_.Linear(4, 4))
        m.tied.weight = m[2].weight
        return m
    tm, lm = _pair(make, make)
    lm.tied.weight = lm[2].weight
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((4, 4))
    got = []
    for lib, m, mk in ((torch, tm, _t), (tl, lm, _l)):
        ww = mk(w, True)
        out = lib.func.functional_call(m, ({"2.weight": ww}, {"1.running_mean": mk(np.ones(4))}), (mk(x),))
        out = m.tied(out)
        out.sum().backward()
        untied = lib.func.functional_call(m, {"2.weight": ww}, mk(x), tie_weights=False)
        got.append((_np(out), _np(ww.grad), _np(m[1].running_mean), _np(untied), m[2].weight.grad is None))
        with pytest.raises(RuntimeError) as e:
            lib.func.functional_call(m, {"2.weight": ww, "nope": ww}, (mk(x),), strict=True)
        got.append(str(e.value))
        with pytest.raises(ValueError) as e:
            lib.func.functional_call(m, {"2.weight": ww, "tied.weight": mk(w)}, (mk(x),))
        got.append(str(e.value))
        with pytest.warns(FutureWarning, match="stateless.functional_call` is deprecated"):
            lib.nn.utils.stateless.functional_call(m, {}, (mk(x),))
    for a, b in zip(got[:len(got) // 2], got[len(got) // 2:]):
        if isinstance(a, tuple):
            for u, v in zip(a, b):
                np.testing.assert_allclose(v, u, rtol=0, atol=1e-12)
        else:
            assert a == b


@pytest.mark.parametrize("kind", ["conv2d", "conv_transpose2d", "conv1d_no_bias", "linear"])
def test_fusions_match_torch(kind):
    rng = np.random.default_rng(5)
    make = {"conv2d": lambda n: n.Conv2d(2, 3, 3), "conv_transpose2d": lambda n: n.ConvTranspose2d(2, 3, 3),
            "conv1d_no_bias": lambda n: n.Conv1d(2, 3, 3, bias=False), "linear": lambda n: n.Linear(4, 3)}[kind]
    bn = {"conv2d": "BatchNorm2d", "conv_transpose2d": "BatchNorm2d"}.get(kind, "BatchNorm1d")
    tc, lc = _pair(make, make)
    tb, lb = _pair(lambda n: getattr(n, bn)(3), lambda n: getattr(n, bn)(3))
    stats = {"running_mean": rng.standard_normal(3), "running_var": rng.uniform(0.5, 2, 3),
             "weight": rng.standard_normal(3), "bias": rng.standard_normal(3)}
    tb.load_state_dict({**tb.state_dict(), **{k: _t(v) for k, v in stats.items()}})
    lb.load_state_dict({**lb.state_dict(), **{k: _l(v) for k, v in stats.items()}})
    for m in (tc, lc, tb, lb):
        m.eval()
    if kind == "linear":
        ft, fl = torch.nn.utils.fuse_linear_bn_eval(tc, tb), tl.nn.utils.fuse_linear_bn_eval(lc, lb)
    else:
        tr = kind == "conv_transpose2d"
        ft, fl = torch.nn.utils.fuse_conv_bn_eval(tc, tb, tr), tl.nn.utils.fuse_conv_bn_eval(lc, lb, tr)
    for k, v in ft.state_dict().items():
        np.testing.assert_allclose(_np(fl.state_dict()[k]), _np(v), rtol=0, atol=1e-14)
    assert isinstance(fl.weight, tl.nn.Parameter) and fl is not lc
    x = rng.standard_normal({"linear": (2, 4), "conv1d_no_bias": (2, 2, 6)}.get(kind, (2, 2, 5, 5)))
    np.testing.assert_allclose(_np(fl(_l(x))), _np(lb(lc(_l(x)))), rtol=0, atol=1e-12)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        tl.nn.utils.fuse_conv_bn_eval(lc.train(), lb)


def test_clip_grads_with_norm_and_clip_grad_norm_as_torch():
    rng = np.random.default_rng(6)
    gs = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    got = []
    for lib, mk in ((torch, _t), (tl, _l)):
        ps = [mk(g, True) for g in gs]
        for p, g in zip(ps, gs):
            p.grad = mk(g)
        total = lib.nn.utils.get_total_norm([p.grad for p in ps], 3.0)
        lib.nn.utils.clip_grads_with_norm_(ps, 0.5, total)
        with pytest.warns(FutureWarning, match="`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                                               "`torch.nn.utils.clip_grad_norm_`."):
            n2 = lib.nn.utils.clip_grad_norm(ps, 0.25)
        with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
            lib.nn.utils.clip_grad_norm_((p for p in []), 1.0)
        got.append([float(total), float(n2)] + [_np(p.grad) for p in ps])
    for a, b in zip(*got):
        np.testing.assert_allclose(b, a, rtol=1e-14)


def test_skip_init_and_weight_memory_format_as_torch():
    m = tl.nn.utils.skip_init(tl.nn.Linear, 3, 4, dtype=tl.float64)
    assert m.weight.shape == (4, 3) and m.weight.dtype == tl.float64 and m.weight.device.type == "cpu"
    for lib in (torch, tl):
        with pytest.raises(RuntimeError, match="Module must support a 'device' arg to skip initialization"):
            lib.nn.utils.skip_init(lib.nn.Sequential)
    tm, lm = _pair(lambda n: n.Sequential(n.Conv2d(2, 3, 3), n.Linear(2, 2)),
                   lambda n: n.Sequential(n.Conv2d(2, 3, 3), n.Linear(2, 2)))
    w = lm[0].weight
    assert tl.nn.utils.convert_conv2d_weight_memory_format(lm, tl.channels_last) is lm
    torch.nn.utils.convert_conv2d_weight_memory_format(tm, torch.channels_last)
    assert lm[0].weight is w and lm[0].weight.data is not None
    np.testing.assert_array_equal(_np(lm[0].weight), _np(tm[0].weight))


# --- weight_norm, spectral_norm, parametrize ----------------------------------------------------------------------

def _load_torch_state(lm, tm):
    lm.load_state_dict({k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()})


def _grads(m):
    return {n: _np(p.grad) for n, p in m.named_parameters() if p.grad is not None}


def _same_run(tm, lm, x, steps=2):
    """`steps` forward/backward passes of both (training mode unless set), outputs, gradients and the state
    dicts (power iteration buffers) equal to 1e-12."""
    for _ in range(steps):
        tm.zero_grad()
        lm.zero_grad()
        ot, ol = tm(_t(x)), lm(_l(x))
        np.testing.assert_allclose(_np(ol), _np(ot), rtol=0, atol=1e-12)
        (ot * ot).sum().backward()
        (ol * ol).sum().backward()
        gt, gl = _grads(tm), _grads(lm)
        assert sorted(gt) == sorted(gl)
        for k in gt:
            np.testing.assert_allclose(gl[k], gt[k], rtol=1e-12, atol=1e-12)
        st, sl = tm.state_dict(), lm.state_dict()
        assert list(st) == list(sl)
        for k in st:
            np.testing.assert_allclose(_np(sl[k]), _np(st[k]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_hook_weight_norm_keys_values_gradients_and_removal_as_torch(dim):
    tm, lm = _pair(lambda n: n.Conv2d(2, 3, 3), lambda n: n.Conv2d(2, 3, 3))
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated in favor of "
                                           "`torch.nn.utils.parametrizations.weight_norm`."):
        tl.nn.utils.weight_norm(lm, dim=dim)
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(tm, dim=dim)
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert tuple(lm.weight_g.shape) == tuple(tm.weight_g.shape)
    _same_run(tm, lm, np.random.default_rng(7).standard_normal((2, 2, 5, 5)))
    torch.nn.utils.remove_weight_norm(tm)
    tl.nn.utils.remove_weight_norm(lm)
    assert list(lm.state_dict()) == list(tm.state_dict())
    np.testing.assert_allclose(_np(lm.weight), _np(tm.weight), rtol=0, atol=1e-14)
    assert isinstance(lm.weight, tl.nn.Parameter)
    for lib, m in ((torch, tm), (tl, lm)):
        with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
            lib.nn.utils.remove_weight_norm(m)


@pytest.mark.parametrize("make", [lambda n: n.Linear(5, 4), lambda n: n.ConvTranspose2d(3, 2, 3)])
def test_hook_spectral_norm_power_iteration_eval_and_removal_as_torch(make):
    tm, lm = _pair(make, make)
    torch.nn.utils.spectral_norm(tm)
    tl.nn.utils.spectral_norm(lm)
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    _load_torch_state(lm, tm)           # u and v start random: torch's
    shape = (3, 5) if isinstance(tm, torch.nn.Linear) else (1, 3, 4, 4)
    x = np.random.default_rng(8).standard_normal(shape)
    _same_run(tm, lm, x, steps=3)
    tm.eval()
    lm.eval()
    _same_run(tm, lm, x, steps=1)       # no power iteration in eval mode: u, v as they were
    torch.nn.utils.remove_spectral_norm(tm)
    tl.nn.utils.remove_spectral_norm(lm)
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(_np(lm.weight), _np(tm.weight), rtol=0, atol=1e-14)
    for lib, m in ((torch, tm), (tl, lm)):
        with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in"):
            lib.nn.utils.remove_spectral_norm(m)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"):
        tl.nn.utils.spectral_norm(tl.nn.Linear(2, 2), n_power_iterations=0)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_parametrized_weight_norm_keys_values_gradients_and_old_checkpoints_as_torch(dim):
    tm, lm = _pair(lambda n: n.Linear(3, 4), lambda n: n.Linear(3, 4))
    P = torch.nn.utils.parametrizations
    P.weight_norm(tm, dim=dim)
    tl.nn.utils.parametrizations.weight_norm(lm, dim=dim)
    assert type(lm).__name__ == type(tm).__name__ == "ParametrizedLinear"
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "parametrizations.weight.original0",
                                                              "parametrizations.weight.original1"]
    _same_run(tm, lm, np.random.default_rng(9).standard_normal((2, 3)))
    old, _ = _pair(lambda n: n.Linear(3, 4), lambda n: n.Linear(3, 4))
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(old, dim=dim)
    tm.load_state_dict(old.state_dict())    # the hook-based weight_norm's keys, converted by the load pre-hook
    _load_torch_state(lm, old)
    np.testing.assert_allclose(_np(lm.weight), _np(tm.weight), rtol=0, atol=1e-14)
    for leave in (True, False):
        a, b = _pair(lambda n: n.Linear(3, 4), lambda n: n.Linear(3, 4))
        P.weight_norm(a, dim=dim)
        tl.nn.utils.parametrizations.weight_norm(b, dim=dim)
        if leave:
            torch.nn.utils.parametrize.remove_parametrizations(a, "weight")
            tl.nn.utils.parametrize.remove_parametrizations(b, "weight")
            assert type(b) is tl.nn.Linear and list(b.state_dict()) == list(a.state_dict())
            np.testing.assert_allclose(_np(b.weight), _np(a.weight), rtol=0, atol=1e-14)
        else:
            for lib, m in ((torch, a), (tl, b)):
                with pytest.raises(ValueError, match="Cannot leave unparametrized"):
                    lib.nn.utils.parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)


def test_parametrized_spectral_norm_training_eval_and_torch_checkpoints():
    for make in (lambda n: n.Linear(5, 4), lambda n: n.Conv2d(2, 3, 3), lambda n: n.ConvTranspose1d(2, 3, 3)):
        tm, lm = _pair(make, make)
        torch.nn.utils.parametrizations.spectral_norm(tm)
        tl.nn.utils.parametrizations.spectral_norm(lm)
        assert list(lm.state_dict()) == list(tm.state_dict())
        assert "parametrizations.weight.0._u" in lm.state_dict()
        _load_torch_state(lm, tm)
        shape = {torch.nn.Linear: (3, 5), torch.nn.Conv2d: (1, 2, 5, 5)}.get(type(tm).__bases__[0], (1, 2, 6))
        x = np.random.default_rng(10).standard_normal(shape)
        _same_run(tm, lm, x, steps=3)
        tm.eval()
        lm.eval()
        _same_run(tm, lm, x, steps=1)


class _Sym:
    """A parametrization (symmetric matrix from the upper triangle) and its right inverse, in either library."""

    @staticmethod
    def make(lib):
        class Symmetric(lib.nn.Module):
            def forward(self, X):
                return X.triu() + X.triu(1).transpose(-1, -2)

            def right_inverse(self, A):
                return A.triu()
        return Symmetric()

    @staticmethod
    def drop(lib):
        class Drop(lib.nn.Module):
            def forward(self, X):
                return X[1:]
        return Drop()


def test_register_parametrization_chains_assignment_cached_and_errors_as_torch():
    rng = np.random.default_rng(11)
    w, a, xs = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    got = []
    for lib, mk in ((torch, _t), (tl, _l)):
        m = lib.nn.Linear(3, 3).double()
        with lib.no_grad():
            m.weight.copy_(mk(w))
            m.bias.copy_(mk(w[0]))
        P = lib.nn.utils.parametrize
        P.register_parametrization(m, "weight", _Sym.make(lib))
        P.register_parametrization(m, "weight", _Sym.make(lib))       # a chain of two
        assert P.is_parametrized(m) and P.is_parametrized(m, "weight") and not P.is_parametrized(m, "bias")
        assert P.type_before_parametrizations(m) is lib.nn.Linear
        m.weight = mk(a + a.T)              # through the right inverses
        with P.cached():
            same = m.weight is m.weight
        x = mk(xs, True)
        (m(x) ** 2).sum().backward()
        errs = []
        other = lib.nn.Linear(3, 2)
        for call in (lambda: P.register_parametrization(m, "nope", _Sym.make(lib)),
                     lambda: P.remove_parametrizations(m, "bias"),
                     lambda: P.register_parametrization(other, "weight", _Sym.drop(lib))):
            with pytest.raises(ValueError) as e:
                call()
            errs.append(str(e.value).replace(repr(m), "M").replace(repr(other), "O").replace(lib.__name__ + ".", ""))
        got.append((_np(m.weight), _np(m.parametrizations.weight.original), _np(x.grad),
                    _np(m.parametrizations.weight.original.grad), same, list(m.state_dict()), errs))
        P.remove_parametrizations(m, "weight", leave_parametrized=False)
        got.append(_np(m.weight))
    for u, v in zip(got[0], got[2]):
        if isinstance(u, np.ndarray):
            np.testing.assert_allclose(v, u, rtol=0, atol=1e-12)
        else:
            assert u == v
    np.testing.assert_allclose(got[3], got[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,orthogonal_map,triv", [((5, 5), None, True), ((5, 5), "cayley", True),
                                                        ((6, 3), None, True), ((3, 6), "householder", False),
                                                        ((6, 3), "householder", False), ((4, 4), "matrix_exp", True),
                                                        ((6, 3), "matrix_exp", True), ((3, 6), "cayley", True)])
def test_orthogonal_against_torch(shape, orthogonal_map, triv):
    """parametrizations.orthogonal: the same state-dict keys; the initial weight equal where it is deterministic
    (square, or no trivialisation); with torch's originals (and base) loaded, the weight and the original's
    gradient within 1e-12."""
    from torch.nn.utils import parametrizations as TP
    from tensorlib.nn.utils import parametrizations as LP
    tm = torch.nn.Linear(shape[1], shape[0]).double()
    lm = tl.nn.Linear(shape[1], shape[0]).double()
    lm.weight.data = tl.tensor(tm.weight.detach().numpy().copy())
    lm.bias.data = tl.tensor(tm.bias.detach().numpy().copy())
    TP.orthogonal(tm, orthogonal_map=orthogonal_map, use_trivialization=triv)
    LP.orthogonal(lm, orthogonal_map=orthogonal_map, use_trivialization=triv)
    if shape[0] == shape[1] or not triv:
        np.testing.assert_allclose(lm.weight.detach().numpy(), tm.weight.detach().numpy(), atol=1e-12)
    sd = {k: tl.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()}
    assert sorted(sd) == sorted(lm.state_dict())
    lm.load_state_dict(sd)
    x = np.random.default_rng(1).standard_normal((2, shape[1]))
    (tm(torch.from_numpy(x)) ** 2).sum().backward()
    (lm(tl.tensor(x)) ** 2).sum().backward()
    np.testing.assert_allclose(lm.weight.detach().numpy(), tm.weight.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(lm.parametrizations.weight.original.grad.numpy(),
                               tm.parametrizations.weight.original.grad.numpy(), atol=1e-12)


def test_geqrf_against_torch():
    a = np.random.default_rng(0).standard_normal((2, 5, 3))
    ours, theirs = tl.geqrf(tl.tensor(a)), torch.geqrf(torch.from_numpy(a))
    np.testing.assert_allclose(ours.a.numpy(), theirs.a.numpy(), atol=1e-14)
    np.testing.assert_allclose(ours.tau.numpy(), theirs.tau.numpy(), atol=1e-14)
    for bad in (lambda L: L.geqrf(L.ones(3)), lambda L: L.geqrf(L.ones(3, 3, dtype=L.int64))):
        errs = []
        for L in (tl, torch):
            with pytest.raises(Exception) as info:
                bad(L)
            errs.append((type(info.value), str(info.value)))
        assert errs[0] == errs[1]
