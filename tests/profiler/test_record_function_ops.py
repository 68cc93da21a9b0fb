"""torch.ops.profiler's range operators (_record_function_enter[_new] / _record_function_exit), record_function's
__dict__, FX graphs that keep a profiler range (pytorch/examples fx/profiling_tracer.py's tracer), and the legacy
profile's str/repr (print(prof) prints the events' table, as torch's)."""
from __future__ import annotations

import pytest

import tensorlib as tl
import tensorlib.fx as fx
import tensorlib.nn as nn
from profiler import profile, record_function
from profiler.legacy import profile as legacy_profile


def _tree(prof):
    """(name, parent name) of each recorded event."""
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    out, stack = [], []
    for e in evs:
        while stack and stack[-1].time_range.end <= e.time_range.start:
            stack.pop()
        out.append((e.name, stack[-1].name if stack else None))
        stack.append(e)
    return out


def test_enter_new_and_exit_make_a_user_range_around_the_ops():
    x = tl.randn(4)
    with profile() as prof:
        h = tl.ops.profiler._record_function_enter_new("block", None)
        tl.relu(x)
        tl.ops.profiler._record_function_exit._RecordFunction(h)
        h2 = tl.ops.profiler._record_function_enter("old_form")
        tl.ops.profiler._record_function_exit(h2)
    tree = _tree(prof)
    assert ("aten::relu", "block") in tree and ("block", None) in tree and ("old_form", None) in tree
    kinds = {e.name: e.kind for e in prof.events()}
    assert kinds["block"] == kinds["old_form"] == "user"


def test_the_operators_check_their_arguments_and_name_overloads_as_torch():
    ops = tl.ops.profiler
    with pytest.raises(RuntimeError, match="Expected a value of type 'str' for argument 'name'"):
        ops._record_function_enter_new(5)
    with pytest.raises(RuntimeError, match="for argument 'handle' but instead found type 'int'"):
        ops._record_function_exit(5)
    with pytest.raises(AttributeError, match="'_OpNamespace' 'profiler' object has no attribute 'nope'"):
        ops.nope
    assert ops._record_function_exit.overloads() == ["default", "_RecordFunction"]
    assert ops._record_function_enter_new.overloads() == ["default"]
    assert repr(ops._record_function_exit) == "profiler._record_function_exit"


def test_record_function_keeps_attributes_of_the_program():
    r = record_function("r")
    r.extra = 3             # torch's record_function has a __dict__ (profiling_tracer.py stores a proxy there)
    assert r.extra == 3


class _Foo(nn.Module):
    def forward(self, x):
        with record_function("foo"):
            return tl.relu(x)


class _ProfilerTracer(fx.Tracer):
    """pytorch/examples fx/profiling_tracer.py's tracer: record_function's enter/exit become graph nodes."""

    def trace(self, root, concrete_args=None):
        enter, exit_ = record_function.__enter__, record_function.__exit__
        tracer = self

        def fake_enter(rf):
            rf._fx_ctx = tracer.create_proxy("call_function", tl.ops.profiler._record_function_enter, (rf.name,), {})
            return rf._fx_ctx

        def fake_exit(rf, *exc):
            tl.ops.profiler._record_function_exit(rf._fx_ctx)     # on a Proxy: recorded, not run

        record_function.__enter__, record_function.__exit__ = fake_enter, fake_exit
        try:
            return super().trace(root, concrete_args)
        finally:
            record_function.__enter__, record_function.__exit__ = enter, exit_


def test_an_fx_graph_keeps_the_range_through_dead_code_elimination_and_records_it():
    f = _Foo()
    x = tl.randn(5, 3)
    plain = fx.symbolic_trace(f)
    with profile() as prof:
        plain(x)
    assert "foo" not in {e.name for e in prof.events()}     # as torch: symbolic_trace runs record_function eagerly
    tracer = _ProfilerTracer()
    graph = tracer.trace(f)
    gm = fx.GraphModule(tracer.root, graph)
    graph.eliminate_dead_code()         # the exit's result is unused: it stays, being side-effectful (torch's set)
    gm.recompile()
    assert "tensorlib.ops.profiler._record_function_enter('foo')" in gm.code
    assert "tensorlib.ops.profiler._record_function_exit(_record_function_enter)" in gm.code
    with profile() as prof:
        out = gm(x)
    assert ("aten::relu", "foo") in _tree(prof)
    assert tl.equal(out, tl.relu(x))


def test_legacy_profile_prints_its_table_once_finished():
    p = legacy_profile()
    assert str(p) == repr(p) == "<unfinished torch.autograd.profile>"
    with legacy_profile() as p:
        assert str(p) == "<unfinished torch.autograd.profile>"
        tl.relu(tl.randn(3))
    text = str(p)
    assert text == p.function_events.table() and "aten::relu" in text and "Self CPU time total" in text
    assert repr(p) == repr(p.function_events) and repr(p).startswith("[<FunctionEvent")
    with legacy_profile(enabled=False) as off:
        pass
    assert str(off) == "<unfinished torch.autograd.profile>"


def test_experimental_config_verbose_trace_only_and_refusals(tmp_path):
    import json

    import tensorlib
    from profiler import _ExperimentalConfig
    assert tensorlib._C._profiler._ExperimentalConfig is _ExperimentalConfig     # torch._C._profiler's path

    def f():
        return tl.relu(tl.randn(3))

    def stacks(cfg):
        with profile(with_stack=True, experimental_config=cfg) as prof:
            f()
        prof.export_chrome_trace(tmp_path / "t.json")
        evs = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
        return any("Call stack" in e.get("args", {}) for e in evs if e.get("cat") == "cpu_op")

    assert stacks(_ExperimentalConfig(verbose=True)) and stacks(None)
    assert not stacks(_ExperimentalConfig())                # torch: the arg only with verbose=True
    with profile(experimental_config=_ExperimentalConfig(trace_only=True)) as prof:
        f()
    prof.export_chrome_trace(tmp_path / "only.json")        # the trace still exports
    assert "aten::relu" in (tmp_path / "only.json").read_text()
    for call in (prof.events, prof.key_averages, prof.table):
        with pytest.raises(RuntimeError, match="events\\(\\) is not available when trace_only=True"):
            call()
    with pytest.raises(ValueError, match="experimental_config.capture_overload_names is not supported"):
        profile(experimental_config=_ExperimentalConfig(capture_overload_names=True))
    with pytest.raises(ValueError, match="experimental_config.profiler_metrics is not supported"):
        profile(experimental_config=_ExperimentalConfig(profiler_metrics=["kineto__cuda_core_flops"]))
    with pytest.raises(TypeError, match="experimental_config must be"):
        profile(experimental_config={"verbose": True})


def test_profile_profiler_attribute_and_supported_activities():
    from profiler import ProfilerActivity, supported_activities
    from profiler.legacy import EventList
    assert ProfilerActivity.CPU in supported_activities()
    prof = profile()
    assert prof.profiler is None                            # torch's: None until started
    with prof:
        tl.relu(tl.randn(3))
    fe = prof.profiler.function_events
    assert isinstance(fe, EventList) and [e.name for e in fe] == [e.name for e in prof.events()]
    assert prof.profiler.key_averages().table() == prof.key_averages().table()
    assert prof.profiler.self_cpu_time_total == prof.events().self_cpu_time_total


def test_autograd_profiler_util_names_the_result_classes():
    import importlib
    util = importlib.import_module("tensorlib.autograd.profiler_util")
    from profiler.aggregate import EventList, FunctionEventAvg
    from profiler.function_event import FunctionEvent
    assert (util.EventList, util.FunctionEvent, util.FunctionEventAvg) == (EventList, FunctionEvent, FunctionEventAvg)
