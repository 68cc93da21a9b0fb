"""Complex tensors without torch: values against NumPy, gradients against their closed forms in torch's convention
(a real loss's gradient is dL/d(re) + i dL/d(im)), views that write through, promotion, printing, optimizers on
complex parameters (as pairs of reals), save/load. devtools/torch_compat/test_complex_against_torch.py compares
all of this with torch itself."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import tensorlib as tl

R = np.random.default_rng(3)


def _c(*s):
    return R.standard_normal(s) + 1j * R.standard_normal(s)


def test_gradient_of_squared_modulus_is_twice_z():
    z0 = _c(5)
    z = tl.tensor(z0, requires_grad=True)
    (z * z.conj()).real.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), 2 * z0, rtol=1e-12)
    z.grad = None
    z.abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), z0 / np.abs(z0), rtol=1e-12)


def test_holomorphic_gradients_are_conjugated_derivatives():
    """For L = re(sum w * f(z)) with complex weights w, torch's gradient is conj(w * f'(z))."""
    z0, w0 = _c(4) * 0.5, _c(4)
    for f, df in ((lambda z: z.exp(), np.exp), (lambda z: z * z * z, lambda z: 3 * z * z),
                  (lambda z: z.sin(), np.cos), (lambda z: 1 / z, lambda z: -1 / z ** 2)):
        z = tl.tensor(z0, requires_grad=True)
        (f(z) * tl.tensor(w0)).real.sum().backward()
        np.testing.assert_allclose(z.grad.numpy(), np.conj(w0 * df(z0)), rtol=1e-10)


def test_matmul_gradient_uses_the_conjugate_transpose():
    a0, b0, w0 = _c(3, 4), _c(4, 2), _c(3, 2)
    a, b = tl.tensor(a0, requires_grad=True), tl.tensor(b0, requires_grad=True)
    ((a @ b) * tl.tensor(w0)).real.sum().backward()
    g = np.conj(w0)          # dL/d(out) in torch's convention
    np.testing.assert_allclose(a.grad.numpy(), g @ b0.conj().T, rtol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), a0.conj().T @ g, rtol=1e-10)


def test_real_input_of_complex_arithmetic_gets_the_real_part():
    x0, c0 = R.standard_normal(4), _c(4)
    x = tl.tensor(x0, requires_grad=True)
    (x * tl.tensor(c0)).imag.sum().backward()
    assert x.grad.dtype is tl.float64
    np.testing.assert_allclose(x.grad.numpy(), c0.imag, rtol=1e-12)


def test_views_write_through_and_round_trip():
    z = tl.tensor([1 + 2j, 3 - 1j])
    r = tl.view_as_real(z)
    assert r.shape == (2, 2) and r.dtype is tl.float32
    r[1, 0] = 7
    z.imag.mul_(2)
    z.real = tl.tensor([-1.0, 7.0])
    assert z.tolist() == [(-1 + 4j), (7 - 2j)]
    x = tl.arange(8.0).reshape(4, 2)
    c = tl.view_as_complex(x)
    assert c.tolist() == [0 + 1j, 2 + 3j, 4 + 5j, 6 + 7j]
    c.mul_(1j)
    assert x[0].tolist() == [-1.0, 0.0]
    with pytest.raises(RuntimeError, match="Tensor must have a last dimension with stride 1"):
        tl.view_as_complex(x.t().contiguous().t())


def test_polar_complex_angle_values():
    r, t = tl.tensor([2.0, 0.5]), tl.tensor([0.3, -2.0])
    np.testing.assert_allclose(tl.polar(r, t).numpy(), np.array([2.0, 0.5]) * np.exp(1j * np.array([0.3, -2.0])),
                               rtol=1e-6)
    assert tl.complex(r, t).tolist() == [complex(2.0, np.float32(0.3)), complex(0.5, -2.0)]
    np.testing.assert_allclose(tl.angle(tl.polar(r, t)).numpy(), [0.3, -2.0], rtol=1e-6)
    assert tl.angle(tl.tensor([-1.0, 2.0, float("nan")])).tolist()[:2] == [pytest.approx(np.pi), 0.0]


def test_promotion_and_printing():
    assert (tl.ones(2) * 1j).dtype is tl.complex64
    assert (tl.ones(2, dtype=tl.float64) * 1j).dtype is tl.complex128
    assert (tl.ones(2, dtype=tl.float64) + tl.tensor(1j)).dtype is tl.complex128      # a 0-dim complex
    assert (tl.ones(2, dtype=tl.complex64) + tl.ones(2, dtype=tl.float64)).dtype is tl.complex128
    assert tl.tensor([1, 2j]).dtype is tl.complex64
    assert repr(tl.tensor([1 + 2j, 3.5 - 1j])) == "tensor([1.0000+2.j, 3.5000-1.j])"
    assert repr(tl.tensor(1j, dtype=tl.cdouble)) == "tensor(0.+1.j, dtype=tensorlib.complex128)"
    assert tl.tensor([1j]).type() == "tensorlib.ComplexFloatTensor"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert tl.tensor([1 + 2j]).float().tolist() == [1.0]
    assert "discards the imaginary part" in str(w[0].message)


def test_adam_updates_real_and_imaginary_parts_as_two_reals():
    """torch's Adam on a complex parameter is Adam on its view_as_real: the same as two real parameters."""
    w0, g0 = _c(3), _c(3)
    wc = tl.tensor(w0, requires_grad=True)
    wr = tl.tensor(np.stack([w0.real, w0.imag], -1), requires_grad=True)
    oc, orr = tl.optim.Adam([wc], lr=0.1), tl.optim.Adam([wr], lr=0.1)
    for k in range(3):
        wc.grad = tl.tensor(g0 * (k + 1))
        wr.grad = tl.tensor(np.stack([g0.real, g0.imag], -1) * (k + 1))
        oc.step()
        orr.step()
    np.testing.assert_allclose(tl.view_as_real(wc).detach().numpy(), wr.detach().numpy(), rtol=1e-12)
    assert oc.state[wc]["exp_avg_sq"].dtype is tl.complex128


def test_save_and_load_complex():
    buf = io.BytesIO()
    tl.save({"z": tl.tensor([1 + 2j, -3j], dtype=tl.cdouble)}, buf)
    buf.seek(0)
    z = tl.load(buf)["z"]
    assert z.dtype is tl.complex128 and z.tolist() == [1 + 2j, -3j]


def test_random_complex_draws():
    z = tl.randn(100000, dtype=tl.cfloat)
    assert z.dtype is tl.complex64
    assert abs(float(z.real.var()) - 0.5) < 0.02 and abs(float(z.imag.var()) - 0.5) < 0.02
    u = tl.rand(1000, dtype=tl.cdouble)
    assert 0 <= float(u.imag.min()) and float(u.imag.max()) < 1 and float(u.imag.std()) > 0.2


def test_refusals():
    with pytest.raises(NotImplementedError, match="Please use torch.sgn instead"):
        tl.sign(tl.tensor([1j]))
    with pytest.raises(RuntimeError, match="view_as_real is only supported for complex tensors"):
        tl.view_as_real(tl.ones(2))
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
        tl.ones(2).imag
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
        tl.tensor(1j, requires_grad=True).backward()


def test_cov_and_corrcoef_of_complex_rows_are_complex():
    """NumPy's complex covariance (conjugated second factor); it was cast to float32 before."""
    a = _c(3, 6)
    c = tl.cov(tl.tensor(a))
    assert c.dtype is tl.complex128
    np.testing.assert_allclose(c.numpy(), np.cov(a), rtol=1e-12)
    np.testing.assert_allclose(tl.corrcoef(tl.tensor(a)).numpy(), np.corrcoef(a), rtol=1e-12)


@pytest.mark.cuda
def test_complex_training_step_on_cuda_matches_the_cpu():
    """A complex parameter through view_as_complex/polar arithmetic, the engine's complex gradients and Adam's
    real views, on the GPU (the fake CuPy in CI) against the CPU."""
    w0, x0 = _c(4, 3), R.standard_normal((5, 4, 2))
    out = []
    for dev in ("cpu", "cuda"):
        w = tl.tensor(w0, device=dev, requires_grad=True)
        opt = tl.optim.Adam([w], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            z = tl.view_as_complex(tl.tensor(x0, device=dev)) @ w
            rot = tl.polar(tl.ones(3, dtype=tl.float64, device=dev), tl.arange(3.0, dtype=tl.float64, device=dev))
            loss = tl.view_as_real(z * rot).pow(2).mean() + z.abs().mean()
            loss.backward()
            opt.step()
        assert w.device.type == dev and opt.state[w]["exp_avg"].dtype is tl.complex128
        out.append(w.detach().cpu().numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-12)
