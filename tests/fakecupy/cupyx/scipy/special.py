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
