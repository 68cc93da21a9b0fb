"""Tensor creation. Each factory is a dispatched op (no tensor inputs; device and dtype are attrs), so
allocations are visible to the profiler like any other op."""
from __future__ import annotations

import collections.abc
import numbers

from .. import _dtype as D
from .. import _hooks as _H
from .. import _memory_format as MF
from .. import random as R
from .._sparse import SparseCOO, layout as _layout_type, sparse_coo
from .._device import CPU, cupy, default_device, device_of, to_device
from ._define import Tensor, dispatch, np, op, public, torch_op, write_out
from .._opdef import op_at
from .._state import STATE
from .._tensor import Size, _no_grad_ctx as _no_grad
from ..dispatch import run_recorded


def _backend(device):
    return np if device.type == "cpu" else cupy()


def _on(device, fn):
    if device.type == "cpu":
        return fn(np)
    cp = cupy()
    with cp.cuda.Device(device.index):
        return fn(cp)


def _made(device, name, *args):
    """A factory's array: NumPy's function `name` on the CPU, CuPy's with `device` current (the _on of a plain
    call, without a closure made per call)."""
    if device.type == "cpu":
        return getattr(np, name)(*args)
    cp = cupy()
    with cp.cuda.Device(device.index):
        return getattr(cp, name)(*args)


def _size(size, negative=None):
    """The shape a factory was given; `negative`: the factory's own message for a negative size (torch's
    zeros has one; the others say what empty says)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if type(s) is not int or s < 0:
            break
    else:
        return tuple(size)      # the common case: Python ints, none negative (the loop below checks the rest)
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"expected a sequence of integers for size, but got an element of type {type(s).__name__}")
        if s < 0:
            raise RuntimeError(negative or f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def check_layout(layout, fn):
    """Whether a factory's layout= asks for a sparse COO tensor (None and strided: the dense tensor); torch's
    TypeError for anything that is no layout."""
    if layout is None:
        return False
    if not isinstance(layout, _layout_type):
        raise TypeError(f"{fn}(): argument 'layout' must be {D.namespace()}.layout, not {type(layout).__name__}")
    return layout is sparse_coo or layout == sparse_coo


def sparse_layout_refusal(fn):
    """torch's refusal of layout=sparse_coo by a factory that has no sparse kernel (its op, aten::`fn`)."""
    return NotImplementedError(
        f"Could not run 'aten::{fn}' with arguments from the 'SparseCPU' backend. This could be because the "
        f"operator doesn't exist for this backend, or was omitted during the selective/custom build process (if "
        f"using custom build). If you are a Facebook employee using PyTorch on mobile, please visit "
        f"https://fburl.com/ptmfixes for possible resolutions. 'aten::{fn}' is only available for these "
        f"backends: [CPU, CUDA, Meta].")


def _sparse_empty(shape, dtype, device, requires_grad):
    """zeros/empty with layout=sparse_coo: torch's empty sparse tensor (all dims sparse, no entries,
    coalesced); CPU only, as tensorlib's sparse tensors are."""
    if device.type != "cpu":
        raise NotImplementedError("tensorlib: sparse COO tensors are CPU-only (no cupyx.scipy.sparse path yet); "
                                  "create it on the CPU")
    t = object.__new__(Tensor)
    t._data = SparseCOO(np.empty((len(shape), 0), np.int64), np.empty((0,), dtype), shape, coalesced=True)
    return _finish(t, requires_grad)


def _dt(dtype, default=None, fn=None):
    if dtype is None:
        return (default or D.get_default_dtype()).np
    if isinstance(dtype, str) and fn is not None:     # torch takes no dtype by name in its factories
        raise TypeError(f"{fn}(): argument 'dtype' must be tensorlib.dtype, not str")
    return D.to_dtype(dtype).np


def _finish(t, requires_grad):
    if requires_grad:
        if t._data.dtype.kind not in "fc" and t._data.dtype != D.BF16:   # the factories' wording
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad_(True)
    return t


def _into_out(out, dtype, requires_grad, make, name):
    """A factory's `out=` (torch's): the result made in out's dtype (dtype=None) or refused when dtype differs, then
    out resized to it and filled, and returned (requires_grad set on it). `make(dtype)` builds the result."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if dtype is not None and D.to_dtype(dtype) != out.dtype:
        raise RuntimeError(f"dtype {D.scalar_name(dtype)} does not match dtype of out parameter "
                           f"({D.scalar_name(out.dtype)})")
    if out._requires_grad and STATE.grad_enabled:   # (write_out's rule, for the out tensor a factory fills)
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    t = make(out.dtype)
    if tuple(out.shape) != tuple(t.shape):
        out.resize_(t.shape)
    return _finish(write_out(t, out, name), requires_grad)


def _pinned(t, pin_memory):
    """A factory's pin_memory=True (torch's): the result in page-locked host memory (Tensor.pin_memory, which CUDA
    provides); refused in torch's words where no GPU is usable."""
    if not pin_memory:
        return t
    from .._device import cupy_or_none
    if cupy_or_none() is None:
        raise RuntimeError("pin_memory=True requires a CUDA or other accelerator backend; no pinned memory "
                           "allocator is available on this system.")
    rg = t.requires_grad
    with _no_grad():
        p = t.pin_memory()
    return p.requires_grad_(True) if rg else p


def _creation(name, fn):
    return op(name, creation=True)(fn)


def _filled(device, name, shape, dtype, value, fill):
    """NumPy's (or CuPy's) `name` factory; while a profiler listens, torch's steps instead: an empty (its
    allocation) and the in-place fill `fill` (zero_, fill_) of `value`, each in its range, as torch's
    zeros/ones/full record them."""
    if not _H.range_hooks:
        return _made(device, name, shape, value, dtype) if name == "full" else _made(device, name, shape, dtype)
    step = _H.op_step
    a = step("empty", _made, device, "empty", shape, dtype)
    step(fill, a.fill, value)
    return a


ZEROS = _creation("zeros", lambda xp, shape, dtype, device: _filled(device, "zeros", shape, dtype, 0, "zero_"))
ONES = _creation("ones", lambda xp, shape, dtype, device: _filled(device, "ones", shape, dtype, 1, "fill_"))
EMPTY = _creation("empty", lambda xp, shape, dtype, device: _made(device, "empty", shape, dtype))
# torch's allocation with given strides: the *_like factories' (inside empty_like), empty_strided's own; here the
# buffer of the strides (the caller sees it through them)
EMPTY_STRIDED = _creation("empty_strided", lambda xp, shape, dtype, device: _made(device, "empty", shape, dtype))
FULL = _creation("full", lambda xp, shape, fill_value, dtype, device: _filled(device, "full", shape, dtype,
                                                                              fill_value, "fill_"))
EYE = _creation("eye", lambda xp, n, m, dtype, device: _made(device, "eye", n, m, 0, dtype))
ARANGE = _creation("arange", lambda xp, start, end, step, dtype, device: _made(device, "arange", start, end, step,
                                                                                 dtype))
def _linspace(m, start, end, steps, dtype):
    """torch's CPU linspace for floats: in the op's math type (float32 for half types, else the dtype),
    step = (end - start) / (steps - 1), the first half of the points start + step * i and the rest
    end - step * (steps - 1 - i), each a fused multiply-add (one rounding: computed exactly in a wider type)."""
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating) or steps < 2:
        return m.linspace(start, end, steps, dtype=dtype)
    op = np.dtype(np.float32) if dt.itemsize <= 4 else dt
    wide = np.float64 if op.itemsize == 4 else (np.longdouble if m is np else op)
    lo, hi = m.asarray(start, dtype=op), m.asarray(end, dtype=op)
    step = ((hi - lo) / op.type(steps - 1)).astype(wide)
    idx = m.arange(steps, dtype=wide)
    out = m.where(idx < steps // 2, lo.astype(wide) + step * idx, hi.astype(wide) - step * (steps - 1 - idx))
    return out.astype(op).astype(dt)


LINSPACE = _creation("linspace", lambda xp, start, end, steps, dtype, device: _on(
    device, lambda m: _linspace(m, start, end, steps, dtype)))
RAND = _creation("rand", lambda xp, shape, dtype, device, generator=None: R.sample("uniform", shape, dtype, device,
                                                                                    generator))
RANDN = _creation("randn", lambda xp, shape, dtype, device, generator=None: R.sample("normal", shape, dtype, device,
                                                                                      generator))
RANDINT = _creation("randint", lambda xp, low, high, shape, dtype, device, generator=None: R.sample(
    "randint", shape, dtype, device, generator, low=low, high=high))
RANDPERM = _creation("randperm", lambda xp, n, dtype, device, generator=None: R.sample(
    "permutation", (n,), dtype, device, generator, n=n))


def _tensor_kernel(xp, data, dtype, device):
    try:
        return _on(device, lambda m: m.array(data, dtype=dtype) if m is np else m.asarray(data, dtype=dtype))
    except OverflowError:       # a Python int beyond int64: torch's error
        raise ValueError("Overflow when unpacking long long") from None


TENSOR = _creation("tensor", _tensor_kernel)


def _infer_dtype(data):
    """torch's inference: bool -> bool, int -> int64, float -> default float; NumPy arrays keep theirs."""
    if isinstance(data, Tensor):
        return data._data.dtype
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        d = np.asarray(data).dtype
        if d.kind == "f" and d.itemsize == 8 and not isinstance(data, np.ndarray):
            return d
        return d
    if hasattr(data, "__cuda_array_interface__"):
        return data.dtype
    kinds = set()

    def walk(x):
        if isinstance(x, Tensor):
            kinds.add(x._data.dtype.kind if x._data.dtype.kind not in "fc" else "F" + str(x._data.dtype))
        elif isinstance(x, (list, tuple)) or _other_sequence(x):
            for y in x:
                walk(y)
        elif isinstance(x, bool) or isinstance(x, np.bool_):
            kinds.add("b")
        elif isinstance(x, numbers.Integral):
            kinds.add("i")
        elif isinstance(x, numbers.Real):
            kinds.add("f")
        elif isinstance(x, numbers.Complex):
            kinds.add("c")
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    walk(data)
    if "c" in kinds:        # a Python complex among the values: the default complex dtype (or a wider tensor's)
        c = D.default_complex().np
        for k in kinds:
            if k.startswith("F"):
                c = np.promote_types(c, np.dtype(k[1:]))
        return c
    if any(k.startswith("F") for k in kinds):
        fl = [np.dtype(k[1:]) for k in kinds if k.startswith("F")]
        return max(fl, key=lambda d: d.itemsize)
    return _kinds_dtype(kinds)


_INT64, _BOOL = np.dtype(np.int64), np.dtype(np.bool_)


def _kinds_dtype(kinds):
    """The dtype of Python numbers of these kinds ("f", "i", "b"): the default dtype where a float is among them,
    else int64 where an int is, else bool; the default dtype for none."""
    if "i" in kinds and "f" not in kinds:
        return _INT64
    if "b" in kinds and "f" not in kinds:
        return _BOOL
    return D.get_default_dtype().np


def _other_sequence(x):
    """A sequence torch.tensor reads as one but NumPy does not: a deque, a range (not a str or bytes)."""
    return isinstance(x, collections.abc.Sequence) and not isinstance(x, (str, bytes, list, tuple))


def _plain(data):
    if isinstance(data, Tensor):
        d = data._data
        return d if type(d) is np.ndarray else d.get()
    if isinstance(data, (list, tuple)) or _other_sequence(data):
        return [_plain(x) for x in data]
    if isinstance(data, np.ndarray) and type(data) is not np.ndarray:
        return data.view(np.ndarray)           # np.memmap, np.matrix...: plain NumPy, never taken for CuPy
    return data


def _ragged_error(data):
    """torch's error for nested sequences of unequal lengths (NumPy's speaks of an "inhomogeneous shape"), or
    None: the lengths the first elements give are expected at every position of each depth."""
    shape = []
    x = data
    while isinstance(x, (list, tuple)) and x:
        shape.append(len(x))
        x = x[0]

    def walk(x, d):
        if d >= len(shape):     # a sequence where the first elements put a number
            return TypeError(f"'{type(x).__name__}' object cannot be interpreted as an integer") \
                if isinstance(x, (list, tuple)) else None
        if not isinstance(x, (list, tuple)):     # a number where the first elements put a sequence
            return TypeError("not a sequence")
        if len(x) != shape[d]:
            return ValueError(f"expected sequence of length {shape[d]} at dim {d} (got {len(x)})")
        return next((e for e in (walk(y, d + 1) for y in x) if e is not None), None)
    return walk(data, 0)


_NUMBER_KINDS = {float: "f", int: "i", bool: "b"}


def _numbers_dtype(data):
    """What _infer_dtype gives a flat list or tuple of Python floats, ints and bools (_kinds_dtype), or None for
    any other data."""
    types = set(map(type, data))
    if not types or not types <= _NUMBER_KINDS.keys():
        return None
    return _kinds_dtype({_NUMBER_KINDS[t] for t in types})


@public
def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    dev = to_device(device) if device is not None else (data.device if isinstance(data, Tensor) else
                                                        default_device())
    if (type(data) is list or type(data) is tuple) and (numbers := _numbers_dtype(data)) is not None:
        # the commonest data, torch.tensor([1.0, 2.0]): NumPy reads it as it is (what _plain would make of it)
        t = dispatch(TENSOR, data=data, dtype=numbers if dtype is None else D.to_dtype(dtype).np, device=dev)
        return _pinned(_finish(t, requires_grad), pin_memory) if pin_memory else _finish(t, requires_grad)
    dt = D.to_dtype(dtype).np if dtype is not None else _infer_dtype(data)
    if hasattr(data, "__cuda_array_interface__") and not isinstance(data, Tensor):
        dev = to_device(device) if device is not None else to_device(f"cuda:{data.device.id}")
        t = dispatch(TENSOR, data=data, dtype=dt, device=dev)
    else:
        try:
            t = dispatch(TENSOR, data=_plain(data), dtype=dt, device=dev)
        except ValueError:
            err = _ragged_error(data) if isinstance(data, (list, tuple)) else None
            if err is None:
                raise
            raise err from None
    return _pinned(_finish(t, requires_grad), pin_memory) if pin_memory else _finish(t, requires_grad)


@public(aliases=("asarray",), alias_regions=False)     # torch records no asarray
def as_tensor(data, dtype=None, device=None):
    """Shares memory when it can (a NumPy array of the right dtype on the CPU), as torch's does."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device)
    dev = to_device(device) if device is not None else default_device()
    if isinstance(data, np.ndarray) and dev.type == "cpu" and (dtype is None or D.to_dtype(dtype).np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=dev)


asarray = as_tensor


@op("from_numpy", creation=True)
def FROM_NUMPY(xp, array):
    return array


@public
def from_numpy(ndarray):
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    if not D.known_np(ndarray.dtype):
        raise TypeError(f"can't convert np.ndarray of type {ndarray.dtype}. The only supported types are: float64, "
                        "float32, float16, complex64, complex128, int64, int32, int16, int8, uint8, and bool.")
    if type(ndarray) is not np.ndarray:
        ndarray = ndarray.view(np.ndarray)      # a subclass (np.memmap): the same memory as a plain ndarray
    return dispatch(FROM_NUMPY, array=ndarray)


@public
def from_dlpack(ext):
    if hasattr(ext, "__cuda_array_interface__") or (hasattr(ext, "__dlpack_device__")
                                                    and ext.__dlpack_device__()[0] == 2):
        cp = cupy()
        arr = cp.from_dlpack(ext)
    else:
        arr = np.from_dlpack(ext)
    t = object.__new__(Tensor)
    t._data = arr
    return t


def _dev(device):
    return to_device(device) if device is not None else default_device()


def _sizes(args, size):
    """The sizes of zeros/ones/empty: given by position, or as torch's keyword `size=` (`empty(size=(n, m))`)."""
    if size is None:
        return args
    if args:
        raise TypeError("size given both by position and as the keyword size=")
    return (size,) if isinstance(size, int) else (tuple(size),)


@public
def zeros(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False):
    if out is not None or pin_memory:
        return _factory_extras(zeros, size_, size, dtype, device, requires_grad, out, layout, pin_memory)
    shape = _size(_sizes(size_, size), "zeros: Dimension size must be non-negative.")
    if layout is not None and check_layout(layout, "zeros"):
        return _sparse_empty(shape, _dt(dtype, fn="zeros"), _dev(device), requires_grad)
    return _finish(dispatch(ZEROS, shape=shape, dtype=_dt(dtype, fn="zeros"), device=_dev(device)), requires_grad)


def _factory_extras(fn, size_, size, dtype, device, requires_grad, out, layout, pin_memory, **kw):
    """zeros/ones/empty with `out=` or `pin_memory=True` (kept off their common path)."""
    if out is not None:
        if pin_memory:
            raise RuntimeError(f"{fn.__name__}(): pin_memory=True cannot be combined with out=")
        return _into_out(out, dtype, requires_grad, lambda dt: fn(*size_, size=size, dtype=dt, device=out.device,
                                                                 layout=layout, **kw), fn.__name__)
    return _pinned(fn(*size_, size=size, dtype=dtype, device=device, requires_grad=requires_grad, layout=layout,
                      **kw), True)


def recorded_zeros(shape, dtype):
    """zeros(shape, dtype=dtype)'s NumPy array, its op run and recorded by `dispatch.run_recorded` (not
    dispatched): a missing gradient of a node whose sink formula runs (OpDef.sink_backward), as the engine
    makes it with zeros for the dispatched formula."""
    dt = dtype if isinstance(dtype, np.dtype) else _dt(dtype)      # (the engine's: a NumPy dtype already)
    return run_recorded(ZEROS, shape=_size(shape), dtype=dt, device=CPU)


def zeros_steps(xp, shape, dtype, via="empty_like"):
    """Zeros a running kernel makes as torch's kernel makes them, for its profile: `via`'s region (empty_like,
    new_empty) over its empty, then zero_, each step a C call (for kernels that have tested _H.range_hooks)."""
    step = _H.op_step
    out = step(via, step, "empty", xp.empty, shape, dtype)
    step("zero_", out.fill, 0)
    return out


@public
def ones(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False):
    if out is not None or pin_memory:
        return _factory_extras(ones, size_, size, dtype, device, requires_grad, out, layout, pin_memory)
    if layout is not None and check_layout(layout, "ones"):
        raise RuntimeError("full(...) is not implemented for sparse layout")
    return _finish(dispatch(ONES, shape=_size(_sizes(size_, size)), dtype=_dt(dtype, fn="ones"), device=_dev(device)),
                   requires_grad)


@public
def empty(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False,
          memory_format=None):
    """memory_format: channels_last / channels_last_3d give torch's strides for a 4-d / 5-d tensor (the
    buffer allocated as `empty` and seen through them); layout=sparse_coo, an empty sparse tensor."""
    if out is not None or pin_memory:
        return _factory_extras(empty, size_, size, dtype, device, requires_grad, out, layout, pin_memory,
                               memory_format=memory_format)
    if layout is not None and check_layout(layout, "empty"):
        return _sparse_empty(_size(_sizes(size_, size)), _dt(dtype, fn="empty"), _dev(device), requires_grad)
    if memory_format is not None and memory_format is not MF.contiguous_format:
        MF.check(memory_format, "empty")
        shape = _size(_sizes(size_, size))
        strides = MF.format_strides(shape, memory_format)
        t = dispatch(EMPTY, shape=(int(np.prod(shape, dtype=np.int64)),), dtype=_dt(dtype, fn="empty"),
                     device=_dev(device))
        a = t._data
        xp = np if type(a) is np.ndarray else cupy()
        t._data = xp.lib.stride_tricks.as_strided(a, shape, tuple(st * a.itemsize for st in strides))
        return _finish(t, requires_grad)
    return _finish(dispatch(EMPTY, shape=_size(_sizes(size_, size)), dtype=_dt(dtype, fn="empty"),
                            device=_dev(device)), requires_grad)


@public
def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, out=None, pin_memory=False):
    if out is not None:
        return _into_out(out, dtype, requires_grad,
                         lambda dt: full(size, fill_value, dtype=dt, device=out.device), "full")
    if pin_memory:
        return _pinned(full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad), True)
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = D.bool_
        elif isinstance(fill_value, int):
            dtype = D.int64
        elif isinstance(fill_value, complex):
            dtype = D.default_complex()
    return _finish(dispatch(FULL, shape=_size((size,) if isinstance(size, int) else (tuple(size),)),
                            fill_value=fill_value, dtype=_dt(dtype, fn="full"), device=_dev(device)), requires_grad)


@public
def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, out=None):
    if out is not None:
        return _into_out(out, dtype, requires_grad, lambda dt: eye(n, m, dtype=dt, device=out.device), "eye")
    return _finish(dispatch(EYE, n=n, m=m if m is not None else n, dtype=_dt(dtype, fn="eye"), device=_dev(device)),
                   requires_grad)


@public
def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, out=None):
    if out is not None:
        return _into_out(out, dtype, requires_grad,
                         lambda dt: arange(start, end, step, dtype=dt, device=out.device), "arange")
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if vals[2] == 0:
        raise RuntimeError("step must be nonzero")
    if (vals[1] - vals[0]) * vals[2] < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        dtype = D.int64 if all(isinstance(v, (int, np.integer)) for v in vals) else D.get_default_dtype()
    return _finish(dispatch(ARANGE, start=vals[0], end=vals[1], step=vals[2], dtype=_dt(dtype, fn="arange"),
                            device=_dev(device)), requires_grad)


@public
def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, out=None):
    if out is not None:
        return _into_out(out, dtype, requires_grad,
                         lambda dt: linspace(start, end, steps, dtype=dt, device=out.device), "linspace")
    return _finish(dispatch(LINSPACE, start=start, end=end, steps=steps, dtype=_dt(dtype, fn="linspace"),
                            device=_dev(device)), requires_grad)


@public
def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    if out is not None:
        return _into_out(out, dtype, requires_grad,
                         lambda dt: rand(*size, generator=generator, dtype=dt, device=out.device), "rand")
    return _finish(dispatch(RAND, shape=_size(size), dtype=_dt(dtype, fn="rand"), device=_dev(device),
                            generator=generator), requires_grad)


@public
def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    if out is not None:
        return _into_out(out, dtype, requires_grad,
                         lambda dt: randn(*size, generator=generator, dtype=dt, device=out.device), "randn")
    return _finish(dispatch(RANDN, shape=_size(size), dtype=_dt(dtype, fn="randn"), device=_dev(device),
                            generator=generator), requires_grad)


@public
def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    if size is None:
        if isinstance(high, (tuple, list)):
            low, high, size = 0, low, high
        else:
            raise TypeError("randint() missing required argument 'size'")
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _finish(dispatch(RANDINT, low=low, high=high, shape=_size((tuple(size),)),
                            dtype=_dt(dtype, D.int64, fn="randint"), device=_dev(device), generator=generator),
                   requires_grad)


@public
def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    return _finish(dispatch(RANDPERM, n=n, dtype=_dt(dtype, D.int64, fn="randperm"), device=_dev(device),
                            generator=generator), requires_grad)


def relayout(t, strides):
    """A new tensor `t` (a factory's, no history) laid out with `strides` (in elements) instead of row-major,
    its values kept: the *_like factories' memory format."""
    a = t._data
    xp = np if type(a) is np.ndarray else cupy()
    out = MF.empty_strided_array(xp, a.shape, a.dtype, strides)
    xp.copyto(out, a)
    t._data = out
    return t


def _like_strides(input, memory_format, name):
    """The strides of a *_like result (None: row-major): torch's preserve_format (the default) keeps a dense
    input's strides, else dense ones in their order; channels_last(_3d) its own. A sparse input: none."""
    a = input._data
    if memory_format is None and (type(a) is SparseCOO or a.flags.c_contiguous):
        return None         # the common case, asked first
    if type(a) is SparseCOO:
        MF.check(memory_format, name)
        return None
    return MF.like_strides(a, memory_format, name)


def _like_made(fn, args, shape, dtype, device, requires_grad, kw, strides):
    """A *_like factory's tensor: fn's of the input's shape, laid out with `strides` (None: row-major)."""
    t = fn(*args, shape, dtype=dtype, device=device, requires_grad=requires_grad, **kw) if fn is full else \
        fn(shape, *args, dtype=dtype, device=device, requires_grad=requires_grad, **kw)
    return t if strides is None else relayout(t, strides)


def _like(fn):
    name = fn.__name__ + "_like"        # torch's aten::empty_like & co. around the factory they call

    def f(input, *args, dtype=None, device=None, requires_grad=False, memory_format=None, **kw):
        d = dtype if dtype is not None else input.dtype
        dev = device if device is not None else device_of(input._data)
        if kw and fn is empty and check_layout(kw.get("layout"), name):
            raise sparse_layout_refusal("empty_strided")       # (torch's zeros_like & co. give sparse zeros)
        a = input._data     # (the common case, a row-major input and the default format, tested inline)
        strides = None if memory_format is None and type(a) is not SparseCOO and a.flags.c_contiguous else \
            _like_strides(input, memory_format, name)
        if not _H.range_hooks:      # nothing listens: no region to open
            return _like_made(fn, args, a.shape, d, dev, requires_grad, kw, strides)
        if fn in _LIKE_FILLS and not kw and not args and strides is None and type(a) is not SparseCOO:
            return _H.op_step(name, like_steps, a.shape, d, dev, requires_grad, _LIKE_FILLS[fn])
        return _H.op_step(name, _like_made, fn, args, a.shape, d, dev, requires_grad, kw, strides)
    f.__name__ = f.__qualname__ = name
    return public(f)


def _empty_strided(shape, dtype, device):
    return dispatch(EMPTY_STRIDED, shape=shape, dtype=dtype, device=device)


def like_steps(shape, dtype, device, requires_grad, fill):
    """A row-major *_like result as torch's makes it while a profiler listens: empty_like's empty_strided
    (dispatched: a detailed profile records its allocation), then the fill (zero_, fill_ of 1) dispatched; for
    empty_like, the empty_strided alone (the caller's range is empty_like). Also the backward seed's (inside its
    ones_like region: autograd.engine._make_grads)."""
    if fill is None:
        return _finish(dispatch(EMPTY_STRIDED, shape=shape, dtype=_dt(dtype), device=device), requires_grad)
    t = _H.op_step("empty_like", _empty_strided, shape, _dt(dtype), device)
    op_name, value = fill
    if value is None:
        dispatch(op_at(op_name), t)
    else:
        dispatch(op_at(op_name), t, value)
    return _finish(t, requires_grad)


def _recorded_empty(shape, dtype):
    return run_recorded(EMPTY_STRIDED, shape=shape, dtype=dtype, device=CPU)


def recorded_like(shape, dtype, fill):
    """like_steps' NumPy twin while `dispatch.records_arrays()` (a profile's sink or recorder alone observes ops):
    empty_like's empty_strided and the fill (op name, value or None) each run and recorded by `run_recorded`, the
    records and memory records of the dispatched steps without their dispatches; the array. The caller's range
    (ones_like: autograd.engine._make_grads' seed) wraps it. dtype: a NumPy dtype."""
    out = _H.op_step("empty_like", _recorded_empty, shape, dtype)
    op_name, value = fill
    if value is None:
        run_recorded(op_at(op_name), out)
    else:
        run_recorded(op_at(op_name), out, value)
    return out


_LIKE_FILLS = {zeros: ("zero_", None), ones: ("fill_", 1), empty: None}     # (the fill after empty_like)
zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


@public
@torch_op("full_like")
def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    strides = _like_strides(input, memory_format, "full_like")
    if _H.range_hooks and strides is None and type(input._data) is not SparseCOO:      # torch's steps
        return like_steps(tuple(input.shape), dtype if dtype is not None else input.dtype,
                           _dev(device) if device is not None else device_of(input._data), requires_grad,
                           ("fill_", fill_value))
    t = full(tuple(input.shape), fill_value, dtype=dtype if dtype is not None else input.dtype,
             device=device if device is not None else input.device, requires_grad=requires_grad)
    return t if strides is None else relayout(t, strides)


@public
def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    if high is None:
        low, high = 0, low
    strides = _like_strides(input, memory_format, "randint_like")
    t = randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)
    return t if strides is None else relayout(t, strides)


@public(function=False, method=True)
def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _new(fn):
    def f(self, *size, dtype=None, device=None, requires_grad=False):
        return fn(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)
    f.__name__ = f.__qualname__ = "new_" + fn.__name__
    return public(f, function=False, method=True)


new_zeros, new_ones, new_empty = _new(zeros), _new(ones), _new(empty)


@public(function=False, method=True)
def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def legacy_new(dtype, args, device=None):
    """torch.Tensor(...) / torch.FloatTensor(...) and the other legacy constructors: () -> empty, sizes or a
    Size -> uninitialized (here: zeros) of that shape, a sequence or array -> its data converted to `dtype`
    (None: the default dtype), a tensor -> a tensor sharing its data (whatever its dtype, as torch)."""
    dt = D.get_default_dtype() if dtype is None else dtype
    if not args:
        return zeros(0, dtype=dt, device=device)
    if len(args) == 1 and isinstance(args[0], Tensor):
        return args[0].detach()
    sizes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Size) else args
    if all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
        if any(n < 0 for n in sizes):
            raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {list(sizes)}")
        return zeros(*sizes, dtype=dt, device=device)
    if len(args) == 1:
        data = args[0]
        if isinstance(data, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        if isinstance(data, numbers.Number):
            raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
        return tensor(data, dtype=dt, device=device)
    raise TypeError(f"new() received an invalid combination of arguments - got "
                    f"({', '.join(type(a).__name__ for a in args)}), but expected one of: (*, device), "
                    f"(Tensor other), (tuple of ints size, *, device), (object data, *, device)")


class LegacyTensorType(type):
    """The class of torch.FloatTensor, torch.cuda.LongTensor...: calling one is the legacy constructor for
    its dtype and device (`Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor; Tensor(n, 3)`),
    isinstance() tests a tensor's dtype and device, and `x.type(torch.LongTensor)` converts."""
    dtype: D.dtype
    is_cuda: bool

    def __call__(cls, *args, device=None):
        if cls.is_cuda:
            device = device if device is not None else "cuda"
        return legacy_new(cls.dtype, args, device)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.is_cuda == cls.is_cuda

    def __repr__(cls):
        return f"<class 'tensorlib.{'cuda.' if cls.is_cuda else ''}{cls.__name__}'>"


LEGACY_TYPES = {"FloatTensor": D.float32, "DoubleTensor": D.float64, "HalfTensor": D.float16,
                "BFloat16Tensor": D.bfloat16, "ByteTensor": D.uint8, "CharTensor": D.int8, "ShortTensor": D.int16,
                "IntTensor": D.int32, "LongTensor": D.int64, "BoolTensor": D.bool_, "ComplexFloatTensor": D.complex64,
                "ComplexDoubleTensor": D.complex128}


def legacy_types(is_cuda):
    """{name: class} of the legacy tensor types on the CPU (tensorlib.FloatTensor...) or CUDA
    (tensorlib.cuda.FloatTensor...)."""
    return {name: LegacyTensorType(name, (), {"dtype": dt, "is_cuda": is_cuda}) for name, dt in LEGACY_TYPES.items()}
