"""The fake `cupy.ndarray`: a NumPy array held behind CuPy's walls.

Storage is a NumPy array (`_a`); the "device memory" it stands for is a pool allocation
(`cupy.cuda.memory`) made when a new buffer appears (a fresh result of a NumPy call) and freed when
that buffer is garbage collected. Views share their base's allocation, as in CuPy.

What is strict, as in CuPy:
  * no implicit conversion to NumPy: ``numpy.asarray(x)``, ``np.array(x)`` raise CuPy's TypeError;
  * NumPy arrays (and lists, for ufuncs) are refused as operands of cupy ufuncs, operators and
    functions, with CuPy's ``TypeError: Unsupported type <class 'numpy.ndarray'>``;
  * full reductions and integer indexing give 0-d cupy arrays, never NumPy scalars;
  * NumPy functions called on cupy arrays (NEP 18 / NEP 13) run the cupy function of the same name
    and return cupy arrays (or raise TypeError where cupy has none).
"""
from __future__ import annotations

import functools
import numbers
import weakref

import numpy

from .cuda import _sim
from . import _api

_NP = numpy.ndarray

# ------------------------------------------------------------------------------------------------
# asynchrony and devices: the hooks cupy.cuda._sim needs (a kernel per op that writes memory, CuPy's
# device check on operands, the host waits of CuPy's blocking reads)
# ------------------------------------------------------------------------------------------------


def _on_device(x):
    """Array `x`'s storage, after CuPy's check that it lives on the current device."""
    if x._mp.device_id != _sim_current():
        _sim.check_operand(x._mp.device_id)
    return x._a


def _sim_current():
    from .cuda import runtime
    return runtime.getDevice()


def _host_read(x):
    """CuPy's blocking reads (get, item, bool, ...) wait for the current stream's work."""
    _sim.wait_stream()
    return x._a


# ------------------------------------------------------------------------------------------------
# device memory behind arrays
# ------------------------------------------------------------------------------------------------

_owner_mem: dict = {}      # id(numpy buffer owner) -> cupy.cuda.MemoryPointer held while it lives
_ptr_roots: dict = {}      # device address -> (weakref to the NumPy buffer owner, its MemoryPointer): what
                           # a raw pointer (cupy.cuda.nccl's intptr_t buffers) stands for


def _release(key, ptr=None):
    _owner_mem.pop(key, None)     # the MemoryPointer goes; its PooledMemory frees itself into the pool
    _ptr_roots.pop(ptr, None)


def buffer_at(ptr, nbytes):
    """(NumPy byte view of [ptr, ptr + nbytes), device id) of the live allocation holding that range, or
    None: what a library handed a raw device pointer (NCCL) reads and writes."""
    for base, (ref, mp) in list(_ptr_roots.items()):
        if base <= ptr and ptr + nbytes <= base + mp.mem.size:
            root = ref()
            if root is None:
                continue
            flat = root.reshape(-1, order="A") if root.flags.forc else None
            if flat is None or ptr + nbytes > base + root.nbytes:
                return None
            return flat.view(numpy.uint8)[ptr - base:ptr - base + nbytes], mp.device_id
    return None


def _root(a):
    while isinstance(a.base, _NP):
        a = a.base
    return a


def _memptr_for(a):
    """The allocation behind NumPy array `a`: its buffer owner's, made (through the current
    allocator, as CuPy's ndarray does) the first time the owner is seen."""
    root = _root(a)
    key = id(root)
    mp = _owner_mem.get(key)
    if mp is None:
        from .cuda import memory
        mp = memory.alloc(root.nbytes)
        _sim.launch(root.nbytes)          # the kernel that wrote the new buffer
        _owner_mem[key] = mp
        if mp.ptr:
            _ptr_roots[mp.ptr] = (weakref.ref(root), mp)
        weakref.finalize(root, _release, key, mp.ptr or None)
    return mp


def _wrap_np(a, inputs=()):
    """A cupy array over NumPy array `a` (which must not be reachable by the caller as a host array).
    A view's `base` is the cupy array that owns the buffer, as in CuPy: the wrapper among `inputs`
    (or their bases) over `a`'s root, so `a[1:].base is a` and a view of a view has the same base."""
    if isinstance(a, numpy.generic):
        a = numpy.asarray(a)   # numpy hands back scalars where cupy gives 0-d arrays
    if not a.flags.writeable and a.base is not None and 0 not in a.strides and _root(a).flags.writeable:
        a.flags.writeable = True    # CuPy has no read-only arrays: NumPy's read-only views (diagonal) write through
    x = ndarray.__new__(ndarray)
    x._a = a
    x._mp = _memptr_for(a)
    root = _root(a)
    x._base = None if root is a else _owner_wrapper(root, inputs)
    return x


def _owner_wrapper(root, inputs):
    for w in inputs:
        if type(w) is ndarray:
            if w._a is root:
                return w
            if w._base is not None and w._base._a is root:
                return w._base
    return _wrap_np(root)      # a buffer no cupy array owned yet (a NumPy temporary the view keeps)


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


_SCALARS = (numbers.Number, numpy.generic, bool)


def _elementwise_arg(x):
    """An operand of a cupy ufunc: cupy arrays and scalars only."""
    if type(x) is ndarray:
        return _on_device(x)
    if isinstance(x, _SCALARS):
        return x
    raise _unsupported(x)


def _unwrap(x, explicit=False):
    """Arguments of a non-ufunc cupy function: cupy arrays unwrapped (also inside lists and tuples);
    host arrays refused unless the function is an explicit host-to-device conversion."""
    t = type(x)
    if t is ndarray:
        if explicit and x._mp.device_id != _sim_current():
            return x._a.copy()        # cupy.asarray/array copy an array from another device
        return _on_device(x)
    if t is _NP:
        if explicit:
            return x.copy()
        raise _unsupported(x)
    if t is list or t is tuple:
        return t(_unwrap(v, explicit) for v in x)
    return x


def _wrap(r, inputs=()):
    """Results of a NumPy call as cupy values: arrays (returning an input's own wrapper when NumPy
    returned that input, e.g. out=), NumPy scalars as 0-d arrays, tuples elementwise."""
    if isinstance(r, (_NP, numpy.generic)):
        if type(r) is _NP:
            for w in inputs:
                if type(w) is ndarray and w._a is r:
                    return w
        return _wrap_np(r, inputs)
    if type(r) is tuple or type(r) is list:
        return type(r)(_wrap(v, inputs) for v in r)
    if isinstance(r, tuple):    # NumPy 2's linalg results (SVDResult, EighResult, QRResult...): CuPy's plain tuples
        return tuple(_wrap(v, inputs) for v in r)
    return r


# ------------------------------------------------------------------------------------------------
# ufuncs
# ------------------------------------------------------------------------------------------------

class ufunc:
    """cupy.ufunc over a NumPy ufunc: cupy arrays and scalars in, cupy arrays out."""

    _KW = {"out", "dtype", "casting"}

    def __init__(self, npu):
        self._u = npu
        self.__name__ = npu.__name__
        self.name = npu.__name__
        self.nin, self.nout, self.nargs = npu.nin, npu.nout, npu.nargs
        self.types = npu.types

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"

    def _prep(self, args, kwargs, allowed):
        bad = set(kwargs) - allowed
        if bad:
            raise TypeError(f"Wrong arguments {dict((k, kwargs[k]) for k in bad)}")
        arrays = [_elementwise_arg(a) for a in args]
        out = kwargs.get("out")
        wrappers = list(args)
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if type(o) is not ndarray:
                    raise TypeError(f"Output arguments must be cupy.ndarray, not {type(o)}")
            wrappers += list(outs)
            kwargs = dict(kwargs, out=tuple(o._a for o in outs) if isinstance(out, tuple) else out._a)
        return arrays, kwargs, wrappers

    def __call__(self, *args, **kwargs):
        if self._u.signature is not None and len(args) != self.nin:    # CuPy's _GUFunc (matmul): out= only
            raise ValueError(f"According to `signature`, `func` requires {self.nin} arguments, but {len(args)} "
                             "given")
        arrays, kwargs, wrappers = self._prep(args, kwargs, self._KW)
        if "out" in kwargs:
            _sim.launch(0)                      # written in place: no new buffer, still a kernel
        with numpy.errstate(all="ignore"):      # GPU arithmetic never warns about inf/nan
            return _wrap(self._u(*arrays, **kwargs), wrappers)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        arrays, kw, wrappers = self._prep((array,), {"out": out} if out is not None else {}, {"out"})
        return _wrap(self._u.reduce(arrays[0], axis=axis, dtype=dtype, keepdims=keepdims, **kw), wrappers)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        arrays, kw, wrappers = self._prep((array,), {"out": out} if out is not None else {}, {"out"})
        return _wrap(self._u.accumulate(arrays[0], axis=axis, dtype=dtype, **kw), wrappers)

    def outer(self, A, B, **kwargs):
        arrays, kwargs, wrappers = self._prep((A, B), kwargs, self._KW)
        return _wrap(self._u.outer(*arrays, **kwargs), wrappers)

    def at(self, a, indices, b=None):
        if type(a) is not ndarray:
            raise TypeError(f"Unsupported type {type(a)}")
        if self.__name__ == "add":             # CuPy's add.at is scatter_add, with its dtype limits
            from cupyx import check_scatter_add_dtype
            check_scatter_add_dtype(a.dtype)
        idx = _index(indices)
        _on_device(a)
        _sim.launch(0)
        if b is None:
            self._u.at(a._a, idx)
        else:
            self._u.at(a._a, idx, _elementwise_arg(b))


def _index(key):
    """An index into a cupy array: cupy arrays unwrapped; lists and NumPy index arrays are accepted
    (CuPy copies them to the device)."""
    t = type(key)
    if t is ndarray:
        return key._a
    if t is tuple:
        return tuple(_index(k) for k in key)
    return key


# ------------------------------------------------------------------------------------------------
# the array
# ------------------------------------------------------------------------------------------------

def _binop(name, reflected=False):
    def f(self, other):
        if getattr(other, "__array_ufunc__", False) is None or (
                type(other) is not ndarray and getattr(other, "__array_priority__", -1) > self.__array_priority__):
            return NotImplemented
        u = _ufuncs()[name]
        return u(other, self) if reflected else u(self, other)
    return f


def _inplace(name):
    def f(self, other):
        _ufuncs()[name](self, other, out=self)
        return self
    return f


def _unary(name):
    def f(self):
        return _ufuncs()[name](self)
    return f


@functools.cache
def _ufuncs():
    from . import _namespace
    return _namespace.UFUNCS


def _method(name, wrap=True):
    def f(self, *args, **kwargs):
        _on_device(self)
        _sim.inside_method(name, self, args, kwargs)
        args = _unwrap(args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        out = kwargs.get("out")
        r = getattr(self._a, name)(*args, **kwargs)
        return _wrap(r, (self,) if out is None else (self, out)) if wrap else r
    f.__name__ = name
    return f


class ndarray:
    """cupy.ndarray (fake): see the module docstring."""

    __slots__ = ("_a", "_mp", "_base", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None:
            raise NotImplementedError("fake cupy: ndarray(memptr=...) is not supported")
        a = numpy.empty(shape, dtype=dtype, order=order)
        self._a = a
        self._mp = _memptr_for(a)
        self._base = None

    # -- no implicit host conversion ------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        from . import _namespace
        cupy_func = _namespace.lookup(func)
        if cupy_func is None:
            return NotImplemented
        return cupy_func(*args, **kwargs)

    def __array_ufunc__(self, ufunc_, method, *inputs, **kwargs):
        cu = _ufuncs().get(ufunc_.__name__)
        if cu is None:
            return NotImplemented
        if method == "__call__":
            return cu(*inputs, **kwargs)
        return getattr(cu, method)(*inputs, **kwargs)

    # -- attributes -----------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    strides = property(lambda self: self._a.strides)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: _wrap_np(self._a.T, (self,)))
    mT = property(lambda self: _wrap_np(self._a.mT, (self,)))
    real = property(lambda self: _wrap(self._a.real, (self,)))
    imag = property(lambda self: _wrap_np(self._a.imag, (self,)))
    flags = property(lambda self: _Flags(self._a.flags))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    @property
    def base(self):
        return self._base

    @property
    def data(self):
        from .cuda.memory import MemoryPointer
        off = self._a.__array_interface__["data"][0] - _root(self._a).__array_interface__["data"][0]
        return MemoryPointer(self._mp.mem, self._mp.ptr - self._mp.mem.ptr + off)

    @property
    def device(self):
        from .cuda import Device
        return Device(self._mp.device_id)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "descr": self.dtype.descr,
                "data": (self.data.ptr, False), "strides": None if self._a.flags.c_contiguous else self.strides,
                "version": 3}

    def __dlpack_device__(self):
        return (2, self._mp.device_id)      # kDLCUDA

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        raise NotImplementedError("fake cupy: DLPack capsules are not produced; use cupy.from_dlpack(array)")

    # -- host transfer --------------------------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            if type(out) is not _NP:
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            numpy.copyto(out, _host_read(self))
            return out
        return numpy.array(_host_read(self), order=order, copy=True)

    def set(self, arr, stream=None):
        if type(arr) is not _NP:
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray (got {type(arr)})")
        if arr.shape != self.shape:
            raise ValueError("Shape mismatch. Old shape: {}, new shape: {}".format(self.shape, arr.shape))
        if arr.dtype != self.dtype:
            raise TypeError("{} array cannot be set to {} array".format(arr.dtype, self.dtype))
        _sim.launch(arr.nbytes)
        numpy.copyto(self._a, arr)

    def item(self, *args):
        return _host_read(self).item(*args)

    def tolist(self):
        return _host_read(self).tolist()

    def tobytes(self, order="C"):
        return _host_read(self).tobytes(order)

    # -- Python protocol ------------------------------------------------------------------------------
    def __repr__(self):
        return repr(_host_read(self))

    def __str__(self):
        return str(_host_read(self))

    def __format__(self, spec):
        return format(self._a, spec) if self.ndim == 0 else format(str(self), spec)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        return bool(_host_read(self))

    def __float__(self):
        return float(_host_read(self))

    def __int__(self):
        return int(_host_read(self))

    def __complex__(self):
        return complex(_host_read(self))

    def __index__(self):
        return _host_read(self).__index__()

    __hash__ = None

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        from . import array
        return array, (self.get(),)

    def __getitem__(self, key):
        _sim.inside_index(key)
        return _wrap(self._a[_index(key)], (self,))

    def __setitem__(self, key, value):
        if type(value) is ndarray:
            value = value._a
        elif type(value) is _NP:
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        elif not isinstance(value, _SCALARS):
            raise _unsupported(value)
        _on_device(self)
        _sim.inside_index(key)
        _sim.launch(0)
        self._a[_index(key)] = value

    # -- arithmetic via the ufuncs ----------------------------------------------------------------------
    __add__, __radd__, __iadd__ = _binop("add"), _binop("add", True), _inplace("add")
    __sub__, __rsub__, __isub__ = _binop("subtract"), _binop("subtract", True), _inplace("subtract")
    __mul__, __rmul__, __imul__ = _binop("multiply"), _binop("multiply", True), _inplace("multiply")
    __truediv__, __rtruediv__, __itruediv__ = (_binop("true_divide"), _binop("true_divide", True),
                                               _inplace("true_divide"))
    __floordiv__, __rfloordiv__, __ifloordiv__ = (_binop("floor_divide"), _binop("floor_divide", True),
                                                  _inplace("floor_divide"))
    __mod__, __rmod__, __imod__ = _binop("remainder"), _binop("remainder", True), _inplace("remainder")
    __pow__, __rpow__, __ipow__ = _binop("power"), _binop("power", True), _inplace("power")
    __and__, __rand__, __iand__ = _binop("bitwise_and"), _binop("bitwise_and", True), _inplace("bitwise_and")
    __or__, __ror__, __ior__ = _binop("bitwise_or"), _binop("bitwise_or", True), _inplace("bitwise_or")
    __xor__, __rxor__, __ixor__ = _binop("bitwise_xor"), _binop("bitwise_xor", True), _inplace("bitwise_xor")
    __lshift__, __rshift__ = _binop("left_shift"), _binop("right_shift")
    __eq__, __ne__ = _binop("equal"), _binop("not_equal")
    __lt__, __le__, __gt__, __ge__ = _binop("less"), _binop("less_equal"), _binop("greater"), _binop("greater_equal")
    __neg__, __pos__, __abs__, __invert__ = _unary("negative"), _unary("positive"), _unary("absolute"), _unary("invert")

    def __matmul__(self, other):
        from . import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from . import matmul
        return matmul(other, self)

    def __divmod__(self, other):
        return _ufuncs()["divmod"](self, other)

    # -- methods ----------------------------------------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        r = self._a.astype(dtype, order=order, copy=copy) if casting is None else \
            self._a.astype(dtype, order=order, casting=casting, copy=copy)
        return self if r is self._a else _wrap_np(r)

    def copy(self, order="C"):
        return _wrap_np(self._a.copy(order=order))

    def view(self, dtype=None, type=None):
        if type is not None:
            raise NotImplementedError("fake cupy: view(type=) is not supported")
        return _wrap_np(self._a.view() if dtype is None else self._a.view(dtype), (self,))

    def fill(self, value):
        self[...] = value

    def reshape(self, *shape, order="C"):
        return _wrap_np(self._a.reshape(*shape, order=order), (self,))

    def transpose(self, *axes):
        return _wrap_np(self._a.transpose(*axes), (self,))

    def toDlpack(self):
        raise NotImplementedError("fake cupy: DLPack capsules are not produced")

    def dot(self, b, out=None):
        from . import dot
        return dot(self, b, out=out)

    def _s(self):   # for tests: the storage, without CuPy's walls
        return self._a


for _name in ("sum", "prod", "mean", "var", "std", "max", "min", "argmax", "argmin", "all", "any", "cumsum",
              "cumprod", "clip", "round", "conj", "conjugate", "ravel", "flatten", "squeeze", "swapaxes",
              "take", "repeat", "nonzero", "diagonal", "trace", "ptp", "argsort", "argpartition", "compress",
              "sort", "partition", "put", "choose", "searchsorted"):
    setattr(ndarray, _name, _method(_name))
del _name


def _checked(name, fn):
    """ndarray.<name> taking only the arguments CuPy's method takes (NumPy's extras raise TypeError)."""
    @functools.wraps(fn)
    def f(self, *args, **kwargs):
        _api.check_call("cupy.ndarray", name, args, kwargs, method=True)
        return fn(self, *args, **kwargs)
    return f


def _as_cupy_has_it():
    """ndarray's public attributes cut to the real CuPy's (under FAKECUPY_RULES' major), its methods'
    arguments checked against CuPy's signatures."""
    for name, v in list(vars(ndarray).items()):
        if name.startswith("_"):
            continue
        if not _api.has("cupy.ndarray", name):
            delattr(ndarray, name)         # e.g. mT, which CuPy 13 lacks
        elif callable(v) and _api.signature("cupy.ndarray", name) is not None:
            setattr(ndarray, name, _checked(name, v))


_as_cupy_has_it()


class _Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, f):
        self.c_contiguous, self.f_contiguous, self.owndata = f.c_contiguous, f.f_contiguous, f.owndata

    def __getitem__(self, k):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[k]

    def __repr__(self):
        return f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n  OWNDATA : {self.owndata}"


ndarray.__module__ = "cupy"
ufunc.__module__ = "cupy"


# ------------------------------------------------------------------------------------------------
# cuBLAS compute types (CuPy's `cupy._core.set_compute_type`): recorded per dtype, as CuPy keeps them;
# the fake's GEMMs are NumPy's whatever the setting (no TF32 rounding is simulated)
# ------------------------------------------------------------------------------------------------

# the values are cupy._core._routines_linalg's COMPUTE_TYPE_*, which cupy._core itself does not export (seen on
# CuPy 14.2 with an H200: a test that read cupy._core.COMPUTE_TYPE_TF32 passed here and failed there)
_COMPUTE_TYPE_DEFAULT = 1
_compute_types: dict = {}


def set_compute_type(dtype, compute_type):
    if compute_type not in range(8):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _compute_types[numpy.dtype(dtype).char] = compute_type


def get_compute_type(dtype):
    return _compute_types.get(numpy.dtype(dtype).char, _COMPUTE_TYPE_DEFAULT)
