"""torch's ops that real programs use beyond the core families: scatter_reduce and index_reduce, mode,
nanmedian, unique_consecutive, histc, histogram, Tensor.unfold, frexp, isin; and torch's small composites
cartesian_prod, combinations, block_diag, vander, tril/triu_indices, chain_matmul, atleast_1d/2d/3d.

Each primitive is a registered op: its kernel on NumPy or CuPy arrays and its backward as torch's formula
written with dispatched ops, under torch's node name, so double backward, hooks and the profiler see what
torch's do. Each composite runs dispatched ops inside torch's profiler region (aten::cartesian_prod, ...).
Values, indices, gradients and errors are compared with torch in
devtools/torch_compat/test_ops2_against_torch.py."""
from __future__ import annotations

import itertools
import math
import warnings

from .. import _dtype as D
from .. import _hooks as _H
from .. import _sync
from ..dispatch import record_range
from ._define import Tensor, dispatch, np, op, public, refuse_complex, write_out, write_outs
from .broadcast import add_at, norm_dims
from .comparison import where
from .creation import (_creation, _dev, _dt, _linspace, _on, check_layout, empty, ones, ones_like,
                       sparse_layout_refusal, tensor, zeros_like)
from .index import (SETITEM, _scatter_bounds, gather, index_add, index_fill, index_select, scatter,
                    scatter_add)
from .linalg import mm
from ._rows import open_grid
from .reduce import named_return_type, return_type
from .shape import cat, stack
from .sorting import MEDIAN, _argsort, _asc, _median_bwd, _select_bwd, unique_result
from .unary_math import exp2

__all__ = ["SCATTER_REDUCE", "INDEX_REDUCE", "MODE", "NANMEDIAN", "NANMEDIAN_DIM", "UNIQUE_CONSECUTIVE", "HISTC",
           "HISTOGRAM", "UNFOLD", "FREXP", "ISIN", "BLOCK_DIAG"]

mode_rt = named_return_type("mode")
nanmedian_rt = named_return_type("nanmedian")


frexp_rt = return_type("frexp", ("mantissa", "exponent"))
histogram_rt = return_type("histogram", ("hist", "bin_edges"))


def _scalar(d):
    return D.scalar_name(d)


def _cfmt(v, data=False):
    """A double as C++'s ostream prints it in torch's messages (%g; a NaN read from the data is x86's default
    NaN, whose sign bit is set: "-nan")."""
    if math.isnan(v):
        return "-nan" if data or math.copysign(1.0, v) < 0 else "nan"
    return "%g" % v


# --- scatter_reduce / index_reduce ------------------------------------------------------------------

_REDUCES = ("sum", "prod", "mean", "amax", "amin")
_UFUNC = {"prod": "multiply", "amax": "maximum", "amin": "minimum"}


def _identity(dt, reduce):
    """The value a reduction starts from where include_self=False leaves the input out."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    big = reduce == "amin"
    if dt.kind == "f":
        return np.inf if big else -np.inf
    if dt.kind == "b":
        return big
    info = np.iinfo(dt)
    return info.max if big else info.min


def _flat_targets(xp, index, dim, shape):
    """The flat (C-order) position in an array of `shape` that each element of `index` scatters to (its own
    position, with index's value along dim)."""
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    grid = open_grid(xp, index.astype(np.int64, copy=False), dim)
    flat = xp.zeros(index.shape, np.int64)
    for d, g in enumerate(grid):
        flat = flat + g * strides[d]
    return flat.reshape(-1)


def _reduce_into(xp, out, tgt, vals, reduce):
    """out[tgt] (op)= vals, repeated targets combined: NumPy's ufunc.at; on CuPy the sums by add_at and the other
    reductions in rounds (values sorted by target; round r combines each target's r-th value, so a round's
    targets are distinct), as many as the most values one target takes."""
    if reduce in ("sum", "mean"):
        add_at(xp, out, tgt, vals)
        return
    fn = getattr(xp, _UFUNC[reduce])
    if xp is np:
        fn.at(out, tgt, vals)
        return
    n = tgt.size
    if n == 0:
        return
    order = _asc(xp, tgt, 0)
    t, v = tgt[order], vals[order]
    new = xp.concatenate([xp.ones((1,), dtype=bool), t[1:] != t[:-1]])
    starts = xp.nonzero(new)[0]
    _sync.note(tgt, "scatter_reduce")
    lengths = xp.diff(xp.concatenate([starts, xp.asarray([n], dtype=starts.dtype)]))
    rounds = int(_sync.to_host(lengths.max(), "scatter_reduce"))
    ident = xp.asarray(_identity(out.dtype, reduce), dtype=out.dtype)
    dest = t[starts]
    for r in range(rounds):      # a target with fewer values combines its identity, leaving it as it is
        take = xp.minimum(starts + r, starts + lengths - 1)
        out[dest] = fn(out[dest], xp.where(r < lengths, v[take], ident))


def _scatter_reduce_array(xp, a, index, src, dim, reduce, include_self):
    """scatter_reduce's result: a new contiguous array (a's values reduced with src's at index)."""
    if reduce not in _REDUCES:
        if reduce not in ("max", "min"):     # torch's legacy names still reach its amax / amin kernel
            raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
        reduce = "a" + reduce
    _scatter_bounds(xp, a, index, dim)
    out = xp.array(a, copy=True, order="C").reshape(a.shape or (1,))   # C order: `flat` below is a view of it
    if a.ndim == 0:
        index, src = index.reshape(1), src.reshape(1)
    s = src[tuple(slice(0, n) for n in index.shape)]
    tgt = _flat_targets(xp, index, dim, out.shape)
    flat = out.reshape(-1)
    if not include_self:
        flat[tgt] = _identity(out.dtype, reduce)
    _reduce_into(xp, flat, tgt, s.reshape(-1).astype(out.dtype, copy=False), reduce)
    if reduce == "mean":
        count = xp.full(flat.shape, 1 if include_self else 0, dtype=np.int64)
        add_at(xp, count, tgt, xp.ones(tgt.shape, dtype=np.int64))
        count = xp.where(count == 0, 1, count)
        if out.dtype.kind == "f":
            flat[...] = flat / count.astype(out.dtype)
        else:           # torch's integer mean rounds down
            flat[...] = xp.floor_divide(flat, count).astype(out.dtype)
    return out.reshape(a.shape)


@op("scatter_reduce", save="io", node_name="ScatterReduceBackward0")
def SCATTER_REDUCE(xp, a, index, src, dim, reduce, include_self=True):
    return _scatter_reduce_array(xp, a, index, src, dim, reduce, include_self)


def _scatter_reduce_ip(xp, a, index, src, dim, reduce, include_self=True):
    a[...] = _scatter_reduce_array(xp, a, index, src, dim, reduce, include_self)


SCATTER_REDUCE_ = op("scatter_reduce_", inplace_of=SCATTER_REDUCE)(_scatter_reduce_ip)


def _pad_to(gs, shape):
    """A gradient of index's shape as one of src's (larger) shape: zeros past index's extent."""
    if tuple(gs.shape) == tuple(shape):
        return gs
    return dispatch(SETITEM, gs.new_zeros(tuple(shape)), gs, idx=tuple(slice(0, n) for n in gs.shape))


def _reduce_backward(ctx, g, pick, spread, put, reduce_again, count_like):
    """torch's scatter_reduce_backward / index_reduce_backward, one formula for both: `pick(t)` reads t at
    the index (gather / index_select), `spread(t, v)` adds v into t at it (scatter_add / index_add), `put(t)`
    zeroes t there (scatter / index_fill) and `reduce_again(self, src)` is the forward op itself."""
    a, _, src = ctx.saved_inputs
    result = ctx.saved_output
    reduce, inc = ctx.attrs["reduce"], ctx.attrs.get("include_self", True)
    reduce = "a" + reduce if reduce in ("max", "min") else reduce
    src = count_like(src)
    if reduce == "sum":
        ga, gs = g, pick(g)
    elif reduce == "prod":
        # the products without each zero of self, and without each src value that is its target's only zero
        masked_self = a.masked_fill(a == 0, 1)
        ga = g * reduce_again(masked_self, src) / masked_self
        src_zero = src == 0
        n_zeros = pick(spread(zeros_like(a), src_zero.to(a.dtype)))
        single = src_zero & (n_zeros == 1)
        masked_src_result = reduce_again(a, src.masked_fill(single, 1))
        gs = where(single, pick(g * masked_src_result), pick(g * result) / src.masked_fill(src_zero, 1))
    elif reduce == "mean":
        n = spread(ones_like(g) if inc else zeros_like(g), ones_like(src))
        n = n.masked_fill(n == 0, 1)
        ga, gs = g / n, pick(g) / pick(n)
    else:       # amax / amin: ties share the gradient evenly, the input's value with src's
        value = pick(result)
        self_is = (a == result).to(a.dtype)
        src_is = (src == value).to(a.dtype)
        shared = g / spread(self_is, src_is)
        ga, gs = self_is * shared, src_is * pick(shared)
    if not inc:
        ga = put(ga)
    return ga, None, gs


@SCATTER_REDUCE.def_backward
def _(ctx, g):
    dim, index = ctx.attrs["dim"], ctx.saved_inputs[1]
    reduce, inc = ctx.attrs["reduce"], ctx.attrs.get("include_self", True)
    src_shape = ctx.saved_inputs[2].shape
    ga, _, gs = _reduce_backward(
        ctx, g, lambda t: gather(t, dim, index), lambda t, v: scatter_add(t, dim, index, v),
        lambda t: scatter(t, dim, index, value=0.0),
        lambda s, v: dispatch(SCATTER_REDUCE, s, index, v, dim=dim, reduce=reduce, include_self=inc),
        lambda s: s if tuple(s.shape) == tuple(index.shape) else s[tuple(slice(0, n) for n in index.shape)])
    return ga, None, _pad_to(gs, src_shape)


def _scatter_reduce_args(name, input, dim, index, src, reduce):
    """torch's checks of scatter_reduce's operands, in its order and words."""
    if not isinstance(reduce, str):
        raise TypeError(f"{name}(): argument 'reduce' must be str, not {type(reduce).__name__}")
    if index.dtype not in (D.int64, D.int32):
        raise RuntimeError("scatter(): Expected dtype int32/int64 for index")
    if src.dtype != input.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    if index.ndim != input.ndim or index.ndim != src.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    d = norm_dims(dim, input.ndim)[0]
    for k in range(index.ndim):
        if index.shape[k] > src.shape[k] or (k != d and index.shape[k] > input.shape[k]):
            raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self {list(input.shape)} "
                               f"apart from dimension {d} and to be no larger size than src {list(src.shape)}")
    return d


@public(method=True)
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True, out=None):
    d = _scatter_reduce_args("scatter_reduce", input, dim, index, src, reduce)
    if input.ndim == 0:     # as one element (the gradient's gathers and scatters need a dimension)
        r = dispatch(SCATTER_REDUCE, input.reshape(1), index.reshape(1), src.reshape(1), dim=0, reduce=reduce,
                     include_self=bool(include_self)).reshape(())
    else:
        r = dispatch(SCATTER_REDUCE, input, index, src, dim=d, reduce=reduce, include_self=bool(include_self))
    return write_out(r, out)


@public(method=True, function=False)
def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    d = _scatter_reduce_args("scatter_reduce_", self, dim, index, src, reduce)
    return dispatch(SCATTER_REDUCE_, self, index, src, dim=d, reduce=reduce, include_self=bool(include_self))


def _index_reduce_array(xp, a, index, src, dim, reduce, include_self):
    """index_reduce as a scatter_reduce: index along dim, the same for every other position of src."""
    n = a.shape[dim] if a.ndim else 1
    if xp is np and index.size and (int(index.min()) < 0 or int(index.max()) >= n):    # no negative index either
        raise IndexError("index out of range in self")
    index = index.reshape(-1).astype(np.int64, copy=False)
    if a.ndim == 0:
        return _scatter_reduce_array(xp, a, index.reshape(()), src.reshape(()), 0, reduce, include_self)
    full = xp.broadcast_to(index.reshape((1,) * dim + (-1,) + (1,) * (src.ndim - dim - 1)), src.shape)
    return _scatter_reduce_array(xp, a, full, src, dim, reduce, include_self)


@op("index_reduce", save="io", node_name="IndexReduceBackward0")
def INDEX_REDUCE(xp, a, index, src, dim, reduce, include_self=True):
    return _index_reduce_array(xp, a, index, src, dim, reduce, include_self)


def _index_reduce_ip(xp, a, index, src, dim, reduce, include_self=True):
    a[...] = _index_reduce_array(xp, a, index, src, dim, reduce, include_self)


INDEX_REDUCE_ = op("index_reduce_", inplace_of=INDEX_REDUCE)(_index_reduce_ip)


@INDEX_REDUCE.def_backward
def _(ctx, g):
    dim, index = ctx.attrs["dim"], ctx.saved_inputs[1]
    reduce, inc = ctx.attrs["reduce"], ctx.attrs.get("include_self", True)
    if index.ndim == 0:
        index = index.reshape(1)
    return _reduce_backward(
        ctx, g, lambda t: index_select(t, dim, index), lambda t, v: index_add(t, dim, index, v),
        lambda t: index_fill(t, dim, index, 0.0),
        lambda s, v: dispatch(INDEX_REDUCE, s, index, v, dim=dim, reduce=reduce, include_self=inc), lambda s: s)


_index_reduce_warned = False


def _index_reduce_args(input, dim, index, source, reduce):
    """torch's checks of index_reduce's operands (its in-place kernel's words, which both forms report), and
    its one-time beta warning."""
    global _index_reduce_warned
    if not _index_reduce_warned:
        _index_reduce_warned = True
        warnings.warn("index_reduce() is in beta and the API may change at any time.", UserWarning, stacklevel=3)
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    d = norm_dims(dim, input.ndim)[0]
    if index.ndim > 1:
        raise IndexError(f"index_reduce_(): Index is supposed to be a vector, but got dim: {index.ndim} with type: "
                         f"{_scalar(index.dtype)} and size: {list(index.shape)}")
    if index.dtype not in (D.int64, D.int32):
        raise RuntimeError(f"index_reduce_(): Expected dtype int32/int64 for index but got: {_scalar(index.dtype)}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"index_reduce_(): self ({_scalar(input.dtype)}) and source ({_scalar(source.dtype)}) "
                           f"must have the same scalar type")
    if source.ndim != input.ndim or any(k != d and source.shape[k] != input.shape[k] for k in range(input.ndim)):
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified dimension. Got "
                           f"self.shape = {list(input.shape)} source.shape = {list(source.shape)}")
    n_src = source.shape[d] if source.ndim else 1
    if index.numel() != n_src:
        raise RuntimeError(f"index_reduce_(): Number of indices ({index.numel()}) should be equal to "
                           f"source.size(dim): ({n_src}), for dim: {d}")
    return d


@public(method=True)
def index_reduce(input, dim, index, source, reduce, *, include_self=True, out=None):
    d = _index_reduce_args(input, dim, index, source, reduce)
    r = dispatch(INDEX_REDUCE, input, index, source, dim=d, reduce=reduce, include_self=bool(include_self))
    return write_out(r, out)


@public(method=True, function=False)
def index_reduce_(self, dim, index, source, reduce, *, include_self=True):
    d = _index_reduce_args(self, dim, index, source, reduce)
    return dispatch(INDEX_REDUCE_, self, index, source, dim=d, reduce=reduce, include_self=bool(include_self))


# --- mode, nanmedian, unique_consecutive --------------------------------------------------------------

@op("mode", save="io", nondiff_outputs=(1,), node_name="ModeBackward0")
def MODE(xp, a, dim=-1, keepdim=False):
    """The most frequent value along dim, the smallest of those equally frequent, and the last index holding
    it (torch's CPU kernel: a sort, then the longest run of equal values; each NaN is a run of its own)."""
    refuse_complex(a, "\"mode_cpu\" not implemented for '{dtype}'")
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    n = a.shape[dim]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {dim} to have non-zero size.")
    x = xp.moveaxis(a, dim, -1)
    lead = x.shape[:-1]
    x = x.reshape(-1, n)
    order = _argsort(xp, x, 1, False)
    s = xp.take_along_axis(x, order, axis=1)
    differ = s[:, 1:] != s[:, :-1]
    edge = xp.ones((x.shape[0], 1), dtype=bool)
    start = xp.concatenate([edge, differ], axis=1).reshape(-1)
    end = xp.concatenate([differ, edge], axis=1).reshape(-1)
    run = xp.cumsum(start) - 1
    lengths = xp.zeros(run.shape, dtype=np.int64)     # each run's length (an add, where bincount would sync)
    add_at(xp, lengths, run, xp.ones(run.shape, dtype=np.int64))
    lengths = lengths[run]
    col = xp.argmax(xp.where(end, lengths, 0).reshape(x.shape), axis=1)[:, None]    # first longest run
    vals = xp.take_along_axis(s, col, axis=1).reshape(lead)
    idx = xp.take_along_axis(order, col, axis=1).reshape(lead)
    if keepdim:
        vals, idx = xp.expand_dims(vals, dim), xp.expand_dims(idx, dim)
    return vals, idx


MODE.def_backward(_select_bwd)


@public(method=True)
def mode(input, dim=-1, keepdim=False, *, out=None):
    v, i = dispatch(MODE, input, dim=norm_dims(dim, input.ndim)[0], keepdim=bool(keepdim))
    return write_outs(mode_rt(v, i), out, "mode")


def _nanmedian_k(xp, a, dim=None, keepdim=False):
    """median of the values that are not NaN (NaN where every one is): the lower of the two middle values, as
    median; along dim its index is that value's place in the stable sort, a row of NaN gives its first NaN."""
    refuse_complex(a, "\"median_cpu\" not implemented for '{dtype}'")
    if a.dtype.kind != "f":
        return MEDIAN.kernel(xp, a, dim, keepdim)
    if dim is None:
        flat = a.reshape(-1)
        if flat.size == 0:
            return xp.asarray(xp.nan, dtype=a.dtype)
        s = xp.sort(flat)       # NaN sorts last
        k = (flat.size - xp.isnan(flat).sum() - 1) // 2      # -1 (the last, a NaN) when all are NaN
        return xp.asarray(s[k], dtype=a.dtype).copy()
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    n = a.shape[dim]
    if n == 0:
        raise IndexError(f"median(): Expected reduction dim {dim} to have non-zero size.")
    order = _argsort(xp, a, dim, False)
    count = (~xp.isnan(a)).sum(axis=dim, keepdims=True)
    k = xp.maximum((count - 1) // 2, 0).astype(np.int64)
    idx = xp.take_along_axis(order, k, axis=dim)
    vals = xp.take_along_axis(a, idx, axis=dim)
    if not keepdim:
        vals, idx = xp.squeeze(vals, axis=dim), xp.squeeze(idx, axis=dim)
    return vals, idx


# torch's two overloads, two nodes, as median's: the whole tensor's spreads the gradient over the elements equal
# to the result, the dim form sends it to the index it returns
NANMEDIAN = op("nanmedian", save="io", node_name="NanmedianBackward0")(_nanmedian_k)
NANMEDIAN.def_backward(_median_bwd)
NANMEDIAN_DIM = op("nanmedian_dim", save="io", nondiff_outputs=(1,), node_name="NanmedianBackward1")(_nanmedian_k)
NANMEDIAN_DIM.def_backward(_median_bwd)


@public(method=True)
def nanmedian(input, dim=None, keepdim=False, *, out=None):
    if dim is None:
        return write_outs(dispatch(NANMEDIAN, input), out, "nanmedian")
    v, i = dispatch(NANMEDIAN_DIM, input, dim=norm_dims(dim, input.ndim)[0], keepdim=bool(keepdim))
    return write_outs(nanmedian_rt(v, i), out, "nanmedian")


@op("unique_consecutive")
def UNIQUE_CONSECUTIVE(xp, a, return_inverse=False, return_counts=False, dim=None):
    """The first of each run of equal elements (of equal slices along dim); NaN equals nothing, as in torch."""
    refuse_complex(a, "\"unique\" not implemented for '{dtype}'")
    if dim is None:
        x = a.reshape(-1, 1)
        n = x.shape[0]
    else:
        n = a.shape[dim]
        x = xp.moveaxis(a, dim, 0).reshape(n, a.size // n if n else 0)
    if n == 0:
        return a.reshape(-1).copy() if dim is None else a.copy(), xp.zeros((0,), np.int64), xp.zeros((0,), np.int64)
    differ = (x[1:] != x[:-1]).any(axis=1) if x.shape[1] else xp.zeros((n - 1,), dtype=bool)
    new = xp.concatenate([xp.ones((1,), dtype=bool), differ])
    starts = xp.nonzero(new)[0]          # the one host sync: how many runs there are
    _sync.note(a, "unique_consecutive")
    vals = x[starts, 0] if dim is None else xp.take(a, starts, axis=dim)
    inv = (xp.cumsum(new) - 1).astype(np.int64)
    if dim is None:
        inv = inv.reshape(a.shape)
    counts = xp.diff(xp.concatenate([starts, xp.asarray([n], dtype=starts.dtype)])).astype(np.int64)
    return vals, inv, counts


@public(method=True)
def unique_consecutive(input, *args, return_inverse=False, return_counts=False, dim=None):
    """torch's reading of positional arguments, which its boolean dispatch swaps: the first after input is
    return_counts, the second return_inverse, the third dim (`unique_consecutive(x, True)` returns counts)."""
    if len(args) > 3:
        raise TypeError(f"unique_consecutive() takes from 1 to 4 positional arguments but {len(args) + 1} were given")
    if len(args) > 0:
        return_counts = args[0]
    if len(args) > 1:
        return_inverse = args[1]
    if len(args) > 2:
        dim = args[2]
    d = None if dim is None else norm_dims(dim, input.ndim)[0]
    vals, inv, counts = dispatch(UNIQUE_CONSECUTIVE, input, return_inverse=bool(return_inverse),
                                 return_counts=bool(return_counts), dim=d)
    return unique_result(vals, inv, counts, return_inverse, return_counts)


# --- histc, histogram ------------------------------------------------------------------------------

def _float_only(a, kernel):
    if a.dtype.kind != "f":
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_scalar(a.dtype)}'")


def _bins_positive(bins):
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")


def _data_range(xp, x, what):
    lo, hi = (float(v) for v in _sync.to_host(xp.stack([x.min(), x.max()]), what))   # one sync on CUDA
    return lo, hi


def _count(xp, x, pos, inside, nbins, weight, dt):
    """The histogram of bin positions `pos` of the elements `inside` the edges (weighted, or counted)."""
    pos = xp.minimum(xp.where(inside, pos, 0), nbins - 1).reshape(-1)
    w = (inside.astype(dt) if weight is None else xp.where(inside, weight.reshape(-1), 0)).reshape(-1)
    if xp is np:
        return np.bincount(pos, weights=w, minlength=nbins)[:nbins].astype(dt)
    hist = xp.zeros((nbins,), dtype=dt)     # CuPy's bincount reads its input's min and max back: an add, no sync
    add_at(xp, hist, pos, w.astype(dt, copy=False))
    return hist


@op("histc")
def HISTC(xp, a, bins=100, min=0.0, max=0.0):
    """torch.histc: `bins` equal bins over [min, max] (the data's range when both are equal), elements outside
    ignored, the last bin holding max; an element's bin is torch's linear interpolation in the input's dtype,
    (x - min) * bins / (max - min)."""
    _float_only(a, "histogram_cpu")
    _bins_positive(bins)
    lo, hi = float(min), float(max)
    from_data = lo == hi and a.size > 0
    if from_data:
        lo, hi = _data_range(xp, a, "histc")
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{_cfmt(lo, from_data)}, {_cfmt(hi, from_data)}] is not finite")
    if not lo < hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    dt = a.dtype
    x = a.reshape(-1)
    lo_, hi_ = dt.type(lo), dt.type(hi)
    inside = (x >= lo_) & (x <= hi_)
    pos = ((x - lo_) * dt.type(bins) / (hi_ - lo_))
    pos = xp.where(inside, pos, 0).astype(np.int64)
    return _count(xp, x, pos, inside, bins, None, dt)


@public(method=True)
def histc(input, bins=100, min=0, max=0, *, out=None):
    return write_out(dispatch(HISTC, input, bins=int(bins), min=float(min), max=float(max)), out)


@op("histogram")
def HISTOGRAM(xp, a, bins, weight, range=None, density=False):
    """torch.histogram: bins an int (equal bins over `range`, the data's by default, edges torch's linspace in
    the input's dtype) or the edges themselves; an element's bin is the last edge at or below it, the last
    bin holding the right edge, elements outside ignored."""
    _float_only(a, "histogramdd")
    dt = a.dtype
    x = a.reshape(-1)
    if isinstance(bins, (int, np.integer)):
        _bins_positive(bins)
        from_data = range is None and x.size > 0
        lo, hi = (float(range[0]), float(range[1])) if range is not None else \
            (_data_range(xp, x, "histogram") if from_data else (0.0, 1.0))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise RuntimeError(f"torch.histogramdd: dimension 0's range [{_cfmt(lo, from_data)}, "
                               f"{_cfmt(hi, from_data)}] is not finite")
        if lo > hi:
            raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {_cfmt(lo)} max "
                               f"{_cfmt(hi)} for dimension 0")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = _linspace(xp, lo, hi, int(bins) + 1, dt)
    else:
        if bins.dtype != dt:
            raise RuntimeError(f"torch.histogramdd: input tensor and bins tensors should have the same dtype, but "
                               f"got input with dtype {_dtname(dt)} and bins for dimension 0 with dtype "
                               f"{_dtname(bins.dtype)}")
        edges = bins.reshape(-1).copy()
    if weight is not None and tuple(weight.shape) != tuple(a.shape):
        raise RuntimeError(f"torch.histogramdd: if weight tensor is provided it should have the same shape as the "
                           f"input tensor excluding its innermost dimension, but got input with shape "
                           f"[{x.size}, 1] and weight with shape {list(weight.shape)}")
    nbins = edges.shape[0] - 1
    if nbins < 1:
        return xp.zeros((max(nbins, 0),), dtype=dt), edges
    inside = (x >= edges[0]) & (x <= edges[-1])
    pos = xp.searchsorted(edges, x, side="right").astype(np.int64) - 1
    hist = _count(xp, x, pos, inside, nbins, weight, dt)
    if density:
        hist = hist / hist.sum()
        hist = (hist / xp.diff(edges)).astype(dt)
    return hist, edges


def _dtname(dt):
    """A dtype as torch's C++ names it in messages (float, double, ...)."""
    return {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16"}.get(
        np.dtype(dt).name, np.dtype(dt).name)


@public(method=True)
def histogram(input, bins, *, range=None, weight=None, density=False, out=None):
    if isinstance(bins, Tensor):
        b = bins
    else:
        b = int(bins)
    rng = None if range is None else (float(range[0]), float(range[1]))
    hist, edges = dispatch(HISTOGRAM, input, b, weight, range=rng, density=bool(density))
    return write_outs(histogram_rt(hist, edges), out, "histogram")


# --- Tensor.unfold ---------------------------------------------------------------------------------

def _unfold_view(xp, a, dimension, size, step):
    if a.ndim == 0:
        return a.reshape(1)
    n = a.shape[dimension]
    shape = a.shape[:dimension] + ((n - size) // step + 1,) + a.shape[dimension + 1:] + (size,)
    st = a.strides
    strides = st[:dimension] + (st[dimension] * step,) + st[dimension + 1:] + (st[dimension],)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)


@op("unfold", view=True, node_name="UnfoldBackward0")
def UNFOLD(xp, a, dimension, size, step):
    """Every window of `size` elements along dimension, `step` apart, as a new last dimension: a strided view
    (torch's as_strided, in a profile)."""
    if _H.range_hooks:
        return _H.op_step("as_strided", _unfold_view, xp, a, dimension, size, step)
    return _unfold_view(xp, a, dimension, size, step)


@op("unfold_backward", node_name="UnfoldBackwardBackward0")
def UNFOLD_BACKWARD(xp, g, shape, dimension, size, step):
    """The windows' gradients added back into place: one strided slice per position in the window (each
    slice's elements distinct, so a plain addition)."""
    if len(shape) == 0:
        return g.reshape(()).copy()
    z = xp.zeros(shape, dtype=g.dtype)
    nwin = g.shape[dimension]
    for k in range(size):
        sl = [slice(None)] * len(shape)
        sl[dimension] = slice(k, k + step * (nwin - 1) + 1, step)
        z[tuple(sl)] += g[..., k]
    return z


UNFOLD_BACKWARD.def_backward(lambda ctx, gg: (dispatch(UNFOLD, gg, dimension=ctx.attrs["dimension"],
                                                       size=ctx.attrs["size"], step=ctx.attrs["step"]),))
UNFOLD.def_backward(lambda ctx, g: (dispatch(UNFOLD_BACKWARD, g, shape=tuple(ctx.in_meta[0][0]), **ctx.attrs),))


@public(method=True, function=False)
def unfold(self, dimension, size, step):
    d = norm_dims(dimension, self.ndim)[0]
    n = self.shape[d] if self.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    return dispatch(UNFOLD, self, dimension=d, size=int(size), step=int(step))


# --- frexp, isin -----------------------------------------------------------------------------------

@op("frexp", save="o", nondiff_outputs=(1,), node_name="FrexpBackward0")
def FREXP(xp, a):
    """mantissa in [0.5, 1) (its sign the input's) and int32 exponent with input = mantissa * 2**exponent."""
    if a.dtype.kind != "f":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    m, e = xp.frexp(a)
    return m, e.astype(np.int32)


# torch's formula, grad / exponent.exp2(): the int32 exponent's exp2 is float32 (so an exponent below -149 makes
# the gradient inf, as torch's)
FREXP.def_backward(lambda ctx, g, _ge=None: (g / exp2(ctx.saved_output[1]),))


@public(method=True)
def frexp(input, *, out=None):
    m, e = dispatch(FREXP, input)
    if out is not None:
        write_out(m, out[0], "frexp")
        write_out(e, out[1], "frexp")
        return frexp_rt(out[0], out[1])
    return frexp_rt(m, e)


@op("isin")
def ISIN(xp, elements, test_elements, assume_unique=False, invert=False):
    refuse_complex(elements, "Unsupported input type encountered for isin(): {dtype}", RuntimeError)
    return xp.isin(elements, test_elements, assume_unique, invert)


_ISIN_SIGNATURES = (" * (Tensor elements, Tensor test_elements, *, bool assume_unique = False, bool invert = False, "
                    "Tensor out = None)\n"
                    " * (Number element, Tensor test_elements, *, bool assume_unique = False, bool invert = False, "
                    "Tensor out = None)\n"
                    " * (Tensor elements, Number test_element, *, bool assume_unique = False, bool invert = False, "
                    "Tensor out = None)\n")


@public
def isin(elements, test_elements, *, assume_unique=False, invert=False, out=None):
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError(f"isin() received an invalid combination of arguments - got ({type(elements).__name__}, "
                        f"{type(test_elements).__name__}), but expected one of:\n{_ISIN_SIGNATURES}")
    if not isinstance(elements, Tensor):
        elements = tensor(elements, device=test_elements.device)
    if not isinstance(test_elements, Tensor):
        test_elements = tensor(test_elements, device=elements.device)
    r = dispatch(ISIN, elements, test_elements, assume_unique=bool(assume_unique), invert=bool(invert))
    return write_out(r, out)


# --- composites: cartesian_prod, combinations, block_diag, vander, tril/triu_indices, chain_matmul, atleast

def _one_d(t):
    if t.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")


@public
def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, in order: torch's meshgrid (ij) flattened and
    stacked as columns; one tensor is returned as it is."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        _one_d(t)
    if len(tensors) == 1:
        return tensors[0]
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    if any(t.dtype != tensors[0].dtype for t in tensors):
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    with record_range("cartesian_prod", "op", tensors):
        n = len(tensors)
        shape = tuple(t.shape[0] for t in tensors)
        grids = [t.reshape(tuple(-1 if i == j else 1 for j in range(n))).expand(*shape) for i, t in enumerate(tensors)]
        return stack([g.flatten() for g in grids], 1)


@public
def combinations(input, r=2, with_replacement=False):
    """The r-length combinations of a 1-D tensor's elements (as itertools' combinations, or with replacement),
    one per row, in torch's order: each column the input indexed by that column's positions, stacked."""
    _one_d(input)
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    with record_range("combinations", "op", (input,)):
        if r == 0:
            return empty(0, dtype=input.dtype, device=input.device)
        pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
        rows = np.asarray(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
        cols = [input[tensor(rows[:, k], device=input.device)] for k in range(r)]
        return stack(cols, 1)


def _block_shape(shape):
    return tuple(shape) if len(shape) == 2 else ((1, shape[0]) if len(shape) == 1 else (1, 1))


@op("block_diag", listarg=True, node_name="BlockDiagBackward0")
def BLOCK_DIAG(xp, arrays, dtype=None):
    """The inputs (0-d: 1x1, 1-D: one row) down the diagonal of a zero matrix of their promoted dtype."""
    shapes = [_block_shape(a.shape) for a in arrays]
    out = xp.zeros((sum(s[0] for s in shapes), sum(s[1] for s in shapes)), dtype=dtype)
    r = c = 0
    for a, (h, w) in zip(arrays, shapes):
        out[r:r + h, c:c + w] = a.reshape(h, w)
        r, c = r + h, c + w
    return out


@BLOCK_DIAG.def_backward
def _(ctx, g):
    grads = []
    r = c = 0
    for shape, dt in ctx.in_meta:
        h, w = _block_shape(shape)
        part = g[r:r + h, c:c + w].reshape(tuple(shape))
        grads.append(part if part.dtype.np == dt or np.dtype(dt).kind != "f" else part.to(D.from_np(dt)))
        r, c = r + h, c + w
    return tuple(grads)


@public
def block_diag(*tensors):
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t.ndim} dimensions")
    if not tensors:
        return empty(1, 0)
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = D._lattice(dt, t.dtype)
    return dispatch(BLOCK_DIAG, list(tensors), dtype=dt.np)


@public
def vander(x, N=None, increasing=False):
    """Columns x**0, x**1, ... (decreasing powers unless increasing), as torch builds it: ones, then the
    cumulative product of x repeated, flipped; integer and bool inputs give int64."""
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    dt = x.dtype if x.dtype.is_floating_point else D.int64
    with record_range("vander", "op", (x,)):
        if n == 0:
            return empty(x.shape[0], 0, dtype=dt, device=x.device)
        cols = [ones(x.shape[0], 1, dtype=dt, device=x.device)]
        if n > 1:
            cols.append(x.to(dt).unsqueeze(1).expand(x.shape[0], n - 1).cumprod(1))
        res = cat(cols, 1) if len(cols) > 1 else cols[0]
        return res if increasing else res.flip(1)


def _tri_indices(name, lower):
    def kernel(xp, row, col, offset, dtype, device):
        fn = np.tril_indices if lower else np.triu_indices
        idx = np.stack(fn(row, offset, col)).astype(dtype) if row and col else np.zeros((2, 0), dtype)
        return _on(device, lambda m: m.asarray(idx))
    kernel.__name__ = name
    return _creation(name, kernel)


TRIL_INDICES = _tri_indices("tril_indices", True)
TRIU_INDICES = _tri_indices("triu_indices", False)


def _tri_args(name, row, col, dtype):
    if row < 0:
        raise RuntimeError(f"row must be non-negative, got{row}")
    if col < 0:
        raise RuntimeError(f"col must be non-negative, got{col}")
    dt = D.int64 if dtype is None else D.to_dtype(dtype)
    if dt not in (D.int64, D.int32):
        raise NotImplementedError(f"\"{name}\" not implemented for '{_scalar(dt.np)}'")
    return _dt(dt)


@public
def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    if layout is not None and check_layout(layout, "tril_indices"):
        raise sparse_layout_refusal("tril_indices")
    return dispatch(TRIL_INDICES, row=int(row), col=int(col), offset=int(offset),
                    dtype=_tri_args("tril_indices", row, col, dtype), device=_dev(device))


@public
def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    if layout is not None and check_layout(layout, "triu_indices"):
        raise sparse_layout_refusal("triu_indices")
    return dispatch(TRIU_INDICES, row=int(row), col=int(col), offset=int(offset),
                    dtype=_tri_args("triu_indices", row, col, dtype), device=_dev(device))


_chain_matmul_warned = False


def _multi_dot(ms):
    """torch.linalg.multi_dot's order: the cheaper of the two for three matrices, the optimal chain (dynamic
    programming on the sizes) for more."""
    n = len(ms)
    if n == 2:
        return mm(ms[0], ms[1])
    if n == 3:
        a, b, c, d = ms[0].shape[0], ms[1].shape[0], ms[2].shape[0], ms[2].shape[1]
        if a * c * (b + d) > b * d * (a + c):
            return mm(ms[0], mm(ms[1], ms[2]))
        return mm(mm(ms[0], ms[1]), ms[2])
    p = [m.shape[0] for m in ms] + [ms[-1].shape[1]]
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = -1
            for k in range(i, j):
                q = cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1]
                if cost[i][j] == -1 or q < cost[i][j]:
                    cost[i][j], split[i][j] = q, k

    def chain(i, j):
        if i == j:
            return ms[i]
        k = split[i][j]
        return mm(chain(i, k), chain(k + 1, j))
    return chain(0, n - 1)


@public
def chain_matmul(*matrices, out=None):
    """Deprecated in torch (its one-time warning): the matrices' product, in linalg.multi_dot's order."""
    global _chain_matmul_warned
    if not _chain_matmul_warned:
        _chain_matmul_warned = True
        warnings.warn("torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
                      "torch.linalg.multi_dot instead, which accepts a list of two or more tensors rather than "
                      "multiple parameters.", UserWarning, stacklevel=2)
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for m in matrices:
        if m.ndim != 2:
            raise RuntimeError(f"Tensor dimension is {m.ndim}, expected 2 instead.")
    with record_range("chain_matmul", "op", matrices):
        if len(matrices) == 1:
            return write_out(matrices[0].clone(), out)
        r = _multi_dot(list(matrices))      # the product viewed as the result's shape, as torch's multi_dot ends
        return write_out(r.view(r.shape[0], r.shape[1]), out)


def _atleast(name, fn, tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
        single = False
    else:
        single = len(tensors) == 1
    for t in tensors:
        if not isinstance(t, Tensor):
            bad = f"      didn't match because some of the arguments have invalid types: (!{type(t).__name__}!)\n"
            raise TypeError(f"{name}() received an invalid combination of arguments - got ({type(t).__name__}), but "
                            f"expected one of:\n * (Tensor input)\n{bad} * (tuple of Tensors tensors)\n{bad}")
    with record_range(name, "op", tensors):     # torch's one region, for one tensor or a sequence
        out = tuple(fn(t) for t in tensors)
    return out[0] if single else out


def _at1(t):
    return t.reshape(1) if t.ndim == 0 else t


def _at2(t):
    return t.reshape(1, 1) if t.ndim == 0 else (t.unsqueeze(0) if t.ndim == 1 else t)


def _at3(t):
    if t.ndim == 0:
        return t.reshape(1, 1, 1)
    if t.ndim == 1:
        return t.unsqueeze(0).unsqueeze(-1)
    return t.unsqueeze(-1) if t.ndim == 2 else t


@public
def atleast_1d(*tensors):
    """Each tensor with at least one dimension (a 0-d one reshaped to one element); one tensor in, one out,
    several (or a list) in, a tuple out."""
    return _atleast("atleast_1d", _at1, tensors)


@public
def atleast_2d(*tensors):
    return _atleast("atleast_2d", _at2, tensors)


@public
def atleast_3d(*tensors):
    return _atleast("atleast_3d", _at3, tensors)

