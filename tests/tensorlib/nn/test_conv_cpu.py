"""The CPU convolution kernels (a chunk of images at a time) against the whole-batch algorithms that CUDA
uses, and max_pool2d's tap-by-tap kernel against a window-by-window reference."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import conv_ops as C
from tensorlib.ops.pool_ops import MAX_POOL2D

# (N, Cin, H, W, O, (kh, kw), stride, padding (t, b, l, r), dilation, groups)
SHAPES = [
    (3, 4, 7, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
    (2, 3, 9, 8, 4, (3, 2), (1, 1), (0, 1, 0, 1), (2, 1), 1),       # padding "same" of an even kernel
    (4, 4, 8, 9, 8, (3, 3), (2, 1), (1, 1, 2, 2), (1, 2), 4),
    (5, 6, 6, 5, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3),
    (2, 2, 5, 5, 3, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    (3, 4, 9, 10, 4, (3, 2), (1, 1), (1, 0, 0, 2), (2, 3), 2),      # stride 1, both dilations > 1
    (3, 4, 9, 8, 6, (3, 4), (2, 3), (1, 1, 0, 2), (1, 1), 2),
    (2, 2, 7, 7, 2, (1, 2), (3, 3), (0, 0, 0, 0), (1, 1), 1),       # stride > kernel: phases no tap reaches
    (2, 3, 8, 7, 4, (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),       # a last input row no window reaches
]


@pytest.fixture(params=[False, True], ids=["one-chunk", "small-chunks"])
def chunks(request, monkeypatch):
    """Also run with chunks of one or two images, so that the chunk loop's edges are exercised."""
    if request.param:
        monkeypatch.setattr(C, "_CHUNK_BYTES", 600)


@pytest.mark.parametrize("shape", SHAPES)
def test_cpu_conv_kernels_match_whole_batch_algorithms(shape, chunks):
    N, Cin, H, W, O, (kh, kw), stride, pad, dil, G = shape
    r = np.random.default_rng(0)
    x = r.standard_normal((N, Cin, H, W))
    w = r.standard_normal((O, Cin // G, kh, kw))
    b = r.standard_normal(O)
    xpad = C._pad(np, x, pad)
    ref = C._fwd_gemm(np, xpad, w, stride, dil, G) + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(C._fwd_cpu(xpad, w, b, stride, dil, G), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(C._fwd_cpu(xpad, w, None, stride, dil, G), ref - b.reshape(1, -1, 1, 1), rtol=1e-12,
                               atol=1e-12)
    g = r.standard_normal(ref.shape)
    np.testing.assert_allclose(C._weight_cpu(x, g, w.shape, stride, pad, dil, G),
                               C._weight_gemm(np, x, g, w.shape, stride, pad, dil, G), rtol=1e-12, atol=1e-12)
    full = xpad.shape[2:]
    ref = C._col2im_slices(np, C._gcols(np, g, w, G), full, stride, dil)
    np.testing.assert_allclose(C._col2im_strided_cpu(g, w, G, full, stride, dil), ref, rtol=1e-12, atol=1e-12)
    if stride == (1, 1):
        np.testing.assert_allclose(C._col2im_cpu(g, w, G, full, dil), ref, rtol=1e-12, atol=1e-12)
    elif dil == (1, 1):      # the phase split, whatever the channel count (its rule picks it from 32 on)
        np.testing.assert_allclose(C._col2im_phases_cpu(g, w, G, full, stride), ref, rtol=1e-12, atol=1e-12)


def test_cpu_kernels_keep_float32(chunks):
    r = np.random.default_rng(1)
    x = r.standard_normal((3, 4, 6, 6), dtype=np.float32)
    w = r.standard_normal((5, 4, 3, 3), dtype=np.float32)
    g = r.standard_normal((3, 5, 4, 4), dtype=np.float32)
    assert C._fwd_cpu(x, w, w[:, 0, 0, 0], (1, 1), (1, 1), 1).dtype == np.float32
    assert C._col2im_cpu(g, w, 1, (6, 6), (1, 1)).dtype == np.float32
    assert C._weight_cpu(x, g, w.shape, (1, 1), (0, 0, 0, 0), (1, 1), 1).dtype == np.float32


def _max_pool_reference(x, k, s, p, d, OH, OW):
    """Window by window: NumPy's argmax over the window (first maximum, first NaN), -inf padding."""
    N, Cn, H, W = x.shape
    out = np.empty((N, Cn, OH, OW), x.dtype)
    idx = np.empty((N, Cn, OH, OW), np.int64)
    for oh, ow in itertools.product(range(OH), range(OW)):
        rows = [oh * s[0] - p[0] + i * d[0] for i in range(k[0])]
        cols = [ow * s[1] - p[1] + j * d[1] for j in range(k[1])]
        vals = np.full((N, Cn, len(rows) * len(cols)), -np.inf)
        flat = np.full(len(rows) * len(cols), -1)
        for t, (rr, cc) in enumerate(itertools.product(rows, cols)):
            if 0 <= rr < H and 0 <= cc < W:
                vals[:, :, t] = x[:, :, rr, cc]
                flat[t] = rr * W + cc
        a = np.argmax(vals, axis=2)
        out[:, :, oh, ow] = np.take_along_axis(vals, a[..., None], 2)[..., 0]
        idx[:, :, oh, ow] = flat[a]
    return out, idx


@pytest.mark.parametrize("k,s,p,d,ceil", [((2, 2), (2, 2), (0, 0), (1, 1), False),
                                          ((3, 3), (2, 2), (1, 1), (1, 1), True),
                                          ((3, 2), (1, 2), (1, 0), (2, 1), False),
                                          ((1, 1), (1, 1), (0, 0), (1, 1), False)])
def test_max_pool_taps_match_window_reference(k, s, p, d, ceil):
    r = np.random.default_rng(2)
    x = r.integers(-2, 3, (2, 3, 7, 8)).astype(np.float64)      # many ties: the first maximum must win
    x[0, 1, 2:4, 1:5] = np.nan                                    # NaNs: the first NaN must win
    out, idx = MAX_POOL2D.kernel(np, x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    ref_out, ref_idx = _max_pool_reference(x, k, s, p, d, *out.shape[2:])
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    assert np.isnan(out).any()


def test_max_pool_integer_input_and_backward_scatter():
    r = np.random.default_rng(3)
    x = r.integers(-5, 5, (2, 2, 6, 6))
    out, idx = tl.nn.functional.max_pool2d(tl.tensor(x), 2, return_indices=True)
    ref_out, ref_idx = _max_pool_reference(x, (2, 2), (2, 2), (0, 0), (1, 1), 3, 3)
    np.testing.assert_array_equal(out.numpy(), ref_out)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    xf = tl.tensor(x.astype(np.float32), requires_grad=True)
    tl.nn.functional.max_pool2d(xf, 2).sum().backward()
    expect = np.zeros(x.shape, np.float32).reshape(2, 2, -1)
    np.put_along_axis(expect, ref_idx.reshape(2, 2, -1), 1.0, axis=2)
    np.testing.assert_array_equal(xf.grad.numpy(), expect.reshape(x.shape))


def test_max_pool_backward_scatter_over_several_chunks():
    """Non-overlapping windows scatter a few planes at a time (pool_ops._SCATTER_CHUNK): planes past the first
    chunk, and a last chunk shorter than the others, land where a whole-batch reference puts them."""
    r = np.random.default_rng(4)
    x = r.standard_normal((5, 61, 8, 10)).astype(np.float32)     # 305 planes of 20 windows: 819 planes a chunk
    from tensorlib.ops import pool_ops
    rows = pool_ops._SCATTER_CHUNK // 20
    assert 5 * 61 < rows     # one chunk at the default size; a smaller size below makes several
    g = r.standard_normal((5, 61, 4, 5)).astype(np.float32)
    _, ref_idx = _max_pool_reference(x, (2, 2), (2, 2), (0, 0), (1, 1), 4, 5)
    expect = np.zeros(x.shape, np.float32).reshape(5 * 61, -1)
    np.put_along_axis(expect, ref_idx.reshape(5 * 61, -1), g.reshape(5 * 61, -1), axis=1)
    old = pool_ops._SCATTER_CHUNK
    try:
        pool_ops._SCATTER_CHUNK = 20 * 7            # 7 planes a chunk: 43 full chunks and one of 4
        xt = tl.tensor(x, requires_grad=True)
        tl.nn.functional.max_pool2d(xt, 2).backward(tl.tensor(g))
    finally:
        pool_ops._SCATTER_CHUNK = old
    np.testing.assert_array_equal(xt.grad.numpy(), expect.reshape(x.shape))
