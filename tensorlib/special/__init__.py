"""torch.special: torch 2.13's names, each dispatching the op torch's does.

Where torch's special function is an alias of an op tensorlib has (erf, expm1, sigmoid as expit, lgamma as
gammaln, ...), it opens torch's region (`aten::special_erf`) around that op, so a profile shows what torch's
shows: `aten::special_erf` over `aten::erf`. torch.special's own functions (i0e, erfcx, the Bessel functions,
the orthogonal polynomials, ...) are ops named as torch's (`special_i0e`), registered in
tensorlib/ops/special_math.py with their kernels (scipy.special on the CPU, cupyx.scipy.special on a GPU,
imported inside the kernels) and torch's backward formulas where torch has one.

`import tensorlib` does not import this module: `tensorlib.special` (or `import tensorlib.special`) does.
"""
from __future__ import annotations

import math

from .. import _hooks as _H
from ..ops import special_math as _S
from ..ops import unary_math as _U
from ..ops.unary_math import round as _round
from ..ops._define import dispatch, write_out
from ..ops.activation import sigmoid as _sigmoid
from ..ops.arithmetic import xlogy as _xlogy
from ..ops.extra_methods import sinc as _sinc
from ..ops.reduce import log_softmax as _log_softmax, logsumexp as _logsumexp, softmax as _softmax

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
    "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "digamma", "entr", "erf", "erfc",
    "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc", "gammaln", "hermite_polynomial_h",
    "hermite_polynomial_he", "i0", "i0e", "i1", "i1e", "laguerre_polynomial_l", "legendre_polynomial_p", "log1p",
    "log_ndtr", "log_softmax", "logit", "logsumexp", "modified_bessel_i0", "modified_bessel_i1",
    "modified_bessel_k0", "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "sinc",
    "softmax", "spherical_bessel_j0", "xlog1py", "xlogy", "zeta"]


def _alias(name, fn):
    """torch.special.<name> over tensorlib's `fn` (an op's function or a composite), inside the region
    `special_<name>` as torch records it."""
    def f(input, *, out=None):
        return write_out(_H.op_region("special_" + name, (input,), fn, input), out)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"torch.special.{name}: `aten::special_{name}` over tensorlib's {getattr(fn, '__name__', name)}."
    return f


def _own(o, name=None):
    """torch.special.<name> of op `o` (`special_<name>`): the op's own dispatch is torch's record."""
    def f(input, *, out=None):
        return write_out(dispatch(o, input), out)
    f.__name__ = f.__qualname__ = name or o.name[len("special_"):]
    f.__doc__ = f"torch.special.{f.__name__} (op `{o.name}`)."
    return f


def _own2(o):
    def f(input, other, *, out=None):
        return write_out(dispatch(o, input, other), out)
    f.__name__ = f.__qualname__ = o.name[len("special_"):]
    f.__doc__ = f"torch.special.{f.__name__} (op `{o.name}`)."
    return f


# --- aliases of tensorlib's ops ------------------------------------------------------------------------------

digamma = _alias("digamma", _S.digamma)
psi = _alias("psi", _S.digamma)
gammaln = _alias("gammaln", _S.lgamma)
i0 = _alias("i0", _S.i0)
erf = _alias("erf", _U.erf)
erfc = _alias("erfc", _U.erfc)
erfinv = _alias("erfinv", _U.erfinv)
exp2 = _alias("exp2", _U.exp2)
expm1 = _alias("expm1", _U.expm1)
log1p = _alias("log1p", _U.log1p)
expit = _alias("expit", _sigmoid)
sinc = _alias("sinc", _sinc)


def logit(input, eps=None, *, out=None):
    return write_out(_H.op_region("special_logit", (input,), _U.logit, input, eps), out)


def round(input, *, decimals=0, out=None):  # noqa: A001 - torch's name
    return write_out(_H.op_region("special_round", (input,), _round, input, decimals), out)


def xlogy(input, other, *, out=None):
    return write_out(_H.op_region("special_xlogy", (input, other), _xlogy, input, other), out)


def gammainc(input, other, *, out=None):
    return write_out(_H.op_region("special_gammainc", (input, other), _S.igamma, input, other), out)


def gammaincc(input, other, *, out=None):
    return write_out(_H.op_region("special_gammaincc", (input, other), _S.igammac, input, other), out)


def polygamma(n, input, *, out=None):
    _S._check_n(n, "special_polygamma")
    return write_out(_H.op_region("special_polygamma", (input,), _S.polygamma, n, input), out)


def multigammaln(input, p, *, out=None):
    return write_out(_H.op_region("special_multigammaln", (input,), _S.mvlgamma, input, p), out)


def ndtr(input, *, out=None):
    """The standard normal CDF, as torch composes it: (1 + erf(x / sqrt 2)) / 2."""
    def f(x):
        return (_U.erf(x * math.sqrt(0.5)) + 1) * 0.5
    return write_out(_H.op_region("special_ndtr", (input,), f, input), out)


def softmax(input, dim, *, dtype=None):
    return _H.op_region("special_softmax", (input,), _softmax, input, dim, dtype)


def log_softmax(input, dim, *, dtype=None):
    return _H.op_region("special_log_softmax", (input,), _log_softmax, input, dim, dtype)


def logsumexp(input, dim, keepdim=False, *, out=None):
    return write_out(_H.op_region("special_logsumexp", (input,), _logsumexp, input, dim, keepdim), out)


# --- torch.special's own ops ---------------------------------------------------------------------------------

i0e, i1, i1e = _own(_S.SPECIAL_I0E), _own(_S.SPECIAL_I1), _own(_S.SPECIAL_I1E)
erfcx, ndtri, log_ndtr, entr = (_own(_S.SPECIAL_ERFCX), _own(_S.SPECIAL_NDTRI), _own(_S.SPECIAL_LOG_NDTR),
                                _own(_S.SPECIAL_ENTR))
xlog1py, zeta = _own2(_S.SPECIAL_XLOG1PY), _own2(_S.SPECIAL_ZETA)
_B = _S.BESSEL_OPS
airy_ai, spherical_bessel_j0 = _own(_B["airy_ai"]), _own(_B["spherical_bessel_j0"])
bessel_j0, bessel_j1, bessel_y0, bessel_y1 = (_own(_B["bessel_j0"]), _own(_B["bessel_j1"]), _own(_B["bessel_y0"]),
                                              _own(_B["bessel_y1"]))
modified_bessel_i0, modified_bessel_i1 = _own(_B["modified_bessel_i0"]), _own(_B["modified_bessel_i1"])
modified_bessel_k0, modified_bessel_k1 = _own(_B["modified_bessel_k0"]), _own(_B["modified_bessel_k1"])
scaled_modified_bessel_k0 = _own(_B["scaled_modified_bessel_k0"])
scaled_modified_bessel_k1 = _own(_B["scaled_modified_bessel_k1"])
_P = _S.POLYNOMIAL_OPS
chebyshev_polynomial_t = _own2(_P["chebyshev_polynomial_t"])
chebyshev_polynomial_u = _own2(_P["chebyshev_polynomial_u"])
chebyshev_polynomial_v = _own2(_P["chebyshev_polynomial_v"])
chebyshev_polynomial_w = _own2(_P["chebyshev_polynomial_w"])
shifted_chebyshev_polynomial_t = _own2(_P["shifted_chebyshev_polynomial_t"])
shifted_chebyshev_polynomial_u = _own2(_P["shifted_chebyshev_polynomial_u"])
shifted_chebyshev_polynomial_v = _own2(_P["shifted_chebyshev_polynomial_v"])
shifted_chebyshev_polynomial_w = _own2(_P["shifted_chebyshev_polynomial_w"])
hermite_polynomial_h, hermite_polynomial_he = _own2(_P["hermite_polynomial_h"]), _own2(_P["hermite_polynomial_he"])
laguerre_polynomial_l, legendre_polynomial_p = _own2(_P["laguerre_polynomial_l"]), _own2(_P["legendre_polynomial_p"])
