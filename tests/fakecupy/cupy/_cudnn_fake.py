"""A stand-in for `cupyx.cudnn` (CuPy 13 with cuDNN installed; CuPy 14 has none): the three convolution
entry points tensorlib calls, with CuPy's signatures, computed in NumPy by direct per-tap sums (code
of its own, not tensorlib's) and writing into the output array as cuDNN does. Every call is appended
to `calls` as (name, keyword arguments), so tests can see which flags reached cuDNN.

Not importable as `cupyx.cudnn` by itself (that is tests/fakecupy/cupyx/cudnn.py, which fails as the real
one does without libcudnn): a test puts it in sys.modules (tests/tensorlib/test_cudnn_paths.py),
so the rest of the fake-CUDA run exercises the CuPy-only convolutions that CuPy 14 users get.
"""
from __future__ import annotations

import numpy as np

calls: list = []


def _host(a):
    return None if a is None else a.get().astype(np.float64)


def _taps(shape_w, pad, stride, dilation, in_hw):
    kh, kw = shape_w[2:]
    (ph, pw), (sh, sw), (dh, dw) = pad, stride, dilation
    H, W = in_hw[0] + 2 * ph, in_hw[1] + 2 * pw
    OH = (H - dh * (kh - 1) - 1) // sh + 1
    OW = (W - dw * (kw - 1) - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i * dh, i * dh + sh * (OH - 1) + 1, sh), slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


def _group_taps(w_shape, groups, pad, stride, dilation, in_hw):
    """(input-channel slice, output-channel slice, i, j, window rows, window cols) per group and tap."""
    O, Cg = w_shape[:2]
    og = O // groups
    for g in range(groups):
        for i, j, (rs, cs) in _taps(w_shape, pad, stride, dilation, in_hw):
            yield slice(g * Cg, (g + 1) * Cg), slice(g * og, (g + 1) * og), i, j, rs, cs


def _padded(xh, pad):
    return np.pad(xh, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))


def _check(pad, stride, dilation, groups):
    for t in (pad, stride, dilation):
        assert type(t) is tuple and len(t) == 2, "CuPy types these as tuple"
    assert type(groups) is int


def convolution_forward(x, W, b, y, pad, stride, dilation, groups, *, auto_tune, tensor_core,
                        d_layout=0, w_layout=0):
    _check(pad, stride, dilation, groups)
    calls.append(("convolution_forward", {"auto_tune": auto_tune, "tensor_core": tensor_core}))
    xh, wh = _host(x), _host(W)
    xpad = _padded(xh, pad)
    out = np.zeros(y.shape)
    for ci, co, i, j, rs, cs in _group_taps(wh.shape, groups, pad, stride, dilation, xh.shape[2:]):
        out[:, co] += np.einsum("nchw,oc->nohw", xpad[:, ci, rs, cs], wh[co, :, i, j])
    if b is not None:
        out += _host(b).reshape(1, -1, 1, 1)
    y[...] = _to_device(out, y)


def convolution_backward_data(W, x, b, y, pad, stride, dilation, groups, *, deterministic, auto_tune, tensor_core,
                              d_layout=0, w_layout=0):
    """y = the input gradient of the forward convolution (weights W) whose output gradient is x."""
    _check(pad, stride, dilation, groups)
    calls.append(("convolution_backward_data", {"deterministic": deterministic, "auto_tune": auto_tune,
                                                "tensor_core": tensor_core}))
    wh, gy = _host(W), _host(x)
    N, C, H, Wd = y.shape
    gxp = np.zeros((N, C, H + 2 * pad[0], Wd + 2 * pad[1]))
    for ci, co, i, j, rs, cs in _group_taps(wh.shape, groups, pad, stride, dilation, (H, Wd)):
        gxp[:, ci, rs, cs] += np.einsum("nohw,oc->nchw", gy[:, co], wh[co, :, i, j])
    out = gxp[:, :, pad[0]:pad[0] + H, pad[1]:pad[1] + Wd]
    if b is not None:
        out = out + _host(b).reshape(1, -1, 1, 1)
    y[...] = _to_device(out, y)


def convolution_backward_filter(x, gy, gW, pad, stride, dilation, groups, *, deterministic, auto_tune, tensor_core,
                                d_layout=0, w_layout=0):
    _check(pad, stride, dilation, groups)
    calls.append(("convolution_backward_filter", {"deterministic": deterministic, "auto_tune": auto_tune,
                                                  "tensor_core": tensor_core}))
    xh, gyh = _host(x), _host(gy)
    xpad = _padded(xh, pad)
    out = np.zeros(gW.shape)
    for ci, co, i, j, rs, cs in _group_taps(gW.shape, groups, pad, stride, dilation, xh.shape[2:]):
        out[co, :, i, j] = np.einsum("nchw,nohw->oc", xpad[:, ci, rs, cs], gyh[:, co])
    gW[...] = _to_device(out, gW)


def _to_device(a, like):
    import cupy
    return cupy.asarray(np.ascontiguousarray(a).astype(like.dtype))
