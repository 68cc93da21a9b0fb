"""Sample calls of the Fourier-transform ops (tensorlib/ops/fft_ops.py: torch's _fft_r2c, _fft_c2r, _fft_c2c),
for the shared op tests: hook coverage, gradcheck in float64 and the CUDA runs against the fake CuPy.

gradcheck differentiates real float64 leaves and real outputs, so a complex operand enters as view_as_complex
of a (..., 2) leaf and a complex result leaves as view_as_real: the finite differences then see the real and
imaginary parts separately, which checks the ops' complex formulas (torch's convention) entry by entry."""
from __future__ import annotations

import tensorlib as tl
from tensorlib.ops import fft_ops as F
from tests.tensorlib.op_cases import R


def _c(fn):
    """fn of a complex operand made from the real leaf's last dim (re, im)."""
    return lambda a: fn(tl.view_as_complex(a))


CASES = {
    # c2c over two dims, the inverse direction, 1/sqrt(n) scaling
    "_fft_c2c": lambda: (_c(lambda z: tl.view_as_real(F.fft_c2c(z, (0, 2), F.NORM_BY_ROOT_N, False))),
                         [R(3, 2, 4, 2)]),
    # the half spectrum over the last two dims, unscaled
    "_fft_r2c": lambda: (lambda a: tl.view_as_real(F.fft_r2c(a, (1, 2), F.NORM_NONE, True)), [R(2, 3, 5)]),
    # odd output length (7 points from 4 bins): the doubled bins run to the end of the half spectrum
    "_fft_c2r": lambda: (_c(lambda z: F.fft_c2r(z, (0, 1), F.NORM_BY_N, 7)), [R(3, 4, 2)]),
}
