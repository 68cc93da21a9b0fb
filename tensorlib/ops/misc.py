"""Conversions, copies and in-place ops: to/cpu/cuda, clone, detach, copy_, fill_, zero_, add_ & co.,
random fills. In-place ops name the out-of-place op whose backward applies (`inplace_of`)."""
from __future__ import annotations

import warnings
from operator import setitem as _setitem

from .. import _dtype as D
from .. import _hooks as _H
from .. import _memory_format as MF
from .. import _sync
from .._device import CPU, device_of, move, to_device, xp_of
from .._sparse import SparseCOO, dense_of
from .broadcast import sum_to
from ._define import Tensor, dispatch, fill_value, np, op, public, torch_op
from ._fastmath import astype as _fast_astype
from .creation import zeros_like  # noqa: F401 - backward formulas of gather/max/index_select import it from here


# --- to / clone / detach --------------------------------------------------------------------------

@op("to", any_device=True, node_name="ToCopyBackward0")
def TO(xp, a, dtype=None, device=None, copy=False, memory_format=None):
    if memory_format is not None:   # the conversion, then (or instead) a copy laid out in the format
        if dtype is not None or device is not None:
            a = _to_kernel(xp, a, dtype, device)
            xp = xp_of(a)
        return MF.copy_strided(xp, a, MF.format_strides(a.shape, memory_format))
    if device is not None:
        a2 = move(a, device)
        copied = a2 is not a
        a = a2
    else:
        copied = False
    if dtype is not None and a.dtype != dtype:
        if a.dtype.kind == "c" and np.dtype(dtype).kind != "c":       # torch's warning, not NumPy's ComplexWarning
            warnings.warn("Casting complex values to real discards the imaginary part", UserWarning, stacklevel=2)
            a = a.real
        if _H.range_hooks and not copied:   # torch's _to_copy: a buffer (empty_strided), then copy_ into it
            return _alloc_and_copy(xp, a, dtype)
        # preserve_format (torch's): a dense input's strides kept, an expanded one's made dense in their order
        if not a.flags.c_contiguous:
            return MF.copy_strided(xp, a, MF.preserve_strides(a), dtype)
        return _fast_astype(a, dtype) if xp is np else a.astype(dtype)     # (float32 -> bfloat16 by a C loop)
    # a dispatched `to` that changes nothing still returns new memory (the public `to` returns the tensor
    # itself before dispatching): an output that aliased its input would not share its versions
    if copied:
        return a
    # preserve_format, as torch's _to_copy: a dense input's strides kept (tensorlib's astype keeps them too)
    return a.copy() if a.flags.c_contiguous else MF.copy_strided(xp, a, MF.preserve_strides(a))


_to_kernel = TO.kernel


@TO.def_backward
def _(ctx, g):
    shape, dt = ctx.in_meta[0]
    src_dev = ctx.metadata.get("src_device")
    if g._data.dtype.kind == "c" and dt.kind != "c":      # a real input's gradient: the real part (handle_r_to_c)
        g = g.real
    return (dispatch(TO, g, dtype=dt, device=src_dev) if src_dev is not None else dispatch(TO, g, dtype=dt),)


_TO_KWARGS = frozenset(("dtype", "device", "non_blocking", "copy", "memory_format"))


def _to_refusal(args, kw):
    """torch's TypeError for a keyword Tensor.to has not (`a.to(requires_grad=True)`, pytorch/tutorials'
    former_torchies autograd tutorial), naming what it got as torch's argument parser does."""
    ns = D.namespace()

    def name(v):
        return "Tensor" if isinstance(v, Tensor) else f"{ns}.dtype" if isinstance(v, D.dtype) else type(v).__name__
    pos = [name(a) for a in args]
    kws = [f"{k}={name(v)}" for k, v in kw.items()]
    got = ", ".join(pos) + "".join(f", {k}" if pos else f"{k}, " for k in kws)
    rest = f"bool non_blocking = False, bool copy = False, *, {ns}.memory_format memory_format = None)"
    return (f"to() received an invalid combination of arguments - got ({got}), but expected one of:\n"
            f" * ({ns}.device device = None, {ns}.dtype dtype = None, {rest}\n"
            f" * ({ns}.dtype dtype, {rest}\n"
            f" * (Tensor tensor, {rest}\n")


@public(function=False, method=True)
def to(input, *args, **kw):
    """torch's composite aten::to: recorded even when it returns `input` itself; a conversion runs the
    TO op, torch's aten::_to_copy (its node is ToCopyBackward0)."""
    if kw and not _TO_KWARGS.issuperset(kw):
        raise TypeError(_to_refusal(args, kw))
    if not _H.range_hooks:      # nothing listens: no region to open
        return _to(input, *args, **kw)
    # the region and the call in one (the only region hook's C op_step); keywords through _to_kw's frame
    return _H.op_step("to", _to, input, *args) if not kw else _H.op_step("to", _to_kw, input, args, kw)


def _to_kw(input, args, kw):
    return _to(input, *args, **kw)


def _to(input, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, D.dtype) or a in (float, int, bool) or (isinstance(a, str) and a in D._BY_NAME):
            dtype = a
        elif a is not None:
            device = a
    np_dt = D.to_dtype(dtype).np if dtype is not None else None
    dev = to_device(device) if device is not None else None
    data = input._data
    if (np_dt if np_dt is not None else data.dtype) == D.BF16 and (dev or device_of(data)).type == "cuda":
        raise TypeError(D.BF16_ON_CUDA)
    same_dev = dev is None or device_of(data) == dev
    if memory_format is not None:
        if memory_format is MF.preserve_format:
            memory_format = None
        else:
            MF.check(memory_format, "to")
            MF.format_strides(data.shape, memory_format)        # (torch's rank check)
    if same_dev and (np_dt is None or np_dt == data.dtype) and not copy and (
            memory_format is None or MF.suggest(data) is memory_format):     # torch's test: the suggested format
        return input
    attrs = {}
    if np_dt is not None and np_dt != data.dtype:
        attrs["dtype"] = np_dt
    if not same_dev:
        attrs["device"] = dev
        if dev.type == "cpu":
            _sync.note_sync(input, "cpu")     # a device-to-host copy waits for the GPU
    if copy:
        attrs["copy"] = True
    if memory_format is not None:
        attrs["memory_format"] = memory_format
    out = dispatch(TO, input, **attrs)
    if not same_dev and out._grad_fn is not None:
        out._grad_fn.metadata["src_device"] = device_of(data)
    return out


@public(function=False, method=True)
def cpu(self, memory_format=None):
    return to(self, device=CPU, memory_format=memory_format)


_TYPE_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
               "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def type_name(t):
    """torch's scalar type names, as its dtype-mismatch messages print them."""
    return _TYPE_NAMES.get(t._data.dtype.name, t._data.dtype.name)


@public(function=False, method=True)
def cuda(self, device=None, non_blocking=False, memory_format=None):
    return to(self, device="cuda" if device is None else (device if not isinstance(device, int) else f"cuda:{device}"),
              memory_format=memory_format)


@public(name="type", function=False, method=True)
def type_(self, dtype=None, non_blocking=False):
    if dtype is None:
        return f"{D.namespace()}.{'cuda.' if self.is_cuda else ''}{type_name(self)}Tensor"
    if isinstance(getattr(dtype, "is_cuda", None), bool):     # a legacy type: tensorlib(.cuda).LongTensor
        return to(self, dtype=dtype.dtype, device="cuda" if dtype.is_cuda else "cpu")
    return to(self, dtype=dtype)


def _alloc_and_copy(xp, a, dtype):
    """a.astype(dtype) in its two steps, each in the range of torch's op for it: the output buffer laid out
    as `a` (empty_strided) and the converting copy into it (copy_: an assignment casts as copyto's "unsafe"
    does). Each step is the C call itself (no Python frame of ours or of NumPy's dispatcher: empty for a
    row-major input)."""
    if a.flags.c_contiguous:
        out = _H.op_step("empty_strided", xp.empty, a.shape, dtype)
    else:
        out = _H.op_step("empty_strided", xp.empty_like, a, dtype)
    _H.op_step("copy_", _setitem, out, Ellipsis, a)
    return out


@op("clone", node_name="CloneBackward0")
def CLONE(xp, a, memory_format=None):
    """memory_format: None (torch's preserve_format: a dense input's strides kept, else dense ones in their
    order), contiguous_format (row-major), channels_last(_3d) (torch's strides)."""
    if memory_format is not MF.contiguous_format and (memory_format is not None or not a.flags.c_contiguous):
        strides = MF.like_strides(a, memory_format, "clone")
        if strides is not None:
            if _H.range_hooks:
                out = _H.op_step("empty_like", _H.op_step, "empty_strided", MF.empty_strided_array, xp, a.shape,
                                 a.dtype, strides)
                _H.op_step("copy_", _setitem, out, Ellipsis, a)
                return out
            return MF.copy_strided(xp, a, strides)
    if _H.range_hooks:
        # torch's clone: empty_like, then copy_; the buffer of a contiguous tensor is an empty_strided of its
        # strides, that of a strided one a contiguous (empty) one, as tensorlib's copy is (torch's reshape and
        # contiguous clone in the contiguous format)
        alloc = "empty_strided" if a.flags.c_contiguous else "empty"
        out = _H.op_step("empty_like", _H.op_step, alloc, xp.empty, a.shape, a.dtype)
        _H.op_step("copy_", _setitem, out, Ellipsis, a)
        return out
    return a.copy()


CLONE.def_backward(lambda ctx, g: (g,))
CLONE.quiet_backward = lambda ctx, g: (g,)      # the formula itself: nothing to dispatch (the quiet path, OpDef)


@public(method=True)
def clone(input, *, memory_format=None):
    if memory_format is None or memory_format is MF.preserve_format:
        return dispatch(CLONE, input)
    MF.check(memory_format, "clone")
    return dispatch(CLONE, input, memory_format=memory_format)


@op("detach", view=True)
def DETACH(xp, a):
    if _H.range_hooks:      # the alias made below autograd: torch's autograd kernel records it as "detach"
        return _H.op_step("detach", a.view)
    return a.view()


@public(method=True)
def detach(input):
    out = dispatch(DETACH, input)
    out._detached = True     # shares the base's memory and versions, not its history
    return out


@public(function=False, method=True)
@torch_op("detach_")
def detach_(self):
    if self._base is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead. If you are using "
                           "DistributedDataParallel (DDP) for training, and gradient_as_bucket_view is set as True, "
                           "gradients are views of DDP buckets, and hence detach_() cannot be called on these "
                           "gradients. To fix this error, please refer to the Optimizer.zero_grad() function in "
                           "tensorlib/optim/optimizer.py as the solution.")
    self._grad_fn = None
    self._requires_grad = False
    return self


@op("alias_dtype", view=True)
def VIEW_DTYPE(xp, a, dtype):
    return a.view(dtype)


def view_dtype(input, dtype):
    new = D.to_dtype(dtype).np
    d = input._data
    if new.itemsize != d.itemsize and type(d) is not SparseCOO:
        _view_dtype_check(input, d, new)
    return dispatch(VIEW_DTYPE, input, dtype=new)


def _view_dtype_check(input, d, new):
    """torch's geometry checks, in its order and words, of a view as a dtype of another element size (NumPy's own
    allow some layouts torch refuses, a stride or storage offset that is not a whole number of new elements)."""
    what = f"to view {D.scalar_name(d.dtype)} as {D.scalar_name(new)} (different element sizes)"
    if d.ndim == 0:
        raise RuntimeError(f"self.dim() cannot be 0 {what}")
    strides = input.stride()
    if new.itemsize > d.itemsize:
        ratio = new.itemsize // d.itemsize
        if d.shape[-1] % ratio:
            raise RuntimeError(f"self.size(-1) must be divisible by {ratio} {what}, but got {d.shape[-1]}")
        offset = input.storage_offset()
        if offset % ratio:
            raise RuntimeError(f"self.storage_offset() must be divisible by {ratio} {what}, but got {offset}")
    if strides[-1] != 1:
        raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {strides[-1]}")
    if new.itemsize > d.itemsize:
        for i, st in enumerate(strides[:-1]):
            if st % ratio:
                raise RuntimeError(f"self.stride({i}) must be divisible by {ratio} {what}, but got {st}")


# --- fills and copies (in-place; the in-place arithmetic lives beside its op) -------------------------

@op("fill", node_name="FillBackward0")
def FILL(xp, a, value):
    return xp.full_like(a, value)


FILL.def_backward(lambda ctx, g: (None, g.sum() if ctx.needs_input_grad[1] else None))


def _fill_ip(xp, a, value):
    if hasattr(value, "ndim"):
        value = value.reshape(())
    a[...] = fill_value(value, a.dtype)


FILL_ = op("fill_", inplace_of=FILL)(_fill_ip)


@op("zero", node_name="ZeroBackward0")
def ZERO(xp, a):
    return xp.zeros_like(a)


ZERO.def_backward(lambda ctx, g: (None,))


def _zero_ip(xp, a):
    a.fill(0)


ZERO_ = op("zero_", inplace_of=ZERO)(_zero_ip)


@op("copy", any_device=True, node_name="CopyBackwards")
def COPY(xp, a, src, non_blocking=False):
    s = move(src, device_of(a)) if type(src) is not type(a) or type(a) is not np.ndarray else src
    return xp.broadcast_to(s, a.shape).astype(a.dtype, copy=True)


@COPY.def_backward
def _(ctx, g):
    gs = None
    if ctx.needs_input_grad[1]:
        gs = sum_to(g, ctx.in_meta[1][0])
    return None, gs


def _copy_ip(xp, a, src, non_blocking=False):
    if type(src) is not type(a) or type(a) is not np.ndarray:
        src = move(src, device_of(a))
    xp.copyto(a, src, casting="unsafe")


COPY_ = op("copy_", inplace_of=COPY, any_device=True)(_copy_ip)


@public(function=False, method=True)
def copy_(self, src, non_blocking=False):
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_(): argument 'other' must be Tensor, not {type(src).__name__}")
    return dispatch(COPY_, self, src)


def _rand_fill(kind):
    def kernel(xp, a, **kw):
        from .. import random as R
        a[...] = R.sample(kind, a.shape, a.dtype, device_of(a), **kw)
    return kernel


@op("random_fill", node_name="RandomBackward0")
def RANDOM_FILL(xp, a, **kw):
    return xp.zeros_like(a)


RANDOM_FILL.def_backward(lambda ctx, g: (None,))
UNIFORM_ = op("uniform_", inplace_of=RANDOM_FILL)(_rand_fill("uniform"))
NORMAL_ = op("normal_", inplace_of=RANDOM_FILL)(_rand_fill("normal"))
BERNOULLI_ = op("bernoulli_", inplace_of=RANDOM_FILL)(_rand_fill("bernoulli"))
EXPONENTIAL_ = op("exponential_", inplace_of=RANDOM_FILL)(_rand_fill("exponential"))


@public(function=False, method=True)
def uniform_(self, a=0.0, b=1.0, *, generator=None):
    return dispatch(UNIFORM_, self, low=a, high=b, generator=generator)


@public(function=False, method=True)
def normal_(self, mean=0.0, std=1.0, *, generator=None):
    return dispatch(NORMAL_, self, mean=mean, std=std, generator=generator)


@public(function=False, method=True)
def exponential_(self, lambd=1.0, *, generator=None):
    return dispatch(EXPONENTIAL_, self, lambd=lambd, generator=generator)


@public(method=True)
def fill_(self, value):
    return dispatch(FILL_, self, value)


@public(method=True)
def zero_(self):
    return dispatch(ZERO_, self)


# --- Python conversions -------------------------------------------------------------------------------

@public(function=False, method=True)
def item(self, _what="item"):
    d = self._data
    cpu = type(d) is np.ndarray and d.size == 1     # the CPU's: no sync to report, the read alone
    rp = _H.range_pair
    if rp is None:
        return d.item() if cpu else _item(self, _what)
    tok = rp[0]("item", "op")     # torch's aten::item, around the read (_item's _local_scalar_dense)
    try:
        return _H.op_step("_local_scalar_dense", d.item) if cpu else _item(self, _what)
    finally:
        rp[1](tok)


def _item(self, _what):
    d = self._data
    if d.size != 1:
        raise RuntimeError(f"a Tensor with {d.size} elements cannot be converted to Scalar")
    _sync.note_sync(self, _what)
    if _H.range_hooks:      # the value's read (from the device), torch's _local_scalar_dense
        return _H.op_step("_local_scalar_dense", _read_scalar, d)
    return _read_scalar(d)


def _read_scalar(d):
    if type(d) is SparseCOO:        # a sparse tensor of one element: its values' sum (none: 0)
        d = dense_of(np, d) if type(d.values) is np.ndarray else dense_of(xp_of(d.values), d).get()
    elif type(d) is not np.ndarray:
        d = d.get()
    return d.reshape(()).item()


@public(function=False, method=True)
def tolist(self):
    d = self._data
    if type(d) is SparseCOO:
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")     # torch's
    _sync.note_sync(self, "tolist")
    if type(d) is not np.ndarray:
        d = d.get()
    return d.tolist()


@public(name="__bool__", function=False, method=True)
def _bool(self):
    d = self._data
    if d.size != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(item(self, "bool"))


def _scalar(self, kind):
    """float(t) / int(t): torch's ValueError for a tensor of more than one element (item() raises its own)."""
    if self._data.size != 1:
        raise ValueError("only one element tensors can be converted to Python scalars")
    v = item(self)
    if type(v) is complex and kind is not complex and v.imag == 0:
        v = v.real
    if type(v) is complex and kind is not complex:      # torch's words for float()/int() of a complex value
        raise RuntimeError(f"value cannot be converted to type {'double' if kind is float else 'int64_t'} without "
                           "overflow")
    return kind(v)


public(lambda self: _scalar(self, float), name="__float__", function=False, method=True)
public(lambda self: _scalar(self, int), name="__int__", function=False, method=True)
public(lambda self: _scalar(self, complex), name="__complex__", function=False, method=True)


@public(name="__index__", function=False, method=True)
def _index(self):
    if self._data.dtype.kind not in "iub" or self._data.size != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return int(item(self))


def _cast(dt):
    def f(self, memory_format=None):     # (dt.np when called: bfloat16's imports ml_dtypes)
        if memory_format is not None:       # torch's: to(dtype, memory_format=...)
            return to(self, dtype=dt, memory_format=memory_format)
        if _H.range_pair is None and self._data.dtype == dt.np:     # `to`'s no-op case, with nothing recording it
            return self
        return to(self, dt)         # (positional: to's region and conversion in one op_step, no keyword frame)
    return f


for _name, _dt in dict(float=D.float32, double=D.float64, half=D.float16, bfloat16=D.bfloat16,
                       long=D.int64, int=D.int32, short=D.int16,
                       bool=D.bool_, byte=D.uint8, char=D.int8).items():
    public(_cast(_dt), name=_name, function=False, method=True)


@public(function=False, method=True)
def type_as(input, other):
    return to(input, dtype=other.dtype, device=other.device)
