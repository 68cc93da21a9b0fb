"""float32 CPU convolutions on oneDNN (tensorlib/_dnnl.py) against tensorlib's own im2col kernels, which stay the
reference: forward, input gradient and weight + bias gradient over strides, asymmetric padding, dilation, groups
and depthwise layers; the switch (backends.mkldnn), the fallbacks, the plan cache's eviction and the threads.

The test extra installs onednn-cpu-gomp, so these run on CI; where the wheel is absent they skip and say so."""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _dnnl
from tensorlib.backends import mkldnn
from tensorlib.ops import conv_ops as C


def _installed():
    try:
        importlib.metadata.version("onednn-cpu-gomp")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


pytestmark = pytest.mark.skipif(not _installed(), reason="onednn-cpu-gomp is not installed (the test extra has it)")

# (N, C, H, W), (O, kh, kw), stride, padding (top, bottom, left, right), dilation, groups
GEOMETRIES = [
    ((2, 16, 9, 11), (8, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((2, 16, 10, 9), (8, 3, 3), (2, 2), (1, 0, 2, 1), (1, 1), 1),
    ((1, 8, 12, 12), (4, 3, 2), (1, 2), (1, 1, 0, 0), (2, 1), 1),
    ((2, 32, 7, 7), (16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
    ((2, 16, 8, 8), (16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 16),     # depthwise
    ((2, 16, 8, 8), (32, 5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 16),     # depthwise, two filters per channel
    ((3, 24, 5, 6), (24, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((2, 3, 11, 11), (8, 3, 3), (3, 3), (0, 0, 0, 0), (1, 1), 1),      # stride leaves a remainder
]


def _arrays(xs, ws, groups, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal((ws[0], xs[1] // groups, ws[1], ws[2]), dtype=np.float32)
    b = rng.standard_normal(ws[0], dtype=np.float32)
    return x, w, b


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_loaded_where_installed():
    assert _dnnl.available() and mkldnn.is_available()


@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: "x".join(map(str, g[0])) + f"-g{g[5]}")
def test_steps_match_im2col(geo):
    xs, ws, stride, padding, dilation, groups = geo
    x, w, b = _arrays(xs, ws, groups)
    ref = C._fwd_cpu(C._pad(np, x, padding), w, b, stride, dilation, groups)
    y = _dnnl.conv2d(x, w, b, stride, padding, dilation, groups)
    assert y is not None and y.dtype == np.float32 and y.flags.c_contiguous
    _close(y, ref)
    _close(_dnnl.conv2d(x, w, None, stride, padding, dilation, groups),
           C._fwd_cpu(C._pad(np, x, padding), w, None, stride, dilation, groups))

    g = np.random.default_rng(1).standard_normal(ref.shape, dtype=np.float32)
    gw, gb = _dnnl.backward_weights(x, g, w.shape, True, stride, padding, dilation, groups)
    _close(gw, C._weight_cpu(x, g, w.shape, stride, padding, dilation, groups))
    _close(gb, g.sum((0, 2, 3)))
    gw2, none = _dnnl.backward_weights(x, g, w.shape, False, stride, padding, dilation, groups)
    assert none is None
    _close(gw2, gw)

    gx = _dnnl.backward_data(g, w, x.shape, stride, padding, dilation, groups)
    with mkldnn.flags(enabled=False):
        a = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        ref_gx = C._input_grad(x.shape, g, w, a, run=lambda op, *args, **kw: op.kernel(np, *args, **kw))
    assert ref_gx.shape == gx.shape
    _close(gx, ref_gx)


def test_autograd_through_onednn_and_without():
    """nn.Conv2d's forward and gradients with oneDNN on and off (backends.mkldnn.flags): the same values, and the
    plans cached only while it is on."""
    torch_like = tl.nn.Conv2d(16, 8, 3, stride=2, padding=1)
    x = tl.randn(4, 16, 13, 13, requires_grad=True)
    _dnnl._cache.clear()
    outs = []
    for on in (True, False):
        with mkldnn.flags(enabled=on):
            before = len(_dnnl._cache)
            y = torch_like(x)
            (y * y).sum().backward()
            outs.append([t.detach().numpy().copy() for t in (y, x.grad, torch_like.weight.grad, torch_like.bias.grad)])
            assert (len(_dnnl._cache) > before) == on
        x.grad = None
        torch_like.zero_grad()
    for a, b in zip(*outs):
        _close(a, b)


def test_conv_transpose2d_with_output_padding():
    m = tl.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
    x = tl.randn(2, 16, 5, 6)
    y = m(x)
    with mkldnn.flags(enabled=False):
        ref = m(x)
    assert tuple(y.shape) == (2, 8, 10, 12)
    _close(y.detach().numpy(), ref.detach().numpy())


def test_what_onednn_does_not_take():
    x, w, b = _arrays((2, 16, 6, 6), (8, 3, 3), 1)
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    assert _dnnl.conv2d(x.astype(np.float64), w.astype(np.float64), None, *geo) is None
    assert _dnnl.conv2d(x[:, :, :, ::-1], w, None, *geo) is None        # not C-contiguous
    g = np.zeros((2, 8, 3, 3), np.float32)                              # not conv2d's output size for x
    assert _dnnl.backward_weights(x, g, w.shape, False, *geo) is None
    assert _dnnl.backward_data(g, w, x.shape, *geo) is None
    # float64 convolutions run on the im2col kernels, whatever the switch
    t = tl.nn.functional.conv2d(tl.from_numpy(x.astype(np.float64)), tl.from_numpy(w.astype(np.float64)))
    assert t.dtype == tl.float64
    _close(t.numpy(), C._fwd_cpu(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), 1))


def test_plan_cache_evicts_and_stays_right():
    _dnnl._cache.clear()
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 16, 3, 3), dtype=np.float32)
    for h in range(3, 3 + _dnnl._CACHE_MAX + 6):
        x = rng.standard_normal((1, 16, h, 4), dtype=np.float32)
        y = _dnnl.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
        _close(y, C._fwd_cpu(C._pad(np, x, (1, 1, 1, 1)), w, None, (1, 1), (1, 1), 1))
    assert len(_dnnl._cache) == _dnnl._CACHE_MAX
    first = ("fwd", (1, 16, 3, 4))
    assert not any(k[:2] == first for k in _dnnl._cache)                 # the least recently used went first


def test_set_num_threads_reaches_onednn_pool():
    from threadpoolctl import threadpool_info
    old = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        pools = {p["user_api"]: p["num_threads"] for p in threadpool_info()}
        assert pools.get("openmp") == 1
    finally:
        tl.set_num_threads(old)


def test_flags_and_verbose(capfd):
    assert mkldnn.enabled
    old = mkldnn.set_flags(False, None, None)
    assert old[0] is True and mkldnn.enabled is False
    mkldnn.set_flags(*old)
    with pytest.raises(ValueError, match="fp32_precision='bf16' is not supported"):
        with mkldnn.flags(enabled=True, fp32_precision="bf16"):
            pass
    assert mkldnn.enabled
    x = tl.randn(1, 16, 6, 6)
    w = tl.randn(4, 16, 3, 3)
    with mkldnn.verbose(mkldnn.VERBOSE_ON):
        tl.nn.functional.conv2d(x, w)
    tl.nn.functional.conv2d(x, w)
    out = capfd.readouterr().out
    assert out.count(",exec,cpu,convolution,") == 1


def _child(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **env), check=True)
    return out.stdout


def test_tensorlib_dnnl_0_keeps_convolutions_on_im2col():
    code = ("import tensorlib as tl\nfrom tensorlib import _dnnl\n"
            "y = tl.nn.functional.conv2d(tl.ones(1, 16, 5, 5), tl.ones(2, 16, 3, 3))\n"
            "print(tl.backends.mkldnn.is_available(), len(_dnnl._cache), float(y.sum()))")
    assert _child(code, TENSORLIB_DNNL="0").split() == ["False", "0", str(float(2 * 9 * 16 * 9))]


def test_a_named_library_that_does_not_load_is_reported_once():
    code = ("import warnings, tensorlib as tl\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    a, b = tl.backends.mkldnn.is_available(), tl.backends.mkldnn.is_available()\n"
            "print(a, b, len(w)); print(w[0].message)")
    first, message = _child(code, TENSORLIB_DNNL="/no/such/libdnnl.so.3").splitlines()
    assert first == "False False 1"
    assert "TENSORLIB_DNNL='/no/such/libdnnl.so.3' could not be used (no such file)" in message


def test_a_forked_child_leaves_onednn_off():
    """libgomp's pool does not survive a fork: a child's parallel region waited for ever for the parent's threads
    (a DataLoader worker's convolution, after this file's tests, hung so). The child runs the im2col kernels."""
    import multiprocessing as mp
    assert _dnnl.available()
    tl.nn.functional.conv2d(tl.randn(2, 16, 8, 8), tl.randn(4, 16, 3, 3))     # the parent's pool in use
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_report, args=(q,))
    p.start()
    got = q.get(timeout=60)
    p.join(60)
    assert got == (False, 0, True)
    assert _dnnl.available()                                 # (the parent keeps it)


def _child_report(q):
    before = len(_dnnl._cache)
    y = tl.nn.functional.conv2d(tl.ones(1, 16, 5, 5), tl.ones(2, 16, 3, 3))
    q.put((_dnnl.available(), len(_dnnl._cache) - before, float(y.sum()) == 2 * 9 * 16 * 9))
