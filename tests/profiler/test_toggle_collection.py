"""profile.toggle_collection_dynamic (torch.profiler's): collection off and back on while recording.

Off, the profiler's dispatcher hooks are out (the code runs as unprofiled: no record, no observer effect);
what was recorded stays; a range open at the toggle closes where it opened; memory records go on, so a
tensor recorded before the toggle and freed while off still leaves the timeline. The CUPTI case runs
against the stand-in of test_cupti_logic.py."""
from __future__ import annotations

import gc
import importlib

import pytest

import profiler.cupti as pcupti
import tensorlib as tl
from profiler import ProfilerActivity, profile, record_function, schedule
from tensorlib import dispatch

from ._fake_cupti import FakeCupti

CPU, CUDA = ProfilerActivity.CPU, ProfilerActivity.CUDA
pprofile = importlib.import_module("profiler.profile")


def _names(prof):
    return [e.name for e in prof.events()]


def test_ops_and_ranges_between_toggles_are_not_recorded_and_the_rest_is():
    x = tl.ones(4, requires_grad=True)
    with profile(activities=[CPU]) as prof:
        with record_function("before"):
            (x * 2).sum().backward()
        with record_function("spans"):          # opened while on, closed while off
            prof.toggle_collection_dynamic(False, [CPU])
            assert prof._recorder not in dispatch.hooks()
            with record_function("while_off"):
                (x + 3).exp().sum().backward()
                tl.ones(2) - 1
        prof.toggle_collection_dynamic(False, [CPU])       # twice off: still off, nothing else
        prof.toggle_collection_dynamic(True, [CPU])
        assert dispatch.hooks().count(prof._recorder) == 1
        prof.toggle_collection_dynamic(True, [CPU])        # twice on: registered once
        assert dispatch.hooks().count(prof._recorder) == 1
        with record_function("after"):
            (x / 2).mean().backward()
    names = _names(prof)
    assert "while_off" not in names
    assert not {"aten::exp", "aten::sub", "ExpBackward0"} & set(names)
    assert {"before", "spans", "after", "aten::mul", "MulBackward0", "aten::div", "DivBackward0",
            "aten::mean", "MeanBackward0"} <= set(names)
    assert names.count("aten::sum") == 1 and names.count("aten::add") == 0
    spans = [e for e in prof.events() if e.name == "spans"][0]
    assert spans.cpu_children == []                    # nothing recorded inside it, and it is closed
    assert prof.events()[-1].time_range.end > spans.time_range.end
    assert dispatch.hooks() == ()                       # stop unhooks everything
    # a later profile starts clean and records everything
    with profile() as again:
        tl.ones(2) + 1
    assert {"aten::ones", "aten::add"} <= set(_names(again))


def test_stop_while_off_keeps_what_was_recorded():
    with profile() as prof:
        tl.ones(3) * 2
        prof.toggle_collection_dynamic(False, [CPU, CUDA])      # CUDA not collected here: ignored
        tl.ones(3) + 2
    assert [n for n in _names(prof) if n in ("aten::mul", "aten::add")] == ["aten::mul"]
    assert dispatch.hooks() == ()


def test_off_removes_the_observer_effect():
    """With collection off, the autograd engine takes its unobserved path again (quiet formulas): the
    dispatcher's flags are as without a profiler."""
    from tensorlib import _hooks
    before = _hooks.full_path
    with profile(record_shapes=True, profile_memory=True) as prof:
        assert _hooks.full_path
        prof.toggle_collection_dynamic(False, [CPU])
        assert _hooks.full_path == before and not _hooks.range_hooks
        prof.toggle_collection_dynamic(True, [CPU])
        assert _hooks.full_path


def test_memory_freed_while_off_leaves_the_timeline():
    with profile(profile_memory=True) as prof:
        a = tl.ones(1000) * 2           # 4000 bytes recorded
        prof.toggle_collection_dynamic(False, [CPU])
        del a
        gc.collect()
        b = tl.ones(500) * 3            # not recorded: collection is off
        prof.toggle_collection_dynamic(True, [CPU])
        del b
    recs = prof._snapshots[0][2].array()
    sizes = [int(r["bytes"]) for r in recs]
    assert 4000 in sizes and -4000 in sizes and 2000 not in sizes and -2000 not in sizes
    assert sum(sizes) <= 0


def test_outside_a_recording_window_it_does_nothing_and_the_next_window_records():
    seen = []
    sched = schedule(wait=1, warmup=1, active=1, repeat=2)
    with profile(schedule=sched, on_trace_ready=lambda p: seen.append(set(_names(p)))) as prof:
        for step in range(6):
            if step == 0:
                prof.toggle_collection_dynamic(False, [CPU])    # waiting: nothing to toggle
            if step == 2:
                tl.ones(2) + 1
                prof.toggle_collection_dynamic(False, [CPU])    # the first window's rest is not recorded
            tl.ones(2) * 3
            prof.step()
    assert len(seen) == 2
    assert "aten::add" in seen[0] and "aten::mul" not in seen[0]
    assert "aten::mul" in seen[1]                                # the second window collects again


def test_bad_activities_are_refused():
    with profile() as prof:
        with pytest.raises(TypeError, match="ProfilerActivity"):
            prof.toggle_collection_dynamic(False, ["cpu"])
        with pytest.raises(TypeError):
            prof.toggle_collection_dynamic(False, CPU)        # not an iterable of activities


def test_cupti_kinds_off_and_on_with_the_cuda_activity(monkeypatch):
    fake = FakeCupti()
    monkeypatch.setattr(pprofile, "_cuda_available", lambda: True)
    monkeypatch.setattr(pcupti, "load_cupti", lambda: fake)
    monkeypatch.setattr(pcupti, "_on_gpu", lambda inputs, attrs: True)
    with profile(cuda_timing="cupti") as prof:
        kinds = set(fake.enabled)
        assert kinds
        tl.ones(2) + 1
        prof.toggle_collection_dynamic(False, [CUDA])
        assert fake.enabled == set() and prof._gpu not in dispatch.hooks()
        tl.ones(2) * 2                      # its CPU op is recorded, no external id pushed
        prof.toggle_collection_dynamic(True, [CUDA])
        assert fake.enabled == kinds
        hooks = dispatch.hooks()
        assert hooks.index(prof._recorder) < hooks.index(prof._gpu)     # the recorder's stamp first
        with pytest.warns(UserWarning, match="CPU collection off with CUDA collection on"):
            prof.toggle_collection_dynamic(False, [CPU])
        assert prof._recorder not in dispatch.hooks() and prof._gpu in dispatch.hooks()
        prof.toggle_collection_dynamic(True, [CPU])
        hooks = dispatch.hooks()
        assert hooks.index(prof._recorder) < hooks.index(prof._gpu)
    assert fake.pushes == fake.pops == 2     # ones and add; none while CUDA was off
    names = _names(prof)
    assert {"aten::add", "aten::mul"} <= set(names)
