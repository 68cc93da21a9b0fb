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
    assert a is not None and a == b, (a, b)


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
