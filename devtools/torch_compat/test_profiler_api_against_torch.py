"""The profiler's result objects have torch.profiler's public attributes: FunctionEvent (prof.events()),
FunctionEventAvg (key_averages()), EventList and profile, checked by name against torch 2.13's (torch is not a
dependency: this folder runs only where torch is installed). What torch has and tensorlib's profiler does not
is listed below with the reason; anything else missing fails."""
import pytest

import tensorlib as tl
import profiler

torch = pytest.importorskip("torch")

# torch's names with no meaning here: Kineto/legacy internals, tree-building helpers, remote/RPC, flows
NOT_OURS = {
    "event": {"activity_type", "append_cpu_child", "append_kernel", "set_cpu_parent", "concrete_inputs", "kwinputs",
              "device_index", "device_resource_id", "event_metadata", "metadata_json", "external_id", "flow_id",
              "flow_start", "flow_type", "fwd_thread", "kernels", "linked_correlation_id", "python_id",
              "python_module_id", "python_parent_id", "is_python_function", "self_cpu_percent",
              "total_cpu_percent", "total_device_percent", "structured_input_shapes", "structured_input_strides"},
    "avg": set(),
    "list": set(),
}


def _public(o):
    return {a for a in dir(o) if not a.startswith("_")}


def _pair():
    with torch.profiler.profile(record_shapes=True) as theirs:
        torch.ones(2).sum()
    with profiler.profile(record_shapes=True) as ours:
        tl.ones(2).sum()
    return theirs, ours


def test_function_event_fields():
    theirs, ours = _pair()
    missing = _public(theirs.events()[0]) - _public(ours.events()[0]) - NOT_OURS["event"]
    assert not missing, sorted(missing)


def test_function_event_avg_fields():
    theirs, ours = _pair()
    missing = _public(theirs.key_averages()[0]) - _public(ours.key_averages()[0]) - NOT_OURS["avg"]
    assert not missing, sorted(missing)


@pytest.mark.parametrize("which", ["events", "key_averages"])
def test_event_list_methods(which):
    theirs, ours = _pair()
    missing = _public(getattr(theirs, which)()) - _public(getattr(ours, which)()) - NOT_OURS["list"]
    assert not missing, sorted(missing)


def test_time_formats_match():
    from profiler.function_event import format_time
    from torch.autograd.profiler_util import _format_time
    for us in (0.0, 0.5, 999.999, 1000.0, 12345.678, 999999.0, 1e6, 3.5e7):
        assert format_time(us) == _format_time(us)


@pytest.mark.parametrize("with_schedule", [False, True])
def test_step_ranges_as_torchs_with_and_without_a_schedule(with_schedule):
    """torch marks ProfilerStep#N only under a schedule (record_steps); both libraries' tables agree."""
    def keys(lib, prof_mod):
        kw = {"schedule": prof_mod.schedule(wait=0, warmup=0, active=5)} if with_schedule else {}
        with prof_mod.profile(**kw) as p:
            for _ in range(3):
                lib.ones(2).sum()
                p.step()
        return sorted(r.key for r in p.key_averages() if "Step" in r.key)
    assert keys(tl, profiler) == keys(torch, torch.profiler) == (["ProfilerStep*"] if with_schedule else [])
