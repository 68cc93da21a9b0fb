"""batch_norm's C loops over channels (tensorlib/_cmath.c, ops/_fastmath.batch_norm and batch_norm_backward) against
the kernel's NumPy path (ops/norm_ops._bn_forward_channels / _bn_backward_channels) and a float64 reference: the
output, the saved statistics, the running statistics' update (the unbiased variance) and the three gradients, in
training and in eval, with and without the affine parameters, for images (N, C, H, W), sequences (N, C, L), a
small 2-d input and a gradient of another layout."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import _fastmath as FM, norm_ops as N

pytestmark = pytest.mark.skipif(FM._BN is None, reason="tensorlib._cmath is not built (TENSORLIB_NATIVE=0)")

SHAPES = [(2, 3, 4), (5, 4, 3, 3), (3, 2, 1, 1, 8), (8, 32), (1, 6, 5, 4)]


def _tol(dt):
    return dict(rtol=3e-6, atol=3e-6) if dt == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _reference(x, w, b, rm, rv, training, momentum, eps):
    """batch_norm in float64 from its definition: (y, mean, rstd, updated running mean, running var)."""
    x64 = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    cs = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        mean = x64.mean(axis=axes)
        var = x64.var(axis=axes)
        n = x.size // x.shape[1]
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * var * n / max(n - 1, 1)
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    rstd = 1 / np.sqrt(var + eps)
    y = (x64 - mean.reshape(cs)) * rstd.reshape(cs)
    if w is not None:
        y = y * w.reshape(cs)
    if b is not None:
        y = y + b.reshape(cs)
    return y, mean, rstd, rm, rv


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_the_loops_give_the_numpy_paths_values(dtype, shape, training, affine):
    rng = np.random.default_rng(sum(shape) + training + 2 * affine)
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm0, rv0 = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    rm1, rv1, rm2, rv2 = rm0.copy(), rv0.copy(), rm0.copy(), rv0.copy()
    out = FM.batch_norm(x, w, b, rm1, rv1, training, 0.1, 1e-5)
    assert out is not None          # (the shapes here are ones the loops take)
    y, mu, rstd = out
    y_np, mu_np, rstd_np = N._bn_forward_channels(x, rm2, rv2, w, b, training, 0.1, 1e-5)
    tol = _tol(dtype)
    for a, e in ((y, y_np), (mu, mu_np), (rstd, rstd_np), (rm1, rm2), (rv1, rv2)):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, **tol)
    ref = _reference(x, w, b, rm0, rv0, training, 0.1, 1e-5)
    for a, e in zip((y, mu.reshape(-1), rstd.reshape(-1), rm1, rv1), ref):
        np.testing.assert_allclose(a, e, **tol)
    # the backward: every subset of the gradients, a C-ordered and a transposed-layout gradient
    g = rng.standard_normal(shape).astype(dtype)
    for grad in (g, np.asfortranarray(g)):
        for need in ((True, True, True), (True, False, False), (False, True, True)):
            got = FM.batch_norm_backward(grad, x, mu, rstd, w, training, need)
            want = N._bn_backward_channels(np.ascontiguousarray(grad), x, w, mu, rstd, training, need)
            for k, (a, e) in enumerate(zip(got, want)):
                if not need[k]:     # (a 0-d zero: NumPy's path may give the sum it computed on the way)
                    assert a.shape == () and a == 0
                    continue
                assert a.shape == e.shape and a.dtype == e.dtype, (k, need)
                np.testing.assert_allclose(a, e, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * (1 + abs(e).max()))


def test_which_inputs_the_loops_take():
    x = np.ones((8, 16, 4, 4), np.float32)
    assert FM.batch_norm(x, None, None, None, None, True, 0.1, 1e-5) is not None
    assert FM.batch_norm(x, None, None, None, None, False, 0.1, 1e-5) is None       # eval needs the running ones
    assert FM.batch_norm(x[:, :, ::2], None, None, None, None, True, 0.1, 1e-5) is None     # not C-contiguous
    assert FM.batch_norm(x.astype(np.float16), None, None, None, None, True, 0.1, 1e-5) is None
    # a large 2-d input (one element a run) stays on NumPy's path, which reads it faster
    assert FM.batch_norm(np.ones((256, 1024), np.float32), None, None, None, None, True, 0.1, 1e-5) is None
    assert FM.batch_norm(np.ones((8, 32), np.float32), None, None, None, None, True, 0.1, 1e-5) is not None


def test_batch_norm_module_trains_on_the_loops_as_on_numpys_path(monkeypatch):
    """A BatchNorm2d's output, running statistics and gradients through the dispatcher, the C loops and NumPy's
    path (the loops switched off), to float32 rounding."""
    def run():
        tl.manual_seed(0)
        bn = tl.nn.BatchNorm2d(3)
        x = tl.randn(4, 3, 5, 5, requires_grad=True)
        y = bn(x)
        (y * tl.arange(75.0).reshape(3, 5, 5)).sum().backward()
        bn.eval()
        z = bn(x.detach())
        return [t.detach().numpy().copy() for t in (y, z, bn.running_mean, bn.running_var, x.grad, bn.weight.grad,
                                                      bn.bias.grad)]
    with_loops = run()
    monkeypatch.setattr(N, "_fast_batch_norm", lambda *a: None)
    monkeypatch.setattr(N, "_fast_batch_norm_backward", lambda *a: None)
    without = run()
    for a, e in zip(with_loops, without):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-4)
