"""0-d tensors against torch 2.13 side by side: reductions and cumulative ops with dim 0, -1, 1 and (0,), with and
without keepdim, and the elementwise activations, each forward (shape and value) and backward (the gradient), in
float32 and float64. Where torch raises, tensorlib must raise too (tests/tensorlib/test_zero_dim.py checks the same
calls without torch)."""
from __future__ import annotations

import math
import warnings

import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

REDUCTIONS = ["amax", "amin", "sum", "mean", "max", "min", "logsumexp", "cumsum", "cumprod", "logcumsumexp", "std",
              "var", "prod", "argmax", "argmin", "norm", "softmax", "log_softmax", "all", "any", "nansum", "nanmean",
              "count_nonzero", "median", "sort", "argsort", "flip"]
NO_KEEPDIM = {"cumsum", "cumprod", "logcumsumexp", "softmax", "log_softmax", "sort", "argsort", "count_nonzero", "flip"}
ACTIVATIONS = ["relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "softsign", "tanhshrink",
               "hardtanh", "hardswish", "hardsigmoid", "leaky_relu", "logsigmoid", "sigmoid", "tanh", "softshrink",
               "hardshrink"]
UNARY = ["erf", "erfc", "exp", "expm1", "log1p", "sqrt", "rsqrt", "sin", "tanh", "sigmoid", "abs", "neg", "reciprocal"]


def _one(lib, fn, dtype, rg):
    """(shape, value, gradient) of fn on a 0-d 0.3, or ("raised", type) where it raises."""
    x = lib.tensor(0.3, dtype=getattr(lib, dtype), requires_grad=rg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fn(lib, x)
            y = r if isinstance(r, lib.Tensor) else r[0]
            grad = None
            if rg and y.requires_grad:
                y.sum().backward()
                if x.grad is not None:
                    assert tuple(x.grad.shape) == ()
                    grad = float(x.grad)
    except (RuntimeError, IndexError, TypeError, ValueError) as e:
        return ("raised", type(e).__name__)
    return tuple(y.shape), float(y.detach().double()) if y.numel() == 1 else None, grad


def _same(u, v):
    if u is None or v is None:
        return u is v
    return (math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-5, abs_tol=1e-6)


def _close(a, b):
    if a[0] == "raised" or b[0] == "raised":
        return a[0] == b[0]
    return a[0] == b[0] and all(_same(u, v) for u, v in zip(a[1:], b[1:]))


def _reduction_calls():
    for name in REDUCTIONS:
        for dim in (0, -1, 1, (0,)):
            for keepdim in ((False,) if name in NO_KEEPDIM else (False, True)):
                kw = {"keepdim": True} if keepdim else {}
                yield f"{name}-{dim}-{keepdim}", (lambda lib, x, n=name, d=dim, k=kw: getattr(lib, n)(x, d, **k))


def _activation_calls():
    for name in ACTIVATIONS:
        yield name, (lambda lib, x, n=name: getattr(lib.nn.functional, n)(x))
    for name in UNARY:
        yield "torch." + name, (lambda lib, x, n=name: getattr(lib, n)(x))


CALLS = dict(_reduction_calls())
CALLS.update(_activation_calls())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_0d_tensor_as_torch_takes_it(name, dtype):
    for rg in (False, True):
        want = _one(torch, CALLS[name], dtype, rg)
        got = _one(tl, CALLS[name], dtype, rg)
        if want[0] == "raised":
            continue        # torch refuses (a tuple dim for max, dim 1): tensorlib may refuse with its own type
        assert _close(got, want), (got, want)


EMPTY_LAYERS = {
    "MaxPool2d": (lambda m: m.nn.MaxPool2d(2), (0, 3, 8, 8)), "GroupNorm": (lambda m: m.nn.GroupNorm(1, 3), (0, 3, 4)),
    "LSTM": (lambda m: m.nn.LSTM(4, 5), (3, 0, 4)), "GRU": (lambda m: m.nn.GRU(4, 5, batch_first=True), (0, 3, 4)),
    "RNN": (lambda m: m.nn.RNN(4, 5), (3, 0, 4)), "Linear": (lambda m: m.nn.Linear(4, 3), (0, 4)),
    "TransformerEncoderLayer": (lambda m: m.nn.TransformerEncoderLayer(4, 2, 8, 0.0), (3, 0, 4)),
    "Conv2d": (lambda m: m.nn.Conv2d(3, 2, 3), (0, 3, 8, 8)), "LayerNorm": (lambda m: m.nn.LayerNorm(4), (0, 4)),
    "AvgPool2d": (lambda m: m.nn.AvgPool2d(2), (0, 3, 8, 8)), "Embedding": (lambda m: m.nn.Embedding(10, 3), None),
}


def _empty(lib, name):
    make, shape = EMPTY_LAYERS[name]
    layer = make(lib)
    x = lib.zeros((0, 2), dtype=lib.int64) if shape is None else lib.zeros(shape, requires_grad=True)
    y = layer(x)
    y = y[0] if isinstance(y, tuple) else y
    y.sum().backward()
    return (tuple(y.shape), None if shape is None else tuple(x.grad.shape),
            [None if p.grad is None else float(p.grad.abs().sum()) for p in layer.parameters()])


@pytest.mark.parametrize("name", sorted(EMPTY_LAYERS))
def test_an_empty_batch_as_torch_takes_it(name):
    assert _empty(tl, name) == _empty(torch, name)


# integral and bool tensors: where torch computes, the same shape, dtype and values (where torch refuses, tensorlib
# may still compute: bool argmax/abs/relu/matmul/dot/median/topk, integral lerp, a bool tensor minus a number)
DTYPE_CALLS = {
    "sum": lambda m, x: x.sum(), "mean0": lambda m, x: x.float().mean(0), "prod": lambda m, x: x.prod(),
    "cumsum": lambda m, x: x.cumsum(0), "cumprod": lambda m, x: x.cumprod(0), "amax0": lambda m, x: x.amax(0),
    "logsumexp": lambda m, x: x.logsumexp(0), "any": lambda m, x: x.any(), "all": lambda m, x: x.all(),
    "sign": lambda m, x: x.sign(), "add1": lambda m, x: x + 1, "mul2": lambda m, x: x * 2, "div2": lambda m, x: x / 2,
    "floordiv": lambda m, x: x // 2, "pow2": lambda m, x: x ** 2, "exp": lambda m, x: x.exp(),
    "sqrt": lambda m, x: x.sqrt(), "sigmoid": lambda m, x: x.sigmoid(), "eq": lambda m, x: x == 1,
    "sort": lambda m, x: x.sort()[0], "count": lambda m, x: m.count_nonzero(x), "std": lambda m, x: x.std(),
    "norm": lambda m, x: x.norm(), "round": lambda m, x: x.round(), "floor": lambda m, x: x.floor(),
    "sub": lambda m, x: x - x,
}


def _dtype_result(lib, name, dtype):
    x = lib.tensor([1, 0, 1] if dtype == "bool" else [1, 0, 2], dtype=getattr(lib, dtype))
    try:
        y = DTYPE_CALLS[name](lib, x)
    except (RuntimeError, NotImplementedError, TypeError) as e:
        return ("raised", type(e).__name__)
    return tuple(y.shape), str(y.dtype).split(".")[-1], [round(float(v), 4) for v in y.reshape(-1).tolist()]


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "int8", "bool"])
@pytest.mark.parametrize("name", sorted(DTYPE_CALLS))
def test_integral_and_bool_tensors_as_torch_takes_them(name, dtype):
    want = _dtype_result(torch, name, dtype)
    assert _dtype_result(tl, name, dtype) == want
