"""Shape ops. Views (view, reshape when possible, transpose, permute, expand, squeeze, narrow...) share
memory with their input and count versions with it, as torch's do."""
from __future__ import annotations

import math


from .. import _hooks as _H, _threads
from .broadcast import EXPAND, expand, norm_dims, sum_to  # noqa: F401 - expand is re-exported
from ..dispatch import STATE, record_range, run_recorded, run_recorded_view, run_recorded_views
from .._graph import numpy_arrays, tensor_of, tensor_of_result
from .._execute import tensor_list
from .._opdef import op_at, with_defaults
from ._define import Tensor, dispatch, np, op, public, torch_op
from .creation import arange, tensor as _tensor
from .misc import CLONE, clone, view_dtype, copy_
from .._memory_format import (channels_last, check as check_format, contiguous_format, copy_strided, format_strides,
                              is_contiguous_as, preserve_format)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if type(s) is not int:      # NumPy integers, 0-d tensors, bools: each through int()
            return tuple(int(s) for s in shape)
    return tuple(shape)


def _infer(shape, numel, orig):
    n = 1
    for s in shape:     # the common case, every size given and right (else checked below): one loop, no
        if s < 0:       # min/prod calls (a view's kernel runs this on every call)
            break
        n *= s
    else:
        if n == numel:
            return shape if type(shape) is tuple else tuple(shape)
    shape = list(shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape[shape.index(-1)] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def _reshape_bwd(ctx, g):
    return (reshape(g, ctx.in_meta[0][0]),)


def _reshape_bwd_sink(ctx, g):
    """_reshape_bwd of a NumPy gradient with its ops recorded, not dispatched (OpDef.sink_backward): reshape's
    view of a contiguous one, else reshape's region over _reshape_strided's ops; None for other arrays."""
    d = g._data
    if type(d) is not np.ndarray:
        return None
    shape = tuple(ctx.in_meta[0][0])
    if d.flags.c_contiguous:
        return run_recorded_view(RESHAPE, g, shape=shape)
    return (_H.op_step("reshape", _reshape_strided, g, d, shape, True),)


def _reshape_bwd_quiet(ctx, g):
    """_reshape_bwd on a NumPy array (a view, or a copy where the gradient's layout allows none, as
    reshape's): the engine's quiet path (see OpDef.quiet_backward)."""
    d = g._data
    return (tensor_of(d.reshape(ctx.in_meta[0][0])),) if type(d) is np.ndarray else None


@op("reshape", view=True, node_name="ViewBackward0")
def RESHAPE(xp, a, shape):
    """reshape of a contiguous tensor: a view (torch's aten::reshape > aten::view, ViewBackward0)."""
    shape = _infer(shape, a.size, a.shape)
    if _H.range_hooks:
        return _H.op_step("view", a.reshape, shape)
    return a.reshape(shape)


RESHAPE.def_backward(_reshape_bwd)


@op("_reshape_alias", view=True, node_name="ReshapeAliasBackward0")
def RESHAPE_ALIAS(xp, a, shape):
    """reshape of a non-contiguous tensor whose strides allow the shape: a strided view, as torch's."""
    return a.reshape(shape)


RESHAPE_ALIAS.def_backward(_reshape_bwd)


@op("_unsafe_view", node_name="UnsafeViewBackward0")
def UNSAFE_VIEW(xp, a, shape):
    """The view of reshape's contiguous copy (torch's reshape: clone, then _unsafe_view of the clone) or of
    matmul's folded product. Nothing else holds that array, so the result is not a view to autograd (as
    torch's: no base, its own version counter; an in-place op on it is AddBackward0, not CopySlices)."""
    return a.reshape(shape)


UNSAFE_VIEW.def_backward(_reshape_bwd)


def _shaped_view(a, shape):
    """Array `a` viewed in `shape` where its strides allow it, else None. A NumPy array by reshape, kept when
    it made no copy (its base is `a`, or `a`'s base: NumPy's views point at the owner); NumPy 2.5 deprecates
    setting `.shape`, the no-copy reshape of older NumPy, and `reshape(copy=False)` (NumPy >= 2.1) costs
    twice as much. CuPy's arrays by their `.shape` setter, which raises where a copy would be needed."""
    if type(a) is np.ndarray:
        r = a.reshape(shape)
        b = r.base
        return r if b is a or (b is not None and b is a.base) else None
    v = a.view()
    try:
        v.shape = shape
    except AttributeError:
        return None
    return v


def _viewable(a, shape) -> bool:
    """Whether array `a` can take `shape` as a view (its strides allow it)."""
    return _shaped_view(a, shape) is not None


@op("view", view=True, node_name="ViewBackward0")
def VIEW(xp, a, shape):
    v = _shaped_view(a, _infer(shape, a.size, a.shape))
    if v is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one dimension "
                           "spans across two contiguous subspaces). Use .reshape(...) instead.")
    return v


VIEW.def_backward(_reshape_bwd)


@public(method=True)
def reshape(input, *shape):
    """torch's reshape: a view of a contiguous tensor (view), a strided view where the strides allow it
    (_reshape_alias), else a contiguous copy viewed in the shape (clone + _unsafe_view)."""
    shape = _shape_arg(shape)
    d = input._data
    if d.flags.c_contiguous:
        return dispatch(RESHAPE, input, shape=shape)
    if _H.range_hooks:      # torch's composite around the two paths
        return _H.op_step("reshape", _reshape_strided, input, d, shape)
    return _reshape_strided(input, d, shape)


def _reshape_strided(input, d, shape, sink=False):
    """reshape of a non-contiguous tensor: its ops dispatched, or with `sink` run and recorded as those ops
    (dispatch.run_recorded: _reshape_bwd_sink), the results views as the dispatched ones are."""
    shape = _infer(shape, d.size, d.shape)
    if _viewable(d, shape):
        return run_recorded_view(RESHAPE_ALIAS, input, shape=shape)[0] if sink else \
            dispatch(RESHAPE_ALIAS, input, shape=shape)
    if sink:
        return tensor_of_result(run_recorded(UNSAFE_VIEW, run_recorded(CLONE, d, memory_format=contiguous_format),
                                             shape=shape))
    return dispatch(UNSAFE_VIEW, clone(input, memory_format=contiguous_format), shape=shape)


@public(method=True)
def view(input, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return view_dtype(input, shape[0])
    return dispatch(VIEW, input, shape=_shape_arg(shape))


@public(method=True)
@torch_op("view_as")
def view_as(input, other):
    return view(input, tuple(other.shape))


@public(method=True)
@torch_op("reshape_as")
def reshape_as(input, other):
    return reshape(input, tuple(other.shape))


@public(method=True)
@record_range("flatten", "op")          # torch's composite around view/reshape
def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = norm_dims((start_dim, end_dim), nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shp = input.shape
    n = 1
    for d in shp[s:e + 1]:
        n *= d
    return reshape(input, tuple(shp[:s]) + (n,) + tuple(shp[e + 1:]))


@public(method=True)
@record_range("unflatten", "op")        # torch's composite around view (splitting one dimension is always a view)
def unflatten(input, dim, sizes):
    d = norm_dims(dim, input.ndim)[0]
    shp = tuple(input.shape)
    sizes = tuple(sizes)
    if -1 not in sizes and math.prod(sizes) != shp[d]:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({shp[d]}) in the input tensor")
    sizes = _infer(sizes, shp[d], shp)
    return view(input, shp[:d] + sizes + shp[d + 1:])


@op("squeeze", view=True, node_name="SqueezeBackward0")
def SQUEEZE(xp, a, dim=None):
    if dim is None:
        return a.reshape(tuple(s for s in a.shape if s != 1))
    dims = tuple(d for d in dim if a.shape[d] == 1) if a.ndim else ()
    if dims and _H.range_hooks:     # a strided view: torch's as_strided, in a profile
        return _H.op_step("as_strided", xp.squeeze, a, dims)
    return xp.squeeze(a, axis=dims) if dims else a.view()


SQUEEZE.def_backward(_reshape_bwd)
SQUEEZE.node_name_dim = "SqueezeBackward1"  # torch: squeeze() -> SqueezeBackward0, squeeze(dim) -> SqueezeBackward1


@public(method=True)
def squeeze(input, dim=None):
    if dim is None:
        return dispatch(SQUEEZE, input)
    return dispatch(SQUEEZE, input, dim=norm_dims(dim, input.ndim) if input.ndim else ())


def _new_axis(dim):
    """The index that views an array with a new axis of size 1 at (non-negative) `dim`: expand_dims' result,
    made by the array's own indexing, without NumPy's Python-level expand_dims (its axis checks cost more
    than the view)."""
    return (slice(None),) * dim + (None,)


@op("unsqueeze", view=True, node_name="UnsqueezeBackward0")
def UNSQUEEZE(xp, a, dim):
    """A view with a new axis of size 1, of torch's stride: size * stride of the dim it precedes, 1 at the end
    (NumPy's a[..., None] gives 0, which reads as an expanded dim). NumPy's reshape gives torch's strides but
    for a trailing axis of an array whose last stride is not 1."""
    shape = a.shape[:dim] + (1,) + a.shape[dim:]
    if dim == a.ndim and a.ndim and a.strides[-1] != a.itemsize:
        return xp.lib.stride_tricks.as_strided(a, shape, a.strides + (a.itemsize,))
    if _H.range_hooks:      # a strided view: torch's as_strided, in a profile
        return _H.op_step("as_strided", a.reshape, shape)
    return a.reshape(shape)


UNSQUEEZE.def_backward(_reshape_bwd)
for _op in (RESHAPE, RESHAPE_ALIAS, UNSAFE_VIEW, VIEW, SQUEEZE, UNSQUEEZE):
    _op.quiet_backward = _reshape_bwd_quiet
    _op.sink_backward = _reshape_bwd_sink
    # _reshape_bwd_sink in the C engine (OpDef.sink_view): its strided cases' ops too, and tensor_of_result
    _op.sink_view = (RESHAPE, 0, RESHAPE_ALIAS, CLONE, UNSAFE_VIEW, contiguous_format, tensor_of_result)
SQUEEZE.node_name_dim = "SqueezeBackward1"  # torch: squeeze() -> SqueezeBackward0, squeeze(dim) -> SqueezeBackward1


@public(method=True)
def unsqueeze(input, dim):
    n = input.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dispatch(UNSQUEEZE, input, dim=dim % n)


@op("permute", view=True, node_name="PermuteBackward0")
def PERMUTE(xp, a, dims):
    if _H.range_hooks:      # a strided view: torch's as_strided, in a profile
        return _H.op_step("as_strided", a.transpose, dims)
    return a.transpose(dims)


def _inverse_dims(ctx):
    dims = ctx.attrs["dims"]
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


PERMUTE.def_backward(lambda ctx, g: (dispatch(PERMUTE, g, dims=_inverse_dims(ctx)),))
PERMUTE.quiet_backward = lambda ctx, g: ((tensor_of(g._data.transpose(_inverse_dims(ctx))),)
                                         if type(g._data) is np.ndarray else None)      # the quiet path (OpDef)
PERMUTE.sink_backward = lambda ctx, g: run_recorded_view(PERMUTE, g, dims=_inverse_dims(ctx))
PERMUTE.sink_view = (PERMUTE, 3)


@public(method=True)
def permute(input, *dims):
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the length "
                           f"of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not equal to "
                           f"len(dims) = {len(dims)}")
    dims = norm_dims(dims, input.ndim)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return dispatch(PERMUTE, input, dims=dims)


@op("transpose", view=True, node_name="TransposeBackward0")
def TRANSPOSE(xp, a, dim0, dim1):
    if _H.range_hooks:      # a strided view: torch's as_strided, in a profile
        return _H.op_step("as_strided", a.swapaxes, dim0, dim1)
    return a.swapaxes(dim0, dim1)     # the method: no trip through numpy's Python-level swapaxes


@TRANSPOSE.def_backward
def _(ctx, g):
    return (dispatch(TRANSPOSE, g, dim0=ctx.attrs["dim0"], dim1=ctx.attrs["dim1"]),)


TRANSPOSE.quiet_backward = lambda ctx, g: ((tensor_of(g._data.swapaxes(ctx.attrs["dim0"], ctx.attrs["dim1"])),)
                                           if type(g._data) is np.ndarray else None)   # the quiet path (OpDef)
TRANSPOSE.sink_backward = lambda ctx, g: run_recorded_view(TRANSPOSE, g, dim0=ctx.attrs["dim0"], dim1=ctx.attrs["dim1"])
TRANSPOSE.sink_view = (TRANSPOSE, 2)


@public(method=True, aliases=("swapaxes", "swapdims"))
def transpose(input, dim0, dim1):
    if input.ndim == 0:
        return view(input, ())   # torch: transposing a 0-d tensor is a no-op view
    d0, d1 = norm_dims((dim0, dim1), input.ndim)
    return dispatch(TRANSPOSE, input, dim0=d0, dim1=d1)


swapaxes = swapdims = transpose


@op("t", view=True, node_name="TBackward0")
def T(xp, a):
    if _H.range_hooks:      # torch's t is transpose(0, 1), a strided view (as_strided), in a profile
        # (a.transpose(): a.T for the <= 2 dims t takes, as a bound method: no Python function to call)
        return _H.op_step("transpose", _H.op_step, "as_strided", a.transpose)
    return a.T


@T.def_backward
def _(ctx, g):
    return (dispatch(T, g),)


T.quiet_backward = lambda ctx, g: (tensor_of(g._data.T),)     # the engine's quiet path (see OpDef)
T.sink_backward = lambda ctx, g: run_recorded_view(T, g)     # (OpDef.sink_backward)
T.sink_view = (T, 1)


@public(method=True)
def t(input):
    """torch's aten::t, an op of its own (its node is TBackward0): linear and addmm's backward use it."""
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return dispatch(T, input)


@public(method=True, aliases=("moveaxis",))
@torch_op("movedim")
def movedim(input, source, destination):
    src = norm_dims(source, input.ndim)
    dst = norm_dims(destination, input.ndim)
    order = [d for d in range(input.ndim) if d not in src]
    for s, d in sorted(zip(dst, src)):
        order.insert(s, d)
    return permute(input, *order)


moveaxis = movedim


@op("repeat", node_name="RepeatBackward0")
def REPEAT(xp, a, repeats):
    if len(repeats) < a.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    a = a.reshape((1,) * (len(repeats) - a.ndim) + a.shape)
    return xp.tile(a, repeats)


@REPEAT.def_backward
def _(ctx, g):
    reps = ctx.attrs["repeats"]
    shape = tuple(ctx.in_meta[0][0])
    shape = (1,) * (len(reps) - len(shape)) + shape
    inter = []
    for r, s in zip(reps, shape):
        inter += [r, s]
    gr = reshape(g, tuple(inter)).sum(dim=tuple(range(0, 2 * len(reps), 2)))
    return (reshape(gr, ctx.in_meta[0][0]),)


@public(method=True)
def repeat(input, *repeats):
    return dispatch(REPEAT, input, repeats=_shape_arg(repeats))


@public(method=True)
def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


@op("contiguous", node_name="CloneBackward0")
def CONTIGUOUS(xp, a, memory_format=None):
    """memory_format: None (contiguous_format) or channels_last(_3d), whose strides torch's gives."""
    if _H.range_hooks:      # torch's contiguous is a clone in the memory format
        return _H.op_step("clone", CLONE.kernel, xp, a, memory_format or contiguous_format)
    if memory_format is not None:
        return copy_strided(xp, a, format_strides(a.shape, memory_format))
    return xp.ascontiguousarray(a)


CONTIGUOUS.def_backward(lambda ctx, g: (g,))
CONTIGUOUS.quiet_backward = CONTIGUOUS.backward      # the formula itself: nothing to dispatch


@public(method=True)
def contiguous(input, memory_format=None):
    """The tensor itself when it is contiguous in `memory_format` already, else a copy that is (torch's
    strides for channels_last(_3d))."""
    if memory_format is None or memory_format is contiguous_format:
        if input._data.flags.c_contiguous:
            return input
        return dispatch(CONTIGUOUS, input)
    check_format(memory_format, "contiguous")
    if memory_format is preserve_format:    # torch's: the tensor itself when it is contiguous, else refused
        if input._data.flags.c_contiguous:
            return input
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    format_strides(input.shape, memory_format)      # (the rank check, before asking for the strides)
    if is_contiguous_as(input._data, memory_format):
        return input
    return dispatch(CONTIGUOUS, input, memory_format=memory_format)


@op("cat", listarg=True, node_name="CatBackward0")
def CAT(xp, arrays, dim=0):
    if _H.range_hooks:
        return _cat_steps(xp, arrays, dim)
    return _cat(xp, arrays, dim)


def _cat_steps(xp, arrays, dim):
    """cat with the narrows torch's CPU cat takes of its result, each in its range (a slice, a strided view), as
    torch's cat_out_cpu takes them: none where the inputs are contiguous, of the result's dtype and the kernel
    serial (fewer than 32768 elements or one thread); else one (of the first input's size) where all have the
    same sizes and strides (its iterator reused), else one per input (torch's legacy empty 1-d ones left out)."""
    r = _cat(xp, arrays, dim)
    dt = r.dtype
    if r.size < 32768 or _threads.known_num_threads() == 1:    # serial: no narrow where all are plain (commonest)
        for a in arrays:        # (a legacy empty 1-d input of another dtype: the loop below decides)
            if a.dtype is not dt or not a.flags.c_contiguous:
                break
        else:
            return r
    keep = []
    same_dtype = contiguous = same_layout = True      # (one loop, no generator frames: a cat per time step)
    for a in arrays:
        if a.ndim == 1 and a.shape[0] == 0:
            continue
        if keep and (a.shape != keep[0].shape or a.strides != keep[0].strides):
            same_layout = False
        keep.append(a)
        if a.dtype != dt:
            same_dtype = False
        if not a.flags.c_contiguous:
            contiguous = False
    if not keep:
        return r
    if same_dtype and contiguous and (r.size < 32768 or _threads.known_num_threads() == 1):
        return r
    if same_dtype and same_layout and r.flags.c_contiguous:
        keep = keep[:1]
    step = _H.op_step
    start = 0
    lead = (slice(None),) * dim
    view = r.__getitem__
    for a in keep:
        n = a.shape[dim]
        # narrow's kernel and its own steps (slice > as_strided), inline: a cat per time step of a recurrent cell
        step("narrow", step, "slice", step, "as_strided", view, lead + (slice(start, start + n),))
        start += n
    return r


def _cat(xp, arrays, dim):
    try:        # the common case (NumPy's checks are torch's there); a failure or torch's legacy empty 1-d inputs below
        return _cat_layout(xp.concatenate(arrays, axis=dim), arrays)
    except ValueError:
        pass
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    nd = max(a.ndim for a in arrays)
    if nd == 1 and all(a.shape[0] == 0 for a in arrays):
        return xp.concatenate(arrays)       # (torch's: any dim, as it is not wrapped)
    arrays = [a for a in arrays if not (a.ndim == 1 and a.shape[0] == 0 and nd > 1)]
    ref = arrays[0]
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} and {a.ndim}")
        for d in range(a.ndim):
            if d != dim % a.ndim and a.shape[d] != ref.shape[d]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                   f"{ref.shape[d]} but got size {a.shape[d]} for tensor number {i} in the list.")
    return _cat_layout(xp.concatenate(arrays, axis=dim), arrays)


def _cat_layout(r, arrays):
    """cat's (and stack's) result in torch's layout: channels-last when every input is, else C order (NumPy keeps
    the inputs' common order: transposed inputs gave a transposed result, which .view() then refused)."""
    if r.flags.c_contiguous or all(a.ndim == 4 and is_contiguous_as(a, channels_last) for a in arrays):
        return r
    return r.copy(order="C")


def _cat_parts(ctx, ndim):
    """narrow's attributes for each input's part of cat's gradient (of ndim dims), None for torch's legacy empty
    1-d inputs."""
    dim = ctx.attrs.get("dim", 0)
    out = []
    start = 0
    for meta in ctx.in_meta:
        shape = meta[0]
        if len(shape) == 1 and shape[0] == 0 and ndim > 1:
            out.append(None)
            continue
        n = shape[dim]
        out.append({"dim": dim, "start": start, "length": n})
        start += n
    return out


def _cat_bwd(ctx, g):
    """Each input's part of g: `narrow` dispatched."""
    return tuple(None if p is None else narrow(g, **p) for p in _cat_parts(ctx, g.ndim))


def _cat_bwd_sink(ctx, g):
    """_cat_bwd with its narrows recorded, not dispatched (OpDef.sink_backward), each a view of g as the
    dispatched narrow's; None when g is not on NumPy."""
    return run_recorded_views(NARROW, g, _cat_parts(ctx, g.ndim))


CAT.def_backward(_cat_bwd)
CAT.sink_backward = _cat_bwd_sink


@public(aliases=("concat", "concatenate"))
def cat(tensors, dim=0):
    tensors = _tensors(tensors, ValueError, "tensorlib.cat(): expected a non-empty list of Tensors")
    return dispatch(CAT, tensors, dim=_cat_dim(tensors, dim))


def _tensors(tensors, error, message):
    """cat's and stack's operand list: a list led by a tensor as it is (execute_list checks the rest in its one
    pass), else tensor_list's, refused with `error(message)` when empty."""
    if type(tensors) is list and tensors and type(tensors[0]) is Tensor:
        return tensors
    tensors = tensor_list(tensors)
    if not tensors:
        raise error(message)
    return tensors


def _cat_dim(tensors, dim):
    """torch's legacy_cat_wrap_dim: dim wrapped by the first input that is not a legacy empty 1-d tensor (as it
    is when all are). A 0-d input up to that one is refused here; one after it, by the kernel's failure path
    (_cat), with torch's message either way."""
    for i, t in enumerate(tensors):
        if type(t) is not Tensor:
            tensor_list(tensors)        # (torch's TypeError)
        nd = t._data.ndim
        if nd == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
        if not (nd == 1 and t._data.shape[0] == 0):
            return norm_dims(dim, nd)[0]
    return dim


concat = concatenate = cat


@op("stack", listarg=True, node_name="StackBackward0")
def STACK(xp, arrays, dim=0):
    s = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != s:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s)} at entry 0 and "
                               f"{list(a.shape)} at entry {i}")
    if _H.range_hooks:
        return _cat_layout(_stack_steps(xp, arrays, dim), arrays)
    if xp is np:
        nd = s.__len__()
        dim = dim + nd + 1 if dim < 0 else dim
        if dim < nd:    # torch's own steps: a cat along dim, a view that splits it (no new axis on each input)
            return _cat_layout(np.concatenate(arrays, axis=dim).reshape(s[:dim] + (len(arrays),) + s[dim:]), arrays)
        idx = _new_axis(dim)      # np.stack's steps (a new axis on each, one concatenation) without its checks
        return _cat_layout(np.concatenate([a[idx] for a in arrays], axis=dim), arrays)
    return _cat_layout(xp.stack(arrays, axis=dim), arrays)


def _stack_steps(xp, arrays, dim):
    """The stack in the steps torch's stack takes, each in the range of torch's op for it: below the last
    dimension a cat of the inputs along dim (with its own steps, _cat_steps) and a view that splits that
    dimension; at the last, an unsqueeze (a strided view) per input and a cat."""
    nd = arrays[0].ndim
    dim = dim + nd + 1 if dim < 0 else dim
    step = _H.op_step
    if dim < nd:
        shape = arrays[0].shape
        r = step("cat", _cat_steps, xp, arrays, dim)
        return step("view", r.reshape, shape[:dim] + (len(arrays),) + shape[dim:])
    idx = _new_axis(dim)
    views = [step("unsqueeze", step, "as_strided", a.__getitem__, idx) for a in arrays]
    return step("cat", _cat_steps, xp, views, dim)


@STACK.def_backward
def _(ctx, g):      # torch's stack_tensors_backward: a select of g per input
    dim = ctx.attrs.get("dim", 0)
    head = (slice(None),) * dim
    return tuple(dispatch(op_at("select"), g, idx=head + (i,)) for i in range(len(ctx.in_meta)))


def _stack_bwd_arrays(ctx, g, sink=False):
    """STACK's formula on a NumPy gradient: its selects' views made directly (the quiet path) or, with `sink`,
    run as the recorded ops (OpDef.sink_backward), each marked a view of g as the dispatched op's is."""
    d = g._data
    if type(d) is not np.ndarray:
        return None
    head = (slice(None),) * ctx.attrs.get("dim", 0)
    n = len(ctx.in_meta)
    if not sink:
        return tuple(tensor_of(d[head + (i, Ellipsis)]) for i in range(n))
    return run_recorded_views(op_at("select"), g, [{"idx": head + (i,)} for i in range(n)])


STACK.quiet_backward = _stack_bwd_arrays
STACK.sink_backward = with_defaults(_stack_bwd_arrays, sink=True)


@public
def stack(tensors, dim=0):
    tensors = _tensors(tensors, RuntimeError, "stack expects a non-empty TensorList")
    return dispatch(STACK, tensors, dim=norm_dims(dim, tensors[0].ndim + 1)[0])


@op("unbind", view=True, node_name="UnbindBackward0")
def UNBIND(xp, a, dim=0):
    """torch's unbind: a select (a strided view) per piece, in a profile; 0-d views too."""
    if _H.range_hooks:
        step = _H.op_step
        return tuple(step("select", step, "as_strided", a.__getitem__, (slice(None),) * dim + (i, Ellipsis))
                     for i in range(a.shape[dim]))
    return tuple(a[(slice(None),) * dim + (i, Ellipsis)] for i in range(a.shape[dim]))


@UNBIND.def_backward
def _(ctx, g0, *gs):
    return (stack((g0,) + gs, ctx.attrs.get("dim", 0)),)


@public(method=True)
def unbind(input, dim=0):
    d = norm_dims(dim, input.ndim)[0]
    r = dispatch(UNBIND, input, dim=d)
    return _multi_views(r if isinstance(r, tuple) else (r,), "Unbind")


def _multi_views(outs, name):
    """Outputs of a function of several views, marked so while autograd records (torch's MULTI_OUTPUT_NODE):
    an in-place op on one then raises torch's error rather than rewriting the others' history."""
    if STATE.grad_enabled:
        for t in outs:
            if t._requires_grad and t._base is not None:
                t._multi_view = name
    return outs


@op("split_with_sizes", view=True, node_name="SplitWithSizesBackward0")
def SPLIT(xp, a, sizes, dim=0):
    """torch's split_with_sizes: a strided view (as_strided) per piece, in a profile."""
    out = []
    start = 0
    step = _H.op_step if _H.range_hooks else None
    for s in sizes:
        idx = narrow_index(dim, start, s)
        out.append(a[idx] if step is None else step("as_strided", a.__getitem__, idx))
        start += s
    return tuple(out)


def _split_size_kernel(xp, a, split_size, dim=0):
    """torch's split(int) (and unsafe_split): a narrow per piece (a slice, a strided view, in a profile), the
    last piece what is left (one empty piece of a dimension of size 0)."""
    n = a.shape[dim]
    step = _H.op_step if _H.range_hooks else None
    out = []
    for start in range(0, n, split_size) if n else (0,):
        length = min(split_size, n - start)
        out.append(a[narrow_index(dim, start, length)] if step is None else
                   step("narrow", NARROW.kernel, xp, a, dim, start, length))     # (narrow's own steps)
    return tuple(out)


SPLIT_SIZE = op("split", view=True, node_name="SplitBackward0")(_split_size_kernel)
UNSAFE_SPLIT = op("unsafe_split", view=True, node_name="UnsafeSplitBackward0")(_split_size_kernel)


def _split_bwd(ctx, *gs):
    return (cat(gs, ctx.attrs.get("dim", 0)),)


def _split_bwd_sink(ctx, *gs):
    """SPLIT's formula, cat's kernel on the gradients' arrays recorded as the dispatched cat (OpDef.sink_backward;
    the engine passes every gradient here); None when one is not on NumPy."""
    arrays = numpy_arrays(gs)
    return None if arrays is None else (tensor_of(run_recorded(CAT, arrays, dim=ctx.attrs.get("dim", 0))),)


for _op in (SPLIT, SPLIT_SIZE, UNSAFE_SPLIT):
    _op.def_backward(_split_bwd)
    _op.sink_backward = _split_bwd_sink


@public(method=True)
def split(tensor, split_size_or_sections, dim=0):
    """torch's split: split(int) is its op `split` (SplitBackward0), a list split_with_sizes
    (SplitWithSizesBackward0), each one op in a profile, as torch's Tensor.split calls them."""
    return _multi_views(_split(tensor, split_size_or_sections, dim),
                        "Split" if isinstance(split_size_or_sections, int) else "SplitWithSizes")


def _split(tensor, split_size_or_sections, dim=0, op=SPLIT_SIZE):
    d = norm_dims(dim, tensor.ndim)[0]
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and n > 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        r = dispatch(op, tensor, split_size=s, dim=d)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {d}), but got split_sizes={sizes}")
        r = dispatch(SPLIT, tensor, sizes=tuple(sizes), dim=d)
    return r if isinstance(r, tuple) else (r,)


@public(method=True)
def unsafe_split(tensor, split_size, dim=0):
    """torch's unsafe_split: split(int)'s pieces, not views to autograd (UnsafeSplitBackward0)."""
    return _split(tensor, split_size, dim, UNSAFE_SPLIT)


@public(method=True)
@torch_op("unsafe_chunk")
def unsafe_chunk(input, chunks, dim=0):
    return _chunk(input, chunks, dim, UNSAFE_SPLIT)


@public(method=True)
@torch_op("chunk")
def chunk(input, chunks, dim=0):
    return _chunk(input, chunks, dim, SPLIT_SIZE)


def _chunk(input, chunks, dim, op):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = norm_dims(dim, input.ndim)[0]
    n = input.shape[d]
    size = -(-n // chunks) if n else 0
    if not n:
        return (input,)
    out = _split(input, size if size else 1, d, op)
    return _multi_views(out, "Split") if op is SPLIT_SIZE else out


@public(method=True)
@torch_op("tensor_split")
def tensor_split(input, sections, dim=0):
    d = norm_dims(dim, input.ndim)[0]
    n = input.shape[d]
    if isinstance(sections, int):
        q, r = divmod(n, sections)
        sizes = [q + 1] * r + [q] * (sections - r)
    else:
        idx = [0] + list(sections) + [n]
        sizes = [max(0, min(b, n) - min(a, n)) for a, b in zip(idx, idx[1:])]
    out = []        # torch's: a slice per piece, each its own view (SliceBackward0), modifiable in place
    start = 0
    for s in sizes:
        out.append(dispatch(op_at("slice"), input, idx=narrow_index(d, start, s)))
        start += s
    return tuple(out)


def narrow_index(dim, start, length):
    """The basic index of narrow(dim, start, length): torch's slice of that dim."""
    return (slice(None),) * dim + (slice(start, start + length),)


@op("narrow", view=True, node_name="SliceBackward0")
def NARROW(xp, a, dim, start, length):
    """torch's narrow: a slice (a strided view) inside, in a profile; its node is the slice's (SliceBackward0,
    slice_backward: ops/index.py wires it)."""
    idx = (slice(None),) * dim + (slice(start, start + length),)    # (narrow_index's, inline: a frame less)
    if _H.range_hooks:
        return _H.op_step("slice", _H.op_step, "as_strided", a.__getitem__, idx)
    return a[idx]


@public(method=True)
def narrow(input, dim, start, length):
    d = norm_dims(dim, input.ndim)[0]
    if start < 0:
        start += input.shape[d]
    if start < 0 or start + length > input.shape[d]:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({input.shape[d]}).")
    return dispatch(NARROW, input, dim=d, start=start, length=length)


@op("flip", node_name="FlipBackward0")
def FLIP(xp, a, dims):
    if not a.ndim:          # a 0-d tensor's dims (0 or -1): its one element, copied
        return a.copy()
    return xp.flip(a, axis=dims).copy()    # torch's flip copies; NumPy's is a view that would alias the input


FLIP.def_backward(lambda ctx, g: (dispatch(FLIP, g, dims=ctx.attrs["dims"]),))


@public(method=True)
def flip(input, *dims):
    return dispatch(FLIP, input, dims=norm_dims(_shape_arg(dims), input.ndim))


@public(method=True)
@torch_op("fliplr")
def fliplr(input):
    """flip(input, 1): torch's FlipBackward0, for tensors of 2 or more dims."""
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return dispatch(FLIP, input, dims=(1,))


@public(method=True)
@torch_op("flipud")
def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return dispatch(FLIP, input, dims=(0,))


@public(method=True)
@torch_op("ravel")
def ravel(input):
    """reshape(-1), a view where the layout allows it (torch's ravel)."""
    return reshape(input, -1)


@op("rot90", node_name="Rot90Backward0")
def ROT90(xp, a, k=1, dims=(0, 1)):
    return xp.ascontiguousarray(xp.rot90(a, k, axes=dims))


ROT90.def_backward(lambda ctx, g: (dispatch(ROT90, g, k=-ctx.attrs["k"], dims=ctx.attrs["dims"]),))


@public(method=True)
def rot90(input, k=1, dims=(0, 1)):
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (d + input.ndim if d < 0 else d for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {dims[0]} and dim1 = {dims[1]}")
    if not (0 <= d0 < input.ndim and 0 <= d1 < input.ndim):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], "
                         f"but got {dims[0] if not 0 <= d0 < input.ndim else dims[1]})")
    return dispatch(ROT90, input, k=int(k) % 4, dims=(d0, d1))


@op("roll")
def ROLL(xp, a, shifts, dims=None):
    return _cat_layout(xp.roll(a, shifts, axis=dims), (a,))    # torch's rolls are cats of two slices


ROLL.def_backward(lambda ctx, g: (dispatch(ROLL, g, shifts=tuple(-s for s in ctx.attrs["shifts"]) if isinstance(
    ctx.attrs["shifts"], tuple) else -ctx.attrs["shifts"], dims=ctx.attrs.get("dims")),))


@public(method=True)
def roll(input, shifts, dims=None):
    return dispatch(ROLL, input, shifts=tuple(shifts) if isinstance(shifts, list) else shifts,
                    dims=tuple(dims) if isinstance(dims, list) else dims)


@public(name="expand", function=False, method=True)
def _expand_method(self, *sizes):
    return expand(self, *sizes)


@public(name="expand_as", function=False, method=True)
@torch_op("expand_as")
def _expand_as(self, other):
    return expand(self, tuple(other.shape))


public(lambda self: permute(self, *reversed(range(self.ndim))) if self.ndim >= 2 else self, name="T",
       function=False, method=True, prop=True)


@public(name="H", function=False, method=True, prop=True)
def _H_prop(self):
    """torch's Tensor.H: a matrix's conjugate transpose (a real one's transpose)."""
    if self.ndim == 0:
        return self.conj()
    if self.ndim != 2:
        more = " For batches of matrices, consider using tensor.mH" if self.ndim > 2 else ""
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor.{more}")
    return transpose(self, 0, 1).conj()
public(lambda self: transpose(self, -2, -1), name="mT", function=False, method=True, prop=True)


# --- triangles and diagonals --------------------------------------------------------------------

def _tri_kernel(fn):
    def kernel(xp, a, diagonal=0):
        if a.ndim < 2:
            raise RuntimeError(f"{fn}: input tensor must have at least 2 dimensions")
        r = getattr(xp, fn)(a, diagonal)
        return r if r.flags.c_contiguous else r.copy(order="C")     # torch's is contiguous; NumPy's keeps a's layout
    return kernel


TRIL = op("tril", node_name="TrilBackward0")(_tri_kernel("tril"))
TRIU = op("triu", node_name="TriuBackward0")(_tri_kernel("triu"))
TRIL.def_backward(lambda ctx, g: (dispatch(TRIL, g, diagonal=ctx.attrs.get("diagonal", 0)),))
TRIU.def_backward(lambda ctx, g: (dispatch(TRIU, g, diagonal=ctx.attrs.get("diagonal", 0)),))


@public(method=True)
def tril(input, diagonal=0):
    return dispatch(TRIL, input, diagonal=int(diagonal))


@public(method=True)
def triu(input, diagonal=0):
    return dispatch(TRIU, input, diagonal=int(diagonal))


@public(name="tril_", function=False, method=True)
@torch_op("tril_")
def _tril_(self, diagonal=0):
    return copy_(self, tril(self, diagonal))


@public(name="triu_", function=False, method=True)
@torch_op("triu_")
def _triu_(self, diagonal=0):
    return copy_(self, triu(self, diagonal))


def _diag_idx(xp, rows, cols, offset):
    """Row and column indices of the `offset` diagonal of a rows x cols matrix."""
    if offset >= 0:
        n = max(0, min(rows, cols - offset))
        r = xp.arange(n)
        return r, r + offset
    n = max(0, min(rows + offset, cols))
    r = xp.arange(n)
    return r - offset, r


@op("diagonal", view=True, node_name="DiagonalBackward0")
def DIAGONAL(xp, a, offset=0, dim1=0, dim2=1):
    """A view, as torch's: writing into it (`A.diagonal().fill_(0)`, `.add_(eps)`) writes into `a` (NumPy's
    diagonal views come read-only, made writable here where `a` is); a strided view, torch's as_strided in a
    profile."""
    if _H.range_hooks:
        return _H.op_step("as_strided", _diagonal_view, xp, a, offset, dim1, dim2)
    return _diagonal_view(xp, a, offset, dim1, dim2)


def _diagonal_view(xp, a, offset, dim1, dim2):
    d = xp.diagonal(a, offset, dim1, dim2)
    if xp is np and not d.flags.writeable and a.flags.writeable:
        d.flags.writeable = True
    return d


@op("diagonal_backward", node_name="DiagonalBackwardBackward0")
def DIAGONAL_BACKWARD(xp, g, shape, offset=0, dim1=0, dim2=1):
    """torch's diagonal_backward: zeros of `shape` with g written on the diagonal (dim1, dim2, offset)."""
    out = xp.zeros(shape, dtype=g.dtype)
    m = xp.moveaxis(out, (dim1, dim2), (-2, -1))
    r, c = _diag_idx(xp, m.shape[-2], m.shape[-1], offset)
    m[..., r, c] = g
    return out


@DIAGONAL.def_backward
def _(ctx, g):
    return (dispatch(DIAGONAL_BACKWARD, g, shape=tuple(ctx.in_meta[0][0]), **ctx.attrs),)


@DIAGONAL_BACKWARD.def_backward
def _(ctx, gg):
    a = {k: v for k, v in ctx.attrs.items() if k != "shape"}
    return (dispatch(DIAGONAL, gg, **a),)


@op("diag_embed", node_name="DiagEmbedBackward0")
def DIAG_EMBED(xp, a, offset=0, dim1=-2, dim2=-1):
    n = a.shape[-1] + abs(offset)
    out = xp.zeros(a.shape[:-1] + (n, n), dtype=a.dtype)
    r, c = _diag_idx(xp, n, n, offset)
    out[..., r, c] = a
    nd = out.ndim
    return xp.ascontiguousarray(xp.moveaxis(out, (-2, -1), (dim1 % nd, dim2 % nd)))


DIAG_EMBED.def_backward(lambda ctx, g: (dispatch(DIAGONAL, g, **ctx.attrs),))


@public(method=True)
def diagonal(input, offset=0, dim1=0, dim2=1):
    d1, d2 = norm_dims((dim1, dim2), input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return dispatch(DIAGONAL, input, offset=int(offset), dim1=d1, dim2=d2)


@public(method=True)
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    nd = input.ndim + 1
    d1, d2 = norm_dims((dim1, dim2), nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return dispatch(DIAG_EMBED, input, offset=int(offset), dim1=d1, dim2=d2)


@public(method=True)
@torch_op("diag")
def diag(input, diagonal=0):
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return dispatch(DIAGONAL, input, offset=int(diagonal), dim1=0, dim2=1)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


# --- broadcasting, stacking, repeating ----------------------------------------------------------

@public(method=True)
def broadcast_to(input, size):
    return expand(input, tuple(size))


@public
@torch_op("broadcast_tensors")
def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    shape = _broadcast_shape(tensors)
    for t in tensors:
        out.append(t if t._data.shape == shape else expand(t, shape))
    return tuple(out)


def _broadcast_shape(tensors):
    shapes = [t._data.shape for t in tensors]
    nd = max(map(len, shapes), default=0)
    shape = [1] * nd
    for ts in shapes:
        for i, s in enumerate(ts[::-1]):
            j = nd - 1 - i
            if shape[j] == 1:
                shape[j] = s
            elif s != 1 and s != shape[j]:
                raise RuntimeError(f"The size of tensor a ({shape[j]}) must match the size of tensor b ({s}) at "
                                   f"non-singleton dimension {j}")
    return tuple(shape)


@public
def meshgrid(*tensors, indexing=None):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
    ts = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    n = len(ts)
    shape = tuple(int(t.shape[0]) for t in ts)
    out = [expand(t.reshape(tuple(-1 if i == j else 1 for j in range(n))), shape) for i, t in enumerate(ts)]
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def _atleast(t, n):
    while t.ndim < n:
        t = t.unsqueeze(0)
    return t


@public
@torch_op("hstack")
def hstack(tensors):
    tensors = [_atleast(t, 1) for t in tensors]
    return cat(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


@public(aliases=("row_stack",))
@torch_op("vstack")
def vstack(tensors):
    return cat([_atleast(t, 2) for t in tensors], 0)


row_stack = vstack


@public
@torch_op("dstack")
def dstack(tensors):
    ts = []
    for t in tensors:
        t = _atleast(t, 2)
        ts.append(t.unsqueeze(-1) if t.ndim == 2 else t)
    return cat(ts, 2)


@public
@torch_op("column_stack")
def column_stack(tensors):
    return cat([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


@public(method=True)
@torch_op("repeat_interleave")
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """output_size: torch's hint of the result's length along dim (it spares a device sync), checked as
    torch checks it; NumPy needs no hint, so a right one changes nothing and a wrong one raises."""
    if repeats is None:     # torch.repeat_interleave(repeats): arange(len) repeated
        r = input
        return repeat_interleave(arange(r.shape[0], device=r.device), r, output_size=output_size)
    if dim is None:
        input = input.reshape(-1)
        dim = 0
    d = norm_dims(dim, input.ndim)[0]
    n = input.shape[d] if input.ndim else 1
    if isinstance(repeats, Tensor):
        if repeats.ndim == 0 or repeats.numel() == 1:
            repeats = int(repeats.item())
        else:
            if repeats.ndim != 1:
                raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
            if repeats.shape[0] != n:
                raise RuntimeError("repeats must have the same size as input along dim, but got repeats.size(0) = "
                                   f"{repeats.shape[0]} and input.size({d}) = {n}")
            reps = [int(v) for v in repeats.tolist()]
            if any(v < 0 for v in reps):
                raise RuntimeError("repeats can not be negative")
            idx = [i for i, v in enumerate(reps) for _ in range(v)]
            if output_size is not None and output_size != len(idx):
                raise RuntimeError("allocated size does not match required size")
            return input.index_select(d, _tensor(idx, dtype=np.int64, device=input.device))
        if output_size is not None and output_size != n * repeats:     # torch's tensor path: one count each
            raise RuntimeError("allocated size does not match required size")
    elif output_size is not None and output_size != n * repeats:
        raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {n * repeats} but got {output_size}")
    if repeats < 0:
        raise RuntimeError("repeats can not be negative")
    if input.ndim == 0:
        input = input.reshape(1)
    idx = [i for i in range(n) for _ in range(repeats)]
    return input.index_select(d, _tensor(idx, dtype=np.int64, device=input.device))


@public(method=True)
def select(input, dim, index):
    nd = input.ndim
    if nd == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = norm_dims(dim, nd)[0]
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {dim}")
    return dispatch(op_at("select"), input, idx=(slice(None),) * d + (int(index),))


@public(method=True)
def take_along_dim(input, indices, dim=None):
    if dim is None:
        return input.reshape(-1).gather(0, indices.reshape(-1))
    d = norm_dims(dim, input.ndim)[0]
    if input.ndim != indices.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {input.ndim} dimensions for input, and {indices.ndim} dimensions for indices")
    shp_i = list(input.shape)
    shp_x = list(indices.shape)
    shp_i[d] = shp_x[d] = 1
    b = list(_broadcast_shape([input.new_zeros(shp_i), indices.new_zeros(shp_x)]))
    bi, bx = list(b), list(b)
    bi[d] = input.shape[d]
    bx[d] = indices.shape[d]
    return expand(input, tuple(bi)).gather(d, expand(indices, tuple(bx)))


@public(method=True)
@torch_op("diff")
def diff(input, n=1, dim=-1, prepend=None, append=None):
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    d = norm_dims(dim, input.ndim)[0]
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = hi ^ lo if x._data.dtype == np.bool_ else hi - lo
    return x


