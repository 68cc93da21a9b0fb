"""tensorlib.linalg (tensorlib/linalg.py and the ops of tensorlib/ops/factorize.py) against NumPy: the
factorizations' identities (Q R = A with Q orthonormal, U S Vh = A, V diag(w) V^T = A, L L^T = A, P L U = A,
inv(A) A = I), values against np.linalg, gradcheck of every function in float64, torch's errors and `info`,
and the CUDA paths of the failure cases (the strict fake CuPy: NaN where NumPy raises)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck, gradgradcheck
from tests.tensorlib.ops._util import T, rng

LA = tl.linalg


def _sq(*batch, n=4):
    return rng.standard_normal((*batch, n, n)) + n * np.eye(n)


def _spd(*batch, n=4):
    x = rng.standard_normal((*batch, n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def close(t, ref, tol=1e-10):
    np.testing.assert_allclose(t.detach().numpy(), ref, rtol=tol, atol=tol)


SQ, SPD, TALL = _sq(3), _spd(3), rng.standard_normal((3, 6, 4))
EYE = np.eye(4)


# --- identities and NumPy references -------------------------------------------------------------------

def test_qr_identities():
    for a in (TALL, SQ, rng.standard_normal((2, 3, 5))):
        q, r = LA.qr(T(a))
        close(q @ r, a)
        k = min(a.shape[-2:])
        close(q.mT @ q, np.broadcast_to(np.eye(k), a.shape[:-2] + (k, k)))
        np.testing.assert_array_equal(np.tril(r.numpy(), -1), 0)
    q, r = LA.qr(T(TALL), mode="complete")
    assert tuple(q.shape) == (3, 6, 6) and tuple(r.shape) == (3, 6, 4)
    close(q @ r, TALL)
    q, r = LA.qr(T(TALL), mode="r")
    assert tuple(q.shape) == (0,)
    close(r.abs(), np.abs(np.linalg.qr(TALL, mode="r")))


def test_svd_eigh_identities():
    u, s, vh = LA.svd(T(TALL), full_matrices=False)
    close((u * s.unsqueeze(-2)) @ vh, TALL)
    close(s, np.linalg.svd(TALL, compute_uv=False))
    close(LA.svdvals(T(TALL)), np.linalg.svd(TALL, compute_uv=False))
    u, s, vh = LA.svd(T(TALL))
    assert tuple(u.shape) == (3, 6, 6) and tuple(vh.shape) == (3, 4, 4)
    u, s, v = tl.svd(T(TALL))
    close((u * s.unsqueeze(-2)) @ v.mT, TALL)
    w, v = LA.eigh(T(SPD))
    close((v * w.unsqueeze(-2)) @ v.mT, SPD)
    close(w, np.linalg.eigvalsh(SPD))
    close(LA.eigvalsh(T(SPD), UPLO="U"), np.linalg.eigvalsh(SPD, UPLO="U"))


def test_inverse_det_solve():
    close(LA.inv(T(SQ)) @ T(SQ), np.broadcast_to(EYE, SQ.shape))
    close(T(SQ).inverse(), np.linalg.inv(SQ))
    close(LA.det(T(SQ)), np.linalg.det(SQ))
    sign, logabs = LA.slogdet(T(SQ))
    s_ref, l_ref = np.linalg.slogdet(SQ)
    close(sign, s_ref)
    close(logabs, l_ref)
    close(tl.logdet(T(SPD)), np.linalg.slogdet(SPD)[1])
    b = rng.standard_normal((3, 4, 2))
    close(LA.solve(T(SQ), T(b)), np.linalg.solve(SQ, b))
    close(LA.solve(T(SQ), T(b[..., 0])), np.linalg.solve(SQ, b[..., :1])[..., 0])
    close(LA.solve(T(SQ), T(b.swapaxes(-1, -2)), left=False), np.linalg.solve(SQ.swapaxes(-1, -2), b).swapaxes(-1, -2))
    close(LA.matrix_power(T(SQ), -2), np.linalg.matrix_power(np.linalg.inv(SQ), 2))
    close(LA.pinv(T(TALL)), np.linalg.pinv(TALL))
    close(LA.pinv(T(SPD), hermitian=True), np.linalg.pinv(SPD, hermitian=True))
    close(T(TALL).pinverse(), np.linalg.pinv(TALL))
    a6 = rng.standard_normal((6, 6)) + 6 * np.eye(6)
    close(LA.tensorinv(T(a6.reshape(6, 2, 3)), ind=1), np.linalg.tensorinv(a6.reshape(6, 2, 3), ind=1))
    b6 = rng.standard_normal((2, 3))
    close(LA.tensorsolve(T(a6.reshape(2, 3, 6)), T(b6)), np.linalg.tensorsolve(a6.reshape(2, 3, 6), b6))


def test_cholesky_and_its_solves():
    L = LA.cholesky(T(SPD))
    close(L, np.linalg.cholesky(SPD))
    close(LA.cholesky(T(SPD), upper=True), np.swapaxes(np.linalg.cholesky(SPD), -1, -2))
    close(LA.cholesky_ex(T(SPD)).info, np.zeros(3))
    b = rng.standard_normal((3, 4, 2))
    close(tl.cholesky_solve(T(b), L), np.linalg.solve(SPD, b))
    close(tl.cholesky_solve(T(b), L.mT, upper=True), np.linalg.solve(SPD, b))
    close(tl.cholesky_inverse(L), np.linalg.inv(SPD))
    with pytest.warns(UserWarning, match="torch.cholesky is deprecated"):
        close(tl.cholesky(T(SPD)), np.linalg.cholesky(SPD))


def test_lu_family():
    a = _sq(3) - 4 * EYE          # pivoting happens
    LU, piv = LA.lu_factor(T(a))
    assert piv.dtype == tl.int32
    P, L, U = LA.lu(T(a))
    close(P @ L @ U, a)
    np.testing.assert_array_equal(np.triu(L.numpy(), 1), 0)
    close(L.diagonal(0, -2, -1), np.ones((3, 4)))
    import scipy.linalg
    for k in range(3):
        lu_ref, piv_ref = scipy.linalg.lu_factor(a[k])
        close(LU[k], lu_ref)
        np.testing.assert_array_equal(piv[k].numpy(), piv_ref + 1)
    b = rng.standard_normal((3, 4, 2))
    close(LA.lu_solve(LU, piv, T(b)), np.linalg.solve(a, b))
    close(LA.lu_solve(LU, piv, T(b), adjoint=True), np.linalg.solve(a.swapaxes(-1, -2), b))
    bt = b.swapaxes(-1, -2)
    close(LA.lu_solve(LU, piv, T(bt), left=False), bt @ np.linalg.inv(a))
    close(LA.lu_solve(LU, piv, T(bt), left=False, adjoint=True), bt @ np.linalg.inv(a.swapaxes(-1, -2)))
    close(tl.lu_solve(T(b), LU, piv), np.linalg.solve(a, b))
    wide = rng.standard_normal((2, 3, 5))
    P, L, U = LA.lu(T(wide))
    assert tuple(L.shape) == (2, 3, 3) and tuple(U.shape) == (2, 3, 5)
    close(P @ L @ U, wide)
    P, L, U = LA.lu(T(TALL))
    assert tuple(L.shape) == (3, 6, 4) and tuple(U.shape) == (3, 4, 4)
    close(P @ L @ U, TALL)


def test_triangular_solves():
    b = rng.standard_normal((3, 4, 2))
    for upper in (True, False):
        tri = np.triu(SQ) if upper else np.tril(SQ)
        close(LA.solve_triangular(T(SQ), T(b), upper=upper), np.linalg.solve(tri, b))
        unit = tri.copy()
        unit[..., range(4), range(4)] = 1
        close(LA.solve_triangular(T(SQ), T(b), upper=upper, unitriangular=True), np.linalg.solve(unit, b))
        bt = b.swapaxes(-1, -2)
        close(LA.solve_triangular(T(SQ), T(bt), upper=upper, left=False), bt @ np.linalg.inv(tri))
    x, coef = tl.triangular_solve(T(b), T(SQ))
    close(x, np.linalg.solve(np.triu(SQ), b))
    close(coef, SQ)
    x = tl.triangular_solve(T(b), T(SQ), upper=False, transpose=True).solution
    close(x, np.linalg.solve(np.tril(SQ).swapaxes(-1, -2), b))
    # a zero on the diagonal: inf/NaN as the substitution gives them (torch's trsm), no error
    z = np.triu(SQ[0])
    z[1, 1] = 0
    assert not np.isfinite(LA.solve_triangular(T(z), T(b[0]), upper=True).numpy()).all()


def test_matrix_exp_against_scipy():
    import scipy.linalg
    for scale in (0.01, 1.0, 8.0):
        a = rng.standard_normal((2, 5, 5)) * scale
        close(LA.matrix_exp(T(a)), np.stack([scipy.linalg.expm(m) for m in a]), tol=1e-9)
    a = rng.standard_normal((5, 5)).astype(np.float32)
    np.testing.assert_allclose(T(a).matrix_exp().numpy(), scipy.linalg.expm(a.astype(np.float64)), rtol=2e-5,
                               atol=2e-5)
    close(LA.matrix_exp(T(np.zeros((3, 3)))), np.eye(3))


def test_norms():
    x = rng.standard_normal((3, 4, 5))
    close(LA.norm(T(x)), np.linalg.norm(x.ravel()))
    close(LA.vector_norm(T(x), 3, dim=(0, 2)), (np.abs(x) ** 3).sum((0, 2)) ** (1 / 3))
    close(LA.vector_norm(T(x), -np.inf, dim=1, keepdim=True), np.abs(x).min(1, keepdims=True))
    for o in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        close(LA.matrix_norm(T(x), o), np.linalg.norm(x, o, axis=(-2, -1)))
        close(LA.norm(T(x[0]), o), np.linalg.norm(x[0], o))
        close(LA.matrix_norm(T(x), o, dim=(2, 0), keepdim=True), np.linalg.norm(x, o, axis=(2, 0), keepdims=True))
    close(LA.cond(T(SQ)), np.linalg.cond(SQ))
    close(LA.cond(T(SQ), "fro"), np.linalg.cond(SQ, "fro"))
    close(LA.cond(T(SQ), -np.inf), np.linalg.cond(SQ, -np.inf))


def test_products_and_others():
    a, b, c = rng.standard_normal((2, 30)), rng.standard_normal((30, 3)), rng.standard_normal((3, 40))
    v = rng.standard_normal(40)
    close(LA.multi_dot([T(a), T(b), T(c), T(v)]), np.linalg.multi_dot([a, b, c, v]))
    close(LA.multi_dot([T(a[0]), T(b)]), a[0] @ b)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((1, 3))
    close(LA.cross(T(x), T(y)), np.cross(x, y))
    close(LA.vecdot(T(x), T(y)), (x * y).sum(-1))
    close(LA.diagonal(T(SQ), offset=-1), np.diagonal(SQ, -1, -2, -1))
    xs = rng.standard_normal((2, 3))
    close(LA.vander(T(xs), N=4), np.stack([np.vander(r, 4, increasing=True) for r in xs]))
    rank_def = np.concatenate([TALL[..., :2], TALL[..., :1] + TALL[..., 1:2]], -1)
    np.testing.assert_array_equal(LA.matrix_rank(T(rank_def)).numpy(), [2, 2, 2])
    np.testing.assert_array_equal(LA.matrix_rank(T(SPD), hermitian=True).numpy(), [4, 4, 4])
    assert LA.matrix_rank(T(rank_def)).dtype == tl.int64


def test_lstsq():
    b = rng.standard_normal((3, 6, 2))
    ref = np.stack([np.linalg.lstsq(TALL[k], b[k], rcond=None)[0] for k in range(3)])
    sol, res, rank, sv = LA.lstsq(T(TALL), T(b), driver="gelsd")
    close(sol, ref)
    close(res, np.stack([np.linalg.lstsq(TALL[k], b[k], rcond=None)[1] for k in range(3)]))
    np.testing.assert_array_equal(rank.numpy(), [4, 4, 4])
    close(sv, np.linalg.svd(TALL, compute_uv=False))
    out = LA.lstsq(T(TALL), T(b))           # gelsy: no residuals, no singular values
    assert out.residuals.numel() == 0 and out.singular_values.numel() == 0
    close(LA.lstsq(T(TALL), T(b[..., 0])).solution, ref[..., 0])


def test_householder_product_rebuilds_q():
    """geqrf's reflectors (scipy's raw QR) through householder_product give numpy's Q."""
    import scipy.linalg
    a = TALL[0]
    (h, tau), _ = scipy.linalg.qr(a, mode="raw")
    q = LA.householder_product(T(h), T(tau))
    close(q, np.linalg.qr(a)[0])


def test_return_types_and_methods():
    r = LA.slogdet(T(SQ))
    assert type(r).__name__ == "linalg_slogdet" and r._fields == ("sign", "logabsdet")
    assert repr(r).startswith("tensorlib.return_types.linalg_slogdet(\nsign=")
    assert LA.qr(T(SQ))._fields == ("Q", "R")
    assert LA.svd(T(SQ))._fields == ("U", "S", "Vh")
    assert LA.eigh(T(SPD))._fields == ("eigenvalues", "eigenvectors")
    assert LA.inv_ex(T(SQ))._fields == ("inverse", "info")
    assert LA.lu_factor_ex(T(SQ))._fields == ("LU", "pivots", "info")
    assert tl.svd(T(SQ))._fields == ("U", "S", "V")
    t = T(SQ)
    for m in ("det", "logdet", "slogdet", "inverse", "qr", "svd", "pinverse", "matrix_exp"):
        getattr(t, m)()
    np.testing.assert_array_equal(t.mH.numpy(), np.swapaxes(SQ, -1, -2))
    np.testing.assert_array_equal(t.adjoint().numpy(), np.swapaxes(SQ, -1, -2))


# --- errors and info ------------------------------------------------------------------------------------

def test_errors():
    with pytest.raises(LA.LinAlgError, match=r"^linalg.inv: The diagonal element 2 is zero, the inversion could "
                                             r"not be completed because the input matrix is singular.$"):
        LA.inv(T([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(RuntimeError, match=r"^linalg.cholesky: \(Batch element 1\): The factorization could not be "
                                           r"completed because the input is not positive-definite \(the leading "
                                           r"minor of order 2 is not positive-definite\).$"):
        LA.cholesky(T(np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])])))
    with pytest.raises(RuntimeError, match="^linalg.inv: Expected a floating point or complex tensor as input. "
                                           "Got Long$"):
        LA.inv(tl.ones(3, 3, dtype=tl.int64))
    info = LA.inv_ex(T(np.stack([EYE, np.zeros((4, 4))]))).info
    np.testing.assert_array_equal(info.numpy(), [0, 1])
    assert info.dtype == tl.int32
    np.testing.assert_array_equal(LA.cholesky_ex(T(np.diag([1.0, 2.0, -1.0]))).info.numpy(), 3)
    np.testing.assert_array_equal(LA.lu_factor_ex(T(np.zeros((2, 3, 3)))).info.numpy(), [1, 1])


# --- gradients ------------------------------------------------------------------------------------------

def G(a):
    return T(a, grad=True)


GRADS = {
    "inv": (lambda a: LA.inv(a), [_sq(2, n=3)]),
    "det": (lambda a: LA.det(a), [_sq(2, n=3)]),
    "slogdet": (lambda a: LA.slogdet(a).logabsdet, [_sq(2, n=3)]),
    "logdet": (lambda a: tl.logdet(a @ a.mT), [_sq(2, n=3)]),
    "solve": (lambda a, b: LA.solve(a, b), [_sq(2, n=3), rng.standard_normal((3, 2))]),
    "solve_vector": (lambda a, b: LA.solve(a, b), [_sq(2, n=3), rng.standard_normal(3)]),
    "solve_right": (lambda a, b: LA.solve(a, b, left=False), [_sq(2, n=3), rng.standard_normal((4, 3))]),
    "cholesky": (lambda a: LA.cholesky(a @ a.mT + 3 * tl.eye(3, dtype=a.dtype)), [rng.standard_normal((2, 3, 3))]),
    "cholesky_upper": (lambda a: LA.cholesky(a @ a.mT + 3 * tl.eye(3, dtype=a.dtype), upper=True),
                       [rng.standard_normal((2, 3, 3))]),
    "cholesky_solve": (lambda b, a: tl.cholesky_solve(b, LA.cholesky(a @ a.mT + 3 * tl.eye(3, dtype=a.dtype))),
                       [rng.standard_normal((3, 2)), rng.standard_normal((3, 3))]),
    "cholesky_inverse": (lambda a: tl.cholesky_inverse(LA.cholesky(a @ a.mT + 3 * tl.eye(3, dtype=a.dtype))),
                         [rng.standard_normal((3, 3))]),
    "qr_Q": (lambda a: LA.qr(a).Q, [rng.standard_normal((2, 4, 3))]),
    "qr_R": (lambda a: LA.qr(a).R, [rng.standard_normal((2, 4, 3))]),
    "qr_wide_Q": (lambda a: LA.qr(a).Q, [rng.standard_normal((2, 3, 5))]),
    "qr_wide_R": (lambda a: LA.qr(a).R, [rng.standard_normal((2, 3, 5))]),
    "qr_wide_complete": (lambda a: LA.qr(a, mode="complete").Q * 2 + LA.qr(a, mode="complete").R.sum(-1, True),
                         [rng.standard_normal((3, 5))]),
    "qr_complete_square": (lambda a: LA.qr(a, mode="complete").Q, [rng.standard_normal((3, 3))]),
    "svd_S": (lambda a: LA.svd(a, full_matrices=False).S, [rng.standard_normal((2, 4, 3))]),
    "svd_U2": (lambda a: LA.svd(a, full_matrices=False).U ** 2, [rng.standard_normal((2, 4, 3))]),
    "svd_Vh2_wide": (lambda a: LA.svd(a, full_matrices=False).Vh ** 2, [rng.standard_normal((2, 3, 5))]),
    "svd_U2_wide": (lambda a: LA.svd(a, full_matrices=False).U ** 2, [rng.standard_normal((3, 5))]),
    "svd_full_square": (lambda a: LA.svd(a).Vh ** 2, [rng.standard_normal((3, 3))]),
    "svdvals": (lambda a: LA.svdvals(a), [rng.standard_normal((2, 4, 3))]),
    "eigh_values": (lambda a: LA.eigh(a + a.mT).eigenvalues, [rng.standard_normal((2, 3, 3))]),
    "eigh_vectors": (lambda a: LA.eigh(a + a.mT + tl.diag(tl.tensor([0.0, 3.0, 6.0]))).eigenvectors ** 2,
                     [rng.standard_normal((2, 3, 3))]),
    "eigvalsh": (lambda a: LA.eigvalsh(a + a.mT), [rng.standard_normal((3, 3))]),
    "pinv": (lambda a: LA.pinv(a), [rng.standard_normal((2, 4, 3))]),
    "pinv_wide": (lambda a: LA.pinv(a), [rng.standard_normal((3, 5))]),
    "pinv_hermitian": (lambda a: LA.pinv(a @ a.mT + tl.eye(3, dtype=a.dtype), hermitian=True),
                       [rng.standard_normal((3, 3))]),
    "lstsq": (lambda a, b: LA.lstsq(a, b).solution, [rng.standard_normal((5, 3)), rng.standard_normal((5, 2))]),
    "lu_factor": (lambda a: LA.lu_factor(a).LU, [_sq(2, n=3) - 3 * np.eye(3)]),
    "lu": (lambda a: LA.lu(a).U + LA.lu(a).L, [_sq(2, n=3) - 3 * np.eye(3)]),
    "lu_factor_wide": (lambda a: LA.lu_factor(a).LU, [rng.standard_normal((2, 3, 5))]),
    "lu_factor_tall": (lambda a: LA.lu_factor(a).LU, [rng.standard_normal((2, 5, 3))]),
    "lu_tall": (lambda a: LA.lu(a).L, [rng.standard_normal((5, 3))]),
    "lu_solve": (lambda a, b: LA.lu_solve(*LA.lu_factor(a), b), [_sq(2, n=3), rng.standard_normal((3, 2))]),
    "lu_solve_adjoint_right": (lambda a, b: LA.lu_solve(*LA.lu_factor(a), b, adjoint=True, left=False),
                               [_sq(n=3), rng.standard_normal((2, 3))]),
    "solve_triangular": (lambda a, b: LA.solve_triangular(a, b, upper=True), [_sq(2, n=3),
                                                                              rng.standard_normal((3, 2))]),
    "solve_triangular_unit_right": (lambda a, b: LA.solve_triangular(a, b, upper=False, left=False,
                                                                     unitriangular=True),
                                    [_sq(2, n=3), rng.standard_normal((2, 3))]),
    "triangular_solve": (lambda b, a: tl.triangular_solve(b, a, transpose=True).solution,
                         [rng.standard_normal((3, 2)), _sq(n=3)]),
    "matrix_exp": (lambda a: LA.matrix_exp(a), [rng.standard_normal((2, 3, 3))]),
    "matrix_power_neg": (lambda a: LA.matrix_power(a, -3), [_sq(n=3)]),
    "tensorinv": (lambda a: LA.tensorinv(a, ind=1), [(rng.standard_normal((6, 6)) + 6 * np.eye(6)).reshape(6, 2, 3)]),
    "tensorsolve": (lambda a, b: LA.tensorsolve(a, b), [(rng.standard_normal((6, 6)) + 6 * np.eye(6)).reshape(
        2, 3, 6), rng.standard_normal((2, 3))]),
    "multi_dot": (lambda a, b, c: LA.multi_dot([a, b, c]), [rng.standard_normal(3), rng.standard_normal((3, 4)),
                                                           rng.standard_normal((4, 2))]),
    "vecdot": (lambda a, b: LA.vecdot(a, b, dim=0), [rng.standard_normal((3, 2)), rng.standard_normal((3, 1))]),
    "cross": (lambda a, b: LA.cross(a, b), [rng.standard_normal((2, 3)), rng.standard_normal((1, 3))]),
    "vander": (lambda x: LA.vander(x, N=4), [rng.standard_normal((2, 3))]),
    "householder_product": (lambda a, t: LA.householder_product(a, t), [rng.standard_normal((4, 3)),
                                                                        rng.uniform(0.5, 1.5, 2)]),
    "norm": (lambda a: LA.norm(a), [rng.standard_normal((3, 4))]),
    "vector_norm_neg_inf": (lambda a: LA.vector_norm(a, -np.inf, dim=1), [rng.standard_normal((3, 4))]),
    "matrix_norm_nuc": (lambda a: LA.matrix_norm(a, "nuc"), [rng.standard_normal((2, 3, 4))]),
    "matrix_norm_2": (lambda a: LA.matrix_norm(a, 2), [rng.standard_normal((2, 3, 4))]),
    "matrix_norm_inf": (lambda a: LA.matrix_norm(a, np.inf), [rng.standard_normal((2, 3, 4))]),
    "cond": (lambda a: LA.cond(a), [_sq(2, n=3)]),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradcheck(name):
    fn, arrays = GRADS[name]
    assert gradcheck(fn, [G(a) for a in arrays])


@pytest.mark.parametrize("name", ["inv", "det", "solve", "cholesky", "matrix_exp", "solve_triangular", "qr_R"])
def test_gradgradcheck(name):
    fn, arrays = GRADS[name]
    assert gradgradcheck(fn, [G(a) for a in arrays])


def test_qr_backward_refusals():
    with pytest.raises(RuntimeError, match="mode='complete' and nrows > ncols"):
        LA.qr(G(TALL), mode="complete").R.sum().backward()
    with pytest.raises(RuntimeError, match="mode='r'"):
        LA.qr(G(SQ[0]), mode="r").R.sum().backward()


def test_orthogonal_init_still_works():
    w = tl.empty(5, 3)
    tl.nn.init.orthogonal_(w)
    np.testing.assert_allclose(w.numpy().T @ w.numpy(), np.eye(3), atol=1e-5)


def test_linalg_is_loaded_on_first_use_and_imports_no_scipy():
    code = ("import sys, tensorlib; assert 'tensorlib.linalg' not in sys.modules; assert 'scipy' not in "
            "sys.modules; tensorlib.linalg.inv(tensorlib.eye(2)); assert 'scipy' not in sys.modules; "
            "from tensorlib.linalg import norm; import tensorlib.linalg as L; assert L.norm is norm")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- CUDA: the failure paths (CuPy returns NaN where NumPy raises) ---------------------------------------

@pytest.mark.cuda
def test_cuda_failures_match_cpu():
    sing = np.stack([np.eye(3), [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]])
    notpd = np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])])
    for fn in (lambda t: LA.inv(t), lambda t: LA.solve(t, t), lambda t: LA.lu_factor(t)):
        with pytest.raises(RuntimeError) as cpu:
            fn(T(sing))
        with pytest.raises(RuntimeError) as gpu:
            fn(T(sing).cuda())
        assert str(gpu.value) == str(cpu.value)
    with pytest.raises(RuntimeError) as cpu:
        LA.cholesky(T(notpd))
    with pytest.raises(RuntimeError) as gpu:
        LA.cholesky(T(notpd).cuda())
    assert str(gpu.value) == str(cpu.value)
    for fn in (lambda t: LA.inv_ex(t).info, lambda t: LA.solve_ex(t, t).info, lambda t: LA.lu_factor_ex(t).info):
        np.testing.assert_array_equal(fn(T(sing).cuda()).cpu().numpy(), fn(T(sing)).numpy())
    np.testing.assert_array_equal(LA.cholesky_ex(T(notpd).cuda()).info.cpu().numpy(), [0, 2])
    z = np.triu(SQ[0])
    z[1, 1] = 0
    got = LA.solve_triangular(T(z).cuda(), T(EYE).cuda(), upper=True).cpu().numpy()
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(LA.solve_triangular(T(z), T(EYE), upper=True)
                                                                .numpy()))


@pytest.mark.cuda
def test_cuda_values_match_cpu():
    a = _sq(2) - 4 * EYE
    for fn in (lambda t: LA.matrix_exp(t * 2), lambda t: LA.lu(t).L, lambda t: LA.lu(t).P,
               lambda t: LA.pinv(t), lambda t: LA.lstsq(t, t).solution, lambda t: LA.matrix_norm(t, "nuc"),
               lambda t: tl.svd(t).S, lambda t: LA.lu_solve(*LA.lu_factor(t), t)):
        np.testing.assert_allclose(fn(T(a).cuda()).cpu().numpy(), fn(T(a)).numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_cuda_failures_that_cupy_does_not_raise(monkeypatch):
    """The real CuPy raises nothing (its errstate linalg='ignore'): inv and solve return the inf/NaN of a zero
    pivot, cholesky potrf's partial factor (finite, a non-positive diagonal entry where it stopped). The fake
    raises as NumPy does, so those results are simulated: torch's errors and info still come."""
    import cupy

    def nan_like(a, *rest):
        return cupy.full(a.shape if not rest else np.broadcast_shapes(a.shape[:-1], rest[0].shape[:-1]) +
                         rest[0].shape[-1:], np.nan)
    monkeypatch.setattr(cupy.linalg, "inv", nan_like)
    monkeypatch.setattr(cupy.linalg, "solve", nan_like)
    monkeypatch.setattr(cupy.linalg, "cholesky", lambda a: cupy.tril(a))
    sing = T([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(LA.LinAlgError, match="^linalg.inv: The diagonal element 2 is zero"):
        LA.inv(sing.cuda())
    with pytest.raises(LA.LinAlgError, match="^torch.linalg.solve: The solver failed"):
        LA.solve(sing.cuda(), tl.ones(2).cuda())
    with pytest.raises(LA.LinAlgError, match="the leading minor of order 2 is not positive-definite"):
        LA.cholesky(T(np.diag([1.0, -1.0, 1.0])).cuda())
    np.testing.assert_array_equal(LA.cholesky_ex(T(np.diag([1.0, 1.0, -1.0])).cuda()).info.cpu().numpy(), 3)


def test_out_arguments():
    o = tl.empty(3, 4, 4, dtype=tl.float64)
    assert LA.inv(T(SQ), out=o) is o
    close(o, np.linalg.inv(SQ))
    q, r = tl.empty(3, 4, 4, dtype=tl.float64), tl.empty(3, 4, 4, dtype=tl.float64)
    res = LA.qr(T(SQ), out=(q, r))
    assert res.Q is q and res.R is r and type(res).__name__ == "linalg_qr"
    close(q @ r, SQ)
    n = tl.empty(3, dtype=tl.float64)
    assert LA.matrix_norm(T(SQ), out=n) is n
    close(n, np.linalg.norm(SQ, axis=(-2, -1)))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        LA.det(G(SQ), out=tl.empty(3, dtype=tl.float64))
