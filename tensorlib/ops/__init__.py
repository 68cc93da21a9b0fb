"""All ops, by family. Importing this package registers every op and attaches the Tensor methods."""
from .creation import (arange, as_tensor, asarray, empty, empty_like, eye, from_dlpack, from_numpy, full,
                       full_like, linspace, ones, ones_like, rand, rand_like, randint, randint_like, randn, randn_like,
                       randperm, tensor, zeros, zeros_like)
from .elementwise import (abs, absolute, add, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, ceil, clamp,
                          clamp_max, clamp_min, clip, cos, div, divide, elu, eq, erf, exp, floor, floor_divide, ge,
                          gelu, greater, greater_equal, gt, isfinite, isinf, isnan, le, leaky_relu, less, less_equal,
                          log, log1p, log2, logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum,
                          mul, multiply, ne, neg, negative, not_equal, pow, reciprocal, relu, remainder, round, rsqrt,
                          sigmoid, sign, silu, sin, softplus, sqrt, sub, subtract, tanh, true_divide, trunc, where)
from .index import (gather, getitem, index_add, index_select, masked_fill, masked_select, nonzero,
                    one_hot, scatter, scatter_add, setitem)
from .linalg import bmm, dot, ger, matmul, mm, outer
from .misc import (add_, clamp_, clone, copy_, detach, detach_, div_, fill_, mul_, normal_, pow_, relu_,
                   sub_, to, uniform_, zero_)
from .reduce import (all, amax, amin, any, argmax, argmin, cumprod, cumsum, logsumexp, max, mean, min,
                     norm, prod, std, std_mean, sum, var, var_mean)
from .shape import (cat, chunk, concat, concatenate, contiguous, expand, flatten, flip, movedim, moveaxis,
                    narrow, permute, repeat, reshape, roll, split, squeeze, stack, swapaxes, swapdims, t,
                    tensor_split, tile, transpose, unbind, unflatten, unsqueeze, view)

from . import creation as _c, elementwise as _e, index as _i, linalg as _l, misc as _m, reduce as _r, shape as _s
from . import sorting as _so
from . import sampling as _sa
from . import extra_methods as _extra_methods  # noqa: F401  (Tensor methods composed of the ops above)

_PUBLIC_SKIP = {"np", "op", "dispatch", "Tensor", "method", "math", "annotations", "numbers", "D", "R", "E",
                "CPU", "cupy", "device_of", "to_device", "move", "namedtuple", "sum_to", "norm_dims",
                "reduced_grad", "unwrap_scalar", "cpu", "cuda", "item", "tolist", "type_", "pad_slice", "getitem",
                "setitem", "new_tensor", "type_as", "values_indices", "topk_rt", "sort_rt", "median_rt", "view_dtype",
                "to", "detach_"}


def _public(mod):
    return [n for n, v in vars(mod).items() if not n.startswith("_") and n not in _PUBLIC_SKIP and n.lower() == n
            and callable(v) and getattr(v, "__module__", "").startswith("tensorlib.ops")]


__all__ = sorted({n for m in (_c, _e, _i, _l, _m, _r, _s, _so, _sa) for n in _public(m)})
globals().update({n: getattr(m, n) for m in (_c, _e, _i, _l, _m, _r, _s, _so, _sa) for n in _public(m)})
