"""Sample calls for the complex ops of tensorlib/ops/complex_ops.py (see op_cases.py). Each is a real function of
real inputs that passes through complex tensors, so gradcheck (real finite differences) checks the complex
gradients end to end: torch's convention, the engine's conj(formula(conj(g))) for the complex arithmetic in
between, and each op's own formula. The linalg cases: eig (complex results of a complex matrix, through
phase-invariant quantities) and, under the names of torch's composites around them, the factorizations' complex
paths (their real ones are op_cases.py's), on well-conditioned matrices built from the leaf."""
import tensorlib as tl
from tests.tensorlib.op_cases import P, R


def _c(a):
    return tl.view_as_complex(a)


def _shift(z, *diag):
    """z plus a diagonal (of z's dtype and device): well-conditioned, well separated spectra."""
    return z + tl.diag(tl.tensor(list(diag), dtype=z.dtype, device=z.device))


def _hpd(a):
    z = _c(a)
    return z @ z.mH + _shift(z * 0, 3.0, 3.0, 3.0)


def _abs2(z):
    return (z * z.conj()).real


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
    # linalg (tensorlib/ops/factorize.py) on complex matrices
    "linalg_eig": lambda: (lambda a: (lambda w, v: tl.view_as_real(w) .sum(-1) + _abs2(v).sum(-2))(
        *tl.linalg.eig(_shift(_c(a), 0.0, 3.0, 6j))), (R(2, 3, 3, 2),)),
    "linalg_eigvals": lambda: (lambda a: tl.view_as_real(tl.linalg.eigvals(a + tl.tensor(
        [[1.0, -2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0]], dtype=a.dtype, device=a.device))), (R(2, 3, 3),)),
    "linalg_eigvalsh": lambda: (lambda a: tl.linalg.eigvalsh(_hpd(a) + _shift(_c(a) * 0, 0.0, 4.0, 8.0)),
                                (R(2, 3, 3, 2),)),
    "linalg_cholesky": lambda: (lambda a: tl.view_as_real(tl.linalg.cholesky(_hpd(a))), (R(2, 3, 3, 2),)),
    "logdet": lambda: (lambda a: tl.view_as_real(tl.logdet(_shift(_c(a), 2.0, 2.0, 2.0))), (R(2, 3, 3, 2),)),
    "linalg_svdvals": lambda: (lambda a: tl.linalg.svdvals(_c(a)), (R(2, 4, 3, 2),)),
    "svd": lambda: (lambda a: (lambda u, s, v: _abs2(u).sum(-1) + s.sum(-1, keepdim=True) + _abs2(v)[..., 0].sum(
        -1, keepdim=True))(*tl.svd(_c(a))), (R(2, 4, 3, 2),)),
    "linalg_lstsq": lambda: (lambda a, b: tl.view_as_real(tl.linalg.lstsq(_c(a), _c(b)).solution),
                             (R(2, 4, 3, 2), R(2, 4, 2, 2))),
    "linalg_lu_factor": lambda: (lambda a: tl.view_as_real(tl.linalg.lu_factor(_shift(_c(a), 3.0, -4.0, 5j)).LU),
                                 (R(2, 3, 3, 2),)),
    "linalg_lu_solve": lambda: (lambda a, b: tl.view_as_real(tl.linalg.lu_solve(
        *tl.linalg.lu_factor(_shift(_c(a), 3.0, -4.0, 5j)), _c(b), adjoint=True)), (R(2, 3, 3, 2), R(3, 2, 2))),
}
