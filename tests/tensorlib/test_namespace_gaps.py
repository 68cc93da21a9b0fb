"""torch's namespace functions and Tensor methods that programs call (print options, determinism, anomaly,
autocast and thread switches, shape and dtype helpers, windows, integration, the torch-level aliases of
nn.functional, the in-place view methods): values against NumPy references and identities, without torch
(devtools/torch_compat/test_namespace_against_torch.py compares them with torch side by side)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl


@pytest.fixture
def printopts():
    yield
    tl.set_printoptions(profile="default")


# --- 1. global state ----------------------------------------------------------------------------------

def test_set_printoptions_changes_the_repr(printopts):
    x = tl.tensor([1.12345, 2.5])
    assert repr(x) == "tensor([1.1235, 2.5000])"
    tl.set_printoptions(precision=2)
    assert repr(x) == "tensor([1.12, 2.50])"
    tl.set_printoptions(threshold=5)
    assert repr(tl.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    tl.set_printoptions(edgeitems=1)
    assert repr(tl.arange(10)) == "tensor([0,  ..., 9])"
    tl.set_printoptions(profile="default")
    assert repr(tl.arange(10)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    tl.set_printoptions(sci_mode=True)
    assert repr(tl.tensor([1.0, 2.0])) == "tensor([1.0000e+00, 2.0000e+00])"
    tl.set_printoptions()                        # sci_mode is always set: None chooses again
    assert repr(tl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    tl.set_printoptions(sci_mode=False)
    assert repr(tl.tensor([1e-5, 1.0])) == "tensor([0.0000, 1.0000])"
    tl.set_printoptions(profile="short")
    assert tl.get_printoptions() == {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80,
                                     "sci_mode": None}
    tl.set_printoptions(profile="full")
    assert "..." not in repr(tl.arange(2000))


def test_set_printoptions_linewidth_wraps_rows(printopts):
    tl.set_printoptions(linewidth=20)
    text = repr(tl.arange(12))
    # (20 - 7) // len("10, ") = 3 elements a line, as torch's _vector_str
    assert text == "tensor([ 0,  1,  2,\n         3,  4,  5,\n         6,  7,  8,\n         9, 10, 11])"


def test_deterministic_flags_and_debug_mode():
    try:
        assert tl.are_deterministic_algorithms_enabled() is False and tl.get_deterministic_debug_mode() == 0
        tl.use_deterministic_algorithms(True, warn_only=True)
        assert tl.are_deterministic_algorithms_enabled() and tl.is_deterministic_algorithms_warn_only_enabled()
        assert tl.get_deterministic_debug_mode() == 1
        tl.set_deterministic_debug_mode("error")
        assert tl.get_deterministic_debug_mode() == 2 and not tl.is_deterministic_algorithms_warn_only_enabled()
        x = tl.zeros(4).index_add_(0, tl.tensor([0, 0, 1]), tl.ones(3))    # CPU: deterministic, runs
        np.testing.assert_array_equal(x.numpy(), [2, 1, 0, 0])
        with pytest.raises(RuntimeError, match="invalid value of debug_mode, expected 0, 1, or 2, but got 3"):
            tl.set_deterministic_debug_mode(3)
        with pytest.raises(RuntimeError, match="expected one of `default`, `warn`, `error`, but got x"):
            tl.set_deterministic_debug_mode("x")
        with pytest.raises(TypeError, match="must be bool, not int"):
            tl.use_deterministic_algorithms(1)
    finally:
        tl.set_deterministic_debug_mode("default")
    assert tl.are_deterministic_algorithms_enabled() is False


def test_anomaly_switch_is_detect_anomaly_state():
    assert tl.is_anomaly_enabled() is False
    tl.set_anomaly_enabled(True, check_nan=False)
    try:
        assert tl.is_anomaly_enabled() and tl.is_anomaly_check_nan_enabled() is False
    finally:
        tl.set_anomaly_enabled(False)
    with tl.autograd.detect_anomaly():
        assert tl.is_anomaly_enabled() and tl.is_anomaly_check_nan_enabled()
    assert tl.is_anomaly_enabled() is False


def test_autocast_state_functions():
    assert tl.is_autocast_enabled() is False and tl.is_autocast_enabled("cpu") is False
    assert tl.get_autocast_dtype("cuda") is tl.float16
    with tl.autocast("cpu", dtype=tl.float16):
        assert tl.is_autocast_enabled("cpu") and not tl.is_autocast_enabled()     # no argument: CUDA
        assert tl.get_autocast_dtype("cpu") is tl.float16
    x = tl.ones(2, 2)
    tl.set_autocast_enabled("cpu", True)
    try:
        assert (x @ x).dtype is tl.float16 and tl.is_autocast_enabled("cpu")
    finally:
        tl.set_autocast_enabled("cpu", False)
    assert (x @ x).dtype is tl.float32
    from tensorlib import dispatch
    assert not dispatch.full_path_active()      # switched off again: the dispatcher's fast path is back
    with pytest.warns(DeprecationWarning, match=r"torch.is_autocast_cpu_enabled\(\) is deprecated"):
        assert tl.is_autocast_cpu_enabled() is False
    with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
        tl.get_autocast_dtype("foo")
    with pytest.raises(TypeError, match="argument 'dtype' \\(position 2\\) must be torch.dtype, not int"):
        tl.set_autocast_dtype("cpu", 3)


def test_autocast_dtype_setting_is_autocasts_default():
    tl.set_autocast_dtype("cpu", tl.float64)
    try:
        assert tl.get_autocast_dtype("cpu") is tl.float64
        with tl.autocast("cpu"):
            assert tl.get_autocast_dtype("cpu") is tl.float64
    finally:
        tl.set_autocast_dtype("cpu", tl.float16)


def test_small_switches():
    assert tl.is_inference_mode_enabled() is False
    with tl.inference_mode():
        assert tl.is_inference_mode_enabled()
    tl.set_warn_always(True)
    try:
        assert tl.is_warn_always_enabled()
        w = tl.ones(2, requires_grad=True)
        for _ in range(2):              # the create_graph warning, once per process, now every time
            with pytest.warns(UserWarning, match="create_graph=True"):
                (w * w).sum().backward(create_graph=True)
    finally:
        tl.set_warn_always(False)
    with pytest.raises(RuntimeError, match="setWarnOnlyOnce expects a bool, but got int"):
        tl.set_warn_always(1)
    assert tl.set_flush_denormal(True) is False
    assert isinstance(tl.get_num_interop_threads(), int) and tl.get_num_interop_threads() >= 1
    with pytest.raises(RuntimeError, match="set_num_interop_threads expects a positive integer"):
        tl.set_num_interop_threads(0)
    assert tl.typename(tl.ones(2)) == "tensorlib.FloatTensor" and tl.typename(3) == "int"
    assert tl.typename(tl.nn.Linear(2, 2)) == "tensorlib.nn.modules.linear.Linear"


@pytest.mark.cuda
def test_deterministic_mode_refuses_the_cuda_float_scatter_add():
    """The atomic float scatter-add is tensorlib's nondeterministic CUDA kernel: refused (or warned about
    under warn_only) in deterministic mode; integer accumulation stays exact and runs."""
    x = tl.zeros(4, device="cuda")
    idx, src = tl.tensor([0, 0, 1], device="cuda"), tl.ones(3, device="cuda")
    try:
        tl.use_deterministic_algorithms(True)
        with pytest.raises(RuntimeError, match="does not have a deterministic implementation"):
            x.index_add_(0, idx, src)
        np.testing.assert_array_equal(tl.zeros(4, dtype=tl.int32, device="cuda").index_add_(
            0, idx, src.int()).cpu().numpy(), [2, 1, 0, 0])
        tl.use_deterministic_algorithms(True, warn_only=True)
        with pytest.warns(UserWarning, match="does not have a deterministic implementation"):
            x.index_add_(0, idx, src)
        np.testing.assert_array_equal(x.cpu().numpy(), [2, 1, 0, 0])
    finally:
        tl.use_deterministic_algorithms(False)


# --- 2. shapes, dtypes, factories, windows, integration ---------------------------------------------------

def test_broadcast_shapes_result_type_can_cast():
    for shapes in (((2, 1), (3,)), ((1, 1, 1), (2,), (3, 1)), ((0,), (1,)), ((4, 1, 5), (1, 3, 1))):
        assert tuple(tl.broadcast_shapes(*shapes)) == np.broadcast_shapes(*shapes)
    assert tl.broadcast_shapes(2, (3, 1)) == tl.Size([3, 2]) and tl.broadcast_shapes() == tl.Size([])
    with pytest.raises(RuntimeError, match="Attempting to broadcast a dimension of length 3 at -1!"):
        tl.broadcast_shapes((2,), (3,))
    assert tl.result_type(tl.ones(2, dtype=tl.int32), 2.0) is tl.float32
    assert tl.result_type(tl.tensor(1.0, dtype=tl.float64), tl.ones(2, dtype=tl.int32)) is tl.float64
    assert tl.result_type(tl.tensor(1.0, dtype=tl.float64), tl.ones(2, dtype=tl.float16)) is tl.float16
    assert tl.result_type(2, 3) is tl.int64 and tl.result_type(True, False) is tl.bool
    assert tl.result_type(2, 3.0) is tl.float32 and tl.result_type(True, 3) is tl.int64
    assert tl.can_cast(tl.float32, tl.int32) is False and tl.can_cast(tl.int32, tl.bool) is False
    assert tl.can_cast(tl.bool, tl.int32) and tl.can_cast(tl.int64, tl.uint8) and tl.can_cast(tl.int8, tl.float16)


def test_unravel_index_matches_numpy_and_wraps():
    idx = np.array([[0, 5, 11], [7, 3, 2]])
    for got, want in zip(tl.unravel_index(tl.tensor(idx), (3, 4)), np.unravel_index(idx, (3, 4))):
        assert got.dtype is tl.int64
        np.testing.assert_array_equal(got.numpy(), want)
    assert [t.item() for t in tl.unravel_index(tl.tensor(-1), (2, 3))] == [1, 2]       # wraps, as torch's
    with pytest.raises(TypeError, match="expected 'indices' to be integer dtype"):
        tl.unravel_index(tl.tensor([1.0]), (2, 3))


def test_empty_strided_scalar_tensor_fill_rsub():
    t = tl.empty_strided((2, 3), (1, 2))
    assert t.stride() == (1, 2) and tuple(t.shape) == (2, 3) and not t.is_contiguous()
    t.copy_(tl.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0).reshape(2, 3))
    assert tl.empty_strided((0, 3), (3, 1)).numel() == 0
    with pytest.raises(RuntimeError, match=r"dimensionality of sizes \(2\) must match dimensionality of strides"):
        tl.empty_strided((2, 3), (1,))
    s = tl.scalar_tensor(3)
    assert s.ndim == 0 and s.dtype is tl.float32 and s.item() == 3.0
    x = tl.ones(2, 3, requires_grad=True)
    f = tl.fill(x, 2.5)
    assert f.grad_fn.name() == "FillBackward0" and (f.detach().numpy() == 2.5).all()
    v = tl.tensor(2.0, requires_grad=True)
    tl.fill(tl.ones(4), v).sum().backward()
    assert v.grad.item() == 4.0
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    r = tl.rsub(a, 5.0, alpha=2)
    np.testing.assert_array_equal(r.detach().numpy(), [3.0, 1.0])
    assert r.grad_fn.name() == "RsubBackward1"
    r.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [-2.0, -2.0])
    assert tl.rsub(a, tl.ones(2)).grad_fn.name() == "RsubBackward0"


def test_logspace_and_range():
    np.testing.assert_allclose(tl.logspace(-2, 3, 11, dtype=tl.float64).numpy(), np.logspace(-2, 3, 11), rtol=1e-15)
    np.testing.assert_allclose(tl.logspace(0, 4, 5, base=2).numpy(), [1, 2, 4, 8, 16])
    assert tl.logspace(0, 2, 3, dtype=tl.int64).tolist() == [1, 10, 100]
    with pytest.warns(UserWarning, match="torch.range is deprecated"):
        r = tl.range(1, 2, 0.25)
    assert r.dtype is tl.float32 and r.tolist() == [1.0, 1.25, 1.5, 1.75, 2.0]      # the end included
    with pytest.warns(UserWarning):
        assert tl.range(1, 4, dtype=tl.int64).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("name,ref", [("hann_window", np.hanning), ("hamming_window", np.hamming),
                                      ("blackman_window", np.blackman), ("bartlett_window", np.bartlett),
                                      ("kaiser_window", lambda n: np.kaiser(n, 12.0))])
def test_windows_match_numpy(name, ref):
    fn = getattr(tl, name)
    for n in (2, 5, 16, 33):
        np.testing.assert_allclose(fn(n, periodic=False, dtype=tl.float64).numpy(), ref(n), atol=1e-12)
        np.testing.assert_allclose(fn(n, dtype=tl.float64).numpy(), ref(n + 1)[:-1], atol=1e-12)   # periodic
        assert fn(n).dtype is tl.float32
    assert fn(0).shape == (0,) and fn(1).tolist() == [1.0]
    with pytest.raises(RuntimeError, match=f"{name} expects floating point dtypes"):
        fn(4, dtype=tl.int64)
    with pytest.raises(RuntimeError, match=f"{name} requires non-negative window_length, got window_length=-1"):
        fn(-1)


def test_trapezoid_cumulative_trapezoid_and_gradient_match_numpy():
    rs = np.random.RandomState(0)
    y, x = rs.randn(3, 7), np.sort(rs.rand(7))
    np.testing.assert_allclose(tl.trapezoid(tl.tensor(y)).numpy(), np.trapezoid(y), rtol=1e-12)
    np.testing.assert_allclose(tl.trapezoid(tl.tensor(y), dx=0.3, dim=0).numpy(), np.trapezoid(y, dx=0.3, axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(tl.trapz(tl.tensor(y), tl.tensor(x)).numpy(), np.trapezoid(y, x), rtol=1e-12)
    cum = tl.cumulative_trapezoid(tl.tensor(y), tl.tensor(x)).numpy()
    want = np.stack([[np.trapezoid(row[:k + 1], x[:k + 1]) for k in range(1, 7)] for row in y])
    np.testing.assert_allclose(cum, want, rtol=1e-12)
    with pytest.raises(RuntimeError, match="There must be one `x` value for each sample point"):
        tl.trapezoid(tl.ones(3), tl.ones(2))
    f = rs.randn(6, 5)
    for edge in (1, 2):
        got = tl.gradient(tl.tensor(f), spacing=[0.5, 2.0], edge_order=edge)
        for g, w in zip(got, np.gradient(f, 0.5, 2.0, edge_order=edge)):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)
        cx = np.sort(rs.rand(5))
        (g,) = tl.gradient(tl.tensor(f), spacing=(tl.tensor(cx),), dim=1, edge_order=edge)
        np.testing.assert_allclose(g.numpy(), np.gradient(f, cx, axis=1, edge_order=edge), rtol=1e-10)
    with pytest.raises(RuntimeError, match="expected each dimension size to be at least edge_order\\+1"):
        tl.gradient(tl.ones(2), edge_order=2)


def test_gradient_and_trapezoid_are_differentiable():
    y = tl.tensor(np.random.RandomState(1).randn(2, 5), requires_grad=True)
    x = tl.tensor(np.sort(np.random.RandomState(2).rand(5)), requires_grad=True)
    assert tl.autograd.gradcheck(lambda a, b: tl.trapezoid(a, b), (y, x))
    assert tl.autograd.gradcheck(lambda a, b: tl.cumulative_trapezoid(a, b), (y, x))
    assert tl.autograd.gradcheck(lambda a: tl.gradient(a, spacing=0.7, dim=1, edge_order=2)[0], (y,))


@pytest.mark.cuda
def test_namespace_factories_on_cuda():
    dev = "cuda"
    for name in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"):
        w = getattr(tl, name)(9, device=dev)
        assert w.is_cuda
        np.testing.assert_allclose(w.cpu().numpy(), getattr(tl, name)(9).numpy(), atol=1e-6)
    assert tl.logspace(0, 2, 3, device=dev).is_cuda and tl.empty_strided((2, 3), (1, 2), device=dev).stride() == (1, 2)
    with pytest.warns(UserWarning):
        assert tl.range(0, 2, device=dev).cpu().tolist() == [0.0, 1.0, 2.0]
    r, c = tl.unravel_index(tl.tensor([4, 1], device=dev), (2, 3))
    assert r.is_cuda and r.cpu().tolist() == [1, 0] and c.cpu().tolist() == [1, 1]
    y = tl.tensor(np.arange(6.0), device=dev)
    assert tl.trapezoid(y).item() == 12.5 and tl.gradient(y)[0].cpu().tolist() == [1.0] * 6


# --- 3. torch-level forms of nn.functional ----------------------------------------------------------------

F = tl.nn.functional


def _t(*shape, seed=0):
    return tl.tensor(np.random.RandomState(seed).randn(*shape))


def test_torch_level_forms_map_their_arguments_onto_functional():
    x, w = _t(2, 3, 6, 6), _t(4, 3, 3, 3, seed=1)
    np.testing.assert_array_equal(tl.conv2d(x, w, None, 2, 1).numpy(), F.conv2d(x, w, None, 2, 1).numpy())
    wt, idx = _t(7, 3), tl.tensor([[0, 2, 6], [6, 1, 2]])
    np.testing.assert_array_equal(tl.embedding(wt, idx).numpy(), F.embedding(idx, wt).numpy())    # weight first
    g, b, rm, rv = _t(3, seed=2), _t(3, seed=3), _t(3, seed=4), _t(3, seed=5).abs() + 0.5
    np.testing.assert_allclose(tl.batch_norm(x, g, b, rm, rv, False, 0.1, 1e-5, True).numpy(),
                               F.batch_norm(x, rm, rv, g, b, False, 0.1, 1e-5).numpy())
    np.testing.assert_allclose(tl.layer_norm(x, (6,), None, None, 1e-5, True).numpy(),
                               F.layer_norm(x, (6,)).numpy())
    a, t = _t(3, 4), tl.tensor(np.random.RandomState(9).rand(3, 4))
    for r, name in ((0, "none"), (1, "mean"), (2, "sum")):      # ATen's reduction numbers
        np.testing.assert_allclose(tl.binary_cross_entropy_with_logits(a, t, None, None, r).numpy(),
                                   F.binary_cross_entropy_with_logits(a, t, reduction=name).numpy())
    out, ind = tl.adaptive_max_pool1d(_t(2, 3, 8), 4)
    assert tuple(out.shape) == (2, 3, 4) and ind.dtype is tl.int64
    np.testing.assert_array_equal(tl.max_pool1d(_t(2, 3, 8), 2).numpy(), F.max_pool1d(_t(2, 3, 8), 2).numpy())
    np.testing.assert_array_equal(tl.constant_pad_nd(_t(2, 3), [1, 1], 7.0).numpy(),
                                  F.pad(_t(2, 3), (1, 1), value=7.0).numpy())
    with warnings.catch_warnings(record=True) as w_:
        warnings.simplefilter("always")
        tl.kl_div(a, t)                         # torch.kl_div: no nn.functional 'mean' warning
    assert not w_


def test_torch_level_dropouts_and_inplace_forms():
    x = tl.ones(4, 8, 5, dtype=tl.float64)
    assert tl.dropout(x, 0.5, False) is x
    y = tl.feature_dropout(x, 0.5, True).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == y[..., :1]).all()    # whole channels
    z = _t(3, 4)
    ref = F.selu(z).numpy()
    assert tl.selu_(z) is z
    np.testing.assert_array_equal(z.numpy(), ref)
    z = _t(3, 4)
    assert tl.threshold_(z, 0.0, -1.0) is z and ((z.numpy() > 0) | (z.numpy() == -1.0)).all()


def test_torch_level_embedding_bag_returns_four_tensors():
    w, idx, off = _t(10, 3), tl.tensor([1, 2, 4, 5, 4, 3, 2, 9]), tl.tensor([0, 4])
    out, o2b, size, mx = tl.embedding_bag(w, idx, off, False, 2)
    np.testing.assert_allclose(out.numpy(), np.stack([w.numpy()[[1, 2, 4, 5]].max(0), w.numpy()[[4, 3, 2, 9]].max(0)]))
    assert o2b.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and size.tolist() == [4, 4]
    rows = w.numpy()
    assert mx.tolist() == [[[1, 2, 4, 5][int(np.argmax(rows[[1, 2, 4, 5], d]))] for d in range(3)],
                           [[4, 3, 2, 9][int(np.argmax(rows[[4, 3, 2, 9], d]))] for d in range(3)]]
    out, o2b, size, mx = tl.embedding_bag(w, idx, off, False, 1, False, None, False, 2)      # padding_idx 2
    assert size.tolist() == [3, 3] and mx.tolist() == [3, 3]
    np.testing.assert_allclose(out.numpy()[0], rows[[1, 4, 5]].mean(0))


def test_native_layer_norm_statistics():
    x = _t(2, 3, 4)
    out, mean, rstd = tl.native_layer_norm(x, [4], None, None, 1e-5)
    np.testing.assert_allclose(mean.numpy(), x.numpy().mean(-1, keepdims=True))
    np.testing.assert_allclose(rstd.numpy(), 1 / np.sqrt(x.numpy().var(-1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(out.numpy(), F.layer_norm(x, (4,)).numpy())


# --- 4. Tensor methods ------------------------------------------------------------------------------------

def test_inplace_view_changes_keep_memory_and_autograd():
    z = tl.arange(6.0).reshape(2, 3)
    ptr = z.data_ptr()
    assert z.t_() is z and tuple(z.shape) == (3, 2) and z.stride() == (1, 3) and z.data_ptr() == ptr
    z.transpose_(0, 1).unsqueeze_(0)
    assert tuple(z.shape) == (1, 2, 3) and z.data_ptr() == ptr
    z.squeeze_()
    z.swapaxes_(0, 1).swapdims_(0, 1)
    np.testing.assert_array_equal(z.numpy(), np.arange(6.0).reshape(2, 3))
    v = z[0]
    v.unsqueeze_(0)
    assert v._base is (z._base if z._base is not None else z) and tuple(v.shape) == (1, 3)
    w = tl.ones(2, 1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w.squeeze_(1)
    y = w * tl.arange(6.0).reshape(2, 1, 3)
    y.squeeze_(1)
    assert y.grad_fn.name() == "SqueezeBackward4" and y._version_counter == 1
    y.t_()
    assert y.grad_fn.name() == "TBackward1"
    (y * tl.arange(6.0).reshape(3, 2)).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy().reshape(2, 3),
                                  np.arange(6.0).reshape(2, 3) * np.arange(6.0).reshape(3, 2).T)
    with pytest.raises(RuntimeError, match=r"t_\(\) expects a tensor with <= 2 dimensions, but self is 3D"):
        tl.ones(2, 2, 2).t_()


def test_sum_to_size_storage_offset_output_nr_new_empty_strided():
    x = tl.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(x.sum_to_size(1, 3).numpy(), [[3.0, 5.0, 7.0]])
    np.testing.assert_array_equal(x.sum_to_size((3,)).numpy(), [3.0, 5.0, 7.0])
    assert x.sum_to_size(2, 3) is x and x.sum_to_size(1, 1).item() == 15.0
    with pytest.raises(RuntimeError, match=r"size \{\[4\]\} is not expandable to size \{\[2, 3\]\}."):
        x.sum_to_size(4)
    assert x[1].storage_offset() == 3 and x.t()[1].storage_offset() == 1 and x[:, 1:].storage_offset() == 1
    assert x.storage_offset() == 0
    y = tl.ones(2, 3, requires_grad=True) * 2
    a, b = y.unbind(0)
    assert (a.output_nr, b.output_nr, y.output_nr) == (0, 1, 0)
    e = x.new_empty_strided((2, 2), (1, 2))
    assert e.stride() == (1, 2) and e.dtype is tl.float32


def test_post_accumulate_grad_hook_runs_after_the_grad_is_accumulated():
    w = tl.ones(3, requires_grad=True)
    seen = []
    h = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert [s.tolist() for s in seen] == [[2.0] * 3, [5.0] * 3]      # each after its accumulation
    tl.autograd.grad((w * 2).sum(), w)                                # autograd.grad accumulates nothing
    assert len(seen) == 2
    h.remove()
    (w * 1).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (w * 1).register_post_accumulate_grad_hook(lambda p: None)


def test_optimizer_in_backward_recipe():
    """torch's optimizer-in-backward tutorial: one optimizer per parameter, stepped from its hook, the
    gradient freed right after: the same parameters as the usual step."""
    def run(in_backward):
        tl.manual_seed(0)
        model = tl.nn.Linear(4, 3)
        x, t = tl.randn(8, 4), tl.randn(8, 3)
        if in_backward:
            opts = {p: tl.optim.SGD([p], lr=0.1) for p in model.parameters()}

            def hook(p):
                opts[p].step()
                opts[p].zero_grad()
            for p in model.parameters():
                p.register_post_accumulate_grad_hook(hook)
            ((model(x) - t) ** 2).mean().backward()
        else:
            opt = tl.optim.SGD(model.parameters(), lr=0.1)
            ((model(x) - t) ** 2).mean().backward()
            opt.step()
        return [p.detach().numpy().copy() for p in model.parameters()], [p.grad for p in model.parameters()]
    (a, ga), (b, gb) = run(False), run(True)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    assert all(g is None for g in gb) and all(g is not None for g in ga)


def test_apply_map_resize_share_memory():
    z = tl.ones(3)
    assert z.apply_(lambda v: v * 2) is z and z.tolist() == [2.0, 2.0, 2.0]
    z.map_(tl.tensor([1.0, 2.0, 3.0]), lambda a, b: a + b)
    assert z.tolist() == [3.0, 4.0, 5.0]
    assert tl.ones(3, dtype=tl.int64).apply_(lambda v: v * 2.7).tolist() == [2, 2, 2]
    m = tl.ones(2, 3).map_(tl.tensor([1.0, 2.0, 3.0]), lambda a, b: a * b)
    assert m.tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(RuntimeError, match=r"Can't call apply_\(\) on Variable that requires grad"):
        tl.ones(3, requires_grad=True).apply_(lambda v: v)
    with pytest.raises(TypeError, match="map_: expected tensorlib.FloatTensor for 'other'"):
        tl.ones(3).map_(tl.ones(3, dtype=tl.int64), lambda a, b: a)
    r = tl.arange(6.0)
    ptr = r.data_ptr()
    assert r.resize_(2, 2) is r and r.tolist() == [[0.0, 1.0], [2.0, 3.0]] and r.data_ptr() == ptr   # same memory
    r.resize_(6)
    assert r.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]         # the storage still holds them
    r.resize_(3, 3)
    assert tuple(r.shape) == (3, 3) and r.reshape(-1)[:6].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    q = tl.arange(6.0).reshape(2, 3).t()
    assert q.resize_(6).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]     # storage order, as torch's
    assert tuple(tl.ones(3).resize_as_(tl.ones(2, 2)).shape) == (2, 2)
    for t in (tl.ones(3, requires_grad=True), tl.ones(3, requires_grad=True) * 1):
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            t.resize_(2)
    s = tl.ones(3)
    assert s.is_shared() is False
    assert s.share_memory_() is s and s.is_shared() and s.tolist() == [1.0, 1.0, 1.0]    # (test_multiprocessing)


@pytest.mark.cuda
def test_tensor_methods_on_cuda():
    z = tl.arange(6.0, device="cuda").reshape(2, 3)
    z.t_().unsqueeze_(0).squeeze_(0).transpose_(0, 1)
    np.testing.assert_array_equal(z.cpu().numpy(), np.arange(6.0).reshape(2, 3))
    assert z[1].storage_offset() == 3 and z.is_shared() and z.share_memory_() is z
    np.testing.assert_array_equal(z.sum_to_size(1, 3).cpu().numpy(), [[3.0, 5.0, 7.0]])
    r = tl.arange(6.0, device="cuda")
    assert r.resize_(2, 2).cpu().tolist() == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(TypeError, match="apply_ is only implemented on CPU tensors"):
        z.apply_(lambda v: v)
    w = tl.ones(3, device="cuda", requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.sum().item()))
    (w * 2).sum().backward()
    assert seen == [6.0]


def test_native_dropout_and_native_batch_norm():
    x = tl.ones(200, dtype=tl.float64, requires_grad=True)
    out, mask = tl.native_dropout(x, 0.25, True)
    assert out.grad_fn.name() == "NativeDropoutBackward0" and mask.dtype is tl.bool
    np.testing.assert_allclose(out.detach().numpy(), np.where(mask.numpy(), 1 / 0.75, 0.0))
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(mask.numpy(), 1 / 0.75, 0.0))
    out, mask = tl.native_dropout(x, 0.25, False)
    assert mask.numpy().all() and (out.detach().numpy() == 1).all()
    a = _t(4, 3, 5)
    rm, rv = tl.zeros(3, dtype=tl.float64), tl.ones(3, dtype=tl.float64)
    out, mean, invstd = tl.native_batch_norm(a, None, None, rm, rv, True, 0.1, 1e-5)
    np.testing.assert_allclose(mean.numpy(), a.numpy().mean((0, 2)))
    np.testing.assert_allclose(invstd.numpy(), 1 / np.sqrt(a.numpy().var((0, 2)) + 1e-5))
    np.testing.assert_allclose(rm.numpy(), 0.1 * a.numpy().mean((0, 2)))        # the running update
    out, mean, invstd = tl.native_batch_norm(a, None, None, rm, rv, False, 0.1, 1e-5)
    assert mean.numel() == 0 and invstd.numel() == 0


def test_legacy_default_tensor_type_and_small_aliases():
    """set_default_tensor_type (deprecated, torch's warning) sets the default dtype from a legacy type or its name;
    diagonal_scatter (values and gradient split as torch's), resolve_conj/resolve_neg, as_subclass, is_storage."""
    try:
        with pytest.warns(UserWarning, match="set_default_tensor_type\\(\\) is deprecated"):
            tl.set_default_tensor_type(tl.DoubleTensor)
        assert tl.get_default_dtype() == tl.float64 and tl.zeros(1).dtype == tl.float64
        with pytest.warns(UserWarning):
            tl.set_default_tensor_type("torch.FloatTensor")
        assert tl.get_default_dtype() == tl.float32
        with pytest.warns(UserWarning), pytest.raises(TypeError, match="only floating-point types"):
            tl.set_default_tensor_type(tl.LongTensor)
        with pytest.warns(UserWarning), pytest.raises(AttributeError, match="has no attribute 'Foo'"):
            tl.set_default_tensor_type("torch.Foo")
    finally:
        tl.set_default_dtype(tl.float32)
    out = tl.diagonal_scatter(tl.ones(3, 3), tl.arange(2.0), 1)
    np.testing.assert_array_equal(out.numpy(), [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    with pytest.raises(RuntimeError, match="src size = \\[3\\], slice size = \\[2\\]"):
        tl.diagonal_scatter(tl.ones(3, 3), tl.arange(3.0), 1)
    y, x = tl.ones(2, requires_grad=True), tl.zeros(2, 2, requires_grad=True)
    (tl.diagonal_scatter(x * 1, y * 3) * tl.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [3.0, 12.0])
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 2.0], [3.0, 0.0]])
    t = tl.ones(2)
    assert t.resolve_conj() is t and tl.resolve_neg(t) is t and not t.is_neg() and not tl.is_storage(t)

    class Sub(tl.Tensor):
        pass
    s = tl.ones(2, requires_grad=True).as_subclass(Sub)
    assert type(s) is Sub and s.requires_grad
    with pytest.raises(TypeError, match="must be a subclass of Tensor"):
        t.as_subclass(int)
