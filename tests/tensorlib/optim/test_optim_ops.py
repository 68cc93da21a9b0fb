"""addcmul / addcdiv / lerp: values against NumPy, gradients by finite differences, in-place variants."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck


def _t(*shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return tl.tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True)


def test_values():
    a, b, c = _t(3, 4), _t(4, seed=1), _t(3, 1, seed=2, positive=True)
    A, B, C = (x.detach().numpy() for x in (a, b, c))
    np.testing.assert_allclose(tl.addcmul(a, b, c, value=0.5).detach().numpy(), A + 0.5 * B * C)
    np.testing.assert_allclose(a.addcdiv(b, c, value=-2).detach().numpy(), A - 2 * B / C)
    np.testing.assert_allclose(tl.lerp(a, b, 0.25).detach().numpy(), A + 0.25 * (B - A))
    np.testing.assert_allclose(tl.lerp(a, b, 0.75).detach().numpy(), A + 0.75 * (B - A))
    w = tl.tensor(np.array([0.1, 0.9, 0.5, -0.3]))
    np.testing.assert_allclose(tl.lerp(a, b, w).detach().numpy(), A + w.numpy() * (B - A))


def test_gradients():
    a, b, c = _t(3, 4), _t(4, seed=1), _t(3, 1, seed=2, positive=True)
    assert gradcheck(lambda x, y, z: tl.addcmul(x, y, z, value=0.7), (a, b, c))
    assert gradcheck(lambda x, y, z: tl.addcdiv(x, y, z, value=-1.3), (a, b, c))
    assert gradcheck(lambda x, y: tl.lerp(x, y, 0.3), (a, b))
    w = _t(3, 4, seed=4)
    assert gradcheck(lambda x, y, z: tl.lerp(x, y, z), (a, b, w))


def test_inplace_under_no_grad_bumps_version_and_writes_target():
    a = tl.zeros(3)
    v = a._version
    out = a.addcmul_(tl.ones(3), tl.full((3,), 2.0), value=3)
    assert out is a and a.tolist() == [6.0, 6.0, 6.0] and a._version == v + 1
    a.addcdiv_(tl.ones(3), tl.full((3,), 4.0))
    a.lerp_(tl.zeros(3), 0.5)
    assert a.tolist() == [3.125, 3.125, 3.125]


def test_inplace_records_autograd_on_non_leaf():
    x = _t(3)
    y = x * 1
    y.addcmul_(x, x, value=2)          # y = x + 2x^2 -> dy/dx = 1 + 4x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 + 4 * x.detach().numpy())


def test_inplace_cannot_broadcast_target():
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        tl.zeros(3).addcmul_(tl.ones(2, 3), tl.ones(3))


def test_integer_addcdiv_is_refused():
    with pytest.raises(RuntimeError, match="Integer division with addcdiv"):
        tl.addcdiv(tl.zeros(2), tl.ones(2, dtype=tl.int64), tl.ones(2, dtype=tl.int64))
