"""Small backward helpers shared by the op families (each is itself a dispatched op)."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from .. import _hooks as _H
from .._graph import quiet_run, tensor_of
from .._state import GLOBAL, alert_not_deterministic
from .._opdef import op_at, with_defaults
from ..dispatch import run_recorded
from ._define import Tensor, dispatch, np, op  # noqa: F401
from ._fastmath import add_reduce, add_rows


def _sum_to_axes(a_shape, shape):
    """(the leading dims a has more than shape, the dims a sum to shape reduces: those and the stretched ones)"""
    lead = len(a_shape) - len(shape)
    return lead, tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and a_shape[i + lead] != 1)


def _sum_to_kernel(xp, a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    _, axes = _sum_to_axes(a.shape, shape)
    r = (add_reduce(a, axes, None, None, True) if xp is np else a.sum(axis=axes, keepdims=True)) if axes else a
    return r.reshape(shape)


SUM_TO = op("sum_to_size", save="", node_name="SumToSizeBackward0")(_sum_to_kernel)


@SUM_TO.def_backward
def _(ctx, g):
    return (expand(g, ctx.in_meta[0][0]),)


def sum_to(g, shape):
    """Reduce a broadcast gradient back to `shape` (a no-op, with no dispatch, when it already fits)."""
    if g is None:
        return None
    shape = tuple(shape)
    if tuple(g._data.shape) == shape:
        return g
    if _H.range_hooks:      # a profile records torch's at::sum_to: its sum and view, not one sum_to_size
        return _sum_to_steps(dispatch, g, shape)
    return dispatch(SUM_TO, g, shape=shape)


def _sum_to_steps(run, a, shape):
    """torch's at::sum_to(a, shape) as the ops it runs, each by `run` (dispatch, or run_recorded on arrays): the
    sum over the reduced dims with keepdim, then a view dropping the leading ones (the full sum for shape ())."""
    if not shape:
        return run(op_at("sum"), a)
    lead, axes = _sum_to_axes(tuple(a.shape), shape)
    if axes:
        a = run(op_at("sum"), a, dim=axes, keepdim=True)
    return run(op_at("view"), a, shape=shape) if lead else a


def _sink_sum_to(d, shape):
    shape = tuple(shape)
    return _sum_to_steps(run_recorded, d, shape) if _H.range_hooks else run_recorded(SUM_TO, d, shape=shape)


class ArrayOps:
    """The kernels a backward formula on NumPy arrays runs, as its dispatched twin's ops: QUIET calls them
    directly (the engine's quiet path, OpDef.quiet_backward), SINK runs them by `dispatch.run_recorded`
    (recorded as the dispatched ops are: OpDef.sink_backward). One formula serves both: `fn(ctx, g, k=QUIET)`.
    mul/sub/div/neg are the kernels of mul, sub, div and neg (their ufuncs; SINK's run those ops, defined in
    the families above this one, looked up by name when called); rsub(a, number) is `number - a`, torch's rsub;
    sum_to is sum_to_size's; run(op, *arrays, **attrs) any other op's kernel (quiet_run, or run_recorded)."""
    __slots__ = ("mul", "sub", "rsub", "div", "neg", "sum_to", "run")
    mul: Callable[..., Any]
    sub: Callable[..., Any]
    rsub: Callable[..., Any]
    div: Callable[..., Any]
    neg: Callable[..., Any]
    sum_to: Callable[..., Any]
    run: Callable[..., Any]

    def __init__(self, **kernels):
        for k, v in kernels.items():
            setattr(self, k, v)


def _rsub(a, b):
    return np.subtract(b, a)


QUIET = ArrayOps(mul=np.multiply, sub=np.subtract, rsub=_rsub, div=np.true_divide, neg=np.negative,
                 sum_to=partial(_sum_to_kernel, np), run=quiet_run)


# run_recorded.run_as(op, fn, *arrays) (C; None with the Python twin): run_recorded(op, *arrays) with fn's call standing
# for the kernel's where the op sink alone records
_run_as = getattr(run_recorded, "run_as", None)


class _SinkOps(ArrayOps):
    """SINK's kernels: mul, sub, rsub, div and neg are `run_recorded` of those ops (defined in the families above
    this module), each bound on first use as partial(run_recorded, op): no Python frame per recorded op. mul's
    and div's kernels on NumPy operands are their ufuncs' calls (`a * b`, true_divide): run_as runs the ufunc
    itself where the op sink alone records (not even the kernel's frame)."""
    __slots__ = ()
    _NAMES = {"mul": "mul", "sub": "sub", "rsub": "rsub_scalar", "div": "div", "neg": "neg"}
    _UFUNCS = {"mul": np.multiply, "div": np.true_divide}

    def __getattr__(self, name):        # (only for a slot not set yet)
        op_name = _SinkOps._NAMES.get(name)
        if op_name is None:
            raise AttributeError(name)
        ufunc = _SinkOps._UFUNCS.get(name)
        f = partial(_run_as, op_at(op_name), ufunc) if ufunc is not None and _run_as is not None else \
            partial(run_recorded, op_at(op_name))
        setattr(self, name, f)
        return f


SINK = _SinkOps(sum_to=_sink_sum_to, run=run_recorded)


def quiet_sum_to(g, d, shape, k=QUIET):
    """sum_to(g, shape) in a backward formula on arrays (OpDef.quiet_backward, or sink_backward with k=SINK),
    `d` the NumPy array of the gradient g, or a new array when g is None: SUM_TO's kernel where the shapes
    differ, else g itself (or d, wrapped), as sum_to returns."""
    if d.shape == shape:
        return g if g is not None else tensor_of(d)
    return tensor_of(k.sum_to(d, shape))


def quiet_operand(x, dt):
    """x as an operand of a quiet backward formula's NumPy ufunc next to a gradient of dtype `dt`: a tensor's
    array of that dtype, or a Python int or float when `dt` is floating: the cases in which the dispatched
    op would not promote, so the ufunc computes what it would. None otherwise (the formula's own path runs)."""
    if isinstance(x, Tensor):
        d = x._data
        return d if type(d) is np.ndarray and d.dtype == dt else None
    if (type(x) is float or type(x) is int) and dt.kind == "f":
        return x
    return None


def quiet_arrays(g, d):
    """(g, d) when both are NumPy arrays of one floating dtype, else None: the case in which a quiet backward
    formula's ufuncs on a gradient g and a saved array d compute what the dispatched formula's ops do (they
    promote nothing)."""
    if type(g) is not np.ndarray or type(d) is not np.ndarray or g.dtype != d.dtype or d.dtype.kind != "f":
        return None
    return g, d


def broadcast_view(a, shape):
    """np.broadcast_to(a, shape) for a NumPy array: the same read-only view (stride 0 on the new and stretched
    dims, `a` its base), made by the ndarray constructor over a's memory where a is C-contiguous; np.broadcast_to
    itself (its nditer and Python wrapper: ~4-5 us a call against ~1) otherwise, and for its errors."""
    if type(a) is not np.ndarray or not a.flags.c_contiguous or not a.size:
        return np.broadcast_to(a, shape)
    off = len(shape) - a.ndim
    if off < 0:
        return np.broadcast_to(a, shape)
    strides = [0] * len(shape)
    for j in range(a.ndim):
        n, s = a.shape[j], shape[j + off]
        if n == 1:                              # (stride 0, as np.broadcast_to gives a size-1 dim)
            continue
        if n != s:
            return np.broadcast_to(a, shape)     # (its error)
        strides[j + off] = a.strides[j]
    v = np.ndarray(shape, a.dtype, a, 0, tuple(strides))
    v.flags.writeable = False
    return v


def _expand_kernel(xp, a, shape):
    if -1 in shape:     # (-1 keeps the size there; a gradient's expand never has one: no generator for it)
        shape = tuple(a.shape[i - (len(shape) - a.ndim)] if s == -1 else s for i, s in enumerate(shape))
    elif type(shape) is not tuple:
        shape = tuple(shape)
    bcast = broadcast_view if xp is np else xp.broadcast_to
    if _H.range_hooks:      # a strided view with stride 0 on the new dims: torch's as_strided, in a profile
        return _H.op_step("as_strided", bcast, a, shape)
    return bcast(a, shape)


EXPAND = op("expand", view=True, node_name="ExpandBackward0")(_expand_kernel)


@EXPAND.def_backward
def _(ctx, g):
    return (sum_to(g, ctx.in_meta[0][0]),)


def _expand_bwd_arrays(ctx, g, k=QUIET):
    """EXPAND's formula on a NumPy gradient: sum_to_size's kernel where the shapes differ (called directly,
    k=QUIET, or run as the recorded op, k=SINK: OpDef.quiet_backward / sink_backward), else g itself."""
    d = g._data
    return (quiet_sum_to(g, d, tuple(ctx.in_meta[0][0]), k),) if type(d) is np.ndarray else None


EXPAND.quiet_backward = _expand_bwd_arrays
EXPAND.sink_backward = with_defaults(_expand_bwd_arrays, k=SINK)


def expand(a, *sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < a._data.ndim:
        from .._dtype import scalar_name
        raise RuntimeError(f"expand(tensorlib.{scalar_name(a._data.dtype)}Tensor{{{list(a.shape)}}}, "
                           f"size=[{', '.join(map(str, sizes))}]): the "
                           f"number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({a._data.ndim})")
    try:
        return dispatch(EXPAND, a, shape=tuple(int(s) for s in sizes))
    except ValueError:
        have = (1,) * (len(sizes) - a._data.ndim) + tuple(a.shape)
        for d in range(len(sizes) - 1, -1, -1):          # torch reports the last mismatch (from the right)
            if have[d] != 1 and sizes[d] != -1 and sizes[d] != have[d]:
                raise RuntimeError(f"The expanded size of the tensor ({sizes[d]}) must match the existing size "
                                   f"({have[d]}) at non-singleton dimension {d}.  Target sizes: {list(sizes)}.  "
                                   f"Tensor sizes: {list(a.shape)}") from None
        raise


def norm_dims(dim, ndim):
    """dim argument (None, int, tuple) -> tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if type(dim) is int and -ndim <= dim < ndim:      # the commonest: one dim, in range
        return (dim % ndim,)
    if isinstance(dim, int):
        dim = (dim,)
    n = max(ndim, 1)
    out = []
    for d in dim:
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        out.append(d % n)
    return tuple(out)


def quiet_reduced_grad(d, in_shape, dims, keepdim):
    """reduced_grad on a NumPy array, as a tensor: the same view (one reshape for the unsqueezes)."""
    if unsqueezed(in_shape, dims, keepdim):
        shape = list(in_shape)
        for k in dims:
            shape[k] = 1
        d = d.reshape(tuple(shape))
    return tensor_of(broadcast_view(d, in_shape))


def unsqueezed(in_shape, dims, keepdim):
    """Whether a reduction's gradient gets its reduced dims back before it is expanded: a reduction over some
    (not all) dims of an input that is not 0-d, without keepdim. A full reduction's gradient is 0-d and
    expands as it is."""
    return not keepdim and 0 < len(dims) < len(in_shape)


def reduced_grad(g, in_shape, dims, keepdim):
    """Broadcast a reduction's gradient back over the reduced dims, as torch's sum_backward: unsqueezed at each
    reduced dim in increasing order (see `unsqueezed`), then expanded."""
    if unsqueezed(in_shape, dims, keepdim):
        for d in sorted(dims):
            g = g.unsqueeze(d)      # the method: shape.py sits above this module
    return expand(g, in_shape)


def add_at(xp, out, idx, src):
    """out[idx] += src with repeated indices accumulating (NumPy's add.at, CuPy's scatter_add).

    CuPy's scatter_add (an atomicAdd kernel) refuses int8/int16/uint8/uint16/bool, and int64 on CuPy 13:
    those sum in uint64, whose wrap-around addition is int64's two's-complement addition bit for bit
    (int64 in place through a view; the narrow types widened and cast back, wrapping as NumPy does)."""
    if xp is np:
        rows = idx[0] if type(idx) is tuple and len(idx) == 1 else idx
        if type(rows) is np.ndarray and add_rows(out, rows, src):     # along dim 0, in C
            return
        if out.dtype in _FLOATS and type(src) is np.ndarray and src.dtype in _FLOATS and src.size >= _FAST_MIN \
                and _add_at_fast(out, idx, src):
            return
        np.add.at(out, idx, src)
        return
    import cupyx  # only on the CUDA path
    dt = out.dtype
    if dt.kind not in "iub" or dt in _ATOMIC_INTS:
        if dt.kind in "fc" and GLOBAL.deterministic:    # float atomics: the order of additions varies
            alert_not_deterministic("scatter_add_cuda_kernel (tensorlib's CUDA scatter-add, cupyx.scatter_add)")
        cupyx.scatter_add(out, idx, src)
        return
    wide = out.view(np.uint64) if dt == np.int64 else out.astype(np.int64).view(np.uint64)
    cupyx.scatter_add(wide, idx, xp.asarray(src).astype(np.int64).view(np.uint64))
    if dt != np.int64:
        out[...] = wide.view(np.int64).astype(dt)


_ATOMIC_INTS = (np.dtype(np.int32), np.dtype(np.uint32), np.dtype(np.uint64))
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_FAST_MIN = 4096    # entries from which _add_at_fast's sorting pays (64 rows of 32 into 32: add.at 20 us, sorted 30)
_ROUNDS = 256   # up to this many repeats of an index, add_at's rows go in as many fancy-index additions


def _add_at_fast(out, idx, src) -> bool:
    """np.add.at(out, idx, src) for float arrays in the layouts the ops use, where NumPy's add.at takes its slow
    path (per element, 10 ns each: an index_select backward of 512 rows of 512 took 2.8 ms): whole slices added at a
    1-d index along one dim (index_select/index_add/embedding backwards), and a full grid of index arrays
    (scatter_add, gather's backward). False where it does not apply (then np.add.at runs)."""
    if type(idx) is np.ndarray:
        idx = (idx,)
    if type(idx) is not tuple or not idx:
        return False
    last = idx[-1]
    dim = len(idx) - 1
    if out.ndim > 1 and dim < out.ndim and type(last) is np.ndarray and last.ndim == 1 and last.dtype.kind in "iu" \
            and all(type(i) is slice and i == slice(None) for i in idx[:-1]) \
            and src.shape == out.shape[:dim] + last.shape + out.shape[dim + 1:]:
        return _add_slices(out, dim, last, src)
    if len(idx) == out.ndim and out.ndim > 1 and all(type(i) is np.ndarray and i.dtype.kind in "iu" for i in idx):
        return _add_grid(out, idx, src)
    return False


def _add_slices(out, dim, index, src) -> bool:
    """out's slices along dim at index += src's, repeated indices accumulating in their order, bit for bit as
    add.at: one fancy-index addition per repeat (the first occurrences of every index, then the second ...);
    False beyond _ROUNDS repeats."""
    n = index.shape[0]
    if n == 0:
        return True
    size = out.shape[dim]
    if int(index.min()) < -size or int(index.max()) >= size:
        return False                    # np.add.at raises its IndexError
    if index.dtype.kind == "i" and int(index.min()) < 0:
        index = np.where(index < 0, index + size, index)
    order = np.argsort(index, kind="stable")
    si = index[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(si[1:], si[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    pre = (slice(None),) * dim
    if len(starts) == n:                # no repeats: one addition
        out[pre + (index,)] += src
        return True
    runs = np.diff(np.append(starts, n))
    most = int(runs.max())
    if most > _ROUNDS:
        return False
    rank = np.arange(n) - np.repeat(starts, runs)       # each entry's place among its index's repeats
    by_rank = order[np.argsort(rank, kind="stable")]    # the first repeats of every index, then the second ...
    bounds = np.cumsum(np.bincount(rank))
    lo = 0
    for hi in bounds:
        sel = by_rank[lo:hi]
        out[pre + (index[sel],)] += np.take(src, sel, axis=dim)
        lo = hi
    return True


def _add_grid(out, idx, src) -> bool:
    """out[idx] += src for a full grid of index arrays (one per dim of out, broadcasting to src's shape): the
    flat positions' sums by np.bincount (accumulated in float64), where out is at most a few times the entries
    (bincount makes an array of out's size)."""
    try:
        grid = np.broadcast_arrays(*idx)
        if grid[0].shape != src.shape or out.size > 4 * src.size + 4096:
            return False
        flat = np.ravel_multi_index(grid, out.shape)    # raises on an index out of range: add.at says it its way
    except ValueError:
        return False
    out += np.bincount(flat.reshape(-1), weights=src.reshape(-1), minlength=out.size).reshape(out.shape)
    return True
