"""F.logsigmoid as torch's ops: log_sigmoid_forward and log_sigmoid_backward (node LogSigmoidBackward0, torch's
profile names), values by min(x, 0) - log1p(exp(-|x|)) without overflow at either end, the gradient sigmoid(-x),
second derivatives through the composite, torch's error for an integer input, and ONNX export as Log(Sigmoid)."""
import io
import math

import numpy as np
import onnxruntime as ort
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F

X = [-1e30, -200.0, -88.0, -20.0, -3.0, -1e-3, -0.0, 0.0, 1e-30, 2.5, 20.0, 100.0, 1e30]


def _ref(v):
    return min(v, 0.0) - math.log1p(math.exp(-abs(v)))


def _sig_neg(v):
    return math.exp(-v) / (1 + math.exp(-v)) if v > 0 else 1 / (1 + math.exp(v))


@pytest.mark.parametrize("dtype,rtol,atol", [(tl.float32, 4e-7, 1e-40), (tl.float64, 1e-15, 0)])
def test_values_and_gradient(dtype, rtol, atol):      # (float32's subnormals near 1e-44 keep a few bits)
    x = tl.tensor(X + [math.inf, -math.inf, math.nan], dtype=dtype, requires_grad=True)
    y = F.logsigmoid(x)
    assert y.grad_fn.name() == "LogSigmoidBackward0"
    y.backward(tl.ones_like(y))
    got, grad = y.detach().numpy(), x.grad.numpy()
    np.testing.assert_allclose(got[:len(X)], [_ref(v) for v in X], rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad[:len(X)], [_sig_neg(v) for v in X], rtol=rtol, atol=atol)
    assert got[-3] == 0 and got[-2] == -math.inf and math.isnan(got[-1])
    assert grad[-3] == 0 and grad[-2] == 1 and math.isnan(grad[-1])


def test_second_derivative_through_the_composite():
    x = tl.tensor([-2.0, 0.5, 3.0], dtype=tl.float64, requires_grad=True)
    (g,) = tl.autograd.grad(F.logsigmoid(x).sum(), x, create_graph=True)
    (gg,) = tl.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-x.detach().numpy()))
    np.testing.assert_allclose(gg.numpy(), -s * (1 - s), rtol=1e-12)


def test_an_integer_input_is_refused_as_torch():
    with pytest.raises(RuntimeError, match="\"log_sigmoid_forward_cpu\" not implemented for 'Long'"):
        F.logsigmoid(tl.tensor([1, 2]))


def test_profile_names():
    x = tl.randn(3, 4, requires_grad=True)
    with profiler.profile() as p:
        F.logsigmoid(x * 1).sum().backward()
    names = [e.name for e in p.events()]
    assert "aten::log_sigmoid" in names and "aten::log_sigmoid_forward" in names
    assert "aten::log_sigmoid_backward" in names and "aten::softplus" not in names


def test_onnx_export():
    m = tl.nn.LogSigmoid()
    x = tl.randn(2, 5)
    f = io.BytesIO()
    tl.onnx.export(m, (x,), f)
    sess = ort.InferenceSession(f.getvalue())
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, m(x).numpy(), rtol=1e-5, atol=1e-6)
