"""cupyx.scipy.special (fake): the functions tensorlib uses, as cupy ufuncs over SciPy's."""
from __future__ import annotations

import math

import numpy

from cupy._core import ufunc

try:
    import scipy.special as _ss
except ImportError:      # SciPy is optional: erf from the math module
    from cupy._core import _elementwise_arg, _wrap_np

    def erf(x):
        a = _elementwise_arg(x)
        a = numpy.asarray(a, dtype=numpy.result_type(a, numpy.float32) if hasattr(a, "dtype") else numpy.float64)
        return _wrap_np(numpy.vectorize(math.erf, otypes=[a.dtype])(a))

    def _erfinv_one(v):
        if not -1.0 <= v <= 1.0:
            return math.nan
        if abs(v) == 1.0:
            return math.copysign(math.inf, v)
        lo, hi = -6.0, 6.0
        for _ in range(200):        # bisection on math.erf: slow, exact enough for a stand-in
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if math.erf(mid) < v else (lo, mid)
        return 0.5 * (lo + hi)

    def erfinv(x):
        a = _elementwise_arg(x)
        a = numpy.asarray(a, dtype=numpy.result_type(a, numpy.float32) if hasattr(a, "dtype") else numpy.float64)
        return _wrap_np(numpy.vectorize(_erfinv_one, otypes=[a.dtype])(a))
else:
    erf = ufunc(_ss.erf)
    erfc = ufunc(_ss.erfc)
    erfinv = ufunc(_ss.erfinv)
    gammaln = ufunc(_ss.gammaln)
    digamma = ufunc(_ss.digamma)
    expit = ufunc(_ss.expit)
    # tensorlib/ops/special_math.py's (each in the real cupyx.scipy.special of CuPy 13 and 14)
    psi = ufunc(_ss.psi)
    from scipy.special import _ufuncs as _su
    zeta = ufunc(_su._zeta)        # scipy's zeta(x, q=None) is a function over this ufunc; CuPy's is the ufunc
    zeta.__name__ = zeta.name = "zeta"
    gammainc = ufunc(_ss.gammainc)
    gammaincc = ufunc(_ss.gammaincc)
    i0 = ufunc(_ss.i0)
    i0e = ufunc(_ss.i0e)
    i1 = ufunc(_ss.i1)
    i1e = ufunc(_ss.i1e)
    erfcx = ufunc(_ss.erfcx)
    ndtri = ufunc(_ss.ndtri)
    log_ndtr = ufunc(_ss.log_ndtr)
    entr = ufunc(_ss.entr)
    j0 = ufunc(_ss.j0)
    j1 = ufunc(_ss.j1)
    y0 = ufunc(_ss.y0)
    y1 = ufunc(_ss.y1)
    k0 = ufunc(_ss.k0)
    k1 = ufunc(_ss.k1)
    k0e = ufunc(_ss.k0e)
    k1e = ufunc(_ss.k1e)
