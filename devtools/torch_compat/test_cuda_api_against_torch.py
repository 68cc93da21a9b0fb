"""tensorlib.cuda's streams, events, graphs, device contexts, RNG-state and memory functions against torch 2.13's
torch.cuda: the same parameter names and defaults, and on a machine without CUDA the same answers where torch's
CPU build answers (skipped where torch is not installed, and where tensorlib has CUDA: torch here is a CPU build).
Where torch's CPU build raises, tensorlib raises its own "CUDA is not available" (tests/tensorlib/
test_cuda_streams_no_cuda.py)."""
import inspect

import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402

NAMES = ["Stream", "ExternalStream", "Event", "StreamContext", "current_stream", "default_stream", "set_stream",
         "stream", "device", "device_of", "get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all",
         "seed", "seed_all", "initial_seed", "mem_get_info", "set_per_process_memory_fraction",
         "get_per_process_memory_fraction", "memory_stats_as_nested_dict", "get_arch_list", "get_gencode_flags",
         "init", "is_current_stream_capturing", "ipc_collect", "list_gpu_processes", "CUDAGraph", "graph",
         "graph_pool_handle", "synchronize"]


def _params(fn):
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default if p.default is inspect.Parameter.empty else repr(p.default))
            for p in sig.parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_same_parameters(name):
    ours, theirs = getattr(tl.cuda, name), getattr(torch.cuda, name)
    assert _params(ours) == _params(theirs)


@pytest.mark.parametrize("method", ["query", "synchronize", "wait_event", "wait_stream", "record_event"])
def test_stream_methods(method):
    assert _params(getattr(tl.cuda.Stream, method)) == _params(getattr(torch.cuda.Stream, method))


@pytest.mark.parametrize("method", ["record", "wait", "query", "synchronize", "elapsed_time", "ipc_handle"])
def test_event_methods(method):
    assert _params(getattr(tl.cuda.Event, method)) == _params(getattr(torch.cuda.Event, method))


@pytest.mark.parametrize("method", ["capture_begin", "capture_end", "replay", "reset", "pool"])
def test_graph_methods(method):
    ours = [p[0] for p in _params(getattr(tl.cuda.CUDAGraph, method))]
    theirs = [p[0] for p in _params(getattr(torch.cuda.CUDAGraph, method))]
    assert ours == theirs[:len(ours)]      # torch 2.13 adds check_input_liveness to capture_begin


def test_what_the_cpu_builds_answer_alike():
    if tl.cuda.is_available():
        pytest.skip("tensorlib has CUDA here; torch is a CPU build")
    for f in ("get_rng_state_all", "memory_stats_as_nested_dict", "get_arch_list", "get_gencode_flags",
              "list_gpu_processes", "seed", "seed_all"):
        assert getattr(tl.cuda, f)() == getattr(torch.cuda, f)(), f
    assert tl.cuda.set_rng_state(tl.zeros(16, dtype=tl.uint8)) is torch.cuda.set_rng_state(
        torch.zeros(16, dtype=torch.uint8))
    assert tl.cuda.set_stream(None) is torch.cuda.set_stream(None)
    for mod, t in ((tl, tl.ones(1)), (torch, torch.ones(1))):
        with mod.cuda.stream(None), mod.cuda.device(-1), mod.cuda.device_of(t):
            pass
    msgs = []
    for mod in (tl, torch):
        with pytest.raises(ValueError) as e:
            mod.cuda.device("cpu")
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]
