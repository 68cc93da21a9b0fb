"""tensorlib.linalg on complex matrices (and torch.slogdet, logdet, cholesky_solve, svd, ... and their Tensor
methods) against torch 2.13 side by side: complex64 and complex128 values, result dtypes (svd's S, eigh's
eigenvalues, slogdet's logabsdet, lstsq's residuals are real), complex128 input gradients of a real loss that
weighs real and imaginary parts differently (to 1e-8), eig and eigvals of real matrices (complex results, real
gradients), and the complex-only errors (the gauge checks of svd, eigh and eig backward). Factorizations defined
up to a phase per vector (svd's U and V, eigh's and eig's eigenvectors) are compared through phase-invariant
quantities (|U|², reconstructions, projectors)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
R = np.random.default_rng(23)


def _c(*s):
    return R.standard_normal(s) + 1j * R.standard_normal(s)


def _sq(*batch, n=4):
    return _c(*batch, n, n) + n * np.eye(n)


def _hpd(*batch, n=4):
    x = _c(*batch, n, n)
    return x @ np.conj(np.swapaxes(x, -1, -2)) + n * np.eye(n)


def _unitary(*batch, n=4):
    return np.linalg.qr(_c(*batch, n, n))[0]


def _distinct_herm(*batch, n=4):
    """Hermitian with well separated eigenvalues (eigh's gradient divides by their gaps)."""
    q = _unitary(*batch, n=n)
    w = np.arange(1.0, n + 1) * 1.5 + R.uniform(-0.3, 0.3, (*batch, n))
    return (q * w[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def _distinct_general(*batch, n=4, real=False):
    """A general (non-normal) matrix with well separated eigenvalues: X diag(w) X^{-1}."""
    x = (R.standard_normal((*batch, n, n)) if real else _c(*batch, n, n)) + 2 * np.eye(n)
    w = np.arange(1.0, n + 1) * 1.5 + (0 if real else 1j * R.uniform(-1, 1, (*batch, n)))
    return (x * w[..., None, :]) @ np.linalg.inv(x)


def _abs2(L, t):
    return (t * t.conj()).real


SQ, HPD, HERM, TALL, WIDE = _sq(2), _hpd(2), _distinct_herm(2), _c(2, 5, 3), _c(2, 3, 5)
B3 = _c(2, 4, 3)
GEN = _distinct_general(2)
REAL_GEN = _distinct_general(2, real=True)
# a real matrix with a conjugate pair of eigenvalues (1 ± 2i) and a real one
ROT = np.array([[1.0, -2.0, 0.3], [2.0, 1.0, -0.1], [0.2, 0.1, 3.0]])


def _recon(L, u, s, vh):
    return (u * s.unsqueeze(-2).to(u.dtype)) @ vh


# name -> (inputs, fn(lib, *tensors) -> tensor or tuple of tensors to compare, "nograd" or None)
CASES = {
    "det": ((SQ,), lambda L, a: L.linalg.det(a), None),
    "slogdet": ((SQ,), lambda L, a: tuple(L.linalg.slogdet(a)), None),
    "slogdet_sign_only": ((SQ,), lambda L, a: L.linalg.slogdet(a).sign, None),
    "slogdet_logabs_only": ((SQ,), lambda L, a: L.linalg.slogdet(a).logabsdet, None),
    "torch_slogdet": ((SQ,), lambda L, a: tuple(L.slogdet(a)), None),
    "slogdet_method": ((SQ,), lambda L, a: tuple(a.slogdet()), None),
    "logdet": ((SQ,), lambda L, a: L.logdet(a), None),
    "logdet_method": ((HPD,), lambda L, a: a.logdet(), None),
    "cholesky": ((HPD,), lambda L, a: L.linalg.cholesky(a), None),
    "cholesky_upper": ((HPD,), lambda L, a: L.linalg.cholesky(a, upper=True), None),
    "cholesky_ex": ((HPD,), lambda L, a: L.linalg.cholesky_ex(a).L, None),
    "cholesky_herm_grad": ((SQ,), lambda L, a: L.linalg.cholesky(a @ a.mH + 4 * L.eye(4, dtype=a.dtype)), None),
    # the lower triangle is read: the upper one (and the diagonal's imaginary part) is ignored, as potrf's
    "cholesky_lower_read": ((HPD + np.triu(_c(2, 4, 4), 1) + 0.5j * np.eye(4),),
                            lambda L, a: L.linalg.cholesky(a), None),
    "torch_cholesky": ((HPD,), lambda L, a: L.cholesky(a), None),
    "cholesky_solve": ((B3, HPD), lambda L, b, a: L.cholesky_solve(b, L.linalg.cholesky(a)), None),
    "cholesky_solve_upper": ((B3, HPD), lambda L, b, a: L.cholesky_solve(b, L.linalg.cholesky(a, upper=True),
                                                                        upper=True), None),
    "cholesky_inverse": ((HPD,), lambda L, a: L.cholesky_inverse(L.linalg.cholesky(a)), None),
    "eigh": ((HERM,), lambda L, a: (lambda w, v: (w, _abs2(L, v), v @ (w.to(v.dtype).unsqueeze(-1) * v.mH)))(
        *L.linalg.eigh(a)), None),
    "eigh_upper": ((HERM,), lambda L, a: (lambda w, v: (w, _abs2(L, v)))(*L.linalg.eigh(a, UPLO="U")), None),
    "eigh_projector": ((HERM,), lambda L, a: (lambda w, v: v[..., :2] @ v[..., :2].mH)(*L.linalg.eigh(a)), None),
    "eigvalsh": ((HERM,), lambda L, a: L.linalg.eigvalsh(a), None),
    "eigvalsh_upper": ((HERM,), lambda L, a: L.linalg.eigvalsh(a, UPLO="U"), None),
    "svd_reconstruct": ((TALL,), lambda L, a: _recon(L, *L.linalg.svd(a, full_matrices=False)), None),
    "svd_phaseless": ((TALL,), lambda L, a: (lambda u, s, vh: (_abs2(L, u), s, _abs2(L, vh)))(*L.linalg.svd(
        a, full_matrices=False)), None),
    "svd_wide_phaseless": ((WIDE,), lambda L, a: (lambda u, s, vh: (_abs2(L, u), s, _abs2(L, vh)))(
        *L.linalg.svd(a, full_matrices=False)), None),
    "svd_square_phaseless": ((SQ,), lambda L, a: (lambda u, s, vh: (_abs2(L, u), s, u @ vh))(*L.linalg.svd(a)),
                             None),
    "svd_u_only": ((TALL,), lambda L, a: _abs2(L, L.linalg.svd(a, full_matrices=False).U), None),
    "svd_vh_only": ((WIDE,), lambda L, a: _abs2(L, L.linalg.svd(a, full_matrices=False).Vh), None),
    "torch_svd": ((TALL,), lambda L, a: (lambda u, s, v: (_abs2(L, u), s, _abs2(L, v), _recon(L, u, s, v.mH)))(
        *L.svd(a)), None),
    "svd_method": ((WIDE,), lambda L, a: (lambda u, s, v: (s, _recon(L, u, s, v.mH)))(*a.svd()), None),
    "torch_svd_no_uv": ((TALL,), lambda L, a: tuple(L.svd(a, compute_uv=False)), None),
    "svdvals": ((TALL,), lambda L, a: L.linalg.svdvals(a), None),
    "svdvals_wide": ((WIDE,), lambda L, a: L.linalg.svdvals(a), None),
    "qr": ((TALL,), lambda L, a: tuple(L.linalg.qr(a)), None),
    "qr_wide": ((WIDE,), lambda L, a: tuple(L.linalg.qr(a)), None),
    "qr_square": ((SQ,), lambda L, a: tuple(L.linalg.qr(a)), None),
    "qr_complete_wide": ((WIDE,), lambda L, a: tuple(L.linalg.qr(a, mode="complete")), None),
    "qr_r": ((TALL,), lambda L, a: L.linalg.qr(a, mode="r").R, "nograd"),
    "qr_q_only": ((TALL,), lambda L, a: L.linalg.qr(a).Q, None),
    "qr_r_only_wide": ((WIDE,), lambda L, a: L.linalg.qr(a).R, None),
    "torch_qr": ((TALL,), lambda L, a: tuple(L.qr(a)), None),
    "lu_factor": ((SQ,), lambda L, a: L.linalg.lu_factor(a).LU, None),
    "lu_factor_pivots": ((_sq(2) - 4 * np.eye(4),), lambda L, a: L.linalg.lu_factor(a).pivots, "nograd"),
    "lu_factor_ex": ((SQ,), lambda L, a: tuple(L.linalg.lu_factor_ex(a)), None),
    "lu": ((_sq(2) - 4 * np.eye(4),), lambda L, a: tuple(L.linalg.lu(a)), None),
    "lu_tall": ((TALL,), lambda L, a: tuple(L.linalg.lu(a)), None),
    "lu_wide": ((WIDE,), lambda L, a: tuple(L.linalg.lu(a)), None),
    "lu_unpack": ((SQ,), lambda L, a: tuple(L.lu_unpack(*L.linalg.lu_factor(a))), None),
    "lu_solve": ((SQ, B3), lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b), None),
    "lu_solve_adjoint": ((SQ, B3), lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, adjoint=True),
                         None),
    "lu_solve_right": ((SQ, B3.swapaxes(-1, -2)),
                       lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, left=False), None),
    "lu_solve_right_adjoint": ((SQ, B3.swapaxes(-1, -2)), lambda L, a, b: L.linalg.lu_solve(
        *L.linalg.lu_factor(a), b, left=False, adjoint=True), None),
    "torch_lu_solve": ((SQ, B3), lambda L, a, b: L.lu_solve(b, *L.linalg.lu_factor(a)), None),
    "solve_triangular": ((SQ, B3), lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True), None),
    "solve_triangular_lower_unit": ((SQ, B3), lambda L, a, b: L.linalg.solve_triangular(
        a, b, upper=False, unitriangular=True), None),
    "solve_triangular_right": ((SQ, B3.swapaxes(-1, -2)), lambda L, a, b: L.linalg.solve_triangular(
        a, b, upper=False, left=False), None),
    "triangular_solve": ((B3, SQ), lambda L, b, a: tuple(L.triangular_solve(b, a, transpose=True)), None),
    "matrix_exp": ((SQ * 0.3,), lambda L, a: L.linalg.matrix_exp(a), None),
    "matrix_exp_large": ((SQ * 2,), lambda L, a: L.matrix_exp(a), None),
    "matrix_exp_method": ((SQ * 0.5,), lambda L, a: a.matrix_exp(), None),
    "pinv": ((TALL,), lambda L, a: L.linalg.pinv(a), None),
    "pinv_wide": ((WIDE,), lambda L, a: L.linalg.pinv(a), None),
    "pinv_hermitian": ((HERM,), lambda L, a: L.linalg.pinv(a, hermitian=True), None),
    "pinverse": ((WIDE,), lambda L, a: L.pinverse(a), None),
    "lstsq": ((TALL, _c(2, 5, 2)), lambda L, a, b: L.linalg.lstsq(a, b).solution, None),
    "lstsq_vector": ((TALL, _c(2, 5)), lambda L, a, b: L.linalg.lstsq(a, b).solution, None),
    "lstsq_gelsd": ((TALL, _c(2, 5, 2)), lambda L, a, b: tuple(L.linalg.lstsq(a, b, driver="gelsd")), None),
    "lstsq_gels": ((TALL, _c(2, 5, 2)), lambda L, a, b: tuple(L.linalg.lstsq(a, b, driver="gels"))[:2], None),
    "matrix_rank": ((np.concatenate([TALL[..., :2], TALL[..., :1] + 1j * TALL[..., 1:2]], -1),),
                    lambda L, a: L.linalg.matrix_rank(a), "nograd"),
    "matrix_rank_hermitian": ((HERM,), lambda L, a: L.linalg.matrix_rank(a, hermitian=True, atol=3.0), "nograd"),
    "cond": ((SQ,), lambda L, a: L.linalg.cond(a), None),
    "cond_neg2": ((SQ,), lambda L, a: L.linalg.cond(a, -2), None),
    "cond_fro": ((SQ,), lambda L, a: L.linalg.cond(a, "fro"), "nograd"),
    "cond_1": ((SQ,), lambda L, a: L.linalg.cond(a, 1), "nograd"),
    "cond_inf": ((SQ,), lambda L, a: L.linalg.cond(a, float("inf")), "nograd"),
    "eig": ((GEN,), lambda L, a: (lambda w, v: (w, _abs2(L, v), (v * w.unsqueeze(-2)) @ L.linalg.inv(v)))(
        *L.linalg.eig(a)), None),
    "eig_values_only": ((GEN,), lambda L, a: L.linalg.eig(a).eigenvalues, None),
    "eig_vectors_only": ((GEN,), lambda L, a: _abs2(L, L.linalg.eig(a).eigenvectors), None),
    "eigvals": ((GEN,), lambda L, a: L.linalg.eigvals(a), None),
    "eig_real": ((REAL_GEN,), lambda L, a: (lambda w, v: (w, _abs2(L, v)))(*L.linalg.eig(a)), None),
    "eig_real_pair": ((ROT,), lambda L, a: (lambda w, v: (w, _abs2(L, v)))(*L.linalg.eig(a)), None),
    "eigvals_real": ((REAL_GEN,), lambda L, a: L.linalg.eigvals(a), None),
    "eigvals_real_pair": ((ROT,), lambda L, a: L.linalg.eigvals(a), None),
    "householder_product": ((TALL, _c(2, 3) * 0.5 + 1), lambda L, a, t: L.linalg.householder_product(a, t), None),
    "geqrf": ((TALL,), lambda L, a: tuple(L.geqrf(a)), "nograd"),
    "vecdot": ((SQ, B3[0, :, 0]), lambda L, a, b: L.linalg.vecdot(a, b), None),
    "norm": ((SQ,), lambda L, a: L.linalg.norm(a), None),
    "matrix_power": ((SQ,), lambda L, a: L.linalg.matrix_power(a, 3), None),
    "matrix_power_neg": ((SQ,), lambda L, a: L.linalg.matrix_power(a, -2), None),
    "tensorinv": ((_sq(n=6).reshape(6, 2, 3),), lambda L, a: L.linalg.tensorinv(a, ind=1), None),
    "tensorsolve": ((_sq(n=6).reshape(2, 3, 6), _c(2, 3)), lambda L, a, b: L.linalg.tensorsolve(a, b), None),
    "multi_dot": ((_c(4), SQ[0], _c(4, 3)), lambda L, *xs: L.linalg.multi_dot(xs), None),
}
for _o in ("fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf")):
    CASES[f"matrix_norm_{_o}"] = ((SQ,), lambda L, a, o=_o: L.linalg.matrix_norm(a, o), None)
    CASES[f"matrix_norm_{_o}_keepdim_dims"] = ((SQ,), lambda L, a, o=_o: L.linalg.matrix_norm(
        a, o, dim=(0, 2), keepdim=True), None)
    CASES[f"norm_2d_{_o}"] = ((SQ[0],), lambda L, a, o=_o: L.linalg.norm(a, o), None)


def _weights(shape, k):
    n = int(np.prod(shape))
    return np.cos(np.arange(n) * 0.7 + k).reshape(shape), np.sin(np.arange(n) * 1.3 + k).reshape(shape)


def _loss(lib, outs):
    """A real loss of every differentiable output: sum(Re(o) w1 + Im(o) w2) (different weights for the two
    parts, so a missing conjugation shows)."""
    total = 0
    for k, o in enumerate(outs):
        if not (o.is_floating_point() or o.is_complex()) or not o.requires_grad:
            continue
        w1, w2 = _weights(tuple(o.shape), k)
        if o.is_complex():
            total = total + (o.real * lib.tensor(w1)).sum() + (o.imag * lib.tensor(w2)).sum()
        else:
            total = total + (o * lib.tensor(w1)).sum()
    return total


def _run(lib, name, dtype):
    inputs, fn, mode = CASES[name]
    ts = []
    for x in inputs:
        x = np.asarray(x)
        if x.dtype.kind == "c":
            x = x.astype(dtype)
        elif x.dtype.kind == "f":
            x = x.astype(np.float32 if dtype == np.complex64 else np.float64)
        ts.append(lib.tensor(x, requires_grad=x.dtype.kind in "fc" and mode != "nograd"))
    out = fn(lib, *ts)
    outs = list(out) if isinstance(out, tuple) else [out]
    vals = [o.detach().resolve_conj().numpy() for o in outs]
    grads = None
    if mode != "nograd" and dtype == np.complex128:
        need = [t for t in ts if t.requires_grad]
        grads = [None if g is None else g.resolve_conj().numpy()
                 for g in (torch.autograd.grad if lib is torch else tl.autograd.grad)(_loss(lib, outs), need,
                                                                                      allow_unused=True)]
    return vals, grads


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, dtype):
    tv, tg = _run(tl, name, dtype)
    ev, eg = _run(torch, name, dtype)
    assert len(tv) == len(ev)
    tol = 1e-4 if dtype == np.complex64 else 1e-8
    for a, b in zip(tv, ev):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    if tg is not None:
        for a, b in zip(tg, eg):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype
                np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)


def test_result_types_match_torch():
    a = SQ
    for fn in (lambda L, x: L.linalg.slogdet(x), lambda L, x: L.linalg.qr(x), lambda L, x: L.linalg.svd(x),
               lambda L, x: L.linalg.eigh(x @ x.mH), lambda L, x: L.linalg.eig(x),
               lambda L, x: L.linalg.cholesky_ex(x @ x.mH), lambda L, x: L.linalg.lu_factor_ex(x),
               lambda L, x: L.linalg.lu(x), lambda L, x: L.linalg.lstsq(x, x), lambda L, x: L.slogdet(x),
               lambda L, x: L.qr(x), lambda L, x: L.svd(x), lambda L, x: L.geqrf(x),
               lambda L, x: L.linalg.lstsq(x, x, driver="gelsd")):
        for dt in (np.complex64, np.complex128):
            t, e = fn(tl, tl.tensor(a.astype(dt))), fn(torch, torch.tensor(a.astype(dt)))
            assert type(t).__name__ == type(e).__name__ and t._fields == type(e).__match_args__
            for x, y in zip(t, e):
                assert tuple(x.shape) == tuple(y.shape)
                assert str(x.dtype).split(".")[1] == str(y.dtype).split(".")[1], (fn, x.dtype, y.dtype)


def test_node_names_match_torch():
    cases = {
        "slogdet": lambda L, a: L.linalg.slogdet(a).logabsdet, "cholesky": lambda L, a: L.linalg.cholesky(a),
        "qr": lambda L, a: L.linalg.qr(a).R, "svd": lambda L, a: L.linalg.svd(a).S,
        "eigh": lambda L, a: L.linalg.eigh(a).eigenvalues, "eig": lambda L, a: L.linalg.eig(a).eigenvalues,
        "eigvals": lambda L, a: L.linalg.eigvals(a), "lu_factor": lambda L, a: L.linalg.lu_factor(a).LU,
        "solve_triangular": lambda L, a: L.linalg.solve_triangular(a, a, upper=True),
        "matrix_exp": lambda L, a: L.linalg.matrix_exp(a), "pinv": lambda L, a: L.linalg.pinv(a),
    }
    for name, fn in cases.items():
        for x in (HPD[0], HPD[0].real.copy()):
            t = fn(tl, tl.tensor(x, requires_grad=True))
            e = fn(torch, torch.tensor(x, requires_grad=True))
            assert t.grad_fn.name() == e.grad_fn.name(), name


def _backward_of(fn):
    def run(L):
        a = L.tensor(HERM[0] if fn != "eig" else GEN[0], requires_grad=True)
        if fn == "svd":
            out = L.linalg.svd(a).U
        elif fn == "eigh":
            out = L.linalg.eigh(a).eigenvectors
        else:
            out = L.linalg.eig(a).eigenvectors
        out.real.sum().backward()
    return run


ERRORS = {
    # a loss that depends on the singular vectors' (eigenvectors') phases: torch's gauge checks
    "svd_phase": _backward_of("svd"),
    "eigh_phase": _backward_of("eigh"),
    "eig_phase": _backward_of("eig"),
    "eig_nonsquare": lambda L: L.linalg.eig(L.ones(2, 3)),
    "eig_1d": lambda L: L.linalg.eig(L.ones(3)),
    "eig_long": lambda L: L.linalg.eig(L.ones(3, 3, dtype=L.long)),
    "eig_half": lambda L: L.linalg.eig(L.ones(3, 3, dtype=L.half)),
    "eig_nan": lambda L: L.linalg.eig(L.tensor([[1.0, float("nan")], [0.0, 1.0]])),
    "eigvals_nonsquare": lambda L: L.linalg.eigvals(L.ones(2, 3, dtype=L.cfloat)),
    "eigvals_long": lambda L: L.linalg.eigvals(L.ones(3, 3, dtype=L.long)),
    "cholesky_not_pd": lambda L: L.linalg.cholesky(L.ones(3, 3, dtype=L.cfloat)),
    "cholesky_batched": lambda L: L.linalg.cholesky(L.stack([L.eye(2, dtype=L.cdouble), -L.eye(2, dtype=L.cdouble)])),
    "pinv_1d": lambda L: L.linalg.pinv(L.ones(3, dtype=L.cfloat)),
    "lu_factor_singular": lambda L: L.linalg.lu_factor(L.zeros(3, 3, dtype=L.cdouble)),
    "svd_1d": lambda L: L.linalg.svd(L.ones(3, dtype=L.cfloat)),
    "eigh_nonsquare": lambda L: L.linalg.eigh(L.ones(2, 3, dtype=L.cfloat)),
    "matrix_exp_nonsquare": lambda L: L.linalg.matrix_exp(L.ones(2, 3, dtype=L.cfloat)),
    "lstsq_dtypes": lambda L: L.linalg.lstsq(L.ones(3, 2, dtype=L.cfloat), L.ones(3, 2)),
    "qr_complete_tall_backward": lambda L: L.linalg.qr(L.ones(3, 2, dtype=L.cdouble, requires_grad=True),
                                                       mode="complete").Q.abs().sum().backward(),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    with pytest.raises(Exception) as e:
        ERRORS[name](torch)
    with pytest.raises(Exception) as t:
        ERRORS[name](tl)
    assert str(t.value) == str(e.value)
    assert type(t.value).__mro__[1:] and isinstance(t.value, RuntimeError) == isinstance(e.value, RuntimeError)
    if isinstance(e.value, torch.linalg.LinAlgError):
        assert isinstance(t.value, tl.linalg.LinAlgError)
