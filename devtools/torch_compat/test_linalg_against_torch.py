"""tensorlib.linalg (and torch.det, inverse, cholesky_solve, svd, ... and their Tensor methods) against torch 2.13
side by side: values and input gradients in float64 for well-conditioned random batched inputs (to 1e-8),
the result types' field names, and the error messages, message for message. Factorizations defined up to
signs (svd, eigh) are compared through sign-invariant quantities (U², V², reconstructions) and differentiated
through losses that do not see the signs."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
R = np.random.default_rng(7)


def _sq(*batch, n=4):
    return R.standard_normal((*batch, n, n)) + n * np.eye(n)


def _spd(*batch, n=4):
    x = R.standard_normal((*batch, n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def _distinct_sym(*batch, n=4):
    """Symmetric with well separated eigenvalues (eigh's gradient divides by their gaps)."""
    q, _ = np.linalg.qr(R.standard_normal((*batch, n, n)))
    w = np.arange(1.0, n + 1) * 1.5 + R.uniform(-0.3, 0.3, (*batch, n))
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def _tall(*batch, m=5, n=3):
    return R.standard_normal((*batch, m, n))


def _sqsum(L, t):
    return (t * t).sum()


SQ, SPD, SYM, TALL, WIDE = _sq(2), _spd(2), _distinct_sym(2), _tall(2), _tall(2, m=3, n=5)
B3 = R.standard_normal((2, 4, 3))
W = R.standard_normal((2, 4, 4))        # loss weights: sum(out * W) sees every entry

# name -> (inputs, fn(lib, *tensors) -> tensor or tuple of tensors to compare, loss(lib, out) or None)
CASES = {
    "inv": ((SQ,), lambda L, a: L.linalg.inv(a), None),
    "inv_ex": ((SQ,), lambda L, a: L.linalg.inv_ex(a).inverse, None),
    "inverse": ((SQ,), lambda L, a: L.inverse(a), None),
    "inverse_method": ((SQ,), lambda L, a: a.inverse(), None),
    "det": ((SQ,), lambda L, a: L.linalg.det(a), None),
    "det_method": ((SQ,), lambda L, a: a.det(), None),
    "slogdet": ((SQ,), lambda L, a: L.linalg.slogdet(a).logabsdet * 1 + L.linalg.slogdet(a).sign, None),
    "logdet": ((SPD,), lambda L, a: L.logdet(a), None),
    "solve": ((SQ, B3), lambda L, a, b: L.linalg.solve(a, b), None),
    "solve_vector": ((SQ, B3[..., 0]), lambda L, a, b: L.linalg.solve(a, b), None),
    "solve_broadcast": ((SQ[0], B3), lambda L, a, b: L.linalg.solve(a, b), None),
    "solve_right": ((SQ, B3.swapaxes(-1, -2)), lambda L, a, b: L.linalg.solve(a, b, left=False), None),
    "solve_ex": ((SQ, B3), lambda L, a, b: L.linalg.solve_ex(a, b).result, None),
    "cholesky": ((SPD,), lambda L, a: L.linalg.cholesky(a), None),
    "cholesky_upper": ((SPD,), lambda L, a: L.linalg.cholesky(a, upper=True), None),
    "cholesky_ex": ((SPD,), lambda L, a: L.linalg.cholesky_ex(a).L, None),
    "cholesky_sym_grad": ((SQ,), lambda L, a: L.linalg.cholesky(a @ a.mT + 4 * L.eye(4, dtype=a.dtype)), None),
    "cholesky_solve": ((B3, SPD), lambda L, b, a: L.cholesky_solve(b, L.linalg.cholesky(a)), None),
    "cholesky_inverse": ((SPD,), lambda L, a: L.cholesky_inverse(L.linalg.cholesky(a)), None),
    "qr": ((TALL,), lambda L, a: L.linalg.qr(a), None),
    "qr_wide": ((WIDE,), lambda L, a: L.linalg.qr(a), None),
    "qr_square": ((SQ,), lambda L, a: L.linalg.qr(a), None),
    "qr_r": ((TALL,), lambda L, a: L.linalg.qr(a, mode="r").R, "nograd"),
    "torch_qr": ((TALL,), lambda L, a: L.qr(a), None),
    "svd_reconstruct": ((TALL,), lambda L, a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*L.linalg.svd(
        a, full_matrices=False)), None),
    "svd_signless": ((TALL,), lambda L, a: (lambda u, s, vh: (u * u, s, vh * vh))(*L.linalg.svd(
        a, full_matrices=False)), None),
    "svd_wide_signless": ((WIDE,), lambda L, a: (lambda u, s, vh: (u * u, s, vh * vh))(*L.linalg.svd(
        a, full_matrices=False)), None),
    "svd_full_square": ((SQ,), lambda L, a: (lambda u, s, vh: (u * u, s))(*L.linalg.svd(a)), None),
    "torch_svd": ((TALL,), lambda L, a: (lambda u, s, v: (u * u, s, v * v))(*L.svd(a)), None),
    "svdvals": ((TALL,), lambda L, a: L.linalg.svdvals(a), None),
    "eigh": ((SYM,), lambda L, a: (lambda w, v: (w, v * v))(*L.linalg.eigh(a)), None),
    "eigh_upper": ((SYM,), lambda L, a: (lambda w, v: (w, v * v))(*L.linalg.eigh(a, UPLO="U")), None),
    "eigvalsh": ((SYM,), lambda L, a: L.linalg.eigvalsh(a), None),
    "pinv": ((TALL,), lambda L, a: L.linalg.pinv(a), None),
    "pinv_hermitian": ((SYM,), lambda L, a: L.linalg.pinv(a, hermitian=True), None),
    "pinverse": ((WIDE,), lambda L, a: L.pinverse(a), None),
    "lstsq": ((TALL, _tall(2, m=5, n=2)), lambda L, a, b: L.linalg.lstsq(a, b).solution, None),
    "lstsq_gelsd": ((TALL, _tall(2, m=5, n=2)), lambda L, a, b: L.linalg.lstsq(a, b, driver="gelsd")[:2], None),
    "matrix_rank": ((np.concatenate([TALL[..., :2], TALL[..., :1] + TALL[..., 1:2]], -1),),
                    lambda L, a: L.linalg.matrix_rank(a), "nograd"),
    "matrix_power": ((SQ,), lambda L, a: L.linalg.matrix_power(a, 3), None),
    "matrix_power_neg": ((SQ,), lambda L, a: L.linalg.matrix_power(a, -2), None),
    "multi_dot": ((R.standard_normal(4), SQ[0], R.standard_normal((4, 3)), R.standard_normal((3, 2))),
                  lambda L, *xs: L.linalg.multi_dot(xs), None),
    "cross": ((R.standard_normal((2, 3)), R.standard_normal((1, 3))), lambda L, a, b: L.linalg.cross(a, b), None),
    "vecdot": ((SQ, B3[0, :, 0]), lambda L, a, b: L.linalg.vecdot(a, b), None),
    "diagonal": ((SQ,), lambda L, a: L.linalg.diagonal(a, offset=1), None),
    "matrix_exp": ((SQ * 0.3,), lambda L, a: L.linalg.matrix_exp(a), None),
    "matrix_exp_large": ((SQ * 2,), lambda L, a: L.matrix_exp(a), None),
    "cond": ((SQ,), lambda L, a: L.linalg.cond(a), None),
    "cond_fro": ((SQ,), lambda L, a: L.linalg.cond(a, "fro"), "nograd"),    # torch 2.13 cannot differentiate it
    "lu_factor": ((SQ,), lambda L, a: L.linalg.lu_factor(a).LU, None),
    "lu_factor_pivots": ((_sq(2) - 4 * np.eye(4),), lambda L, a: L.linalg.lu_factor(a).pivots, "nograd"),
    "lu": ((_sq(2) - 4 * np.eye(4),), lambda L, a: L.linalg.lu(a), None),
    "lu_tall": ((TALL,), lambda L, a: L.linalg.lu(a), None),
    "lu_wide": ((WIDE,), lambda L, a: L.linalg.lu(a), None),
    "lu_factor_tall": ((TALL,), lambda L, a: L.linalg.lu_factor(a).LU, None),
    "lu_solve": ((SQ, B3), lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b), None),
    "lu_solve_adjoint": ((SQ, B3), lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, adjoint=True),
                         None),
    "lu_solve_right": ((SQ, B3.swapaxes(-1, -2)),
                       lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, left=False), None),
    "lu_solve_right_adjoint": ((SQ, B3.swapaxes(-1, -2)), lambda L, a, b: L.linalg.lu_solve(
        *L.linalg.lu_factor(a), b, left=False, adjoint=True), None),
    "torch_lu_solve": ((SQ, B3), lambda L, a, b: L.lu_solve(b, *L.linalg.lu_factor(a)), None),
    "lu_unpack": ((SQ,), lambda L, a: L.lu_unpack(*L.linalg.lu_factor(a)), None),
    "solve_triangular": ((SQ, B3), lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True), None),
    "solve_triangular_lower_unit": ((SQ, B3), lambda L, a, b: L.linalg.solve_triangular(
        a, b, upper=False, unitriangular=True), None),
    "solve_triangular_right": ((SQ, B3.swapaxes(-1, -2)), lambda L, a, b: L.linalg.solve_triangular(
        a, b, upper=False, left=False), None),
    "triangular_solve": ((B3, SQ), lambda L, b, a: L.triangular_solve(b, a, transpose=True), None),
    "tensorinv": ((_sq(n=6).reshape(6, 2, 3),), lambda L, a: L.linalg.tensorinv(a, ind=1), None),
    "tensorsolve": ((_sq(n=6).reshape(2, 3, 6), R.standard_normal((2, 3))),
                    lambda L, a, b: L.linalg.tensorsolve(a, b), None),
    "vander": ((R.standard_normal((2, 3)),), lambda L, x: L.linalg.vander(x, N=4), None),
    "householder_product": ((TALL, R.uniform(0.5, 1.5, (2, 3))),
                            lambda L, a, t: L.linalg.householder_product(a, t), None),
    "norm": ((SQ,), lambda L, a: L.linalg.norm(a), None),
    "vector_norm_inf": ((SQ,), lambda L, a: L.linalg.vector_norm(a, float("inf"), dim=(-1,)), None),
    "vector_norm_neg_inf": ((SQ,), lambda L, a: L.linalg.vector_norm(a, -float("inf"), dim=-1), None),
    "vector_norm_3": ((SQ,), lambda L, a: L.linalg.vector_norm(a, 3, dim=(0, 2), keepdim=True), None),
    "vector_norm_1": ((SQ,), lambda L, a: L.linalg.vector_norm(a, 1), None),
    "vector_norm_0": ((SQ,), lambda L, a: L.linalg.vector_norm(a, 0, dim=1), None),
    "norm_float32": ((SQ.astype(np.float32),), lambda L, a: L.linalg.norm(a, dtype=L.float64), None),
}
for _o in ("fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf")):
    CASES[f"matrix_norm_{_o}"] = ((SQ,), lambda L, a, o=_o: L.linalg.matrix_norm(a, o), None)
    CASES[f"matrix_norm_{_o}_keepdim_dims"] = ((SQ,), lambda L, a, o=_o: L.linalg.matrix_norm(
        a, o, dim=(0, 2), keepdim=True), None)
    CASES[f"norm_2d_{_o}"] = ((SQ[0],), lambda L, a, o=_o: L.linalg.norm(a, o), None)


def _run(lib, name):
    inputs, fn, mode = CASES[name]
    ts = [lib.tensor(x, requires_grad=x.dtype.kind == "f" and mode != "nograd") for x in inputs]
    out = fn(lib, *ts)
    outs = list(out) if isinstance(out, tuple) else [out]
    vals = [o.detach().numpy() for o in outs]
    grads = None
    if mode != "nograd":
        loss = sum((o * lib.tensor(np.resize(W.ravel(), o.shape))).sum() for o in outs
                   if o.is_floating_point() and o.requires_grad)
        need = [t for t in ts if t.requires_grad]
        grads = [g.numpy() if g is not None else None
                 for g in (torch.autograd.grad if lib is torch else tl.autograd.grad)(loss, need,
                                                                                      allow_unused=True)]
    return vals, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name):
    tv, tg = _run(tl, name)
    ev, eg = _run(torch, name)
    assert len(tv) == len(ev)
    for a, b in zip(tv, ev):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)
    if tg is not None:
        for a, b in zip(tg, eg):
            if b is None:       # torch's norm(ord=0) gives no gradient (an undefined one); tensorlib's is zeros
                assert a is None or not a.any()
                continue
            tol = 1e-6 if a.dtype == np.float32 else 1e-8      # (float32 gradients: float32 rounding)
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_result_types_match_torch():
    a = SQ
    for fn in (lambda L, x: L.linalg.slogdet(x), lambda L, x: L.linalg.qr(x), lambda L, x: L.linalg.svd(x),
               lambda L, x: L.linalg.eigh(x @ x.mT), lambda L, x: L.linalg.inv_ex(x),
               lambda L, x: L.linalg.cholesky_ex(x @ x.mT), lambda L, x: L.linalg.solve_ex(x, x),
               lambda L, x: L.linalg.lu_factor(x), lambda L, x: L.linalg.lu_factor_ex(x), lambda L, x: L.linalg.lu(x),
               lambda L, x: L.linalg.lstsq(x, x), lambda L, x: L.slogdet(x), lambda L, x: L.qr(x),
               lambda L, x: L.svd(x), lambda L, x: L.triangular_solve(x, x), lambda L, x: L.lu_unpack(
                   *L.linalg.lu_factor(x))):
        t, e = fn(tl, tl.tensor(a)), fn(torch, torch.tensor(a))
        assert type(t).__name__ == type(e).__name__ and t._fields == type(e).__match_args__
        for x, y in zip(t, e):
            assert tuple(x.shape) == tuple(y.shape) and str(x.dtype).split(".")[1] == str(y.dtype).split(".")[1]


def test_lstsq_extras_match_torch():
    a, b = TALL, _tall(2, m=5, n=2)
    for driver in ("gelsy", "gelsd", "gelss", "gels"):
        t = tl.linalg.lstsq(tl.tensor(a), tl.tensor(b), driver=driver)
        e = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        for x, y in zip(t, e):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-8, atol=1e-10)


def test_node_names_match_torch():
    cases = {
        "inv": lambda L, a: L.linalg.inv(a), "det": lambda L, a: L.linalg.det(a),
        "slogdet": lambda L, a: L.linalg.slogdet(a).logabsdet, "solve": lambda L, a: L.linalg.solve(a, a),
        "cholesky": lambda L, a: L.linalg.cholesky(a), "qr": lambda L, a: L.linalg.qr(a).R,
        "svd": lambda L, a: L.linalg.svd(a).S, "eigh": lambda L, a: L.linalg.eigh(a).eigenvalues,
        "lu_factor": lambda L, a: L.linalg.lu_factor(a).LU,
        "solve_triangular": lambda L, a: L.linalg.solve_triangular(a, a, upper=True),
        "matrix_exp": lambda L, a: L.linalg.matrix_exp(a), "pinv": lambda L, a: L.linalg.pinv(a),
        "vector_norm": lambda L, a: L.linalg.vector_norm(a),
    }
    for name, fn in cases.items():
        t = fn(tl, tl.tensor(SPD[0], requires_grad=True))
        e = fn(torch, torch.tensor(SPD[0], requires_grad=True))
        assert t.grad_fn.name() == e.grad_fn.name(), name


SINGULAR = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
NOT_PD = np.diag([1.0, -1.0, 1.0])
ERRORS = {
    "inv_singular": lambda L: L.linalg.inv(L.zeros(3, 3)),
    "inv_singular_2": lambda L: L.linalg.inv(L.tensor(SINGULAR)),
    "inv_batched": lambda L: L.linalg.inv(L.stack([L.eye(3), L.zeros(3, 3)])),
    "inv_long": lambda L: L.linalg.inv(L.ones(3, 3, dtype=L.long)),
    "inv_half": lambda L: L.linalg.inv(L.ones(3, 3, dtype=L.half)),
    "inv_nonsquare": lambda L: L.linalg.inv(L.zeros(2, 3)),
    "inv_1d": lambda L: L.linalg.inv(L.ones(3)),
    "inverse_singular": lambda L: L.inverse(L.zeros(3, 3)),
    "cholesky_not_pd": lambda L: L.linalg.cholesky(L.tensor(NOT_PD)),
    "cholesky_batched": lambda L: L.linalg.cholesky(L.stack([L.eye(2), -L.eye(2)])),
    "cholesky_long": lambda L: L.linalg.cholesky(L.ones(3, 3, dtype=L.long)),
    "solve_singular": lambda L: L.linalg.solve(L.zeros(3, 3), L.ones(3)),
    "solve_batched": lambda L: L.linalg.solve(L.zeros(2, 3, 3), L.ones(2, 3)),
    "solve_shapes": lambda L: L.linalg.solve(L.eye(3), L.ones(4)),
    "solve_right_vector": lambda L: L.linalg.solve(L.eye(3), L.ones(3), left=False),
    "solve_long": lambda L: L.linalg.solve(L.ones(3, 3, dtype=L.long), L.ones(3)),
    "det_nonsquare": lambda L: L.linalg.det(L.zeros(2, 3)),
    "det_long": lambda L: L.linalg.det(L.ones(3, 3, dtype=L.long)),
    "slogdet_long": lambda L: L.linalg.slogdet(L.ones(3, 3, dtype=L.long)),
    "qr_1d": lambda L: L.linalg.qr(L.ones(3)),
    "qr_mode": lambda L: L.linalg.qr(L.ones(3, 3), mode="x"),
    "qr_long": lambda L: L.linalg.qr(L.ones(3, 3, dtype=L.long)),
    "svd_1d": lambda L: L.linalg.svd(L.ones(3)),
    "svd_long": lambda L: L.linalg.svd(L.ones(3, 3, dtype=L.long)),
    "eigh_nonsquare": lambda L: L.linalg.eigh(L.ones(2, 3)),
    "eigh_uplo": lambda L: L.linalg.eigh(L.ones(3, 3), UPLO="X"),
    "lu_factor_singular": lambda L: L.linalg.lu_factor(L.zeros(3, 3)),
    "lu_factor_batched": lambda L: L.linalg.lu_factor(L.zeros(2, 3, 3)),
    "lu_factor_no_pivot_cpu": lambda L: L.linalg.lu_factor(L.eye(3), pivot=False),
    "matrix_exp_nonsquare": lambda L: L.linalg.matrix_exp(L.ones(2, 3)),
    "matrix_exp_long": lambda L: L.linalg.matrix_exp(L.ones(3, 3, dtype=L.long)),
    "pinv_long": lambda L: L.linalg.pinv(L.ones(3, 3, dtype=L.long)),
    "pinv_1d_long": lambda L: L.linalg.pinv(L.ones(3, dtype=L.long)),
    "norm_3d_ord": lambda L: L.linalg.norm(L.ones(2, 2, 2), ord=2),
    "vector_norm_long": lambda L: L.linalg.vector_norm(L.ones(2, 2, dtype=L.long)),
    "matrix_norm_1d": lambda L: L.linalg.matrix_norm(L.ones(3)),
    "matrix_norm_ord": lambda L: L.linalg.matrix_norm(L.ones(3, 3), ord=3),
    "multi_dot_one": lambda L: L.linalg.multi_dot([L.ones(3)]),
    "cross_dim": lambda L: L.linalg.cross(L.ones(2, 4), L.ones(2, 4)),
    "matrix_power_nonsquare": lambda L: L.linalg.matrix_power(L.ones(2, 3), 2),
    "lstsq_driver": lambda L: L.linalg.lstsq(L.ones(3, 2), L.ones(3, 2), driver="x"),
    "lstsq_rows": lambda L: L.linalg.lstsq(L.ones(3, 2), L.ones(4, 2)),
    "lstsq_dtypes": lambda L: L.linalg.lstsq(L.ones(3, 2, dtype=L.long), L.ones(3, 2)),
    "vander_0d": lambda L: L.linalg.vander(L.tensor(1.0)),
    "tensorinv_shapes": lambda L: L.linalg.tensorinv(L.ones(2, 3), ind=1),
    "tensorsolve_shapes": lambda L: L.linalg.tensorsolve(L.ones(2, 3, 4), L.ones(2, 3)),
    "householder_wide": lambda L: L.linalg.householder_product(L.ones(2, 3), L.ones(2)),
    "householder_tau": lambda L: L.linalg.householder_product(L.ones(3, 2), L.ones(3)),
    "cond_nonsquare": lambda L: L.linalg.cond(L.ones(2, 3), 1),
    "matrix_rank_1d": lambda L: L.linalg.matrix_rank(L.ones(3, dtype=L.float64)),
    "solve_triangular_1d": lambda L: L.linalg.solve_triangular(L.eye(3), L.ones(3), upper=True),
    "cross_ranks": lambda L: L.linalg.cross(L.ones(3), L.ones(2, 3)),
    "vector_norm_fro": lambda L: L.linalg.vector_norm(L.ones(3), ord="fro"),
    "solve_triangular_shapes": lambda L: L.linalg.solve_triangular(L.eye(3), L.ones(4, 1), upper=True),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    with pytest.raises(Exception) as e:
        ERRORS[name](torch)
    with pytest.raises(Exception) as t:
        ERRORS[name](tl)
    assert str(t.value) == str(e.value)
    assert isinstance(t.value, RuntimeError) == isinstance(e.value, RuntimeError)
    if isinstance(e.value, torch.linalg.LinAlgError):
        assert isinstance(t.value, tl.linalg.LinAlgError)


def test_ex_variants_report_info_as_torch():
    for fn in (lambda L: L.linalg.inv_ex(L.stack([L.eye(3), L.zeros(3, 3)])).info,
               lambda L: L.linalg.cholesky_ex(L.tensor(np.stack([NOT_PD, np.eye(3), -np.eye(3)]))).info,
               lambda L: L.linalg.solve_ex(L.zeros(2, 3, 3), L.ones(2, 3)).info,
               lambda L: L.linalg.lu_factor_ex(L.tensor(np.stack([SINGULAR, np.eye(3), np.zeros((3, 3))]))).info):
        t, e = fn(tl), fn(torch)
        assert str(t.dtype).split(".")[1] == str(e.dtype).split(".")[1]
        np.testing.assert_array_equal(t.numpy(), e.numpy())


def test_singular_results_are_nonfinite_as_torch():
    t = tl.linalg.solve_triangular(tl.zeros(3, 3), tl.ones(3, 1), upper=True)
    e = torch.linalg.solve_triangular(torch.zeros(3, 3), torch.ones(3, 1), upper=True)
    np.testing.assert_array_equal(np.isfinite(t.numpy()), np.isfinite(e.numpy()))
    np.testing.assert_array_equal(tl.logdet(tl.tensor(-np.eye(3)[[1, 0, 2]])).isnan().numpy(),
                                  torch.logdet(torch.tensor(-np.eye(3)[[1, 0, 2]])).isnan().numpy())
