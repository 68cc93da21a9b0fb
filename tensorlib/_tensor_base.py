"""The Tensor object: a NumPy/CuPy array plus autograd state. Ops are attached by `tensorlib.ops`.

Defaults live on the class so that making a tensor costs one object and one attribute store; the
dispatcher writes the instance attributes only when they differ (requires_grad, grad_fn, views).
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from . import _dtype
from ._dtype import BF16 as _BF16
from ._device import CPU, device_of
from ._state import STATE


class Tensor:
    # autograd state (class-level defaults, overwritten per instance only when set)
    _requires_grad = False
    _grad_fn = None
    _output_nr = 0
    _grad = None
    _retains_grad = False
    _hooks = None            # tensor hooks (register_hook), a list
    _accumulator: weakref.ref[Any] | None = None  # AccumulateGrad node of a leaf, made on first use
    _base = None             # the tensor whose memory a view shares (versions are counted there)
    _version = 0
    _rebase_gen = 0          # of a base: how often an in-place op on one of its views rewrote its history;
                             # of a view: the count its grad_fn reflects (autograd.graph.record_inplace_view)
    _detached = False        # a view made by detach() (or .data): no autograd link to its base
    _is_param = False
    _inference = False
    __array_priority__ = 1000  # numpy scalars defer to our reflected operators

    __slots__ = ("_data", "__dict__", "__weakref__")

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with tensorlib.tensor(...), tensorlib.zeros(...), etc.")

    # --- metadata ---------------------------------------------------------------------------
    @property
    def data(self):
        from .ops import detach
        return detach(self)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self):
        return _dtype._FROM_NP[self._data.dtype]

    @property
    def device(self):
        return device_of(self._data)

    @property
    def is_cuda(self):
        return type(self._data) is not np.ndarray

    @property
    def is_cpu(self):
        return type(self._data) is np.ndarray

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return int(self._data.size)

    nelement = numel

    def element_size(self):
        return self._data.itemsize

    @property
    def itemsize(self):
        return self._data.itemsize

    @property
    def nbytes(self):
        return self._data.nbytes

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim)]

    def is_contiguous(self, memory_format=None):
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self):
        return self._data.dtype.kind == "f" or self._data.dtype == _BF16

    def data_ptr(self):
        d = self._data
        return d.ctypes.data if type(d) is np.ndarray else d.data.ptr

    def get_device(self):
        return -1 if type(self._data) is np.ndarray else self._data.device.id

    def is_inference(self):
        return self._inference

    # --- autograd attributes ----------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        if self._grad_fn is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if requires_grad and self._data.dtype.kind != "f" and self._data.dtype != _BF16:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if requires_grad and self._inference and not _inference_mode():
            raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._grad_fn is None

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def grad(self):
        if self._grad_fn is not None and not self._retains_grad and self._requires_grad:
            import warnings
            warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                          "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
                          "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.",
                          UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError("assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
                                   f"'{list(self.shape)}'. Please ensure that the gradient and the tensor are the same "
                                   f"size")
            if value.dtype is not self.dtype:
                from ._dtype import scalar_name
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{_c_name(value._data.dtype)}' to a tensor with "
                    f"grad_dtype '{scalar_name(self._data.dtype)}'. The gradient must match the tensor's grad_dtype "
                    f"(defaults to the tensor's dtype). You can set the tensor's grad_dtype attribute with a specific "
                    f"dtype, or None to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of a tensor "
                    f"and its gradient may break downstream systems that assume they match.")
        self._grad = value

    @property
    def retains_grad(self):
        return self._retains_grad

    def retain_grad(self):
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is not None and not self._retains_grad:
            import weakref
            self._retains_grad = True
            node = self._grad_fn
            if node.retained is None:
                node.retained = {}
            node.retained[self._output_nr] = weakref.ref(self)

    def register_hook(self, hook):
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        node = self._grad_fn
        if node is not None:  # a non-leaf: its node runs the hook when this output's gradient is ready
            if node.tensor_hooks is None:
                node.tensor_hooks = {}
            node.tensor_hooks[self._output_nr] = self._hooks
        return _RemovableHandle(self._hooks, hook)

    @property
    def _version_counter(self):
        b = self._base
        return (b if b is not None else self)._version

    # --- conversion -------------------------------------------------------------------------
    def numpy(self, *, force=False):
        if type(self._data) is not np.ndarray:
            if force:
                from ._sync import note_sync
                note_sync(self, "numpy")
                return self._data.get()
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                            "the tensor to host memory first.")
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()   # torch's errors for CUDA tensors and tensors that require grad
        return a if dtype is None else a.astype(dtype, copy=False)

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __hash__(self):
        return id(self)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        from .ops import unbind
        return iter(unbind(self, 0))

    def __repr__(self):
        from ._repr import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else repr(self)

    def __reduce_ex__(self, proto):
        raise TypeError("tensorlib tensors are not pickled; use tensorlib.save / tensorlib.load")

    def __deepcopy__(self, memo):
        from .ops import clone
        with _no_grad_ctx():
            out = clone(self)
        if self._requires_grad:
            out._requires_grad = True
        out.__class__ = self.__class__
        memo[id(self)] = out
        return out

    @property
    def is_sparse(self):
        return False

    @property
    def layout(self):
        return "strided"


def _c_name(d):
    """dtype names as torch prints them in grad-assignment errors (its dtype's short name)."""
    return {"float32": "float", "float64": "double", "float16": "half", "int64": "long", "int32": "int"}.get(
        d.name, d.name)


def _inference_mode():
    return STATE.inference


class _no_grad_ctx:
    """autograd.no_grad for this module, which sits below autograd: grad mode off for the block."""
    __slots__ = ("_prev",)

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = False

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False


class Size(tuple):
    """torch.Size: a tuple that prints as torch.Size([..])."""
    __slots__ = ()

    def __repr__(self):
        return f"tensorlib.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r


class _RemovableHandle:
    def __init__(self, lst, item):
        self._lst, self._item = lst, item

    def remove(self):
        try:
            self._lst.remove(self._item)
        except ValueError:
            pass


def _wrap_dim(dim, ndim):
    n = ndim if ndim > 0 else 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _make(data) -> Tensor:
    t = object.__new__(Tensor)
    t._data = data
    return t


__all__ = ["Tensor", "Size", "CPU"]
