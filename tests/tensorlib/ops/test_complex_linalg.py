"""tensorlib.linalg on complex matrices against NumPy (and SciPy's expm): the factorizations' identities with
adjoints (L L^H = A, Q^H Q = I, U S V^H = A, V diag(w) V^H = A, A V = V diag(w), P L U = A), values against
np.linalg (slogdet, eigvalsh, svd's S, pinv, lstsq, eig's eigenvalues), the real dtypes of S, eigenvalues and
logabsdet, LAPACK's pivots (|re| + |im|) and `info`; gradcheck (float64 finite differences through
view_as_complex / view_as_real) of every complex formula, torch's checks that a loss must not depend on the
vectors' phases; and the CUDA paths of the complex kernels against the CPU (the strict fake CuPy)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T

LA = tl.linalg
rng = np.random.default_rng(2323)


def _c(*s):
    return rng.standard_normal(s) + 1j * rng.standard_normal(s)


def _h(a):
    return np.conj(np.swapaxes(a, -1, -2))


def _hpd(*batch, n=4):
    x = _c(*batch, n, n)
    return x @ _h(x) + n * np.eye(n)


def _herm(*batch, n=4):
    q = np.linalg.qr(_c(*batch, n, n))[0]
    w = np.arange(1.0, n + 1) * 1.5 + rng.uniform(-0.3, 0.3, (*batch, n))
    return (q * w[..., None, :]) @ _h(q)


def close(t, ref, tol=1e-10):
    a = t.detach().numpy()
    np.testing.assert_allclose(a, np.broadcast_to(ref, a.shape), rtol=tol, atol=tol)


SQ, HPD, HERM, TALL, WIDE = _c(3, 4, 4) + 4 * np.eye(4), _hpd(3), _herm(3), _c(3, 6, 4), _c(2, 3, 5)
EYE = np.eye(4)


# --- identities and NumPy references -------------------------------------------------------------------

def test_cholesky_reads_the_lower_triangle_and_factors_hermitian_matrices():
    L = LA.cholesky(T(HPD))
    close(L @ L.mH, HPD)
    close(L, np.linalg.cholesky(HPD))
    noisy = HPD + np.triu(_c(3, 4, 4), 1) + 0.25j * EYE        # upper triangle and Im(diagonal) ignored
    close(LA.cholesky(T(noisy)), np.linalg.cholesky(HPD))
    U = LA.cholesky(T(HPD), upper=True)
    close(U.mH @ U, HPD)
    assert L.dtype == tl.complex128


def test_cholesky_info_of_a_complex_matrix_that_is_not_positive_definite():
    a = np.stack([HPD[0], np.diag([1.0, 2.0, -1.0, 1.0]).astype(complex)])
    np.testing.assert_array_equal(LA.cholesky_ex(T(a)).info.numpy(), [0, 3])
    with pytest.raises(LA.LinAlgError, match=r"^linalg.cholesky: \(Batch element 1\): The factorization could not be "
                                              r"completed because the input is not positive-definite \(the leading "
                                              r"minor of order 3 is not positive-definite\).$"):
        LA.cholesky(T(a))


def test_qr_identities():
    for a in (TALL, SQ, WIDE):
        q, r = LA.qr(T(a))
        k = min(a.shape[-2:])
        close(q.mH @ q, np.eye(k))
        close(q @ r, a)
        close(r, np.triu(r.numpy()))
        assert np.allclose(np.diagonal(r.numpy(), 0, -2, -1).imag, 0)       # LAPACK's real diagonal


def test_svd_identities_and_real_singular_values():
    for a in (TALL, WIDE, SQ):
        u, s, vh = LA.svd(T(a), full_matrices=False)
        assert s.dtype == tl.float64 and u.dtype == tl.complex128
        close((u * s.unsqueeze(-2).to(u.dtype)) @ vh, a)
        close(s, np.linalg.svd(a, compute_uv=False))
        close(LA.svdvals(T(a)), np.linalg.svd(a, compute_uv=False))
    u, s, v = tl.svd(T(TALL))
    close((u * s.unsqueeze(-2).to(u.dtype)) @ v.mH, TALL)


def test_eigh_identities_and_real_eigenvalues():
    w, v = LA.eigh(T(HERM))
    assert w.dtype == tl.float64
    close(w, np.linalg.eigvalsh(HERM))
    close((v * w.unsqueeze(-2).to(v.dtype)) @ v.mH, HERM)
    close(LA.eigvalsh(T(HERM), UPLO="U"), np.linalg.eigvalsh(HERM, UPLO="U"))
    assert LA.eigvalsh(T(HERM.astype(np.complex64))).dtype == tl.float32


def test_eig_of_complex_and_real_matrices():
    for a in (SQ, rng.standard_normal((2, 4, 4)), np.array([[1.0, -2.0], [2.0, 1.0]])):
        w, v = LA.eig(T(a))
        assert w.dtype == v.dtype == tl.complex128
        close(T(a.astype(complex)) @ v, (v * w.unsqueeze(-2)).numpy())
        close(v.abs().pow(2).sum(-2), np.ones(w.shape))                    # unit-norm eigenvectors
        close(w, np.linalg.eigvals(a))
        close(LA.eigvals(T(a)), np.linalg.eigvals(a))
    assert LA.eigvals(T(np.eye(3, dtype=np.float32))).dtype == tl.complex64
    close(LA.eigvals(T(np.array([[1.0, -2.0], [2.0, 1.0]]))), np.array([1 + 2j, 1 - 2j]))


def test_slogdet_logdet_and_det():
    sign, logabs = LA.slogdet(T(SQ))
    s_ref, l_ref = np.linalg.slogdet(SQ)
    assert sign.dtype == tl.complex128 and logabs.dtype == tl.float64
    close(sign, s_ref)
    close(logabs, l_ref)
    close(tl.logdet(T(SQ)), np.log(np.linalg.det(SQ)))


def test_lu_pivots_as_lapack_and_reconstruction():
    # izamax's |re| + |im|: 2.5 + 0j beats 1.8 + 1.8j (|.|: 2.5 < 2.55), so row 1 is the pivot, not row 0
    a = np.array([[1.8 + 1.8j, 1.0], [2.5, 3.0j]])
    lu, piv = LA.lu_factor(T(a))
    np.testing.assert_array_equal(piv.numpy(), [1, 2])
    import scipy.linalg
    np.testing.assert_array_equal(piv.numpy() - 1, scipy.linalg.lu_factor(a)[1])
    for x in (SQ, TALL, WIDE):
        p, L, U = LA.lu(T(x))
        close(p.to(L.dtype) @ L @ U, x)
    b = _c(3, 4, 2)
    close(LA.lu_solve(*LA.lu_factor(T(SQ)), T(b)), np.linalg.solve(SQ, b))
    close(LA.lu_solve(*LA.lu_factor(T(SQ)), T(b), adjoint=True), np.linalg.solve(_h(SQ), b))
    close(LA.solve_triangular(T(SQ), T(b), upper=True), np.linalg.solve(np.triu(SQ), b))


def test_matrix_exp_against_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    for a in (SQ[0] * 0.3, SQ[1] * 2, _c(3, 3) * 5):
        close(LA.matrix_exp(T(a)), scipy_linalg.expm(a), tol=1e-9)
    assert LA.matrix_exp(T(SQ.astype(np.complex64))).dtype == tl.complex64


def test_pinv_lstsq_and_norms():
    close(LA.pinv(T(TALL)), np.linalg.pinv(TALL))
    close(LA.pinv(T(WIDE)), np.linalg.pinv(WIDE))
    close(LA.pinv(T(HERM), hermitian=True), np.linalg.pinv(HERM, hermitian=True))
    b = _c(3, 6, 2)
    sol = LA.lstsq(T(TALL), T(b), driver="gelsd")
    close(sol.solution, np.linalg.pinv(TALL) @ b)
    assert sol.residuals.dtype == sol.singular_values.dtype == tl.float64
    close(sol.residuals, (np.abs(TALL @ sol.solution.numpy() - b) ** 2).sum(-2))
    for o in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        close(LA.matrix_norm(T(SQ), o), np.linalg.norm(SQ, o, axis=(-2, -1)))
    close(LA.cond(T(SQ)), np.linalg.cond(SQ))
    close(LA.cond(T(SQ), 1), np.linalg.cond(SQ, 1))
    rank_def = np.concatenate([TALL[..., :2], TALL[..., :1] * (1 + 2j)], -1)
    np.testing.assert_array_equal(LA.matrix_rank(T(rank_def)).numpy(), np.linalg.matrix_rank(rank_def))
    x, y = _c(3, 4), _c(4)
    close(LA.vecdot(T(x), T(y)), (np.conj(x) * y).sum(-1))


def test_householder_product_is_lapacks_ungqr():
    h, tau = tl.geqrf(T(TALL))
    q = LA.householder_product(h, tau)
    close(q, np.linalg.qr(TALL)[0])


# --- gradients: gradcheck through view_as_complex / view_as_real -----------------------------------------

def _z(a):
    return tl.view_as_complex(a)


def _r(*s):
    return tl.tensor(rng.standard_normal((*s, 2)), requires_grad=True)


def _abs2(z):
    return (z * z.conj()).real


def _shift(z, k):
    return z + k * tl.eye(z.shape[-1], dtype=z.dtype, device=z.device)


def _hpd_of(a):
    z = _z(a)
    return z @ z.mH + _shift(z * 0, 3.0)


def _spread(z):
    """z plus diag(0, 3, 6i): well separated eigenvalues."""
    return z + tl.diag(tl.tensor([0.0, 3.0, 6j], dtype=z.dtype, device=z.device))


def _herm_of(a):
    z = _z(a)
    return z + z.mH + tl.diag(tl.tensor([0.0, 4.0, 8.0], dtype=z.dtype, device=z.device))


GRADS = {
    "slogdet": (lambda a: (lambda s, l: tl.view_as_real(s).sum(-1) + l)(*LA.slogdet(_shift(_z(a), 2.0))), (3, 3)),
    "slogdet_sign": (lambda a: tl.view_as_real(LA.slogdet(_shift(_z(a), 2.0)).sign), (3, 3)),
    "logdet": (lambda a: tl.view_as_real(tl.logdet(_shift(_z(a), 2.0))), (3, 3)),
    "cholesky": (lambda a: tl.view_as_real(LA.cholesky(_hpd_of(a))), (2, 3, 3)),
    "cholesky_upper": (lambda a: tl.view_as_real(LA.cholesky(_hpd_of(a), upper=True)), (3, 3)),
    "qr": (lambda a: (lambda q, r: tl.view_as_real(q).sum(-1) * 2 + tl.view_as_real(r).sum((-1, -3)).unsqueeze(-2))(
        *LA.qr(_z(a))), (2, 4, 3)),
    "qr_wide": (lambda a: (lambda q, r: tl.view_as_real(q).sum() + tl.view_as_real(r).pow(2).sum())(
        *LA.qr(_z(a))), (3, 5)),
    "svd": (lambda a: (lambda u, s, vh: _abs2(u).sum(-1) + s.sum(-1, keepdim=True) + _abs2(vh)[..., 0].sum(
        -1, keepdim=True))(*LA.svd(_z(a), full_matrices=False)), (2, 4, 3)),
    "svd_wide": (lambda a: (lambda u, s, vh: tl.view_as_real((u * s.unsqueeze(-2).to(u.dtype)) @ vh[..., :1]))(
        *LA.svd(_z(a), full_matrices=False)), (3, 5)),
    "svdvals": (lambda a: LA.svdvals(_z(a)), (2, 3, 4)),
    "eigh": (lambda a: (lambda w, v: w + _abs2(v)[..., 0] + tl.view_as_real(v[..., :1] @ v[..., :1].mH).sum(
        (-1, -2, -3)).unsqueeze(-1))(*LA.eigh(_herm_of(a))), (2, 3, 3)),
    "eigvalsh": (lambda a: LA.eigvalsh(_herm_of(a), UPLO="U"), (3, 3)),
    "eig": (lambda a: (lambda w, v: tl.view_as_real(w).sum(-1) + _abs2(v).sum(-2))(*LA.eig(_spread(_z(a)))),
            (2, 3, 3)),
    "eigvals": (lambda a: tl.view_as_real(LA.eigvals(_spread(_z(a)))), (3, 3)),
    "lu_factor": (lambda a: tl.view_as_real(LA.lu_factor(_shift(_z(a), 3.0)).LU), (2, 3, 3)),
    "lu_wide": (lambda a: (lambda p, L, U: tl.view_as_real(L).sum() + tl.view_as_real(U).pow(2).sum())(
        *LA.lu(_z(a))), (3, 4)),
    "solve_triangular": (lambda a: tl.view_as_real(LA.solve_triangular(_shift(_z(a), 3.0), _z(a)[..., :2],
                                                                       upper=True, left=True)), (3, 3)),
    "matrix_exp": (lambda a: tl.view_as_real(LA.matrix_exp(_z(a))), (2, 3, 3)),
    "pinv": (lambda a: tl.view_as_real(LA.pinv(_z(a))), (2, 4, 3)),
    "pinv_wide": (lambda a: tl.view_as_real(LA.pinv(_z(a))), (3, 4)),
    "lstsq": (lambda a: tl.view_as_real(LA.lstsq(_z(a), _z(a)[..., :2] * 2 + 1).solution), (4, 3)),
    "matrix_norm_nuc": (lambda a: LA.matrix_norm(_z(a), "nuc"), (3, 3)),
    "cholesky_solve": (lambda a: tl.view_as_real(tl.cholesky_solve(_z(a)[..., :2], LA.cholesky(_hpd_of(a)))),
                       (3, 3)),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_complex_gradients_gradcheck(name):
    fn, shape = GRADS[name]
    assert gradcheck(fn, (_r(*shape),))


def test_eig_of_a_real_matrix_has_a_real_gradient():
    a = tl.tensor(rng.standard_normal((3, 3)) + np.diag([0.0, 3.0, 6.0]), requires_grad=True)
    assert gradcheck(lambda x: tl.view_as_real(LA.eigvals(x)), (a,))
    w, v = LA.eig(a)
    (w.real.sum() + _abs2(v).sum()).backward()
    assert a.grad.dtype == tl.float64


@pytest.mark.parametrize("which", ["svd", "eigh", "eig"])
def test_a_loss_that_sees_the_phases_is_refused(which):
    z = tl.tensor(_herm(1)[0], requires_grad=True)
    if which == "svd":
        out, msg = LA.svd(z).U, "svd_backward: The singular vectors in the complex case"
    elif which == "eigh":
        out, msg = LA.eigh(z).eigenvectors, "linalg_eigh_backward: The eigenvectors in the complex case"
    else:
        out, msg = LA.eig(z).eigenvectors, "linalg_eig_backward: The eigenvectors in the complex case"
    with pytest.raises(RuntimeError, match=f"^{msg}"):
        out.real.sum().backward()


# --- CUDA (the strict fake CuPy on a machine without a GPU) ----------------------------------------------

CUDA_FNS = {
    "cholesky": (lambda a: LA.cholesky(a @ a.mH + 4 * tl.eye(4, dtype=a.dtype, device=a.device)), SQ),
    "cholesky_ex_info": (lambda a: LA.cholesky_ex(a).info, np.stack([HPD[0], -HPD[1]])),
    "qr": (lambda a: LA.qr(a).R, TALL),
    "svdvals": (LA.svdvals, TALL),
    "svd": (lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2).to(u.dtype)) @ vh)(*LA.svd(a, full_matrices=False)),
            WIDE),
    "eigh": (lambda a: (lambda w, v: (v * w.unsqueeze(-2).to(v.dtype)) @ v.mH)(*LA.eigh(a)), HERM),
    "eigvalsh": (LA.eigvalsh, HERM),
    "eig": (lambda a: LA.eig(a).eigenvalues, SQ),
    "eigvals_real": (LA.eigvals, SQ.real.copy()),
    "slogdet": (lambda a: LA.slogdet(a).logabsdet, SQ),
    "lu_factor": (lambda a: LA.lu_factor(a).LU, SQ),
    "matrix_exp": (LA.matrix_exp, SQ * 0.5),
    "pinv": (LA.pinv, TALL),
    "pinv_hermitian": (lambda a: LA.pinv(a, hermitian=True), HERM),
    "lstsq": (lambda a: LA.lstsq(a, a[..., :2], driver="gels").solution, TALL),
}


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(CUDA_FNS))
def test_cuda_values_match_cpu(name):
    fn, a = CUDA_FNS[name]
    got = fn(T(a).cuda())
    assert got.is_cuda
    np.testing.assert_allclose(got.cpu().numpy(), fn(T(a)).numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_cuda_complex_gradients_match_cpu():
    for name in ("cholesky", "qr", "svd", "eigh", "eig", "matrix_exp", "pinv", "lu_factor", "slogdet"):
        fn, shape = GRADS[name]
        x = rng.standard_normal((*shape, 2))
        grads = []
        for dev in ("cpu", "cuda"):
            a = tl.tensor(x, device=dev, requires_grad=True)
            out = fn(a)
            out.sum().backward()
            grads.append(a.grad.cpu().numpy())
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-9, atol=1e-10)
