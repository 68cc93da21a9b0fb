"""erf (and GELU through it) on NumPy without SciPy: Cephes' rational forms in float64, a tanh of a polynomial
in float16/32, on whole arrays, checked against libm's erf (math.erf) element by element, with the special
values."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.999999, 1.0000001, 8.0, -8.0, 7.9999, 1e-300, 5e-324, 27.0, 40.0, np.inf, -np.inf]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-15), (np.float32, 3e-7)])
def test_erf_matches_libm(dtype, rtol):
    x = np.concatenate([np.linspace(-12, 12, 48001), SPECIAL]).astype(dtype)
    got = tl.erf(tl.tensor(x)).numpy()
    assert got.dtype == dtype
    ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=rtol, atol=0)
    assert np.signbit(tl.erf(tl.tensor([-0.0], dtype=tl.float64)).numpy()[0])
    assert np.isnan(tl.erf(tl.tensor([np.nan, 0.5])).numpy()[0])


def test_gelu_matches_its_definition_and_int_erf_promotes():
    x = np.linspace(-6, 6, 1001)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    got = tl.nn.functional.gelu(tl.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)      # 1 + erf cancels near -2.6
    assert tl.erf(tl.tensor([0, 1])).dtype == tl.float32


def test_erf_does_not_import_scipy():
    code = ("import sys, tensorlib as tl; tl.nn.functional.gelu(tl.randn(3, 3, requires_grad=True)).sum().backward(); "
            "tl.erf(tl.ones(2)); print('scipy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_float32_gelu_and_its_backward_match_the_definition():
    """GELU's float32 normal CDF (a rational form, unary_math.normal_cdf32) through GELU and its backward kernel,
    against the float64 definition: the CDF within 6 float32 ulps of 1 (its tails' 1 + erf cancels: an error of
    |x| times that in GELU), NaN kept, the CDF in [0, 1] (GELU never takes the wrong sign) and saturated at both
    ends (GELU exactly x, and 0, in the tails)."""
    from tensorlib.ops._define import dispatch
    from tensorlib.ops.activation import GELU_BACKWARD
    x = np.concatenate([np.linspace(-12, 12, 24001), [0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30]]).astype(np.float32)
    xd = x.astype(np.float64)
    cdf = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in xd]))
    pdf = np.exp(-0.5 * np.minimum(xd * xd, 1e4)) / math.sqrt(2 * math.pi)
    got = tl.nn.functional.gelu(tl.tensor(x)).numpy()
    assert got.dtype == np.float32
    err = np.abs(got - xd * cdf)
    assert np.all(err <= 4e-7 * np.abs(xd * cdf) + 4e-7 * np.maximum(1.0, np.abs(xd))), err.max()
    assert not np.any((got != 0) & (np.signbit(got) != np.signbit(x)))
    tail = np.abs(x) >= 6.4
    assert np.array_equal(got[tail], np.where(x[tail] > 0, x[tail], 0))
    g = np.linspace(-2, 2, x.size).astype(np.float32)
    got_b = dispatch(GELU_BACKWARD, tl.tensor(g), tl.tensor(x)).numpy()
    np.testing.assert_allclose(got_b, g * (cdf + xd * pdf), rtol=4e-7, atol=4e-7)
    assert np.isnan(tl.nn.functional.gelu(tl.tensor([np.nan], dtype=tl.float32)).numpy()[0])


def test_float16_erf_keeps_its_dtype():
    x = np.linspace(-3, 3, 61).astype(np.float16)
    got = tl.erf(tl.tensor(x)).numpy()
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), [math.erf(v) for v in x.astype(np.float64)], atol=1e-3)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [tl.float16, tl.float32, tl.float64])
def test_gelu_of_a_0d_tensor_and_its_backward(dtype, approximate):
    """A 0-d tensor's GELU (torch: tensor(0.1854) for 0.3): the kernels' in-place steps need arrays, where NumPy
    gives scalars for 0-d operands; it raised TypeError("return arrays must be of ArrayType")."""
    for v in (0.3, -2.0, 0.0):
        x = tl.tensor(v, dtype=dtype, requires_grad=dtype is not tl.float16)
        y = tl.nn.functional.gelu(x, approximate=approximate)
        assert y.shape == () and y.dtype == dtype
        cdf = 0.5 * (1 + math.erf(v / math.sqrt(2)))
        want = v * cdf if approximate == "none" else \
            0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
        assert y.item() == pytest.approx(want, rel=1e-3, abs=1e-3)
        same = tl.nn.functional.gelu(tl.tensor([v], dtype=dtype), approximate=approximate)
        assert y.item() == same.item()      # the same kernel as on one element
        if x.requires_grad:
            y.backward()
            g1 = tl.tensor([v], dtype=dtype, requires_grad=True)
            tl.nn.functional.gelu(g1, approximate=approximate).sum().backward()
            assert x.grad.shape == () and x.grad.item() == g1.grad.item()
