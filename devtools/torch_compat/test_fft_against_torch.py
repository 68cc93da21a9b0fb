"""tensorlib.fft, tensorlib.stft / istft against torch 2.13 side by side: every torch.fft function in every norm
mode, with n / s padding and trimming and dims, on real and complex inputs: values (float32 to 1e-5 relative,
float64 to 1e-10), dtypes, shapes, and float64 input gradients of the loss sum(re(out) * w1 + im(out) * w2)
(complex inputs' gradients in torch's convention); fftfreq / rfftfreq / fftshift / ifftshift; stft and istft
over their options; and the error messages for bad n, s, dim, norm and stft / istft arguments."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.fft  # noqa: F401 - the lazy submodule, loaded

torch = pytest.importorskip("torch")
R = np.random.default_rng(11)
NORMS = [None, "backward", "forward", "ortho"]


def _data(shape, kind):
    a = R.standard_normal(shape)
    if kind == "complex":
        a = a + 1j * R.standard_normal(shape)
    return a


def _dtype(L, kind, double):
    if kind == "complex":
        return L.complex128 if double else L.complex64
    return L.float64 if double else L.float32


def _run(L, fn, arrays, kind, double, grad):
    xs = []
    for a in arrays:
        dt = _dtype(L, kind, double)
        xs.append(L.tensor(a.astype(np.complex128 if kind == "complex" else np.float64), dtype=dt,
                           requires_grad=grad))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = fn(L, *xs)
    if not grad:
        return out, None
    rng = np.random.default_rng(3)
    w1 = L.tensor(rng.standard_normal(tuple(out.shape)), dtype=L.float64)
    w2 = L.tensor(rng.standard_normal(tuple(out.shape)), dtype=L.float64)
    loss = (L.real(out) * w1).sum()
    if out.is_complex():
        loss = loss + (L.imag(out) * w2).sum()
    loss.backward()
    return out, [x.grad for x in xs]


def _np(t):
    if isinstance(t, tl.Tensor):
        return t.detach().numpy()
    return t.detach().resolve_conj().numpy()


def _compare(fn, arrays, kind, double=True, grad=True):
    o_t, g_t = _run(torch, fn, arrays, kind, double, grad and double)
    o_l, g_l = _run(tl, fn, arrays, kind, double, grad and double)
    assert str(o_l.dtype).split(".")[-1] == str(o_t.dtype).split(".")[-1]
    assert tuple(o_l.shape) == tuple(o_t.shape)
    rtol, atol = (1e-10, 1e-10) if double else (1e-5, 1e-5)
    ref = _np(o_t)
    np.testing.assert_allclose(_np(o_l), ref, rtol=rtol, atol=atol * max(1.0, np.abs(ref).max(initial=0)))
    if g_t is not None:
        for a, b in zip(g_l, g_t):
            assert (a is None) == (b is None)
            if b is not None:
                assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
                np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-10)


# (name, input kinds it takes, [keyword sets])
ONE_D = [
    ("fft", ("real", "complex")), ("ifft", ("real", "complex")), ("rfft", ("real",)),
    ("irfft", ("real", "complex")), ("hfft", ("real", "complex")), ("ihfft", ("real",)),
]
ONE_D_ARGS = [{}, {"n": 4}, {"n": 9}, {"dim": 0}, {"n": 7, "dim": -2}, {"n": 1}]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("args", ONE_D_ARGS, ids=str)
@pytest.mark.parametrize("name,kind", [(n, k) for n, ks in ONE_D for k in ks], ids=str)
def test_one_dimensional(name, kind, args, norm):
    for double in (True, False):
        _compare(lambda L, x: getattr(L.fft, name)(x, norm=norm, **args), [_data((5, 6), kind)], kind, double)


N_D = [
    ("fftn", ("real", "complex")), ("ifftn", ("real", "complex")), ("rfftn", ("real",)),
    ("irfftn", ("real", "complex")), ("hfftn", ("real", "complex")), ("ihfftn", ("real",)),
]
N_D_ARGS = [{}, {"dim": (0, 2)}, {"s": (3, 8)}, {"s": (4, -1), "dim": (2, 0)}, {"dim": 1}, {"s": (2, 3, 9)},
            {"dim": (-1,)}]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("args", N_D_ARGS, ids=str)
@pytest.mark.parametrize("name,kind", [(n, k) for n, ks in N_D for k in ks], ids=str)
def test_n_dimensional(name, kind, args, norm):
    for double in (True, False):
        _compare(lambda L, x: getattr(L.fft, name)(x, norm=norm, **args), [_data((3, 4, 6), kind)], kind, double)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("args", [{}, {"s": (3, 10)}, {"dim": (0, 1)}, {"dim": (2, 0), "s": (5, -1)}], ids=str)
@pytest.mark.parametrize("name,kind", [(n.replace("n", "2"), k) for n, ks in N_D for k in ks], ids=str)
def test_two_dimensional(name, kind, args, norm):
    for double in (True, False):
        _compare(lambda L, x: getattr(L.fft, name)(x, norm=norm, **args), [_data((3, 4, 6), kind)], kind, double)


@pytest.mark.parametrize("name", ["fft", "rfft", "fftn", "ihfft2", "hfft"])
def test_integer_input_is_promoted_to_the_default_float(name):
    a = np.arange(12).reshape(3, 4)
    t = getattr(torch.fft, name)(torch.tensor(a))
    r = getattr(tl.fft, name)(tl.tensor(a))
    assert str(r.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(r.numpy(), t.numpy(), rtol=1e-5, atol=1e-4)


def test_frequencies_and_shifts():
    for n, d in [(5, 0.5), (8, 1.0), (1, 2.0), (0, 1.0)]:
        for name in ("fftfreq", "rfftfreq"):
            for dt in (None, "float64"):
                kw = {} if dt is None else {"dtype": getattr(torch, dt)}
                t = getattr(torch.fft, name)(n, d, **kw)
                kw = {} if dt is None else {"dtype": getattr(tl, dt)}
                r = getattr(tl.fft, name)(n, d, **kw)
                assert str(r.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
                np.testing.assert_array_equal(r.numpy(), t.numpy())
    a = R.standard_normal((4, 5, 3))
    for name in ("fftshift", "ifftshift"):
        for dim in (None, 1, (0, -1), [2]):
            np.testing.assert_array_equal(getattr(tl.fft, name)(tl.tensor(a), dim=dim).numpy(),
                                          getattr(torch.fft, name)(torch.tensor(a), dim=dim).numpy())
    _compare(lambda L, x: L.fft.fftshift(x, dim=(0, 1)), [_data((4, 5), "complex")], "complex")


STFT = [
    dict(n_fft=16),
    dict(n_fft=16, hop_length=5, win_length=12, window="hann12"),
    dict(n_fft=16, window="hann16", normalized=True),
    dict(n_fft=16, window="hann16", onesided=False),
    dict(n_fft=15, hop_length=3, window="hann15", center=False),
    dict(n_fft=16, window="hann16", pad_mode="constant"),
    dict(n_fft=16, window="hann16", pad_mode="replicate", hop_length=7),
    dict(n_fft=16, hop_length=4, win_length=10, window="hann10", center=False, align_to_window=True),
    dict(n_fft=16, hop_length=3, win_length=11, window="hann11", center=False, align_to_window=False),
]


def _window(L, spec, double):
    if not isinstance(spec, str):
        return spec
    name = spec.rstrip("0123456789")
    return getattr(L, name + "_window")(int(spec[len(name):]), dtype=L.float64 if double else L.float32)


@pytest.mark.parametrize("kw", STFT, ids=str)
@pytest.mark.parametrize("kind", ["real", "complex"])
@pytest.mark.parametrize("shape", [(64,), (2, 50)], ids=str)
def test_stft(kw, kind, shape):
    for double in (True, False):
        def fn(L, x, kw=kw, double=double):
            k = dict(kw, window=_window(L, kw.get("window"), double))
            return L.stft(x, return_complex=True, **k)
        _compare(fn, [_data(shape, kind)], kind, double)
        _compare(lambda L, x, kw=kw, double=double: x.stft(return_complex=True, **dict(
            kw, window=_window(L, kw.get("window"), double))), [_data(shape, kind)], kind, double, grad=False)


def test_stft_return_complex_false_is_view_as_real():
    _compare(lambda L, x: L.stft(x, 16, window=L.hann_window(16, dtype=L.float64), return_complex=False),
             [_data((64,), "real")], "real")


ISTFT = [
    dict(n_fft=16, window="hann16"),
    dict(n_fft=16, window="hann16", hop_length=5, length=60),
    dict(n_fft=16, window="hann16", normalized=True, length=70),
    dict(n_fft=16, hop_length=4, win_length=12, window="hann12"),
    dict(n_fft=15, hop_length=3, window="hamming15", center=False),
]


@pytest.mark.parametrize("kw", ISTFT, ids=str)
@pytest.mark.parametrize("onesided", [True, False])
@pytest.mark.parametrize("shape", [(64,), (2, 50)], ids=str)
def test_istft_inverts_stft(kw, onesided, shape):
    for double in (True, False):
        def fn(L, x, kw=kw, double=double):
            k = {key: v for key, v in kw.items() if key != "length"}
            k["window"] = _window(L, kw["window"], double)
            s = L.stft(x, return_complex=True, onesided=onesided, **k)
            return L.istft(s, onesided=onesided, length=kw.get("length"), **k)
        _compare(fn, [_data(shape, "real")], "real", double)


def test_istft_return_complex_and_tensor_method():
    def fn(L, x):
        w = L.hann_window(16, dtype=L.float64)
        s = L.stft(x, 16, window=w, return_complex=True)
        return s.istft(16, window=w, return_complex=True, onesided=False)
    _compare(fn, [_data((64,), "complex")], "complex")


def _message(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - the comparison is of the exception itself
            return type(e).__name__, str(e).split("\n")[0].split(" (Triggered internally")[0]
    return None


ERRORS = {
    "n=0": lambda L, x, c: L.fft.fft(x, n=0),
    "n=-1": lambda L, x, c: L.fft.rfft(x, n=-1),
    "irfft n=0": lambda L, x, c: L.fft.irfft(c, n=0),
    "irfft size 1": lambda L, x, c: L.fft.irfft(c[:, :1]),
    "irfftn size 1": lambda L, x, c: L.fft.irfftn(c[:, :1]),
    "dim=2": lambda L, x, c: L.fft.fft(x, dim=2),
    "dim=-3": lambda L, x, c: L.fft.ifft(c, dim=-3),
    "scalar": lambda L, x, c: L.fft.fft(L.tensor(1.0)),
    "norm": lambda L, x, c: L.fft.fft(x, norm="bad"),
    "norm c2r": lambda L, x, c: L.fft.irfft(c, norm="Ortho"),
    "norm n-d": lambda L, x, c: L.fft.fftn(c, norm="none"),
    "rfft complex": lambda L, x, c: L.fft.rfft(c),
    "ihfft complex": lambda L, x, c: L.fft.ihfft(c),
    "rfftn complex": lambda L, x, c: L.fft.rfftn(c),
    "rfft2 complex": lambda L, x, c: L.fft.rfft2(c),
    "ihfftn complex": lambda L, x, c: L.fft.ihfftn(c),
    "dims unique": lambda L, x, c: L.fft.fftn(x, dim=(1, -1)),
    "s and dim": lambda L, x, c: L.fft.fftn(x, s=(2, 3), dim=(0,)),
    "s too long": lambda L, x, c: L.fft.fftn(x, s=(2, 3, 4)),
    "s 0": lambda L, x, c: L.fft.rfftn(x, s=(0, 3)),
    "dim oob": lambda L, x, c: L.fft.fftn(x, dim=(0, 5)),
    "rfftn no axis": lambda L, x, c: L.fft.rfftn(x, dim=()),
    "irfftn no axis": lambda L, x, c: L.fft.irfftn(c, dim=()),
    "hfftn no axis": lambda L, x, c: L.fft.hfftn(c, dim=()),
    "ihfftn no axis": lambda L, x, c: L.fft.ihfftn(x, dim=()),
    "fft2 1-d": lambda L, x, c: L.fft.fft2(x[0]),
    "half": lambda L, x, c: L.fft.fft(x.half()),
    "fftfreq int": lambda L, x, c: L.fft.fftfreq(4, dtype=L.int64),
    "fftfreq -1": lambda L, x, c: L.fft.fftfreq(-1),
    "fftshift dim": lambda L, x, c: L.fft.fftshift(x, dim=5),
    "stft return_complex": lambda L, x, c: L.stft(L.zeros(64), 16),
    "stft n_fft": lambda L, x, c: L.stft(L.zeros(10), 16, center=False, return_complex=True),
    "stft hop": lambda L, x, c: L.stft(L.zeros(64), 16, hop_length=0, return_complex=True),
    "stft win_length": lambda L, x, c: L.stft(L.zeros(64), 16, win_length=20, return_complex=True),
    "stft window": lambda L, x, c: L.stft(L.zeros(64, dtype=L.float64), 16, window=L.ones(10),
                                          return_complex=True),
    "stft 3-d": lambda L, x, c: L.stft(L.zeros(2, 3, 64), 16, return_complex=True),
    "stft onesided": lambda L, x, c: L.stft(c[0], 4, onesided=True, return_complex=True),
    "stft int": lambda L, x, c: L.stft(L.arange(64), 16, return_complex=True),
    "stft align": lambda L, x, c: L.stft(L.zeros(64), 16, align_to_window=True, return_complex=True),
    "istft real": lambda L, x, c: L.istft(L.zeros(9, 5), 16),
    "istft frequencies": lambda L, x, c: L.istft(L.zeros(7, 5, dtype=L.complex64), 16),
    "istft frequencies two-sided": lambda L, x, c: L.istft(L.zeros(7, 5, dtype=L.complex64), 16, onesided=False),
    "istft nola": lambda L, x, c: L.istft(L.zeros(9, 5, dtype=L.complex64), 16, window=L.zeros(16)),
    "istft hop": lambda L, x, c: L.istft(L.zeros(9, 5, dtype=L.complex64), 16, hop_length=20),
    "istft window": lambda L, x, c: L.istft(L.zeros(9, 5, dtype=L.complex64), 16, window=L.ones(3)),
    "istft return_complex": lambda L, x, c: L.istft(L.zeros(9, 5, dtype=L.complex64), 16, return_complex=True),
    "istft 1-d": lambda L, x, c: L.istft(L.zeros(9, dtype=L.complex64), 16),
    "istft 4-d": lambda L, x, c: L.istft(L.zeros(1, 2, 9, 5, dtype=L.complex64), 16),
    "istft empty": lambda L, x, c: L.istft(L.zeros(9, 0, dtype=L.complex64), 16),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_messages(name):
    a, c = R.standard_normal((4, 6)), _data((4, 6), "complex")
    want = _message(lambda: ERRORS[name](torch, torch.tensor(a), torch.tensor(c)))
    got = _message(lambda: ERRORS[name](tl, tl.tensor(a), tl.tensor(c)))
    assert want is not None
    assert got == want


def test_profiler_regions_name_torchs_ops():
    """The composites' regions and the ops inside them, as torch.profiler shows torch's."""
    from tensorlib.profiler import profile as tl_profile
    cases = {"rfft": lambda L, x, c: L.fft.rfft(x), "hfft": lambda L, x, c: L.fft.hfft(c),
             "ifft": lambda L, x, c: L.fft.ifft(c), "irfftn": lambda L, x, c: L.fft.irfftn(c),
             "ihfft2": lambda L, x, c: L.fft.ihfft2(x)}
    a, c = R.standard_normal((4, 6)), _data((4, 6), "complex")
    for name, fn in cases.items():
        names = []
        for L, prof in ((torch, torch.profiler.profile), (tl, tl_profile)):
            x, z = L.tensor(a), L.tensor(c)
            with prof() as p:
                fn(L, x, z)
            top = [e for e in p.events() if e.cpu_parent is None]
            names.append([e.name for e in top] + [k.name for e in top for k in e.cpu_children
                                                  if k.name.startswith("aten::_fft")])
        assert names[0] == names[1], name
