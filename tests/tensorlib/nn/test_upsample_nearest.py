"""F.interpolate(mode="nearest") as torch's upsample_nearest{1,2,3}d ops: values, gradients, node names, one op
each way in a profile, and ONNX export (Resize, checked by onnxruntime)."""
import io

import numpy as np
import onnxruntime as ort
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F


def _reference(x, out_sizes, scales):
    """torch's nearest source index per spatial dim: floor(dst * float32(in / out or 1 / scale))."""
    y = x
    for k, n_out in enumerate(out_sizes):
        n_in = x.shape[2 + k]
        r = np.float32(1 / scales[k] if scales else n_in / n_out)
        idx = np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * r), n_in - 1).astype(np.int64)
        if n_out == 2 * n_in:
            idx = np.arange(n_out) // 2
        y = np.take(y, idx, axis=2 + k)
    return y


@pytest.mark.parametrize("shape,kw,sizes,scales", [
    ((2, 3, 5, 7), dict(scale_factor=2), (10, 14), (2.0, 2.0)),
    ((2, 3, 5, 7), dict(size=(11, 4)), (11, 4), None),
    ((1, 2, 9), dict(scale_factor=2.5), (22,), (2.5,)),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.5)), (6, 6, 2), (2.0, 1.5, 0.5)),
    ((2, 3, 8, 8), dict(size=(3, 5)), (3, 5), None),
    ((1, 2, 250), dict(scale_factor=2), (500,), (2.0,)),           # long axes: the backward's run sums
    ((1, 1, 2, 400), dict(size=(2, 150)), (2, 150), None),
])
def test_values_gradients_and_names(shape, kw, sizes, scales):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt = tl.tensor(x, requires_grad=True)
    y = F.interpolate(xt, **kw)
    want = _reference(x, sizes, scales)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    nd = len(shape) - 2
    assert y.grad_fn.name() == f"UpsampleNearest{nd}DBackward0"
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    y.backward(tl.tensor(g))
    # the gradient is the adjoint of the index map: <y, g> == <x, grad> for any x
    x2 = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    lhs = float((_reference(x2, sizes, scales).astype(np.float64) * g).sum())
    assert lhs == pytest.approx(float((x2.astype(np.float64) * xt.grad.numpy()).sum()), rel=1e-5)


def test_one_op_each_way_in_a_profile():
    x = tl.randn(1, 2, 3, 4, requires_grad=True)
    with profiler.profile() as p:
        F.interpolate(x * 1, scale_factor=2).sum().backward()
    names = [e.name for e in p.events()]
    assert "aten::upsample_nearest2d" in names and "aten::upsample_nearest2d_backward" in names
    assert "aten::index_select" not in names


@pytest.mark.parametrize("kw,shape", [(dict(scale_factor=2), (2, 3, 5, 7)), (dict(size=(11, 4)), (2, 3, 5, 7)),
                                      (dict(scale_factor=1.5), (1, 2, 6, 6)), (dict(scale_factor=3), (1, 2, 4))])
def test_onnx_export_is_resize(kw, shape):
    out, want = onnx_and_eager(kw, shape)
    np.testing.assert_array_equal(out, want)


def onnx_and_eager(kw, shape):
    """F.interpolate(x, **kw) + 1 exported to ONNX and run by onnxruntime, and run by tensorlib, on one input."""
    class M(tl.nn.Module):
        def forward(self, x):
            return F.interpolate(x, **kw) + 1
    x = tl.randn(*shape)
    f = io.BytesIO()
    tl.onnx.export(M(), (x,), f)
    sess = ort.InferenceSession(f.getvalue())
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], M()(x).numpy()
