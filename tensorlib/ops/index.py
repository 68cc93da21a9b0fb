"""Indexing: __getitem__/__setitem__ (ints, slices, ellipsis, None, bool masks, integer tensors), gather,
scatter_add, index_select, masked_fill, one_hot."""
from __future__ import annotations

import warnings
from operator import setitem as _setitem


from .. import _hooks as _H
from .. import _sync
from .broadcast import QUIET, SINK, add_at, norm_dims, quiet_sum_to, sum_to
from .._opdef import with_defaults
from ._define import Tensor, dispatch, fill_value, np, op, public
from .._graph import quiet_op, tensor_of
from ..dispatch import run_recorded_op
from .broadcast import expand
from .creation import tensor, zeros_like, zeros, zeros_steps
from .misc import COPY_, FILL_
from .._sparse import SparseCOO
from .shape import NARROW, cat, narrow_index, reshape
from .sparse import SPARSE_COO
from ._rows import open_grid, take_along


def _basic_op(idx):
    """The op of a basic index (a tuple of ints, slices, None and Ellipsis only: it selects a view), named as
    torch's indexing names it by what it applies (a slice over a whole dimension applies nothing): SELECT where
    every item is an int or `:` and one at least an int (x[:, 1, :] is torch's select), else SLICE; None for any
    other index (GETITEM's). A bool is a mask (a copy), as in torch."""
    select = True
    ints = False
    for i in idx:
        if type(i) is bool or not isinstance(i, int):
            if type(i) is not slice and i is not None and i is not Ellipsis:
                return None
            if select and not (type(i) is slice and i.start is None and i.stop is None and i.step is None):
                select = False
        else:
            ints = True
    return SELECT if select and (ints or not idx) else SLICE     # (x[()]: select's view of all of x)


def _torch_order(idx, ndim):
    """An index mixing ints with index arrays, split as torch applies it: (basic, advanced), the ints (with the
    slices, None and Ellipsis) selecting a view first and the arrays indexing that view. NumPy counts the ints
    among the advanced indices instead and, where a slice separates them from the arrays, puts the indexed
    dimensions first: x[1, :, [0, 3]] of a (2, 3, 4) tensor is (3, 2) in torch, (2, 3) in NumPy. None where the
    index has no such mix (NumPy's reading is torch's) or a Python bool (a new dimension, as None: left to NumPy)."""
    has_int = has_arr = False
    for i in idx:
        t = type(i)
        if t is int:
            has_int = True
        elif t is bool:
            return None
        elif i is not None and i is not Ellipsis and t is not slice:
            has_arr = True
    if not (has_int and has_arr):
        return None
    consumed = sum(i.ndim if type(i) is not int and type(i) is not slice and i.dtype == np.bool_ else 1
                   for i in idx if i is not None and i is not Ellipsis)
    first: list = []
    second: list = []
    for i in idx:
        if type(i) is int:
            first.append(i)
        elif i is None or type(i) is slice:
            first.append(i)
            second.append(slice(None))
        elif i is Ellipsis:
            first += [slice(None)] * (ndim - consumed)
            second += [slice(None)] * (ndim - consumed)
        else:           # an index array: a bool one covers its ndim dimensions
            first += [slice(None)] * (i.ndim if i.dtype == np.bool_ else 1)
            second.append(i)
    return tuple(first), tuple(second)


def _as_tuple(idx):
    """torch's reading of a list index that holds a sequence, tensor, slice, None or Ellipsis (NumPy's legacy rule,
    torch's treatSequenceAsTuple): the tuple of those, x[[[0, 1], [1, 0]]] as x[[0, 1], [1, 0]]."""
    if type(idx) is list and len(idx) < 32 and any(
            isinstance(e, (list, tuple, Tensor, slice, np.ndarray, range)) or e is None or e is Ellipsis for e in idx):
        return tuple(idx)
    return idx


def _convert_index(t, idx):
    """Tensors and lists inside an index become arrays of the tensor's backend."""
    idx = _as_tuple(idx)
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    data = t._data
    for i in idx:
        if isinstance(i, Tensor):
            a = i._data
            if type(a) is not type(data):
                if type(a) is np.ndarray:
                    if i.ndim:     # as torch: CPU indices index a CUDA tensor (copied to its device)
                        a = _backend(data).asarray(a)
                else:
                    raise RuntimeError(f"indices should be either on cpu or on the same device as the indexed tensor "
                                       f"({t.device})")
            if a.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            if a.dtype == np.uint8:     # torch's deprecated byte masks: a mask, with its warning
                warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool "
                              "instead.", UserWarning, stacklevel=3)
                a = a.astype(np.bool_)
            out.append(a if a.ndim else (bool(a) if a.dtype == np.bool_ else int(a)))
        elif isinstance(i, (list, tuple, range, np.ndarray)):     # a sequence inside the index, as torch reads it
            arr = np.asarray(i)
            if arr.size == 0 and arr.dtype.kind == "f":     # [] and range(0): no elements, torch's long dtype
                arr = arr.astype(np.int64)
            if arr.ndim == 0 and arr.dtype.kind in "biu":
                out.append(bool(arr) if arr.dtype == np.bool_ else int(arr))
                continue
            if arr.dtype.kind in "SU":      # torch builds a tensor of the list, and has no str dtype
                raise TypeError(f"new(): invalid data type '{'str' if arr.dtype.kind == 'U' else 'bytes'}'")
            if arr.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            out.append(arr if type(data) is np.ndarray else _backend(data).asarray(arr))
        elif isinstance(i, (np.integer,)):
            out.append(int(i))
        elif isinstance(i, (bool, int, slice)) or i is None or i is Ellipsis:
            out.append(i)
        elif hasattr(i, "__index__"):
            out.append(i.__index__())
        elif isinstance(i, (str, bytes)):   # torch reads it as data for a tensor index, of no dtype it has
            raise TypeError(f"new(): invalid data type '{type(i).__name__}'")
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             f"valid indices (got {type(i).__name__})")
    return tuple(out)


def _backend(a):
    from .._device import xp_of
    return xp_of(a)


def index_error(e, a, idx):
    """NumPy's IndexError for an index into `a`, in torch's words (never NumPy's: "axis", "boolean index")."""
    msg = str(e)
    if msg.startswith("too many indices"):
        if a.ndim == 0:
            return IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` "
                              "in C++ to convert a 0-dim tensor to a number")
        return IndexError(f"too many indices for tensor of dimension {a.ndim}")
    if msg.startswith("boolean index did not match"):
        dim = int(msg.split("along ")[1].split()[1].rstrip(";"))
        mask = next(i for i in idx if getattr(i, "dtype", None) == np.bool_ or type(i) is bool)
        return IndexError(f"The shape of the mask {list(getattr(mask, 'shape', ()))} at index {dim} does not match "
                          f"the shape of the indexed tensor {list(a.shape)} at index {dim}")
    return IndexError(msg.replace("axis", "dimension").replace("array", "tensor"))


@op("index", view=True, node_name="IndexBackward0")
def GETITEM(xp, a, idx):
    _sync.note_index(a, idx, "index (boolean mask)")
    try:
        split = _torch_order(idx, a.ndim)
        if split is not None:
            return a[split[0]][split[1]]
        r = a[idx]
    except IndexError as e:
        raise index_error(e, a, idx) from None
    return _new_axes_strides(xp, a, r, idx) if 0 in r.strides else r


def _new_axes_strides(xp, a, r, idx):
    """A basic index's result with torch's stride for each None's new axis, where NumPy gives 0 (which reads as an
    expanded dim): torch applies the index left to right, a None as an unsqueeze of what it has so far (size *
    stride of the axis it precedes then, the item size at the end). NumPy's reshape gives those strides unless an
    int follows the None or the None ends a result whose last stride is not 1 (then the geometry is worked out)."""
    if type(idx) is not tuple:
        idx = (idx,)
    none = simple = False
    for i in idx:
        if i is None:
            none = True
        elif type(i) is int:
            simple = simple or none     # (an int after a None: the slow path)
        elif type(i) is not slice and i is not Ellipsis:
            return r                    # advanced indexing: a copy, not ours
    if not none or not r.size:
        return r
    if not simple and not (r.ndim > 1 and r.strides[-1] == 0 and r.strides[-2] != r.itemsize):
        r2 = r.reshape((-1,) + r.shape[1:])
        if all(s == 0 or s == s2 for s, s2 in zip(r.strides, r2.strides)):
            return r2
    shape, strides = list(a.shape), list(a.strides)
    p = 0
    for i in idx:
        if i is None:
            strides.insert(p, shape[p] * strides[p] if p < len(shape) else a.itemsize)
            shape.insert(p, 1)
            p += 1
        elif i is Ellipsis:
            p += a.ndim - sum(1 for j in idx if j is not None and j is not Ellipsis)
        elif type(i) is slice:
            start, stop, step = i.indices(shape[p])
            shape[p] = len(range(start, stop, step))
            strides[p] *= step
            p += 1
        else:
            del shape[p], strides[p]
    if tuple(shape) != r.shape or len(strides) != r.ndim:
        return r
    st = tuple(strides[d] if r.strides[d] == 0 and r.shape[d] == 1 else r.strides[d] for d in range(r.ndim))
    return r if st == r.strides else xp.lib.stride_tricks.as_strided(r, r.shape, st)


@op("index_backward", node_name="IndexBackwardBackward0")
def INDEX_BACKWARD(xp, g, shape, idx):
    z = xp.zeros(shape, dtype=g.dtype)
    if _basic_op(idx) is not None:
        z[idx] = g
    else:
        split = _torch_order(idx, len(shape))
        if split is None:
            add_at(xp, z, idx, g)
        else:           # into the view the ints select (torch's order, see _torch_order)
            add_at(xp, z[split[0]], split[1], g)
    return z


INDEX_BACKWARD.def_backward(lambda ctx, gg: (dispatch(GETITEM, gg, idx=ctx.attrs["idx"]),))


def _select_kernel(xp, a, idx):
    """Integer indexing (no Ellipsis in idx) as a view. NumPy gives a scalar, a copy, when every dimension
    is indexed by an int; the trailing Ellipsis makes that a 0-d view, so `x[0, 1].fill_(7)` writes
    through as in torch. CuPy returns 0-d views either way.
    The view is a strided view of a's memory, torch's as_strided, which a profile shows inside the op as
    torch's does."""
    if _H.range_hooks:
        try:        # (_select_view's work, inline: a select per time step of a recurrent loop)
            return _H.op_step("as_strided", a.__getitem__, idx + (Ellipsis,))
        except IndexError as e:
            raise index_error(e, a, idx) from None
    return _select_view(a, idx)


def _select_view(a, idx):
    try:
        return a[idx + (Ellipsis,)]
    except IndexError as e:
        raise index_error(e, a, idx) from None


# torch names basic indexing by what it does: x[0] is a select, x[1:3] a slice, x[idx] an index
SELECT = op("select", view=True, node_name="SelectBackward0")(_select_kernel)


def _view_backward(view_name):
    """The kernel of torch's select_backward / slice_backward: zeros of the input's shape, the gradient copied
    into the view that the forward took (each step in the range of torch's op for it, while a profiler
    listens)."""
    def kernel(xp, g, shape, idx):
        if _H.range_hooks:
            z = _H.op_step("zeros", xp.zeros, shape, g.dtype)
            vi = idx if Ellipsis in idx else idx + (Ellipsis,)      # (_view_of's index: a frame less a node)
            v = _H.op_step(view_name, _H.op_step, "as_strided", z.__getitem__, vi)
            _H.op_step("copy_", _setitem, v, Ellipsis, g)
            return z
        z = xp.zeros(shape, dtype=g.dtype)
        z[idx] = g
        return z
    return kernel


def _view_of(z, idx):
    return z[idx] if Ellipsis in idx else z[idx + (Ellipsis,)]     # (a basic index: no arrays to compare)


SELECT_BACKWARD = op("select_backward", node_name="SelectBackwardBackward0")(_view_backward("select"))
SELECT_BACKWARD.def_backward(lambda ctx, gg: (dispatch(SELECT, gg, idx=ctx.attrs["idx"]),))


def _view_node_backward(fwd, bwd, index=lambda attrs: attrs["idx"]):
    """fwd's node formula: bwd (select_backward, slice_backward, index_backward) of g, dispatched, and its
    quiet and sink formulas (OpDef.quiet_backward, sink_backward): bwd's kernel called directly, or recorded
    as that op. index(attrs): the basic index of fwd's view (its attribute idx, or narrow's slice)."""
    def attrs(ctx):
        return {"shape": tuple(ctx.in_meta[0][0]), "idx": index(ctx.attrs)}

    def sink(ctx, g):
        return run_recorded_op(bwd, g, shape=tuple(ctx.in_meta[0][0]), idx=index(ctx.attrs))
    fwd.def_backward(lambda ctx, g: (dispatch(bwd, g, **attrs(ctx)),))
    fwd.quiet_backward = lambda ctx, g: quiet_op(bwd, g, **attrs(ctx))
    fwd.sink_backward = sink


_view_node_backward(SELECT, SELECT_BACKWARD)


def _slice_kernel(xp, a, idx):
    """Basic slicing: a strided view (torch's as_strided inside its slice, in a profile)."""
    if _H.range_hooks:
        return _H.op_step("as_strided", GETITEM.kernel, xp, a, idx)
    return GETITEM.kernel(xp, a, idx)


SLICE = op("slice", view=True, node_name="SliceBackward0")(_slice_kernel)
SLICE_BACKWARD = op("slice_backward", node_name="SliceBackwardBackward0")(_view_backward("slice"))
SLICE_BACKWARD.def_backward(lambda ctx, gg: (dispatch(SLICE, gg, idx=ctx.attrs["idx"]),))
_view_node_backward(SLICE, SLICE_BACKWARD)
_view_node_backward(GETITEM, INDEX_BACKWARD)
_view_node_backward(NARROW, SLICE_BACKWARD, lambda a: narrow_index(a["dim"], a["start"], a["length"]))


def _basic_index_node_name(node):
    """torch's name for the node of basic indexing, that of the last view its indexing code applied: x[:, 1] and
    x[1:, 1] are SelectBackward0, x[1, 1:] SliceBackward0, x[1, None] UnsqueezeBackward0; a slice over a whole
    dimension inside a tuple applies nothing, so x[...] and x[:, 0:n] (n the size) are AliasBackward0, while a
    lone slice (x[:]) is always a slice."""
    idx = node.attrs["idx"]
    shape = node.in_meta[0][0]
    if len(idx) == 1 and isinstance(idx[0], slice):
        return "SliceBackward0"
    name = "AliasBackward0"
    d = 0      # the input's dimension the next int or slice indexes
    for i in idx:
        if i is None:
            name = "UnsqueezeBackward0"
        elif i is Ellipsis:
            d += len(shape) - sum(1 for j in idx if j is not None and j is not Ellipsis)
        elif isinstance(i, slice):
            if i.indices(shape[d]) != (0, shape[d], 1):
                name = "SliceBackward0"
            d += 1
        else:
            name = "SelectBackward0"
            d += 1
    return name


SELECT.node_name_of = SLICE.node_name_of = _basic_index_node_name


@public(name="__getitem__", function=False, method=True)
def getitem(self, idx):
    t = type(idx)       # the commonest indices first: x[i], x[a:b], x[:, i] (what _convert_index leaves as it is)
    if t is int:
        return dispatch(SELECT, self, idx=(idx,))
    if t is slice:
        return dispatch(SLICE, self, idx=(idx,))
    if t is tuple:
        op_ = _basic_op(idx)
        if op_ is not None:
            return dispatch(op_, self, idx=idx)
    if isinstance(idx, Tensor) and idx._data.dtype == np.bool_ and idx.ndim == self.ndim and idx.ndim > 0:
        return dispatch(GETITEM, self, idx=(idx._data,))
    idx = _convert_index(self, idx)
    return dispatch(_basic_op(idx) or GETITEM, self, idx=idx)


def _put(out, idx, v):
    """out[idx] = v with torch's errors: an index out of range, or a value that does not expand to the target."""
    _sync.note_index(out, idx, "index_put (boolean mask)")
    split = _torch_order(idx, out.ndim)
    if split is not None:       # into the view the ints select (torch's order, see _torch_order)
        out, idx = out[split[0]], split[1]
    try:
        out[idx] = v
    except IndexError as e:
        raise index_error(e, out, idx) from None
    except ValueError:
        target, shape = out[idx].shape, getattr(v, "shape", ())
        for k in range(1, max(len(target), len(shape)) + 1):
            t, g = (target[-k] if k <= len(target) else 1), (shape[-k] if k <= len(shape) else 1)
            if g not in (1, t):
                raise RuntimeError(f"The expanded size of the tensor ({t}) must match the existing size ({g}) at "
                                   f"non-singleton dimension {len(target) - k}.  Target sizes: {list(target)}.  "
                                   f"Tensor sizes: {list(shape)}") from None
        raise


@op("index_put", save="", node_name="IndexPutBackward0")
def SETITEM(xp, a, v, idx):
    out = a.copy()
    _put(out, idx, v)
    return out


@SETITEM.def_backward
def _(ctx, g):
    idx = ctx.attrs["idx"]
    ga = dispatch(SETITEM, g, 0.0, idx=idx) if ctx.needs_input_grad[0] else None
    gv = None
    if ctx.needs_input_grad[1]:
        gv = sum_to(dispatch(GETITEM, g, idx=idx), ctx.in_meta[1][0])
    return ga, gv


# the history an in-place op on a view gives the view's base (autograd.graph.record_inplace_view), named as torch
COPY_SLICES = op("copy_slices", node_name="tensorlib::autograd::CopySlices")(SETITEM.kernel)
COPY_SLICES.def_backward(SETITEM.backward)


def _setitem_inplace(xp, a, v, idx):
    _put(a, idx, v)


SETITEM_ = op("index_put_", inplace_of=SETITEM)(_setitem_inplace)


@public(name="__setitem__", function=False, method=True)
def setitem(self, idx, value):
    """x[idx] = value as torch's indexing assigns: a basic index (ints, slices, None, Ellipsis) takes its view
    (select or slice, as x[idx] would) and copies a tensor into it (copy_) or fills it with a number (fill_),
    so a profile shows those ops and autograd a CopySlices node; any other index is one index_put_."""
    if isinstance(value, Tensor):
        if type(value._data) is not type(self._data) and value._data.ndim == 0:
            value = value.item()
    elif isinstance(value, (list, tuple)):
        value = tensor(value, dtype=self.dtype, device=self.device)
    t = type(idx)
    basic = (idx,) if t is int or t is slice else idx if t is tuple else \
        (idx,) if idx is None or idx is Ellipsis else None
    op_ = _basic_op(basic) if basic is not None and type(self._data) is not SparseCOO else None
    if op_ is not None:
        view = dispatch(op_, self, idx=basic)
        if not isinstance(value, Tensor):
            if isinstance(value, (bool, int, float, complex, np.generic)):
                dispatch(FILL_, view, value)
                return
            value = tensor(value, device=self.device)     # (an array: a tensor of its own dtype, cast by copy_)
        shape = view._data.shape
        dispatch(COPY_, view, value if value._data.shape == shape else _expanded_to(value, shape))
        return
    idx = _convert_index(self, idx) if not (isinstance(idx, Tensor) and idx._data.dtype == np.bool_
                                             and idx.ndim == self.ndim) else (idx._data,)
    dispatch(SETITEM_, self, value, idx=idx)


def _expanded_to(value, shape):
    """torch's copy_to for an assignment of a value of another shape: value without its leading dims of size 1
    (a view), expanded to the target's shape (expand's error, torch's, where it does not fit)."""
    vs = value._data.shape
    k = 0
    while k < len(vs) and vs[k] == 1:
        k += 1
    return expand(value.view(vs[k:]) if k else value, shape)


public(getitem, name="__getitem__", function=False, method=True)
public(setitem, name="__setitem__", function=False, method=True)


@op("gather", save="i", node_name="GatherBackward0")
def GATHER(xp, a, index, dim, sparse_grad=False):
    if index.ndim != a.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for k in range(a.ndim):
        if k != dim and index.shape[k] > a.shape[k]:
            raise RuntimeError(f"Size does not match at dimension {k} expected index {list(index.shape)} to be no "
                               f"larger than self {list(a.shape)} apart from dimension {dim}")
    if xp is np:
        if index.size:     # torch's message, not NumPy's IndexError (CUDA: no sync; torch asserts there)
            n = a.shape[dim] if a.ndim else 1
            # (one reduction for both bounds where the index is int64: a negative one is huge as uint64)
            if (np.maximum.reduce(index.view(np.uint64), None) >= n) if index.dtype == np.int64 else \
                    (np.minimum.reduce(index, None) < 0 or np.maximum.reduce(index, None) >= n):
                bad = index[(index < 0) | (index >= n)].reshape(-1)[0]
                raise RuntimeError(f"index {int(bad)} is out of bounds for dimension {dim} with size {n}")
        if a.ndim:
            return take_along(a, index, dim)
    if a.ndim == 0:         # (take_along_axis has no axis 0 of a 0-dim array; the index is 0-dim, its value 0)
        return a.copy()
    return xp.take_along_axis(a, index, axis=dim)


@GATHER.def_backward
def _(ctx, g):
    x, index = ctx.saved_inputs
    if ctx.attrs.get("sparse_grad"):
        return (_gather_sparse_backward(x, ctx.attrs["dim"], index, g), None)
    return (dispatch(GATHER_BACKWARD, g, x, index, dim=ctx.attrs["dim"]), None)


@op("gather_backward", save="i", node_name="ScatterAddBackward0")
def GATHER_BACKWARD(xp, g, x, index, dim):
    """torch's gather_backward(grad, self, dim, index): zeros of the input's shape in the gradient's dtype
    (grad.new_zeros: new_empty's empty and zero_ in a profile), then the gradient added at the index
    (scatter_add_; the forward checked the index's bounds)."""
    if not _H.range_hooks:
        out = xp.zeros(x.shape, g.dtype)
        add_at(xp, out, open_grid(xp, index, dim), g)
        return out
    step = _H.op_step
    out = step("new_zeros", zeros_steps, xp, x.shape, g.dtype, "new_empty")
    step("scatter_add_", add_at, xp, out, open_grid(xp, index, dim), g)
    return out


@GATHER_BACKWARD.def_backward
def _(ctx, gg):
    _, _, index = ctx.saved_inputs
    return dispatch(GATHER, gg, index, dim=ctx.attrs["dim"]), None, None


def _gather_sparse_backward(x, dim, index, g):
    """torch's _gather_sparse_backward: the input's gradient as an uncoalesced sparse COO tensor, one entry per
    element of g at (i0, .., index[i], .., in), its values g's elements in order (repeated positions are summed
    when it is coalesced or made dense)."""
    shape = tuple(x.shape)
    if x.ndim == 0:
        idx = np.empty((0, g._data.size), np.int64)
    elif g.ndim == 0:
        idx = index._data.reshape(1, 1).astype(np.int64, copy=False)
    else:
        grid = open_grid(np, index._data, dim)
        idx = np.stack([np.broadcast_to(c, g.shape).reshape(-1) for c in grid]).astype(np.int64, copy=False)
    return dispatch(SPARSE_COO, tensor_of(idx), g.reshape(-1), size=shape)


def _gather_bwd_arrays(ctx, g, sink=False):
    """GATHER's formula as its one op, gather_backward, on NumPy arrays of g's dtype, called directly (the
    engine's quiet path) or run as the recorded op (OpDef.sink_backward); else None (the dispatched formula)."""
    x, idx = ctx.saved_inputs
    if ctx.attrs.get("sparse_grad") or type(g._data) is not np.ndarray or g._data.dtype != ctx.in_meta[0][1]:
        return None
    return (run_recorded_op if sink else quiet_op)(GATHER_BACKWARD, g, x, idx, dim=ctx.attrs["dim"])


GATHER.quiet_backward = _gather_bwd_arrays
GATHER.sink_backward = with_defaults(_gather_bwd_arrays, sink=True)


@public(method=True)
def gather(input, dim, index, *, sparse_grad=False):
    """sparse_grad=True: the input's gradient is a sparse COO tensor (torch's _gather_sparse_backward), on the
    CPU only, as tensorlib's sparse tensors are."""
    if sparse_grad:
        if type(input._data) is not np.ndarray:
            raise NotImplementedError("gather(sparse_grad=True): tensorlib's sparse COO tensors are CPU-only (no "
                                      "cupyx.scipy.sparse path yet); use sparse_grad=False on CUDA")
        return dispatch(GATHER, input, index, dim=norm_dims(dim, input.ndim)[0], sparse_grad=True)
    return dispatch(GATHER, input, index, dim=norm_dims(dim, input.ndim)[0])


def _scatter_bounds(xp, a, index, dim):
    """torch's CPU message for a scatter index out of range (NumPy's would say "axis")."""
    n = a.shape[dim] if a.ndim else 1
    if xp is np and index.size and (np.minimum.reduce(index, None) < 0 or np.maximum.reduce(index, None) >= n):
        bad = index[(index < 0) | (index >= n)].reshape(-1)[0]
        raise RuntimeError(f"index {int(bad)} is out of bounds for dimension {dim} with size {n}")


@op("scatter_add", save="i", node_name="ScatterAddBackward0")
def SCATTER_ADD(xp, a, index, src, dim):
    _scatter_bounds(xp, a, index, dim)
    out = a.copy()
    s = src[tuple(slice(0, n) for n in index.shape)]
    add_at(xp, out, open_grid(xp, index, dim), s)
    return out


@SCATTER_ADD.def_backward
def _(ctx, g):
    _, index, src = ctx.saved_inputs
    gs = None
    if ctx.needs_input_grad[2]:
        gs = gather(g, ctx.attrs["dim"], index)
        if tuple(gs.shape) != tuple(src.shape):
            z = zeros_like(src)
            gs = dispatch(SETITEM, z, gs, idx=tuple(slice(0, n) for n in index.shape))
    return g, None, gs


@public(method=True)
def scatter_add(input, dim, index, src):
    return dispatch(SCATTER_ADD, input, index, src, dim=norm_dims(dim, input.ndim)[0])


@op("scatter", save="i", node_name="ScatterBackward0")
def SCATTER(xp, a, index, src, dim):
    _scatter_bounds(xp, a, index, dim)
    out = a.copy()
    if hasattr(src, "shape") and hasattr(src, "ndim") and src.ndim:
        s = src[tuple(slice(0, n) for n in index.shape)]
    else:
        s = src
    out[open_grid(xp, index, dim)] = s
    return out


@SCATTER.def_backward
def _(ctx, g):
    _, index, src = ctx.saved_inputs
    dim = ctx.attrs["dim"]
    ga = dispatch(SCATTER, g, index, 0.0, dim=dim) if ctx.needs_input_grad[0] else None
    gs = gather(g, dim, index) if ctx.needs_input_grad[2] else None
    return ga, None, gs


@public(method=True)
def scatter(input, dim, index, src=None, value=None):
    return dispatch(SCATTER, input, index, src if src is not None else value, dim=norm_dims(dim, input.ndim)[0])


@op("index_select", save="i", node_name="IndexSelectBackward0")
def INDEX_SELECT(xp, a, index, dim):
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    n = a.shape[dim] if a.ndim else 1
    if xp is np and index.size and (int(index.min()) < -n or int(index.max()) >= n):
        raise IndexError("index out of range in self")
    return xp.take(a, index.reshape(1) if index.ndim == 0 and a.ndim else index, axis=dim)


@INDEX_SELECT.def_backward
def _(ctx, g):
    x, index = ctx.saved_inputs
    if index.ndim == 0 and x.ndim:          # a 0-d index selected a size-1 slice
        index = index.reshape(1)
    return (index_add(zeros_like(x), ctx.attrs["dim"], index, g), None)


@public(method=True)
def index_select(input, dim, index):
    return dispatch(INDEX_SELECT, input, index, dim=norm_dims(dim, input.ndim)[0])


@op("index_add", save="i", node_name="IndexAddBackward0")
def INDEX_ADD(xp, a, index, src, dim, alpha=1):
    out = a.copy()
    idx = (slice(None),) * dim + (index,)
    add_at(xp, out, idx, src if alpha == 1 else src * alpha)
    return out


@INDEX_ADD.def_backward
def _(ctx, g):
    _, index, _src = ctx.saved_inputs
    alpha = ctx.attrs.get("alpha", 1)
    gs = index_select(g, ctx.attrs["dim"], index) if ctx.needs_input_grad[2] else None
    if gs is not None and alpha != 1:
        gs = gs * alpha
    return g, None, gs


@public(method=True)
def index_add(input, dim, index, source, *, alpha=1):
    kw = {"alpha": alpha} if alpha != 1 else {}
    return dispatch(INDEX_ADD, input, index, source, dim=norm_dims(dim, input.ndim)[0], **kw)


@op("masked_fill", save="i", node_name="MaskedFillBackward0")
def MASKED_FILL(xp, a, mask, value):
    if mask.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    if hasattr(value, "ndim"):
        value = value.astype(a.dtype)
    r = xp.where(mask, fill_value(value, a.dtype), a).astype(a.dtype, copy=False)
    return r if a.flags.c_contiguous or r.flags.c_contiguous else r.copy(order="C")     # torch's is contiguous


@MASKED_FILL.def_backward
def _(ctx, g):
    mask = ctx.saved_inputs[1]
    ga = sum_to(masked_fill(g, mask, 0.0), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gv = None
    if ctx.needs_input_grad[2]:
        gv = (g * mask).sum()
    return ga, None, gv


def _masked_fill_bwd_arrays(ctx, g, k=QUIET):
    """MASKED_FILL's formula for the input alone (a value that needs no gradient) on NumPy arrays: its kernel
    with 0.0 and sum_to, called directly (k=QUIET: the quiet path) or run as the recorded masked_fill and
    sum_to_size (k=SINK: OpDef.sink_backward)."""
    mask = ctx.inputs[1]
    need = ctx.needs_input_grad
    if not need[0] or need[2] or not isinstance(mask, Tensor):
        return None
    gd, md = g._data, mask._data
    if type(gd) is not np.ndarray or type(md) is not np.ndarray:
        return None
    run = k.run
    return quiet_sum_to(None, run(MASKED_FILL, gd, md, 0.0), tuple(ctx.in_meta[0][0]), k), None, None


MASKED_FILL.quiet_backward = _masked_fill_bwd_arrays
MASKED_FILL.sink_backward = with_defaults(_masked_fill_bwd_arrays, k=SINK)


def _check_mask_shape(input, mask):
    """torch broadcasts the mask against the input: its message names the mask tensor a. A mask on another
    device is refused first, with torch's masked_fill message (not the dispatcher's generic one)."""
    if isinstance(input, Tensor) and type(mask._data) is not type(input._data):
        raise RuntimeError(f"expected self and mask to be on the same device, but got mask on {mask.device} and "
                           f"self on {input.device}")
    ms, xs = tuple(mask.shape), tuple(input.shape)
    nd = max(len(ms), len(xs))
    for k in range(1, nd + 1):
        a = ms[-k] if k <= len(ms) else 1
        b = xs[-k] if k <= len(xs) else 1
        if a != b and a != 1 and b != 1:
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton "
                               f"dimension {nd - k}")


@public(method=True)
def masked_fill(input, mask, value):
    if isinstance(mask, Tensor):
        _check_mask_shape(input, mask)
    if isinstance(value, Tensor) and value.ndim == 0 and not value._requires_grad:
        value = value.item()
    return dispatch(MASKED_FILL, input, mask, value)


def _masked_fill_inplace(xp, a, mask, value):
    if mask.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    a[...] = xp.where(mask, value, a)


MASKED_FILL_ = op("masked_fill_", inplace_of=MASKED_FILL)(_masked_fill_inplace)


@public(method=True)
def masked_fill_(input, mask, value):
    if isinstance(mask, Tensor):
        _check_mask_shape(input, mask)
    if isinstance(value, Tensor) and value.ndim == 0:
        value = value.item()
    return dispatch(MASKED_FILL_, input, mask, value)


@op("one_hot")
def ONE_HOT(xp, a, num_classes=-1):
    if a.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    n = num_classes
    if a.size:
        lo, hi = (int(v) for v in _sync.to_host(xp.stack([a.min(), a.max()]), "one_hot"))  # one sync on CUDA
        if lo < 0:
            raise RuntimeError("Class values must be non-negative.")
        n = hi + 1 if num_classes == -1 else num_classes
        if hi >= n:
            raise RuntimeError("Class values must be smaller than num_classes.")
    elif num_classes == -1:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    # a comparison against 0..n-1, not put_along_axis (which CuPy 13 lacks): one elementwise kernel
    return (a[..., None] == xp.arange(n)).astype(np.int64)


@public
def one_hot(tensor, num_classes=-1):
    return dispatch(ONE_HOT, tensor, num_classes=num_classes)


@op("nonzero")
def NONZERO(xp, a, as_tuple=False):
    _sync.note(a, "nonzero")                       # the count of nonzeros comes back to the host
    nz = xp.nonzero(a)
    if as_tuple:
        return tuple(x.astype(np.int64) for x in nz)
    return xp.stack(nz, axis=1).astype(np.int64) if nz else xp.zeros((0, 0), dtype=np.int64)


@public(method=True)
def nonzero(input, *, as_tuple=False):
    r = dispatch(NONZERO, input, as_tuple=as_tuple)
    return r


@public(method=True)
def masked_select(input, mask):
    return getitem(input, mask)


# --- in-place index updates: index_add_, index_copy(_), index_fill(_), scatter_, scatter_add_, masked_scatter(_)

def _dim_idx(dim, index):
    """The NumPy index of `index` along `dim`; a 0-d index keeps the dim (as torch's index_* ops do)."""
    return (slice(None),) * dim + (index.reshape(1) if index.ndim == 0 else index,)


def _index_add_ip(xp, a, index, src, dim, alpha=1):
    add_at(xp, a, _dim_idx(dim, index), src if alpha == 1 else src * alpha)


INDEX_ADD_ = op("index_add_", inplace_of=INDEX_ADD)(_index_add_ip)


@public(method=True)
def index_add_(self, dim, index, source, *, alpha=1):
    kw = {"alpha": alpha} if alpha != 1 else {}
    return dispatch(INDEX_ADD_, self, index, source, dim=norm_dims(dim, self.ndim)[0], **kw)


def _index_check(name, a, index, dim):
    """torch's checks (and messages) of index_copy_/index_fill_'s index."""
    if name == "index_fill_":
        if index.dtype != np.int64:
            raise IndexError("index_fill_(): Expected dtype int64 for index.")
        if index.ndim > 1:
            raise RuntimeError("Index has to be a vector/scalar")
        return
    if index.dtype != np.int64:
        raise RuntimeError(f"index_copy_(): Expected a long tensor for index, but got {_scalar(index.dtype)}")
    if index.ndim > 1:
        raise IndexError(f"index_copy_(): Index should have dimension 1 or 0 (got {index.ndim})")


def _index_copy_check(a, index, src, dim):
    _index_check("index_copy_", a, index, dim)
    if src.dtype != a.dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) "
                           f"{_scalar(a.dtype)} and (source) {_scalar(src.dtype)}")


@op("index_copy", save="i", node_name="IndexCopyBackward0")
def INDEX_COPY(xp, a, index, src, dim):
    _index_copy_check(a, index, src, dim)
    out = a.copy()
    out[_dim_idx(dim, index)] = src
    return out


@INDEX_COPY.def_backward
def _(ctx, g):
    _, index, _src = ctx.saved_inputs
    dim = ctx.attrs["dim"]
    ga = index_fill(g, dim, index, 0.0) if ctx.needs_input_grad[0] else None
    gs = index_select(g, dim, index) if ctx.needs_input_grad[2] else None
    return ga, None, gs


def _index_copy_ip(xp, a, index, src, dim):
    _index_copy_check(a, index, src, dim)
    a[_dim_idx(dim, index)] = src


INDEX_COPY_ = op("index_copy_", inplace_of=INDEX_COPY)(_index_copy_ip)


@public(method=True)
def index_copy(input, dim, index, source):
    return dispatch(INDEX_COPY, input, index, source, dim=norm_dims(dim, input.ndim)[0])


@public(method=True)
def index_copy_(self, dim, index, source):
    return dispatch(INDEX_COPY_, self, index, source, dim=norm_dims(dim, self.ndim)[0])


@op("index_fill", save="i", node_name="IndexFillBackward0")
def INDEX_FILL(xp, a, index, dim, value):
    _index_check("index_fill_", a, index, dim)
    out = a.copy()
    out[_dim_idx(dim, index)] = value
    return out


@INDEX_FILL.def_backward
def _(ctx, g):
    return dispatch(INDEX_FILL, g, ctx.saved_inputs[1], dim=ctx.attrs["dim"], value=0.0), None


def _index_fill_ip(xp, a, index, dim, value):
    _index_check("index_fill_", a, index, dim)
    a[_dim_idx(dim, index)] = value


INDEX_FILL_ = op("index_fill_", inplace_of=INDEX_FILL)(_index_fill_ip)


def _fill_value(value):
    return value.item() if isinstance(value, Tensor) else value


@public(method=True)
def index_fill(input, dim, index, value):
    return dispatch(INDEX_FILL, input, index, dim=norm_dims(dim, input.ndim)[0], value=_fill_value(value))


@public(method=True)
def index_fill_(self, dim, index, value):
    return dispatch(INDEX_FILL_, self, index, dim=norm_dims(dim, self.ndim)[0], value=_fill_value(value))


def _scatter_ip(xp, a, index, src, dim):
    _scatter_bounds(xp, a, index, dim)
    s = src[tuple(slice(0, n) for n in index.shape)] if getattr(src, "ndim", 0) else src
    a[open_grid(xp, index, dim)] = s


def _scatter_add_ip(xp, a, index, src, dim):
    _scatter_bounds(xp, a, index, dim)
    s = src[tuple(slice(0, n) for n in index.shape)]
    add_at(xp, a, open_grid(xp, index, dim), s)


SCATTER_ = op("scatter_", inplace_of=SCATTER)(_scatter_ip)
SCATTER_ADD_ = op("scatter_add_", inplace_of=SCATTER_ADD)(_scatter_add_ip)


@public(method=True)
def scatter_(self, dim, index, src=None, value=None):
    return dispatch(SCATTER_, self, index, src if src is not None else value, dim=norm_dims(dim, self.ndim)[0])


@public(method=True)
def scatter_add_(self, dim, index, src):
    return dispatch(SCATTER_ADD_, self, index, src, dim=norm_dims(dim, self.ndim)[0])


def _masked_scatter_check(a, mask, src):
    if mask.dtype != np.bool_:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    if src.dtype != a.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got"
                           f"{_scalar(a.dtype)} and {_scalar(src.dtype)}")


def _scalar(d):
    from .._dtype import scalar_name
    return scalar_name(d)


def _masked_scatter_into(xp, out, mask, src):
    m = xp.broadcast_to(mask, out.shape)
    n = int(_sync.to_host(m.sum(), "masked_scatter"))
    if n > src.size:
        raise RuntimeError("masked_scatter: expected source to have at least as many elements as ones in mask")
    if n:       # each True takes the next source element; no out[m] = ..., whose mask CuPy would count again
        pos = xp.cumsum(m.reshape(-1)) - 1
        vals = src.reshape(-1)[xp.clip(pos, 0, src.size - 1)].reshape(out.shape)
        out[...] = xp.where(m, vals, out)


@op("masked_scatter", save="i", node_name="MaskedScatterBackward0")
def MASKED_SCATTER(xp, a, mask, src):
    _masked_scatter_check(a, mask, src)
    out = xp.broadcast_to(a, xp.broadcast_shapes(a.shape, mask.shape)).copy()
    _masked_scatter_into(xp, out, mask, src)
    return out


@MASKED_SCATTER.def_backward
def _(ctx, g):
    _, mask, src = ctx.saved_inputs
    ga = sum_to(masked_fill(g, mask, 0.0), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gs = None
    if ctx.needs_input_grad[2]:
        sel = getitem(g, expand(mask, tuple(g.shape)))
        n = src.numel()
        pad = zeros(n - sel.numel(), dtype=g.dtype, device=g.device)
        gs = reshape(cat([sel, pad]), tuple(src.shape))
    return ga, None, gs


def _masked_scatter_ip(xp, a, mask, src):
    _masked_scatter_check(a, mask, src)
    _masked_scatter_into(xp, a, mask, src)


MASKED_SCATTER_ = op("masked_scatter_", inplace_of=MASKED_SCATTER)(_masked_scatter_ip)


@public(method=True)
def masked_scatter(input, mask, source):
    return dispatch(MASKED_SCATTER, input, mask, source)


@public(method=True)
def masked_scatter_(self, mask, source):
    return dispatch(MASKED_SCATTER_, self, mask, source)


