"""tensorlib.fft and tensorlib.stft / istft: values against numpy.fft (and a direct framing for stft), the
transforms' identities (inverse round trips, Parseval), dtypes kept in single precision, float64 gradients by
gradcheck through view_as_real / view_as_complex, the lazy submodule's import forms and the CUDA paths against
the fake CuPy. (The side-by-side comparison with torch is devtools/torch_compat/test_fft_against_torch.py.)"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.fft as F
from tensorlib.autograd import gradcheck

RNG = np.random.default_rng(5)
NORMS = [None, "backward", "forward", "ortho"]


def _real(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _cplx(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name,make,kw", [
    ("fft", _real, {"n": 9}), ("fft", _cplx, {"n": 4, "axis": 0}), ("ifft", _real, {}), ("ifft", _cplx, {"n": 7}),
    ("rfft", _real, {"n": 5}), ("irfft", _cplx, {}), ("irfft", _cplx, {"n": 9}), ("hfft", _cplx, {"n": 6}),
    ("ihfft", _real, {"axis": 0}), ("fftn", _cplx, {"s": (3, 8), "axes": (0, 1)}), ("ifftn", _real, {"axes": (0,)}),
    ("rfftn", _real, {}), ("irfftn", _cplx, {"s": (4, 9), "axes": (0, 1)}),
    ("fft2", _real, {}), ("ifft2", _cplx, {"s": (2, 2), "axes": (0, 1)}),
    ("rfft2", _real, {"s": (7, 3), "axes": (0, 1)}), ("irfft2", _cplx, {})])
def test_values_match_numpy(name, make, kw, norm):
    a = make(5, 6)
    ref = getattr(np.fft, name)(a, norm=norm, **kw)
    tkw = {{"axis": "dim", "axes": "dim"}.get(k, k): v for k, v in kw.items()}
    r = getattr(F, name)(tl.tensor(a), norm=norm, **tkw)
    assert r.dtype == {"c": tl.complex128, "f": tl.float64}[ref.dtype.kind]
    np.testing.assert_allclose(r.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,make", [("fft", _real), ("fft", _cplx), ("rfft", _real), ("irfft", _cplx),
                                       ("hfft", _cplx), ("ihfft", _real), ("fftn", _real), ("irfftn", _cplx),
                                       ("hfftn", _cplx), ("ihfftn", _real)])
def test_single_precision_stays_single(name, make):
    a = make(4, 6, dtype=np.float32 if make is _real else np.complex64)
    r = getattr(F, name)(tl.tensor(a))
    assert r.dtype in (tl.complex64, tl.float32)
    ref = getattr(F, name)(tl.tensor(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)))
    np.testing.assert_allclose(r.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_hermitian_transforms_against_their_definitions():
    """hfftn(x) = irfftn(conj(x)) scaled as a forward transform; ihfftn(x) = conj(rfftn(x)) scaled as an
    inverse one (numpy has neither n-dimensional form)."""
    c, x = _cplx(3, 4, 5), _real(3, 4, 6)
    n = 3 * 4 * 8
    np.testing.assert_allclose(F.hfftn(tl.tensor(c)).numpy(), np.fft.irfftn(np.conj(c)) * n, atol=1e-12)
    np.testing.assert_allclose(F.ihfftn(tl.tensor(x)).numpy(), np.conj(np.fft.rfftn(x)) / x.size, atol=1e-12)
    np.testing.assert_allclose(F.hfft2(tl.tensor(c), s=(4, 7), norm="ortho").numpy(),
                               np.fft.irfftn(np.conj(c), s=(4, 7), axes=(1, 2), norm="ortho"), atol=1e-12)


def test_round_trips_and_parseval():
    x = _real(4, 10)
    t = tl.tensor(x)
    np.testing.assert_allclose(F.irfft(F.rfft(t), n=10).numpy(), x, atol=1e-12)
    np.testing.assert_allclose(F.ifft(F.fft(t)).real.numpy(), x, atol=1e-12)
    np.testing.assert_allclose(F.ihfft(F.hfft(F.ihfft(t), n=10)).numpy(), F.ihfft(t).numpy(), atol=1e-12)
    c = tl.tensor(_cplx(3, 4, 5))
    np.testing.assert_allclose(F.ifftn(F.fftn(c, norm="ortho"), norm="ortho").numpy(), c.numpy(), atol=1e-12)
    spec = F.fftn(c, norm="ortho")
    assert np.isclose((spec.abs() ** 2).sum().item(), (c.abs() ** 2).sum().item())


def test_frequencies_and_shifts_match_numpy():
    for n in (1, 4, 7):
        np.testing.assert_allclose(F.fftfreq(n, 0.3, dtype=tl.float64).numpy(), np.fft.fftfreq(n, 0.3))
        np.testing.assert_allclose(F.rfftfreq(n, 0.3, dtype=tl.float64).numpy(), np.fft.rfftfreq(n, 0.3))
    assert F.fftfreq(4).dtype == tl.float32
    a = _real(4, 5)
    np.testing.assert_array_equal(F.fftshift(tl.tensor(a)).numpy(), np.fft.fftshift(a))
    np.testing.assert_array_equal(F.ifftshift(tl.tensor(a), dim=1).numpy(), np.fft.ifftshift(a, axes=1))


def _re(fn):
    """A real function of real leaves for gradcheck: complex results as view_as_real."""
    def f(*xs):
        out = fn(*xs)
        return tl.view_as_real(out) if out.is_complex() else out
    return f


def _leaf(*shape):
    return tl.tensor(_real(*shape), requires_grad=True)


@pytest.mark.parametrize("name,fn,shape", [
    ("fft real padded", lambda x: F.fft(x, n=7), (3, 5)),
    ("ifft complex trimmed", lambda x: F.ifft(tl.view_as_complex(x), n=3, dim=0, norm="ortho"), (4, 3, 2)),
    ("rfft odd", lambda x: F.rfft(x, norm="forward"), (2, 7)),
    ("irfft even", lambda x: F.irfft(tl.view_as_complex(x), n=8), (2, 5, 2)),
    ("irfft odd", lambda x: F.irfft(tl.view_as_complex(x), n=9), (2, 5, 2)),
    ("hfft", lambda x: F.hfft(tl.view_as_complex(x), norm="ortho"), (3, 4, 2)),
    ("ihfft", lambda x: F.ihfft(x), (2, 6)),
    ("fftn s", lambda x: F.fftn(x, s=(2, 6)), (3, 4)),
    ("rfft2", lambda x: F.rfft2(x, norm="ortho"), (3, 4, 5)),
    ("irfftn", lambda x: F.irfftn(tl.view_as_complex(x), s=(3, 6)), (3, 4, 2)),
    ("hfftn", lambda x: F.hfftn(tl.view_as_complex(x), dim=(0, 1)), (3, 3, 2)),
    ("ihfftn", lambda x: F.ihfftn(x, dim=(1, 0)), (3, 4)),
    ("fftshift", lambda x: F.fftshift(F.fft(x)), (5,)),
])
def test_gradients_by_finite_differences(name, fn, shape):
    assert gradcheck(_re(fn), [_leaf(*shape)])


def _frames(x, n_fft, hop, window):
    """stft by definition: windowed frames, each transformed (center=False)."""
    k = 1 + (x.shape[-1] - n_fft) // hop
    fr = np.stack([x[..., i * hop:i * hop + n_fft] * window for i in range(k)], -2)
    return np.swapaxes(np.fft.rfft(fr), -1, -2)


def test_stft_against_its_definition_and_istft_inverts_it():
    x = _real(2, 80)
    w = tl.hann_window(16, dtype=tl.float64)
    s = tl.stft(tl.tensor(x), 16, hop_length=4, window=w, center=False, return_complex=True)
    np.testing.assert_allclose(s.numpy(), _frames(x, 16, 4, w.numpy()), atol=1e-12)
    s = tl.stft(tl.tensor(x), 16, window=w, return_complex=True)      # centred: reflect-padded by 8
    np.testing.assert_allclose(s.numpy(), _frames(np.pad(x, [(0, 0), (8, 8)], mode="reflect"), 16, 4, w.numpy()),
                               atol=1e-12)
    y = tl.istft(s, 16, window=w, length=80)
    np.testing.assert_allclose(y.numpy(), x, atol=1e-12)
    assert tl.tensor(x).stft(16, window=w, return_complex=True).shape == (2, 9, 21)
    with pytest.raises(RuntimeError, match="requires the return_complex parameter"):
        tl.stft(tl.tensor(x), 16)
    with pytest.warns(UserWarning, match="return_complex=False is deprecated"):
        r = tl.stft(tl.tensor(x), 16, window=w, return_complex=False)
    assert r.shape == (2, 9, 21, 2)


def test_stft_and_istft_gradients():
    w = tl.hann_window(8, dtype=tl.float64)
    assert gradcheck(_re(lambda x: tl.stft(x, 8, hop_length=3, window=w, return_complex=True)), [_leaf(20)])
    assert gradcheck(lambda x: tl.istft(tl.view_as_complex(x), 8, hop_length=2, window=w), [_leaf(5, 7, 2)])


def test_lazy_submodule_and_compat():
    code = textwrap.dedent("""
        import sys
        import tensorlib
        assert "tensorlib.fft" not in sys.modules and "scipy" not in sys.modules
        from tensorlib import fft
        import tensorlib.fft
        assert fft is tensorlib.fft is sys.modules["tensorlib.fft"]
        from tensorlib.compat import install
        install()
        import torch
        import torch.fft
        from torch.fft import rfft
        assert torch.fft is fft and rfft is fft.rfft
        print(torch.fft.irfft(rfft(torch.arange(4.0)), n=4).tolist())
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[0.0, 1.0, 2.0, 3.0]"


@pytest.mark.cuda
def test_transforms_on_cuda_match_the_cpu():
    x, c = _real(3, 8), _cplx(3, 5)
    calls = [lambda a, z: F.fft(a, n=6), lambda a, z: F.ifft(z, norm="ortho"), lambda a, z: F.rfft2(a),
             lambda a, z: F.irfft(z, n=7), lambda a, z: F.hfftn(z), lambda a, z: F.ihfftn(a),
             lambda a, z: F.fftshift(a), lambda a, z: tl.stft(a, 4, window=tl.hann_window(4, device=a.device,
                                                                                       dtype=tl.float64),
                                                              return_complex=True)]
    for fn in calls:
        a = tl.tensor(x, device="cuda", requires_grad=True)
        z = tl.tensor(c, device="cuda")
        out = fn(a, z)
        ref = fn(tl.tensor(x), tl.tensor(c))
        assert out.device.type == "cuda" and out.dtype == ref.dtype
        np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), atol=1e-12)
    assert F.fftfreq(5, device="cuda").device.type == "cuda"
