"""nn.Parameter: a Tensor subclass that a Module registers as one of its parameters when assigned."""
from __future__ import annotations

from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and marks itself as a parameter (`_is_param`).

    It shares the data of the tensor it wraps, as torch's does; ops on it give plain Tensors."""
    _is_param = True

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from ..ops import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter expects a Tensor as data, got {type(data).__name__}")
        t = object.__new__(cls)
        t._data = data._data
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor.__deepcopy__(self, {}).detach(), self.requires_grad)
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """torch.nn.Buffer: marks a tensor to be registered as a buffer when assigned to a Module."""

    def __new__(cls, data, *, persistent=True):
        t = object.__new__(cls)
        t._data = data._data
        t.persistent = persistent
        return t

    def __init__(self, data, *, persistent=True):
        pass


def _uninitialized_use(cls_name, func):
    return ValueError(
        f"Attempted to use an uninitialized parameter in {func}. This error happens when you are using a "
        f"`LazyModule` or explicitly manipulating `torch.nn.parameter.{cls_name}` objects. When using LazyModules "
        "Call `forward` with a dummy batch to initialize the parameters before calling torch functions")


class _NoData:
    """The `_data` of an uninitialized parameter or buffer: it knows its dtype and device (kept as an empty
    array of them, `empty`), and any other use, by an op, a NumPy/CuPy function or an attribute read, raises
    torch's ValueError. tensorlib has no __torch_function__ through which torch's UninitializedTensorMixin
    refuses ops; every op reads `_data`, so refusing here catches them all."""
    __slots__ = ("empty", "owner")

    def __init__(self, empty, owner):
        self.empty = empty
        self.owner = owner          # the class name in the message

    @property
    def dtype(self):
        return self.empty.dtype

    @property
    def itemsize(self):
        return self.empty.itemsize

    def __getattr__(self, name):
        raise _uninitialized_use(self.owner, f"<attribute '{name}'>")

    def __array__(self, *args, **kwargs):
        raise _uninitialized_use(self.owner, "<function asarray>")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise _uninitialized_use(self.owner, ufunc)

    def __array_function__(self, func, types, args, kwargs):
        raise _uninitialized_use(self.owner, func)

    def __len__(self):
        raise _uninitialized_use(self.owner, "<function len>")

    def __getitem__(self, key):
        raise _uninitialized_use(self.owner, "<method '__getitem__'>")


class UninitializedTensorMixin:
    """torch.nn.parameter.UninitializedTensorMixin: a parameter or buffer of a lazy module before its shape is
    known. Allowed, as torch's `_allowed_methods`: dtype and device conversions (`to`, `cpu`, `cuda`, `float`,
    ...: they give an uninitialized tensor of the new dtype/device, so `module.to(...)` before the first call
    works), `size()` (torch's empty(0) answers Size([0])), `is_floating_point`, `is_complex`, `get_device` and
    `copy_` from another uninitialized one (load_state_dict of an uninitialized state into an uninitialized
    module). `shape` raises torch's RuntimeError and any other use torch's ValueError (see _NoData)."""
    __slots__ = ()
    cls_to_become: type = Tensor

    def _set_empty(self, empty):
        self._data = _NoData(empty, type(self).__name__)

    def materialize(self, shape, device=None, dtype=None):
        """Replace the data by an uninitialized tensor of `shape` (on this one's device and dtype unless given)
        and become cls_to_become (Parameter or Tensor): the same object, so optimizers and modules that hold it
        keep working."""
        from ..ops import empty
        if device is None:
            device = self.device
        if dtype is None:
            dtype = self.dtype
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        self._data = empty(*shape, device=device, dtype=dtype)._data
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            "`forward` to initialize the parameters before accessing their attributes.")

    def share_memory_(self):
        raise RuntimeError("Can't share memory on an uninitialized parameter or buffer. Call `forward` to initialize "
                           "the parameters before calling `module.share_memory()`.")

    def __repr__(self):
        return f"<{self.__class__.__name__}>"

    def __reduce_ex__(self, proto):
        return (self.__class__, (self.requires_grad,))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.requires_grad, self.device, self.dtype)
        memo[id(self)] = result
        return result

    # --- what torch allows -------------------------------------------------------------------------
    @property
    def device(self):
        from .._device import device_of
        return device_of(self._data.empty)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_cpu(self):
        return self.device.type == "cpu"

    def get_device(self):
        return self.device.index if self.device.type == "cuda" else -1

    def size(self, dim=None):
        from .._tensor import Size
        return Size((0,)) if dim is None else Size((0,))[dim]

    def is_complex(self):
        return self._data.dtype.kind == "c"

    @property
    def data(self):
        """torch's `.data` of one is an uninitialized tensor of the same class (not requiring grad)."""
        out = object.__new__(type(self))
        out._set_empty(self._data.empty)
        if hasattr(self, "persistent"):
            out.persistent = self.persistent
        return out

    @data.setter
    def data(self, value):
        Tensor.data.fset(self, value)

    def _convert(self, name, *args, **kwargs):
        """An uninitialized tensor of the same class whose dtype/device are `name(*args, **kwargs)`'s on an
        empty tensor of this one's."""
        plain = object.__new__(Tensor)
        plain._data = self._data.empty
        out = object.__new__(type(self))
        out._set_empty(getattr(plain, name)(*args, **kwargs)._data)
        out._requires_grad = self._requires_grad
        if hasattr(self, "persistent"):
            out.persistent = self.persistent
        if out._data.dtype == self._data.dtype and str(out.device) == str(self.device):
            return self
        return out

    def to(self, *args, **kwargs):
        return self._convert("to", *args, **kwargs)

    def cpu(self, *args, **kwargs):
        return self._convert("cpu", *args, **kwargs)

    def cuda(self, *args, **kwargs):
        return self._convert("cuda", *args, **kwargs)

    def half(self):
        return self._convert("half")

    def float(self):
        return self._convert("float")

    def double(self):
        return self._convert("double")

    def bfloat16(self):
        return self._convert("bfloat16")

    def copy_(self, src, non_blocking=False):
        if not is_lazy(src):
            raise _uninitialized_use(type(self).__name__, "<method 'copy_' of 'torch._C.TensorBase' objects>")
        return self


def is_lazy(param):
    """torch.nn.parameter.is_lazy: whether `param` is an UninitializedParameter or UninitializedBuffer."""
    return isinstance(param, UninitializedTensorMixin)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """torch.nn.UninitializedParameter: a Parameter whose shape is not known yet (a lazy module's, until its
    first call); `device`/`dtype` are the ones it materializes with."""
    __slots__ = ()
    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        from ..ops import empty
        t = object.__new__(cls)
        t._set_empty(empty(0, device=device, dtype=dtype)._data)
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """torch.nn.parameter.UninitializedBuffer: a buffer whose shape is not known yet; it becomes a plain
    Tensor when materialized."""
    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None, persistent=True):
        from ..ops import empty
        t = object.__new__(cls)
        t._set_empty(empty(0, device=device, dtype=dtype)._data)
        t.persistent = persistent
        t._is_buffer = True
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        pass
