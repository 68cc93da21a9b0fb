"""One sample call per registered op, shared by the hook-coverage and gradcheck tests.

`CASES[name]` builds `(fn, inputs)`: `fn(*inputs)` runs the op `name` (forward); inputs that require grad
are the ones gradcheck differentiates. Every op in the registry must have a case: a new op without one
fails `test_every_op_has_a_case`, so no op can slip past the hook and gradient tests.
"""
from __future__ import annotations

import numpy as np

import tensorlib as tl
from tensorlib.dispatch import dispatch, registry

_rng = np.random.default_rng(1234)


def _eye(a):
    """The identity of a's (square) matrices, on its device (the linalg cases shift their inputs by it)."""
    return tl.eye(a.shape[-1], dtype=a.dtype, device=a.device)


def _pin(a):
    """pin_memory needs CUDA: without it the op is still dispatched (hooks see it) and raises torch's error."""
    from tensorlib.utils.data.pin_memory import pin_memory
    try:
        return pin_memory(a)
    except RuntimeError as e:
        if tl.cuda.is_available() or "CUDA" not in str(e):
            raise
        return None


def R(*shape, grad=True, dtype=np.float64):
    """A float64 leaf with values in [-1, 1] away from 0 (kinks of abs/relu/clamp)."""
    a = _rng.uniform(0.2, 1.0, shape) * _rng.choice([-1.0, 1.0], shape)
    return tl.tensor(a.astype(dtype), requires_grad=grad)


def P(*shape, grad=True):
    """Positive values, for log/sqrt/pow."""
    return tl.tensor(_rng.uniform(0.5, 2.0, shape), requires_grad=grad)


def I(*shape, high=3):  # noqa: E743
    return tl.tensor(_rng.integers(0, high, shape), dtype=tl.int64)


def B(*shape):
    return tl.tensor(_rng.random(shape) > 0.5)


def _deprecated(fn, *args):
    """A deprecated function's call (torch.range) without its deprecation warning."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args)


def _op(name):
    return registry()[name]


CASES = {
    # elementwise, with broadcasting
    "add": lambda: (lambda a, b: a + b, [R(3, 4), R(4)]),
    "sub": lambda: (lambda a, b: tl.sub(a, b, alpha=2), [R(3, 1), R(1, 4)]),
    "mul": lambda: (lambda a, b: a * b, [R(2, 3, 4), R(3, 1)]),
    "div": lambda: (lambda a, b: a / b, [R(3, 4), P(4)]),
    "pow": lambda: (lambda a, b: a ** b, [P(3, 4), R(4)]),
    "neg": lambda: (lambda a: -a, [R(5)]),
    "abs": lambda: (tl.abs, [R(5)]),
    "sign": lambda: (tl.ops.sign, [R(5)]),
    "reciprocal": lambda: (tl.ops.reciprocal, [P(5)]),
    "exp": lambda: (tl.exp, [R(5)]),
    "log": lambda: (tl.log, [P(5)]),
    "log1p": lambda: (tl.ops.log1p, [P(5)]),
    "log2": lambda: (tl.ops.log2, [P(5)]),
    "sqrt": lambda: (tl.sqrt, [P(5)]),
    "rsqrt": lambda: (tl.ops.rsqrt, [P(5)]),
    "sin": lambda: (tl.sin, [R(5)]),
    "cos": lambda: (tl.cos, [R(5)]),
    "tanh": lambda: (tl.tanh, [R(5)]),
    "sigmoid": lambda: (tl.sigmoid, [R(5)]),
    "relu": lambda: (tl.relu, [R(5)]),
    "gelu": lambda: (lambda a: tl.ops.gelu(a) + tl.ops.gelu(a, approximate="tanh"), [R(5)]),
    "erf": lambda: (tl.ops.erf, [R(5)]),
    "erfc": lambda: (tl.erfc, [R(5)]),
    "rad2deg": lambda: (tl.rad2deg, [R(5)]),
    "logit": lambda: (lambda x: tl.logit(x.abs() * 0.8, 0.1), [R(5)]),
    "erfinv": lambda: (lambda a: tl.erfinv(a * 0.9), [R(5)]),
    "silu": lambda: (tl.ops.silu, [R(5)]),
    "leaky_relu": lambda: (lambda a: tl.ops.leaky_relu(a, 0.1), [R(5)]),
    "hardtanh": lambda: (lambda a: tl.nn.functional.hardtanh(a, -0.5, 0.7), [R(5)]),
    "threshold": lambda: (lambda a: tl.nn.functional.threshold(a, 0.1, -2.0), [R(5)]),
    "clamp_tensor": lambda: (lambda a, lo, hi: tl.clamp(a, lo - 0.5, hi + 0.5), [R(3, 4), R(4), R(3, 1)]),
    "copysign": lambda: (tl.copysign, [R(5), R(5)]),
    "elu": lambda: (tl.ops.elu, [R(5)]),
    "softplus": lambda: (tl.ops.softplus, [R(5)]),
    "clamp": lambda: (lambda a: tl.clamp(a, -0.5, 0.5), [R(6)]),
    "clamp_min": lambda: (lambda a: a.clamp_min(-0.2), [R(6)]),
    "mv": lambda: (tl.mv, [R(3, 4), R(4)]),
    "clamp_max": lambda: (lambda a: tl.clamp_max(a, 0.3), [R(6)]),
    "where": lambda: (lambda c, a, b: tl.where(c, a, b), [B(3, 4), R(3, 4), R(4)]),
    "maximum": lambda: (tl.maximum, [R(3, 4), R(4)]),
    "minimum": lambda: (tl.minimum, [R(3, 4), R(4)]),
    "floor_divide": lambda: (lambda a, b: a // b, [R(5, grad=False), P(5, grad=False)]),
    "remainder": lambda: (lambda a, b: a % b, [R(5), P(5, grad=False)]),
    "floor": lambda: (tl.ops.floor, [R(5)]),
    "ceil": lambda: (tl.ops.ceil, [R(5)]),
    "round": lambda: (tl.ops.round, [R(5)]),
    "trunc": lambda: (tl.ops.trunc, [R(5)]),
    "eq": lambda: (lambda a, b: a == b, [R(3), R(3)]),
    "ne": lambda: (lambda a, b: a != b, [R(3), R(3)]),
    "lt": lambda: (lambda a, b: a < b, [R(3), R(3)]),
    "le": lambda: (lambda a, b: a <= b, [R(3), R(3)]),
    "gt": lambda: (lambda a, b: a > b, [R(3), R(3)]),
    "ge": lambda: (lambda a, b: a >= b, [R(3), R(3)]),
    "logical_not": lambda: (tl.ops.logical_not, [B(4)]),
    "logical_and": lambda: (tl.ops.logical_and, [B(4), B(4)]),
    "logical_or": lambda: (tl.ops.logical_or, [B(4), B(4)]),
    "logical_xor": lambda: (tl.ops.logical_xor, [B(4), B(4)]),
    "bitwise_and": lambda: (lambda a, b: a & b, [I(4), I(4)]),
    "bitwise_or": lambda: (lambda a, b: a | b, [I(4), I(4)]),
    "bitwise_xor": lambda: (lambda a, b: a ^ b, [I(4), I(4)]),
    "bitwise_not": lambda: (lambda a: ~a, [I(4)]),
    "gcd": lambda: (lambda a, b: a.gcd(b), [I(4, high=20), I(4, high=20)]),
    "lcm": lambda: (lambda a, b: a.lcm(b), [I(4, high=20), I(4, high=20)]),
    "bitwise_left_shift": lambda: (lambda a, b: a << b, [I(4, high=20), I(4)]),
    "bitwise_right_shift": lambda: (lambda a, b: a >> b, [I(4, high=20), I(4)]),
    "nextafter": lambda: (lambda a, b: a.nextafter(b), [R(4, grad=False), R(4, grad=False)]),
    "isnan": lambda: (tl.ops.isnan, [R(4)]),
    "isinf": lambda: (tl.ops.isinf, [R(4)]),
    "isfinite": lambda: (tl.ops.isfinite, [R(4)]),
    # reductions
    "sum": lambda: (lambda a: a.sum(1, keepdim=True), [R(3, 4)]),
    "mean": lambda: (lambda a: a.mean((0, 2)), [R(2, 3, 4)]),
    "prod": lambda: (lambda a: a.prod(1), [R(3, 4)]),
    "cumsum": lambda: (lambda a: a.cumsum(1), [R(3, 4)]),
    "cumprod": lambda: (lambda a: a.cumprod(0), [R(3, 4)]),
    "max": lambda: (lambda a: a.max(1).values, [R(3, 4)]),
    "min": lambda: (lambda a: a.min(0).values, [R(3, 4)]),
    "amax": lambda: (lambda a: a.amax(1), [R(3, 4)]),
    "amin": lambda: (lambda a: a.amin(0), [R(3, 4)]),
    "argmax": lambda: (lambda a: a.argmax(1), [R(3, 4)]),
    "argmin": lambda: (lambda a: a.argmin(), [R(3, 4)]),
    "var": lambda: (lambda a: a.var(1), [R(3, 4)]),
    "std": lambda: (lambda a: a.std(0, correction=0), [R(3, 4)]),
    "logsumexp": lambda: (lambda a: a.logsumexp(1), [R(3, 4)]),
    "norm": lambda: (lambda a: a.norm(dim=1), [R(3, 4)]),
    "all": lambda: (lambda a: a.all(), [B(4)]),
    "any": lambda: (lambda a: a.any(0), [B(3, 4)]),
    # linear algebra
    "matmul": lambda: (tl.matmul, [R(2, 3, 4), R(4, 5)]),
    "mm": lambda: (tl.mm, [R(3, 4), R(4, 2)]),
    "bmm": lambda: (tl.bmm, [R(2, 3, 4), R(2, 4, 2)]),
    "dot": lambda: (tl.dot, [R(4), R(4)]),
    # shape
    "reshape": lambda: (lambda a: a.reshape(4, 3), [R(3, 4)]),
    "_reshape_alias": lambda: (lambda a: a.transpose(0, 1).reshape(2, 2, 3), [R(3, 4)]),   # strides allow it
    "_unsafe_view": lambda: (lambda a: a.t().reshape(12), [R(3, 4)]),                       # the copy's view
    "view": lambda: (lambda a: a.view(-1), [R(3, 4)]),
    "squeeze": lambda: (lambda a: a.squeeze(1), [R(3, 1, 4)]),
    "unsqueeze": lambda: (lambda a: a.unsqueeze(0), [R(3, 4)]),
    "permute": lambda: (lambda a: a.permute(2, 0, 1), [R(2, 3, 4)]),
    "transpose": lambda: (lambda a: a.transpose(0, 1), [R(3, 4)]),
    "t": lambda: (lambda a: a.t(), [R(3, 4)]),
    "expand": lambda: (lambda a: a.expand(2, 3, 4), [R(3, 1)]),
    "sum_to_size": lambda: (lambda a: dispatch(_op("sum_to_size"), a, shape=(1, 4)), [R(3, 4)]),
    "repeat": lambda: (lambda a: a.repeat(2, 1, 3), [R(3, 2)]),
    "contiguous": lambda: (lambda a: a.t().contiguous(), [R(3, 4)]),
    "cat": lambda: (lambda a, b: tl.cat([a, b], 1), [R(3, 2), R(3, 4)]),
    "stack": lambda: (lambda a, b: tl.stack([a, b], 1), [R(3, 2), R(3, 2)]),
    "unbind": lambda: (lambda a: a.unbind(1)[1], [R(3, 2)]),
    "split_with_sizes": lambda: (lambda a: a.split([1, 3], 1)[1], [R(3, 4)]),
    "split": lambda: (lambda a: a.split(3, 1)[1], [R(3, 4)]),
    "unsafe_split": lambda: (lambda a: a.unsafe_split(3, 1)[0], [R(3, 4)]),
    "narrow": lambda: (lambda a: a.narrow(1, 1, 2), [R(3, 4)]),
    "flip": lambda: (lambda a: a.flip(0), [R(3, 4)]),
    "rot90": lambda: (lambda a: tl.rot90(a, 3, (2, 0)), [R(3, 4, 2)]),
    "roll": lambda: (lambda a: a.roll(1, 1), [R(3, 4)]),
    # indexing
    "index": lambda: (lambda a: a[1:, tl.tensor([0, 2, 2])], [R(3, 4)]),
    "select": lambda: (lambda a: a[1, 2], [R(3, 4)]),
    "slice": lambda: (lambda a: a[1:, ::2], [R(3, 4)]),
    "index_backward": lambda: (lambda g: dispatch(_op("index_backward"), g, shape=(4, 3), idx=(slice(1, 3),)),
                               [R(2, 3)]),
    "select_backward": lambda: (lambda g: dispatch(_op("select_backward"), g, shape=(4, 3), idx=(1,)), [R(3)]),
    "slice_backward": lambda: (lambda g: dispatch(_op("slice_backward"), g, shape=(4, 3), idx=(slice(1, 3),)),
                               [R(2, 3)]),
    "index_put": lambda: (lambda a, v: dispatch(_op("index_put"), a, v, idx=(slice(0, 2),)), [R(3, 4), R(4)]),
    "index_put_": lambda: (lambda a, v: _setitem(a, v), [R(3, 4), R(4)]),
    "copy_slices": lambda: (lambda a, v: _view_inplace(a, v), [R(3, 4), R(4)]),
    "gather": lambda: _fixed(lambda a, i: a.gather(1, i), [R(3, 4)], I(3, 2, high=4)),
    "scatter_add": lambda: _fixed(lambda a, s, i: a.scatter_add(1, i, s), [R(3, 4), R(3, 2)], I(3, 2, high=4)),
    "scatter": lambda: (lambda a, s: a.scatter(1, tl.tensor([[0, 1], [2, 3], [1, 0]]), s), [R(3, 4), R(3, 2)]),
    "index_select": lambda: (lambda a: a.index_select(0, tl.tensor([2, 0, 2])), [R(3, 4)]),
    "index_add": lambda: (lambda a, s: a.index_add(0, tl.tensor([2, 0, 2]), s), [R(3, 4), R(3, 4)]),
    "masked_fill": lambda: _fixed(lambda a, m: a.masked_fill(m, -1.0), [R(3, 4)], B(3, 4)),
    "masked_fill_": lambda: _fixed(lambda a, m: a.clone().masked_fill_(m, -1.0), [R(3, 4)], B(3, 4)),
    "one_hot": lambda: (lambda a: tl.one_hot(a, 4), [I(5, high=4)]),
    "nonzero": lambda: (lambda a: a.nonzero(), [B(3, 4)]),
    # conversions, copies, in-place
    "to": lambda: (lambda a: a.to(tl.float64, copy=True), [R(3)]),
    "clone": lambda: (tl.clone, [R(3)]),
    "pin_memory": lambda: (_pin, [R(3)]),
    "detach": lambda: (lambda a: a.detach() * 1.0, [R(3, grad=False)]),
    "alias_dtype": lambda: (lambda a: a.view(tl.int64), [R(3, grad=False)]),
    "add_": lambda: (lambda a, b: a.clone().add_(b), [R(3, 4), R(4)]),
    "sub_": lambda: (lambda a, b: a.clone().sub_(b, alpha=3), [R(3, 4), R(4)]),
    "mul_": lambda: (lambda a, b: a.clone().mul_(b), [R(3, 4), R(4)]),
    "div_": lambda: (lambda a, b: a.clone().div_(b), [R(3, 4), P(4)]),
    "pow_": lambda: (lambda a: a.clone().pow_(2), [R(3, 4)]),
    "clamp_": lambda: (lambda a: a.clone().clamp_(-0.5, 0.5), [R(3, 4)]),
    "relu_": lambda: (lambda a: a.clone().relu_(), [R(3, 4)]),
    "leaky_relu_": lambda: (lambda a: tl.nn.functional.leaky_relu(a.clone(), 0.2, inplace=True), [R(3, 4)]),
    "hardtanh_": lambda: (lambda a: tl.nn.functional.hardtanh(a.clone(), -0.5, 0.5, inplace=True), [R(3, 4)]),
    "fill": lambda: (lambda a, v: dispatch(_op("fill"), a, v), [R(3), R(grad=True)]),
    "fill_": lambda: (lambda a: a.clone().fill_(2.0) * a, [R(3)]),
    "zero": lambda: (lambda a: dispatch(_op("zero"), a) + a, [R(3)]),
    "zero_": lambda: (lambda a: a.clone().zero_() + a, [R(3)]),
    "copy": lambda: (lambda a, s: dispatch(_op("copy"), a, s), [R(3, 4, grad=False), R(4)]),
    "copy_": lambda: (lambda a, s: a.clone().copy_(s), [R(3, 4), R(4)]),
    "random_fill": lambda: (lambda a: dispatch(_op("random_fill"), a) + a, [R(3)]),
    "uniform_": lambda: (lambda a: tl.empty(3, dtype=tl.float64).uniform_() + a, [R(3)]),
    "normal_": lambda: (lambda a: tl.empty(3, dtype=tl.float64).normal_() + a, [R(3)]),
    "bernoulli_": lambda: (lambda a: tl.empty(3, dtype=tl.float64).bernoulli_(0.5) + a, [R(3)]),
    "exponential_": lambda: (lambda a: tl.empty(3, dtype=tl.float64).exponential_() + a, [R(3)]),
    "random_": lambda: (lambda a: tl.empty(3, dtype=tl.float64).random_(0, 5) + a, [R(3)]),
    # sampling
    "multinomial": lambda: (lambda: tl.multinomial(tl.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 1.0]]), 2), []),
    "bernoulli": lambda: (lambda a: tl.bernoulli(a.abs() * 0.5), [R(3, 4)]),
    "poisson": lambda: (lambda a: tl.poisson(a.abs() * 3), [R(3, 4)]),
    "binomial": lambda: (lambda c, p: tl.binomial(c, p), [tl.tensor([[3.0, 10.0, 0.0]], dtype=tl.float64),
                                                          tl.tensor([[0.2], [0.9]], dtype=tl.float64)]),
    "_standard_gamma": lambda: (tl._standard_gamma, [P(3, 4)]),
    "_sample_dirichlet": lambda: (tl._sample_dirichlet, [P(2, 4)]),
    # their gradient formulas (torch's approximations; not differentiable themselves), at a sample in each
    # of their branches: x < 0.8 and above, alpha > 8 near and away from the mean
    "_standard_gamma_grad": lambda: (tl._standard_gamma_grad, [tl.tensor([0.3, 2.5, 12.0, 40.0], dtype=tl.float64),
                                                               tl.tensor([[0.1], [3.0], [11.5], [45.0]],
                                                                         dtype=tl.float64)]),
    "_dirichlet_grad": lambda: (tl._dirichlet_grad, [tl.tensor([[0.05], [0.5], [0.97]], dtype=tl.float64),
                                                     tl.tensor([0.5, 3.0, 8.0], dtype=tl.float64),
                                                     tl.tensor([2.0, 9.0, 20.0], dtype=tl.float64)]),
    # in-place index updates
    "index_add_": lambda: (lambda a, s: a.clone().index_add_(0, tl.tensor([2, 0, 2]), s, alpha=2),
                           [R(3, 4), R(3, 4)]),
    "index_copy": lambda: (lambda a, s: a.index_copy(1, tl.tensor([3, 0]), s), [R(3, 4), R(3, 2)]),
    "index_copy_": lambda: (lambda a, s: a.clone().index_copy_(1, tl.tensor([3, 0]), s), [R(3, 4), R(3, 2)]),
    "index_fill": lambda: (lambda a: a.index_fill(1, tl.tensor([3, 0]), -1.5), [R(3, 4)]),
    "index_fill_": lambda: (lambda a: a.clone().index_fill_(0, tl.tensor([1]), 2.0), [R(3, 4)]),
    "scatter_": lambda: (lambda a, s: a.clone().scatter_(1, tl.tensor([[0, 1], [2, 3], [1, 0]]), s),
                         [R(3, 4), R(3, 2)]),
    "scatter_add_": lambda: _fixed(lambda a, s, i: a.clone().scatter_add_(1, i, s), [R(3, 4), R(3, 2)],
                                   I(3, 2, high=4)),
    "masked_scatter": lambda: _fixed(lambda a, s, m: a.masked_scatter(m, s), [R(3, 4), R(13)], B(4)),
    "masked_scatter_": lambda: _fixed(lambda a, s, m: a.clone().masked_scatter_(m, s), [R(3, 4), R(13)], B(3, 4)),
    # in-place unary methods and more math
    "exp_": lambda: (lambda a: (a * 1).exp_(), [R(3, 4)]),
    "log_": lambda: (lambda a: (a * 1).log_(), [P(3, 4)]),
    "sqrt_": lambda: (lambda a: (a * 1).sqrt_(), [P(3, 4)]),
    "sigmoid_": lambda: (lambda a: (a * 1).sigmoid_(), [R(3, 4)]),
    "erfinv_": lambda: (lambda a: (a * 0.9).erfinv_(), [R(3, 4)]),
    "tanh_": lambda: (lambda a: (a * 1).tanh_(), [R(3, 4)]),
    "tan": lambda: (tl.tan, [R(5)]),
    "sgn": lambda: (lambda a: a.sgn(), [R(5)]),
    "deg2rad": lambda: (tl.deg2rad, [R(5)]),
    "logaddexp": lambda: (tl.logaddexp, [R(3, 4), R(4)]),
    "xlogy": lambda: (tl.xlogy, [R(3, 4), P(4)]),
    "fmax": lambda: (tl.fmax, [R(3, 4), R(4)]),
    "fmin": lambda: (lambda a, b: a.fmin(b), [R(3, 4), R(4)]),
    # sorting and order statistics
    "sort": lambda: (lambda a: tl.sort(a, 1, descending=True).values, [R(3, 4)]),
    "topk": lambda: (lambda a: a.topk(2, dim=0).values, [R(3, 4)]),
    "argsort": lambda: (lambda a: tl.argsort(a, -1), [R(3, 4)]),
    "median": lambda: (lambda a: tl.median(a), [R(3, 4)]),
    "median_dim": lambda: (lambda a: a.median(1, keepdim=True).values, [R(3, 5)]),
    "unique": lambda: (lambda a: tl.unique(a, return_inverse=True, return_counts=True), [I(7, high=4)]),
    "searchsorted": lambda: (lambda a: tl.searchsorted(tl.tensor([0.0, 0.5, 1.0], dtype=tl.float64), a), [R(5)]),
    "bucketize": lambda: (lambda a: tl.bucketize(a, tl.tensor([0.0, 0.5], dtype=tl.float64), right=True), [R(5)]),
    # more math
    "log10": lambda: (tl.log10, [P(5)]),
    "exp2": lambda: (tl.exp2, [R(5)]),
    "expm1": lambda: (tl.expm1, [R(5)]),
    "sinh": lambda: (tl.sinh, [R(5)]),
    "cosh": lambda: (tl.cosh, [R(5)]),
    "asin": lambda: (lambda a: tl.asin(a * 0.9), [R(5)]),
    "acos": lambda: (lambda a: tl.acos(a * 0.9), [R(5)]),
    "atan": lambda: (tl.atan, [R(5)]),
    "asinh": lambda: (tl.asinh, [R(5)]),
    "acosh": lambda: (lambda a: tl.acosh(a.abs() + 1.1), [R(5)]),
    "atanh": lambda: (lambda a: tl.atanh(a * 0.9), [R(5)]),
    "frac": lambda: (tl.frac, [R(5)]),
    "atan2": lambda: (tl.atan2, [R(3, 4), R(4)]),
    "hypot": lambda: (tl.hypot, [R(3, 4), R(4)]),
    "fmod": lambda: (lambda a: tl.fmod(a, 1.5), [R(5)]),
    "fmod_tensor": lambda: (tl.fmod, [R(3, 4), P(4)]),
    "rsub": lambda: (lambda a, b: tl.rsub(a, b, alpha=2), [R(3, 4), R(4)]),
    "squeeze_": lambda: (lambda a: (a * 1).squeeze_(1), [R(3, 1, 4)]),
    "squeeze_dims_": lambda: (lambda a: (a * 1).squeeze_((0, 2)), [R(1, 3, 1)]),
    "unsqueeze_": lambda: (lambda a: (a * 1).unsqueeze_(-1), [R(3, 4)]),
    "t_": lambda: (lambda a: (a * 1).t_(), [R(3, 4)]),
    "transpose_": lambda: (lambda a: (a * 1).transpose_(0, 2), [R(2, 3, 4)]),
    "rsub_scalar": lambda: (lambda a: tl.rsub(a, 1.5), [R(5)]),
    "nan_to_num": lambda: (lambda a: tl.nan_to_num(a, posinf=1.0), [R(5)]),
    "isclose": lambda: (lambda a, b: tl.isclose(a, b, atol=0.5), [R(5), R(5)]),
    "nansum": lambda: (lambda a: a.nansum(1), [R(3, 4)]),
    "bincount": lambda: (lambda w: tl.bincount(tl.tensor([0, 2, 2, 5]), w, minlength=7), [R(4, grad=False)]),
    # triangles, diagonals
    "tril": lambda: (lambda a: a.tril(-1), [R(2, 3, 4)]),
    "triu": lambda: (lambda a: tl.triu(a, 1), [R(3, 4)]),
    "diagonal": lambda: (lambda a: a.diagonal(1, 0, 2), [R(3, 2, 4)]),
    "diagonal_backward": lambda: (lambda g: dispatch(_op("diagonal_backward"), g, shape=(3, 4), offset=1, dim1=0,
                                                     dim2=1), [R(3)]),
    "diag_embed": lambda: (lambda a: tl.diag(a, -1), [R(3)]),
    "as_strided": lambda: (lambda a: (a * 1)[1:].as_strided((3, 2), (1, 2), 2), [R(7)]),
    "as_strided_backward": lambda: (lambda g, a: dispatch(_op("as_strided_backward"), g, a, size=(3, 2),
                                                          stride=(1, 2), storage_offset=1),
                                    [R(3, 2, grad=False), R(7, grad=False)]),     # (its own gradient: none)
    # products
    "einsum": lambda: (lambda a, b, c: tl.einsum("ij,jk,k->i", a, b, c), [R(2, 3), R(3, 4), R(4)]),
    "addmm": lambda: (lambda c, a, b: tl.addmm(c, a, b, beta=0.5, alpha=2.0), [R(4), R(2, 3), R(3, 4)]),
    "baddbmm": lambda: (lambda c, a, b: tl.baddbmm(c, a, b, alpha=0.5), [R(2, 1, 4), R(2, 2, 3), R(2, 3, 4)]),
    "linalg_cross": lambda: (lambda a, b: tl.cross(a, b, dim=-1), [R(2, 3), R(3)]),
    # torch.linalg's factorizations (tensorlib/ops/factorize.py): well-conditioned batched inputs; a
    # symmetric positive-definite or symmetric one built from the leaf (their kernels read one triangle)
    "linalg_inv_ex": lambda: (lambda a: tl.linalg.inv(a + 3 * _eye(a)), [R(2, 3, 3)]),
    "linalg_det": lambda: (lambda a: tl.linalg.det(a + 2 * _eye(a)), [R(2, 3, 3)]),
    "linalg_slogdet": lambda: (lambda a: tl.linalg.slogdet(a + 2 * _eye(a)).logabsdet,
                               [R(2, 3, 3)]),
    "linalg_solve_ex": lambda: (lambda a, b: tl.linalg.solve(a + 3 * _eye(a), b),
                                [R(2, 3, 3), R(3, 2)]),
    "linalg_cholesky_ex": lambda: (lambda a: tl.linalg.cholesky(a @ a.mT + 3 * _eye(a)),
                                   [R(2, 3, 3)]),
    "linalg_qr": lambda: (lambda a: (lambda q, r: q * 2 + r.sum(-2, keepdim=True))(*tl.linalg.qr(a)),
                          [R(2, 4, 3)]),
    "linalg_svd": lambda: (lambda a: (lambda u, s, vh: (u * u).sum(-1) + (s * s).sum(-1, keepdim=True)
                                      + (vh * vh)[..., 0].sum(-1, keepdim=True))(*tl.linalg.svd(
                                          a, full_matrices=False)), [R(2, 4, 3)]),
    "linalg_eigh": lambda: (lambda a: (lambda w, v: w + (v * v)[..., 0])(*tl.linalg.eigh(
        a + a.mT + tl.diag(tl.tensor([0.0, 3.0, 6.0], dtype=a.dtype, device=a.device)))), [R(2, 3, 3)]),
    "linalg_lu_factor_ex": lambda: (lambda a: tl.linalg.lu_factor(a + tl.diag(tl.tensor(
        [3.0, -4.0, 5.0], dtype=a.dtype, device=a.device))).LU, [R(2, 3, 3)]),
    "geqrf": lambda: (lambda a: tl.geqrf(a).a, [R(2, 4, 3, grad=False)]),     # no derivative, as torch's
    "lu_unpack_permutation": lambda: (lambda a: tl.lu_unpack(*tl.linalg.lu_factor(a)).P, [R(2, 3, 3)]),
    "linalg_solve_triangular": lambda: (lambda a, b: tl.linalg.solve_triangular(
        a + 3 * _eye(a), b, upper=True), [R(2, 3, 3), R(3, 2)]),
    "linalg_matrix_exp": lambda: (tl.linalg.matrix_exp, [R(2, 3, 3)]),
    "linalg_pinv": lambda: (tl.linalg.pinv, [R(2, 4, 3)]),
    # creation
    "tensor": lambda: (lambda: tl.tensor([1.0, 2.0]), []),
    "from_numpy": lambda: (lambda: tl.from_numpy(np.ones(3)), []),
    "zeros": lambda: (lambda: tl.zeros(2, 3), []),
    "ones": lambda: (lambda: tl.ones(2, 3), []),
    "empty": lambda: (lambda: tl.empty(2, 3), []),
    "empty_strided": lambda: (lambda: tl.empty_strided((2, 3), (1, 2)), []),
    "full": lambda: (lambda: tl.full((2, 3), 1.5), []),
    "eye": lambda: (lambda: tl.eye(3), []),
    "arange": lambda: (lambda: tl.arange(5), []),
    "linspace": lambda: (lambda: tl.linspace(0, 1, 5), []),
    "rand": lambda: (lambda: tl.rand(2, 3), []),
    "randn": lambda: (lambda: tl.randn(2, 3), []),
    "randint": lambda: (lambda: tl.randint(0, 5, (2, 3)), []),
    "randperm": lambda: (lambda: tl.randperm(5), []),
    "logspace": lambda: (lambda: tl.logspace(-1, 2, 5, base=2.0), []),
    "range": lambda: (lambda: _deprecated(tl.range, 0, 2, 0.5), []),
    "kaiser_window": lambda: (lambda: tl.kaiser_window(6), []),
    # sparse COO (tensorlib/ops/sparse.py): each case takes and gives dense tensors, the sparse op between;
    # _sp() draws indices of a 3x4 matrix with a repeated one (what coalesce and to_dense sum)
    "sparse_coo_tensor": lambda: _fixed(lambda v, i: tl.sparse_coo_tensor(i, v, (3, 4)).to_dense(), [R(5)], _sp()),
    "to_dense": lambda: _fixed(lambda v, i: tl.sparse_coo_tensor(i, v, (3, 4)).to_dense(), [R(5)], _sp()),
    "to_sparse": lambda: (lambda a: (a.to_sparse() * 2.0).to_dense(), [R(3, 4)]),
    "coalesce": lambda: _fixed(lambda v, i: tl.sparse_coo_tensor(i, v, (3, 4)).coalesce().values(), [R(5)], _sp()),
    "sparse_mask": lambda: _fixed(lambda a, i: a.sparse_mask(tl.sparse_coo_tensor(i, tl.ones(5, dtype=tl.float64),
                                                                                   (3, 4))).to_dense(),
                                  [R(3, 4)], _sp()),
    "values": lambda: (lambda a: a.to_sparse().values(), [R(3, 4)]),
    "indices": lambda: (lambda a: a.to_sparse().indices(), [R(3, 4)]),
    "_values": lambda: (lambda a: a.to_sparse()._values(), [R(3, 4)]),
    "_indices": lambda: (lambda a: a.to_sparse()._indices(), [R(3, 4)]),
    "_sparse_mm": lambda: _fixed(lambda v, d, i: tl.sparse.mm(tl.sparse_coo_tensor(i, v, (3, 4)), d), [R(5), R(4, 2)],
                                 _sp()),
    "_sparse_sum": lambda: _fixed(lambda v, i: tl.sparse.sum(tl.sparse_coo_tensor(i, v, (3, 4)), 1).to_dense(), [R(5)],
                                  _sp()),
}

# sparse COO tensors are CPU-only: on CUDA these cases must raise tensorlib's refusal (tests/tensorlib/test_cuda.py)
CPU_ONLY = {"sparse_coo_tensor", "to_dense", "to_sparse", "coalesce", "sparse_mask", "values", "indices", "_values",
            "_indices", "_sparse_mm", "_sparse_sum", "_sparse_softmax", "_sparse_log_softmax",
            "_sparse_softmax_backward_data", "_sparse_log_softmax_backward_data"}     # (op_cases_sparse.py's too)


def _sp():
    """The indices of 5 nonzeros of a 3x4 matrix, (1, 2) twice."""
    return tl.tensor([[0, 1, 2, 1, 2], [3, 2, 0, 2, 1]])


def _fixed(fn, inputs, *consts):
    """A case whose non-differentiable arguments (indices, masks) are drawn once, not per call."""
    return (lambda *xs: fn(*xs, *consts)), inputs


def _setitem(a, v):
    """An assignment through an index tensor (torch's index_put_; a basic index copies into its view)."""
    c = a.clone()
    c[tl.tensor([0, 2])] = v
    return c


def _view_inplace(a, v):
    """An in-place op on a view of a non-leaf: the base's history becomes a CopySlices node."""
    c = a * 1
    c[0:2].mul_(v)
    return c


# ops whose backward exists but is zero/None by definition, or random: gradcheck does not apply
NO_GRADCHECK = {"sign", "sgn", "floor", "ceil", "round", "trunc", "random_fill", "uniform_", "normal_", "bernoulli_",
                "random_", "bernoulli", "poisson",
                # random draws: the implicit reparameterisation's gradient is not the derivative of the draw at
                # fixed random numbers that finite differences see (tests/tensorlib/distributions checks it)
                "_standard_gamma", "_sample_dirichlet",
                "exponential_", "zero", "fill", "alias_dtype", "detach",
                "geqrf",        # no derivative, as torch's (its backward raises torch's NotImplementedError)
                "pin_memory"}   # needs CUDA to run at all; its backward is the identity


def extra_cases():
    """Cases contributed by other test packages (nn, optim): modules named `op_cases_*.py` beside this one."""
    import importlib
    import pkgutil
    import tests.tensorlib as pkg
    out = {}
    for m in pkgutil.walk_packages(pkg.__path__, "tests.tensorlib."):
        if m.name.rsplit(".", 1)[-1].startswith("op_cases_"):
            out.update(getattr(importlib.import_module(m.name), "CASES", {}))
    return out


def all_cases():
    c = dict(CASES)
    c.update(extra_cases())
    return c


def _extra_sets(attr):
    import importlib
    import pkgutil
    import tests.tensorlib as pkg
    out = set()
    for m in pkgutil.walk_packages(pkg.__path__, "tests.tensorlib."):
        if m.name.rsplit(".", 1)[-1].startswith("op_cases_"):
            out |= set(getattr(importlib.import_module(m.name), attr, ()))
    return out


def no_gradcheck():
    return NO_GRADCHECK | _extra_sets("NO_GRADCHECK")


def backward_only():
    """Ops that only backward formulas dispatch: their sample calls run a backward pass."""
    return _extra_sets("BACKWARD_ONLY")
