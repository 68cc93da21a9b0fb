"""tensorlib.cuda's streams, events, device contexts, RNG state and memory questions where CUDA is absent:
what torch's CPU build does, with tensorlib's own "CUDA is not available" error where torch's says "Torch
not compiled with CUDA enabled" (or "Tried to instantiate dummy base class"). Skipped where CUDA (or the
fake CuPy) is available: tests/tensorlib/test_cuda_streams.py covers that side."""
from __future__ import annotations

import pytest

import tensorlib as tl

cuda = tl.cuda


@pytest.fixture(autouse=True)
def _no_cuda():
    if cuda.is_available():
        pytest.skip("CUDA is available here")


@pytest.mark.parametrize("call", [
    lambda: cuda.current_stream(), lambda: cuda.default_stream(), lambda: cuda.Stream(), lambda: cuda.Event(),
    lambda: cuda.ExternalStream(0), lambda: cuda.synchronize(), lambda: cuda.get_rng_state(),
    lambda: cuda.initial_seed(), lambda: cuda.mem_get_info(), lambda: cuda.set_per_process_memory_fraction(0.5),
    lambda: cuda.get_per_process_memory_fraction(), lambda: cuda.init(), lambda: cuda.ipc_collect(),
    lambda: cuda.is_current_stream_capturing(), lambda: cuda.device(0).__enter__(),
    lambda: cuda.CUDAGraph(), lambda: cuda.graph_pool_handle(),
], ids=["current_stream", "default_stream", "Stream", "Event", "ExternalStream", "synchronize", "get_rng_state",
        "initial_seed", "mem_get_info", "set_per_process_memory_fraction", "get_per_process_memory_fraction", "init",
        "ipc_collect", "is_current_stream_capturing", "device(0)", "CUDAGraph", "graph_pool_handle"])
def test_what_needs_cuda_says_it_is_not_available(call):
    with pytest.raises(RuntimeError, match=r"CUDA is not available.*pip install"):
        call()


def test_what_torch_cpu_build_allows():
    """The calls torch's CPU build answers without an error (it queues the seeding ones for a CUDA that never
    comes): the same answers here."""
    assert cuda.get_rng_state_all() == [] and cuda.memory_stats_as_nested_dict() == {}
    assert cuda.get_arch_list() == [] and cuda.get_gencode_flags() == ""
    cuda.set_rng_state(tl.zeros(16, dtype=tl.uint8))
    cuda.set_rng_state_all([])
    cuda.seed()
    cuda.seed_all()
    cuda.set_stream(None)
    with cuda.stream(None), cuda.device(-1), cuda.device(None), cuda.device_of(tl.ones(1)):
        pass
    assert not cuda.is_initialized()
    with pytest.raises(ValueError, match="Expected a cuda device, but got: cpu"):
        cuda.device("cpu")


def test_list_gpu_processes_without_pynvml(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert cuda.list_gpu_processes() == "pynvml module not found, please install nvidia-ml-py"


def test_record_stream_refuses_a_cpu_tensor_and_what_is_not_a_stream():
    with pytest.raises(TypeError, match=r"record_stream\(\): argument 's' \(position 1\) must be torch.cuda.Stream, "
                                        r"not NoneType"):
        tl.ones(1).record_stream(None)
