"""Matrix products: matmul (batched, broadcast, 1-D cases as torch), mm, bmm, dot, outer."""
from __future__ import annotations

import math

from .. import _blas
from .. import _dtype as D
from .. import _hooks as _H
from .broadcast import QUIET, SINK, quiet_sum_to, sum_to
from .._opdef import with_defaults
from ._define import Tensor, dispatch, np, op, public, torch_op, write_out, write_outs
from ._fastmath import add_reduce
from .._graph import tensor_of, tensor_of_result
from .reduce import SUM
from .creation import ones_like
from .shape import SQUEEZE, T, TRANSPOSE, UNSAFE_VIEW, UNSQUEEZE, VIEW, cat, reshape, transpose
from ..dispatch import dispatch_binary, record_range, run_recorded
from .broadcast import expand, norm_dims


def _matmul_kernel(xp, a, b):
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype:
        if _H.range_hooks:      # torch's matmul of two matrices is its mm, in a profile
            return _H.op_step("mm", _product, xp, a, b)
        return _product(xp, a, b)       # (the common case, which the checks below all pass)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D")
    if a.ndim == 1 and b.ndim == 1 and a.shape != b.shape:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                           f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        sa = "x".join(map(str, a.shape if a.ndim == 2 else (1,) + a.shape if a.ndim == 1 else
                          (int(xp.prod(xp.asarray(a.shape[:-1]))), a.shape[-1])))
        sb = "x".join(map(str, b.shape if b.ndim == 2 else b.shape + (1,) if b.ndim == 1 else b.shape[-2:]))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa} and {sb})")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {c_type(a.dtype)} != "
                           f"{c_type(b.dtype)}")
    return _product(xp, a, b)


def _product(xp, a, b):
    if xp is np:
        # MKL, where installed, for every float32/float64 product, as torch's: 2-d ones in one C call (`small`),
        # batched ones through ctypes (`gemm`)
        if _blas.gemms:
            out = _blas.small(None, a, b) if a.ndim == 2 and b.ndim == 2 else _blas.gemm(a, b)
            if out is not None:
                return out
        if a.ndim == 2 and b.size >= 65536 and _rows_times_transposed(a, b):   # (its cheapest tests first)
            return np.ascontiguousarray(np.matmul(b.T, a.T).T)
    out = xp.matmul(a, b)
    return out.astype(a.dtype) if out.dtype != a.dtype else out  # bfloat16: accumulated in float32, rounded


def _rows_times_transposed(a, b):
    """Whether a @ b is a few rows (< 64, C order) times a large transposed matrix (F order, >= 64K entries),
    as a small batch through a Linear layer is (x @ W.t()): OpenBLAS computes that product about twice as slowly
    as the same product the other way round, (W @ x.T).T (measured on this machine's SkylakeX build, 1 thread:
    16x784x400 334 µs against 171 µs, 8x9216x128 1085 against 580, with the copy to C order that keeps the
    result contiguous; from 64 rows on, or with a smaller matrix, the direct call is faster). On the AMD EPYC
    machine of later sessions the gain is smaller (8x784x256 0.77x, 32 rows 0.91x, 48 0.95x) and 64 rows lose
    (64x256x256 1.08x, 64x784x256 0.99x): so fewer than 64."""
    return (a.ndim == 2 and b.ndim == 2 and a.shape[0] < 64 and b.size >= 65536 and a.dtype == b.dtype
            and a.dtype in (np.float32, np.float64) and a.flags.c_contiguous and b.flags.f_contiguous
            and not b.flags.c_contiguous)


def _matmul_bwd(ctx, g):
    a, b = ctx.saved_inputs
    ga = gb = None
    if a.ndim == 2 and b.ndim == 2:     # torch's MmBackward0 of its mm: t and mm
        return _mm_grads(g, a, b, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if ctx.needs_input_grad[0] else None, g * a if ctx.needs_input_grad[1] else None)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2.unsqueeze(-2)
    if b.ndim == 1:
        g2 = g2.unsqueeze(-1)
    if ctx.needs_input_grad[0]:
        ga = sum_to(matmul(g2, b2.mT), a2.shape)
        if a.ndim == 1:
            ga = ga.squeeze(0)
    if ctx.needs_input_grad[1]:
        gb = sum_to(matmul(a2.mT, g2), b2.shape)
        if b.ndim == 1:
            gb = gb.squeeze(-1)
    return ga, gb


MATMUL = op("matmul", save="i", amp="lower", node_name="MmBackward0")(_matmul_kernel)
MATMUL.def_backward(_matmul_bwd)


def _matmul_bwd_arrays(ctx, g, k=QUIET):
    """_matmul_bwd on NumPy arrays of one dtype, its ops' kernels (mm's formulas for two matrices; unsqueeze of
    a vector operand and of g, transpose as mT's, matmul, sum_to_size, squeeze; two products for vector times
    vector) called directly
    (k=QUIET: the quiet path, OpDef.quiet_backward) or run and recorded as the dispatched ops (k=SINK:
    OpDef.sink_backward); None for other arrays and where the public matmul would fold a product's batch
    into rows (its own region and ops, another product)."""
    a, b = ctx.inputs
    gd, ad, bd = g._data, a._data, b._data
    if type(gd) is not np.ndarray or type(ad) is not np.ndarray or type(bd) is not np.ndarray \
            or not gd.dtype == ad.dtype == bd.dtype:
        return None
    need = ctx.needs_input_grad
    if ad.ndim == 2 and bd.ndim == 2:   # mm's formulas (see _matmul_bwd)
        return (_quiet_mm_grads if k is QUIET else _sink_mm_grads)(gd, ad, bd, need[0], need[1])
    if ad.ndim == 1 and bd.ndim == 1:
        return (tensor_of(k.mul(gd, bd)) if need[0] else None, tensor_of(k.mul(gd, ad)) if need[1] else None)
    # g's rank after its unsqueezes: the first product folds where g2 is a batch times a matrix (the second
    # product never folds: see _matmul_bwd)
    g2_ndim = gd.ndim + (ad.ndim == 1) + (bd.ndim == 1)
    if need[0] and g2_ndim >= 3 and max(bd.ndim, 2) == 2 and gd.size:
        return None
    run = k.run
    a2 = run(UNSQUEEZE, ad, dim=0) if ad.ndim == 1 else ad
    b2 = run(UNSQUEEZE, bd, dim=1) if bd.ndim == 1 else bd
    g2 = gd
    if ad.ndim == 1:
        g2 = run(UNSQUEEZE, g2, dim=g2.ndim - 1)
    if bd.ndim == 1:
        g2 = run(UNSQUEEZE, g2, dim=g2.ndim)
    ga = gb = None
    if need[0]:
        bt = run(TRANSPOSE, b2, dim0=b2.ndim - 2, dim1=b2.ndim - 1)
        ga = quiet_sum_to(None, run(MATMUL, g2, bt), a2.shape, k)
        if ad.ndim == 1:
            ga = tensor_of_result(run(SQUEEZE, ga._data, dim=(0,)))
    if need[1]:
        at = run(TRANSPOSE, a2, dim0=a2.ndim - 2, dim1=a2.ndim - 1)
        gb = quiet_sum_to(None, run(MATMUL, at, g2), b2.shape, k)
        if bd.ndim == 1:
            gb = tensor_of_result(run(SQUEEZE, gb._data, dim=(gb._data.ndim - 1,)))
    return ga, gb


MATMUL.quiet_backward = _matmul_bwd_arrays
MATMUL.sink_backward = with_defaults(_matmul_bwd_arrays, k=SINK)


def _mm_kernel(xp, a, b):
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if a.shape[1] == b.shape[0] and a.dtype == b.dtype:
        return _product(xp, a, b)       # (_matmul_kernel's common case, without its call)
    return _matmul_kernel(xp, a, b)


def _mm_grads(g, a, b, need_a, need_b, run=dispatch):
    """torch's mm_mat1_backward / mm_mat2_backward of a 2-D product a @ b: t and mm (a column-major b, as a
    transposed weight is, gets its gradient in its own layout: t(mm(t(g), a))). On tensors by `dispatch`, or
    on NumPy arrays by `run_recorded` (the sink formulas, OpDef.sink_backward)."""
    ga = gb = None      # (T dispatched directly: t()'s rank check is mm's own)
    if need_a:
        ga = run(MM, g, run(T, b))
    if need_b:
        gb = run(T, run(MM, run(T, g), a)) if _column_major(b._data if run is dispatch else b) else \
            run(MM, run(T, a), g)
    return ga, gb


def _column_major(d):
    """A 2-D array laid out by columns (a transposed weight): its gradient is computed in that layout."""
    if d.ndim != 2:
        return False
    flags = d.flags
    return not flags.c_contiguous and flags.f_contiguous


def _quiet_mm_grads(gd, ad, bd, need_a, need_b):
    """_mm_grads on NumPy arrays (the quiet formulas of mm and addmm): mm's kernel on the same layouts (its
    product directly where the operands pass its checks: 2-D, of one dtype, the shapes consistent)."""
    same = gd.ndim == ad.ndim == bd.ndim == 2 and gd.dtype == ad.dtype == bd.dtype
    ga = None
    if need_a:
        ga = tensor_of(_product(np, gd, bd.T) if same and gd.shape[1] == bd.shape[1] else _mm_kernel(np, gd, bd.T))
    gb = None
    if need_b:
        mm = _product if same and gd.shape[0] == ad.shape[0] else _mm_kernel
        gb = tensor_of(mm(np, gd.T, ad).T if _column_major(bd) else mm(np, ad.T, gd))
    return ga, gb


def _mm_bwd(ctx, g):
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    return _mm_grads(g, a, b, need[0], need[1])


def _mm_bwd_arrays(ctx, g, grads=_quiet_mm_grads):
    """`grads(gd, ad, bd, need_a, need_b)` on the NumPy arrays of g and mm's inputs, when all three are NumPy
    arrays of one dtype; else None (the dispatched formula runs). mm's quiet formula (the same products of
    the same layouts, mm's kernel called directly), and with _sink_mm_grads its sink formula."""
    gd = g._data
    a, b = ctx.inputs
    ad, bd = a._data, b._data
    if type(gd) is not np.ndarray or type(ad) is not np.ndarray or type(bd) is not np.ndarray \
            or not gd.dtype == ad.dtype == bd.dtype:
        return None
    (fa, _), (fb, _) = ctx.edges
    return grads(gd, ad, bd, fa is not None, fb is not None)


def _sink_mm_grads(gd, ad, bd, need_a, need_b):
    """_mm_grads on NumPy arrays, its ops recorded and not dispatched (OpDef.sink_backward), as tensors."""
    if _call_as is not None and gd.ndim == ad.ndim == bd.ndim == 2 and gd.dtype == ad.dtype == bd.dtype \
            and gd.shape[1] == bd.shape[1] and gd.shape[0] == ad.shape[0]:
        out = _called_mm_grads(gd, ad, bd, need_a, need_b)
        if out is not NotImplemented:
            return out
    ga, gb = _mm_grads(gd, ad, bd, need_a, need_b, run_recorded)
    return (tensor_of_result(ga) if ga is not None else None), (tensor_of_result(gb) if gb is not None else None)


# run_recorded.call_as(op, fn, *args): fn(*args) run, timed and recorded as op's kernel by the op sink (C; None
# without tensorlib._crecorded), NotImplemented where the op sink does not record through it (nothing run)
_call_as = getattr(run_recorded, "call_as", None)


def _called_t(call, d):
    """t's record of array d's transpose by `call` (_call_as): t's own kernel (its regions where they listen)."""
    return call(T, T.kernel, np, d)


def _called_mm_grads(gd, ad, bd, need_a, need_b):
    """_sink_mm_grads' ops run by call_as where the op sink alone records (a default profile): each op's
    computation called directly (t's transpose, mm's product, as their kernels compute them on 2-D operands
    of one dtype whose shapes agree, checked by the caller) and recorded as run_recorded records the op, in the
    same order -- without the kernels' frames. NotImplemented (nothing run) where the op sink does not record
    so: the caller takes run_recorded's path."""
    call = _call_as
    ga = gb = None
    if need_a:
        bt = _called_t(call, bd)
        if bt is NotImplemented:
            return NotImplemented
        ga = tensor_of_result(call(MM, _product, np, gd, bt))
    if need_b:
        if _column_major(bd):
            gt = _called_t(call, gd)
            if gt is NotImplemented:
                return NotImplemented
            gb = tensor_of_result(_called_t(call, call(MM, _product, np, gt, ad)))
        else:
            at = _called_t(call, ad)
            if at is NotImplemented:
                return NotImplemented
            gb = tensor_of_result(call(MM, _product, np, at, gd))
    return ga, gb


MM = op("mm", save="i", amp="lower", node_name="MmBackward0")(_mm_kernel)
MM.def_backward(_mm_bwd)
MM.quiet_backward = _mm_bwd_arrays
MM.sink_backward = lambda ctx, g: _mm_bwd_arrays(ctx, g, _sink_mm_grads)


def _bmm_kernel(xp, a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if a.ndim != 3 else "batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, "
                           f"{a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return _matmul_kernel(xp, a, b)


def _bmm_bwd(ctx, g):
    """torch's BmmBackward0: bmm with the other operand transposed."""
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    return (dispatch(BMM, g, transpose(b, 1, 2)) if need[0] else None,
            dispatch(BMM, transpose(a, 1, 2), g) if need[1] else None)


BMM = op("bmm", save="i", amp="lower", node_name="BmmBackward0")(_bmm_kernel)
BMM.def_backward(_bmm_bwd)


def _dot_kernel(xp, a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                           f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
    if a.dtype != b.dtype:      # torch promotes for no product (NumPy's dot of float32 and int64 was float64)
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{D.scalar_name(D.from_np(a.dtype))} and {D.scalar_name(D.from_np(b.dtype))}")
    return xp.dot(a, b)


DOT = op("dot", save="i", amp="lower")(_dot_kernel)
DOT.def_backward(_matmul_bwd)


def c_type(d):
    """The C++ type name torch's matmul dtype-mismatch message prints (float, double, long int...)."""
    return D.C_NAMES.get(d.name, d.name)


@public(method=True)
def matmul(input, other, *, out=None):
    """torch's matmul (and `@`); a batch of 3 or more dims times a matrix runs as torch folds it: the batch
    reshaped to rows (a view, or where it cannot be one a contiguous copy: clone and _unsafe_view), one mm,
    and _unsafe_view back: one BLAS call instead of NumPy's one per batch entry (a (16, 4, 64) batch times
    64x192: 23 against 54 us), and a 2-D MmBackward0 whose weight gradient is one product instead of a
    batched product summed over the batch. out=: copied into `out`."""
    if type(input) is Tensor and type(other) is Tensor:
        x = input._data
        w = other._data
        if x.ndim >= 3 and w.ndim == 2 and x.shape[-1] == w.shape[0] and x.size:
            return write_out(_H.op_region("matmul", (input, other), _matmul_rows, input, other, x.shape, w.shape[1]),
                             out)
    return write_out(dispatch_binary(MATMUL, input, other), out)


def _matmul_rows(input, other, shape, n):
    """matmul's rows path inside its region (_H.op_region): input (..., k) reshaped to rows, one mm, and
    _unsafe_view back to (..., n)."""
    rows = dispatch(MM, reshape(input, -1, shape[-1]), other)
    return dispatch(UNSAFE_VIEW, rows, shape=(*shape[:-1], n))


@public(method=True)
def mm(input, mat2, *, out=None):
    return write_out(dispatch(MM, input, mat2), out)


@public(method=True)
def bmm(input, mat2, *, out=None):
    return write_out(dispatch(BMM, input, mat2), out)


@public(method=True)
def dot(input, other):
    return dispatch(DOT, input, other)


@public(method=True, aliases=("ger",))
def outer(input, vec2):
    """torch's outer, a composite: input reshaped to a column times vec2 (a broadcast mul: its promotion, its
    MulBackward0 and ViewBackward0 nodes)."""
    for name, v in (("self", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D")
    return _H.op_region("outer", (input, vec2), _outer, input, vec2)


def _outer(input, vec2):
    return reshape(input, (input.shape[0], 1)) * vec2


@op("mv", save="i", node_name="MvBackward0")
def MV(xp, a, v):
    """torch's mv: a matrix times a vector, in a profile its result's empty and addmv_ writing into it."""
    if _H.range_hooks:
        out = _H.op_step("empty", xp.empty, (a.shape[0],), np.promote_types(a.dtype, v.dtype))
        return _H.op_step("addmv_", _matmul_into, xp, a, v, out)
    return a @ v


def _matmul_into(xp, a, v, out):
    return xp.matmul(a, v, out=out)         # (CuPy's matmul, a generalized ufunc, takes no positional out)


@MV.def_backward
def _(ctx, g):
    """torch's mv_backward: g outer v (ger) for the matrix, a.t() mv g for the vector."""
    a, v = ctx.saved_inputs
    ga = _H.op_region("ger", (g, v), outer, g, v) if ctx.needs_input_grad[0] else None
    gv = mv(dispatch(T, a), g) if ctx.needs_input_grad[1] else None
    return ga, gv


@public(method=True)
def mv(input, vec, *, out=None):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {vec.ndim}, 1")
    if input.dtype != vec.dtype:        # torch's addmv check (its result made like the vector)
        a, v = D.scalar_name(input.dtype), D.scalar_name(vec.dtype)
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {v}, {a}, and {v}")
    return write_out(dispatch(MV, input, vec), out)


@public
def tensordot(a, b, dims=2, out=None):
    """torch.tensordot: a's dims contracted with b's (an int n: a's last n with b's first n; or two lists), as
    torch computes it: both permuted and reshaped to matrices, one mm, the result reshaped."""
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        if isinstance(da, Tensor) or isinstance(db, Tensor):
            da, db = [int(v) for v in da], [int(v) for v in db]
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    da, db = [d % a.ndim for d in da], [d % b.ndim for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} "
                               f"and second has size {b.shape[y]} in dim {y}")
    ka = [d for d in range(a.ndim) if d not in da]
    kb = [d for d in range(b.ndim) if d not in db]
    n = math.prod(a.shape[d] for d in da)
    with record_range("tensordot", "op", (a, b)):      # torch's composite around its permutes, reshapes and mm
        left = reshape(a.permute(*ka, *da), math.prod(a.shape[d] for d in ka), n)
        right = reshape(b.permute(*db, *kb), n, math.prod(b.shape[d] for d in kb))
        res = reshape(mm(left, right), *[a.shape[d] for d in ka], *[b.shape[d] for d in kb])
    return write_out(res, out)


_CDIST_MODES = {"use_mm_for_euclid_dist_if_necessary": None, "use_mm_for_euclid_dist": True,
                "donot_use_mm_for_euclid_dist": False}


@public
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """torch.cdist: the p-norm distance of every row of x1 to every row of x2 (batched over leading dims).
    compute_mode, as torch's: for p = 2 the matrix-product path (|a|^2 - 2 a.b + |b|^2, clamped at 0: fast,
    less precise for near points) always ("use_mm_for_euclid_dist"), never ("donot_use_mm_for_euclid_dist") or
    when either input has more than 25 rows (the default); otherwise the difference of each pair."""
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: "
                           f"{x2.shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    use_mm = _CDIST_MODES[compute_mode]
    if use_mm is None:
        use_mm = x1.shape[-2] > 25 or x2.shape[-2] > 25
    with record_range("cdist", "op", (x1, x2)):        # torch's composite: every op it runs inside its region
        if p == 2 and use_mm:
            return _euclidean_dist(x1, x2)
        return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).norm(p=p, dim=-1)


def _euclidean_dist(x1, x2):
    """torch's _euclidean_dist: one matrix product of [-2 x1, |x1|^2, 1] and [x2, 1, |x2|^2], clamped at 0
    (rounding can make it negative) and square-rooted."""
    with record_range("_euclidean_dist", "op", (x1, x2)):
        n1 = x1.pow(2).sum(-1, keepdim=True)
        n2 = x2.pow(2).sum(-1, keepdim=True)
        a = cat([x1.mul(-2), n1, ones_like(n1)], -1)
        b = cat([x2, ones_like(n2), n2], -1)
        return matmul(a, b.mT).clamp_min(0).sqrt()


ger = outer
# `t @ x` with an `x` that is not a tensor returns NotImplemented, as Python's operators do: the other operand's
# __rmatmul__ then answers (torch.fx's Proxy, whose trace records the product), or Python's TypeError
public(lambda self, other: matmul(self, other) if isinstance(other, Tensor) else NotImplemented, name="__matmul__",
       function=False, method=True)
public(lambda self, other: dispatch(MATMUL, other, self) if isinstance(other, Tensor) else NotImplemented,
       name="__rmatmul__", function=False, method=True)


# --- einsum ------------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_parse(equation, shapes):
    """The equation in explicit form, letters only: (input subscripts per operand, output subscripts).
    An ellipsis becomes letters that the equation does not use (broadcast, right-aligned)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) > len(shapes):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(ins) < len(shapes):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    for s in ins + ([rhs] if arrow else []):
        for c in s.replace("...", ""):
            if c not in _LETTERS:
                raise RuntimeError(f"einsum(): invalid subscript given at index {eq.index(c)} in the equation string, "
                                   f"subscripts must be in [a-zA-Z]")
    free = [c for c in _LETTERS if c not in eq]
    ell_n = 0
    for s, shp in zip(ins, shapes):
        if "..." in s:
            ell_n = max(ell_n, len(shp) - (len(s) - 3))
    ell = "".join(free[:ell_n])
    out_ins = []
    for i, (s, shp) in enumerate(zip(ins, shapes)):
        if "..." in s:
            k = len(shp) - (len(s) - 3)
            s = s.replace("...", ell[ell_n - k:] if k else "")
        if len(s) != len(shp):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(s)}) does not match the "
                               f"number of dimensions ({len(shp)}) for operand {i}"
                               + ("" if "..." in ins[i] else " and no ellipsis was given"))
        out_ins.append(s)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        joined = "".join(ins).replace("...", "")
        out = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    sizes = {}
    for i, (s, shp) in enumerate(zip(out_ins, shapes)):
        for c, n in zip(s, shp):
            if c in sizes and sizes[c] != n and n != 1 and sizes[c] != 1:
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {i} which does not broadcast "
                                   f"with previously seen size {sizes[c]}")
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    return tuple(out_ins), out


@op("einsum", listarg=True, save="i", amp="lower", node_name="EinsumBackward0")
def EINSUM(xp, arrays, ins, out):
    """NumPy's einsum; with a contraction over two or more operands of at least _EINSUM_BLAS_WORK
    multiply-adds, along a greedy path whose pairwise contractions run on BLAS (as torch's einsum runs bmm):
    "bij,bkj->bik" at (32, 64, 100) took 2.9 ms in einsum's own loops, 0.3 ms so. The path costs ~16 us, more
    than small products take without it."""
    eq = ",".join(ins) + "->" + out
    if arrays and arrays[0].dtype == D.BF16:      # NumPy's einsum has no bfloat16 loop: float32's, rounded once
        return EINSUM.kernel(xp, [a.astype(np.float32) for a in arrays], ins, out).astype(D.BF16)
    if len(arrays) > 2:
        return xp.einsum(eq, *arrays, optimize="greedy")
    if len(arrays) == 2 and set(ins[0]) & set(ins[1]) - set(out):
        size = {c: n for s, a in zip(ins, arrays) for c, n in zip(s, a.shape)}
        if math.prod(size.values()) >= _EINSUM_BLAS_WORK:
            return xp.einsum(eq, *arrays, optimize="greedy")
    return xp.einsum(eq, *arrays)


_EINSUM_BLAS_WORK = 1 << 15     # (2, 32, 32, 32) took 29.6 us in einsum's loops, 23.9 along the path


@EINSUM.def_backward
def _(ctx, g):
    ins, out = ctx.attrs["ins"], ctx.attrs["out"]
    xs = ctx.saved_inputs
    grads = []
    for k, (s, x) in enumerate(zip(ins, xs)):
        if not ctx.needs_input_grad[k]:
            grads.append(None)
            continue
        if len(set(s)) != len(s):
            raise NotImplementedError(f"einsum backward: a subscript repeated within one operand ({s!r}) is not "
                                      "supported")
        others = [(ins[j], xs[j]) for j in range(len(xs)) if j != k]
        avail = set(out).union(*(set(o) for o, _ in others))
        keep = "".join(c for c in s if c in avail)
        gk = dispatch(EINSUM, [g] + [t for _, t in others], ins=(out,) + tuple(o for o, _ in others), out=keep)
        shape = tuple(x.shape)
        if keep != s:   # letters summed within this operand alone: their gradient is broadcast
            for i, c in enumerate(s):
                if c not in avail:
                    gk = gk.unsqueeze(i)
            gk = expand(gk, tuple(n if c not in avail else gk.shape[i] for i, (c, n) in enumerate(zip(s, shape))))
        grads.append(sum_to(gk, shape))
    return tuple(grads)


@public
def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError("einsum(): argument 'equation' must be str")
    ins, out = _einsum_parse(equation, [tuple(t.shape) for t in operands])
    return dispatch(EINSUM, list(operands), ins=ins, out=out)


# --- addmm, baddbmm, cross ---------------------------------------------------------------------------

_NUMBERS = (int, float)


def _scaled_product(kernel):
    """addmm / baddbmm: beta * c + alpha * (a @ b). A 2-d product on MKL runs as torch's addmm runs it
    (addmm_impl_cpu_: c broadcast into the output, then one GEMM with alpha and beta, _blas.small), so the bias
    enters MKL's k-blocked sums where torch's does (the product plus c afterwards differed from torch's in about a
    third of a Linear layer's outputs once k passed a block, ~256). Otherwise the product is a fresh array that
    nothing else holds, so alpha and c are applied to it in place where c broadcasts to it and their result type is
    its dtype (a Linear layer's bias: no second output array and one pass less over it)."""
    def k(xp, c, a, b, beta=1, alpha=1):
        if xp is np and _blas.gemms and a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] \
                and type(c) is np.ndarray and type(beta) in _NUMBERS and type(alpha) in _NUMBERS:
            out = _blas.small(c, a, b, beta, alpha)
            if out is not None:
                return out
        p = kernel(xp, a, b)
        if alpha != 1:
            p = p * alpha
        if beta == 0:        # torch: input is ignored (its NaNs do not propagate)
            return p.astype(p.dtype, copy=False)
        c = c if beta == 1 else c * beta
        cs, ps = c.shape, p.shape
        # (a bias of the product's dtype and row length, linear's: the general tests below answer alike)
        if (c.dtype == p.dtype and cs == ps[len(ps) - len(cs):]) or (
                len(cs) <= len(ps) and xp.result_type(p, c) == p.dtype and
                all(n == 1 or n == m for n, m in zip(cs[::-1], ps[::-1]))):
            return xp.add(p, c, out=p)
        out = p + c
        return out if out.dtype == p.dtype else out.astype(p.dtype)
    return k


def _scaled_product_bwd(ctx, g):
    c, a, b = ctx.saved_inputs
    attrs = ctx.attrs      # (linear's addmm has none)
    beta, alpha = (attrs.get("beta", 1), attrs.get("alpha", 1)) if attrs else (1, 1)
    (fc, _), (fa, _), (fb, _) = ctx.edges     # an input needs a gradient where its edge has a node
    need = (fc is not None, fa is not None, fb is not None)
    gc = ga = gb = None
    if need[0]:
        gc = g * beta if beta != 1 else g
        shape = tuple(ctx.in_meta[0][0])
        gd = g._data
        if gd.ndim == 2 and shape == (gd.shape[1],):     # a bias row: torch's engine sums it to size (sum, view)
            gc = dispatch(VIEW, dispatch(SUM, gc, dim=0, keepdim=True), shape=shape)
        else:
            gc = sum_to(gc, shape)
    ga_ = g * alpha if alpha != 1 else g
    if a._data.ndim == 2:     # addmm: torch's mm_mat1/mm_mat2_backward, t and mm (a transposed mat2 keeps its layout)
        ga, gb = _mm_grads(ga_, a, b, need[1], need[2])
        return gc, ga, gb
    if need[1]:
        ga = matmul(ga_, b.mT)
    if need[2]:
        gb = matmul(a.mT, ga_)
    return gc, ga, gb


def _addmm_bwd_arrays(ctx, g, sink=False):
    """_scaled_product_bwd's addmm case with beta = alpha = 1 (linear's) on NumPy arrays: its kernels called
    directly (the engine's quiet path, OpDef.quiet_backward) or, with `sink`, by `run_recorded` (the op
    sink's, OpDef.sink_backward: the dispatched formula's ops recorded). None for the other cases."""
    gd = g._data
    attrs = ctx.attrs
    if type(gd) is not np.ndarray or attrs and (attrs.get("beta", 1) != 1 or attrs.get("alpha", 1) != 1):
        return None
    _, a, b = ctx.inputs
    bd = b._data
    dt = gd.dtype
    if dt != bd.dtype or dt.char not in "efd":   # a dtype error, or bfloat16's rounding: the dispatched path
        return None
    (fc, _), (fa, _), (fb, _) = ctx.edges
    gc = ga = gb = None
    if fc is not None:
        shape = ctx.in_meta[0][0]
        if gd.ndim == 2 and shape == (gd.shape[1],):    # SUM's kernel (dim=0) and the view to the bias's shape
            gc = _sink_bias_grad(gd, shape) if sink else tensor_of(add_reduce(gd, 0))
        elif shape == gd.shape:
            gc = g
        else:
            return None
    # the products as the dispatched formula's (_mm_grads): mm's kernel on the same layouts
    ga, gb = (_sink_mm_grads if sink else _quiet_mm_grads)(gd, a._data, bd, fa is not None, fb is not None)
    return gc, ga, gb


def _sink_bias_grad(gd, shape):
    """addmm's bias gradient from 2-D gd as its sink formula records it: sum(dim=0, keepdim=True) and the view
    to the bias's `shape`; by call_as where the op sink alone records (the sum as SUM's kernel reduces a float
    array, the view as the array's reshape), else by run_recorded."""
    if _call_as is not None and gd.dtype.char in "fd":
        s = _call_as(SUM, add_reduce, gd, 0, None, None, True)
        if s is not NotImplemented:
            return tensor_of_result(_call_as(VIEW, s.reshape, shape))
    return tensor_of_result(run_recorded(VIEW, run_recorded(SUM, gd, dim=0, keepdim=True), shape=shape))


ADDMM = op("addmm", save="i", amp="lower", node_name="AddmmBackward0")(_scaled_product(_mm_kernel))
ADDMM.def_backward(_scaled_product_bwd)
ADDMM.quiet_backward = _addmm_bwd_arrays
ADDMM.sink_backward = lambda ctx, g: _addmm_bwd_arrays(ctx, g, True)
# the same formula's common case (a linear layer's: 2-D float operands of one dtype) in the C engine
# (OpDef.sink_linear), and mm's and a 2-D matmul's (a linear layer without a bias)
ADDMM.sink_linear = MM.sink_linear = MATMUL.sink_linear = (SUM, VIEW, T, MM, add_reduce, _product, np,
                                                           tensor_of_result, np.dtype(np.float32), np.dtype(np.float64))
BADDBMM = op("baddbmm", save="i", amp="lower", node_name="BaddbmmBackward0")(_scaled_product(_bmm_kernel))
BADDBMM.def_backward(_scaled_product_bwd)


def _expand_input(input, shape):
    try:
        return expand(input, shape) if tuple(input.shape) != tuple(shape) else input
    except RuntimeError:
        raise RuntimeError(f"The expanded size of the tensor ({shape[-1]}) must match the existing size "
                           f"({input.shape[-1]}) at non-singleton dimension {len(shape) - 1}.  Target sizes: "
                           f"{list(shape)}.  Tensor sizes: {list(input.shape)}") from None


@public(method=True)
def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    if mat1.ndim == 2 and mat2.ndim == 2 and mat1.shape[1] == mat2.shape[0]:
        input = _expand_input(input, (mat1.shape[0], mat2.shape[1]))
    return write_outs(dispatch(ADDMM, input, mat1, mat2, beta=beta, alpha=alpha), out, "addmm")


@public(method=True)
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    if batch1.ndim == 3 and batch2.ndim == 3:
        input = _expand_input(input, (batch1.shape[0], batch1.shape[1], batch2.shape[2]))
    return write_outs(dispatch(BADDBMM, input, batch1, batch2, beta=beta, alpha=alpha), out, "baddbmm")


@op("linalg_cross", promote=True, save="i", node_name="LinalgCrossBackward0")
def CROSS(xp, a, b, dim=-1):
    if a.shape != b.shape:
        a, b = xp.broadcast_arrays(a, b)
    return xp.cross(a, b, axis=dim)


@CROSS.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    d = ctx.attrs.get("dim", -1)
    return (sum_to(cross(b, g, dim=d), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(cross(g, a, dim=d), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


@public(method=True)
@torch_op("cross")
def cross(input, other, dim=None, *, out=None):
    nd = max(input.ndim, other.ndim)
    if dim is None:
        import warnings
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                      "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                      "with that of linalg.cross in a future release.", UserWarning, stacklevel=2)
        sizes = [input.shape[i] if input.ndim == nd else 0 for i in range(nd)]
        dims = [i for i, s in enumerate(sizes) if s == 3]
        if not dims:
            raise RuntimeError("no dimension of size 3 in input")
        d = dims[0]
    else:
        d = norm_dims(dim, nd)[0]
        sa = input.shape[d - (nd - input.ndim)] if d >= nd - input.ndim else 1
        sb = other.shape[d - (nd - other.ndim)] if d >= nd - other.ndim else 1
        if sa != 3 or sb != 3:
            raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {sa} and {sb}")
    return write_outs(dispatch(CROSS, input, other, dim=d), out, "cross")


