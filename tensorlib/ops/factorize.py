"""torch.linalg's primitive ops: the factorizations and solves that autograd differentiates as a whole (inv_ex,
det, slogdet, solve_ex, cholesky_ex, qr, svd, eigh, lu_factor_ex, solve_triangular, matrix_exp), each with
torch's node name and backward formula (torch's FunctionsManual.cpp), and the torch-level aliases
built on them (torch.det, inverse, cholesky, qr, svd, ... and their Tensor methods). tensorlib.linalg composes
the rest (norms, pinv, lstsq, lu, ...) from these.

Kernels run on NumPy's and CuPy's `linalg` (both have inv, solve, cholesky, qr, svd, eigh, det, slogdet,
batched); LU with partial pivoting, triangular solves with zero pivots and the matrix exponential are written
here once on `xp` (CuPy has no lu_factor or expm outside cupyx.scipy, which tensorlib does not require). torch
reports a singular or non-positive-definite input by LAPACK's `info`; NumPy raises and CuPy returns NaN, so
`info` is computed (by the same elimination LAPACK runs) only when that happens: the common case pays
nothing.

Complex matrices: a formula that is holomorphic in A (inv, det, solve, solve_triangular, lu_factor, matrix_exp:
the Jacobian's transpose applied to g) is torch's complex one as the engine runs it, conj(formula(conj(g)))
(autograd.engine._run_complex). The others (slogdet, cholesky, qr, svd, eigh, eig, pinv) set
`complex_formula` and are written as torch's for complex gradients (mH where the real formula has mT, torch's
phase terms and gauge checks), their real path the real formula as before (`_h`: mT for real matrices)."""
from __future__ import annotations

import functools
import warnings

from .. import _dtype as D, _sync
from .._device import xp_of
from .broadcast import sum_to
from .comparison import where
from .complex_ops import imag, real
from ._define import Tensor, dispatch, np, op, public, torch_op, write_out
from .creation import eye, zeros
from .linalg import matmul
from .reduce import return_type
from .shape import cat, transpose, tril, triu
from ..dispatch import STATE, record_range


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a singular or non-positive-definite input (a RuntimeError, as torch's)."""


# --- named results (torch.return_types.linalg_*) ---------------------------------------------------------

inv_ex_rt = return_type("linalg_inv_ex", ["inverse", "info"])
cholesky_ex_rt = return_type("linalg_cholesky_ex", ["L", "info"])
solve_ex_rt = return_type("linalg_solve_ex", ["result", "info"])
slogdet_rt = return_type("linalg_slogdet", ["sign", "logabsdet"])
qr_rt = return_type("linalg_qr", ["Q", "R"])
svd_rt = return_type("linalg_svd", ["U", "S", "Vh"])
eigh_rt = return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
lu_factor_rt = return_type("linalg_lu_factor", ["LU", "pivots"])
lu_factor_ex_rt = return_type("linalg_lu_factor_ex", ["LU", "pivots", "info"])
torch_slogdet_rt = return_type("slogdet", ["sign", "logabsdet"])
torch_qr_rt = return_type("qr", ["Q", "R"])
torch_svd_rt = return_type("svd", ["U", "S", "V"])
triangular_solve_rt = return_type("triangular_solve", ["solution", "cloned_coefficient"])
lu_unpack_rt = return_type("lu_unpack", ["P", "L", "U"])


def with_out(fn):
    """torch's out= of a linalg function: the result (each tensor of a named result) copied into `out`."""
    @functools.wraps(fn)
    def f(*args, out=None, **kwargs):
        r = fn(*args, **kwargs)
        if out is None:
            return r
        if isinstance(r, tuple):
            for x, o in zip(r, out):
                write_out(x, o, fn.__name__)
            return type(r)(*out)
        return write_out(r, out, fn.__name__)
    return f


# --- argument checks (torch's messages) ---------------------------------------------------------------------

def check_floating(name, a, low_precision=True):
    if a.dtype.kind not in "fc" and a.dtype != D.BF16:      # (bfloat16: then refused as low precision)
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got "
                           f"{D.scalar_name(a.dtype)}")
    if low_precision and a.dtype.itemsize < 4:
        raise RuntimeError(f"{name}: Low precision dtypes not supported. Got {D.scalar_name(a.dtype)}")


def check_matrix(name, a):
    if a.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor A must have at least 2 dimensions.")


def check_square(name, a, what="A"):
    check_matrix(name, a)
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{name}: {what} must be batches of square matrices, but they are {a.shape[-2]} by "
                           f"{a.shape[-1]} matrices")


def _real_dtype(dt):
    """The real dtype of a complex one (float64 for complex128): singular values', eigh's eigenvalues',
    logabsdet's; a real dtype itself."""
    return np.finfo(dt).dtype if dt.kind == "c" else dt


def _h(x):
    """x's adjoint in a formula written for complex matrices: mH, and for real ones mT (the real path's ops)."""
    return x.mH if x._data.dtype.kind == "c" else x.mT


def _complex_formula(o):
    """`o` takes complex gradients as they come (OpDef.complex_formula): its formula is torch's complex one."""
    o.complex_formula = True
    return o


def _host(xp, a):
    """A small array (info, a flag) read on the host: a synchronisation on CuPy."""
    if xp is np:
        return a
    _sync.note(a, "linalg info")
    return a.get()


def _first_failure(info, name, message):
    """torch's error for the first batch element whose `info` is nonzero: `message(info)`, prefixed with
    "(Batch element k): " for a batch."""
    flat = np.asarray(info).reshape(-1)
    bad = np.flatnonzero(flat)
    if bad.size:
        k = int(bad[0])
        prefix = f"(Batch element {k}): " if np.ndim(info) else ""
        raise LinAlgError(f"{name}: {prefix}{message(int(flat[k]))}")


def _batched(a):
    """(…, m, n) as (b, m, n), and the batch shape."""
    return a.reshape((-1,) + a.shape[-2:]), a.shape[:-2]


# --- the eliminations LAPACK runs, on xp (info; CuPy's missing LU) --------------------------------------

def lu_loop(xp, a):
    """getrf's partial-pivoting LU of a batch (…, m, n), on xp: (LU packed as LAPACK's, pivots 1-based int32,
    info int32: the first zero pivot's 1-based index, 0 when there is none). The same elimination and pivot
    choice (the first largest |value|; of a complex one |re| + |im|, izamax's) as LAPACK's unblocked getf2."""
    flat, batch = _batched(a)
    complex_ = a.dtype.kind == "c"
    lu = flat.astype(a.dtype, copy=True)
    nb, m, n = lu.shape
    k = min(m, n)
    piv = xp.zeros((nb, k), dtype=np.int32)
    info = xp.zeros((nb,), dtype=np.int32)
    rows = xp.arange(nb)
    for j in range(k):
        col = lu[:, j:, j]
        r = xp.argmax(xp.abs(col.real) + xp.abs(col.imag) if complex_ else xp.abs(col), axis=1) + j
        piv[:, j] = (r + 1).astype(np.int32)
        top, other = lu[rows, j, :].copy(), lu[rows, r, :].copy()
        lu[rows, r, :] = top
        lu[rows, j, :] = other
        p = lu[:, j, j]
        zero = p == 0
        info = xp.where((info == 0) & zero, j + 1, info).astype(np.int32)
        col = lu[:, j + 1:, j] / xp.where(zero, 1, p)[:, None]
        lu[:, j + 1:, j] = col
        lu[:, j + 1:, j + 1:] -= col[:, :, None] * lu[:, j, None, j + 1:]
    return lu.reshape(a.shape), piv.reshape(batch + (k,)), info.reshape(batch)


def _lu_info(xp, a):
    return _host(xp, lu_loop(xp, a)[2])


def _cholesky_info(xp, a):
    """potrf's info for a batch: the order of the first leading minor that is not positive-definite (0: none),
    by the column-by-column factorization LAPACK's unblocked potf2 runs (zpotf2 for a complex one: the
    diagonal's real part, the row conjugated)."""
    flat, batch = _batched(a)
    nb, n, _ = flat.shape
    L = xp.zeros_like(flat)
    info = xp.zeros((nb,), dtype=np.int32)
    complex_ = a.dtype.kind == "c"
    for j in range(n):
        row = L[:, j, :j]
        if complex_:
            row = row.conj()
            d = flat[:, j, j].real - (row.real ** 2 + row.imag ** 2).sum(axis=1)
        else:
            d = flat[:, j, j] - (row * row).sum(axis=1)
        bad = ~(d > 0)                  # NaN too, as potrf's check
        info = xp.where((info == 0) & bad, j + 1, info).astype(np.int32)
        s = xp.sqrt(xp.where(bad, 1, d))
        L[:, j, j] = s
        L[:, j + 1:, j] = (flat[:, j + 1:, j] - xp.matmul(L[:, j + 1:, :j], row[..., None])[..., 0]) / s[:, None]
    return _host(xp, info.reshape(batch))


def _solve_or_none(xp, fn, *args, failed=None):
    """fn(*args) (a NumPy or CuPy linalg call), or None where it failed on a singular input: NumPy raises;
    CuPy (its default errstate, linalg='ignore') returns what cuSOLVER left: non-finite values from a zero
    pivot (`failed` tests the result otherwise)."""
    try:
        r = fn(*args)
    except np.linalg.LinAlgError:
        return None
    if xp is not np and bool(_host(xp, (failed or _nonfinite)(xp, r))):
        return None
    return r


def _nonfinite(xp, r):
    return ~xp.isfinite(r).all()


def _not_positive_diagonal(xp, L):
    """potrf's failure at column j leaves that diagonal entry as computed, not positive (or NaN), and the
    columns after it unfactored (finite): only the diagonal tells (real, for a complex L)."""
    d = xp.diagonal(L, 0, -2, -1)
    return ~((d.real if d.dtype.kind == "c" else d) > 0).all()


def _per_matrix(xp, fn, a, ok, fill_shape, dtype):
    """fn on the matrices of batch `a` whose `ok` is true, NaN for the others (torch's result of a failed
    factorization is unspecified)."""
    flat, batch = _batched(a)
    okf = np.asarray(ok).reshape(-1)
    out = xp.full((flat.shape[0],) + fill_shape, np.nan, dtype=dtype)
    if okf.any():
        idx = xp.asarray(np.flatnonzero(okf))
        out[idx] = fn(flat[idx])
    return out.reshape(batch + fill_shape)


# --- inv -------------------------------------------------------------------------------------------------

def _singular_message(i):
    return (f"The diagonal element {i} is zero, the inversion could not be completed because the input matrix "
            f"is singular.")


@op("linalg_inv_ex", save="o", nondiff_outputs=(1,), node_name="LinalgInvExBackward0")
def INV_EX(xp, a, check_errors=False):
    check_floating("linalg.inv", a)
    check_square("linalg.inv", a)
    info = xp.zeros(a.shape[:-2], dtype=np.int32)
    inv = _solve_or_none(xp, xp.linalg.inv, a)
    if inv is None:
        info_h = _lu_info(xp, a)
        if check_errors:
            _first_failure(info_h, "linalg.inv", _singular_message)
        inv = _per_matrix(xp, xp.linalg.inv, a, info_h == 0, a.shape[-2:], a.dtype)
        info = xp.asarray(info_h)
    return inv.astype(a.dtype, copy=False), info


@INV_EX.def_backward
def _(ctx, g, _ginfo=None):
    """gA = -A^{-T} g A^{-T} (torch's linalg_inv_ex derivative)."""
    inv = ctx.saved_output[0].mT
    return (-matmul(inv, matmul(g, inv)),)


# --- det, slogdet --------------------------------------------------------------------------------------------

@op("linalg_det", save="io", node_name="LinalgDetBackward0")
def DET(xp, a):
    check_floating("linalg.det", a)
    check_square("linalg.det", a)
    return xp.asarray(xp.linalg.det(a)).astype(a.dtype, copy=False)


@DET.def_backward
def _(ctx, g):
    """gA = g det(A) A^{-T} (invertible A; a singular one's gradient is the cofactor matrix, which this
    formula does not reach: it gives NaN there, where torch's goes through an SVD)."""
    a = ctx.saved_inputs[0]
    d = ctx.saved_output
    return ((g * d).unsqueeze(-1).unsqueeze(-1) * _inverse(a).mT,)


def _inverse(a):
    """A^{-1} for a backward formula: NaN where A is singular (no error: the forward succeeded)."""
    return dispatch(INV_EX, a)[0]


@_complex_formula
@op("linalg_slogdet", save="io", node_name="LinalgSlogdetBackward0")
def SLOGDET(xp, a):
    """(sign, logabsdet): sign of A's dtype (a unit complex number for a complex A), logabsdet real."""
    check_floating("linalg.slogdet", a)
    check_square("linalg.slogdet", a)
    s, l = xp.linalg.slogdet(a)
    return xp.asarray(s).astype(a.dtype, copy=False), xp.asarray(l).astype(_real_dtype(a.dtype), copy=False)


@SLOGDET.def_backward
def _(ctx, gsign, g):
    """torch's slogdet_backward: g_logabsdet A^{-T} (real A: the sign is locally constant); for a complex A,
    (g_logabsdet - i Im(conj(g_sign) sign)) A^{-H}."""
    a = ctx.saved_inputs[0]
    if a._data.dtype.kind != "c":
        if g is None:
            return (None,)
        return (g.unsqueeze(-1).unsqueeze(-1) * _inverse(a).mT,)
    if gsign is not None:
        phase = imag(gsign.conj() * ctx.saved_output[0]) * 1j
        g = -phase if g is None else g - phase
    if g is None:
        return (None,)
    return (g.unsqueeze(-1).unsqueeze(-1) * _inverse(a).mH,)


# --- solve ---------------------------------------------------------------------------------------------------

def _vector_case(a_shape, b_shape):
    """torch's linalg.solve rule: B is a (batch of) vector(s) when it is 1-D or A's shape without its last dim."""
    return len(b_shape) == 1 or (len(b_shape) == len(a_shape) - 1 and tuple(b_shape) == tuple(a_shape[:-1]))


def _solve_shapes(name, a, b, left):
    vec = _vector_case(a.shape, b.shape)
    bm = b[..., None] if vec else b
    n = a.shape[-1]
    ok = bm.shape[-2] == n if left else bm.shape[-1] == n
    if not ok:
        eq = "AX = B" if left else "XA = B"
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation {eq} ({a.shape[-2]}x"
                           f"{a.shape[-1]} and {bm.shape[-2]}x{bm.shape[-1]})")
    return vec, bm


def _broadcast_solve(xp, a, bm):
    batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
    return xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(bm, batch + bm.shape[-2:])


@op("linalg_solve_ex", save="io", nondiff_outputs=(1,), node_name="LinalgSolveExBackward0")
def SOLVE_EX(xp, a, b, left=True, check_errors=False):
    check_floating("linalg.solve", a)
    check_square("linalg.solve", a)
    vec, bm = _solve_shapes("linalg.solve", a, b, left)
    if not left:            # X A = B:  A^T X^T = B^T
        bm = xp.swapaxes(bm, -1, -2)
        a = xp.swapaxes(a, -1, -2)
    a2, b2 = _broadcast_solve(xp, a, bm)
    x = _solve_or_none(xp, xp.linalg.solve, a2, b2)
    info = xp.zeros(a2.shape[:-2], dtype=np.int32)
    if x is None:
        info_h = _lu_info(xp, a2)
        if check_errors:
            _first_failure(info_h, "torch.linalg.solve",
                           lambda i: "The solver failed because the input matrix is singular.")
        flat_b = b2.reshape((-1,) + b2.shape[-2:])
        okf = np.asarray(info_h).reshape(-1) == 0
        x = xp.full(flat_b.shape, np.nan, dtype=a.dtype)
        if okf.any():
            idx = xp.asarray(np.flatnonzero(okf))
            x[idx] = xp.linalg.solve(a2.reshape((-1,) + a2.shape[-2:])[idx], flat_b[idx])
        x = x.reshape(b2.shape)
        info = xp.asarray(info_h)
    if not left:
        x = xp.swapaxes(x, -1, -2)
    if vec:
        x = x[..., 0]
    return xp.ascontiguousarray(x).astype(a.dtype, copy=False), info


@SOLVE_EX.def_backward
def _(ctx, g, _ginfo=None):
    """torch's linalg_solve_backward: gB = A^{-T} g (left) or g A^{-T} (right); gA = -gB X^T or -X^T gB."""
    a, b = ctx.saved_inputs
    left = ctx.attrs.get("left", True)
    need = ctx.needs_input_grad
    vec = _vector_case(tuple(a.shape), tuple(b.shape))
    gb = solve(a.mT, g, left=left)
    ga = None
    if need[0]:
        x = ctx.saved_output[0]
        if vec:
            ga = -(gb.unsqueeze(-1) * x.unsqueeze(-2))
        else:
            ga = -matmul(gb, x.mT) if left else -matmul(x.mT, gb)
        ga = _sum_to(ga, tuple(a.shape))
    return ga, (_sum_to(gb, tuple(b.shape)) if need[1] else None)


def _sum_to(g, shape):
    return sum_to(g, shape) if tuple(g.shape) != tuple(shape) else g


# --- cholesky --------------------------------------------------------------------------------------------

def _not_pd_message(i):
    return (f"The factorization could not be completed because the input is not positive-definite (the leading "
            f"minor of order {i} is not positive-definite).")


@_complex_formula
@op("linalg_cholesky_ex", save="o", nondiff_outputs=(1,), node_name="LinalgCholeskyExBackward0")
def CHOLESKY_EX(xp, a, upper=False, check_errors=False):
    check_floating("linalg.cholesky", a)
    check_square("linalg.cholesky", a)
    a = xp.tril(a) if a.size else a     # the lower triangle is read, as potrf('L')
    mirror = xp.swapaxes(xp.tril(a, -1), -1, -2)
    if a.dtype.kind == "c":             # Hermitian: the conjugate mirrored, the diagonal's real part (zpotrf's)
        idx = xp.arange(a.shape[-1])
        a = a.copy()
        a[..., idx, idx] = a[..., idx, idx].real
        mirror = mirror.conj()
    a = a + mirror
    L = _solve_or_none(xp, xp.linalg.cholesky, a, failed=_not_positive_diagonal)
    info = xp.zeros(a.shape[:-2], dtype=np.int32)
    if L is None:
        info_h = _cholesky_info(xp, a)
        if check_errors:
            _first_failure(info_h, "linalg.cholesky", _not_pd_message)
        L = _per_matrix(xp, xp.linalg.cholesky, a, info_h == 0, a.shape[-2:], a.dtype)
        info = xp.asarray(info_h)
    L = L.astype(a.dtype, copy=False)
    return (xp.ascontiguousarray(_adj(xp, L)) if upper else L), info


@CHOLESKY_EX.def_backward
def _(ctx, g, _ginfo=None):
    """torch's cholesky_backward: gA = L^{-H} Φ L^{-1}, Φ = tril(L^H gL) with its lower part mirrored
    (conjugated)."""
    L = ctx.saved_output[0]
    if ctx.attrs.get("upper", False):
        L, g = _h(L), _h(g)
    ga = tril(matmul(_h(L), g))
    ga = 0.5 * (ga + _h(tril(ga, -1)))
    ga = solve_triangular(_h(L), ga, upper=True, left=True)
    return (solve_triangular(L, ga, upper=False, left=False),)


# --- qr --------------------------------------------------------------------------------------------------

@_complex_formula
@op("linalg_qr", save="o", node_name="LinalgQrBackward0")
def QR(xp, a, mode="reduced"):
    check_floating("linalg.qr", a)
    check_matrix("linalg.qr", a)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           f"or 'complete'")
    if mode == "r":
        r = xp.linalg.qr(a, mode="r")
        return xp.zeros((0,), dtype=a.dtype), r.astype(a.dtype, copy=False)
    q, r = xp.linalg.qr(a, mode=mode)
    return q.astype(a.dtype, copy=False), r.astype(a.dtype, copy=False)


@QR.def_backward
def _(ctx, gq, gr):
    """torch's linalg_qr_backward (a wide A through its square part; mode='complete' only where Q is square)."""
    mode = ctx.attrs.get("mode", "reduced")
    q, r = ctx.saved_output
    m, n = ctx.in_meta[0][0][-2:]
    if mode == "r":
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please "
                           "use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")
    if mode == "complete" and m > n:
        raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
    if m >= n:
        return (_qr_tall_backward(gq, gr, q, r),)
    # m < n: A = [X | Y] with X = Q R1, R2 = Q^H Y: Y's gradient is Q gR2, and R2's dependence on Q adds
    # Y gR2^H to gQ before X's (square) formula
    r1, r2 = r[..., :, :m], r[..., :, m:]
    gy = None
    if gr is not None:
        gr1, gr2 = gr[..., :, :m], gr[..., :, m:]
        gy = matmul(q, gr2)
        extra = matmul(matmul(q, r2), _h(gr2))
        gq = gq + extra if gq is not None else extra
    else:
        gr1 = None
    gx = _qr_tall_backward(gq, gr1, q, r1)
    if gy is None:
        gy = zeros(*r.shape[:-2], m, n - m, dtype=r.dtype, device=r.device)
    return (cat([gx, gy], -1),)


def _qr_tall_backward(gq, gr, q, r):
    """torch's linalg_qr_backward for m >= n: gA = [gQ + Q syminvadj(triu(gR R^H - Q^H gQ))] R^{-H}."""
    if gq is not None:
        ga = matmul(gr, _h(r)) - matmul(_h(q), gq) if gr is not None else -matmul(_h(q), gq)
    else:
        ga = matmul(gr, _h(r))
    t = triu(ga)        # syminvadj: t + t^H with its diagonal's real part counted once
    d = t.diagonal(0, -2, -1)
    ga = matmul(q, t + _h(t) - (real(d) if d._data.dtype.kind == "c" else d).diag_embed(0, -2, -1))
    if gq is not None:
        ga = ga + gq
    return solve_triangular(_h(r), ga, upper=False, left=False)


# --- svd -------------------------------------------------------------------------------------------------

@_complex_formula
@op("linalg_svd", save="o", node_name="LinalgSvdBackward0")
def SVD(xp, a, full_matrices=True, compute_uv=True):
    """(U, S, Vh); S real (of a complex A too)."""
    check_floating("linalg.svd", a)
    check_matrix("linalg.svd", a)
    sdt = _real_dtype(a.dtype)
    if not compute_uv:
        s = xp.linalg.svd(a, compute_uv=False)
        e = xp.zeros((0,), dtype=a.dtype)
        return e, s.astype(sdt, copy=False), e.copy()
    u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
    return u.astype(a.dtype, copy=False), s.astype(sdt, copy=False), vh.astype(a.dtype, copy=False)


@SVD.def_backward
def _(ctx, gu, gs, gvh):
    """torch's svd_backward: the gauge-fixed formula with E_jk = S_k² - S_j²; U and Vh of the reduced
    decomposition (full_matrices=True differentiates only where U and Vh are square, as torch's). For a
    complex A, adjoints for transposes, torch's check that the loss does not depend on the singular vectors'
    phases (Im diag(U^H gU) = -Im diag(V^H gV)) and its phase term diag(U^H gU - gU^H U) / 2S."""
    u, s, vh = ctx.saved_output
    m, n = ctx.in_meta[0][0][-2:]
    if not ctx.attrs.get("compute_uv", True):
        raise RuntimeError("linalg.svd: the derivative needs U and Vh: call it with compute_uv=True")
    if ctx.attrs.get("full_matrices", True) and m != n:
        k = min(m, n)
        u, vh = u[..., :, :k], vh[..., :k, :]
        gu = gu[..., :, :k] if gu is not None else None
        gvh = gvh[..., :k, :] if gvh is not None else None
    if gu is None and gvh is None:
        return (matmul(u * gs.unsqueeze(-2), vh) if gs is not None else None,)
    complex_ = u._data.dtype.kind == "c"
    v = _h(vh)
    gv = _h(gvh) if gvh is not None else None
    s2 = s * s
    e = s2.unsqueeze(-2) - s2.unsqueeze(-1)
    k = s.shape[-1]
    e = e + eye(k, dtype=s.dtype, device=s.device)          # (its diagonal is 0: 1 there)
    if gu is not None:
        uhgu = matmul(_h(u), gu)
        uhgu = uhgu - _h(uhgu)
    if gv is not None:
        vhgv = matmul(vh, gv)
        vhgv = vhgv - _h(vhgv)
    if complex_:
        _check_phase_invariant(uhgu if gu is not None else None, vhgv if gv is not None else None)
    if gu is not None and gv is not None:
        ga = (uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) / e
    elif gu is not None:
        ga = (uhgu / e) * s.unsqueeze(-2)
    else:
        ga = s.unsqueeze(-1) * (vhgv / e)
    if gs is not None:
        ga = ga + gs.diag_embed(0, -2, -1)
    if complex_ and gu is not None and gv is not None:
        ga = ga + (uhgu.diagonal(0, -2, -1) / (2 * s)).diag_embed(0, -2, -1)
    if m > n and gu is not None:
        ga = matmul(u, ga)
        gus = gu / s.unsqueeze(-2)
        ga = ga + gus - matmul(u, matmul(_h(u), gus))
        ga = matmul(ga, vh)
    elif m < n and gv is not None:
        ga = matmul(ga, vh)
        gvs = gv / s.unsqueeze(-2)
        ga = ga + _h(gvs) - matmul(matmul(_h(gvs), v), vh)
        ga = matmul(u, ga)
    else:
        ga = matmul(u, matmul(ga, vh)) if m >= n else matmul(matmul(u, ga), vh)
    return (ga,)


def _check_phase_invariant(uhgu, vhgv):
    """torch's svd_backward check (complex A): the loss must not depend on the phases of the singular vectors,
    Im diag(skew(U^H gU)) = -Im diag(skew(V^H gV)) within 1e-2 (a synchronisation on CuPy)."""
    parts = [imag(x.diagonal(0, -2, -1))._data for x in (uhgu, vhgv) if x is not None]
    total = parts[0] + parts[1] if len(parts) == 2 else parts[0]
    if not _host_allclose_zero(total):
        raise RuntimeError("svd_backward: The singular vectors in the complex case are specified up to "
                           "multiplication by e^{i phi}. The specified loss function depends on this phase term, "
                           "making it ill-defined.")


def _host_allclose_zero(d):
    """allclose(d, 0, rtol=1e-2, atol=1e-2), as torch's gauge checks: one flag read on the host."""
    xp = xp_of(d)
    return bool(_host(xp, (xp.abs(d) <= 1e-2).all()))


# --- eigh ------------------------------------------------------------------------------------------------

@_complex_formula
@op("linalg_eigh", save="o", node_name="LinalgEighBackward0")
def EIGH(xp, a, UPLO="L", compute_v=True):
    """(eigenvalues, eigenvectors) of a symmetric (Hermitian) A from its UPLO triangle; the eigenvalues real."""
    name = "linalg.eigh" if compute_v else "linalg.eigvalsh"
    check_floating(name, a)
    check_square(name, a)
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    wdt = _real_dtype(a.dtype)
    if not compute_v:
        return xp.linalg.eigvalsh(a, UPLO=UPLO).astype(wdt, copy=False), xp.zeros((0,), dtype=a.dtype)
    w, v = xp.linalg.eigh(a, UPLO=UPLO)
    return w.astype(wdt, copy=False), v.astype(a.dtype, copy=False)


@EIGH.def_backward
def _(ctx, gl, gv):
    """torch's linalg_eig_backward, hermitian case: gA = V (diag(gL) + skew(V^H gV)/2 / E) V^H,
    E_jk = L_k - L_j (1 on the diagonal). For a complex A, torch's check that the loss does not depend on the
    eigenvectors' phases (Im diag(V^H gV) = 0), and gL replaces the diagonal (i Im diag(V^H gV) otherwise)."""
    lam, v = ctx.saved_output
    if not ctx.attrs.get("compute_v", True):
        raise RuntimeError("linalg.eigvalsh: the derivative needs the eigenvectors: call it with compute_v=True")
    if gv is None:
        return (matmul(v * gl.unsqueeze(-2), _h(v)),)
    vhgv = matmul(_h(v), gv)
    complex_ = vhgv._data.dtype.kind == "c"
    if complex_ and not _host_allclose_zero(imag(vhgv.diagonal(0, -2, -1))._data):
        raise RuntimeError("linalg_eigh_backward: The eigenvectors in the complex case are specified up to "
                           "multiplication by e^{i phi}. The specified loss function depends on this quantity, so "
                           "it is ill-defined.")
    vhgv = 0.5 * (vhgv - _h(vhgv))
    k = lam.shape[-1]
    e = lam.unsqueeze(-2) - lam.unsqueeze(-1) + eye(k, dtype=lam.dtype, device=lam.device)
    ga = vhgv / e
    if gl is not None:
        if complex_:
            ga = ga - ga.diagonal(0, -2, -1).diag_embed(0, -2, -1)
        ga = ga + gl.diag_embed(0, -2, -1)
    return (matmul(v, matmul(ga, _h(v))),)


# --- eig -------------------------------------------------------------------------------------------------

eig_rt = return_type("linalg_eig", ["eigenvalues", "eigenvectors"])


@_complex_formula
@op("linalg_eig", save="o", node_name="LinalgEigBackward0")
def EIG(xp, a, compute_v=True):
    """The eigenvalues and (unit-norm) eigenvectors of a general A, complex for a real A too (complex64 of
    float32): LAPACK's geev through NumPy, on the host for a CuPy array as torch's CUDA eig runs it (CuPy 13 has
    no eig). A real A's conjugate pairs come as geev gives them."""
    name = "linalg.eig" if compute_v else "linalg.eigvals"
    if a.dtype.kind not in "fc":
        raise RuntimeError(f"Unknown Complex ScalarType for {D.scalar_name(a.dtype)}")
    check_matrix(name, a)
    check_square(name, a)
    if a.dtype.itemsize < 4:
        raise NotImplementedError(f"\"linalg_eig_out_{'cpu' if xp is np else 'cuda'}\" not implemented for "
                                  f"'{D.scalar_name(a.dtype)}'")
    if xp is np:
        h = a
    else:                   # (the matrices copied to the host, as torch's CUDA eig does: a synchronisation)
        _sync.note(a, "linalg.eig on the host")
        h = a.get()
    cdt = np.promote_types(a.dtype, np.complex64)
    if compute_v and not np.isfinite(h).all():
        raise RuntimeError("torch.linalg.eig: input tensor should not contain infs or NaNs.")
    if not compute_v:
        w = np.linalg.eigvals(h) if h.size else np.zeros(h.shape[:-1], cdt)
        return xp.asarray(w.astype(cdt, copy=False)), xp.zeros((0,), dtype=cdt)
    if h.size:
        w, v = np.linalg.eig(h)
    else:
        w, v = np.zeros(h.shape[:-1], cdt), np.zeros(h.shape, cdt)
    return xp.asarray(w.astype(cdt, copy=False)), xp.asarray(v.astype(cdt, copy=False))


@EIG.def_backward
def _(ctx, gl, gv):
    """torch's linalg_eig_backward: gA = V^{-H} (diag(gL) + (V^H gV - V^H V diag(Re(V^H gV))) / conj(E)) V^H,
    E_jk = L_k - L_j (1 on the diagonal), after torch's check that the loss does not depend on the eigenvectors'
    phases (Im diag(V^H gV) = 0). A real A's gradient is its real part (the engine's)."""
    lam, v = ctx.saved_output
    if not ctx.attrs.get("compute_v", True):
        raise RuntimeError("linalg.eigvals: the derivative needs the eigenvectors: call it with compute_v=True")
    vh = v.mH
    if gv is None:
        return (solve(vh, gl.unsqueeze(-1) * vh),)
    vhgv = matmul(vh, gv)
    d = vhgv.diagonal(0, -2, -1)
    if not _host_allclose_zero(imag(d)._data):
        raise RuntimeError("linalg_eig_backward: The eigenvectors in the complex case are specified up to "
                           "multiplication by e^{i phi}. The specified loss function depends on this quantity, so "
                           "it is ill-defined.")
    vhgv = vhgv - matmul(vh, v * real(d).unsqueeze(-2))
    lc = lam.conj()
    k = lam.shape[-1]
    e = lc.unsqueeze(-2) - lc.unsqueeze(-1) + eye(k, dtype=lam.dtype, device=lam.device)
    ga = vhgv / e
    if gl is not None:          # gL replaces the diagonal
        ga = ga - ga.diagonal(0, -2, -1).diag_embed(0, -2, -1) + gl.diag_embed(0, -2, -1)
    return (solve(vh, matmul(ga, vh)),)


@with_out
def eig(A, *, out=None):
    """torch.linalg.eig: (eigenvalues, eigenvectors), complex."""
    return eig_rt(*dispatch(EIG, A))


@with_out
def eigvals(A, *, out=None):
    """torch.linalg.eigvals: eig's eigenvalues (the eigenvectors computed only when a gradient will need them)."""
    need_v = bool(A.requires_grad and STATE.grad_enabled)
    with record_range("linalg_eigvals", "op", (A,)):
        return dispatch(EIG, A, compute_v=need_v)[0]


# --- LU -------------------------------------------------------------------------------------------------

@op("linalg_lu_factor_ex", save="o", nondiff_outputs=(1, 2), node_name="LinalgLuFactorExBackward0")
def LU_FACTOR_EX(xp, a, pivot=True, check_errors=False):
    check_floating("linalg.lu_factor", a)
    check_matrix("linalg.lu_factor", a)
    if not pivot and xp is np:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    lu, piv, info = lu_loop(xp, a)
    if check_errors:
        _first_failure(_host(xp, info), "torch.linalg.lu_factor",
                       lambda i: f"U[{i},{i}] is zero and using it on lu_solve would result in a division by zero. "
                                 f"If you still want to perform the factorization, consider calling "
                                 f"linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return lu, piv, info


@LU_FACTOR_EX.def_backward
def _(ctx, g, _gp=None, _gi=None):
    """torch's lu_factor_ex_backward (linalg_lu_backward with gL = tril(g, -1), gU = triu(g) of the packed
    gradient): square, wide (m < n) and tall (m > n) A."""
    lu, piv, _ = ctx.saved_output
    m, n = lu.shape[-2:]
    k = min(m, n)
    p, L, U = lu_unpack(lu, piv)
    gl, gu = tril(g, -1)[..., :, :k], triu(g)[..., :k, :]
    if m == n:          # gA = P L^{-T} [tril(L^T gL, -1) + triu(gU U^T)] U^{-T}
        phi = tril(matmul(L.mT, gl), -1) + triu(matmul(gu, U.mT))
        ga = solve_triangular(L.mT, phi, upper=True, left=True, unitriangular=True)
        return (matmul(p, solve_triangular(U.mT, ga, upper=False, left=False)),)
    if m < n:           # A = P L [U1 | U2]
        u1 = U[..., :, :k]
        ga = solve_triangular(u1.mT, tril(matmul(L.mT, gl) - matmul(gu, U.mT), -1), upper=False, left=False)
        ga = cat([ga + triu(gu[..., :, :k]), gu[..., :, k:]], -1)
        return (matmul(p, solve_triangular(L.mT, ga, upper=True, left=True, unitriangular=True)),)
    l1 = L[..., :k, :]  # m > n: A = P [L1; L2] U
    ga = solve_triangular(l1.mT, triu(matmul(gu, U.mT) - matmul(L.mT, gl)), upper=True, left=True,
                          unitriangular=True)
    ga = cat([ga + tril(gl[..., :k, :], -1), gl[..., k:, :]], -2)
    return (matmul(p, solve_triangular(U.mT, ga, upper=False, left=False)),)


@op("lu_unpack_permutation")
def LU_PERMUTATION(xp, lu, pivots):
    """P of torch.lu_unpack (A = P L U) from LAPACK's pivots: the row swaps applied in order to the identity
    permutation, P[perm[i], i] = 1. A constant of LU's dtype (no gradient)."""
    m = lu.shape[-2]
    piv = pivots.reshape((-1, pivots.shape[-1])).astype(np.int64) - 1
    nb, k = piv.shape
    perm = xp.broadcast_to(xp.arange(m), (nb, m)).copy()
    rows = xp.arange(nb)
    for i in range(k):
        j = piv[:, i]
        a, b = perm[rows, i].copy(), perm[rows, j].copy()
        perm[rows, i] = b
        perm[rows, j] = a
    p = xp.zeros((nb, m, m), dtype=lu.dtype)
    p[rows[:, None], perm, xp.arange(m)[None, :]] = 1
    return p.reshape(pivots.shape[:-1] + (m, m))


@public
@with_out
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):
    """torch.lu_unpack: (P, L, U) of a packed LU (unit-lower L, upper U; m x k and k x n)."""
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    with record_range("lu_unpack", "op", (LU_data, LU_pivots)):
        if unpack_data:
            L = tril(LU_data, -1)[..., :, :k] + eye(m, k, dtype=LU_data.dtype, device=LU_data.device)
            U = triu(LU_data)[..., :k, :]
        else:
            L = U = zeros(0, dtype=LU_data.dtype, device=LU_data.device)
        P = dispatch(LU_PERMUTATION, LU_data, LU_pivots) if unpack_pivots else \
            zeros(0, dtype=LU_data.dtype, device=LU_data.device)
    return lu_unpack_rt(P, L, U)


# --- triangular solve ------------------------------------------------------------------------------------

def _tri_substitute(xp, t, b, upper):
    """X = T^{-1} B by substitution (T triangular with its diagonal as given, zeros giving inf/NaN as torch's
    trsm): for the matrices that a factorization-based solve refuses."""
    n = t.shape[-1]
    x = xp.zeros(b.shape, dtype=b.dtype)
    order = range(n - 1, -1, -1) if upper else range(n)
    for i in order:
        s = b[..., i, :] - (xp.matmul(t[..., i:i + 1, :], x))[..., 0, :]
        x[..., i, :] = s / t[..., i, i][..., None]
    return x


@op("linalg_solve_triangular", save="io", node_name="LinalgSolveTriangularBackward0")
def SOLVE_TRIANGULAR(xp, a, b, upper=False, left=True, unitriangular=False):
    check_floating("linalg.solve_triangular", a)
    check_square("linalg.solve_triangular", a)
    if a.dtype != b.dtype:
        raise RuntimeError(f"linalg.solve_triangular: Expected A and B to have the same dtype, but found A of type "
                           f"{D.scalar_name(a.dtype)} and B of type {D.scalar_name(b.dtype)} instead")
    if b.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 dimensions.")
    n = a.shape[-1]
    if (b.shape[-2] if left else b.shape[-1]) != n:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({a.shape[-2]}x{a.shape[-1]} and {b.shape[-2]}x"
                           f"{b.shape[-1]})")
    t = xp.triu(a) if upper else xp.tril(a)
    if unitriangular:
        t = t.copy()
        idx = xp.arange(n)
        t[..., idx, idx] = 1
    if not left:            # X T = B: T^T X^T = B^T
        t, b, upper = xp.swapaxes(t, -1, -2), xp.swapaxes(b, -1, -2), not upper
    t2, b2 = _broadcast_solve(xp, t, b)
    x = None if not n else _solve_or_none(xp, xp.linalg.solve, t2, b2)
    if x is None:
        x = _tri_substitute(xp, t2, b2, upper) if n else xp.zeros(b2.shape, dtype=b.dtype)
    if not left:
        x = xp.swapaxes(x, -1, -2)
    return xp.ascontiguousarray(x).astype(a.dtype, copy=False)


@SOLVE_TRIANGULAR.def_backward
def _(ctx, g):
    """torch's linalg_solve_triangular_backward: gB = A^{-T} g (left) or g A^{-T}; gA = -gB X^T or -X^T gB,
    restricted to A's triangle (without the diagonal when unitriangular)."""
    a, b = ctx.saved_inputs
    x = ctx.saved_output
    at = ctx.attrs
    upper, left, unit = at.get("upper", False), at.get("left", True), at.get("unitriangular", False)
    need = ctx.needs_input_grad
    gb = solve_triangular(a.mT, g, upper=not upper, left=left, unitriangular=unit)
    ga = None
    if need[0]:
        ga = -matmul(gb, x.mT) if left else -matmul(x.mT, gb)
        ga = triu(ga, 1 if unit else 0) if upper else tril(ga, -1 if unit else 0)
        ga = _sum_to(ga, tuple(a.shape))
    return ga, (_sum_to(gb, tuple(b.shape)) if need[1] else None)


# --- matrix_exp ---------------------------------------------------------------------------------------------

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _expm(xp, a):
    """exp(A) by scaling and squaring with the [13/13] Padé approximant (Higham 2005, scipy's expm at its
    highest degree): each matrix scaled by 2^-s (its 1-norm below θ13), squared back s times; in float64
    (complex128 for a complex A)."""
    flat, batch = _batched(a)
    n = flat.shape[-1]
    if n == 0 or flat.shape[0] == 0:
        return a.copy()
    work = flat.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
    norm1 = xp.abs(work).sum(axis=-2).max(axis=-1)
    s = xp.maximum(0, xp.ceil(xp.log2(xp.maximum(norm1, 1e-300) / _THETA13))).astype(np.int64)
    s_h = _host(xp, s)
    work = work / (2.0 ** s.astype(np.float64))[:, None, None]
    b = _PADE13
    ident = xp.eye(n, dtype=work.dtype)
    a2 = xp.matmul(work, work)
    a4 = xp.matmul(a2, a2)
    a6 = xp.matmul(a4, a2)
    u = xp.matmul(work, xp.matmul(a6, b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
                  + b[1] * ident)
    v = xp.matmul(a6, b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * ident
    r = xp.linalg.solve(v - u, v + u)
    for step in range(int(np.max(s_h))):
        r = xp.where((s > step)[:, None, None], xp.matmul(r, r), r)
    return r.astype(a.dtype).reshape(a.shape)


@op("linalg_matrix_exp", save="i", node_name="LinalgMatrixExpBackward0")
def MATRIX_EXP(xp, a):
    check_floating("linalg.matrix_exp", a, low_precision=False)
    check_square("linalg.matrix_exp", a)
    return _expm(xp, a)


@MATRIX_EXP.def_backward
def _(ctx, g):
    """torch's differential_analytic_matrix_function: the Fréchet derivative of exp at A^T applied to g, the
    upper right block of exp([[A^T, g], [0, A^T]])."""
    a = ctx.saved_inputs[0]
    n = a.shape[-1]
    at = a.mT
    top = cat([at, g], -1)
    bottom = cat([zeros(*a.shape, dtype=a.dtype, device=a.device), at], -1)
    big = dispatch(MATRIX_EXP, cat([top, bottom], -2))
    return (big[..., :n, n:],)


# --- pinv ----------------------------------------------------------------------------------------------------

@_complex_formula
@op("linalg_pinv", save="io", node_name="LinalgPinvBackward0")
def PINV(xp, a, atol=None, rtol=None, hermitian=False):
    """The pseudo-inverse by the SVD (eigh when hermitian), the singular values (|eigenvalues|) at or below
    max(atol, rtol σ_max) dropped; rtol defaults to eps max(m, n) when atol is not given (or 0), else 0."""
    if a.dtype.kind not in "fc" or a.ndim < 2:
        raise RuntimeError(f"linalg.pinv({D.scalar_name(a.dtype)}{{{list(a.shape)}}}): expected a tensor with 2 or "
                           f"more dimensions of float, double, cfloat or cdouble types")
    m, n = a.shape[-2:]
    if a.size == 0:
        return xp.zeros(a.shape[:-2] + (n, m), dtype=a.dtype)
    if rtol is None:
        rtol = float(np.finfo(a.dtype).eps) * max(m, n) if atol is None or atol <= 0 else 0.0
    atol = 0.0 if atol is None else atol
    if hermitian:
        w, v = xp.linalg.eigh(a)
        aw = xp.abs(w)
        tol = xp.maximum(atol, rtol * aw.max(axis=-1, keepdims=True))
        winv = xp.where(aw > tol, 1 / xp.where(aw > tol, w, 1), 0)
        return xp.matmul(v * winv[..., None, :], _adj(xp, v)).astype(a.dtype, copy=False)
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    tol = xp.maximum(atol, rtol * s[..., :1])
    sinv = xp.where(s > tol, 1 / xp.where(s > tol, s, 1), 0)
    return xp.matmul(_adj(xp, vh) * sinv[..., None, :], _adj(xp, u)).astype(a.dtype, copy=False)


def _adj(xp, a):
    """The conjugate transpose of a batch of matrices (the transpose of real ones)."""
    t = xp.swapaxes(a, -1, -2)
    return t.conj() if a.dtype.kind == "c" else t


@PINV.def_backward
def _(ctx, g):
    """torch's pinv_backward: the derivative of A⁺ for a constant rank, in the smaller of its two forms
    (adjoints where the real formula has transposes)."""
    a = ctx.saved_inputs[0]
    p = ctx.saved_output
    m, n = a.shape[-2:]
    ph, gh = _h(p), _h(g)
    if m <= n:
        k = matmul(gh, p)
        kph = matmul(k, ph)
        return (-_h(matmul(p, k)) + kph - matmul(matmul(a, p), kph) + matmul(matmul(ph, p), gh - matmul(k, a)),)
    k = matmul(p, gh)
    phk = matmul(ph, k)
    return (-_h(matmul(k, p)) + matmul(matmul(gh - matmul(a, k), p), ph) + phk - matmul(matmul(phk, p), a),)


def _tol(x, name):
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise NotImplementedError(f"linalg.pinv: tensorlib takes a number (or a one-element tensor) as {name}")
        return float(x.item())
    return None if x is None else float(x)


@with_out
def pinv(A, rcond=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """torch.linalg.pinv (rcond: the deprecated name of rtol)."""
    if rcond is not None:
        rtol = rcond
    return dispatch(PINV, A, atol=_tol(atol, "atol"), rtol=_tol(rtol, "rtol"), hermitian=bool(hermitian))


@public(name="pinverse", method=True)
@torch_op("pinverse")
def torch_pinverse(input, rcond=1e-15):
    """torch.pinverse (linalg.pinv with rtol=rcond)."""
    return pinv(input, rcond)


# --- the functions (tensorlib.linalg's primitives) -----------------------------------------------------

@with_out
def inv_ex(A, *, check_errors=False, out=None):
    return inv_ex_rt(*dispatch(INV_EX, A, check_errors=check_errors))


@with_out
def inv(A, *, out=None):
    """torch.linalg.inv: linalg_inv_ex with its errors checked (torch's composite, one LinalgInvExBackward0)."""
    with record_range("linalg_inv", "op", (A,)):
        return dispatch(INV_EX, A, check_errors=True)[0]


@with_out
def det(A, *, out=None):
    return dispatch(DET, A)


@with_out
def slogdet(A, *, out=None):
    return slogdet_rt(*dispatch(SLOGDET, A))


@with_out
def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    return solve_ex_rt(*dispatch(SOLVE_EX, A, B, left=left, check_errors=check_errors))


@with_out
def solve(A, B, *, left=True, out=None):
    """torch.linalg.solve: linalg_solve_ex with its errors checked."""
    with record_range("linalg_solve", "op", (A, B)):
        return dispatch(SOLVE_EX, A, B, left=left, check_errors=True)[0]


@with_out
def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    return cholesky_ex_rt(*dispatch(CHOLESKY_EX, A, upper=upper, check_errors=check_errors))


@with_out
def cholesky(A, *, upper=False, out=None):
    with record_range("linalg_cholesky", "op", (A,)):
        return dispatch(CHOLESKY_EX, A, upper=upper, check_errors=True)[0]


@with_out
def qr(A, mode="reduced", *, out=None):
    return qr_rt(*dispatch(QR, A, mode=mode))


def _check_driver(A, driver):
    """torch's driver= picks cuSOLVER's gesvd/gesvdj/gesvda and is refused on the CPU (torch's message). CuPy's
    linalg.svd, tensorlib's CUDA path, has no such choice (one routine per input shape), so on CUDA a driver
    is refused too rather than accepted and ignored."""
    if driver is None:
        return
    if xp_of(A._data) is np:
        raise RuntimeError("torch.linalg.svd: keyword argument `driver=` is only supported on CUDA inputs with "
                           "cuSOLVER backend.")
    raise RuntimeError(f"torch.linalg.svd: keyword argument `driver=` ({driver!r}) is not supported by "
                       "tensorlib's CUDA backend: CuPy's linalg.svd chooses its cuSOLVER routine itself; pass "
                       "driver=None.")


@with_out
def svd(A, full_matrices=True, *, driver=None, out=None):
    _check_driver(A, driver)
    return svd_rt(*dispatch(SVD, A, full_matrices=full_matrices))


@with_out
def svdvals(A, *, driver=None, out=None):
    """torch.linalg.svdvals: S of an SVD that computes U and Vh only when a gradient will need them."""
    _check_driver(A, driver)
    need_uv = bool(A.requires_grad and STATE.grad_enabled)
    with record_range("linalg_svdvals", "op", (A,)):
        return dispatch(SVD, A, full_matrices=False, compute_uv=need_uv)[1]


@with_out
def eigh(A, UPLO="L", *, out=None):
    return eigh_rt(*dispatch(EIGH, A, UPLO=UPLO))


@with_out
def eigvalsh(A, UPLO="L", *, out=None):
    need_v = bool(A.requires_grad and STATE.grad_enabled)
    with record_range("linalg_eigvalsh", "op", (A,)):
        return dispatch(EIGH, A, UPLO=UPLO, compute_v=need_v)[0]


@with_out
def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    return lu_factor_ex_rt(*dispatch(LU_FACTOR_EX, A, pivot=pivot, check_errors=check_errors))


@with_out
def lu_factor(A, *, pivot=True, out=None):
    with record_range("linalg_lu_factor", "op", (A,)):
        lu, piv, _ = dispatch(LU_FACTOR_EX, A, pivot=pivot, check_errors=True)
    return lu_factor_rt(lu, piv)


@with_out
def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    return dispatch(SOLVE_TRIANGULAR, A, B, upper=upper, left=left, unitriangular=unitriangular)


def matrix_exp(A):
    return dispatch(MATRIX_EXP, A)


# --- torch-level aliases and Tensor methods ---------------------------------------------------------------

@public(name="det", method=True)
@torch_op("det")
def torch_det(input):
    """torch.det (linalg.det)."""
    return det(input)


@public(name="inverse", method=True)
@with_out
@torch_op("inverse")
def torch_inverse(input, *, out=None):
    """torch.inverse (linalg.inv)."""
    return inv(input)


@public(name="matrix_exp", method=True)
@torch_op("matrix_exp")
def torch_matrix_exp(input):
    """torch.matrix_exp (linalg.matrix_exp)."""
    return matrix_exp(input)


@public(method=True)
def logdet(input):
    """torch.logdet: log det(A), NaN where det(A) < 0 (slogdet's sign -1); of a complex A, log(sign) +
    logabsdet (torch's)."""
    with record_range("logdet", "op", (input,)):
        sign, logabs = dispatch(SLOGDET, input)
        if sign._data.dtype.kind == "c":
            return sign.log() + logabs
        return where(sign < 0, float("nan"), logabs)


@public(name="slogdet", method=True)
@with_out
@torch_op("slogdet")
def torch_slogdet(input, *, out=None):
    """torch.slogdet: (sign, logabsdet) as torch.return_types.slogdet."""
    return torch_slogdet_rt(*dispatch(SLOGDET, input))


@with_out
@torch_op("cholesky")
def _torch_cholesky(input, upper=False, *, out=None):
    """torch.cholesky (deprecated form of linalg.cholesky, with its warning)."""
    warnings.warn("torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed in a future "
                  "PyTorch release.\nL = torch.cholesky(A)\nshould be replaced with\nL = torch.linalg.cholesky(A)\n"
                  "and\nU = torch.cholesky(A, upper=True)\nshould be replaced with\nU = torch.linalg.cholesky(A)"
                  ".mH\nThis transform will produce equivalent results for all valid (symmetric positive definite) "
                  "inputs.", UserWarning, stacklevel=2)
    return cholesky(input, upper=upper)


public(_torch_cholesky, name="cholesky", method=True)


@public(method=True)
@with_out
def cholesky_solve(input, input2, upper=False, *, out=None):
    """torch.cholesky_solve(B, L): X = (L L^H)^{-1} B by two triangular solves."""
    with record_range("cholesky_solve", "op", (input, input2)):
        L = _h(input2) if upper else input2
        y = solve_triangular(L, input, upper=False)
        return solve_triangular(_h(L), y, upper=True)


@public(method=True)
@with_out
def cholesky_inverse(input, upper=False, *, out=None):
    """torch.cholesky_inverse(L): (L L^H)^{-1}."""
    n = input.shape[-1]
    with record_range("cholesky_inverse", "op", (input,)):
        ident = eye(n, dtype=input.dtype, device=input.device).expand(*input.shape)
        return cholesky_solve(ident, input, upper)


# --- geqrf: LAPACK's raw QR (Householder reflectors below R's diagonal, and their scales) -------------------

geqrf_rt = return_type("geqrf", ["a", "tau"])


@op("geqrf", nondiff_outputs=(1,), node_name="GeqrfBackward0")
def GEQRF(xp, a):
    """(a, tau) as LAPACK's geqrf leaves them: NumPy's and CuPy's qr(mode="raw") give the reflectors in
    Fortran order, the transpose of torch's row-major `a`."""
    if a.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    if a.dtype.kind not in "fc" or a.dtype.itemsize < 4:
        raise NotImplementedError(f"\"geqrf_{'cpu' if xp is np else 'cuda'}\" not implemented for "
                                  f"'{D.scalar_name(a.dtype)}'")
    h, tau = xp.linalg.qr(a, mode="raw")
    return xp.ascontiguousarray(xp.swapaxes(h, -1, -2)).astype(a.dtype, copy=False), tau.astype(a.dtype, copy=False)


@GEQRF.def_backward
def _(ctx, ga, gtau):
    raise NotImplementedError("the derivative for 'geqrf' is not implemented.")


@public(method=True, name="geqrf")
@with_out
def torch_geqrf(input, *, out=None):
    """torch.geqrf: the raw QR factorisation (with linalg.householder_product, Q; R is a.triu())."""
    return geqrf_rt(*dispatch(GEQRF, input))


@public(method=True, name="qr")
@with_out
@torch_op("qr")
def torch_qr(input, some=True, *, out=None):
    """torch.qr (some=True: the reduced Q and R)."""
    return torch_qr_rt(*dispatch(QR, input, mode="reduced" if some else "complete"))


@public(method=True, name="svd")
@with_out
def torch_svd(input, some=True, compute_uv=True, *, out=None):
    """torch.svd: (U, S, V) with V, not Vh; compute_uv=False gives zero U and V of their full shapes."""
    with record_range("svd", "op", (input,)):
        if not compute_uv:
            s = svdvals(input)
            m, n = input.shape[-2:]
            batch = tuple(input.shape[:-2])
            z = dict(dtype=input.dtype, device=input.device)
            return torch_svd_rt(zeros(*batch, m, m, **z), s, zeros(*batch, n, n, **z))
        u, s, vh = dispatch(SVD, input, full_matrices=not some)
        return torch_svd_rt(u, s, _h(vh))


@public(method=True)
@with_out
def triangular_solve(input, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """torch.triangular_solve(b, A): (A^{-1} b or A^{-T} b, a copy of A)."""
    with record_range("triangular_solve", "op", (input, A)):
        a = A.mT if transpose else A
        x = solve_triangular(a, input, upper=upper != transpose, unitriangular=unitriangular)
        return triangular_solve_rt(x, A.clone())


@public(method=True, name="lu_solve")
@with_out
def torch_lu_solve(input, LU_data, LU_pivots, *, out=None):
    """torch.lu_solve(b, LU, pivots) (deprecated form of linalg.lu_solve)."""
    return lu_solve(LU_data, LU_pivots, input)


@with_out
def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
    """torch.linalg.lu_solve: A = P L U from lu_factor; X by two triangular solves and the permutation."""
    with record_range("linalg_lu_solve", "op", (LU, pivots, B)):
        P, L, U = lu_unpack(LU, pivots)
        if left and not adjoint:             # X = U^{-1} L^{-1} P^T B
            y = solve_triangular(L, matmul(P.mT, B), upper=False, unitriangular=True)
            return solve_triangular(U, y, upper=True)
        if left:                             # A^H X = B: X = P L^{-H} U^{-H} B
            y = solve_triangular(_h(U), B, upper=False)
            return matmul(P, solve_triangular(_h(L), y, upper=True, unitriangular=True))
        if not adjoint:                      # X A = B: X = B U^{-1} L^{-1} P^T
            y = solve_triangular(U, B, upper=True, left=False)
            return matmul(solve_triangular(L, y, upper=False, left=False, unitriangular=True), P.mT)
        y = matmul(B, P)                     # X A^H = B: X = B P L^{-H} U^{-H}
        y = solve_triangular(_h(L), y, upper=True, left=False, unitriangular=True)
        return solve_triangular(_h(U), y, upper=False, left=False)


def _adjoint(name):
    def f(self):
        """torch's mH / adjoint(): the conjugate transpose of a matrix or a batch of them."""
        if self.ndim < 2:
            raise RuntimeError(f"tensor.{name} is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return transpose(self, -2, -1).conj()
    return f


public(_adjoint("mH"), name="mH", function=False, method=True, prop=True)
public(torch_op("adjoint")(_adjoint("adjoint()")), name="adjoint", method=True)

__all__ = ["LinAlgError", "Tensor"]
