"""tensorlib.special and the gamma/Bessel ops against identities and series (no SciPy or torch reference):
lgamma(n) = log((n-1)!), digamma(1) = -euler_gamma, the recurrences of digamma and polygamma, i0's power series,
the normal distribution's functions against erf, the orthogonal polynomials against their closed forms, and
float64 gradchecks of every differentiable op."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.special as S
from tensorlib.autograd import gradcheck

EULER = 0.57721566490153286061


def t(v, dtype=tl.float64, grad=False):
    return tl.tensor(np.asarray(v, dtype=np.float64), dtype=dtype, requires_grad=grad)


def close(a, b, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(a.numpy() if isinstance(a, tl.Tensor) else a,
                               b.numpy() if isinstance(b, tl.Tensor) else b, rtol=rtol, atol=atol, equal_nan=True)


def test_import_tensorlib_imports_neither_scipy_nor_special():
    code = "import sys, tensorlib; print('scipy' in sys.modules, 'tensorlib.special' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_lgamma_at_integers_and_halves():
    n = np.arange(1, 30)
    close(tl.lgamma(t(n)), [math.log(math.factorial(k - 1)) for k in n], rtol=1e-13)
    close(S.gammaln(t([0.5])), [0.5 * math.log(math.pi)])
    # log|Gamma| at a negative non-integer: Gamma(-0.5) = -2 sqrt(pi)
    close(tl.lgamma(t([-0.5])), [math.log(2 * math.sqrt(math.pi))])
    assert tl.lgamma(t([0.0, -1.0, -2.0])).tolist() == [math.inf] * 3


def test_digamma_values_and_recurrence():
    close(tl.digamma(t([1.0])), [-EULER])
    close(S.psi(t([0.5])), [-EULER - 2 * math.log(2)])
    x = t(np.linspace(-3.7, 9.3, 41))
    close(tl.digamma(x + 1), tl.digamma(x) + 1 / x, rtol=1e-10, atol=1e-11)      # psi(x+1) = psi(x) + 1/x
    # torch's conventions at the poles: -inf at +0, +inf at -0, NaN at the negative integers
    r = tl.digamma(t([0.0, -0.0, -1.0, -2.0])).tolist()
    assert r[0] == -math.inf and r[1] == math.inf and math.isnan(r[2]) and math.isnan(r[3])


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_polygamma_values_and_recurrence(n):
    # polygamma(n, 1) = (-1)^(n+1) n! zeta(n+1); zeta(2) = pi^2/6, zeta(4) = pi^4/90
    zeta = {2: math.pi ** 2 / 6, 3: 1.2020569031595942, 4: math.pi ** 4 / 90, 5: 1.0369277551433699}[n + 1]
    close(tl.polygamma(n, t([1.0])), [(-1) ** (n + 1) * math.factorial(n) * zeta], rtol=1e-12)
    # psi^(n)(x+1) = psi^(n)(x) + (-1)^n n! / x^(n+1)
    x = t(np.linspace(0.3, 7.1, 20))
    close(tl.polygamma(n, x + 1), tl.polygamma(n, x) + (-1) ** n * math.factorial(n) / x ** (n + 1), rtol=1e-10)
    close(tl.polygamma(0, x), tl.digamma(x))
    close(x.polygamma(n), S.polygamma(n, x))


def test_mvlgamma_is_a_sum_of_lgammas():
    x = t(np.linspace(2.1, 9.0, 13))
    for p in (1, 2, 4):
        want = sum(tl.lgamma(x - j / 2) for j in range(p)) + p * (p - 1) / 4 * math.log(math.pi)
        close(tl.mvlgamma(x, p), want, rtol=1e-13)
        close(S.multigammaln(x, p), want, rtol=1e-13)
    y = x.clone()
    assert y.mvlgamma_(3) is y
    close(y, tl.mvlgamma(x, 3))


def test_i0_series_and_scaled_forms():
    x = np.linspace(-12, 12, 49)
    series = sum((x / 2) ** (2 * k) / math.factorial(k) ** 2 for k in range(80))
    close(tl.i0(t(x)), series, rtol=1e-13)
    close(S.i0e(t(x)), series * np.exp(-np.abs(x)), rtol=1e-13)
    i1 = sum((x / 2) ** (2 * k + 1) / (math.factorial(k) * math.factorial(k + 1)) for k in range(80))
    close(S.i1(t(x)), i1, rtol=1e-13, atol=1e-300)
    close(S.i1e(t(x)), i1 * np.exp(-np.abs(x)), rtol=1e-13, atol=1e-300)
    close(S.modified_bessel_i0(t(x)), series, rtol=1e-13)


def test_bessel_j0_series():
    x = np.linspace(-6, 6, 25)
    j0 = sum((-1) ** k * (x / 2) ** (2 * k) / math.factorial(k) ** 2 for k in range(60))
    close(S.bessel_j0(t(x)), j0, rtol=1e-10, atol=1e-13)
    close(S.spherical_bessel_j0(t(x)), np.where(x == 0, 1.0, np.sin(x) / np.where(x == 0, 1, x)), rtol=1e-14)


def test_normal_distribution_functions():
    x = t(np.linspace(-6, 6, 49))
    ndtr = (tl.erf(x / math.sqrt(2)) + 1) / 2
    close(S.ndtr(x), ndtr)
    close(S.log_ndtr(x), tl.log(ndtr), rtol=1e-9)      # (the reference loses digits in the far tail)
    close(S.ndtri(S.ndtr(x)), x, rtol=1e-7, atol=1e-7)     # (ndtr(6) is 1 - 1e-9: 7 digits remain)
    xs = x[x <= 2]          # (beyond, 1 - erf(x) cancels)
    close(S.erfcx(xs), tl.exp(xs * xs) * (1 - tl.erf(xs)), rtol=1e-8)
    big = t([30.0, 100.0])  # erfcx(x) ~ (1 - 1/(2x^2) + 3/(4x^4)) / (x sqrt(pi))
    close(S.erfcx(big), (1 - 1 / (2 * big ** 2) + 3 / (4 * big ** 4)) / (big * math.sqrt(math.pi)), rtol=1e-7)


def test_incomplete_gamma():
    x = t(np.linspace(0.1, 20, 30))
    close(tl.igamma(t(1.0), x), 1 - tl.exp(-x))                      # P(1, x) = 1 - e^-x
    close(tl.igammac(t(2.0), x), (1 + x) * tl.exp(-x))               # Q(2, x) = (1 + x) e^-x
    close(S.gammainc(t(3.0), x) + S.gammaincc(t(3.0), x), np.ones(30))
    a = t([1.5, 2.5])
    b = a.clone()
    assert b.igamma_(t([0.7, 0.3])) is b
    close(b, tl.igamma(a, t([0.7, 0.3])))


def test_zeta_entr_xlog1py():
    close(S.zeta(t([2.0, 4.0]), 1.0), [math.pi ** 2 / 6, math.pi ** 4 / 90])
    close(S.zeta(t(2.0), t([2.0])), [math.pi ** 2 / 6 - 1])
    close(S.entr(t([0.0, 0.5, 2.0, -1.0])), [0.0, 0.5 * math.log(2), -2 * math.log(2), -math.inf])
    close(S.xlog1py(t([0.0, 2.0, 0.0]), t([-1.0, 1.0, math.nan])), [0.0, 2 * math.log(2), math.nan])


def test_dtypes():
    i = tl.tensor([1, 2, 3])
    for f in (tl.lgamma, tl.digamma, tl.i0, S.i0e, S.erfcx, S.entr, S.bessel_j0):
        assert f(i).dtype == tl.float32
    assert tl.lgamma(tl.tensor([0.5], dtype=tl.float16)).dtype == tl.float16
    assert S.chebyshev_polynomial_t(tl.tensor([0.5], dtype=tl.float32), tl.tensor([3.0])).dtype == tl.float32
    assert S.chebyshev_polynomial_t(tl.tensor([0.5], dtype=tl.float32), t([3.0])).dtype == tl.float64
    with pytest.raises(NotImplementedError, match="bessel_j0_cpu\" not implemented for 'Half'"):
        S.bessel_j0(tl.tensor([0.5], dtype=tl.float16))


def test_orthogonal_polynomials_closed_forms():
    x = np.linspace(-0.95, 0.95, 21)
    xs = t(x)
    for n in range(12):
        th = np.arccos(x)
        close(S.chebyshev_polynomial_t(xs, n), np.cos(n * th), rtol=1e-9, atol=1e-12)
        close(S.chebyshev_polynomial_u(xs, n), np.sin((n + 1) * th) / np.sin(th), rtol=1e-9, atol=1e-12)
        close(S.chebyshev_polynomial_v(xs, n), np.cos((n + 0.5) * th) / np.cos(th / 2), rtol=1e-9, atol=1e-12)
        close(S.chebyshev_polynomial_w(xs, n), np.sin((n + 0.5) * th) / np.sin(th / 2), rtol=1e-9, atol=1e-12)
        y = (x + 1) / 2     # shifted: T*_n(y) = T_n(2y - 1)
        close(S.shifted_chebyshev_polynomial_t(t(y), n), np.cos(n * th), rtol=1e-9, atol=1e-12)
        close(S.shifted_chebyshev_polynomial_u(t(y), n), np.sin((n + 1) * th) / np.sin(th), rtol=1e-9, atol=1e-12)
    # explicit low orders
    close(S.hermite_polynomial_h(xs, 3), 8 * x ** 3 - 12 * x)
    close(S.hermite_polynomial_he(xs, 4), x ** 4 - 6 * x ** 2 + 3)
    close(S.laguerre_polynomial_l(xs, 3), (-x ** 3 + 9 * x ** 2 - 18 * x + 6) / 6)
    close(S.legendre_polynomial_p(xs, 4), (35 * x ** 4 - 30 * x ** 2 + 3) / 8)
    # per-element degrees, negative ones 0, torch's ends
    n = t([-1.0, 0.0, 1.0, 2.0, 3.0])
    close(S.legendre_polynomial_p(t([0.5] * 5), n), [0.0, 1.0, 0.5, -0.125, -0.4375])
    close(S.chebyshev_polynomial_t(t([-1.0] * 5), n), [0.0, 1.0, -1.0, 1.0, -1.0])
    assert not S.hermite_polynomial_h(tl.tensor([0.5], requires_grad=True), 3).requires_grad


def test_aliases_dispatch_the_same_ops():
    x = t(np.linspace(-0.9, 0.9, 7))
    for name, ref in [("erf", tl.erf), ("erfc", lambda v: 1 - tl.erf(v)), ("erfinv", tl.erfinv), ("exp2", tl.exp2),
                      ("expm1", tl.expm1), ("log1p", tl.log1p), ("expit", tl.sigmoid), ("sinc", tl.sinc),
                      ("round", tl.round), ("i0", tl.i0), ("gammaln", tl.lgamma), ("psi", tl.digamma)]:
        close(getattr(S, name)(x), ref(x), rtol=1e-15, atol=1e-15)
    close(S.logit(x.abs()), tl.logit(x.abs()))
    close(S.xlogy(x, x.abs()), tl.xlogy(x, x.abs()))
    close(S.softmax(x, 0), tl.softmax(x, 0))
    close(S.log_softmax(x, 0), tl.log_softmax(x, 0))
    close(S.logsumexp(x, 0), tl.logsumexp(x, 0))
    out = tl.empty(7, dtype=tl.float64)
    assert S.i0e(x, out=out) is out
    close(out, S.i0e(x))


GRADS = {
    "lgamma": (tl.lgamma, [[0.3, 2.5, -1.5, 7.0]]),
    "lgamma_": (lambda a: (a * 1).lgamma_(), [[0.3, 2.5, 7.0]]),
    "digamma": (tl.digamma, [[0.3, 2.5, -1.5, 7.0]]),
    "polygamma": (lambda a: tl.polygamma(3, a), [[0.3, 2.5, 7.0]]),
    "mvlgamma": (lambda a: tl.mvlgamma(a, 4), [[1.6, 2.5, 7.0]]),
    "i0": (tl.i0, [[-2.0, 0.3, 5.0]]),
    "i0e": (S.i0e, [[-2.0, 0.3, 5.0]]),
    "i1": (S.i1, [[-2.0, 0.3, 5.0]]),
    "i1e": (S.i1e, [[-2.0, 0.3, 5.0]]),
    "erfcx": (S.erfcx, [[-2.0, 0.3, 5.0]]),
    "ndtri": (S.ndtri, [[0.05, 0.3, 0.9]]),
    "log_ndtr": (S.log_ndtr, [[-9.0, 0.3, 5.0]]),
    "ndtr": (S.ndtr, [[-2.0, 0.3, 5.0]]),
    "entr": (S.entr, [[0.2, 1.3, 5.0]]),
    "xlog1py": (S.xlog1py, [[0.2, -1.3, 5.0], [0.5, 2.0, 0.1]]),
    "igamma": (lambda x: tl.igamma(t([0.5, 2.0, 4.0]), x), [[0.2, 1.3, 5.0]]),
    "igammac": (lambda x: tl.igammac(t([0.5, 2.0, 4.0]), x), [[0.2, 1.3, 5.0]]),
    "zeta": (lambda q: S.zeta(t([2.0, 3.0, 6.0]), q), [[0.2, 1.3, 5.0]]),
    "multigammaln": (lambda a: S.multigammaln(a, 2), [[1.6, 2.5]]),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradcheck(name):
    f, inputs = GRADS[name]
    assert gradcheck(f, [t(v, grad=True) for v in inputs])


def test_i1_gradient_at_zero_is_half():
    x = t([0.0, 1e-20], grad=True)
    S.i1(x).sum().backward()
    assert x.grad.tolist() == [0.5, 0.5]
    x = t([0.0], grad=True)
    S.i1e(x).sum().backward()
    assert x.grad.tolist() == [0.5]


def test_first_argument_gradients_refused():
    a = t([1.0, 2.0], grad=True)
    with pytest.raises(NotImplementedError, match="the derivative for 'igamma: input' is not implemented."):
        tl.igamma(a, t([0.5, 1.0])).sum().backward()
    with pytest.raises(NotImplementedError, match="the derivative for 'zeta' is not implemented."):
        S.zeta(a + 1, t([0.5, 1.0])).sum().backward()


def test_errors():
    with pytest.raises(RuntimeError, match=r"polygamma\(n, x\) does not support negative n."):
        tl.polygamma(-1, t([1.0]))
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        tl.mvlgamma(t([1.0]), 0)
    with pytest.raises(NotImplementedError, match="\"igamma_cpu\" not implemented for 'Long'"):
        tl.igamma(tl.tensor([1, 2]), tl.tensor([1, 2]))
