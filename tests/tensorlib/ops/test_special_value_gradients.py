"""Values and gradients at NaN, infinities and ties as torch gives them (found by comparing 57 activations,
losses and elementwise ops at special points): sign(NaN) is 0 (so abs's and l1_loss's gradients there are 0),
sign's gradient is zeros (not g * 0, NaN for an infinite g), maximum/minimum give g to both operands at a NaN and
half to each at a tie, threshold keeps a NaN and passes its gradient, relu's gradient at a NaN is g."""
import math

import numpy as np
import pytest

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


def test_max_and_min_of_all_give_a_nan_result_the_gradient():
    for reduce in (lambda x: x.max(), lambda x: x.min()):
        _, g = _grad(lambda x: reduce(x).reshape(1), [1.0, NAN, 3.0, NAN])
        np.testing.assert_array_equal(g, [0.0, 0.5, 0.0, 0.5])      # the NaNs share it, as torch's ties do
    _, g = _grad(lambda x: x.max().reshape(1), [1.0, 3.0, 3.0])
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5])


def test_kl_div_keeps_nan_and_negative_targets():
    x = tl.tensor([0.5, -1.0, 2.0, -INF])
    t = tl.tensor([NAN, -0.5, 0.0, 0.0])
    np.testing.assert_array_equal(F.kl_div(x, t, reduction="none").numpy(), [NAN, NAN, 0.0, NAN])


def test_binary_cross_entropy_refuses_inputs_outside_0_1_as_torch():
    for bad in ([1.5, 0.5], [NAN, 0.5], [-0.1, 0.5]):
        with np.testing.assert_raises_regex(RuntimeError, "all elements of input should be between 0 and 1"):
            F.binary_cross_entropy(tl.tensor(bad), tl.tensor([1.0, 0.0]))
    assert float(F.binary_cross_entropy(tl.tensor([0.0, 1.0]), tl.tensor([1.0, 0.0]))) == 100.0


def test_copysign_and_dist():
    a = tl.tensor([-3.0, -0.0, 0.0, 2.0, INF, 1.0], requires_grad=True)
    b = tl.tensor([1.0, -1.0, -0.0, -2.0, -1.0, NAN], requires_grad=True)
    y = tl.copysign(a, b)
    np.testing.assert_array_equal(y.detach().numpy(), [3.0, -0.0, -0.0, -2.0, -INF, 1.0])
    assert list(np.signbit(y.detach().numpy())) == [False, True, True, True, True, False]
    y.backward(tl.ones_like(y))
    np.testing.assert_array_equal(a.grad.numpy(), [-1.0, 0.0, 0.0, -1.0, NAN, 1.0])   # result / a (NaN at inf), 0 at 0
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(6))
    assert tl.copysign(tl.tensor([1, -2]), -1.0).dtype == tl.float32
    p, q = tl.tensor([[1.0, -2.0, 3.0]]), tl.tensor([0.5, 0.5, 0.5])
    for order, want in ((2, math.sqrt(0.25 + 6.25 + 6.25)), (1, 5.5), (0, 3.0), (INF, 2.5)):
        assert float(tl.dist(p, q, order)) == pytest.approx(want, rel=1e-6)
    assert float(p.dist(q)) == pytest.approx(math.sqrt(12.75), rel=1e-6)


def test_clamp_by_tensors_as_torchs_overload():
    x = tl.tensor([-2.0, -0.5, 0.0, 0.5, 2.0, NAN, 1.0], requires_grad=True)
    lo = tl.tensor([-1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 2.0], requires_grad=True)
    hi = tl.tensor([1.0, 1.0, 0.5, 2.0, 1.5, 1.0, 0.5], requires_grad=True)
    y = tl.clamp(x, lo, hi)
    assert y.grad_fn.name() == "ClampBackward0"
    np.testing.assert_array_equal(y.detach().numpy(), [-1.0, 0.0, 0.0, 1.0, 1.5, NAN, 0.5])
    y.backward(tl.ones_like(y))
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(lo.grad.numpy(), [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])   # only where lo < hi
    np.testing.assert_array_equal(hi.grad.numpy(), [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0])   # also where hi < lo
    w = tl.randn(3, 4, requires_grad=True)
    assert tl.clamp(w, min=tl.zeros(4)).shape == (3, 4) and w.clamp(max=tl.zeros(3, 1)).min() <= 0


def test_cumprod_gradient_with_zeros_is_exact():
    """torch's exact cumprod backward where the input has zeros (the division formula gave NaN there):
    d/dx_i sum_j g_j prod_{m<=j} x_m = sum_{j>=i} g_j prod_{m<=j, m!=i} x_m, by brute force."""
    rng = np.random.default_rng(0)
    for x in ([2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0], [1.0, 2.0, 0.0], [0.0, 0.0]):
        g = rng.standard_normal(len(x))
        want = [sum(g[j] * np.prod([x[m] for m in range(j + 1) if m != i]) for j in range(i, len(x)))
                for i in range(len(x))]
        t = tl.tensor(x, dtype=tl.float64, requires_grad=True)
        tl.cumprod(t, 0).backward(tl.tensor(g))
        np.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-12, atol=1e-12)
    t = tl.tensor([2.0, 0.0, 3.0, 0.0, NAN], requires_grad=True)   # a NaN past the second zero reaches nothing
    tl.cumprod(t, 0).backward(tl.ones(5))
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 8.0, 0.0, 0.0, 0.0])
    t = tl.tensor(rng.standard_normal((3, 6)) * (rng.random((3, 6)) > 0.3), requires_grad=True)
    assert tl.autograd.gradcheck(lambda a: tl.cumprod(a, 1), (t,))


def test_zero_norms_and_deviations_and_zero_powers_give_torchs_zero_gradients():
    for f, xs in ((lambda x: x.norm(p=3).reshape(1), [0.0, 0.0]),
                  (lambda x: x.std().reshape(1), [2.0, 2.0, 2.0]),
                  (lambda x: x.pow(x), [0.0, 2.0]),
                  (lambda x: tl.atan2(x, x * 0), [0.0, 1.0])):
        _, g = _grad(f, xs)
        assert np.isfinite(g).all(), (xs, g)
        assert g[0] == 0.0
    x = tl.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = F.nll_loss(x, tl.tensor([-100, -100]))
    assert math.isnan(float(loss))          # a mean over no counted target, as torch
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2)))


def test_erfinv_inverts_erf_in_float64_and_float32():
    y = np.concatenate([np.linspace(-0.999999, 0.999999, 2001), 1 - 10.0 ** -np.arange(1, 16)])
    x = tl.erfinv(tl.tensor(y, dtype=tl.float64)).numpy()
    back = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(back, y, rtol=0, atol=3e-16)
    tails = np.array([math.erfc(v) for v in x[-15:]])          # 1 - y exactly recovered in the tail
    np.testing.assert_allclose(tails, 1 - y[-15:], rtol=1e-13)
    special = tl.erfinv(tl.tensor([1.0, -1.0, 1.5, NAN, -0.0, 0.0])).numpy()
    assert list(special[:2]) == [INF, -INF] and np.isnan(special[2:4]).all() and np.signbit(special[4])
    y32 = y[:2001].astype(np.float32)
    x32 = tl.erfinv(tl.tensor(y32)).numpy()
    assert x32.dtype == np.float32
    np.testing.assert_allclose(x32, tl.erfinv(tl.tensor(y32.astype(np.float64))).numpy(), rtol=5e-7, atol=1e-7)
    t = tl.tensor([0.3, -0.7], dtype=tl.float64, requires_grad=True)
    assert tl.autograd.gradcheck(tl.erfinv, (t,))
    assert float(tl.tensor([0.5]).erfinv()) == pytest.approx(0.4769362762, rel=1e-6)


def test_erfc_keeps_its_tail_where_one_minus_erf_rounds_to_zero():
    """erfc is its own op (ErfcBackward0), not 1 - erf: erfc(5) is 1.5e-12, where 1 - erf(5) is 0 in float32."""
    v = [-3.0, 0.5, 2.0, 5.0, 9.0]
    want = np.array([math.erfc(a) for a in v])
    np.testing.assert_allclose(tl.erfc(tl.tensor(v, dtype=tl.float64)).numpy(), want, rtol=1e-14)
    got32 = tl.special.erfc(tl.tensor(v)).numpy()
    assert got32.dtype == np.float32 and got32[3] > 0
    np.testing.assert_allclose(got32, want.astype(np.float32), rtol=2e-7)
    x = tl.tensor([0.3, -1.2, 2.5], dtype=tl.float64, requires_grad=True)
    y = tl.erfc(x)
    assert y.grad_fn.name() == "ErfcBackward0"
    assert tl.autograd.gradcheck(tl.erfc, (x,)) and tl.autograd.gradgradcheck(tl.erfc, (x,))
    t = tl.tensor([1.0, 2.0])
    assert t.erfc_() is t and t.numpy().tolist() == pytest.approx([math.erfc(1.0), math.erfc(2.0)], rel=1e-6)


def test_torchs_functions_of_the_composed_methods():
    x = tl.tensor([[0.2, 0.5], [0.7, 0.9]])
    for name in ("logit", "erfc", "sinc", "asinh", "trace", "positive", "isposinf", "rad2deg", "adjoint"):
        np.testing.assert_array_equal(getattr(tl, name)(x).numpy(), getattr(x, name)().numpy())
    np.testing.assert_allclose(tl.mv(x, tl.tensor([1.0, 2.0])).numpy(), [1.2, 2.5], rtol=1e-6)


def test_torchs_functions_of_methods_declared_by_every_family():
    """torch.quantile, kthvalue, cummax, kron, cov, gcd, signbit, abs_ ... are functions as well as methods."""
    x = tl.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    for name, args in (("quantile", (0.5,)), ("kthvalue", (2, 1)), ("cummax", (1,)), ("kron", (x,)), ("cov", ()),
                       ("signbit", ()), ("logcumsumexp", (1,)), ("renorm", (2, 0, 1.0)), ("inner", (x,))):
        got, want = getattr(tl, name)(x, *args), getattr(x, name)(*args)
        got, want = (got[0], want[0]) if isinstance(got, tuple) else (got, want)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    t = tl.tensor([-1.0, 2.0])
    assert tl.abs_(t) is t and t.numpy().tolist() == [1.0, 2.0]
