"""F.interpolate(mode="linear"/"bilinear"/"trilinear") as torch's upsample_linear1d / upsample_bilinear2d /
upsample_trilinear3d ops: values against a direct evaluation of torch's formulas, the gradient as the forward's
adjoint (on both backward paths: the dense product of short axes and the run sums of long ones), node names, one
op each way in a profile, and ONNX export (Resize in linear mode, checked by onnxruntime)."""
import numpy as np
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import upsample
from tests.tensorlib.nn.test_upsample_nearest import onnx_and_eager


def _reference(x, sizes, scales, align_corners):
    """Each output as the weighted pair of inputs torch's kernel reads along each axis, in float64, with its
    float32 source coordinates (area_pixel_compute_source_index, contracted to one rounding)."""
    y = x.astype(np.float64)
    for k in range(len(sizes) - 1, -1, -1):
        dim, n_in, n_out = 2 + k, x.shape[2 + k], sizes[k]
        if align_corners:
            real = np.float32(np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else 0) * \
                np.arange(n_out, dtype=np.float32)
        else:
            ratio = np.float32(1 / scales[k]) if scales else np.float32(n_in) / np.float32(n_out)
            real = np.maximum((np.float64(ratio) * (np.arange(n_out) + 0.5) - 0.5).astype(np.float32), 0)
        i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
        w1 = np.clip(real - i0, 0, 1).astype(np.float64)
        shape = [1] * y.ndim
        shape[dim] = n_out
        w1 = w1.reshape(shape)
        y = np.take(y, i0, axis=dim) * (1 - w1) + np.take(y, np.minimum(i0 + 1, n_in - 1), axis=dim) * w1
    return y


CASES = [
    ((2, 3, 5, 7), dict(scale_factor=2), (10, 14), (2.0, 2.0), False),
    ((2, 3, 5, 7), dict(size=(11, 4)), (11, 4), None, True),
    ((1, 2, 9), dict(scale_factor=2.5), (22,), (2.5,), False),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.5)), (6, 6, 2), (2.0, 1.5, 0.5), False),
    ((2, 3, 8, 8), dict(size=(3, 1)), (3, 1), None, False),
    ((1, 2, 300), dict(scale_factor=1.5), (450,), (1.5,), False),     # long: the backward's run sums
    ((1, 1, 2, 400), dict(scale_factor=0.5), (1, 200), (0.5, 0.5), True),
]


@pytest.mark.parametrize("shape,kw,sizes,scales,ac", CASES)
def test_values_gradients_and_names(shape, kw, sizes, scales, ac):
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape) - 2]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt = tl.tensor(x, requires_grad=True)
    y = F.interpolate(xt, mode=mode, align_corners=ac, **kw)
    want = _reference(x, sizes, scales, ac)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-6, atol=1e-6)
    assert y.grad_fn.name() == {1: "UpsampleLinear1DBackward0", 2: "UpsampleBilinear2DBackward0",
                                3: "UpsampleTrilinear3DBackward0"}[len(shape) - 2]
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    y.backward(tl.tensor(g))
    # the gradient is the adjoint of the interpolation: <A x2, g> == <x2, A^T g> for any x2
    x2 = np.random.default_rng(2).standard_normal(shape)
    lhs = float((_reference(x2, sizes, scales, ac) * g).sum())
    assert lhs == pytest.approx(float((x2 * xt.grad.numpy()).sum()), rel=1e-5, abs=1e-4)


def test_dense_and_run_sum_backwards_agree():
    g = np.random.default_rng(3).standard_normal((2, 3, 37)).astype(np.float64)
    kw = dict(input_size=(2, 3, 20), output_size=(37,), align_corners=False, scales=None)
    dense = upsample._linear_backward_k(np, g, **kw)
    old = upsample._DENSE_MAX
    upsample._DENSE_MAX = 0
    try:
        runs = upsample._linear_backward_k(np, g, **kw)
    finally:
        upsample._DENSE_MAX = old
    np.testing.assert_allclose(dense, runs, rtol=1e-12, atol=1e-12)


def test_one_op_each_way_in_a_profile():
    x = tl.randn(1, 2, 3, 4, requires_grad=True)
    with profiler.profile() as p:
        F.interpolate(x * 1, scale_factor=2, mode="bilinear").sum().backward()
    names = [e.name for e in p.events()]
    assert "aten::upsample_bilinear2d" in names and "aten::upsample_bilinear2d_backward" in names
    assert "aten::index_select" not in names


@pytest.mark.parametrize("kw,shape", [(dict(scale_factor=2, mode="bilinear"), (2, 3, 5, 7)),
                                      (dict(size=(11, 4), mode="bilinear", align_corners=True), (2, 3, 5, 7)),
                                      (dict(scale_factor=1.5, mode="bilinear"), (1, 2, 6, 6)),
                                      (dict(scale_factor=3, mode="linear"), (1, 2, 4)),
                                      (dict(size=(3, 4, 2), mode="trilinear"), (1, 1, 2, 3, 5))])
def test_onnx_export_is_resize(kw, shape):
    out, want = onnx_and_eager(kw, shape)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
