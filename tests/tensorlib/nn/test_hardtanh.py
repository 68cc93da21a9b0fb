"""F.hardtanh and F.relu6 as torch's hardtanh and hardtanh_backward ops (they were clamp, whose gradient is g at
the bounds: relu6's at 0 and 6 is 0 in torch): values, gradients at and beyond the bounds and at NaN, -0.0 kept,
in place (the result saved), node names, torch's error for min_val > max_val, one backward op in a profile, and
ONNX Clip."""
import io
import math

import numpy as np
import onnxruntime as ort
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F

X = [-7.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 6.0, 7.0, math.nan, math.inf, -math.inf]


def _reference(lo, hi):
    vals = [v if math.isnan(v) else min(max(v, lo), hi) for v in X]
    grads = [1.0 if lo < v < hi else 0.0 for v in X]     # a NaN's 0: torch's vectorised loop (its scalar tail: g)
    return vals, grads


@pytest.mark.parametrize("call,lo,hi", [(lambda x, ip: F.relu6(x, ip), 0.0, 6.0),
                                        (lambda x, ip: F.hardtanh(x, inplace=ip), -1.0, 1.0),
                                        (lambda x, ip: F.hardtanh(x, -0.5, 6.0, ip), -0.5, 6.0)])
@pytest.mark.parametrize("inplace", [False, True])
def test_values_gradients_and_node(call, lo, hi, inplace):
    x = tl.tensor(X, requires_grad=True)
    y = call(x * 1, inplace)
    assert y.grad_fn.name() == "HardtanhBackward0"
    y.backward(tl.ones_like(y))
    vals, grads = _reference(lo, hi)
    np.testing.assert_array_equal(y.detach().numpy(), np.array(vals, np.float32))
    assert np.signbit(y.detach().numpy()[3])        # -0.0 stays -0.0 (relu6 too: torch clamps it to itself)
    np.testing.assert_array_equal(x.grad.numpy(), grads)


def test_min_above_max_is_refused_as_torch():
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(tl.randn(3), 2.0, 1.0)


def test_one_backward_op_in_a_profile():
    x = tl.randn(3, 4, requires_grad=True)
    with profiler.profile() as p:
        F.relu6(x * 1).sum().backward()
    names = [e.name for e in p.events()]
    for name in ("aten::relu6", "aten::hardtanh", "aten::clamp", "aten::hardtanh_backward"):
        assert name in names
    assert "aten::ge" not in names and "aten::le" not in names


def test_onnx_export_is_clip():
    m = tl.nn.Sequential(tl.nn.ReLU6(), tl.nn.Hardtanh(-0.5, 0.25))
    x = tl.randn(2, 7) * 4
    f = io.BytesIO()
    tl.onnx.export(m, (x,), f)
    sess = ort.InferenceSession(f.getvalue())
    np.testing.assert_array_equal(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], m(x).numpy())
