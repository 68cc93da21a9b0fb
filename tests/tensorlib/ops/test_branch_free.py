"""Kernels written without where()'s branch per element (or pow()'s libm call) give where()'s and torch's
values bit for bit: ELU, smooth_l1_loss, leaky_relu's forward, pow by 3, -2 and -0.5."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops.activation import ELU
from tensorlib.ops.nn_ops import _select, _smooth_l1_k

SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, -1e-40, 1.0, -1.0, 0.5, 2.0, 3e38, -3e38]


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):        # 3e38 is inf in float16
        return np.concatenate([rng.standard_normal(3000) * 3, SPECIAL]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_select_is_where(dtype):
    a, b = _data(dtype, 1), _data(dtype, 2)
    c = _data(dtype, 3) > 0
    assert np.array_equal(_select(c, a, b), np.where(c, a, b), equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1.0, 1.6732632423543772, 0.5, -0.3, 0.0])
def test_elu_is_the_where_formula(dtype, alpha):
    x = _data(dtype)
    xr = x.astype(np.float32) if dtype == np.float16 else x     # (float16 in float32, as torch's opmath)
    with np.errstate(all="ignore"):
        ref = np.where(xr > 0, xr, alpha * (np.exp(np.minimum(xr, 0)) - 1)).astype(dtype)
        got = ELU.kernel(np, x, alpha=alpha)
    assert got.dtype == dtype and np.array_equal(got, ref, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 1e-3])
def test_smooth_l1_is_the_where_formula(dtype, beta):
    x, t = _data(dtype, 4), _data(dtype, 5)[::-1].copy()
    with np.errstate(all="ignore"):
        d = np.abs(x - t)
        ref = np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
        got = _smooth_l1_k(np, x, t, beta)
    assert got.dtype == ref.dtype and np.array_equal(got, ref, equal_nan=True)


def test_smooth_l1_gradient_is_the_clamped_ratio():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0, np.nan], np.float32)
    xt = tl.tensor(x, requires_grad=True)
    tl.nn.functional.smooth_l1_loss(xt, tl.zeros_like(xt), reduction="sum", beta=0.5).backward()
    np.testing.assert_array_equal(xt.grad.numpy(), np.array([-1, -1, -1, 0, 0.5, 1, 1, np.nan], np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_by_three_and_negative_exponents_are_torch_products(dtype):
    x = _data(dtype)
    with np.errstate(all="ignore"):
        assert np.array_equal((tl.tensor(x) ** 3).numpy(), (x * x) * x, equal_nan=True)
        assert np.array_equal(tl.tensor(x).pow(-2).numpy(), 1 / (x * x), equal_nan=True)
        assert np.array_equal((tl.tensor(x) ** -0.5).numpy(), 1 / np.sqrt(x), equal_nan=True)
        assert np.array_equal((tl.tensor(x) ** 4).numpy(), x ** 4, equal_nan=True)     # others: NumPy's pow


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.01, 0.2, 1 / 3, 0.5, 1.0, 0.0, 0.7310585786300049])
def test_leaky_relu_and_its_backward_are_the_where_formulas(dtype, slope):
    from tensorlib.ops.activation import LEAKY_RELU, LEAKY_RELU_BACKWARD
    x, g = _data(dtype, 6), _data(dtype, 7)
    with np.errstate(all="ignore"):
        ref = np.where(x > 0, x, x * slope).astype(dtype)
        assert np.array_equal(LEAKY_RELU.kernel(np, x, negative_slope=slope), ref, equal_nan=True)
        refb = np.where(x > 0, g, g * dtype(slope))
        assert np.array_equal(LEAKY_RELU_BACKWARD.kernel(np, g, x, negative_slope=slope), refb, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hardswish_and_hardsigmoid_are_torch_kernels(dtype):
    """torch's CPU kernels: x * min(max(x + 3, 0), 6) / 6; backward 0 up to -3, g from 3 on, g * (x / 3 + 0.5)
    between; hardsigmoid's backward g times float32(1/6) on (-3, 3). One op each way, torch's node names."""
    x = np.concatenate([_data(dtype, 8), np.array([-3, 3, -2.5, 2.5], dtype)])
    g = np.concatenate([_data(dtype, 9), np.ones(4, dtype)])
    xt = tl.tensor(x, requires_grad=True)
    y = tl.nn.functional.hardswish(xt)
    assert y.grad_fn.name() == "HardswishBackward0"
    y.backward(tl.tensor(g))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(y.detach().numpy(), x * np.minimum(np.maximum(x + 3, 0), 6) / 6)
        want = np.where(x <= -3, 0, np.where(x >= 3, g, g * (x / 3 + 0.5)))
        np.testing.assert_array_equal(xt.grad.numpy(), want)
        xt.grad = None
        y = tl.nn.functional.hardsigmoid(xt)
        assert y.grad_fn.name() == "HardsigmoidBackward0"
        y.backward(tl.tensor(g))
        np.testing.assert_array_equal(y.detach().numpy(), np.minimum(np.maximum(x + 3, 0), 6) / 6)
        np.testing.assert_array_equal(xt.grad.numpy(), np.where((x > -3) & (x < 3), g * float(np.float32(1 / 6)), 0))


@pytest.mark.parametrize("opset", [13, 17])
def test_hardswish_and_hardsigmoid_export_to_onnx(opset):
    import io
    import onnxruntime as ort
    m = tl.nn.Sequential(tl.nn.Linear(8, 8), tl.nn.Hardswish(), tl.nn.Linear(8, 8), tl.nn.Hardsigmoid())
    x = tl.randn(4, 8) * 3
    f = io.BytesIO()
    tl.onnx.export(m, (x,), f, opset_version=opset)
    sess = ort.InferenceSession(f.getvalue())
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, m(x).detach().numpy(), atol=1e-6)
