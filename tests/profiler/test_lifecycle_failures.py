"""A failed start(), step() or stop() never leaves the process unable to profile (issue 21, item 6): bad
arguments are refused by the constructor, and any failure later unhooks and frees the process-wide slot."""
from __future__ import annotations

import pytest

import tensorlib as tl
from tensorlib import dispatch
import importlib
from profiler import ProfilerAction, profile, record_function, schedule

profile_module = importlib.import_module("profiler.profile")     # the module (the package exports the class)


def _clean():
    """No profiler hook, no op sink, no slot taken, and a fresh profiler records what it should."""
    assert dispatch.hooks() == ()
    assert dispatch.op_sink() is None
    assert profile_module._active is None
    with profile() as p:
        tl.ones(3) + 1
    assert [e.name for e in p.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::add"]


@pytest.mark.parametrize("bad", [5, "wait", object()])
def test_not_callable_schedule_is_a_type_error_at_construction(bad):
    with pytest.raises(TypeError, match="schedule must be callable"):
        profile(schedule=bad)
    _clean()


def test_not_callable_on_trace_ready_is_a_type_error_at_construction():
    with pytest.raises(TypeError, match="on_trace_ready must be callable"):
        profile(on_trace_ready=[])
    _clean()


def _raises_at(n):
    def sched(step):
        if step == n:
            raise ValueError(f"boom at {n}")
        return ProfilerAction.RECORD
    return sched


def test_schedule_raising_in_start_frees_the_slot():
    with pytest.raises(ValueError, match="boom at 0"):
        with profile(schedule=_raises_at(0)):
            pass
    _clean()


def test_schedule_raising_in_step_stops_keeps_the_record_and_frees_the_slot():
    p = profile(schedule=_raises_at(2))
    p.start()
    tl.ones(2) * 2
    p.step()
    with record_function("second"):
        tl.ones(2) - 1
    with pytest.raises(ValueError, match="boom at 2"):
        p.step()
    p.stop()                    # a no-op now, as leaving the `with` block would be
    names = [e.name for e in p.events()]
    assert "aten::mul" in names and "second" in names and "aten::sub" in names
    _clean()


@pytest.mark.parametrize("returned", [None, 2, "RECORD"])
def test_schedule_returning_something_else_is_a_type_error(returned):
    with pytest.raises(TypeError, match="must return a ProfilerAction"):
        profile(schedule=lambda step: returned).start()
    _clean()


def test_on_trace_ready_raising_in_step_frees_the_slot():
    def handler(prof):
        raise OSError("disk full")
    p = profile(schedule=schedule(wait=0, warmup=0, active=1), on_trace_ready=handler)
    p.start()
    tl.ones(2) + 1
    with pytest.raises(OSError, match="disk full"):
        p.step()
    assert [e.name for e in p.events()][-1] == "aten::add"
    _clean()


def test_on_trace_ready_raising_in_stop_frees_the_slot():
    with pytest.raises(RuntimeError, match="handler"):
        with profile(on_trace_ready=lambda prof: (_ for _ in ()).throw(RuntimeError("handler"))):
            tl.ones(2) + 1
    _clean()


class _Capture:
    def __init__(self, fail_start=False, fail_stop=False):
        self.fail_start, self.fail_stop = fail_start, fail_stop

    def profilerStart(self):
        if self.fail_start:
            raise RuntimeError("cudaProfilerStart failed")

    def profilerStop(self):
        if self.fail_stop:
            raise RuntimeError("cudaProfilerStop failed")


def test_failure_after_hooks_were_registered_unhooks(monkeypatch):
    """cudaProfilerStart raising comes after the recorder's hooks and sink are registered."""
    monkeypatch.setattr(profile_module, "_capture_runtime", lambda: _Capture(fail_start=True))
    with pytest.raises(RuntimeError, match="cudaProfilerStart failed"):
        profile(schedule=schedule(wait=0, warmup=0, active=2)).start()
    monkeypatch.undo()
    _clean()


def test_failure_while_stopping_unhooks(monkeypatch):
    monkeypatch.setattr(profile_module, "_capture_runtime", lambda: _Capture(fail_stop=True))
    p = profile(schedule=schedule(wait=0, warmup=0, active=2))
    p.start()
    with pytest.raises(RuntimeError, match="cudaProfilerStop failed"):
        p.stop()
    monkeypatch.undo()
    _clean()
