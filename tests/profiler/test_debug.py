"""Debugging instruments: each plants a defect and asserts that the instrument names it."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from profiler.debug import NanInfError, SyncError, grad_monitor, nan_watch, sync_watch


def test_nan_watch_names_forward_op_shapes_and_line():
    x = tl.tensor([1.0, 0.0, 2.0])
    with pytest.raises(NanInfError) as ei:
        with nan_watch():
            y = x * 2
            z = (y * 0).log()   # log(0) = -inf  <- the planted defect
            z.sum()
    f = ei.value.finding
    assert (f.op, f.phase, f.what, f.output_shape) == ("log", "forward", "Inf", (3,))
    assert f.input_shapes == [(3,)]
    assert f.location[0] == __file__ and "log()" in f.location[2]
    assert "op 'log' (forward" in str(ei.value) and "test_debug.py:" in str(ei.value)
    assert not tl.dispatch.full_path_active()      # the hook is gone after the exception


def test_nan_watch_finds_nan_made_in_backward():
    x = tl.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt()                      # d/dx sqrt(0) = inf; times a zero gradient -> nan in backward
    loss = (y * tl.tensor([0.0, 1.0])).sum()
    with nan_watch(mode="warn") as w:
        with pytest.warns(RuntimeWarning, match=r"nan_watch: op '.*' \(backward of SqrtBackward0"):
            loss.backward()
    assert w.findings[0].phase == "backward" and w.findings[0].node == "SqrtBackward0"
    assert w.findings[0].forward_location is None           # its forward ran before the watch
    assert "forward op ran before nan_watch started" in w.findings[0].message()


def test_nan_watch_backward_nan_names_the_forward_line():
    """As torch's detect_anomaly: the forward op behind the failing node, and the user's line that ran it."""
    x = tl.tensor([0.0, 4.0], requires_grad=True)
    with pytest.raises(NanInfError) as ei:
        with nan_watch():
            y = x.sqrt()              # <- the forward line to be named
            (y * tl.tensor([0.0, 1.0])).sum().backward()
    f = ei.value.finding
    assert f.phase == "backward" and f.node == "SqrtBackward0" and f.forward_op == "sqrt"
    assert f.forward_location[0] == __file__ and f.forward_location[2].startswith("y = x.sqrt()")
    assert "backward()" in f.location[2]
    assert "the node's forward op 'sqrt'" in str(ei.value) and "y = x.sqrt()" in str(ei.value)


def test_nan_watch_warn_mode_reports_first_only():
    x = tl.tensor([-1.0])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with nan_watch(mode="warn") as w:
            a = x.sqrt()          # first NaN
            b = a + 1             # consequences
            b * 2
    msgs = [str(r.message) for r in rec if "nan_watch" in str(r.message)]
    assert len(msgs) == 1 and "op 'sqrt'" in msgs[0]
    assert [f.op for f in w.findings] == ["sqrt", "add", "mul"]


def test_nan_watch_clean_run_finds_nothing():
    with nan_watch() as w:
        (tl.randn(4, 4) @ tl.randn(4, 4)).tanh().sum()
    assert w.findings == []


class FakeDeviceArray(np.ndarray):
    """Stands in for a CuPy array: any array type other than numpy.ndarray counts as on a GPU."""

    def get(self):
        return np.asarray(self)

    @property
    def device(self):
        import types
        return types.SimpleNamespace(id=0)


def _fake_cuda(t):
    t._data = np.asarray(t._data).view(FakeDeviceArray)
    return t


def test_sync_watch_reports_item_in_loop_with_line():
    x = _fake_cuda(tl.tensor([1.5]))
    with sync_watch(mode="count") as w:
        total = 0.0
        for _ in range(3):
            total += x.item()          # the planted defect: a sync per iteration
    assert w.count == 3 and {e.what for e in w.events} == {"item"}
    assert w.events[0].location[0] == __file__ and "x.item()" in w.events[0].location[2]


def test_sync_watch_kinds_and_modes():
    x = _fake_cuda(tl.tensor([1.0, 2.0]))
    one = _fake_cuda(tl.tensor([1.0]))
    with sync_watch(mode="count") as w:
        x.tolist()
        bool(one)
        repr(x)
    assert [e.what for e in w.events] == ["tolist", "bool", "print"]
    with pytest.raises(SyncError, match=r"sync_watch: item\(\) on a CUDA tensor of shape \(1,\) forces"):
        with sync_watch(mode="error"):
            one.item()
    with pytest.warns(RuntimeWarning, match="forces a host-device synchronisation"):
        with sync_watch():
            one.item()
    with sync_watch(mode="count") as w:
        tl.tensor([1.0]).item()          # CPU tensors never synchronise
    assert w.count == 0


def test_grad_monitor_flags_exploding_and_vanishing():
    w_big = tl.tensor([[1e4, 1e4]], requires_grad=True)
    w_small = tl.tensor([[1e-10, 1e-10]], requires_grad=True)
    params = [("big", w_big), ("small", w_small)]

    class Model:
        def named_parameters(self):
            return iter(params)

    with grad_monitor(Model(), explode=100, vanish=1e-6) as gm:
        for _ in range(2):
            w_big.grad = w_small.grad = None
            x = tl.ones(2, 1)
            ((w_big @ x) ** 2 + (w_small @ x) * 1e-9).sum().backward()
    flags = {(r.step, r.name): r.flag for r in gm.records}
    assert flags[(1, "big")] == "exploding" and flags[(1, "small")] == "vanishing"
    assert gm.step == 2 and len(gm.latest()) == 2
    table = gm.table()
    assert "big" in table and "exploding" in table and "vanishing" in table
    ev = gm.chrome_events()
    assert ev[0]["ph"] == "C" and ev[0]["name"] == "grad_norm/big" and ev[0]["args"]["norm"] > 100


def test_grad_monitor_counters_land_in_the_profilers_trace(tmp_path):
    import json

    import profiler
    w = tl.randn(3, 3, requires_grad=True)

    class Model:
        def named_parameters(self):
            return iter([("w", w)])

    with profiler.profile() as prof, grad_monitor(Model()):
        for _ in range(3):
            w.grad = None
            (w @ w).sum().backward()
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    doc = json.loads(path.read_text())
    counters = [e for e in doc["traceEvents"] if e.get("ph") == "C" and e["name"] == "grad_norm/w"]
    assert len(counters) == 3 and all(c["args"]["norm"] > 0 for c in counters)
    ops = [e for e in doc["traceEvents"] if e.get("ph") == "X" and e["name"] == "aten::matmul"]
    assert min(e["ts"] for e in ops) < counters[0]["ts"]        # same time base as the ops


def test_import_profiler_gives_its_subpackages():
    """`import profiler` alone, then profiler.debug.* and profiler.nvtx.* (a fresh interpreter: the suite
    has imported the submodules already)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import profiler; print(profiler.debug.nan_watch.__name__, profiler.debug.sanity_check.__name__, "
            "profiler.nvtx.emit_nvtx.__name__)")
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                       env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["nan_watch", "sanity_check", "emit_nvtx"]
