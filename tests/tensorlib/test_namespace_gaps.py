"""torch's namespace functions and Tensor methods that programs call (print options, determinism, anomaly,
autocast and thread switches, shape and dtype helpers, windows, integration, the torch-level aliases of
nn.functional, the in-place view methods): values against NumPy references and identities, without torch
(devtools/torch_compat/test_namespace_against_torch.py compares them with torch side by side)."""
from __future__ import annotations

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
