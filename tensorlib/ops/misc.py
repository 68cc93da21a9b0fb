"""Conversions, copies and in-place ops: to/cpu/cuda, clone, detach, copy_, fill_, zero_, add_ & co.,
random fills. In-place ops name the out-of-place op whose backward applies (`inplace_of`)."""
from __future__ import annotations

from .. import _dtype as D
from .. import _sync
from .._device import CPU, device_of, move, to_device
from ._helpers import sum_to
from ._registry import Tensor, dispatch, method, np, op
from . import elementwise as E
from .creation import zeros_like  # noqa: F401 - backward formulas of gather/max/index_select import it from here


# --- to / clone / detach --------------------------------------------------------------------------

@op("to", any_device=True, node_name="ToCopyBackward0")
def TO(xp, a, dtype=None, device=None, copy=False):
    if device is not None:
        a2 = move(a, device)
        copied = a2 is not a
        a = a2
    else:
        copied = False
    if dtype is not None and a.dtype != dtype:
        return a.astype(dtype)
    return a.copy() if copy and not copied else a


@TO.def_backward
def _(ctx, g):
    shape, dt = ctx.in_meta[0]
    src_dev = ctx.metadata.get("src_device")
    return (dispatch(TO, g, dtype=dt, device=src_dev) if src_dev is not None else dispatch(TO, g, dtype=dt),)


def to(input, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
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
    if same_dev and (np_dt is None or np_dt == data.dtype) and not copy:
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
    out = dispatch(TO, input, **attrs)
    if not same_dev and out._grad_fn is not None:
        out._grad_fn.metadata["src_device"] = device_of(data)
    return out


def cpu(self, memory_format=None):
    return to(self, device=CPU)


def cuda(self, device=None, non_blocking=False, memory_format=None):
    return to(self, device="cuda" if device is None else (device if not isinstance(device, int) else f"cuda:{device}"))


def type_(self, dtype=None, non_blocking=False):
    if dtype is None:
        return f"tensorlib.{'cuda.' if self.is_cuda else ''}{self.dtype.name}"
    return to(self, dtype=dtype)


@op("clone", node_name="CloneBackward0")
def CLONE(xp, a, memory_format=None):
    return a.copy()


CLONE.def_backward(lambda ctx, g: (g,))


def clone(input, *, memory_format=None):
    return dispatch(CLONE, input)


@op("detach", view=True)
def DETACH(xp, a):
    return a.view()


def detach(input):
    out = dispatch(DETACH, input)
    out._detached = True     # shares the base's memory and versions, not its history
    return out


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
    return dispatch(VIEW_DTYPE, input, dtype=D.to_dtype(dtype).np)


# --- in-place ops -----------------------------------------------------------------------------------

def _ip_binary(xp_fn):
    np_fn = getattr(np, xp_fn)

    def kernel(xp, a, b, alpha=1):
        if alpha != 1:
            b = b * alpha
        if a.dtype.kind != "f":   # torch refuses to write a float result into an integer tensor
            bd = getattr(b, "dtype", None)
            if isinstance(b, float) or (bd is not None and getattr(bd, "kind", "") == "f"):
                raise RuntimeError(f"result type Float can't be cast to the desired output type "
                                   f"{D.scalar_name(a.dtype)}")
        (np_fn if xp is np else getattr(xp, xp_fn))(a, b, out=a, casting="unsafe")
    return kernel


ADD_ = op("add_", inplace_of=E.ADD)(_ip_binary("add"))
SUB_ = op("sub_", inplace_of=E.SUB)(_ip_binary("subtract"))
MUL_ = op("mul_", inplace_of=E.MUL)(_ip_binary("multiply"))


def _div_ip(xp, a, b, rounding_mode=None):
    if a.dtype.kind != "f" and rounding_mode is None:
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{D.scalar_name(a.dtype)}")
    if rounding_mode is not None:
        E.int_zero_division(xp, a, b)
    if rounding_mode == "floor":
        xp.floor_divide(a, b, out=a, casting="unsafe")
    elif rounding_mode == "trunc":
        a[...] = xp.trunc(a / b)
    else:
        xp.true_divide(a, b, out=a, casting="unsafe")


DIV_ = op("div_", inplace_of=E.DIV)(_div_ip)


def _pow_ip(xp, a, b):
    xp.power(a, b, out=a, casting="unsafe")


POW_ = op("pow_", inplace_of=E.POW)(_pow_ip)


def _clamp_ip(xp, a, min=None, max=None):
    xp.clip(a, min, max, out=a)


CLAMP_ = op("clamp_", inplace_of=E.CLAMP)(_clamp_ip)


def _relu_ip(xp, a):
    xp.maximum(a, 0, out=a)


RELU_ = op("relu_", inplace_of=E.RELU)(_relu_ip)


@op("fill", node_name="FillBackward0")
def FILL(xp, a, value):
    return xp.full_like(a, value)


FILL.def_backward(lambda ctx, g: (None, g.sum() if ctx.needs_input_grad[1] else None))


def _fill_ip(xp, a, value):
    if hasattr(value, "ndim"):
        value = value.reshape(())
    a[...] = value


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


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    return dispatch(UNIFORM_, self, low=a, high=b, generator=generator)


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    return dispatch(NORMAL_, self, mean=mean, std=std, generator=generator)


def bernoulli_(self, p=0.5, *, generator=None):
    return dispatch(BERNOULLI_, self, p=p, generator=generator)


def exponential_(self, lambd=1.0, *, generator=None):
    return dispatch(EXPONENTIAL_, self, lambd=lambd, generator=generator)


def _ip_method(o, **fixed):
    def f(self, *args, **kw):
        return dispatch(o, self, *args, **kw)
    f.__name__ = o.name
    return f


def add_(self, other, *, alpha=1):
    return dispatch(ADD_, self, other) if alpha == 1 else dispatch(ADD_, self, other, alpha=alpha)


def sub_(self, other, *, alpha=1):
    return dispatch(SUB_, self, other) if alpha == 1 else dispatch(SUB_, self, other, alpha=alpha)


def mul_(self, other):
    return dispatch(MUL_, self, other)


def div_(self, other, *, rounding_mode=None):
    if rounding_mode is None:
        return dispatch(DIV_, self, other)
    return dispatch(DIV_, self, other, rounding_mode=rounding_mode)


def pow_(self, exponent):
    return dispatch(POW_, self, exponent)


def clamp_(self, min=None, max=None):
    from ._registry import unwrap_scalar
    if min is None and max is None:
        raise RuntimeError("tensorlib.clamp: At least one of 'min' or 'max' must not be None")
    return dispatch(CLAMP_, self, min=unwrap_scalar(min), max=unwrap_scalar(max))


def relu_(self):
    return dispatch(RELU_, self)


def fill_(self, value):
    return dispatch(FILL_, self, value)


def zero_(self):
    return dispatch(ZERO_, self)


# --- Python conversions -------------------------------------------------------------------------------

def item(self, _what="item"):
    d = self._data
    if d.size != 1:
        raise RuntimeError(f"a Tensor with {d.size} elements cannot be converted to Scalar")
    _sync.note_sync(self, _what)
    if type(d) is not np.ndarray:
        d = d.get()
    return d.reshape(()).item()


def tolist(self):
    d = self._data
    _sync.note_sync(self, "tolist")
    if type(d) is not np.ndarray:
        d = d.get()
    return d.tolist()


def _bool(self):
    d = self._data
    if d.size != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(item(self, "bool"))


Tensor.item = item
Tensor.tolist = tolist
Tensor.__bool__ = _bool
def _scalar(self, kind):
    """float(t) / int(t): torch's ValueError for a tensor of more than one element (item() raises its own)."""
    if self._data.size != 1:
        raise ValueError("only one element tensors can be converted to Python scalars")
    return kind(item(self))


Tensor.__float__ = lambda self: _scalar(self, float)
Tensor.__int__ = lambda self: _scalar(self, int)


def _index(self):
    if self._data.dtype.kind not in "iub" or self._data.size != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return int(item(self))


Tensor.__index__ = _index


def _cast(dt):
    def f(self, memory_format=None):
        return to(self, dtype=dt)
    return f


for _n, _f in dict(to=to, cpu=cpu, cuda=cuda, type=type_, clone=clone, detach=detach, detach_=detach_,
                   add_=add_, sub_=sub_, mul_=mul_, div_=div_, pow_=pow_, clamp_=clamp_, clip_=clamp_, relu_=relu_,
                   fill_=fill_, zero_=zero_, copy_=copy_, uniform_=uniform_, normal_=normal_, bernoulli_=bernoulli_,
                   exponential_=exponential_, float=_cast(D.float32), double=_cast(D.float64), half=_cast(D.float16),
                   bfloat16=_cast(D.bfloat16),
                   long=_cast(D.int64), int=_cast(D.int32), short=_cast(D.int16), bool=_cast(D.bool_),
                   byte=_cast(D.uint8), char=_cast(D.int8)).items():
    method(_n, _f)

Tensor.__iadd__ = lambda self, o: add_(self, o)
Tensor.__isub__ = lambda self, o: sub_(self, o)
Tensor.__imul__ = lambda self, o: mul_(self, o)
Tensor.__itruediv__ = lambda self, o: div_(self, o)


def type_as(input, other):
    return to(input, dtype=other.dtype, device=other.device)


method("type_as", type_as)


# --- in-place unary methods: exp_, log_, sqrt_, sigmoid_, tanh_ (the out-of-place op's node, as in torch) ---

def _ip_unary(base):
    def kernel(xp, a):
        r = base.kernel(xp, a)
        if r.dtype != a.dtype and not np.can_cast(r.dtype, a.dtype, "same_kind"):
            raise RuntimeError(f"result type {D.scalar_name(r.dtype)} can't be cast to the desired output type "
                               f"{D.scalar_name(a.dtype)}")
        a[...] = r
    return kernel


EXP_ = op("exp_", inplace_of=E.EXP)(_ip_unary(E.EXP))
LOG_ = op("log_", inplace_of=E.LOG)(_ip_unary(E.LOG))
SQRT_ = op("sqrt_", inplace_of=E.SQRT)(_ip_unary(E.SQRT))
SIGMOID_ = op("sigmoid_", inplace_of=E.SIGMOID)(_ip_unary(E.SIGMOID))
TANH_ = op("tanh_", inplace_of=E.TANH)(_ip_unary(E.TANH))

exp_, log_, sqrt_, sigmoid_, tanh_ = (_ip_method(o) for o in (EXP_, LOG_, SQRT_, SIGMOID_, TANH_))
for _f in (exp_, log_, sqrt_, sigmoid_, tanh_):
    method(_f.__name__, _f)
