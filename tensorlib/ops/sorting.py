"""Sorting and order statistics: sort, argsort, topk, median, unique, searchsorted, bucketize.

Sorts are stable everywhere (NumPy's kind="stable"; CuPy's sort is a stable radix sort), so equal
values keep their order; descending sorts keep it too (as torch's stable=True), NaN sorts as the
largest value, as in torch.
"""
from __future__ import annotations


from .. import _sync
from .broadcast import norm_dims
from ._define import Tensor, dispatch, np, op, public, refuse_complex, torch_op, write_outs
from .creation import tensor
from .index import scatter_add, gather
from .reduce import _select_bwd, named_return_type


topk_rt = named_return_type("topk")
sort_rt = named_return_type("sort")
median_rt = named_return_type("median")


def _asc(xp, a, axis):
    if xp is np:
        return np.argsort(a, axis=axis, kind="stable")
    return xp.argsort(a, axis=axis)      # CuPy's sort is stable (and takes no kind= on older versions)


def _argsort(xp, a, axis, descending):
    """Stable argsort along `axis`; descending keeps equal values in their original order."""
    if not descending:
        return _asc(xp, a, axis).astype(np.int64, copy=False)
    n = a.shape[axis]
    i = _asc(xp, xp.flip(a, axis), axis)
    return ((n - 1) - xp.flip(i, axis)).astype(np.int64, copy=False)


def _first(xp, i, k, axis):
    sl = [slice(None)] * i.ndim
    sl[axis] = slice(0, k)
    return i[tuple(sl)]


def _scatter_bwd(ctx, g, _gi=None):
    """The values' gradient goes back to the positions the indices name (unique along dim)."""
    _, idx = ctx.saved_output
    shape = ctx.in_meta[0][0]
    if len(shape) == 0:
        return (g.reshape(()),)
    return (scatter_add(g.new_zeros(shape), ctx.attrs["dim"], idx, g),)


@op("sort", save="o", nondiff_outputs=(1,), node_name="SortBackward0")
def SORT(xp, a, dim=-1, descending=False, stable=False):
    refuse_complex(a, " Sort does not support complex dtypes on CPU", RuntimeError)
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    idx = _argsort(xp, a, dim, descending)
    return xp.take_along_axis(a, idx, axis=dim), idx


SORT.def_backward(_scatter_bwd)


@op("topk", save="o", nondiff_outputs=(1,), node_name="TopkBackward0")
def TOPK(xp, a, k, dim=-1, largest=True, sorted=True):
    refuse_complex(a, " topk does not support complex dtypes on CPU", RuntimeError)
    n = a.shape[dim] if a.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    if a.ndim == 0:
        return (a.copy(), xp.zeros((), dtype=np.int64)) if k else (a.reshape(1)[:0], xp.zeros((0,), np.int64))
    if xp is np and a.dtype.kind == "f" and 0 < k <= n // 4:
        idx = _topk_selected(a, k, dim, largest)
        if idx is not None:
            return np.take_along_axis(a, idx, axis=dim), idx
    idx = _first(xp, _argsort(xp, a, dim, largest), k, dim)
    return xp.take_along_axis(a, idx, axis=dim), idx


def _topk_selected(a, k, dim, largest):
    """topk's indices as the full stable sort gives them (value order, equal values by index), from a partial
    selection: argpartition finds the k-th key of each row, the rows' keys below it and the first of those
    equal to it make the k (one pass each), and only those k are sorted. None where NaN is present (the sort
    places it; the selection does not). (256, 512), k=5, float32: 6.6 ms by the full sort."""
    a2 = np.moveaxis(a, dim, -1)
    key = np.negative(a2) if largest else a2
    if np.isnan(key).any():
        return None
    kth = np.partition(key, k - 1, axis=-1)[..., k - 1:k]      # each row's k-th smallest key
    chosen = key <= kth
    n = key.shape[-1]
    if np.add.reduce(chosen, axis=None, dtype=np.int64) != chosen.size // n * k:     # ties at the k-th key
        below = key < kth
        at = key == kth
        room = k - np.add.reduce(below, axis=-1, keepdims=True, dtype=np.int64)
        chosen = below | (at & (np.cumsum(at, axis=-1, dtype=np.int32) <= room))
    idx = (np.flatnonzero(chosen) % n).reshape(key.shape[:-1] + (k,))      # k per row, ascending index
    order = np.argsort(np.take_along_axis(key, idx, axis=-1), axis=-1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=-1)
    return np.moveaxis(idx, -1, dim).astype(np.int64, copy=False)


TOPK.def_backward(_scatter_bwd)


@op("argsort")
def ARGSORT(xp, a, dim=-1, descending=False, stable=False):
    refuse_complex(a, " Sort does not support complex dtypes on CPU", RuntimeError)
    if a.ndim == 0:
        return xp.zeros((), dtype=np.int64)
    return _argsort(xp, a, dim, descending)


def _median_k(xp, a, dim=None, keepdim=False):
    refuse_complex(a, "\"median_cpu\" not implemented for '{dtype}'")
    if dim is None:
        flat = a.reshape(-1)
        if flat.size == 0:
            return xp.asarray(xp.nan, dtype=a.dtype) if a.dtype.kind == "f" else xp.zeros((), a.dtype)
        mid = xp.asarray(xp.sort(flat)[(flat.size - 1) // 2]).copy()
        if a.dtype.kind != "f":
            return mid
        # NaN propagates, chosen on the device: no host sync (as torch's median)
        return xp.where(xp.isnan(flat).any(), xp.asarray(xp.nan, dtype=a.dtype), mid).astype(a.dtype)
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    n = a.shape[dim]
    if n == 0:
        raise IndexError(f"median(): Expected reduction dim {dim} to have non-zero size.")
    idx = _first(xp, _argsort(xp, a, dim, False), (n - 1) // 2 + 1, dim)
    sl = [slice(None)] * a.ndim
    sl[dim] = slice((n - 1) // 2, (n - 1) // 2 + 1)
    idx = idx[tuple(sl)]
    if a.dtype.kind == "f":     # NaN propagates: the first NaN along dim is the median
        nan = xp.isnan(a)
        has = nan.any(axis=dim, keepdims=True)
        idx = xp.where(has, xp.expand_dims(xp.argmax(nan, axis=dim), dim).astype(np.int64), idx)
    vals = xp.take_along_axis(a, idx, axis=dim)
    if not keepdim:
        vals, idx = xp.squeeze(vals, axis=dim), xp.squeeze(idx, axis=dim)
    return vals, idx


def _median_bwd(ctx, g, _gi=None):
    return _select_bwd(ctx, g)


# torch's two overloads, two backward nodes: median() spreads the gradient over the elements equal to the
# median, median(dim) sends it to the index it returns
MEDIAN = op("median", save="io", node_name="MedianBackward0")(_median_k)
MEDIAN.def_backward(_median_bwd)
MEDIAN_DIM = op("median_dim", save="io", nondiff_outputs=(1,), node_name="MedianBackward1")(_median_k)
MEDIAN_DIM.def_backward(_median_bwd)


@op("unique")
def UNIQUE(xp, a, sorted=True, return_inverse=False, return_counts=False):
    refuse_complex(a, "\"unique\" not implemented for '{dtype}'")
    flat = a.reshape(-1)
    if flat.size == 0:
        return flat.copy(), xp.zeros(a.shape, np.int64), xp.zeros((0,), np.int64)
    order = _asc(xp, flat, 0)
    s = flat[order]
    new = xp.concatenate([xp.ones((1,), dtype=bool), s[1:] != s[:-1]])
    if a.dtype.kind == "f":     # every NaN is its own value, as in torch
        new = new | xp.isnan(s)
    group = xp.cumsum(new) - 1
    starts = xp.nonzero(new)[0]           # the one host sync: how many distinct values there are
    _sync.note(a, "unique")
    vals = s[starts]
    inv = xp.empty(flat.shape, np.int64)
    inv[order] = group
    counts = xp.diff(xp.concatenate([starts, xp.asarray([flat.size], dtype=starts.dtype)])).astype(np.int64)
    return vals, inv.reshape(a.shape), counts


def _search_k(xp, seq, v, right=False, out_int32=False):
    refuse_complex(seq, "\"searchsorted_out_cpu\" not implemented for '{dtype}'")
    dt = np.int32 if out_int32 else np.int64
    side = "right" if right else "left"
    if seq.ndim == 1:
        return xp.asarray(xp.searchsorted(seq, v, side=side)).astype(dt)
    # boundaries batched along the last dim: count the boundaries below each value
    cmp = (seq[..., None, :] <= v[..., :, None]) if right else (seq[..., None, :] < v[..., :, None])
    return cmp.sum(axis=-1).astype(dt)


SEARCHSORTED = op("searchsorted")(_search_k)
BUCKETIZE = op("bucketize")(lambda xp, v, b, right=False, out_int32=False: _search_k(xp, b, v, right, out_int32))


# --- public functions ------------------------------------------------------------------------------

def _d(dim, t):
    return norm_dims(dim, t.ndim)[0]


@public(method=True)
def sort(input, dim=-1, descending=False, stable=False, *, out=None):
    v, i = dispatch(SORT, input, dim=_d(dim, input), descending=bool(descending), stable=bool(stable))
    return write_outs(sort_rt(v, i), out, "sort")


@public(method=True)
def argsort(input, dim=-1, descending=False, stable=False):
    return dispatch(ARGSORT, input, dim=_d(dim, input), descending=bool(descending), stable=bool(stable))


@public(method=True)
@torch_op("msort")
def msort(input):
    return sort(input, 0).values


@public(method=True)
def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):
    v, i = dispatch(TOPK, input, int(k), dim=_d(dim, input), largest=bool(largest), sorted=bool(sorted))
    return write_outs(topk_rt(v, i), out, "topk")


@public(method=True)
def median(input, dim=None, keepdim=False):
    if dim is None:
        return dispatch(MEDIAN, input)
    v, i = dispatch(MEDIAN_DIM, input, dim=_d(dim, input), keepdim=bool(keepdim))
    return median_rt(v, i)


@public(method=True)
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("tensorlib.unique: dim= is not supported (only dim=None)")
    vals, inv, counts = dispatch(UNIQUE, input, sorted=True, return_inverse=bool(return_inverse),
                                 return_counts=bool(return_counts))
    return unique_result(vals, inv, counts, return_inverse, return_counts)


def unique_result(vals, inv, counts, return_inverse, return_counts):
    """torch's unique-style result: the values, then the inverse and the counts where asked for."""
    return (vals, *([inv] if return_inverse else []), *([counts] if return_counts else [])) \
        if return_inverse or return_counts else vals


def _as_values(v, like):
    if isinstance(v, Tensor):
        return v
    return tensor(v, device=like.device)


@public
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None, out=None):
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    if sorter is not None:
        sorted_sequence = gather(sorted_sequence, -1, sorter)
    v = _as_values(input, sorted_sequence)
    s, vs = tuple(sorted_sequence.shape), tuple(v.shape)
    if len(s) > 1 and (len(vs) != len(s) or vs[:-1] != s[:-1]):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions "
                           f"of boundaries tensor and input value tensor must match, but we got boundaries tensor "
                           f"{list(s)} and input value tensor {list(vs)}")
    return write_outs(dispatch(SEARCHSORTED, sorted_sequence, v, right=bool(right), out_int32=bool(out_int32)), out,
                      "searchsorted")


@public
def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return write_outs(dispatch(BUCKETIZE, _as_values(input, boundaries), boundaries, right=bool(right),
                               out_int32=bool(out_int32)), out, "bucketize")


