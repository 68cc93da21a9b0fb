"""More of torch.Tensor's methods (issue 13's coverage target), composed of existing ops so autograd, devices
and the profiler come with them: torch's in-place variants (`x.cos_()`: the op, then `copy_` into `x`, with
torch's refusal to write a floating-point result into an integer tensor),
and small compositions (trace, logit, xlogy, heaviside, ...). Values are checked against torch in
devtools/torch_compat/test_ops_extra_against_torch.py.

For issue 18's one-place-per-op form: none of these registers a new op kernel; each is a method over the ops
that exist (an in-place variant is `self.copy_(self.<op>(...))`)."""
from __future__ import annotations

import math
from collections import namedtuple

from .. import _dtype as D
from ..dispatch import STATE
from .creation import arange, eye, ones_like
from .activation import prelu as _prelu
from .arithmetic import maximum
from .comparison import where
from ._define import Tensor, alias, functions, methods, np, public, torch_op
from .factorize import inv

__all__ = ["INPLACE_OF", "COMPOSED"]


def _check_cast(self, out):
    src, dst = out.dtype, self.dtype
    if src.is_floating_point and not dst.is_floating_point:
        raise RuntimeError(f"result type {D.scalar_name(src)} can't be cast to the desired output type "
                           f"{D.scalar_name(dst)}")
    if src is D.bool_ or dst is D.bool_ or src._category <= dst._category:
        return
    raise RuntimeError(f"result type {D.scalar_name(src)} can't be cast to the desired output type "
                       f"{D.scalar_name(dst)}")


def _inplace(base):
    def inplace(self, *args, **kwargs):
        # under autograd the op reads a copy: what it saves for backward is not the tensor written over
        src = self.clone() if self.requires_grad and STATE.grad_enabled else self
        out = getattr(src, base)(*args, **kwargs)
        if tuple(out.shape) != tuple(self.shape):
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(out.shape)}")
        _check_cast(self, out)
        return self.copy_(out)
    inplace.__name__ = inplace.__qualname__ = base + "_"
    inplace.__doc__ = f"In-place {base}: the result of `{base}` written into this tensor (torch's `{base}_`)."
    return torch_op(base + "_")(inplace)    # one `aten::<base>_` in a profile, as torch's kernel, over op and copy_


# --- composed methods -------------------------------------------------------------------------------

@torch_op("positive")
def positive(self):
    if self.dtype is D.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return self


def is_signed(self):
    return self.dtype.is_signed


def is_same_size(self, other):
    return tuple(self.shape) == tuple(other.shape)


def is_nonzero(self):
    n = self.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(self.item() != 0)


def vdot(self, other):
    if self.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D tensors")
    return (self.conj() * other).sum()      # the first vector conjugated (a complex one's)


@torch_op("trace")
def trace(self):
    if self.ndim != 2:
        raise RuntimeError("trace: expected a matrix, but got tensor with dim " + str(self.ndim))
    n = min(self.shape)
    i = arange(n, device=self.device)
    return self[i, i].sum()


def xlogy(self, other):
    other = other if isinstance(other, Tensor) else self.new_tensor(other)
    return where(self == 0, self * 0, self * other.log())


@torch_op("sinc")
def sinc(self):
    px = self * math.pi
    safe = where(self == 0, self * 0 + 1, px)
    return where(self == 0, self * 0 + 1, safe.sin() / safe)


@torch_op("heaviside")
def heaviside(self, values):
    return where(self == 0, values.to(self.dtype), (self > 0).to(self.dtype))


@torch_op("isposinf")
def isposinf(self):
    return self.isinf() & (self > 0)


@torch_op("isneginf")
def isneginf(self):
    return self.isinf() & (self < 0)


@torch_op("isreal")
def isreal(self):
    if self.is_complex():
        return self.imag == 0
    return ones_like(self, dtype=D.bool_)


@torch_op("logaddexp2")
def logaddexp2(self, other):
    m = maximum(self, other).detach()
    return m + ((self - m).exp2() + (other - m).exp2()).log2()


def take(self, index):
    return self.reshape(-1)[index]


@torch_op("float_power")
def float_power(self, exponent):
    base = self.to(D.float64)
    return base ** (exponent.to(D.float64) if isinstance(exponent, Tensor) else exponent)


def split_with_sizes(self, split_sizes, dim=0):
    if sum(split_sizes) != self.shape[dim]:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {self.shape[dim]} (input tensor's "
                           f"size at dimension {dim}), but got split_sizes={list(split_sizes)}")
    return self.split(list(split_sizes), dim)


def _nsplit(name, dim, min_dim):
    def fn(self, indices_or_sections):
        if self.ndim < min_dim:
            raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dim} dimension, but got a tensor "
                               f"with {self.ndim} dimensions!")
        d = dim(self)
        if isinstance(indices_or_sections, int) and self.shape[d] % indices_or_sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {d}, but the size of the dimension "
                               f"{self.shape[d]} is not divisible by the split_size {indices_or_sections}!")
        return self.tensor_split(indices_or_sections, d)
    fn.__name__ = fn.__qualname__ = name
    return torch_op(name)(fn)


hsplit = _nsplit("hsplit", lambda t: 1 if t.ndim > 1 else 0, 1)
vsplit = _nsplit("vsplit", lambda t: 0, 2)
dsplit = _nsplit("dsplit", lambda t: 2, 3)

# printed as torch names it; the name `aminmax` is the function below
_aminmax = namedtuple("aminmax", ["min", "max"])  # type: ignore[name-match]


@torch_op("aminmax")
def aminmax(self, *, dim=None, keepdim=False):
    return _aminmax(self.amin(dim, keepdim) if dim is not None else self.amin(),
                    self.amax(dim, keepdim) if dim is not None else self.amax())


def narrow_copy(self, dim, start, length):
    return self.narrow(dim, start, length).clone()


def matrix_power(self, n):
    if self.ndim < 2 or self.shape[-1] != self.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{self.shape[-2]} by {self.shape[-1]} matrices")
    if n < 0:           # torch: the power of the inverse
        self, n = inv(self), -n
    out = eye(self.shape[-1], dtype=self.dtype, device=self.device).expand(*self.shape)
    base = self
    while n:
        if n & 1:
            out = out @ base
        base = base @ base
        n >>= 1
    return out


COMPOSED = dict(positive=positive, is_signed=is_signed, is_same_size=is_same_size, is_nonzero=is_nonzero,
                vdot=vdot, trace=trace, xlogy=xlogy, sinc=sinc,
                heaviside=heaviside, isposinf=isposinf, isneginf=isneginf, isreal=isreal, logaddexp2=logaddexp2,
                take=take, float_power=float_power, split_with_sizes=split_with_sizes, hsplit=hsplit,
                vsplit=vsplit, dsplit=dsplit, aminmax=aminmax, narrow_copy=narrow_copy,
                matrix_power=matrix_power, prelu=_prelu)

_DECLARED = methods()        # what the op families declared before this module (they are imported first)
_FUNCS = functions()
for _n, _f in list(COMPOSED.items()):
    if _n not in _DECLARED and not hasattr(Tensor, _n):
        public(_f, name=_n, function=False, method=True)
    if _n not in _FUNCS:                    # torch has every one of them as a function too (torch.logit, ...)
        public(_f, name=_n, function=True, method=False)

# shape-changing in-place methods (squeeze_, t_, ...) are not `copy_`s; they are left out here
_VIEW_INPLACE = {"squeeze_", "unsqueeze_", "transpose_", "t_", "swapaxes_", "swapdims_", "resize_", "set_",
                 "as_strided_"}
INPLACE_OF = {}
_INPLACE_ALIASES = {"absolute": "abs", "arccos": "acos", "arcsin": "asin", "arctan": "atan", "arctan2": "atan2",
                    "arccosh": "acosh", "arcsinh": "asinh", "arctanh": "atanh", "fix": "trunc", "negative": "neg",
                    "divide": "div", "true_divide": "div", "multiply": "mul", "subtract": "sub", "greater": "gt",
                    "greater_equal": "ge", "less": "lt", "less_equal": "le", "not_equal": "ne"}
_DECLARED = methods()
for _base in sorted(n for n in set(_DECLARED) | set(dir(Tensor)) if not n.startswith("_") and not n.endswith("_")):
    _name = _base + "_"
    if _name in _VIEW_INPLACE or _name in _DECLARED or hasattr(Tensor, _name):
        continue
    if _base in ("abs", "absolute", "acos", "addmm", "arccos", "arcsin", "arctan2", "arctan", "asin", "atan2", "atan",
                 "baddbmm", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "clamp_max",
                 "clamp_min", "cos", "cosh", "cumprod", "cumsum", "deg2rad", "divide", "erf", "exp2", "expm1", "fix",
                 "floor", "floor_divide", "fmod", "frac", "eq", "ge", "greater", "greater_equal", "gt", "hypot", "le",
                 "less", "less_equal", "log10", "log1p", "log2", "logical_and", "logical_not", "logical_or",
                 "logical_xor", "lt", "multiply", "nan_to_num", "ne", "neg", "negative", "not_equal", "reciprocal",
                 "remainder", "round", "rsqrt", "sgn", "sign", "sin", "sinh", "square", "subtract", "tan",
                 "true_divide", "trunc", "xlogy", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh",
                 "rad2deg", "logit", "erfc", "sinc", "heaviside", "float_power"):
        INPLACE_OF[_name] = _base
        if _base not in _INPLACE_ALIASES:
            public(_inplace(_base), name=_name, function=False, method=True)
# torch's in-place aliases run their op's in-place kernel: `aten::arctan_` over `aten::atan_`
for _base, _of in _INPLACE_ALIASES.items():
    if _base + "_" in INPLACE_OF:
        public(alias(_base + "_", methods()[_of + "_"]), name=_base + "_", function=False, method=True)

# torch's functions of Tensor methods declared above or by the op families without one (torch.quantile(input, ...)
# is input.quantile(...)): the list of torch 2.13's such names that tensorlib had only as methods
_TORCH_FUNCTIONS = (
    "abs_", "acos_", "acosh_", "addbmm", "addmv", "addmv_", "addr", "arccos_", "arccosh_", "arcsin_", "arcsinh_",
    "arctan_", "arctanh_", "argwhere", "asin_", "asinh_", "atan_", "atanh_", "bitwise_left_shift",
    "bitwise_right_shift", "ceil_", "clamp_max_", "clamp_min_", "corrcoef", "cos_", "cosh_", "cov", "cummax",
    "cummin", "deg2rad_", "detach_", "diagflat", "diagonal_scatter", "erf_", "erfc_", "exp2_", "expm1_", "fix_",
    "floor_", "frac_", "gcd", "gcd_", "get_device", "index_put", "index_put_", "inner", "is_complex", "is_conj",
    "is_distributed", "is_inference", "is_neg", "kron", "kthvalue", "lcm", "lcm_", "ldexp", "ldexp_", "log10_",
    "log1p_", "log2_", "logcumsumexp", "logit_", "nan_to_num_", "nanquantile", "neg_", "negative_", "nextafter",
    "nonzero_static", "put", "quantile", "rad2deg_", "reciprocal_", "renorm", "resolve_conj", "resolve_neg",
    "round_", "rsqrt_", "select_scatter", "signbit", "sin_", "sinc_", "sinh_", "slice_scatter", "square_", "tan_",
    "trunc_", "unsafe_split_with_sizes", "xlogy_")


def declare_torch_functions():
    """Declare _TORCH_FUNCTIONS as functions, each its method (ops/__init__ calls this once every op family,
    more_methods included, has declared its methods)."""
    funcs, declared = functions(), methods()
    for n in _TORCH_FUNCTIONS:
        m = declared.get(n, Tensor.__dict__.get(n))
        if n not in funcs and callable(m) and not isinstance(m, property):
            public(m, name=n, function=True, method=False)

del np
