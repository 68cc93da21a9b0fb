"""0-d tensors (a loss, a scalar parameter) through reductions, cumulative ops and activations, as torch takes them:
a dim argument of 0 or -1 names the tensor's one implicit dimension, results stay 0-d, and backward gives a 0-d
gradient. NumPy has no axis 0 on a 0-d array and gives its ufuncs' 0-d results as scalars (which take no `out=`),
so each of these raised AxisError, IndexError or TypeError, or gave a one-element result, before.
(devtools/torch_compat/test_zero_dim_against_torch.py checks the same calls against torch itself.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

V = 0.3

# name -> (call on a 0-d tensor, expected value, expected gradient or None for no gradient)
REDUCTIONS = {
    "sum0": (lambda x: x.sum(0), V, 1.0), "sum-1_keep": (lambda x: x.sum(-1, keepdim=True), V, 1.0),
    "sum_tuple": (lambda x: x.sum((0,)), V, 1.0), "mean0": (lambda x: x.mean(0), V, 1.0),
    "mean_keep": (lambda x: x.mean(-1, keepdim=True), V, 1.0), "amax0": (lambda x: x.amax(0), V, 1.0),
    "amin-1": (lambda x: x.amin(-1), V, 1.0), "max0": (lambda x: x.max(0).values, V, 1.0),
    "min0_keep": (lambda x: x.min(0, keepdim=True).values, V, 1.0), "logsumexp0": (lambda x: x.logsumexp(0), V, 1.0),
    "cumsum0": (lambda x: x.cumsum(0), V, 1.0), "cumprod-1": (lambda x: x.cumprod(-1), V, 1.0),
    "logcumsumexp0": (lambda x: tl.logcumsumexp(x, 0), V, 1.0), "prod0": (lambda x: x.prod(0), V, 1.0),
    "prod_keep": (lambda x: x.prod(-1, keepdim=True), V, 1.0), "nansum0": (lambda x: tl.nansum(x, 0), V, 1.0),
    "nanmean0": (lambda x: tl.nanmean(x, 0), V, 1.0), "median0": (lambda x: x.median(0).values, V, 1.0),
    "flip0": (lambda x: x.flip(0), V, 1.0), "norm0": (lambda x: x.norm(dim=0), V, 1.0),
    "softmax0": (lambda x: x.softmax(0), 1.0, 0.0), "log_softmax0": (lambda x: x.log_softmax(0), 0.0, 0.0),
    "argmax_keep": (lambda x: x.argmax(0, keepdim=True), 0, None), "argmin0": (lambda x: x.argmin(-1), 0, None),
    "all_tuple": (lambda x: x.all((0,)), True, None), "any0": (lambda x: x.any(0), True, None),
    "count_nonzero0": (lambda x: tl.count_nonzero(x, 0), 1, None),
}


def _sp(v):
    return math.log1p(math.exp(v))


ACTIVATIONS = {
    "leaky_relu": (F.leaky_relu, V), "hardsigmoid": (F.hardsigmoid, (V + 3) / 6),
    "hardswish": (F.hardswish, V * (V + 3) / 6), "logsigmoid": (F.logsigmoid, -_sp(-V)),
    "softplus": (F.softplus, _sp(V)), "mish": (F.mish, V * math.tanh(_sp(V))),
    "gelu": (F.gelu, V * 0.5 * (1 + math.erf(V / math.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  0.5 * V * (1 + math.tanh(math.sqrt(2 / math.pi) * (V + 0.044715 * V ** 3)))),
    "erf": (tl.erf, math.erf(V)), "erfc": (tl.erfc, math.erfc(V)), "sigmoid": (tl.sigmoid, 1 / (1 + math.exp(-V))),
    "rrelu_eval": (lambda x: F.rrelu(x, training=False), V),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_take_dim_0_of_a_0d_tensor(name):
    fn, value, grad = REDUCTIONS[name]
    x = tl.tensor(V, requires_grad=grad is not None)
    y = fn(x)
    assert y.shape == ()
    assert y.item() == pytest.approx(value, abs=1e-6)
    if grad is not None:
        y.backward()
        assert x.grad.shape == () and x.grad.item() == pytest.approx(grad, abs=1e-6)


def test_std_and_var_of_one_element_are_nan_and_dims_out_of_range_are_torchs_error():
    x = tl.tensor(V, requires_grad=True)
    with pytest.warns(UserWarning, match=r"std\(\): degrees of freedom is <= 0") as w:
        assert math.isnan(x.std(0).item())
    assert w[0].filename == __file__        # the user's line, as torch's warning points there
    with pytest.warns(UserWarning, match=r"var\(\): degrees of freedom is <= 0"):
        assert math.isnan(x.var(-1).item())
    for call in (lambda: x.sum(1), lambda: x.cumsum(1), lambda: x.cumprod(-2), lambda: x.all((1,)),
                 lambda: x.amax(2), lambda: x.logsumexp(1)):
        with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\]"):
            call()


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_of_a_0d_tensor_and_their_backward(name, dtype):
    """The value, and the same value and gradient as on the one-element tensor (the kernel they share)."""
    fn, value = ACTIVATIONS[name]
    x = tl.tensor(V, dtype=dtype, requires_grad=True)
    y = fn(x)
    assert y.shape == () and y.dtype == dtype
    assert y.item() == pytest.approx(value, rel=1e-5)
    y.backward()
    x1 = tl.tensor([V], dtype=dtype, requires_grad=True)
    y1 = fn(x1)
    y1.sum().backward()
    assert y.item() == y1.item()
    assert x.grad.shape == () and np.array_equal(x.grad.numpy().reshape(1), x1.grad.numpy())
