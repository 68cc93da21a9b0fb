"""Sample calls of the special-function ops (tensorlib/ops/special_math.py), for the shared op tests: hook
coverage, gradcheck in float64 (the ops torch differentiates) and the CUDA runs against the fake CuPy."""
from __future__ import annotations

import tensorlib as tl
import tensorlib.special as S
from tests.tensorlib import op_cases
from tests.tensorlib.op_cases import P, R


def U(*shape, lo=0.1, hi=0.9, grad=True):
    """float64 values in (lo, hi): ndtri's domain, away from its ends (drawn from op_cases' generator, which
    the CUDA-against-CPU test replays)."""
    return tl.tensor(op_cases._rng.uniform(lo, hi, shape), requires_grad=grad)


def _deg():
    return tl.tensor([0.0, 1.0, 2.0, 3.0, 5.0, 9.0], dtype=tl.float64)


CASES = {
    "lgamma": lambda: (tl.lgamma, [P(5)]),
    "lgamma_": lambda: (lambda a: (a * 1).lgamma_(), [P(3, 4)]),
    "digamma": lambda: (tl.digamma, [P(5)]),
    "digamma_": lambda: (lambda a: (a * 1).digamma_(), [P(3, 4)]),
    "polygamma": lambda: (lambda a: tl.polygamma(2, a), [P(5)]),
    "mvlgamma": lambda: (lambda a: tl.mvlgamma(a + 1.0, 3), [P(5)]),
    "igamma": lambda: (lambda x: tl.igamma(tl.tensor([0.5, 1.5, 3.0, 7.0], dtype=tl.float64), x), [P(3, 4)]),
    "igammac": lambda: (lambda x: tl.igammac(tl.tensor([0.5, 1.5, 3.0, 7.0], dtype=tl.float64), x), [P(3, 4)]),
    "i0": lambda: (tl.i0, [R(5)]),
    "i0_": lambda: (lambda a: (a * 1).i0_(), [R(3, 4)]),
    "special_i0e": lambda: (S.i0e, [R(5)]),
    "special_i1": lambda: (S.i1, [R(5)]),
    "special_i1e": lambda: (S.i1e, [R(5)]),
    "special_erfcx": lambda: (S.erfcx, [R(5)]),
    "special_ndtri": lambda: (S.ndtri, [U(5)]),
    "special_log_ndtr": lambda: (S.log_ndtr, [R(5)]),
    "special_entr": lambda: (S.entr, [P(5)]),
    "special_xlog1py": lambda: (S.xlog1py, [R(3, 4), P(4)]),
    "special_zeta": lambda: (lambda q: S.zeta(tl.tensor([2.0, 3.5, 5.0, 9.0], dtype=tl.float64), q), [P(3, 4)]),
    **{f"special_{n}": (lambda n=n: (getattr(S, n), [P(5)])) for n in (
        "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
        "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
        "spherical_bessel_j0")},
    **{f"special_{n}": (lambda n=n: (lambda x: getattr(S, n)(x, _deg()), [U(3, 6, lo=-0.9, grad=False)])) for n in (
        "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
        "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
        "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
        "legendre_polynomial_p")},
}
