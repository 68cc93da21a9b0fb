"""torch's namespace functions and Tensor methods that tensorlib lacked, side by side with torch 2.13: the
print options (the repr under every option and profile), the determinism / anomaly / autocast / warning /
thread switches (their values and errors), the shape and dtype helpers, creation functions, windows and
integration, the torch-level aliases of nn.functional (their signatures, values and gradients) and the
in-place view methods."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _err(fn):
    """(exception type name, message) of a call, or None."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e).split(" (Triggered internally")[0]
    return None


def _same_error(call):
    a, b = _err(lambda: call(torch)), _err(lambda: call(tl))
    assert a is not None and b is not None and a == (b[0], b[1].replace("tensorlib.", "torch.")), (a, b)


# --- 1. global state ----------------------------------------------------------------------------------

_ARRAYS = [np.array([1.12345, 2.5, 3.0]), np.arange(10.0), np.arange(2000.0).reshape(40, 50),
           np.array([1e-5, 1.0, 3.0]), np.arange(30), np.random.RandomState(0).randn(4, 30),
           np.arange(25.0).reshape(5, 5), np.zeros((2, 0)), np.array([True, False]), np.array(3.5),
           np.array([np.nan, np.inf, 1.0]), np.arange(3000).reshape(10, 300), np.arange(3000.0).reshape(3, 10, 100),
           np.array([1, 2], np.int32), np.array([1.0, 2.0])]
_OPTIONS = [{}, {"precision": 2}, {"threshold": 5}, {"edgeitems": 1, "threshold": 5}, {"linewidth": 40},
            {"profile": "short"}, {"profile": "full"}, {"sci_mode": True}, {"sci_mode": False},
            {"precision": 6, "sci_mode": True}, {"edgeitems": 0, "threshold": 3}, {"linewidth": 20}]


def _repr(lib, a):
    return repr(lib.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a)).replace(lib.__name__ + ".", "")


@pytest.mark.parametrize("options", _OPTIONS, ids=str)
def test_repr_under_set_printoptions(options):
    try:
        torch.set_printoptions(**options)
        tl.set_printoptions(**options)
        assert tl.get_printoptions() == {k: getattr(torch._tensor_str.PRINT_OPTS, k)
                                         for k in ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")}
        for a in _ARRAYS:
            assert _repr(tl, a) == _repr(torch, a), a
        x, y = torch.ones(3, 40, requires_grad=True) * 2, tl.ones(3, 40, requires_grad=True) * 2
        assert repr(y).replace("tensorlib.", "") == repr(x).replace("torch.", "")
    finally:
        torch.set_printoptions(profile="default")
        tl.set_printoptions(profile="default")


def test_determinism_switches_against_torch():
    try:
        for lib in (torch, tl):
            lib.use_deterministic_algorithms(True, warn_only=True)
        assert (tl.are_deterministic_algorithms_enabled(), tl.is_deterministic_algorithms_warn_only_enabled(),
                tl.get_deterministic_debug_mode()) == (torch.are_deterministic_algorithms_enabled(),
                                                       torch.is_deterministic_algorithms_warn_only_enabled(),
                                                       torch.get_deterministic_debug_mode())
        for mode in ("error", "warn", "default", 2, 1, 0):
            torch.set_deterministic_debug_mode(mode)
            tl.set_deterministic_debug_mode(mode)
            assert (tl.get_deterministic_debug_mode(), tl.are_deterministic_algorithms_enabled(),
                    tl.is_deterministic_algorithms_warn_only_enabled()) == (
                torch.get_deterministic_debug_mode(), torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
        for bad in (3, "bad", 1.0):
            _same_error(lambda lib: lib.set_deterministic_debug_mode(bad))
        _same_error(lambda lib: lib.use_deterministic_algorithms(1))
    finally:
        torch.use_deterministic_algorithms(False)
        tl.use_deterministic_algorithms(False)


def test_anomaly_autocast_and_small_switches_against_torch():
    for mode, nan in ((True, False), (False, True)):
        torch.set_anomaly_enabled(mode, nan)
        tl.set_anomaly_enabled(mode, nan)
        assert (tl.is_anomaly_enabled(), tl.is_anomaly_check_nan_enabled()) == (torch.is_anomaly_enabled(),
                                                                               torch.is_anomaly_check_nan_enabled())
    assert tl.is_autocast_enabled() == torch.is_autocast_enabled() is False
    assert tl.get_autocast_dtype("cuda") == tl.float16 and torch.get_autocast_dtype("cuda") == torch.float16
    for lib in (torch, tl):
        with lib.autocast("cpu"):
            assert lib.is_autocast_enabled("cpu") and not lib.is_autocast_enabled()
        lib.set_autocast_enabled("cpu", True)
        assert lib.is_autocast_enabled("cpu")
        lib.set_autocast_enabled("cpu", False)
        assert not lib.is_autocast_enabled("cpu")
    for name, args in (("is_autocast_cpu_enabled", ()), ("get_autocast_cpu_dtype", ()),
                       ("get_autocast_gpu_dtype", ()), ("set_autocast_cpu_enabled", (False,))):
        msgs = []
        for lib in (torch, tl):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                getattr(lib, name)(*args)
            msgs.append([str(x.message).split(" (Triggered")[0] for x in w if x.category is DeprecationWarning])
        assert msgs[0] == msgs[1] and msgs[0], name
    _same_error(lambda lib: lib.get_autocast_dtype("foo"))
    _same_error(lambda lib: lib.is_autocast_enabled("foo"))
    _same_error(lambda lib: lib.set_autocast_dtype("cpu", 3))
    _same_error(lambda lib: lib.set_autocast_enabled("cpu", 1))
    assert tl.is_inference_mode_enabled() == torch.is_inference_mode_enabled()
    with tl.inference_mode(), torch.inference_mode():
        assert tl.is_inference_mode_enabled() == torch.is_inference_mode_enabled() is True
    for b in (True, False):
        torch.set_warn_always(b)
        tl.set_warn_always(b)
        assert tl.is_warn_always_enabled() == torch.is_warn_always_enabled() == b
    _same_error(lambda lib: lib.set_warn_always(1))
    _same_error(lambda lib: lib.set_flush_denormal(1))
    _same_error(lambda lib: lib.set_num_interop_threads(0))
    _same_error(lambda lib: lib.set_num_interop_threads(2.0))
    assert isinstance(tl.set_flush_denormal(False), bool)       # torch: True on x86; tensorlib: False (NumPy)
    for obj in (3, "s", warnings, np.ndarray):
        assert tl.typename(obj) == torch.typename(obj)
    assert tl.typename(tl.ones(2, dtype=tl.int64)).split(".")[1] == torch.typename(torch.ones(2).long()).split(".")[1]
    assert tl.typename(tl.nn.Linear(1, 1)).replace("tensorlib", "torch") == torch.typename(torch.nn.Linear(1, 1))


# --- 2. shapes, dtypes, factories, windows, integration ---------------------------------------------------

def test_broadcast_shapes_result_type_can_cast_against_torch():
    for shapes in (((2, 1), (3,)), (2, (3, 1)), ((0,), (1,)), ((2, 3), [1, 3]), (), ((1, 1, 1), (2,), (3, 1))):
        assert tuple(tl.broadcast_shapes(*shapes)) == tuple(torch.broadcast_shapes(*shapes))
    for shapes in (((2,), (3,)), ((-1,), (3,)), (2.0,)):
        _same_error(lambda lib: lib.broadcast_shapes(*shapes))
    vals = [2, 3.0, True, np.array(1.0), np.array([1, 2], np.int32), np.array(1.0, np.float64),
            np.array([1.0], np.float16), np.array([True]), np.array(3, np.int64)]

    def as_lib(lib, v):
        return lib.tensor(v) if isinstance(v, np.ndarray) else v
    for a in vals:
        for b in vals:
            assert str(tl.result_type(as_lib(tl, a), as_lib(tl, b))).split(".")[1] == \
                str(torch.result_type(as_lib(torch, a), as_lib(torch, b))).split(".")[1], (a, b)
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
    for f in names:
        for t in names:
            assert tl.can_cast(getattr(tl, f), getattr(tl, t)) == torch.can_cast(getattr(torch, f), getattr(torch, t))
    _same_error(lambda lib: lib.can_cast(1, lib.int32))


def test_unravel_index_empty_strided_scalar_tensor_against_torch():
    for idx, shape in (([4, 1], (2, 3)), (5, (2, 3)), ([6], (2, 3)), ([-1], (2, 3)), ([-7], (2, 3)), ([1], 4),
                       ([0], ()), ([[3, 7], [0, 11]], (3, 4))):
        a, b = torch.unravel_index(torch.tensor(idx), shape), tl.unravel_index(tl.tensor(idx), shape)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert y.dtype is tl.int64
            np.testing.assert_array_equal(y.numpy(), x.numpy())
    _same_error(lambda lib: lib.unravel_index(lib.tensor([1.0]), (2, 3)))
    _same_error(lambda lib: lib.unravel_index(lib.tensor([1]), (2, -3)))
    for size, stride in (((2, 3), (1, 2)), ((2, 3), (3, 1)), ((4,), (2,)), ((0, 3), (3, 1)), ((), ())):
        a, b = torch.empty_strided(size, stride), tl.empty_strided(size, stride)
        assert tuple(b.shape) == tuple(a.shape) and b.stride() == a.stride() and b.dtype is tl.float32
        assert b.is_contiguous() == a.is_contiguous()
    _same_error(lambda lib: lib.empty_strided((2, 3), (1,)))
    _same_error(lambda lib: lib.empty_strided((2,), (-1,)))
    for s, kw in ((3, {}), (True, {}), (2.5, {}), (3, {"dtype": "int64"})):
        kw2 = {k: getattr(torch, v) for k, v in kw.items()}
        a, b = torch.scalar_tensor(s, **kw2), tl.scalar_tensor(s, **{k: getattr(tl, v) for k, v in kw.items()})
        assert b.ndim == 0 and b.item() == a.item() and str(b.dtype).split(".")[1] == str(a.dtype).split(".")[1]


def _same(a, b, rtol=0.0, atol=0.0):
    assert str(b.dtype).split(".")[1] == str(a.dtype).split(".")[1], (a.dtype, b.dtype)
    assert tuple(b.shape) == tuple(a.shape)
    np.testing.assert_allclose(b.detach().numpy().astype(np.float64), a.detach().numpy().astype(np.float64),
                               rtol=rtol, atol=atol)


def test_logspace_range_rsub_fill_against_torch():
    for args, kw in (((0, 2, 3), {}), ((0, 2, 3), {"base": 2}), ((-3, 4, 9), {}), ((0, 2, 5), {"dtype": "int64"}),
                     ((1.5, -2.5, 7), {"base": 3.0, "dtype": "float64"}), ((2, 2, 1), {}), ((0, 1, 0), {}),
                     ((0, 20, 11), {"base": 1.7}), ((-1, 3, 1001), {"base": 1.01})):
        tk = {k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()}
        lk = {k: getattr(tl, v) if k == "dtype" else v for k, v in kw.items()}
        _same(torch.logspace(*args, **tk), tl.logspace(*args, **lk), rtol=1e-6)
    for args, kw in (((1, 4), {}), ((1, 4, 0.5), {}), ((1, 4), {"dtype": "int64"}), ((0, 1, 0.1), {}),
                     ((3, -2, -0.7), {"dtype": "float64"})):
        tk = {k: getattr(torch, v) for k, v in kw.items()}
        lk = {k: getattr(tl, v) for k, v in kw.items()}
        with warnings.catch_warnings(record=True) as w1:
            warnings.simplefilter("always")
            a = torch.range(*args, **tk)
        with warnings.catch_warnings(record=True) as w2:
            warnings.simplefilter("always")
            b = tl.range(*args, **lk)
        assert [str(x.message) for x in w2] == [str(x.message) for x in w1]
        _same(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same_error(lambda lib: lib.range(0, 1, 0))
        _same_error(lambda lib: lib.range(4, 1))
        _same_error(lambda lib: lib.range(5))
    x = np.random.RandomState(0).randn(3, 4)
    for other in (3, 2.5, np.random.RandomState(1).randn(4)):
        for alpha in (1, 2):
            ta, la = torch.tensor(x, requires_grad=True), tl.tensor(x, requires_grad=True)
            to = torch.tensor(other, requires_grad=True) if isinstance(other, np.ndarray) else other
            lo = tl.tensor(other, requires_grad=True) if isinstance(other, np.ndarray) else other
            a, b = torch.rsub(ta, to, alpha=alpha), tl.rsub(la, lo, alpha=alpha)
            _same(a, b)
            assert b.grad_fn.name() == a.grad_fn.name()
            a.sum().backward()
            b.sum().backward()
            _same(ta.grad, la.grad)
            if isinstance(other, np.ndarray):
                _same(to.grad, lo.grad)
    ta, la = torch.ones(2, 3, requires_grad=True), tl.ones(2, 3, requires_grad=True)
    a, b = torch.fill(ta, 4.5), tl.fill(la, 4.5)
    _same(a, b)
    assert b.grad_fn.name() == a.grad_fn.name()
    _same(torch.fill(torch.ones(2, dtype=torch.int32), 7), tl.fill(tl.ones(2, dtype=tl.int32), 7))
    tv, lv = torch.tensor(2.0, requires_grad=True), tl.tensor(2.0, requires_grad=True)
    torch.fill(torch.ones(3), tv).sum().backward()
    tl.fill(tl.ones(3), lv).sum().backward()
    assert lv.grad.item() == tv.grad.item() == 3.0
    _same_error(lambda lib: lib.fill(lib.ones(2), lib.ones(2)))


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window",
                                  "kaiser_window"])
def test_windows_against_torch(name):
    for n in (0, 1, 2, 5, 8, 33, 256):
        for periodic in (True, False):
            for dt in ("float32", "float64"):
                a = getattr(torch, name)(n, periodic, dtype=getattr(torch, dt))
                b = getattr(tl, name)(n, periodic, dtype=getattr(tl, dt))
                _same(a, b, atol=2e-6 if dt == "float32" else 1e-14)
    _same(getattr(torch, name)(10), getattr(tl, name)(10), atol=2e-6)
    _same_error(lambda lib: getattr(lib, name)(5, dtype=lib.int64))
    _same_error(lambda lib: getattr(lib, name)(-1))
    if name == "kaiser_window":
        _same(torch.kaiser_window(9, False, 5.0), tl.kaiser_window(9, False, 5.0), atol=2e-6)
    if name == "hamming_window":
        _same(torch.hamming_window(9, True, 0.6, 0.3), tl.hamming_window(9, True, 0.6, 0.3), atol=2e-6)


def test_trapezoid_and_gradient_against_torch():
    rs = np.random.RandomState(0)
    y = rs.randn(4, 6)
    xs = np.sort(rs.rand(6))
    for fn in ("trapezoid", "trapz", "cumulative_trapezoid"):
        for kw in ({}, {"dim": 0}, {"dx": 0.5}, {"dx": 2, "dim": 0}):
            if fn == "trapz" and "dx" in kw:
                a, b = torch.trapz(torch.tensor(y), dx=kw["dx"], dim=kw.get("dim", -1)), \
                    tl.trapz(tl.tensor(y), dx=kw["dx"], dim=kw.get("dim", -1))
            else:
                a, b = getattr(torch, fn)(torch.tensor(y), **kw), getattr(tl, fn)(tl.tensor(y), **kw)
            _same(a, b, rtol=1e-13, atol=1e-13)
        ty, ly = torch.tensor(y, requires_grad=True), tl.tensor(y, requires_grad=True)
        a, b = getattr(torch, fn)(ty, torch.tensor(xs)), getattr(tl, fn)(ly, tl.tensor(xs))
        _same(a, b, rtol=1e-13, atol=1e-13)
        a.sum().backward()
        b.sum().backward()
        _same(ty.grad, ly.grad, rtol=1e-13, atol=1e-13)
        x2 = np.sort(rs.rand(4, 6))
        _same(getattr(torch, fn)(torch.tensor(y), torch.tensor(x2)), getattr(tl, fn)(tl.tensor(y), tl.tensor(x2)),
              rtol=1e-13, atol=1e-13)
        y3 = rs.randn(2, 4, 6)         # a 2-D x for a 3-D y: padded in front
        _same(getattr(torch, fn)(torch.tensor(y3), torch.tensor(x2)), getattr(tl, fn)(tl.tensor(y3), tl.tensor(x2)),
              rtol=1e-13, atol=1e-13)
        _same_error(lambda lib: getattr(lib, fn)(lib.ones(3), lib.ones(2)))
        _same_error(lambda lib: getattr(lib, fn)(lib.ones(3, dtype=lib.bool)))
    _same(torch.trapezoid(torch.ones(0, 2), dim=0), tl.trapezoid(tl.ones(0, 2), dim=0))
    _same(torch.trapezoid(torch.arange(5)), tl.trapezoid(tl.arange(5)))
    f = rs.randn(5, 7)
    coords = (torch.tensor(np.sort(rs.rand(5))), torch.tensor(np.sort(rs.rand(7))))
    for kw in ({}, {"spacing": 2.0}, {"spacing": [0.5, 3.0]}, {"dim": 1}, {"dim": [0]}, {"spacing": 2.0, "dim": 1},
               {"edge_order": 2}, {"spacing": [0.5, 3.0], "edge_order": 2}, {"spacing": coords},
               {"spacing": coords, "edge_order": 2}, {"spacing": (coords[1],), "dim": 1}):
        lkw = dict(kw)
        if "spacing" in kw and isinstance(kw["spacing"], tuple):
            lkw["spacing"] = tuple(tl.tensor(c.numpy()) for c in kw["spacing"])
        a, b = torch.gradient(torch.tensor(f), **kw), tl.gradient(tl.tensor(f), **lkw)
        assert len(a) == len(b)
        for x, z in zip(a, b):
            _same(x, z, rtol=1e-12, atol=1e-12)
    _same(torch.gradient(torch.arange(4))[0], tl.gradient(tl.arange(4))[0])
    _same(torch.gradient(torch.arange(6.0).float() ** 2)[0], tl.gradient(tl.arange(6.0).float() ** 2)[0])
    _same_error(lambda lib: lib.gradient(lib.ones(1)))
    _same_error(lambda lib: lib.gradient(lib.ones(3), edge_order=3))
    _same_error(lambda lib: lib.gradient(lib.ones(3), spacing=[1.0, 2.0]))


# --- 3. the torch-level forms of nn.functional -------------------------------------------------------------

def _r(*shape, seed=0, positive=False):
    a = np.random.RandomState(seed + sum(shape)).randn(*shape)
    return np.abs(a) + 0.1 if positive else a


def _cases():
    """name -> (arrays, extra args after them (the same for both libraries), float arrays that require grad).
    An array given as ("int", values) is an int64 tensor."""
    x4, w4 = _r(2, 3, 6, 6), _r(4, 3, 3, 3, seed=1)
    x3, w3 = _r(2, 3, 9), _r(4, 3, 3, seed=2)
    x5, w5 = _r(1, 2, 4, 4, 4), _r(3, 2, 2, 2, 2, seed=3)
    y = np.array([1.0, -1.0, 1.0, -1.0])
    return {
        "conv1d": ([x3, w3, _r(4)], (2, 1)),
        "conv2d": ([x4, w4, _r(4)], (1, 1, 1, 1)),
        "conv3d": ([x5, w5], ()),
        "conv_transpose1d": ([x3, _r(3, 2, 3, seed=4)], ()),
        "conv_transpose2d": ([x4, _r(3, 2, 3, 3, seed=5), _r(2)], (2, 1, 1)),
        "conv_transpose3d": ([x5, _r(2, 3, 2, 2, 2, seed=6)], ()),
        "layer_norm": ([x3, _r(9), _r(9, seed=7)], None),      # (normalized_shape given below)
        "group_norm": ([x4, _r(3), _r(3, seed=8)], None),
        "batch_norm": ([x4, _r(3), _r(3, seed=9), _r(3, seed=10), _r(3, seed=11, positive=True)], None),
        "instance_norm": ([x4, _r(3), _r(3, seed=12)], None),
        "rms_norm": ([x3, _r(9)], None),
        "embedding": ([_r(7, 3), ("int", [[0, 2, 6], [6, 1, 2]])], (2,)),
        "max_pool1d": ([x3], (3, 2)),
        "max_pool2d": ([x4], (2,)),
        "max_pool3d": ([x5], (2, 1, 1)),
        "avg_pool1d": ([x3], (3, 2, 1, False, False)),
        "adaptive_avg_pool1d": ([x3], (4,)),
        "adaptive_max_pool1d": ([x3], (4,)),
        "pixel_shuffle": ([_r(1, 8, 3, 3)], (2,)),
        "pixel_unshuffle": ([_r(1, 2, 4, 4)], (2,)),
        "channel_shuffle": ([_r(1, 6, 2, 2)], (3,)),
        "cosine_similarity": ([_r(4, 5), _r(4, 5, seed=13)], (1, 1e-8)),
        "pairwise_distance": ([_r(4, 5), _r(4, 5, seed=14)], (3.0, 1e-6, True)),
        "pdist": ([_r(5, 3)], (1.5,)),
        "selu": ([x3], ()),
        "celu": ([x3], (0.7,)),
        "threshold": ([x3], (0.1, -2.0)),
        "rrelu": ([x3], (0.1, 0.3, False)),
        "bilinear": ([_r(4, 3), _r(4, 5, seed=15), _r(2, 3, 5, seed=16), _r(2)], ()),
        "kl_div": ([_r(3, 4), _r(3, 4, seed=17, positive=True)], (2,)),
        "binary_cross_entropy_with_logits": ([_r(3, 4), np.random.RandomState(3).rand(3, 4), _r(4, positive=True),
                                              _r(4, seed=18, positive=True)], (0,)),
        "hinge_embedding_loss": ([_r(4), y], (0.5, 2)),
        "margin_ranking_loss": ([_r(4), _r(4, seed=19), y], (0.2, 1)),
        "cosine_embedding_loss": ([_r(4, 5), _r(4, 5, seed=20), y], (0.1, 0)),
        "triplet_margin_loss": ([_r(4, 5), _r(4, 5, seed=21), _r(4, 5, seed=22)], (1.0, 2.0, 1e-6, True, 1)),
        "poisson_nll_loss": ([_r(3, 4), _r(3, 4, seed=23, positive=True)], (True, False, 1e-8, 1)),
        "constant_pad_nd": ([x3], ([1, 2, 0, 1], 0.5)),
        "dropout": ([x3], (0.3, False)),
        "feature_dropout": ([x3], (0.3, False)),
        "alpha_dropout": ([x3], (0.3, False)),
        "feature_alpha_dropout": ([x3], (0.3, False)),
    }


_EXTRA = {        # torch-level arguments between and after the arrays, where the order is not "arrays first"
    "layer_norm": lambda a: (a[0], (9,), a[1], a[2], 1e-5, True),
    "group_norm": lambda a: (a[0], 3, a[1], a[2], 1e-5, True),
    "batch_norm": lambda a: (a[0], a[1], a[2], a[3], a[4], False, 0.1, 1e-5, True),
    "instance_norm": lambda a: (a[0], a[1], a[2], None, None, True, 0.1, 1e-5, True),
    "rms_norm": lambda a: (a[0], [9], a[1], 1e-6),
}


_GRAD_ARGS = {"batch_norm": (0, 1, 2), "binary_cross_entropy_with_logits": (0, 1)}   # torch's differentiable ones
_F_NAMES = {"dropout": None, "feature_dropout": None, "alpha_dropout": None, "feature_alpha_dropout": None}


def _f_call(name, ts, extra):
    """The same computation through tensorlib.nn.functional (its signature), for the node-name identity."""
    F = tl.nn.functional
    if name == "embedding":
        return F.embedding(ts[1], ts[0], padding_idx=extra[0])
    if name in _EXTRA:
        return {"layer_norm": lambda: F.layer_norm(ts[0], (9,), ts[1], ts[2]),
                "group_norm": lambda: F.group_norm(ts[0], 3, ts[1], ts[2]),
                "batch_norm": lambda: F.batch_norm(ts[0], ts[3], ts[4], ts[1], ts[2], False),
                "instance_norm": lambda: F.instance_norm(ts[0], None, None, ts[1], ts[2]),
                "rms_norm": lambda: F.rms_norm(ts[0], [9], ts[1], 1e-6)}[name]()
    if name == "constant_pad_nd":
        return F.pad(ts[0], extra[0], value=extra[1])
    if name in ("kl_div", "binary_cross_entropy_with_logits") or name.endswith("_loss") or name in _F_NAMES:
        return None
    out = getattr(F, name)(*ts, *extra)
    return out[0] if isinstance(out, tuple) else out


def _as(lib, a, grad):
    if isinstance(a, tuple):
        return lib.tensor(a[1], dtype=lib.int64)
    return lib.tensor(a, dtype=lib.float64, requires_grad=grad)


@pytest.mark.parametrize("name", sorted(_cases()))
def test_torch_level_functional_against_torch(name):
    arrays, extra = _cases()[name]
    results, grads, nodes = [], [], []
    which = _GRAD_ARGS.get(name, range(len(arrays)))
    for lib in (torch, tl):
        ts = [_as(lib, a, i in which) for i, a in enumerate(arrays)]
        args = _EXTRA[name](ts) if name in _EXTRA else (*ts, *extra)
        out = getattr(lib, name)(*args)
        outs = out if isinstance(out, tuple) else (out,)
        results.append(outs)
        nodes.append(outs[0].grad_fn.name() if outs[0].grad_fn is not None else None)
        outs[0].sum().backward() if outs[0].requires_grad else None
        grads.append([t.grad for t in ts if t.dtype == lib.float64])
    for a, b in zip(*results):
        _same(a, b, rtol=1e-10, atol=1e-10)
    for a, b in zip(*grads):
        assert (a is None) == (b is None), name
        if a is not None:       # (torch's celu backward takes alpha as a float32: 2e-8 apart)
            _same(a, b, rtol=1e-7 if name == "celu" else 1e-9, atol=1e-9)
    ref = _f_call(name, [_as(tl, a, i in which) for i, a in enumerate(arrays)], extra)
    if ref is not None:     # the torch-level form runs nn.functional's ops: the same autograd node
        assert nodes[1] == ref.grad_fn.name(), (name, nodes[1], ref.grad_fn.name())


def test_torch_level_inplace_and_random_forms_against_torch():
    for name, args in (("selu_", ()), ("celu_", (0.5,)), ("threshold_", (0.0, 9.0)), ("rrelu_", (0.1, 0.3)),
                       ("dropout_", (0.3, False)), ("alpha_dropout_", (0.3, False)),
                       ("feature_dropout_", (0.3, False)), ("feature_alpha_dropout_", (0.3, False))):
        a, b = torch.tensor(_r(2, 3, 4)), tl.tensor(_r(2, 3, 4))
        ra, rb = getattr(torch, name)(a, *args), getattr(tl, name)(b, *args)
        assert ra is a and rb is b, name
        _same(a, b, rtol=1e-12, atol=1e-12)
    x = np.ones((4, 8, 5))
    for name in ("dropout", "feature_dropout"):
        b = getattr(tl, name)(tl.tensor(x), 0.5, True).numpy()
        assert set(np.unique(b)) <= {0.0, 2.0}
        if name == "feature_dropout":       # whole channels: constant over the last dim
            assert (b == b[..., :1]).all()
    assert tl.dropout(tl.tensor(x), 0.5, False).numpy().tolist() == x.tolist()
    _same(torch.rrelu(torch.tensor(_r(3, 4)), 0.1, 0.3, False), tl.rrelu(tl.tensor(_r(3, 4)), 0.1, 0.3, False))
    g = tl.Generator().manual_seed(0)
    r = tl.rrelu(tl.tensor(-np.ones(1000)), 0.1, 0.3, True, g).numpy()
    assert (r <= -0.1 + 1e-12).all() and (r >= -0.3 - 1e-12).all()


def test_torch_level_embedding_bag_tuple_against_torch():
    idx, off = [1, 2, 4, 5, 4, 3, 2, 9], [0, 4]
    kws = ({"mode": 0}, {"mode": 1}, {"mode": 2}, {"mode": 1, "padding_idx": 2},
           {"mode": 0, "include_last_offset": True, "offsets": [0, 4, 8]},
           {"mode": 1, "include_last_offset": True, "offsets": [0, 3, 8]}, {"mode": 2, "offsets": [0, 4, 4]},
           {"mode": 1, "offsets": [0, 0, 5]}, {"mode": 0, "padding_idx": 4})
    for w, kw in itertools.product((_r(10, 3), _r(10, 3).astype(np.float32)), kws):     # float32: the fast path
        kw = dict(kw)
        o = kw.pop("offsets", off)
        res = []
        for lib in (torch, tl):
            mode = kw["mode"]
            args = (lib.tensor(w), lib.tensor(idx), lib.tensor(o), False, mode, False, None,
                    kw.get("include_last_offset", False))
            res.append(lib.embedding_bag(*args, kw["padding_idx"]) if "padding_idx" in kw else
                       lib.embedding_bag(*args))
        assert len(res[1]) == 4
        for a, b in zip(*res):
            _same(a, b, rtol=1e-12, atol=1e-12)


def test_torch_level_ctc_loss_and_native_ops_against_torch():
    rs = np.random.RandomState(0)
    lp = np.log(np.exp(rs.randn(6, 2, 4)) / np.exp(rs.randn(6, 2, 4)).sum(-1, keepdims=True))
    tg, il, tlen = [[1, 2, 2], [3, 1, 0]], [6, 5], [3, 2]
    for red in (0, 1, 2):
        a = torch.ctc_loss(torch.tensor(lp), torch.tensor(tg), il, tlen, 0, red)
        b = tl.ctc_loss(tl.tensor(lp), tl.tensor(tg), il, tlen, 0, red)
        _same(a, b, rtol=1e-9, atol=1e-9)
    x = _r(4, 3, 5)
    for training in (True, False):
        res = []
        for lib in (torch, tl):
            rm, rv = lib.zeros(3, dtype=lib.float64), lib.ones(3, dtype=lib.float64)
            t = lib.tensor(x, requires_grad=True)
            out = lib.native_batch_norm(t, lib.ones(3, dtype=lib.float64), None, rm, rv, training, 0.1, 1e-5)
            out[0].sum().backward()
            res.append((*out, rm, rv, t.grad))
        for u, v in zip(*res):
            _same(u, v, rtol=1e-10, atol=1e-12)
    for train in (True, False, None):
        a, b = torch.native_dropout(torch.ones(4, 5), 0.4, train), tl.native_dropout(tl.ones(4, 5), 0.4, train)
        assert b[1].dtype is tl.bool and tuple(b[1].shape) == tuple(a[1].shape)
        np.testing.assert_allclose(b[0].numpy(), np.where(b[1].numpy(), 1 / 0.6 if train is not False else 1.0, 0))
        if train is False:
            _same(a[0], b[0])
            _same(a[1], b[1])
    x = _r(2, 3, 4)
    a = torch.native_layer_norm(torch.tensor(x), [4], torch.ones(4, dtype=torch.float64), None, 1e-5)
    b = tl.native_layer_norm(tl.tensor(x), [4], tl.ones(4, dtype=tl.float64), None, 1e-5)
    for u, v in zip(a, b):
        _same(u, v, rtol=1e-10, atol=1e-12)


_TORCH_LEVEL = sorted(set(_cases()) | {"selu_", "celu_", "threshold_", "rrelu_", "dropout_", "alpha_dropout_",
                                       "feature_dropout_", "feature_alpha_dropout_", "embedding_bag", "ctc_loss",
                                       "native_layer_norm", "native_batch_norm", "native_dropout"})


@pytest.mark.parametrize("name", _TORCH_LEVEL)
def test_torch_level_signatures_match_atens(name):
    """The parameters in ATen's order with its names (`self` is `input` from Python) and defaults."""
    import inspect
    schema = max((s for s in torch._C._jit_get_schemas_for_operator("aten::" + name) if "out" not in s.overload_name),
                 key=lambda s: len(s.arguments))
    want = [("input" if a.name == "self" else a.name, a.default_value) for a in schema.arguments]
    params = list(inspect.signature(getattr(tl, name)).parameters.values())
    got = [(p.name, None if p.default is inspect.Parameter.empty else p.default) for p in params]
    assert [n for n, _ in got] == [n for n, _ in want]
    for (n, d), (_, w) in zip(got, want):
        if n == "reduction" and w == 1:
            # the schema says Mean, but torch 2.13's Python binding of a torch-level loss gives no reduction when
            # none is passed (torch.kl_div(x, y) is the elementwise loss: test_nn_against_torch checks the values)
            w = 0
        if w is not None and not isinstance(w, (list, tuple)):
            assert d == pytest.approx(w), n


# --- 4. Tensor methods ------------------------------------------------------------------------------------

_VIEW_CHANGES = [("squeeze_", ()), ("squeeze_", (1,)), ("squeeze_", ((1, 2),)), ("unsqueeze_", (-1,)),
                 ("unsqueeze_", (0,)), ("transpose_", (0, 2)), ("swapaxes_", (0, 1)), ("swapdims_", (2, 0))]


@pytest.mark.parametrize("name,args", _VIEW_CHANGES, ids=str)
def test_inplace_view_changes_against_torch(name, args):
    x = _r(2, 1, 1)
    res = []
    for lib in (torch, tl):
        leaf = lib.tensor(x, requires_grad=True)
        y = leaf * lib.tensor(np.arange(2.0).reshape(2, 1, 1))
        out = getattr(y, name)(*args)
        assert out is y
        (y * lib.tensor(_r(*tuple(y.shape), seed=5))).sum().backward()
        strides = tuple(st for st, n in zip(y.stride(), y.shape) if n > 1)     # (a size-1 dim's stride: NumPy 0)
        res.append((tuple(y.shape), strides, y.grad_fn.name(), y._version if lib is torch else
                    y._version_counter, leaf.grad.numpy().tolist()))
    assert res[1] == res[0]
    _same_error(lambda lib: getattr(lib.tensor(x, requires_grad=True), name)(*args))


def test_t_and_views_of_views_against_torch():
    for lib in (torch, tl):
        a = lib.arange(6.0).reshape(2, 3)
        v = a[1]
        v.unsqueeze_(0)
        assert tuple(v.shape) == (1, 3) and v.storage_offset() == 3
        b = lib.ones(2, 3)
        b.t_()
        assert tuple(b.shape) == (3, 2) and b.stride() == (1, 3)
    _same_error(lambda lib: lib.ones(2, 2, 2).t_())
    _same_error(lambda lib: lib.ones(3).unsqueeze_(3))
    _same_error(lambda lib: lib.ones(3).squeeze_(5))


def test_sum_to_size_storage_offset_output_nr_against_torch():
    x = _r(2, 3, 4)
    for size in ((1, 3, 4), (3, 1), (4,), (1, 1, 1), (2, 3, 4), (3, 4)):
        ta, la = torch.tensor(x, requires_grad=True), tl.tensor(x, requires_grad=True)
        a, b = ta.sum_to_size(*size), la.sum_to_size(*size)
        _same(a, b, rtol=1e-12, atol=1e-12)
        if a is not ta:
            assert b.grad_fn.name() == a.grad_fn.name(), size
    for size in ((4, 3), (2, 2, 3, 4), (5,)):
        _same_error(lambda lib: lib.tensor(x).sum_to_size(*size))
    _same_error(lambda lib: lib.tensor(x).sum_to_size())
    for lib_views in ((lambda t: t[1]), (lambda t: t[:, 1:]), (lambda t: t.transpose(0, 2)[1]),
                      (lambda t: t[1, 2, 3:]), (lambda t: t.reshape(6, 4)[2:].t()[1])):
        assert lib_views(tl.tensor(x)).storage_offset() == lib_views(torch.tensor(x)).storage_offset()
    ty, ly = torch.ones(3, 2, requires_grad=True) * 2, tl.ones(3, 2, requires_grad=True) * 2
    assert [t.output_nr for t in ly.unbind(0)] == [t.output_nr for t in ty.unbind(0)]
    assert [t.output_nr for t in ly.split(1, 1)] == [t.output_nr for t in ty.split(1, 1)]
    a, b = torch.ones(2).new_empty_strided((2, 3), (3, 1)), tl.ones(2).new_empty_strided((2, 3), (3, 1))
    assert b.stride() == a.stride() and tuple(b.shape) == tuple(a.shape)


def test_post_accumulate_grad_hook_against_torch():
    logs = []
    for lib in (torch, tl):
        w = lib.ones(3, requires_grad=True)
        log = []
        w.register_hook(lambda g, log=log: log.append(("pre", g.sum().item())))
        h = w.register_post_accumulate_grad_hook(lambda p, log=log: log.append(("post", p.grad.sum().item())))
        (w * 2).sum().backward()
        (w * w).sum().backward()
        h.remove()
        (w * 1).sum().backward()
        logs.append(log)
    assert logs[1] == logs[0]
    _same_error(lambda lib: (lib.ones(2, requires_grad=True) * 1).register_post_accumulate_grad_hook(lambda p: None))
    _same_error(lambda lib: lib.ones(2).register_post_accumulate_grad_hook(lambda p: None))


def test_apply_map_resize_against_torch():
    for lib_fn in ((lambda lib: lib.arange(5.0).apply_(lambda v: v * v - 1)),
                   (lambda lib: lib.arange(5).apply_(lambda v: v * 2.7)),
                   (lambda lib: lib.ones(2, 3).map_(lib.tensor([1.0, 2.0, 3.0]), lambda a, b: a - b * 2)),
                   (lambda lib: lib.arange(6.0).resize_(2, 2)),
                   (lambda lib: lib.arange(6.0).resize_(6)),
                   (lambda lib: lib.arange(6.0).reshape(2, 3).t().resize_(6)),
                   (lambda lib: lib.arange(6.0)[2:].resize_(2, 2)),
                   (lambda lib: lib.arange(6.0).resize_as_(lib.ones(3, 2)))):
        a, b = lib_fn(torch), lib_fn(tl)
        _same(a, b)
    for call in ((lambda lib: lib.ones(3, requires_grad=True).apply_(lambda v: v)),
                 (lambda lib: lib.ones(3).map_(lib.ones(2), lambda a, b: a)),
                 (lambda lib: lib.ones(3).map_(lib.ones(3, dtype=lib.int64), lambda a, b: a)),
                 (lambda lib: lib.ones(3).apply_(lambda v: "a")),
                 (lambda lib: lib.ones(3, requires_grad=True).resize_(2)),
                 (lambda lib: (lib.ones(3, requires_grad=True) * 1).resize_(2))):
        a, b = _err(lambda: call(torch)), _err(lambda: call(tl))
        assert a is not None and b is not None and a[0] == b[0], (a, b)
    big = tl.arange(4.0)
    big.resize_(3, 3)
    assert big.reshape(-1)[:4].tolist() == [0.0, 1.0, 2.0, 3.0]       # the old storage first, as torch's
    assert tl.ones(2).is_shared() == torch.ones(2).is_shared() is False
