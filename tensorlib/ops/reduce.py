"""Reductions with torch's dim/keepdim semantics; max/min with a dim return (values, indices)."""
from __future__ import annotations

import math
import os
import sys
import warnings
from collections import namedtuple

from .. import _dtype as D, _sync
from .arithmetic import DIV, maximum, minimum
from .broadcast import EXPAND, norm_dims, quiet_reduced_grad, reduced_grad, unsqueezed
from .comparison import eq, isnan, ne, where
from ._define import Tensor, dispatch, np, op, public, refuse_complex, torch_op, write_outs
from .creation import arange, ones_like, zeros_like
from .shape import UNSQUEEZE, cat
from ._fastmath import add_reduce
from ._rows import take_along
from .._graph import mark_view, tensor_of, tensor_of_result
from ..dispatch import record_range, run_recorded

return_types = namedtuple("return_types", ["values", "indices"])
values_indices = return_types


def return_type(name, fields):
    """torch.return_types.<name>: a namedtuple of `fields` that prints as torch's (the one form of every op's
    named result: max's (values, indices), linalg's, frexp's ...)."""
    cls = namedtuple(name, fields)
    cls.__module__ = "tensorlib.return_types"
    cls.__repr__ = lambda self: (f"{D.namespace()}.return_types.{name}(\n"
                                 + ",\n".join(f"{f}={v!r}" for f, v in zip(fields, self)) + ")")
    return cls


def named_return_type(name):
    """torch.return_types.<name> of a (values, indices) result (max, min, sort, topk, mode, ...)."""
    return return_type(name, ("values", "indices"))


max_rt, min_rt = named_return_type("max"), named_return_type("min")


def _axes(a, dim):
    """A reduction's dim as NumPy's axes; a 0-d tensor's (dim 0 or -1, its one implicit dimension, checked as
    torch checks it) as () -- NumPy has no axis 0 there."""
    if dim is None:
        return None
    ax = norm_dims(dim, a.ndim)
    return ax if a.ndim else ()


def _c(xp, r, a):
    """A reduction's result `r` of input `a`, C-ordered: torch's reductions (and scans) write a new contiguous
    tensor where NumPy's keep a transposed or channels-last input's layout (x.t().sum(0, keepdim=True).view(-1)
    would fail). Costs nothing for a C-contiguous input, whose results NumPy makes C-contiguous already."""
    if a.flags.c_contiguous or getattr(r, "ndim", 0) < 2:
        return r
    return r.copy(order="C")


@op("sum", amp="fp32", node_name="SumBackward0")
def SUM(xp, a, dim=None, keepdim=False, dtype=None):
    if a.dtype == D.BF16 and dtype is None:      # accumulated in float32 and rounded, as torch does
        return SUM.kernel(xp, a.astype(np.float32), dim, keepdim).astype(D.BF16)
    if dtype is None and a.dtype.kind in "bui":
        dtype = np.int64
    if type(dim) is int and 0 <= dim < a.ndim:
        ax = (dim,)
    else:
        ax = _axes(a, dim)
        if ax == ():
            ax = None if dim is None else ()
    if type(a) is np.ndarray:   # ndarray.sum without its Python wrapper (numpy/_core/_methods.py)
        if dtype is None and ax is not None and _per_channel(a, ax):
            return _sum_per_channel(a, keepdim)
        return _c(np, add_reduce(a, ax, dtype, None, keepdim), a)     # (torch's order where it applies)
    return _c(xp, a.sum(axis=ax, keepdims=keepdim, dtype=dtype), a)


_PLANE_MAX = 1 << 12        # the longest run one BLAS dot product sums (its float32 rounding stays small)


def _per_channel(a, ax):
    """Whether a sum over `ax` is a per-channel sum of an NCHW-like array: axis 0 and every axis from 2 on,
    C-contiguous float32/float64, planes of at most _PLANE_MAX elements (a convolution's bias gradient,
    batch norm's statistics)."""
    return (a.ndim >= 3 and a.dtype.char in "fd" and tuple(sorted(ax)) == (0,) + tuple(range(2, a.ndim))
            and a.flags.c_contiguous and a.size > 0 and a.size // (a.shape[0] * a.shape[1]) <= _PLANE_MAX)


def _sum_per_channel(a, keepdim):
    """The per-channel sum as one matrix-vector product of the (N*C, H*W) rows with ones (BLAS, SIMD over
    contiguous rows) and a sum over N: about half the time of NumPy's add.reduce over axes (0, 2, 3) of a
    (64, 64, 30, 30) float32 gradient (0.9-1.2 ms against 2.0-2.1; torch 1.0-1.2)."""
    N, C = a.shape[:2]
    rows = np.matmul(a.reshape(N, C, -1), np.ones(a.size // (N * C), dtype=a.dtype))
    out = np.add.reduce(rows, 0)
    return out.reshape((1, C) + (1,) * (a.ndim - 2)) if keepdim else out


def _red_dims(ctx):
    """(the input's shape, the dims reduced): none for a 0-d input (see _axes)."""
    shape = ctx.in_meta[0][0]
    dim = ctx.attrs.get("dim")
    return shape, norm_dims(dim, len(shape)) if dim is not None and len(shape) else tuple(range(len(shape)))


SUM.node_name_dim = "SumBackward1"      # torch: sum() -> SumBackward0, sum(dim) -> SumBackward1


@SUM.def_backward
def _(ctx, g):
    shape, dims = _red_dims(ctx)
    return (reduced_grad(g, shape, dims, ctx.attrs.get("keepdim", False)),)


def _sum_bwd_quiet(ctx, g):
    """SUM's formula on a NumPy array (the engine's quiet path): the same reshape and broadcast view."""
    if type(g._data) is not np.ndarray:
        return None
    shape, dims = _red_dims(ctx)
    return (quiet_reduced_grad(g._data, shape, dims, ctx.attrs.get("keepdim", False)),)


SUM.quiet_backward = _sum_bwd_quiet


def _reduced_grad_sink(d, in_shape, dims, keepdim):
    """reduced_grad on NumPy array d, its unsqueezes and expand run and recorded as the dispatched ones
    (dispatch.run_recorded)."""
    in_shape = tuple(in_shape)
    if unsqueezed(in_shape, dims, keepdim):
        for k in sorted(dims):
            d = run_recorded(UNSQUEEZE, d, dim=k)
    return run_recorded(EXPAND, d, shape=in_shape)


def _sum_bwd_sink(ctx, g):
    """SUM's formula with its ops recorded, not dispatched (OpDef.sink_backward): a view of g as the
    dispatched expand's is."""
    d = g._data
    if type(d) is not np.ndarray:
        return None
    shape, dims = _red_dims(ctx)
    t = tensor_of(_reduced_grad_sink(d, shape, dims, ctx.attrs.get("keepdim", False)))
    mark_view(t, g)
    return (t,)


SUM.sink_backward = _sum_bwd_sink


@op("mean", amp="fp32", node_name="MeanBackward0")
def MEAN(xp, a, dim=None, keepdim=False, dtype=None):
    if a.dtype == D.BF16 and dtype is None:
        return a.mean(axis=_axes(a, dim), keepdims=keepdim, dtype=np.float32).astype(D.BF16)
    if dtype is None:
        if a.dtype.kind not in "fc":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                               f"complex dtype. Got: {_tname(a.dtype)}")
    else:
        _float_dtype_arg("mean", dtype)
    ax = _axes(a, dim)
    return _c(xp, mean_of(a, ax, keepdim) if dtype is None else a.mean(axis=ax, keepdims=keepdim, dtype=dtype), a)


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def mean_of(a, ax=None, keepdim=False):
    """a.mean(axis=ax, keepdims=keepdim) as torch's CPU mean computes it: for a non-empty float32/float64 NumPy array
    the sum (in torch's order where _fastmath.cascade_sum takes it), then a division by the count in the array's dtype
    (torch's sum(...).div_(n)); else NumPy's mean."""
    if type(a) is not np.ndarray or not a.size or (a.dtype is not _F32 and a.dtype is not _F64):
        return a.mean(axis=ax, keepdims=keepdim)
    r = add_reduce(a, ax, None, None, keepdim)
    n = a.dtype.type(a.size // r.size)
    if type(r) is np.ndarray:
        return np.true_divide(r, n, out=r)
    return r / n


def _float_dtype_arg(name, dtype):
    """torch's refusal of an integral or bool dtype= for a mean (NumPy's mean into int64 truncates)."""
    if D.kind(np.dtype(dtype)) not in "fc":
        raise RuntimeError(f"{name}(): could not infer output dtype. Optional dtype must be either a floating point or "
                           f"complex dtype. Got: {_tname(np.dtype(dtype))}")


def _tname(d):
    return {"int64": "Long", "int32": "Int", "bool": "Bool", "uint8": "Byte", "int16": "Short", "int8": "Char"}.get(
        str(d), str(d))


MEAN.node_name_dim = "MeanBackward1"


@MEAN.def_backward
def _(ctx, g):
    shape, dims = _red_dims(ctx)
    n = math.prod(shape[d] for d in dims)   # elements reduced into each output
    g = reduced_grad(g, shape, dims, ctx.attrs.get("keepdim", False))
    return (g / n if n else g,)


def _mean_bwd_quiet(ctx, g):
    """MEAN's formula on a NumPy array (the quiet path): g / n by the same ufunc, then SUM's broadcast (the
    same values as the dispatched formula's quotient of the broadcast, without writing every element)."""
    d = g._data
    if type(d) is not np.ndarray or d.dtype.kind != "f":
        return None
    shape, dims = _red_dims(ctx)
    n = math.prod(shape[k] for k in dims)
    return (quiet_reduced_grad(np.true_divide(d, n) if n else d, shape, dims, ctx.attrs.get("keepdim", False)),)


MEAN.quiet_backward = _mean_bwd_quiet


def _mean_bwd_sink(ctx, g):
    """MEAN's formula with its ops (SUM's unsqueezes and expand, the div by the count) recorded, not dispatched
    (OpDef.sink_backward); None where the quiet formula declines."""
    d = g._data
    if type(d) is not np.ndarray or d.dtype.kind != "f":
        return None
    shape, dims = _red_dims(ctx)
    n = math.prod(shape[k] for k in dims)
    if not n:
        return _sum_bwd_sink(ctx, g)
    return (tensor_of_result(run_recorded(DIV, _reduced_grad_sink(d, shape, dims, ctx.attrs.get("keepdim", False)),
                                          n)),)


MEAN.sink_backward = _mean_bwd_sink


@op("prod", save="io", amp="fp32")
def PROD(xp, a, dim=None, keepdim=False, dtype=None):
    if dtype is None and a.dtype.kind in "bui":
        dtype = np.int64
    return _c(xp, a.prod(axis=None if dim is None else dim, keepdims=keepdim, dtype=dtype), a)


PROD.node_name_dim = "ProdBackward1"


@PROD.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    shape, dims = _red_dims(ctx)
    keep = ctx.attrs.get("keepdim", False)
    dim = ctx.attrs.get("dim")
    if x.ndim == 0:
        return (g,)
    if not bool(eq(x, 0).any()):        # torch's grad * (result / input) where no input is 0
        q = reduced_grad(ctx.saved_output, shape, dims, keep) / x
        return (reduced_grad(g, shape, dims, keep) * q,)
    if dim is None or not dims:     # (all of them)
        # product of all other elements, exact also where x has zeros
        flat = x.reshape(-1)
        one = ones_like(flat[:1])
        left = cumprod(cat([one, flat[:-1]]), 0)
        right = cumprod(cat([one, flat.flip(0)[:-1]]), 0).flip(0)
        return ((left * right).reshape(shape) * g,)
    xt = x.movedim(dims[0], -1)
    one = ones_like(xt[..., :1])
    left = cumprod(cat([one, xt[..., :-1]], -1), -1)
    right = cumprod(cat([one, xt.flip(-1)[..., :-1]], -1), -1).flip(-1)
    others = (left * right).movedim(-1, dims[0])
    return (reduced_grad(g, shape, dims, keep) * others,)


def _scan_acc(xp, out):
    """The dtype torch's cumsum/cumprod accumulate a floating `out` in (at::acc_type): float32 and complex64 in
    double precision on the CPU, float16 and bfloat16 in float32 (its opmath) anywhere; None: `out` itself."""
    if D.kind(out) == "f" and out.itemsize == 2:
        return np.dtype(np.float32)
    if xp is np and out == np.float32:
        return np.dtype(np.float64)
    if xp is np and out == np.complex64:
        return np.dtype(np.complex128)
    return None


def _scan(xp, fn, a, dim, dtype):
    """cumsum's/cumprod's kernel (fn: xp.cumsum or xp.cumprod): integers and bools to int64 as torch's, the input
    cast to the result's dtype and each step accumulated in _scan_acc's dtype, rounded to the result's once (a
    float32 running sum rounded at every step left 3/4 of the values an ulp or more off torch's; a half-precision
    one drifted: 0.0508 for torch's 0.0500 after five terms)."""
    if dtype is None and a.dtype.kind in "bui":
        dtype = np.int64
    out = np.dtype(dtype) if dtype is not None else a.dtype
    acc = _scan_acc(xp, out)
    if acc is not None:
        a = a.astype(out, copy=False)
    if not a.ndim:      # a 0-d tensor's (dim 0 or -1): itself, 0-d (NumPy's scan gives one element)
        return fn(a, dtype=dtype).reshape(())
    if acc is not None:
        return _c(xp, fn(a, axis=dim, dtype=acc).astype(out), a)
    return _c(xp, fn(a, axis=dim, dtype=dtype), a)


@op("cumsum", amp="fp32")
def CUMSUM(xp, a, dim, dtype=None):
    return _scan(xp, xp.cumsum, a, dim, dtype)


@CUMSUM.def_backward
def _(ctx, g):
    d = ctx.attrs["dim"]
    return (cumsum(g.flip(d), d).flip(d),)


@op("cumprod", save="io")
def CUMPROD(xp, a, dim, dtype=None):
    return _scan(xp, xp.cumprod, a, dim, dtype)


@CUMPROD.def_backward
def _(ctx, g):
    d = ctx.attrs["dim"]
    x = ctx.saved_inputs[0]
    out = ctx.saved_output
    if x.ndim == 0 or not bool(eq(x, 0).any()):
        return (cumsum((g * out).flip(d), d).flip(d) / x,)
    return (_cumprod_grad_with_zeros(g, x, out, d),)


def _cumprod_grad_with_zeros(g, x, out, d):
    """cumprod's gradient where x has zeros, as torch's cumprod_backward: along each slice with its first zero at
    k (and its second at k2), the inputs before k take reverse_cumsum(g out) / x over the outputs before k, the zero
    itself the sum over k <= j < k2 of g_j times the product of every other input up to j (out_{k-1} prod_{k<m<=j}
    x_m), and the inputs after it 0 (each product they are in has the zero). Outputs from k on, which are 0 (or NaN
    past a NaN input), take no part: where() masks them as torch's masked_fill does, so a NaN or inf after a zero
    does not reach the inputs before it. Written in tensor ops, so that it is differentiable itself."""
    n = x.shape[d]
    shape = [1] * x.ndim
    shape[d] = n
    pos = arange(n, device=x.device).reshape(tuple(shape))
    zero = eq(x, 0)

    def first(mask):        # the first position where mask holds along d, or n
        return where(mask.any(d, keepdim=True), argmax(mask.to(x.dtype), d, keepdim=True), n)
    k = first(zero)
    k2 = first(cumsum(zero.to(x.dtype), d) >= 2)
    usual = cumsum(where(pos < k, g * out, 0.0).flip(d), d).flip(d) / where(zero, 1.0, x)
    after = cumprod(where((pos > k) & (pos < k2), x, 1.0), d)   # prod_{k<m<=j} x_m at k <= j < k2
    at_zero = (after * where((pos >= k) & (pos < k2), g, 0.0)).sum(d, keepdim=True)   # (torch's product: an inf
    #                                                              between the zeros makes it NaN, as torch's)
    before = where(pos == k - 1, out, 0.0).sum(d, keepdim=True)  # out_{k-1} (1, below, for a zero in the first place)
    at_zero = at_zero * where(k == 0, 1.0, before)
    return where(pos < k, usual, where(pos == k, at_zero, 0.0))


def _select_kernel(fn):
    def kernel(xp, a, dim=None, keepdim=False):
        if dim is None:
            refuse_complex(a, f'"{fn}_all" not implemented for \'{{dtype}}\'')
        else:
            refuse_complex(a, f"{fn}(): does not support complex input", RuntimeError)
        if dim is None:
            if a.size == 0:
                raise RuntimeError(f"{fn}(): Expected reduction dim to be specified for input.numel() == 0. "
                                   "Specify the reduction dim with the 'dim' argument.")
            return getattr(a, fn)()
        if a.shape and a.shape[dim] == 0:
            raise IndexError(f"{fn}(): Expected reduction dim {dim} to have non-zero size.")
        idx = getattr(a, "arg" + fn)(axis=dim)
        if a.ndim:      # the values at the indices, the reduced dim kept (as a 1)
            dim %= a.ndim
            idx_k = idx.reshape(a.shape[:dim] + (1,) + a.shape[dim + 1:])
            vals = take_along(a, idx_k, dim) if type(a) is np.ndarray else xp.take_along_axis(a, idx_k, axis=dim)
            if keepdim:
                idx = idx_k
            else:
                vals = vals.reshape(idx.shape)
        else:
            vals = a
        return _c(xp, vals, a), _c(xp, idx.astype(np.int64, copy=False), a)
    return kernel


def _select_bwd(ctx, g, gi=None):
    x = ctx.saved_inputs[0]
    dim = ctx.attrs.get("dim")
    if dim is None:
        # ties share the gradient evenly, as torch's evenly_distribute_backward (a NaN result: the NaNs share it)
        out = ctx.saved_output
        mask = (x == out) | (isnan(x) & isnan(out))
        return (mask * (g / mask.sum()),)
    vals, idx = ctx.saved_output
    keep = ctx.attrs.get("keepdim", False)
    shape = ctx.in_meta[0][0]
    if not keep and len(shape):
        g = g.unsqueeze(dim)
        idx = idx.unsqueeze(dim)
    return (zeros_like(x).scatter_add(dim, idx, g),)


# torch: max() -> MaxBackward1, max(dim) -> MaxBackward0
MAX = op("max", save="io", nondiff_outputs=(1,), node_name="MaxBackward1")(_select_kernel("max"))
MAX.def_backward(_select_bwd)
MAX.node_name_dim = "MaxBackward0"
MIN = op("min", save="io", nondiff_outputs=(1,), node_name="MinBackward1")(_select_kernel("min"))
MIN.def_backward(_select_bwd)
MIN.node_name_dim = "MinBackward0"


def _amax_kernel(fn):
    def kernel(xp, a, dim=None, keepdim=False):
        refuse_complex(a, f'"{fn}_all" not implemented for \'{{dtype}}\'', RuntimeError)
        return _c(xp, getattr(a, fn)(axis=_axes(a, dim) if dim is not None and dim != () else None, keepdims=keepdim),
                  a)
    return kernel


def _amax_bwd(ctx, g):
    x = ctx.saved_inputs[0]
    out = ctx.saved_output
    shape, dims = _red_dims(ctx)
    keep = ctx.attrs.get("keepdim", False)
    ob = reduced_grad(out, shape, dims, keep)
    mask = x == ob
    cnt = reduced_grad(mask.sum(dim=dims, keepdim=True), shape, dims, True)
    return (mask * reduced_grad(g, shape, dims, keep) / cnt,)


AMAX = op("amax", save="io")(_amax_kernel("max"))
AMAX.def_backward(_amax_bwd)
AMIN = op("amin", save="io")(_amax_kernel("min"))
AMIN.def_backward(_amax_bwd)

ARGMAX = op("argmax")(lambda xp, a, dim=None, keepdim=False: _argk(xp, a, "argmax", dim, keepdim))
ARGMIN = op("argmin")(lambda xp, a, dim=None, keepdim=False: _argk(xp, a, "argmin", dim, keepdim))


def _argk(xp, a, fn, dim, keepdim):
    refuse_complex(a, f"{fn}(): does not support complex input", RuntimeError)
    if a.size == 0 and (dim is None or a.shape[dim] == 0):
        if dim is None:
            raise IndexError(f"{fn}(): Expected reduction dim to be specified for input.numel() == 0.")
        raise IndexError(f"{fn}(): Expected reduction dim {dim} to have non-zero size.")
    r = getattr(a, fn)(axis=dim if a.ndim else None)     # (a 0-d tensor's dim 0 or -1: its one element)
    if keepdim and a.ndim:
        r = xp.expand_dims(r, dim) if dim is not None else r.reshape((1,) * a.ndim)
    return _c(xp, xp.asarray(r, dtype=np.int64), a)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_level():
    """The stacklevel, for a warning given by its caller, of the first frame outside tensorlib (the user's call:
    the executor may be C or Python, so the frames in between vary)."""
    f, level = sys._getframe(2), 2
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE):
        f, level = f.f_back, level + 1
    return level


def _moment(a, fn, dim, correction, keepdim):
    """a.var / a.std over dim; with no degree of freedom left (one element, a 0-d tensor) NaN and torch's warning,
    not NumPy's two RuntimeWarnings."""
    if a.dtype.kind in "biu":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    ax = _axes(a, dim)
    n = a.size if ax is None else math.prod(a.shape[d] for d in ax)
    if n - correction > 0:
        return _c(np, getattr(a, fn)(axis=ax, ddof=correction, keepdims=keepdim), a)
    warnings.warn(f"{fn}(): degrees of freedom is <= 0. Correction should be strictly less than the reduction factor "
                  f"(input numel divided by output numel).", UserWarning, stacklevel=_user_level())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(a, fn)(axis=ax, ddof=correction, keepdims=keepdim)


@op("var", save="i", amp="fp32")
def VAR(xp, a, dim=None, correction=1, keepdim=False):
    return _moment(a, "var", dim, correction, keepdim)


def _spread_grad(ctx, g, factor):
    """var and std: g spread back over the reduced elements, times factor * (x - mean) / (n - correction)."""
    x = ctx.saved_inputs[0]
    shape, dims = _red_dims(ctx)
    corr = ctx.attrs.get("correction", 1)
    n = math.prod(shape[d] for d in dims)   # elements reduced into each output
    mu = x.mean(dim=dims, keepdim=True)
    scale = factor / (n - corr) if n - corr > 0 else float("nan")
    return reduced_grad(g, shape, dims, ctx.attrs.get("keepdim", False)) * (x - mu) * scale


@VAR.def_backward
def _(ctx, g):
    return (_spread_grad(ctx, g, 2.0),)


@op("std", save="io", amp="fp32")
def STD(xp, a, dim=None, correction=1, keepdim=False):
    return _moment(a, "std", dim, correction, keepdim)


@STD.def_backward
def _(ctx, g):
    out = ctx.saved_output      # d std = d var / (2 std); 0 where std is 0, as torch
    return (_spread_grad(ctx, where(eq(out, 0), 0.0, g / out), 1.0),)


@op("logsumexp", save="io", amp="fp32")
def LOGSUMEXP(xp, a, dim, keepdim=False):
    if a.dtype.kind in "biu":   # torch computes an integral or bool input's in the default float dtype
        a = a.astype(D.get_default_dtype().np)
    ax = _axes(a, dim)
    if not a.size:      # an empty sum's log: -inf (NumPy's max has no identity to shift by)
        r = xp.full(tuple(1 if i in ax else n for i, n in enumerate(a.shape)), -np.inf, dtype=a.dtype)
        return r if keepdim else xp.squeeze(r, axis=ax)
    m = a.max(axis=ax, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    r = _c(xp, xp.log(xp.exp(a - m).sum(axis=ax, keepdims=True)) + m, a)
    return r if keepdim else xp.squeeze(r, axis=ax)


@LOGSUMEXP.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    out = ctx.saved_output
    shape, dims = _red_dims(ctx)
    keep = ctx.attrs.get("keepdim", False)
    return (reduced_grad(g, shape, dims, keep) * (x - reduced_grad(out, shape, dims, keep)).exp(),)


@op("norm", save="io", amp="fp32", node_name="LinalgVectorNormBackward0")     # torch: norm is linalg_vector_norm
def NORM(xp, a, p=2, dim=None, keepdim=False):
    if dim is None and not keepdim:     # a 0-d result, which _c leaves as it is (clip_grad_norm_'s, per gradient)
        return _norm(xp, a, p, None, False)
    return _c(xp, _norm(xp, a, p, dim, keepdim), a)


def _norm(xp, a, p, dim, keepdim):
    if a.dtype.kind in "biu":
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{D.scalar_name(a.dtype)}")
    ax = None if dim is None else _axes(a, dim)
    if a.dtype.kind == "c":     # a complex tensor's norm is real: its elements' moduli's
        if p == 2:
            return xp.sqrt((a.real * a.real + a.imag * a.imag).sum(axis=ax, keepdims=keepdim))
        a = xp.abs(a)
    if p == 2:
        return xp.sqrt((a * a).sum(axis=ax, keepdims=keepdim))
    if p == float("inf"):
        return xp.abs(a).max(axis=ax, keepdims=keepdim)
    if p == 1:
        return xp.abs(a).sum(axis=ax, keepdims=keepdim)
    if p == 0:
        return (a != 0).sum(axis=ax, keepdims=keepdim).astype(a.dtype)
    return (xp.abs(a) ** p).sum(axis=ax, keepdims=keepdim) ** (1.0 / p)


@NORM.def_backward
def _(ctx, g):
    x = ctx.saved_inputs[0]
    out = ctx.saved_output
    shape, dims = _red_dims(ctx)
    keep = ctx.attrs.get("keepdim", False)
    p = ctx.attrs.get("p", 2)
    gb = reduced_grad(g, shape, dims, keep)
    ob = reduced_grad(out, shape, dims, keep)
    if p == 2:
        return (gb * where(eq(ob, 0), 0.0, x / ob),)
    if p == 1:
        return (gb * x.sgn(),)
    if p == 0:          # a count of nonzeros: no gradient (torch's norm_backward returns an undefined one)
        return (None,)
    if p == float("inf"):
        mask = x.abs() == ob
        return (gb * x.sgn() * mask / mask.sum(dim=dims, keepdim=True),)
    return (gb * x.sgn() * x.abs() ** (p - 1) * where(eq(ob, 0), 0.0, 1 / ob ** (p - 1)),)    # 0 at a 0 norm


def _truth_kernel(fn, ufunc):
    def kernel(xp, a, dim=None, keepdim=False):
        b = a if a.dtype.kind == "b" else a.astype(bool)
        if xp is np:    # (ndarray.all/any's own reduction, without their Python wrapper)
            r = ufunc.reduce(b, _axes(a, dim), None, None, keepdim)
        else:
            r = getattr(b, fn)(axis=_axes(a, dim), keepdims=keepdim)
        r = _c(xp, xp.asarray(r), a)
        return r.astype(np.uint8) if a.dtype == np.uint8 else r     # torch keeps uint8 (its legacy masks)
    return kernel


ALL = op("all")(_truth_kernel("all", np.logical_and))
ANY = op("any")(_truth_kernel("any", np.logical_or))


# --- public functions ---------------------------------------------------------------------------------

def _attrs(dim, keepdim, **kw):
    a = {k: v for k, v in kw.items() if v is not None}
    if dim is not None:
        a["dim"] = tuple(dim) if isinstance(dim, list) else dim
    if keepdim:
        a["keepdim"] = True
    return a


def _np_dt(dtype):
    if dtype is None:
        return None
    from .._dtype import to_dtype
    return to_dtype(dtype).np


# torch's overloads of sum and mean, as its argument parser lists them when none matches.
_REDUCE_OVERLOADS = {
    (name, False): f" * (Tensor input, *, tensorlib.dtype dtype = None{out})\n * (Tensor input, tuple of ints dim, "
                   f"bool keepdim = False, *, tensorlib.dtype dtype = None, Tensor out = None)\n"
    for name, out in (("sum", ""), ("mean", ", Tensor out = None"))
} | {
    (name, True): " * (*, tensorlib.dtype dtype = None)\n * (tuple of ints dim, bool keepdim = False, *, "
                  "tensorlib.dtype dtype = None)\n" for name in ("sum", "mean")
}


def _dim_like(dim):
    return dim is None or isinstance(dim, (int, tuple, list)) or hasattr(dim, "__index__")


def _type_name(v):
    return "Tensor" if isinstance(v, Tensor) else type(v).__name__


def _reduce_args(name, method, args, kwargs):
    """(dim, keepdim, dtype) of sum/mean, given as torch takes them (dim and keepdim by position or by
    name, dtype by name); a dim that is not an int, a sequence of ints or None raises torch's TypeError,
    worded as torch words it for a method or a function call and for a dim by position or by name."""
    n = len(args)
    if n > 2:
        raise TypeError(f"{name}() takes from 1 to 2 positional arguments but {n + (not method)} were given")
    dim = args[0] if n else kwargs.get("dim")
    if not _dim_like(dim) or not set(kwargs) <= {"dim", "keepdim", "dtype"}:
        if (n > 1 or "keepdim" in kwargs) and not _dim_like(dim):  # the second overload failed on dim's type
            where = f" (position {1 + (not method)})" if n else ""
            raise TypeError(f"{name}(): argument 'dim'{where} must be tuple of ints, not {_type_name(dim)}")
        pos = [_type_name(a) for a in args]
        kw = [f"{k}={_type_name(v)}" for k, v in kwargs.items()]
        if method:
            got = ", ".join(pos) + "".join(f", {k}" if pos else f"{k}, " for k in kw)
        else:
            got = ", ".join(["Tensor", *pos, *kw])
        raise TypeError(f"{name}() received an invalid combination of arguments - got ({got}), but expected "
                        f"one of:\n{_REDUCE_OVERLOADS[name, method]}")
    keepdim = args[1] if n > 1 else kwargs.get("keepdim", False)
    twice = {"dim", "keepdim"}.intersection(kwargs) if n == 2 else {"dim"}.intersection(kwargs) if n else set()
    if twice:
        raise TypeError(f"{name}() got multiple values for argument '{sorted(twice)[0]}'")
    return dim, keepdim, kwargs.get("dtype")


def _sum_or_mean(op, name, method, input, args, kwargs):
    """sum/mean's call, as torch takes its arguments (_reduce_args); the commonest, x.sum() and x.sum(-1), first."""
    if not kwargs and (not args or len(args) == 1 and type(args[0]) is int):
        return dispatch(op, input, dim=args[0]) if args else dispatch(op, input)
    dim, keepdim, dtype = _reduce_args(name, method, args, kwargs)
    return dispatch(op, input, **_attrs(dim, keepdim, dtype=_np_dt(dtype)))


@public
def sum(input, *args, **kwargs):
    """sum(input, dim=None, keepdim=False, *, dtype=None)"""
    return _sum_or_mean(SUM, "sum", False, input, args, kwargs)


@public(name="sum", function=False, method=True)
def _sum_method(self, *args, **kwargs):
    """Tensor.sum(dim=None, keepdim=False, *, dtype=None)"""
    return _sum_or_mean(SUM, "sum", True, self, args, kwargs)


@public
def mean(input, *args, **kwargs):
    """mean(input, dim=None, keepdim=False, *, dtype=None)"""
    return _sum_or_mean(MEAN, "mean", False, input, args, kwargs)


@public(name="mean", function=False, method=True)
def _mean_method(self, *args, **kwargs):
    """Tensor.mean(dim=None, keepdim=False, *, dtype=None)"""
    return _sum_or_mean(MEAN, "mean", True, self, args, kwargs)


@public(method=True)
def prod(input, dim=None, keepdim=False, *, dtype=None):
    return dispatch(PROD, input, **_attrs(dim, keepdim, dtype=_np_dt(dtype)))


@public(method=True)
def cumsum(input, dim, *, dtype=None):
    return dispatch(CUMSUM, input, **_attrs(_dim1(dim, input.ndim), False, dtype=_np_dt(dtype)))


@public(method=True)
def cumprod(input, dim, *, dtype=None):
    return dispatch(CUMPROD, input, **_attrs(_dim1(dim, input.ndim), False, dtype=_np_dt(dtype)))


def _dim1(dim, nd):
    return norm_dims(dim, nd)[0]


@public(method=True)
def max(input, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, Tensor):
        return write_outs(maximum(input, dim), out, "maximum")
    if dim is None:
        return write_outs(dispatch(MAX, input), out, "max")
    v, i = dispatch(MAX, input, dim=_dim1(dim, input.ndim), keepdim=keepdim)
    return write_outs(max_rt(v, i), out, "max")


@public(method=True)
def min(input, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, Tensor):
        return write_outs(minimum(input, dim), out, "minimum")
    if dim is None:
        return write_outs(dispatch(MIN, input), out, "min")
    v, i = dispatch(MIN, input, dim=_dim1(dim, input.ndim), keepdim=keepdim)
    return write_outs(min_rt(v, i), out, "min")


@public(method=True)
def amax(input, dim=(), keepdim=False):
    return dispatch(AMAX, input, **_attrs(dim if dim != () else None, keepdim))


@public(method=True)
def amin(input, dim=(), keepdim=False):
    return dispatch(AMIN, input, **_attrs(dim if dim != () else None, keepdim))


@public(method=True)
def argmax(input, dim=None, keepdim=False):
    return dispatch(ARGMAX, input, **_attrs(None if dim is None else _dim1(dim, input.ndim), keepdim))


@public(method=True)
def argmin(input, dim=None, keepdim=False):
    return dispatch(ARGMIN, input, **_attrs(None if dim is None else _dim1(dim, input.ndim), keepdim))


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


@public(method=True)
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(unbiased, bool) and dim is None:
        pass
    return dispatch(VAR, input, correction=_correction(unbiased, correction), **_attrs(dim, keepdim))


@public(method=True)
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return dispatch(STD, input, correction=_correction(unbiased, correction), **_attrs(dim, keepdim))


@public
@torch_op("var_mean")
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


@public
@torch_op("std_mean")
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


@public(method=True)
def logsumexp(input, dim, keepdim=False):
    return dispatch(LOGSUMEXP, input, dim=tuple(dim) if isinstance(dim, list) else dim, keepdim=keepdim)


def norm_dtype(name, a, dtype):
    """torch's dtype= of linalg's norms (`name` is the function its messages name): a floating or complex
    dtype of the input's kind that the input's dtype promotes to (no narrowing); the input is cast to it and
    the norm computed and returned in it (its real counterpart for a complex dtype)."""
    dt = D.to_dtype(dtype)
    src = D.from_np(a.dtype)
    if not (dt.is_floating_point or dt.is_complex):
        raise RuntimeError(f"{name}: dtype should be floating point or complex, but got {D.scalar_name(dt)}")
    if src.is_complex != dt.is_complex:
        kind = "complex" if src.is_complex else "real"
        raise RuntimeError(f"{name}: dtype should be {kind} for {kind} inputs, but got {D.scalar_name(dt)}")
    if D.promote_types(src, dt) is not dt:
        raise RuntimeError(f"{name}: the dtype of the input ({D.scalar_name(src)}) should be convertible without "
                           f"narrowing to the specified dtype ({D.scalar_name(dt)})")
    return dt


@public(method=True)
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    if p == "fro" or p is None:
        p = 2
    if dtype is not None:       # torch's norm is linalg.vector_norm(..., dtype=dtype) here: computed in dtype
        if input._data.dtype.kind not in "fc" and input._data.dtype != D.BF16:
            raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                               f"{D.scalar_name(input._data.dtype)}")
        input = input.to(norm_dtype("linalg.vector_norm", input._data, dtype))
    return dispatch(NORM, input, p=p, **_attrs(dim, keepdim))


@public(method=True)
def dist(input, other, p=2):
    """torch.dist: the p-norm of input - other (broadcast), inside torch's dist region."""
    with record_range("dist", "op", (input, other)):
        return norm(input - other, p)


@public(method=True)
def all(input, dim=None, keepdim=False):
    return dispatch(ALL, input, **_attrs(dim, keepdim)) if dim is not None or keepdim else dispatch(ALL, input)


@public(method=True)
def any(input, dim=None, keepdim=False):
    return dispatch(ANY, input, **_attrs(dim, keepdim)) if dim is not None or keepdim else dispatch(ANY, input)


# --- NaN-ignoring reductions, counts ------------------------------------------------------------------

@op("nansum", save="i", amp="fp32", node_name="NansumBackward0")
def NANSUM(xp, a, dim=None, keepdim=False, dtype=None):
    refuse_complex(a, "nansum on CPU does not support complex inputs", RuntimeError)
    if dtype is None and a.dtype.kind in "bui":
        dtype = np.int64
    if a.dtype.kind == "f" or a.dtype == D.BF16:
        a = xp.where(xp.isnan(a), 0, a).astype(a.dtype, copy=False)
    ax = _axes(a, dim)
    if ax == ():
        ax = None if dim is None else ()
    return a.sum(axis=ax, keepdims=keepdim, dtype=dtype)


@NANSUM.def_backward
def _(ctx, g):
    shape, dims = _red_dims(ctx)
    x = ctx.saved_inputs[0]
    return (reduced_grad(g, shape, dims, ctx.attrs.get("keepdim", False)) * isnan(x).logical_not(),)


@public(method=True)
def nansum(input, dim=None, keepdim=False, *, dtype=None):
    return dispatch(NANSUM, input, **_attrs(dim, keepdim, dtype=_np_dt(dtype)))


@public(method=True)
@torch_op("nanmean")
def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    if D.kind(input._data.dtype) not in "fc":      # (a dtype= does not make an integral input one: torch's)
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{_tname(input._data.dtype)}")
    if dtype is not None:
        _float_dtype_arg("nanmean", _np_dt(dtype))
    cnt = isnan(input).logical_not().sum(dim, keepdim)
    return nansum(input, dim, keepdim, dtype=dtype) / cnt


@public(method=True)
@torch_op("count_nonzero")
def count_nonzero(input, dim=None):
    return ne(input, 0).sum(dim)


@op("bincount")
def BINCOUNT(xp, a, weights=None, minlength=0):
    if a.ndim != 1:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"\"bincount_cpu\" not implemented for '{_tname(a.dtype)}'")
    if a.size and int(_sync.to_host(a.min(), "bincount")) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if weights is not None and weights.shape != a.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    _sync.note(a, "bincount")             # CuPy's bincount reads back its own negative check
    _sync.note(a, "bincount")             # and its max, to size the result
    r = xp.bincount(a, weights=weights, minlength=minlength)
    if weights is None:
        return r.astype(np.int64, copy=False)
    return r.astype(weights.dtype if weights.dtype.kind == "f" else np.float64, copy=False)


@public(method=True)
def bincount(input, weights=None, minlength=0):
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return dispatch(BINCOUNT, input, minlength=int(minlength))
    return dispatch(BINCOUNT, input, weights, minlength=int(minlength))


_NODIM = object()


def _need_dim(name, dim):
    if dim is _NODIM:
        raise TypeError(f'{name}() missing 1 required positional arguments: "dim"')


@public(method=True)
def softmax(input, dim=_NODIM, dtype=None):
    """torch.softmax / Tensor.softmax: nn.functional's op, with dim required."""
    _need_dim("softmax", dim)
    return _nn_ops().softmax(input, dim, dtype)


@public(method=True)
def log_softmax(input, dim=_NODIM, dtype=None):
    _need_dim("log_softmax", dim)
    return _nn_ops().log_softmax(input, dim, dtype)


_NN_OPS = None


def _nn_ops():
    """tensorlib.ops.nn_ops (it imports this module), imported once: a function-level import per call costs
    an import-machinery call per softmax."""
    global _NN_OPS
    if _NN_OPS is None:
        from . import nn_ops
        _NN_OPS = nn_ops
    return _NN_OPS


