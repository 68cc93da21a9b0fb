"""torch.linalg: the factorizations and solves (tensorlib/ops/factorize.py's ops, with torch's node names and
backward formulas) and the functions torch composes from them and from the other dispatched ops (norms, pinv,
lstsq, matrix_rank, cond, lu, lu_solve, multi_dot, ...), each inside its torch-named profiler region.

Loaded on first use (`tensorlib.linalg`, as an attribute or imported), so `import tensorlib` pays nothing for
it; the ops themselves are registered with the others. Every function takes complex matrices as torch's does
(adjoints where a real formula has transposes: lstsq, vecdot, householder_product); eig and eigvals give
complex results for real inputs too."""
from __future__ import annotations

import math

import numpy as np

from . import _dtype as D
from .autograd import no_grad
from .dispatch import dispatch, record_range
from .ops._define import torch_op, write_out
from .ops.arithmetic import maximum
from .ops.broadcast import norm_dims
from .ops.comparison import where
from .ops.creation import eye, ones, zeros
from .ops.shape import cat
from .ops import factorize as _F
from .ops.factorize import (LinAlgError, cholesky, cholesky_ex, det, eig, eigh, eigvals, eigvalsh,  # noqa: F401
                            inv, inv_ex, lu_factor, lu_factor_ex, lu_solve, matrix_exp, qr, slogdet, solve, solve_ex,
                            solve_triangular, svd, svdvals, pinv, check_floating, check_matrix, check_square)
from .ops.linalg import CROSS, matmul as _matmul
from .ops.more_ops import _multi_dot
from .ops.reduce import NORM, norm_dtype, return_type

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals",
           "eigvalsh", "householder_product", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex",
           "lu_solve", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm",
           "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv",
           "tensorsolve", "vander", "vecdot", "vector_norm"]

lstsq_rt = return_type("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
lu_rt = return_type("linalg_lu", ["P", "L", "U"])
_INF = float("inf")


def _out(result, out):
    if out is None:
        return result
    return write_out(result, out)


# --- norms ---------------------------------------------------------------------------------------------------

def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """torch.linalg.vector_norm: tensorlib's norm op (Tensor.norm's) over `dim` (all dims by default); -inf
    (the smallest |x|) as amin of |x|. dtype: the input cast first, as torch."""
    if isinstance(ord, str):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not {type(ord).__name__}")
    check_floating("linalg.vector_norm", x._data, low_precision=False)
    if dtype is not None:
        x = x.to(norm_dtype("linalg.vector_norm", x._data, dtype))
    if isinstance(dim, list):
        dim = tuple(dim)
    with record_range("linalg_vector_norm", "op", (x,)):
        if ord == -_INF:
            r = x.abs().amin(dim=() if dim is None else dim, keepdim=keepdim)
        else:
            attrs = {"p": ord}
            if dim is not None:
                attrs["dim"] = dim
            if keepdim:
                attrs["keepdim"] = True
            r = dispatch(NORM, x, **attrs)
    return _out(r, out)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """torch.linalg.matrix_norm: 'fro', 'nuc', ±1 (column sums), ±inf (row sums), ±2 (singular values)."""
    check_floating("linalg.matrix_norm", A._data, low_precision=False)
    check_matrix("linalg.matrix_norm", A._data)
    if dtype is not None:
        A = A.to(norm_dtype("linalg.matrix_norm", A._data, dtype))
    d0, d1 = (d % A.ndim for d in dim)
    if ord not in ("fro", "nuc", 1, -1, 2, -2, _INF, -_INF):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if ord in ("nuc", 2, -2):                   # through the SVD: no bfloat16 / float16, as torch
        check_floating("linalg.matrix_norm", A._data)
    with record_range("linalg_matrix_norm", "op", (A,)):
        if ord == "fro":
            r = vector_norm(A, 2, (d0, d1), keepdim)
        else:
            rest = [i for i in range(A.ndim) if i not in (d0, d1)]
            M = A.permute(*rest, d0, d1)
            if ord in ("nuc", 2, -2):
                s = svdvals(M)
                r = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
            else:
                sums = M.abs().sum(-2 if abs(ord) == 1 else -1)         # column sums (1) or row sums (inf)
                r = sums.amax(-1) if ord > 0 else sums.amin(-1)
            if keepdim:
                for d in sorted((d0, d1)):
                    r = r.unsqueeze(d)
    return _out(r, out)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
    """torch.linalg.norm: a vector norm over one dim (or all, without ord), a matrix norm over two."""
    with record_range("linalg_norm", "op", (A,)):
        return _norm(A, ord, dim, keepdim, dtype, out)


def _norm(A, ord, dim, keepdim, dtype, out):
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype, out=out)
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype, out=out)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype, out=out)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype, out=out)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype, out=out)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                       f"{A.ndim}D.")


# --- pseudo-inverse, least squares, rank, condition number ----------------------------------------------

def _tolerance(s_max, atol, rtol, m, n, dtype):
    """torch's pinv / matrix_rank threshold: max(atol, rtol * σ_max); rtol defaults to eps * max(m, n) when
    atol is not given (or 0), to 0 otherwise."""
    if rtol is None:
        rtol = float(np.finfo(dtype.np).eps) * max(m, n) if atol is None or (not hasattr(atol, "shape") and
                                                                          atol <= 0) else 0.0
    tol = s_max * rtol
    if atol is not None:
        tol = maximum(tol, atol) if hasattr(atol, "shape") else tol.clamp(min=atol)
    return tol


@_F.with_out
def lstsq(A, B, rcond=None, *, driver=None, out=None):
    """torch.linalg.lstsq: the minimum-norm least-squares solution (the pseudo-inverse's, which gelsy's,
    gelsd's and gelss's are; gels, CUDA's default, solves full-rank systems only, where they agree), with
    torch's extra results per driver: residuals (gels, gelsd, gelss; full-rank tall A only), rank (gelsy,
    gelsd, gelss) and singular values (gelsd, gelss). Differentiable through the SVD."""
    if A.dtype != B.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got input's "
                           f"dtype {D.scalar_name(A.dtype)} and other's dtype {D.scalar_name(B.dtype)}")
    check_floating("linalg.lstsq", A._data)
    if driver is None:
        driver = "gelsy" if A.is_cpu else "gels"
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    vec = B.ndim == A.ndim - 1
    Bm = B.unsqueeze(-1) if vec else B
    m, n = A.shape[-2:]
    if Bm.shape[-2] != m:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    z = dict(device=A.device)
    with record_range("linalg_lstsq", "op", (A, B)):
        u, s, vh = svd(A, full_matrices=False)
        if rcond is None:
                    rcond = float(np.finfo(A.dtype.np).eps) * max(m, n)
        tol = s[..., :1] * rcond if s.shape[-1] else s.sum(-1, keepdim=True)
        keep = s > tol
        sinv = where(keep, 1 / where(keep, s, 1.0), 0.0)
        x = _matmul(_F._h(vh) * sinv.unsqueeze(-2), _matmul(_F._h(u), Bm))
        rank = keep.sum(-1)
        full = bool((rank == min(m, n)).all()) if rank.numel() else True
        real = s.dtype      # (residuals and singular values are real for a complex A)
        if driver != "gelsy" and m > n and full:
            r = _matmul(A, x) - Bm
            res = ((r.real ** 2 + r.imag ** 2) if r.is_complex() else r ** 2).sum(-2)
            if vec:
                res = res.squeeze(-1)
        else:
            res = zeros(0, dtype=real, **z)
        rank_out = rank if driver != "gels" else zeros(0, dtype=rank.dtype, **z)
        sv = s if driver in ("gelsd", "gelss") else zeros(0, dtype=real, **z)
        sol = x.squeeze(-1) if vec else x
    return lstsq_rt(sol, res, rank_out, sv.detach() if driver in ("gelsd", "gelss") else sv)


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """torch.linalg.matrix_rank: the singular values (|eigenvalues| when hermitian) above the tolerance."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at least 2 dimensions.")
    check_floating("linalg.matrix_rank", A._data)
    if tol is not None:
        atol, rtol = tol, 0.0
    m, n = A.shape[-2:]
    with record_range("linalg_matrix_rank", "op", (A,)):
        with _no_grad():
            s = eigvalsh(A).abs() if hermitian else svdvals(A)
            smax = s.amax(-1, keepdim=True) if s.shape[-1] else s.sum(-1, keepdim=True)
            tol_ = _tolerance(smax, atol, rtol, m, n, A.dtype)
            return _out((s > tol_).sum(-1), out)


def _no_grad():
    return no_grad()


def cond(A, p=None, *, out=None):
    """torch.linalg.cond: σ_max / σ_min for p None or 2 (σ_min / σ_max for -2); norm(A) norm(A^{-1})
    otherwise."""
    check_floating("linalg.cond", A._data)
    check_matrix("linalg.cond", A._data)
    with record_range("linalg_cond", "op", (A,)):
        if p in (None, 2, -2):
            s = svdvals(A)
            r = s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
        else:
            check_square(f"linalg.cond(ord={p})", A._data)
            r = matrix_norm(A, p) * matrix_norm(inv(A), p)
    return _out(r, out)


# --- LU --------------------------------------------------------------------------------------------------

@_F.with_out
def lu(A, *, pivot=True, out=None):
    """torch.linalg.lu: (P, L, U) with A = P L U, from lu_factor."""
    with record_range("linalg_lu", "op", (A,)):
        LU, piv, _ = dispatch(_F.LU_FACTOR_EX, A, pivot=pivot)
        P, L, U = _F.lu_unpack(LU, piv)
    return lu_rt(P, L, U)


# --- products ------------------------------------------------------------------------------------------

@torch_op("linalg_matmul")
def matmul(input, other, *, out=None):
    return _matmul(input, other, out=out)


def multi_dot(tensors, *, out=None):
    """torch.linalg.multi_dot: the chain product (a 1-D first or last operand as a row or column vector),
    multiplied in the cheapest order (torch's: ops.more_ops._multi_dot, chain_matmul's too), so the rounding
    matches torch's."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    first_vec, last_vec = tensors[0].ndim == 1, tensors[-1].ndim == 1
    ms = list(tensors)
    if first_vec:
        ms[0] = ms[0].unsqueeze(0)
    if last_vec:
        ms[-1] = ms[-1].unsqueeze(-1)
    for i, t in enumerate(ms):
        if t.ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {tensors[i].ndim}D")
    with record_range("linalg_multi_dot", "op", tuple(tensors)):
        r = _multi_dot(ms)
        if first_vec:
            r = r.squeeze(0)
        if last_vec:
            r = r.squeeze(-1)
    return _out(r, out)


def vecdot(x, y, *, dim=-1, out=None):
    """torch.linalg.vecdot: the dot product along `dim` (sum of conj(x) * y), broadcast."""
    with record_range("linalg_vecdot", "op", (x, y)):
        return _out((x.conj() * y).sum(dim), out)


def cross(input, other, *, dim=-1, out=None):
    """torch.linalg.cross: tensorlib's cross op (broadcast, between tensors of one rank)."""
    if input.ndim != other.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    nd = max(input.ndim, other.ndim)
    d = norm_dims(dim, nd)[0]
    sa = input.shape[d - (nd - input.ndim)] if d >= nd - input.ndim else 1
    sb = other.shape[d - (nd - other.ndim)] if d >= nd - other.ndim else 1
    if sa != 3 or sb != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {sa} and {sb}")
    return _out(dispatch(CROSS, input, other, dim=d), out)


@torch_op("linalg_diagonal")
def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    return A.diagonal(offset, dim1, dim2)


@torch_op("linalg_matrix_power")
def matrix_power(A, n, *, out=None):
    """torch.linalg.matrix_power: by repeated squaring; a negative n of the inverse."""
    check_square("linalg.matrix_power", A._data)
    return _out(A.matrix_power(n), out)


def tensorinv(A, ind=2, *, out=None):
    """torch.linalg.tensorinv: the inverse of A as the matrix of its first `ind` dims by the rest."""
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    pr, pc = math.prod(rows), math.prod(cols)
    if pr != pc:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {pc} != {pr}")
    with record_range("linalg_tensorinv", "op", (A,)):
        return _out(inv(A.reshape(pr, pc)).reshape(*cols, *rows), out)


def tensorsolve(A, B, dims=None, *, out=None):
    """torch.linalg.tensorsolve: X with tensordot(A, X, X.ndim) = B (`dims` of A moved to the end first)."""
    with record_range("linalg_tensorsolve", "op", (A, B)):
        if dims is not None:
            dims = [d % A.ndim for d in dims]
            A = A.permute(*[i for i in range(A.ndim) if i not in dims], *dims)
        rest = tuple(A.shape[B.ndim:])
        nb = math.prod(A.shape[:B.ndim])
        if math.prod(rest) != nb:
            raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                               f"prod(self.shape[:other.ndim]), but got {math.prod(rest)} != {nb}")
        return _out(solve(A.reshape(nb, nb), B.reshape(nb)).reshape(*rest), out)


def vander(x, *, N=None):
    """torch.linalg.vander: columns x^0, x^1, ..., x^(N-1), as torch computes them (a cumulative product)."""
    n = (x.shape[-1] if x.ndim else 0) if N is None else N
    if n <= 1:
        if n < 1:
            raise RuntimeError("N must be greater than 1.")
        return x.unsqueeze(-1) * 0 + 1
    with record_range("linalg_vander", "op", (x,)):
        ones = (x.unsqueeze(-1) * 0 + 1)
        return cat([ones, x.unsqueeze(-1).expand(*x.shape, n - 1).cumprod(-1)], -1)


def householder_product(A, tau, *, out=None):
    """torch.linalg.householder_product (LAPACK's orgqr, ungqr): the first n columns of H_1 ... H_k,
    H_i = I - τ_i v_i v_i^H with v_i = (0, ..., 0, 1, A[i+1:, i]). Composed of dispatched ops (differentiable)."""
    m, n = A.shape[-2:]
    k = tau.shape[-1]
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if k > n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    with record_range("linalg_householder_product", "op", (A, tau)):
        batch = tuple(A.shape[:-2])
        q = eye(m, n, dtype=A.dtype, device=A.device).expand(*batch, m, n)
        for i in reversed(range(k)):          # Q = H_1 (H_2 (... (H_k I)))
            v = cat([zeros(*batch, i, dtype=A.dtype, device=A.device),
                     ones(*batch, 1, dtype=A.dtype, device=A.device), A[..., i + 1:, i]], -1)
            w = _matmul(v.conj().unsqueeze(-2), q)               # v^H Q
            q = q - tau[..., i, None, None] * (v.unsqueeze(-1) * w)
        return _out(q, out)


orgqr = householder_product


