"""torch's namespace functions and Tensor methods that tensorlib lacked, side by side with torch 2.13: the
print options (the repr under every option and profile), the determinism / anomaly / autocast / warning /
thread switches (their values and errors), the shape and dtype helpers, creation functions, windows and
integration, the torch-level aliases of nn.functional (their signatures, values and gradients) and the
in-place view methods."""
from __future__ import annotations

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
