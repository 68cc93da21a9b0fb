"""tensorlib/ops/arithmetic.py against NumPy references."""
from __future__ import annotations

import numpy as np

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


def test_binary_math_and_nan_to_num():
    a = rng.standard_normal((3, 4))
    b = rng.uniform(0.5, 2.0, 4)
    eq(tl.atan2(T(a), T(b)), np.arctan2(a, b))
    eq(tl.arctan2(T(a), T(b)), np.arctan2(a, b))
    eq(tl.hypot(T(a), T(b)), np.hypot(a, b))
    eq(tl.fmod(T(a), T(b)), np.fmod(a, b))
    eq(tl.fmod(T(a), 0.5), np.fmod(a, 0.5))
    eq(tl.fmod(T([5, -5]), 3), [2, -2], tl.int64)
    assert tl.atan2(T([1, 2]), T([1, 1])).dtype == tl.float32
    for fn in (tl.atan2, tl.hypot, tl.fmod):
        assert gradcheck(fn, [T(a, grad=True), T(b, grad=True)])
    z = T([1.0, np.nan, np.inf, -np.inf])
    big = np.finfo(np.float64).max
    eq(tl.nan_to_num(z), [1.0, 0.0, big, -big])
    eq(z.nan_to_num(2.0, 3.0, -3.0), [1.0, 2.0, 3.0, -3.0])
    eq(tl.nan_to_num(z.float()), np.nan_to_num(z.numpy().astype(np.float32)))


def test_pow_gradient_with_a_tensor_exponent_that_needs_none():
    """The quiet backward takes Python exponents only: a tensor exponent (not requiring grad) goes through the
    dispatched formula, g * b * a ** (b - 1)."""
    a = tl.tensor([1.0, 2.0, 3.0], dtype=tl.float64, requires_grad=True)
    (a ** tl.tensor([2.0, 3.0, 0.5], dtype=tl.float64)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 12.0, 0.5 / np.sqrt(3.0)])


def test_size_plus_tuple_is_a_size():
    s = tl.Size([2]) + (3,)
    assert isinstance(s, tl.Size) and s == (2, 3) and repr(s).endswith("Size([2, 3])")


def test_pow_fast_exponents_of_a_0d_tensor():
    # x ** 3, ** -2, ** -0.5 take products (torch's optimized kernel); a 0-d input's product is a NumPy scalar,
    # which the in-place second step could not write into
    for b in (3, -2, -0.5):
        x = tl.tensor(2.0, dtype=tl.float64, requires_grad=True)
        y = x ** b
        y.backward()
        np.testing.assert_allclose(y.item(), 2.0 ** b, rtol=1e-15)
        np.testing.assert_allclose(x.grad.item(), b * 2.0 ** (b - 1), rtol=1e-15)
        assert (tl.tensor(2.0) ** b).shape == ()
