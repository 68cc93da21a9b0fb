"""Issue 13's last nn gaps against torch 2.13 (float64 values and gradients, misuse errors): interpolate's
bicubic / area / nearest-exact / antialias / lanczos modes, grid_sample bicubic and 5-d, the adaptive and
fractional max pools with indices (NaN and tie rules), AdaptiveLogSoftmaxWithLoss, F.multi_head_attention_forward,
linear_cross_entropy / LinearCrossEntropyLoss and CrossMapLRN2d."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _same_error(call):
    """call(lib, functional) raises the same exception class and message in torch and tensorlib."""
    got = []
    for lib, f in ((torch, TF), (tl, F)):
        with pytest.raises((RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)) as info:
            call(lib, f)
        got.append(f"{type(info.value).__name__}: {info.value}")
    assert got[0] == got[1], got


def test_interp():
    rng = np.random.default_rng(0)
    cases = []
    for shape in [(2, 3, 7), (2, 3, 7, 9), (1, 2, 5, 6, 7)]:
        nd = len(shape) - 2
        for mode in ["nearest", "nearest-exact", "area", "linear", "bilinear", "trilinear", "bicubic"]:
            if (
                mode in ("linear", "bilinear", "trilinear", "bicubic")
                and {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}[mode] != nd
            ):
                continue
            for kw in [
                dict(size=tuple([4] * nd)),
                dict(size=tuple([13] * nd)),
                dict(scale_factor=1.7),
                dict(scale_factor=0.6),
                dict(scale_factor=2.5, recompute_scale_factor=True),
            ]:
                acs = [None] if mode in ("nearest", "nearest-exact", "area") else [False, True]
                aas = [False, True] if mode in ("bilinear", "bicubic") else [False]
                for ac in acs:
                    for aa in aas:
                        cases.append((shape, mode, kw, ac, aa))
    for shape in [(2, 3, 17, 15)]:
        for kw in [dict(size=(5, 6)), dict(size=(30, 31)), dict(scale_factor=0.37)]:
            cases.append((shape, "lanczos", kw, False, True))
    bad = 0
    for shape, mode, kw, ac, aa in cases:
        x = rng.standard_normal(shape)
        tx = torch.tensor(x, requires_grad=True)
        lx = tl.tensor(x, requires_grad=True)
        to = TF.interpolate(tx, mode=mode, align_corners=ac, antialias=aa, **kw)
        lo = F.interpolate(lx, mode=mode, align_corners=ac, antialias=aa, **kw)
        g = rng.standard_normal(tuple(to.shape))
        to.backward(torch.tensor(g))
        lo.backward(tl.tensor(g))
        if tuple(lo.shape) != tuple(to.shape):
            print("SHAPE", shape, mode, kw, ac, aa, lo.shape, to.shape)
            bad += 1
            continue
        e = np.abs(lo.detach().numpy() - to.detach().numpy()).max()
        eg = np.abs(lx.grad.numpy() - tx.grad.numpy()).max()
        if e > 1e-9 or eg > 1e-9:
            print("DIFF", shape, mode, kw, ac, aa, e, eg)
            bad += 1
    assert bad == 0


def test_gs():
    rng = np.random.default_rng(1)
    bad = n = 0
    for shape, gshape in [((2, 3, 5, 6), (2, 4, 7, 2)), ((2, 2, 4, 5, 6), (2, 3, 4, 5, 3))]:
        for mode in ["bilinear", "nearest", "bicubic"]:
            if mode == "bicubic" and len(shape) == 5:
                continue
            for pm in ["zeros", "border", "reflection"]:
                for ac in [False, True]:
                    x = rng.standard_normal(shape)
                    g = rng.uniform(-1.3, 1.3, gshape)
                    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g, requires_grad=True)
                    lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(g, requires_grad=True)
                    to = TF.grid_sample(tx, tg, mode=mode, padding_mode=pm, align_corners=ac)
                    lo = F.grid_sample(lx, lg, mode=mode, padding_mode=pm, align_corners=ac)
                    go = rng.standard_normal(tuple(to.shape))
                    to.backward(torch.tensor(go))
                    lo.backward(tl.tensor(go))
                    n += 1
                    e = np.abs(lo.detach().numpy() - to.detach().numpy()).max()
                    ex = np.abs(lx.grad.numpy() - tx.grad.numpy()).max()
                    eg = np.abs((lg.grad.numpy() if lg.grad is not None else 0) - tg.grad.numpy()).max()
                    if max(e, ex, eg) > 1e-9:
                        bad += 1
                        print("DIFF", shape, mode, pm, ac, e, ex, eg)
    assert bad == 0
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(tl.zeros(1, 1, 2, 2, 2), tl.zeros(1, 1, 1, 1, 3), mode="bicubic", align_corners=False)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        TF.grid_sample(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 1, 3), mode="bicubic", align_corners=False)


def test_amp():
    rng = np.random.default_rng(2)
    bad = n = 0
    for fn, shape, os_ in [
        ("adaptive_max_pool3d", (2, 3, 5, 7, 6), (2, 3, 4)),
        ("adaptive_max_pool3d", (3, 4, 5, 6), (4, None, 5)),
        ("adaptive_max_pool2d", (2, 3, 7, 9), (3, 4)),
        ("adaptive_max_pool2d", (3, 7, 9), 5),
        ("adaptive_max_pool1d", (2, 3, 11), 4),
        ("adaptive_max_pool3d", (1, 1, 3, 3, 3), 5),
    ]:
        for special in [None, "nan", "tie", "-inf"]:
            x = rng.standard_normal(shape)
            if special == "nan":
                x.flat[rng.integers(0, x.size, 5)] = np.nan
            if special == "tie":
                x = np.round(x)
            if special == "-inf":
                x[:] = -np.inf
            tx = torch.tensor(x, requires_grad=True)
            lx = tl.tensor(x, requires_grad=True)
            to, ti = getattr(TF, fn)(tx, os_, return_indices=True)
            lo, li = getattr(F, fn)(lx, os_, return_indices=True)
            g = rng.standard_normal(tuple(to.shape))
            to.backward(torch.tensor(g))
            lo.backward(tl.tensor(g))
            n += 1
            ok = (
                np.array_equal(li.numpy(), ti.numpy())
                and np.allclose(lo.detach().numpy(), to.detach().numpy(), equal_nan=True)
                and np.allclose(lx.grad.numpy(), tx.grad.numpy())
                and li.dtype == tl.int64
            )
            if not ok:
                bad += 1
                print("DIFF", fn, shape, os_, special)
    assert bad == 0


def test_frac():
    rng = np.random.default_rng(5)
    bad = n = 0
    for nd, shape, k, kw in [
        (2, (2, 3, 9, 11), 2, dict(output_size=(5, 6))),
        (2, (2, 3, 9, 11), (3, 2), dict(output_ratio=(0.5, 0.5))),
        (2, (3, 8, 8), 3, dict(output_size=4)),
        (2, (2, 3, 9, 11), 2, dict(output_size=(1, 10))),
        (3, (2, 2, 7, 8, 9), 2, dict(output_size=(3, 4, 5))),
        (3, (2, 6, 7, 8), (2, 3, 2), dict(output_ratio=(0.5, 0.6, 0.7))),
    ]:
        for dt in [np.float64, np.float32]:
            for special in [None, "nan"]:
                x = rng.standard_normal(shape).astype(dt)
                if special:
                    x.flat[rng.integers(0, x.size, 7)] = np.nan
                nb = 1 if len(shape) == nd + 1 else shape[0]
                u = rng.random((nb, shape[-nd - 1], nd)).astype(dt)
                tx = torch.tensor(x, requires_grad=True)
                lx = tl.tensor(x, requires_grad=True)
                to, ti = getattr(TF, f"fractional_max_pool{nd}d")(
                    tx, k, return_indices=True, _random_samples=torch.tensor(u), **kw
                )
                lo, li = getattr(F, f"fractional_max_pool{nd}d")(
                    lx, k, return_indices=True, _random_samples=tl.tensor(u), **kw
                )
                g = rng.standard_normal(tuple(to.shape)).astype(dt)
                to.backward(torch.tensor(g))
                lo.backward(tl.tensor(g))
                n += 1
                ok = (
                    tuple(lo.shape) == tuple(to.shape)
                    and np.array_equal(li.numpy(), ti.numpy())
                    and np.allclose(lo.detach().numpy(), to.detach().numpy(), equal_nan=True)
                    and np.allclose(lx.grad.numpy(), tx.grad.numpy())
                    and li.dtype == tl.int64
                    and lo.dtype == lx.dtype
                )
                if not ok:
                    bad += 1
                    print("DIFF", nd, shape, k, kw, dt, special, lo.shape, to.shape)
    assert bad == 0

    def x(lib, *shape):
        return lib.randn(*shape)

    for call in [
        lambda lib, f: f.fractional_max_pool2d(x(lib, 1, 2, 5, 6), 3, output_size=(4, 5)),
        lambda lib, f: f.fractional_max_pool2d(x(lib, 1, 2, 5, 6), 2),
        lambda lib, f: f.fractional_max_pool2d(x(lib, 1, 2, 5, 6), 2, output_ratio=(0.5, 0.5, 0.5)),
        lambda lib, f: f.fractional_max_pool2d(x(lib, 2, 5, 6), 2, output_size=3, _random_samples=lib.rand(1, 3, 2)),
        lambda lib, f: f.fractional_max_pool3d(x(lib, 1, 2, 5, 5, 6), 3, output_size=(4, 4, 5)),
    ]:
        _same_error(call)


def test_asm():
    rng = np.random.default_rng(7)
    for cut, hb, dv in [([5, 12], False, 4.0), ([3], True, 2.0), ([2, 6, 15], False, 1.5)]:
        tm = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 20, cut, div_value=dv, head_bias=hb).double()
        lm = tl.nn.AdaptiveLogSoftmaxWithLoss(16, 20, cut, div_value=dv, head_bias=hb, dtype=tl.float64)
        assert list(tm.state_dict()) == list(lm.state_dict()), (list(tm.state_dict()), list(lm.state_dict()))
        lm.load_state_dict({k: tl.tensor(v.numpy()) for k, v in tm.state_dict().items()})
        assert repr(lm) == repr(tm).replace("torch", "tensorlib"), (repr(lm), repr(tm))
        x = rng.standard_normal((9, 16))
        t = rng.integers(0, 20, 9)
        tx = torch.tensor(x, requires_grad=True)
        lx = tl.tensor(x, requires_grad=True)
        to = tm(tx, torch.tensor(t))
        lo = lm(lx, tl.tensor(t))
        to.loss.backward()
        lo.loss.backward()
        np.testing.assert_allclose(lo.output.detach().numpy(), to.output.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(lo.loss.item(), to.loss.item(), rtol=1e-12)
        np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
        for (n, p), (n2, p2) in zip(tm.named_parameters(), lm.named_parameters()):
            np.testing.assert_allclose(p2.grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=n)
        np.testing.assert_allclose(lm.log_prob(lx).detach().numpy(), tm.log_prob(tx).detach().numpy(), rtol=1e-12)
        assert (lm.predict(lx).numpy() == tm.predict(tx).numpy()).all()
        o1 = lm(lx[0], tl.tensor(t[0]))
        o2 = tm(tx[0], torch.tensor(t[0]))
        np.testing.assert_allclose(o1.output.item(), o2.output.item(), rtol=1e-12)
        print("ok", cut)
    for args, call in [
        ((16, 20, []), None),
        ((16, 20, [5, 5]), None),
        ((16, 20, [25]), None),
        ((16, 20, [5]), "bad_target"),
        ((16, 20, [5]), "2d_target"),
    ]:

        def make(lib, f, args=args, call=call):
            m = lib.nn.AdaptiveLogSoftmaxWithLoss(*args)
            if call == "bad_target":
                m(lib.zeros(2, 16), lib.tensor([1, 25]))
            if call == "2d_target":
                m(lib.zeros(2, 16), lib.tensor([[1, 2]]))

        _same_error(make)


def test_mha():
    rng = np.random.default_rng(9)
    L, S, N, E, H = 4, 5, 3, 8, 2

    def both(a):
        return torch.tensor(a, requires_grad=True), tl.tensor(a, requires_grad=True)

    for case in ["self", "cross", "sep", "static", "bias_zero", "unbatched", "mask3d"]:
        q = rng.standard_normal((L, N, E))
        k = rng.standard_normal((S, N, E))
        v = rng.standard_normal((S, N, E))
        ipw, ipb = rng.standard_normal((3 * E, E)), rng.standard_normal(3 * E)
        opw, opb = rng.standard_normal((E, E)), rng.standard_normal(E)
        T = {
            n: both(a)
            for n, a in dict(
                q=q,
                k=k,
                v=v,
                ipw=ipw,
                ipb=ipb,
                opw=opw,
                opb=opb,
                bk=rng.standard_normal((1, 1, E)),
                bv=rng.standard_normal((1, 1, E)),
                qw=rng.standard_normal((E, E)),
                kw=rng.standard_normal((E, E)),
                vw=rng.standard_normal((E, E)),
                sk=rng.standard_normal((N * H, S, E // H)),
                sv=rng.standard_normal((N * H, S, E // H)),
            ).items()
        }
        res = []
        KPM = rng.random((N, S)) < 0.3
        KPM[:, 0] = False
        AM = rng.standard_normal((N * H, L, S))
        for i, f in enumerate([TF.multi_head_attention_forward, F.multi_head_attention_forward]):
            g = {n: t[i] for n, t in T.items()}
            qq, kk, vv = g["q"], g["k"], g["v"]
            kw = dict(key_padding_mask=(torch if i == 0 else tl).tensor(KPM) if case == "cross" else None)
            if case == "self":
                kk = vv = qq
            if case == "unbatched":
                qq, kk, vv = qq[:, 0], kk[:, 0], vv[:, 0]
            args = [qq, kk, vv, E, H, g["ipw"], g["ipb"], None, None, False, 0.0, g["opw"], g["opb"]]
            if case == "sep":
                kw.update(
                    use_separate_proj_weight=True, q_proj_weight=g["qw"], k_proj_weight=g["kw"], v_proj_weight=g["vw"]
                )
            if case == "static":
                kw.update(static_k=g["sk"], static_v=g["sv"])
            if case == "bias_zero":
                args[7], args[8], args[9] = g["bk"], g["bv"], True
            if case == "mask3d":
                kw.update(attn_mask=(torch if i == 0 else tl).tensor(AM), average_attn_weights=False)
            out, w = f(*args, **kw)
            (out.sum() + (w.sum() if w is not None else 0)).backward()
            res.append(
                (
                    out.detach().numpy(),
                    None if w is None else w.detach().numpy(),
                    {n: (t.grad.numpy() if t.grad is not None else None) for n, t in g.items()},
                )
            )
        a, b = res
        np.testing.assert_allclose(b[0], a[0], rtol=1e-10, atol=1e-12)
        if a[1] is not None:
            np.testing.assert_allclose(b[1], a[1], rtol=1e-10, atol=1e-12)
        for n in a[2]:
            if a[2][n] is None:
                assert b[2][n] is None or not np.any(b[2][n]), n
                continue
            np.testing.assert_allclose(b[2][n], a[2][n], rtol=1e-9, atol=1e-11, err_msg=f"{case} {n}")
        print("ok", case)


def test_lce():
    rng = np.random.default_rng(3)
    for of, bias, red, ls, ii, batched in [
        ((), False, "mean", 0.0, None, True),
        ((), True, "sum", 0.1, 2, True),
        ((3,), True, "none", 0.0, None, True),
        ((), False, "mean", 0.0, None, False),
    ]:
        tm = torch.nn.LinearCrossEntropyLoss(
            6, 5, out_features=of, bias=bias, reduction=red, label_smoothing=ls, ignore_index=ii
        ).double()
        lm = tl.nn.LinearCrossEntropyLoss(
            6, 5, out_features=of, bias=bias, reduction=red, label_smoothing=ls, ignore_index=ii, dtype=tl.float64
        )
        assert list(tm.state_dict()) == list(lm.state_dict())
        assert repr(tm) == repr(lm), (repr(tm), repr(lm))
        lm.load_state_dict({k: tl.tensor(v.numpy()) for k, v in tm.state_dict().items()})
        x = rng.standard_normal((4, 6) if batched else (6,))
        t = rng.integers(0, 5, ((4,) + of) if batched else ())
        tx = torch.tensor(x, requires_grad=True)
        lx = tl.tensor(x, requires_grad=True)
        to = tm(tx, torch.tensor(t))
        lo = lm(lx, tl.tensor(t))
        to.sum().backward()
        lo.sum().backward()
        np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(lm.linear.weight.grad.numpy(), tm.linear.weight.grad.numpy(), rtol=1e-10, atol=1e-14)
        print("ok", of, bias, red)

    def x(lib, *shape):
        return lib.randn(*shape)

    def t(lib, shape):
        return lib.zeros(shape, dtype=lib.int64)

    for call in [
        lambda lib, f: f.linear_cross_entropy(x(lib, 2, 3, 4), x(lib, 5, 4), t(lib, 2)),
        lambda lib, f: f.linear_cross_entropy(x(lib, 2, 4), x(lib, 5, 3), t(lib, 2)),
        lambda lib, f: f.linear_cross_entropy(x(lib, 4), x(lib, 5, 3, 4), t(lib, ())),
        lambda lib, f: f.linear_cross_entropy(x(lib, 2, 4), x(lib, 5, 4), t(lib, 2), linear_bias=x(lib, 4)),
        lambda lib, f: lib.nn.LinearCrossEntropyLoss(4, 5, label_smoothing=2.0),
    ]:
        _same_error(call)


@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_grad_by_freq=True),
        dict(scale_grad_by_freq=True, padding_idx=2),
        dict(max_norm=1.0),
        dict(max_norm=0.5, norm_type=1.0, scale_grad_by_freq=True),
    ],
)
def test_embedding_scale_grad_by_freq_and_max_norm(kw):
    rng = np.random.default_rng(4)
    w, idx, g = rng.standard_normal((10, 4)), rng.integers(0, 10, (3, 5)), rng.standard_normal((3, 5, 4))
    tw, lw = torch.tensor(w, requires_grad=True), tl.tensor(w, requires_grad=True)
    TF.embedding(torch.tensor(idx), tw, **kw).backward(torch.tensor(g))
    F.embedding(tl.tensor(idx), lw, **kw).backward(tl.tensor(g))
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lw.detach().numpy(), tw.detach().numpy(), rtol=1e-12)  # max_norm renormalised rows
    m = tl.nn.Embedding(5, 3, scale_grad_by_freq=True, norm_type=1.0)
    assert repr(m) == repr(torch.nn.Embedding(5, 3, scale_grad_by_freq=True, norm_type=1.0))


def test_embedding_bag_max_norm_and_per_sample_weights():
    # (embedding_bag's scale_grad_by_freq is left out: torch 2.13's CPU kernel divides every row's gradient by
    # the count of the smallest index in the batch, checked by hand; tensorlib divides each row by its own count,
    # as the documentation and F.embedding do)
    rng = np.random.default_rng(4)
    w, flat, offs, psw = (
        rng.standard_normal((10, 4)),
        rng.integers(0, 10, 9),
        np.array([0, 2, 2, 6]),
        rng.standard_normal(9),
    )
    for kw in [dict(mode="max", max_norm=1.0), dict(mode="sum", max_norm=1.2, per_sample_weights=True)]:
        tw, lw = torch.tensor(w, requires_grad=True), tl.tensor(w, requires_grad=True)
        kk = dict(kw)
        p = kk.pop("per_sample_weights", None)
        to = TF.embedding_bag(
            torch.tensor(flat), tw, torch.tensor(offs), per_sample_weights=torch.tensor(psw) if p else None, **kk
        )
        lo = F.embedding_bag(
            tl.tensor(flat), lw, tl.tensor(offs), per_sample_weights=tl.tensor(psw) if p else None, **kk
        )
        gg = rng.standard_normal(tuple(to.shape))
        to.backward(torch.tensor(gg))
        lo.backward(tl.tensor(gg))
        np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(lw.detach().numpy(), tw.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "nd,shape,size",
    [
        (1, (2, 3, 5), [10]),
        (1, (3, 5), [3, 9]),
        (1, (2, 3, 5), [12]),
        (1, (3, 5), [2, 3, 11]),
        (2, (2, 3, 5, 4), (10, 7)),
        (2, (2, 3, 5, 4), (12, 10)),
        (2, (2, 3, 5, 4), (1, 2, 3)),
        (3, (1, 3, 4, 3, 5), [1, 2, 8, 6, 9]),
        (3, (1, 3, 4, 3, 5), [9, 8, 11]),
    ],
)
def test_conv_transpose_output_size(nd, shape, size):
    t = getattr(torch.nn, f"ConvTranspose{nd}d")(3, 2, 3, stride=2, padding=1).double()
    m = getattr(tl.nn, f"ConvTranspose{nd}d")(3, 2, 3, stride=2, padding=1, dtype=tl.float64)
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(2).standard_normal(shape)
    try:
        want = t(torch.tensor(x), output_size=size).detach().numpy()
    except ValueError as e:
        with pytest.raises(ValueError) as info:
            m(tl.tensor(x), output_size=size)
        assert str(info.value).replace("tensorlib.Size", "torch.Size") == str(e)
        return
    np.testing.assert_allclose(m(tl.tensor(x), output_size=size).detach().numpy(), want, rtol=1e-12, atol=1e-14)
