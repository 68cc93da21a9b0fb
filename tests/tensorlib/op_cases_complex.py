"""Sample calls for the complex ops of tensorlib/ops/complex_ops.py (see op_cases.py). Each is a real function of
real inputs that passes through complex tensors, so gradcheck (real finite differences) checks the complex
gradients end to end: torch's convention, the engine's conj(formula(conj(g))) for the complex arithmetic in
between, and each op's own formula."""
import tensorlib as tl
from tests.tensorlib.op_cases import P, R


def _c(a):
    return tl.view_as_complex(a)


CASES = {
    "view_as_complex": lambda: (lambda a: tl.view_as_real(_c(a) * (0.5 - 2j)), (R(3, 2),)),
    "view_as_real": lambda: (lambda a: tl.view_as_real(_c(a) * _c(a)).sum(-1), (R(4, 2),)),
    "complex": lambda: (lambda a, b: tl.view_as_real(tl.complex(a, b) ** 2), (R(3), R(3))),
    "polar": lambda: (lambda r, t: tl.view_as_real(tl.polar(r, t) * tl.polar(t, r)), (P(3), P(3))),
    "angle": lambda: (lambda a: tl.angle(_c(a) * (1 + 1j)), (R(3, 2),)),
    "real": lambda: (lambda a: tl.real(_c(a) ** 3), (R(3, 2),)),
    "imag": lambda: (lambda a: tl.imag(_c(a).exp()), (R(3, 2),)),
    "conj": lambda: (lambda a: tl.view_as_real(_c(a).conj() * _c(a) ** 2), (R(3, 2),)),
    "conj_physical": lambda: (lambda a: tl.view_as_real(tl.conj_physical(_c(a)) @ _c(a)), (R(3, 2),)),
}
