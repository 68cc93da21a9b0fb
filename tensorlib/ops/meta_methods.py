"""Tensor methods on a tensor's metadata and storage: the in-place view changes (squeeze_, unsqueeze_, t_,
transpose_, swapaxes_, swapdims_), sum_to_size, storage_offset, new_empty_strided, output_nr,
apply_ / map_, resize_ / resize_as_ (share_memory_ / is_shared are in shared_memory.py).
(register_post_accumulate_grad_hook is the Tensor's own, beside register_hook: the engine runs it.)

An in-place view change is its own op (torch's aten::squeeze_ ..., whose nodes are SqueezeBackward3/4/5,
UnsqueezeBackward1, TBackward1, TransposeBackward1): the kernel is the out-of-place view's, and the tensor
then takes the view's array (the same memory, no copy) and, under autograd, its node, as torch's in-place
view ops rewrite the tensor's sizes and strides and its grad_fn. Values are checked against torch in
devtools/torch_compat/test_namespace_against_torch.py."""
from __future__ import annotations

from .. import _dtype as D
from .._memory_format import (check as _check_format, format_strides as _format_strides,
                              preserve_format as _preserve_format, suggest as _suggest)
from ..dispatch import STATE, record_range
from .broadcast import add_at, norm_dims
from .namespace import empty_strided
from .shape import SQUEEZE, T, TRANSPOSE, UNSQUEEZE, view
from ._define import Tensor, dispatch, np, op, public, torch_op

__all__ = ["SQUEEZE_", "SQUEEZE_DIMS_", "UNSQUEEZE_", "T_", "TRANSPOSE_"]

_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def _view_op(name, base, node_name, **kw):
    """An in-place view op: `base`'s kernel and backward under torch's in-place node name."""
    o = op(name, view=True, node_name=node_name)(base.kernel)
    o.def_backward(base.backward)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


SQUEEZE_ = _view_op("squeeze_", SQUEEZE, "SqueezeBackward3", node_name_dim="SqueezeBackward4")
SQUEEZE_DIMS_ = _view_op("squeeze_dims_", SQUEEZE, "SqueezeBackward5")     # squeeze_(dims): torch's aten::squeeze_
UNSQUEEZE_ = _view_op("unsqueeze_", UNSQUEEZE, "UnsqueezeBackward1")
T_ = _view_op("t_", T, "TBackward1")
TRANSPOSE_ = _view_op("transpose_", TRANSPOSE, "TransposeBackward1")


def _rebind(self, o, **attrs):
    """Run the view op `o` on self and make self that view: its array (same memory) and, when autograd
    records, its node; the version counter moves, as torch's in-place ops move it."""
    if self._requires_grad and STATE.grad_enabled and self._grad_fn is None and self._base is None:
        raise RuntimeError(_LEAF)
    out = dispatch(o, self, **attrs)
    self._data = out._data
    if out._grad_fn is not None:
        self._grad_fn = out._grad_fn
        self._output_nr = out._output_nr
    b = self._base
    (b if b is not None else self)._version += 1
    return self


@public(function=False, method=True)
def squeeze_(self, dim=None):
    """In place: drop size-1 dims (all, one, or those of a tuple)."""
    if dim is None:
        return _rebind(self, SQUEEZE_)
    dims = norm_dims(dim, self.ndim) if self.ndim else ()
    if isinstance(dim, int):
        return _rebind(self, SQUEEZE_, dim=dims)
    return _rebind(self, SQUEEZE_DIMS_, dim=dims)


@public(function=False, method=True)
def unsqueeze_(self, dim):
    n = self.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return _rebind(self, UNSQUEEZE_, dim=dim % n)


@public(function=False, method=True)
def t_(self):
    if self.ndim > 2:
        raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
    return _rebind(self, T_)


@public(function=False, method=True, aliases=("swapaxes_", "swapdims_"))
def transpose_(self, dim0, dim1):
    if self.ndim == 0:
        norm_dims((dim0, dim1), 0)
        return self
    d0, d1 = norm_dims((dim0, dim1), self.ndim)
    return _rebind(self, TRANSPOSE_, dim0=d0, dim1=d1)


# --- sizes and storage -------------------------------------------------------------------------------------

def _size_arg(size, fn):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not size and fn == "sum_to_size":
        raise TypeError('sum_to_size() missing 1 required positional arguments: "size"')
    return tuple(int(s) for s in size)


@public(function=False, method=True)
def sum_to_size(self, *size):
    """torch's at::sum_to: the sum over the dims `size` broadcasts along (keepdim), then a view dropping
    the leading ones; `self` itself when the size is already its own."""
    size = _size_arg(size, "sum_to_size")
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s != 1 and s != shape[lead + i] for i, s in enumerate(size)):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    if shape == size:
        return self
    dims = list(range(lead)) + [lead + i for i, s in enumerate(size) if s == 1 and shape[lead + i] != 1]
    with record_range("sum_to_size", "op", (self,)):       # torch's composite around its sum and view
        r = self.sum(tuple(dims), keepdim=True) if dims else self
        return view(r, size) if lead > 0 else r


def _storage(a):
    """(the array that owns `a`'s memory, as a flat view, or None where it is not a contiguous array of a's dtype
    (a NumPy array over a foreign buffer), and a's offset into it, in elements): a's "storage", on either backend."""
    root = a
    while True:
        b = root.base
        if not isinstance(b, type(a)):      # NumPy's as_strided: an array over a DummyArray over the array
            b = getattr(b, "base", None) if type(b).__name__ == "DummyArray" else None
            if not isinstance(b, type(a)):
                break
        root = b
    if type(a) is np.ndarray:
        start, ptr = root.__array_interface__["data"][0], a.__array_interface__["data"][0]
    else:
        start, ptr = root.data.ptr, a.data.ptr
    flat = root.reshape(-1) if root.flags.c_contiguous and root.dtype == a.dtype else None
    return flat, (ptr - start) // a.itemsize


@public(function=False, method=True)
def storage_offset(self):
    """The offset of the tensor's first element in its storage, in elements (a view's distance from the
    start of the array that owns the memory)."""
    return int(_storage(self._data)[1])


# --- as_strided: a view of the storage with the caller's geometry ------------------------------------------

def _flat_storage(a):
    """_storage(a), refusing memory that is not an array's: as_strided and the storage objects index it."""
    flat, offset = _storage(a)
    if flat is None:
        raise RuntimeError("as_strided: the tensor's memory is not a contiguous array of its dtype (a view over a "
                           "foreign buffer); call .contiguous() first")
    return flat, offset


def _geometry_check(size, stride, offset, itemsize, storage_size):
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got strides: "
                           f"{list(stride)}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} and strides={list(stride)}")
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    need = 0 if 0 in size else offset + 1 + sum((n - 1) * st for n, st in zip(size, stride))
    if need > storage_size:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and "
                           f"itemsize {itemsize} requiring a storage size of {need * itemsize} are out of bounds for "
                           f"storage of size {storage_size * itemsize}")


@op("as_strided", view=True, save="i", node_name="AsStridedBackward0")
def AS_STRIDED(xp, a, size, stride, storage_offset=None):
    """torch.as_strided: the elements at storage_offset + sum(i_k * stride_k) of a's storage (its owning array,
    flat; storage_offset defaults to a's own), a writable view as torch's."""
    flat, own = _flat_storage(a)
    offset = own if storage_offset is None else int(storage_offset)
    size, stride = tuple(int(n) for n in size), tuple(int(st) for st in stride)
    _geometry_check(size, stride, offset, a.itemsize, flat.size)
    return xp.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=tuple(st * a.itemsize for st in stride))


def _element_offsets(xp, size, stride, offset):
    """The storage offset of every element of a (size, stride, offset) geometry, as an int64 array of `size`."""
    out = xp.full((), offset, dtype=np.int64)
    for n, st in zip(size, stride):
        out = out[..., None] + xp.arange(n, dtype=np.int64) * st
    return out


@op("as_strided_backward", node_name="AsStridedBackwardBackward0")
def AS_STRIDED_BACKWARD(xp, g, a, size, stride, storage_offset=None):
    """torch's as_strided_backward for an input without self-overlap: g summed into the storage at the view's
    elements (repeated ones accumulating), then read back at the input's elements."""
    flat, own = _flat_storage(a)
    offset = own if storage_offset is None else int(storage_offset)
    grad_storage = xp.zeros(flat.size, dtype=g.dtype)
    add_at(xp, grad_storage, _element_offsets(xp, size, stride, offset).reshape(-1), g.reshape(-1))
    in_strides = tuple(st // a.itemsize for st in a.strides)
    return grad_storage[_element_offsets(xp, a.shape, in_strides, own)]


@AS_STRIDED.def_backward
def _(ctx, g):
    return (dispatch(AS_STRIDED_BACKWARD, g, ctx.saved_inputs[0], **ctx.attrs),)


@public(method=True)
def as_strided(input, size, stride, storage_offset=None):
    return dispatch(AS_STRIDED, input, size=tuple(size), stride=tuple(stride), storage_offset=storage_offset)


@public(function=False, method=True)
def as_strided_(self, size, stride, storage_offset=None):
    """In place: the tensor takes the as_strided view's geometry over its storage (no autograd history, as
    torch's as_strided_ on a leaf)."""
    if self._requires_grad:
        raise RuntimeError("as_strided_ on a tensor that requires grad is not supported here; use as_strided")
    self._data = dispatch(AS_STRIDED, self.detach(), size=tuple(size), stride=tuple(stride),
                          storage_offset=storage_offset)._data
    return self


@public(function=False, method=True)
def new_empty_strided(self, size, stride, dtype=None, device=None, requires_grad=False, layout=None,
                      pin_memory=False):
    return empty_strided(size, stride, dtype=dtype if dtype is not None else self.dtype,
                         device=device if device is not None else self.device, requires_grad=requires_grad,
                         layout=layout, pin_memory=pin_memory)


@public(function=False, method=True, prop=True)
def output_nr(self):
    """Which output of its grad_fn this tensor is (0 for a leaf)."""
    return self._output_nr


@public(function=False, method=True)
def resize_(self, *sizes, memory_format=None):
    """torch's resize_: the tensor becomes `sizes`, contiguous, over its storage from its offset: the same
    memory while it holds enough elements (shrinking, or a reshape), else a new buffer with the old
    storage's elements first (the rest uninitialized, as torch's). Refused for tensors that require grad.
    A region named as torch's op (aten::resize_): it changes the tensor without a kernel to dispatch.
    memory_format: channels_last(_3d) restrides the result over the same memory (torch's
    empty_tensor_restride: the values are not moved)."""
    if memory_format is not None:
        _check_format(memory_format, "resize_")
        if memory_format is _preserve_format:
            raise RuntimeError("Unsupported memory formatPreserve")
        _format_strides(_size_arg(sizes, "resize_"), memory_format)     # (torch's rank check, before resizing)
    with record_range("resize_", "op", (self,)):
        _resize(self, sizes)
        if memory_format is not None:
            _restride(self, memory_format)
        return self


def _restride(self, memory_format):
    """The tensor's elements (contiguous after _resize) seen with `memory_format`'s strides."""
    strides = _format_strides(self.shape, memory_format)
    if strides is None:
        return
    a = self._data
    xp = np if type(a) is np.ndarray else _cupy()
    n = a.size
    flat, offset = _storage(a)
    if flat is not None and offset + n <= flat.size:
        flat = flat[offset:offset + n]
    elif a.flags.c_contiguous:      # (over a foreign buffer: _resize left it contiguous unless sizes were equal)
        flat = a.reshape(-1)
    else:
        raise RuntimeError("resize_: cannot restride a tensor over a foreign buffer")
    self._data = xp.lib.stride_tricks.as_strided(flat, a.shape, tuple(st * a.itemsize for st in strides))


def _resize(self, sizes):
    size = _size_arg(sizes, "resize_")
    if self._requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    a = self._data
    n = int(np.prod(size, dtype=np.int64)) if size else 1
    if tuple(a.shape) == size:
        return self
    flat, offset = _storage(a)
    if flat is not None and offset + n <= flat.size:
        self._data = flat[offset:offset + n].reshape(size)
    elif a.flags.c_contiguous and n <= a.size:
        self._data = a.reshape(-1)[:n].reshape(size)
    else:
        xp = np if type(a) is np.ndarray else _cupy()
        new = xp.empty(n, dtype=a.dtype)
        old = flat[offset:] if flat is not None else a.reshape(-1)
        k = min(old.size, n)
        new[:k] = old[:k]
        self._data = new.reshape(size)
    b = self._base
    (b if b is not None else self)._version += 1
    return self


@public(function=False, method=True)
@torch_op("resize_as_")
def resize_as_(self, the_template, memory_format=None):
    """memory_format=preserve_format: the template's suggested format (torch's)."""
    if memory_format is _preserve_format:
        memory_format = _suggest(the_template._data)
    return resize_(self, tuple(the_template.shape), memory_format=memory_format)


def _cupy():
    from .._device import cupy
    return cupy()


# --- Python callables over the elements --------------------------------------------------------------------

def _python_value(x, dtype):
    """A Python number of the tensor's kind, as torch hands one to apply_/map_'s callable."""
    if dtype.kind == "b":
        return bool(x)
    return int(x) if dtype.kind in "iu" else float(x)


def _check_callable_target(self, name):
    if type(self._data) is not np.ndarray:
        raise TypeError(f"{name} is only implemented on CPU tensors")
    if self._requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() "
                           "instead.")


@public(function=False, method=True)
def apply_(self, callable):
    """Each element replaced by callable(element), element by element in Python (CPU only, slow, as
    torch's); the result is cast to the tensor's dtype."""
    _check_callable_target(self, "apply_")
    a = self._data
    dt = a.dtype
    vals = [callable(_python_value(x, dt)) for x in a.reshape(-1).tolist()]
    for v in vals:
        if not isinstance(v, (int, float, bool, np.generic)):
            raise TypeError(f"must be real number, not {type(v).__name__}")
    a[...] = np.asarray(vals).reshape(a.shape)      # cast to the dtype (an int tensor truncates, as torch's)
    b = self._base
    (b if b is not None else self)._version += 1
    return self


@public(function=False, method=True)
def map_(self, tensor, callable):
    """Each element replaced by callable(element, other's element), `tensor` broadcast to this shape
    (CPU only, as torch's; the other tensor must be of this dtype)."""
    _check_callable_target(self, "map_")
    if not isinstance(tensor, Tensor) or tensor.dtype is not self.dtype:
        got = tensor.type() if isinstance(tensor, Tensor) else type(tensor).__name__
        raise TypeError(f"map_: expected {self.type()} for 'other' (got {got})")
    other = tensor.expand(*self.shape)._data if tuple(tensor.shape) != tuple(self.shape) else tensor._data
    if type(other) is not np.ndarray:
        raise TypeError("map_ is only implemented on CPU tensors")
    a = self._data
    dt = a.dtype
    vals = [callable(_python_value(x, dt), _python_value(y, dt))
            for x, y in zip(a.reshape(-1).tolist(), np.broadcast_to(other, a.shape).reshape(-1).tolist())]
    a[...] = np.asarray(vals).reshape(a.shape)
    b = self._base
    (b if b is not None else self)._version += 1
    return self




# --- storages: the memory a tensor's array lives in, seen as torch's storage objects ------------------------

def _storage_array(t):
    """The flat array that owns t's memory (its "storage"), on t's backend."""
    d = t._data
    if not hasattr(d, "strides"):
        raise RuntimeError("Cannot access storage of a tensor that doesn't have storage (a sparse tensor)")
    return _flat_storage(d)[0]


class UntypedStorage:
    """torch.UntypedStorage of a tensor: its owning array's bytes (read-only here). Two tensors share memory
    when their storages' data_ptr() are equal, the test programs (and safetensors) make."""

    def __init__(self, flat, tensor):
        self._flat = flat
        self._tensor = tensor       # (is_shared asks the tensor: Tensor.is_shared knows shared memory)

    def data_ptr(self):
        f = self._flat
        return f.ctypes.data if type(f) is np.ndarray else f.data.ptr

    def nbytes(self):
        return int(self._flat.nbytes)

    def size(self):
        return self.nbytes()

    def __len__(self):
        return self.nbytes()

    def element_size(self):
        return 1

    @property
    def device(self):
        from .._device import device_of
        return device_of(self._flat)

    @property
    def is_cuda(self):
        return type(self._flat) is not np.ndarray

    def is_shared(self):
        return bool(self._tensor.is_shared())

    def _bytes(self):
        f = self._flat
        return (f if type(f) is np.ndarray else f.get()).view(np.uint8)

    def tolist(self):
        return self._bytes().tolist()

    def __getitem__(self, i):
        v = self._bytes()[i]
        return v.tolist() if isinstance(v, np.ndarray) else int(v)

    def __repr__(self):
        body = "\n".join(f" {v}" for v in self.tolist())
        return f"{body}\n[{D.namespace()}.storage.UntypedStorage(device={self.device}) of size {self.nbytes()}]"


class TypedStorage(UntypedStorage):
    """torch.TypedStorage (deprecated in torch, its warning on Tensor.storage()): the storage in elements of
    the tensor's dtype."""

    @property
    def dtype(self):
        return D.from_np(self._flat.dtype)

    def size(self):
        return int(self._flat.size)

    def __len__(self):
        return self.size()

    def element_size(self):
        return int(self._flat.itemsize)

    def _untyped(self):
        return UntypedStorage(self._flat, self._tensor)

    def untyped(self):
        return self._untyped()

    def tolist(self):
        f = self._flat
        return (f if type(f) is np.ndarray else f.get()).tolist()

    def __getitem__(self, i):
        f = self._flat
        v = (f if type(f) is np.ndarray else f.get())[i]
        return v.tolist()

    def __repr__(self):
        body = "\n".join(f" {v}" for v in self.tolist())
        return (f"{body}\n[{D.namespace()}.storage.TypedStorage(dtype={self.dtype}, device={self.device}) of size "
                f"{self.size()}]")


@public(function=False, method=True)
def untyped_storage(self):
    return UntypedStorage(_storage_array(self), self)


@public(function=False, method=True)
def storage(self):
    import warnings
    warnings.warn("TypedStorage is deprecated. It will be removed in the future and UntypedStorage will be the only "
                  "storage class. This should only matter to you if you are using storages directly.  To access "
                  "UntypedStorage directly, use tensor.untyped_storage() instead of tensor.storage()", UserWarning,
                  stacklevel=2)
    return TypedStorage(_storage_array(self), self)


@public(function=False, method=True)
def dim_order(self, *, ambiguity_check=False):
    """torch's dim_order: the dimensions from the outermost in memory (largest stride) to the innermost."""
    st = self.stride()
    return tuple(sorted(range(self.ndim), key=lambda i: -st[i]))


@public(function=False, method=True)
def const_data_ptr(self):
    return self.data_ptr()


@public(function=False, method=True)
def set_(self, source=None, storage_offset=0, size=None, stride=None):
    """torch's set_: the tensor shares `source`'s memory (a tensor: its view; with size/stride: that geometry
    over source's storage from storage_offset); no argument: an empty tensor. Refused for a leaf that requires
    grad, with torch's message. A region named as torch's op (aten::set_), as resize_."""
    if self._requires_grad and self._grad_fn is None and STATE.grad_enabled:
        raise RuntimeError(_LEAF)
    with record_range("set_", "op", (self,) if source is None else (self, source)):
        return _set(self, source, storage_offset, size, stride)


def _set(self, source, storage_offset, size, stride):
    if source is None:
        d = self._data
        xp = np if type(d) is np.ndarray else _cupy()
        self._data = xp.empty((0,), dtype=d.dtype)
    elif size is None:
        self._data = source._data
    else:
        size = tuple(size)
        stride = tuple(stride) if stride is not None else tuple(
            int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size)))
        self._data = dispatch(AS_STRIDED, source.detach(), size=size, stride=stride,
                              storage_offset=int(storage_offset))._data
    b = self._base
    (b if b is not None else self)._version += 1
    return self


@public(function=False, method=True)
def is_set_to(self, tensor):
    """Whether both tensors view the same memory with the same offset, sizes and strides."""
    a, b = self._data, tensor._data
    return (hasattr(a, "strides") and hasattr(b, "strides") and a.shape == b.shape and a.strides == b.strides
            and self.data_ptr() == tensor.data_ptr() and a.dtype == b.dtype)
