"""torch's namespace helpers for shapes and dtypes (broadcast_shapes, result_type, can_cast, unravel_index),
factories (empty_strided, scalar_tensor, logspace, the deprecated range, the window functions) and numeric
integration and differentiation (trapezoid, trapz, cumulative_trapezoid, gradient), with rsub and fill.

Each is torch's algorithm, in its order of operations, so that float32 results round as torch's: the windows
are torch's composites of arange, mul_, cos_ (each op dispatched, inside the function's region), logspace,
range and kaiser_window are one kernel each (torch's too). Values are checked against torch in
devtools/torch_compat/test_namespace_against_torch.py."""
from __future__ import annotations

import builtins
import itertools
import math
import operator
import warnings
from collections.abc import Sequence

from .. import _dtype as D
from .._tensor import Size
from .._device import cupy, set_default_device
from .. import _hooks as _H
from ..dispatch import dispatch_binary, record_range
from .broadcast import sum_to
from .creation import (EMPTY_STRIDED, _dev, _dt, _finish, _on, _pinned, arange, check_layout, full, legacy_types, ones,
                       sparse_layout_refusal, tensor, zeros)
from .arithmetic import half_number_case, half_number, refuse_bool_sub
from .misc import FILL
from .reduce import sum as _sum
from .shape import cat
from .unary_math import neg
from ._define import _OPERAND, Tensor, dispatch, np, op, public, write_out

__all__ = ["RSUB", "RSUB_SCALAR", "LOGSPACE", "RANGE", "KAISER_WINDOW"]


# --- legacy switches ------------------------------------------------------------------------------------

@public
def set_default_tensor_type(t):
    """torch.set_default_tensor_type (deprecated since torch 2.1, its warning): a floating legacy type
    (tensorlib.FloatTensor, tensorlib.cuda.DoubleTensor, or its name "torch.cuda.FloatTensor") sets the default
    dtype, and a CUDA one the default device as well (back to the CPU for a CPU type)."""
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                  stacklevel=2)
    if isinstance(t, str):
        name = t
        parts = t.split(".")
        if len(parts) < 2 or parts[0] not in ("torch", "tensorlib") or (len(parts) == 3 and parts[1] != "cuda") \
                or len(parts) > 3:
            raise TypeError(f"invalid type: '{t}'")
        cls = legacy_types(len(parts) == 3).get(parts[-1])
        if cls is None:         # as torch's lookup of the name in its module
            raise AttributeError(f"module '{'.'.join([D.namespace(), *parts[1:-1]])}' has no attribute "
                                 f"'{parts[-1]}'")
    else:
        cls = t
        dt = getattr(cls, "dtype", None)
        if not isinstance(dt, D.dtype) or not hasattr(cls, "is_cuda"):
            raise TypeError(f"invalid type: '{t}'")
        name = f"torch.{'cuda.' if cls.is_cuda else ''}{cls.__name__}"
    if not cls.dtype.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    if cls.is_cuda:
        try:
            cupy()          # its "CUDA is not available: ..." reason
        except RuntimeError as e:
            raise TypeError(f"type {name} not available. {e}") from None
        set_default_device("cuda")
    else:
        set_default_device(None)
    D.set_default_dtype(cls.dtype)


@public
def is_storage(obj):
    """torch.is_storage: whether obj is a storage object; tensorlib has none (a tensor's memory is its array)."""
    return False


@public
def init_num_threads():
    """torch.init_num_threads: sets up the calling thread's intra-op pool; NumPy's BLAS pool is process-wide and
    already set (set_num_threads), so there is nothing to do."""
    return None


# --- shapes and dtypes ----------------------------------------------------------------------------------

@public
def broadcast_shapes(*shapes):
    """torch.broadcast_shapes: the shape every given shape (an int, a tuple or list of ints) broadcasts to,
    with torch's (torch._refs._broadcast_shapes's) errors."""
    shapes = tuple((s,) if isinstance(s, (int, np.integer)) else s for s in shapes if s is not None)
    if not shapes:
        return Size(())
    for s in shapes:
        if not isinstance(s, Sequence):
            raise RuntimeError(f"Input shapes should be of type ints, a tuple of ints, or a list of ints, got {s}")
    common = [1] * max(len(s) for s in shapes)
    for arg_idx, shape in enumerate(shapes):
        for idx in builtins.range(-1, -1 - len(shape), -1):
            if shape[idx] == common[idx]:
                continue
            if common[idx] == 1:
                if shape[idx] < 0:
                    raise ValueError("Attempting to broadcast a dimension with negative length!")
                common[idx] = shape[idx]
            if shape[idx] == 1:
                continue
            if common[idx] != shape[idx]:
                raise RuntimeError(f"Attempting to broadcast a dimension of length {shape[idx]} at {idx}! Mismatching "
                                   f"argument at index {arg_idx} had {shape}; but expected shape should be "
                                   f"broadcastable to {common}")
    return Size(tuple(common))


def _scalar_dtype(s):
    if isinstance(s, (bool, np.bool_)):
        return D.bool_
    if isinstance(s, (int, np.integer)):
        return D.int64
    if isinstance(s, (float, np.floating)):
        return D.get_default_dtype()
    raise TypeError(f"result_type(): argument 'tensor' must be Tensor, not {type(s).__name__}")


@public
def result_type(tensor1, tensor2):
    """torch.result_type: the dtype an arithmetic op of the two (tensors or numbers) gives, by torch's
    promotion (a 0-dim tensor or a number decides only when of a higher category)."""
    t1, t2 = isinstance(tensor1, Tensor), isinstance(tensor2, Tensor)
    if t1 and t2:
        return D.result_type(tensor1.dtype, tensor1.ndim == 0, tensor2.dtype, tensor2.ndim == 0)
    if t1 or t2:
        t, s = (tensor1, tensor2) if t1 else (tensor2, tensor1)
        _scalar_dtype(s)
        return D.scalar_result(t.dtype, s)
    a, b = _scalar_dtype(tensor1), _scalar_dtype(tensor2)
    if a._category != b._category:          # numbers: the higher category's (bool < int < float)
        return a if a._category > b._category else b
    return D.promote_types(a, b)


@public
def can_cast(from_, to):
    """torch.can_cast: whether torch's type promotion allows casting `from_` to `to` (no float to integer,
    no number to bool)."""
    for i, (name, d) in enumerate((("from_", from_), ("to", to))):
        if not isinstance(d, D.dtype):
            raise TypeError(f"can_cast(): argument '{name}' (position {i + 1}) must be torch.dtype, not "
                            f"{type(d).__name__}")
    if from_.is_floating_point and not to.is_floating_point:
        return False
    return not (from_ is not D.bool_ and to is D.bool_)


@public
def unravel_index(indices, shape):
    """torch.unravel_index: the coordinates of flat indices in `shape`, a tuple of int64 tensors (torch's
    floor_divide by the strides, modulo the sizes: a negative or too large index wraps, as torch's)."""
    if indices.is_floating_point() or indices.dtype is D.bool_:
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype}")
    if not isinstance(shape, (int, np.integer, Sequence)):
        raise TypeError(f"expected 'shape' to be int or sequence of ints, but got {type(shape)}")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    else:
        for d in shape:
            if not isinstance(d, (int, np.integer)):
                raise TypeError(f"expected 'shape' sequence to only contain ints, but got {type(d)}")
        shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    # torch's Python function: its ops, in no region of its own
    coefs = list(reversed(list(itertools.accumulate(reversed(shape[1:] + (1,)), func=operator.mul))))
    dev = indices.device
    res = indices.unsqueeze(-1).floor_divide(tensor(coefs, dtype=D.int64, device=dev)) % \
        tensor(list(shape), dtype=D.int64, device=dev)
    return res.unbind(-1)


# --- factories ------------------------------------------------------------------------------------------

@public
def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """torch.empty_strided: uninitialized memory seen with the given strides (in elements): the smallest
    buffer that holds them (an `empty`), viewed as `size` with those strides."""
    if layout is not None and check_layout(layout, "empty_strided"):
        raise sparse_layout_refusal("empty_strided")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"dimensionality of sizes ({len(size)}) must match dimensionality of strides "
                           f"({len(stride)})")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} and strides="
                           f"{list(stride)}")
    n = 0 if 0 in size else 1 + sum((s - 1) * st for s, st in zip(size, stride))
    buf = dispatch(EMPTY_STRIDED, shape=(n,), dtype=_dt(dtype, fn="empty_strided"), device=_dev(device))
    a = buf._data
    xp = np if type(a) is np.ndarray else cupy()
    view = xp.lib.stride_tricks.as_strided(a, size, tuple(st * a.dtype.itemsize for st in stride))
    buf._data = view        # the fresh tensor, no one else's: its buffer seen through the strides
    return _pinned(_finish(buf, requires_grad), pin_memory)


@public
def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """torch.scalar_tensor: a 0-dim tensor of `s`, of the default float dtype unless given (an int too).
    layout=sparse_coo is checked and, as torch's, still gives the dense 0-dim tensor."""
    check_layout(layout, "scalar_tensor")
    with record_range("scalar_tensor", "op"):
        return full((), s.item() if isinstance(s, Tensor) else s,
                    dtype=dtype if dtype is not None else D.get_default_dtype(), device=device,
                    requires_grad=requires_grad, pin_memory=pin_memory)


def _logspace_kernel(xp, start, end, steps, base, dtype, device):
    """torch's CPU logspace: exponents start + step * i for the first half and end - step * (steps - 1 - i)
    for the rest, in double, each base ** exponent in double, cast to the dtype (an integer dtype
    truncates, as C++'s cast)."""
    dt = np.dtype(dtype)
    cast = (lambda v: float(v)) if dt.kind in "fc" or dt == D.BF16 else (lambda v: float(int(v)))
    s, e = cast(start), cast(end)

    def make(m):
        if steps == 0:
            return m.empty((0,), dtype=dt)
        if steps == 1:
            return m.asarray([base ** s], dtype=np.float64).astype(dt)
        step = (e - s) / (steps - 1)
        i = m.arange(steps, dtype=np.float64)
        exps = m.where(i < steps // 2, s + step * i, e - step * (steps - i - 1))
        return m.power(np.float64(base), exps).astype(dt)
    return _on(device, make)


LOGSPACE = op("logspace", creation=True)(_logspace_kernel)


@public
def logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.logspace: `steps` points base ** x, x evenly spaced from start to end (torch's kernel)."""
    if layout is not None and check_layout(layout, "logspace"):
        raise sparse_layout_refusal("logspace.out")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end)]
    r = _finish(dispatch(LOGSPACE, start=vals[0], end=vals[1], steps=int(steps), base=float(base),
                         dtype=_dt(dtype, fn="logspace"), device=_dev(device)), requires_grad)
    return write_out(r, out, "logspace")


def _range_kernel(xp, start, step, size, dtype, device):
    """torch.range's kernel: start + step * i in double (int64 arithmetic for integer dtypes), cast."""
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        return _on(device, lambda m: (int(start) + int(step) * m.arange(size, dtype=np.int64)).astype(dt))
    return _on(device, lambda m: (float(start) + float(step) * m.arange(size, dtype=np.float64)).astype(dt))


RANGE = op("range", creation=True)(_range_kernel)

_RANGE_DEPRECATED = ("torch.range is deprecated and will be removed in a future release because its behavior is "
                     "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values "
                     "in [start, end).")


@public
def range(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.range (deprecated, with torch's warning): start to end *inclusive*, of the default float dtype
    unless given, floor((end - start) / step) + 1 values."""
    if end is None:
        raise TypeError('range() missing 1 required positional arguments: "end"')
    warnings.warn(_RANGE_DEPRECATED, UserWarning, stacklevel=2)
    if layout is not None and check_layout(layout, "range"):
        raise sparse_layout_refusal("range.out")
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if vals[2] == 0:
        raise RuntimeError("step must be nonzero")
    if (vals[1] - vals[0]) * vals[2] < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    size = int(math.floor((vals[1] - vals[0]) / vals[2])) + 1
    r = _finish(dispatch(RANGE, start=vals[0], step=vals[2], size=size, dtype=_dt(dtype, fn="range"),
                         device=_dev(device)), requires_grad)
    return write_out(r, out, "range")


# --- window functions -------------------------------------------------------------------------------------

_CPP_NAMES = {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool"}


def _window_checks(name, window_length, dtype, device):
    d = D.get_default_dtype() if dtype is None else D.to_dtype(dtype)
    if not d.is_floating_point:
        dev = _dev(device)
        raise RuntimeError(f"{name} expects floating point dtypes, got: TensorOptions(dtype="
                           f"{_CPP_NAMES.get(d.name, d.name)}, device={dev}, layout=Strided (default), "
                           f"requires_grad=false (default), pinned_memory=false, memory_format=(nullopt))")
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    return d


def _window_layout(name, layout, dtype, device):
    """torch's refusal of a sparse layout by the window functions, first of their checks."""
    if layout is None or not check_layout(layout, name):
        return
    d = D.get_default_dtype() if dtype is None else D.to_dtype(dtype)
    # (torch's hann_window checks the options it was given; the others, options it has filled in already)
    dt = D.C_NAMES.get(d.name, d.name) + (" (default)" if dtype is None and name == "hann_window" else "")
    raise RuntimeError(f"{name} is not implemented for sparse types, got: TensorOptions(dtype={dt}, device="
                       f"{_dev(device)}, layout=Sparse, requires_grad=false (default), pinned_memory=false, "
                       f"memory_format=(nullopt))")


def _window(name, window_length, periodic, dtype, device, requires_grad, body, layout=None):
    """torch's common frame: the checks, empty for length 0, [1.] for length 1, one point more when
    periodic (dropped at the end)."""
    _window_layout(name, layout, dtype, device)
    d = _window_checks(name, window_length, dtype, device)
    with record_range(name, "op"):
        if window_length == 0:
            w = zeros(0, dtype=d, device=device)
        elif window_length == 1:
            w = ones(1, dtype=d, device=device)
        else:
            n = window_length + 1 if periodic else window_length
            w = body(n, d, device)
            if periodic:
                w = w.narrow(0, 0, n - 1)
        return _finish(w, requires_grad)


def _hamming(n, d, device, alpha, beta):
    return arange(n, dtype=d, device=device).mul_(math.pi * 2.0 / (n - 1)).cos_().mul_(-beta).add_(alpha)


@public
def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, layout=None, device=None,
                   requires_grad=False):
    """torch.hamming_window: alpha - beta * cos(2 pi n / (N - 1)) (N one more than the length when
    periodic), torch's arange, mul_, cos_, mul_, add_."""
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, d, dev: _hamming(n, d, dev, alpha, beta), layout)


@public
def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.hann_window: torch's hamming window with alpha = beta = 0.5."""
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, d, dev: _hamming(n, d, dev, 0.5, 0.5), layout)


def _blackman(n, d, device):
    w = arange(n, dtype=d, device=device).mul_(math.pi / (n - 1))
    return w.mul(4).cos_().mul_(0.08) - w.mul(2).cos_().mul_(0.5) + 0.42


@public
def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.blackman_window: 0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1)), torch's ops."""
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad, _blackman, layout)


def _bartlett(n, d, device):
    w = arange(n, dtype=d, device=device).mul_(2.0 / (n - 1))
    first = ((n - 1) >> 1) + 1
    w.narrow(0, first, n - first).mul_(-1).add_(2)
    return w


@public
def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.bartlett_window: the triangle 2n / (N - 1), mirrored (2 - x) past the middle, torch's ops."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad, _bartlett, layout)


def _kaiser_kernel(xp, n, beta, dtype, device):
    """torch's kaiser_window kernel: I0(beta sqrt(|1 - ((i - alpha) / alpha)^2|)) / I0(beta), alpha =
    (n - 1) / 2, in the dtype's math type (float32 for float32 and the half types; I0 in double here)."""
    dt = np.dtype(dtype)
    mt = np.float64 if dt == np.float64 else np.float32

    def make(m):
        alpha = mt((n - 1) / 2.0)
        i = m.arange(n, dtype=mt)
        r = m.sqrt(m.abs(mt(1) - ((i - alpha) / alpha) ** mt(2)))
        w = m.i0((mt(beta) * r).astype(np.float64)) / float(np.i0(np.float64(mt(beta))))
        return w.astype(mt).astype(dt)
    return _on(device, make)


KAISER_WINDOW = op("kaiser_window", creation=True)(_kaiser_kernel)


@public
def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None, device=None,
                  requires_grad=False):
    """torch.kaiser_window: the Kaiser window of shape `beta` (one kernel, torch's)."""
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, d, dev: dispatch(KAISER_WINDOW, n=n, beta=float(beta), dtype=d.np, device=_dev(dev)),
                   layout)


# --- integration and differentiation ---------------------------------------------------------------------

def _wrap_dim(dim, ndim):
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, {max(ndim, 1) - 1}], "
                         f"but got {dim})")
    return dim % max(ndim, 1)


def _slice(t, dim, start, stop=None):
    """t[start:stop] along dim (Python's negative bounds), a narrow view."""
    n = t.shape[dim]
    s, e, _ = slice(start, stop).indices(n)
    return t.narrow(dim, s, max(e - s, 0))


def _zeros_except(y, dim):
    shape = [s for i, s in enumerate(y.shape) if i != dim]
    return zeros(shape, dtype=y.dtype, device=y.device)


def _x_dx(name, y, x, dim):
    """torch's spacing from sample points x: a 1-D x laid along `dim`, a shorter x padded in front; dx =
    its differences along dim."""
    if x.ndim == 1:
        if x.shape[0] != y.shape[dim]:
            raise RuntimeError(f"{name}: There must be one `x` value for each sample point")
        shape = [1] * y.ndim
        shape[dim] = x.shape[0]
        xv = x.view(shape)
    elif x.ndim < y.ndim:
        xv = x.view((1,) * (y.ndim - x.ndim) + tuple(x.shape))
    else:
        xv = x
    return _slice(xv, dim, 1) - _slice(xv, dim, 0, -1)


def _trapezoid(name, y, x, dx, dim):
    if x is not None and not isinstance(x, Tensor):
        raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, "
                        f"{type(x).__name__}), but expected one of:\n * (Tensor y, Tensor x, *, int dim = -1)\n"
                        f" * (Tensor y, *, Number dx = 1, int dim = -1)\n")
    if x is not None and dx is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, Tensor, dx="
                        f"{type(dx).__name__}), but expected one of:\n * (Tensor y, Tensor x, *, int dim = -1)\n"
                        f" * (Tensor y, *, Number dx = 1, int dim = -1)\n")
    dim = _wrap_dim(dim, y.ndim)
    with record_range(name, "op", (y, x)):
        if y.shape[dim] == 0:
            return _zeros_except(y, dim)
        if y.dtype is D.bool_ or (x is not None and x.dtype is D.bool_):
            raise RuntimeError(f"trapezoid: received a bool input for `{'y' if y.dtype is D.bool_ else 'x'}`, "
                               "but bool is not supported")
        if x is not None:
            d = _x_dx("trapezoid", y, x, dim)
            return _sum(d * (_slice(y, dim, 1) + _slice(y, dim, 0, -1)), dim) / 2.0
        dx = 1 if dx is None else dx
        if isinstance(dx, (bool, complex)):
            raise RuntimeError("trapezoid: Currently, we only support dx as a real number.")
        return (_sum(y, dim) - (y.select(dim, 0) + y.select(dim, -1)) * 0.5) * float(dx)


@public
def trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.trapezoid: the trapezoidal rule along `dim`, over sample points `x` or a constant spacing `dx`
    (torch's: sum(dx * (y[1:] + y[:-1])) / 2, or (sum(y) - (y[0] + y[-1]) / 2) * dx)."""
    return _trapezoid("trapezoid", y, x, dx, dim)


@public
def trapz(y, x=None, *, dx=None, dim=-1):
    """torch.trapz: trapezoid's alias (torch's older name)."""
    return _trapezoid("trapz", y, x, dx, dim)


@public
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.cumulative_trapezoid: the running trapezoidal sums along `dim` (one fewer than the points):
    cumsum(dx / 2 * (y[:-1] + y[1:]))."""
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid() received an invalid combination of arguments - got (Tensor, Tensor, "
                        f"dx={type(dx).__name__}), but expected one of:\n * (Tensor y, Tensor x, *, int dim = -1)\n"
                        " * (Tensor y, *, Number dx = 1, int dim = -1)\n")
    dim = _wrap_dim(dim, y.ndim)
    with record_range("cumulative_trapezoid", "op", (y, x)):
        if y.dtype is D.bool_ or (x is not None and x.dtype is D.bool_):
            raise RuntimeError(f"cumulative_trapezoid: received a bool input for "
                               f"`{'y' if y.dtype is D.bool_ else 'x'}`, but bool is not supported")
        pairs = _slice(y, dim, 0, -1) + _slice(y, dim, 1)
        if x is not None:
            d = _x_dx("cumulative_trapezoid", y, x, dim)
            return (d / 2.0 * pairs).cumsum(dim)
        return (float(1 if dx is None else dx) / 2.0 * pairs).cumsum(dim)


def _gradient_dims(input, dim):
    if dim is None:
        return list(builtins.range(input.ndim))
    if isinstance(dim, int):
        return [_wrap_dim(dim, input.ndim)]
    return [_wrap_dim(d, input.ndim) for d in dim]


def _gradient_uniform(f, h, d, edge_order):
    center = (_slice(f, d, 2) - _slice(f, d, 0, -2)) / h
    if edge_order == 1:
        pre = (_slice(f, d, 1, 2) - _slice(f, d, 0, 1)) / h
        app = (_slice(f, d, -1) - _slice(f, d, -2, -1)) / h
    else:
        pre = (_slice(f, d, 0, 1) * -1.5 + _slice(f, d, 1, 2) * 2 + _slice(f, d, 2, 3) * -0.5) / h
        app = (_slice(f, d, -3, -2) * 0.5 + _slice(f, d, -2, -1) * -2 + _slice(f, d, -1) * 1.5) / h
    return cat([pre, center / 2, app], d)


def _gradient_coords(f, x, d, edge_order):
    shape = [1] * f.ndim
    shape[d] = -1
    ax = x.diff(1, 0)
    dx1, dx2 = _slice(ax, 0, 0, -1), _slice(ax, 0, 1)
    a = (-dx2 / (dx1 * (dx1 + dx2))).reshape(shape)
    b = ((dx2 - dx1) / (dx1 * dx2)).reshape(shape)
    c = (dx1 / (dx2 * (dx1 + dx2))).reshape(shape)
    center = a * _slice(f, d, 0, -2) + b * _slice(f, d, 1, -1) + c * _slice(f, d, 2)
    if edge_order == 1:
        pre = (_slice(f, d, 1, 2) - _slice(f, d, 0, 1)) / ax[0]
        app = (_slice(f, d, -1) - _slice(f, d, -2, -1)) / ax[-1]
    else:
        a = -(2.0 * ax[0] + ax[1]) / (ax[0] * (ax[0] + ax[1]))
        b = (ax[0] + ax[1]) / (ax[0] * ax[1])
        c = (-ax[0]) / (ax[1] * (ax[0] + ax[1]))
        pre = a * _slice(f, d, 0, 1) + b * _slice(f, d, 1, 2) + c * _slice(f, d, 2, 3)
        a = ax[-1] / (ax[-2] * (ax[-1] + ax[-2]))
        b = -(ax[-1] + ax[-2]) / (ax[-1] * ax[-2])
        c = (2 * ax[-1] + ax[-2]) / (ax[-1] * (ax[-1] + ax[-2]))
        app = a * _slice(f, d, -3, -2) + b * _slice(f, d, -2, -1) + c * _slice(f, d, -1)
    return cat([pre, center, app], d)


@public
def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """torch.gradient: the derivative estimate along each dim (second-order central differences inside,
    first- or second-order one-sided at the edges), for a uniform spacing (a number per dim) or sample
    coordinates (a 1-D tensor per dim), with torch's checks and its formulas' order of operations."""
    dims = _gradient_dims(input, dim)
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if isinstance(spacing, Tensor) and spacing.ndim == 0:
        spacing = spacing.item()
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            if dim is None:
                raise RuntimeError("torch.gradient expected spacing to be unspecified, a scalar, or a list of length "
                                   f"equal to 'self.dim() = {input.ndim}', since dim argument was not given, but got "
                                   f"a list of length {len(spacing)}")
            raise RuntimeError("torch.gradient expected spacing to be unspecified, a scalar or it's spacing and dim "
                               f"arguments to have the same length, but got a spacing argument of length "
                               f"{len(spacing)} and a dim argument of length {len(dims)}.")
        spacings = list(spacing)
    else:
        spacings = [spacing] * len(dims)
    for d in dims:
        if input.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
    with record_range("gradient", "op", (input,)):
        out = []
        for d, s in zip(dims, spacings):
            if isinstance(s, Tensor) and s.ndim == 0:
                s = s.item()
            if isinstance(s, Tensor):
                if s.ndim != 1 or s.shape[0] != input.shape[d]:
                    raise RuntimeError("torch.gradient expected each tensor to be on the same device, and each "
                                       "spacing tensor to be 1-D with the size of its dimension")
                out.append(_gradient_coords(input, s, d, edge_order))
            else:
                out.append(_gradient_uniform(input, s, d, edge_order))
        return tuple(out)


# --- rsub, fill ---------------------------------------------------------------------------------------------

def _rsub_kernel(xp, a, b, alpha=1):
    refuse_bool_sub(a, b)
    if _H.range_hooks:      # torch's rsub is its sub, reversed, in a profile (the ufunc itself: a frame less)
        return _H.op_step("sub", xp.subtract, b, a) if alpha == 1 else _H.op_step("sub", _rsub_values, a, b, alpha)
    if alpha == 1 and xp is np and half_number_case(a, b):     # a half array: float32 opmath, as sub's
        r = half_number(np.subtract, b, a)
        if r is not None:
            return r
    return b - a if alpha == 1 else b - alpha * a


def _rsub_values(a, b, alpha):
    return b - a if alpha == 1 else b - alpha * a


# torch's two overloads: rsub(Tensor, Tensor) -> RsubBackward0, rsub(Tensor, Scalar) -> RsubBackward1
RSUB = op("rsub", promote=True, node_name="RsubBackward0")(_rsub_kernel)
RSUB_SCALAR = op("rsub_scalar", promote=True, node_name="RsubBackward1")(_rsub_kernel)
RSUB.operand_check = RSUB_SCALAR.operand_check = refuse_bool_sub


@RSUB.def_backward
def _(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    return (sum_to(neg(g) if alpha == 1 else g * (-alpha), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(g, ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


RSUB_SCALAR.def_backward(lambda ctx, g: (neg(g) if ctx.attrs.get("alpha", 1) == 1
                                         else g * (-ctx.attrs["alpha"]), None))


@public
def rsub(input, other, *, alpha=1):
    """torch.rsub: other - alpha * input."""
    o = RSUB if isinstance(other, Tensor) else RSUB_SCALAR
    return dispatch(o, input, other) if alpha == 1 else dispatch(o, input, other, alpha=alpha)


@public(name="__rsub__", function=False, method=True)
def _rsub_operator(self, other):
    """`number - x` is torch's rsub(x, number) (aten::rsub, RsubBackward1), not a sub; a tensor on the left
    reaches here only where its own __sub__ declined (rsub's tensor overload, RsubBackward0)."""
    if type(other) is Tensor or isinstance(other, _OPERAND):
        return dispatch_binary(RSUB if isinstance(other, Tensor) else RSUB_SCALAR, self, other)
    return NotImplemented


@public
def fill(input, value):
    """torch.fill: a new tensor of input's shape and dtype filled with `value` (a number or a 0-dim tensor);
    its gradient reaches `value`, not input (torch's FillBackward0)."""
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                           "dimensions.")
    return dispatch(FILL, input, value)
