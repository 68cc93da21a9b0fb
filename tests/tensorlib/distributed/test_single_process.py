"""tensorlib.distributed in one process: a one-rank MPI group (MPI's singleton start), argument checks and
torch's errors, DistributedSampler's arithmetic, DDP's refusals. Each test that joins a group leaves it."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP
from tensorlib.utils.data import DistributedSampler

pytest.importorskip("mpi4py", reason="tensorlib.distributed's MPI backend needs mpi4py (pip install mpi4py mpich)")

NOT_INIT = "Default process group has not been initialized, please make sure to call init_process_group."


@pytest.fixture
def group():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_before_init_every_call_raises_torchs_error(monkeypatch):
    monkeypatch.setattr(dist._nccl, "nccl_module", lambda: None)      # as without CuPy (the fake has NCCL)
    assert not dist.is_initialized() and dist.is_mpi_available() and not dist.is_nccl_available()
    for call in (dist.get_rank, dist.barrier, lambda: dist.broadcast(tl.ones(2), 0), dist.new_group,
                 lambda: dist.all_gather_object([None], 1)):
        with pytest.raises(ValueError, match=NOT_INIT):
            call()


def test_init_checks_its_arguments(monkeypatch):
    monkeypatch.setattr(dist._nccl, "nccl_module", lambda: None)      # as without CuPy (the fake has NCCL)
    with pytest.raises(RuntimeError, match="doesn't have NCCL built in.*init_process_group\\('mpi'\\)"):
        dist.init_process_group("nccl")          # no CuPy in this suite's process
    with pytest.raises(ValueError, match=r"world_size=4.*mpiexec -n 4"):
        dist.init_process_group("gloo", world_size=4)      # gloo goes through the MPI backend's checks
    with pytest.raises(ValueError, match="device_id: the GLOO backend holds CPU tensors only"):
        dist.init_process_group("gloo", device_id=0)
    with pytest.raises(ValueError, match="Invalid backend: 'tcp'"):
        dist.init_process_group("tcp")
    with pytest.raises(ValueError, match=r"world_size=4.*mpiexec -n 4"):
        dist.init_process_group("mpi", world_size=4)
    with pytest.raises(ValueError, match="init_method='tcp://h:1'"):
        dist.init_process_group("mpi", init_method="tcp://h:1")
    with pytest.raises(TypeError, match="timeout"):
        dist.init_process_group("mpi", timeout=30)
    assert not dist.is_initialized()


def test_a_bad_torch_distributed_debug_value_is_refused_with_torchs_message(monkeypatch):
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "verbose")
    with pytest.raises(ValueError, match="^The value of TORCH_DISTRIBUTED_DEBUG must be OFF, INFO, or DETAIL.$"):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "detail")       # any case, as torch
    dist.init_process_group("mpi")
    dist.destroy_process_group()


def test_environment_that_mpi_did_not_make_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("PMI_RANK", raising=False)
    with pytest.raises(ValueError, match="WORLD_SIZE=2 in the environment, but MPI sees world_size 1"):
        dist.init_process_group("mpi")


def test_one_rank_group(group):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "mpi" and dist.get_process_group_ranks(None) == [0]
    with pytest.raises(ValueError, match="trying to initialize the default process group twice!"):
        dist.init_process_group("mpi")
    t = tl.tensor([1.0, 2.0])
    v = t._version
    w = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    assert isinstance(w, dist.Work) and w.wait() and w.is_completed() and w.is_success()
    assert t.tolist() == [1.0, 2.0] and t._version > v
    assert dist.all_reduce(t) is None
    with pytest.raises(RuntimeError, match="ReduceOp.AVG needs a floating-point tensor"):
        dist.all_reduce(tl.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(RuntimeError, match="Tensors must be contiguous"):
        dist.all_reduce(tl.ones(3, 4).t())
    with pytest.raises(TypeError, match="Expected parameter `tensor` of type torch.Tensor"):
        dist.all_reduce(np.ones(3))
    with pytest.raises(ValueError, match="Invalid destination rank"):
        dist.send(t, dst=0)
    with pytest.raises(ValueError, match="Global rank 3 is not part of group"):
        dist.broadcast(t, src=3)
    with pytest.raises(RuntimeError, match="All gather: number of output tensors should equal to the world size"):
        dist.all_gather([tl.ones(2), tl.ones(2)], t)
    with pytest.raises(ValueError, match="output tensor size must be equal to world_size times input tensor size"):
        dist.all_gather_into_tensor(tl.ones(3), t)
    assert dist.ReduceOp.SUM == dist.ReduceOp.RedOpType.SUM and repr(dist.ReduceOp.MAX) == "<RedOpType.MAX: 4>"


def test_a_wait_that_times_out_names_the_collective():
    w = dist.Work("mpi:all_reduce", timedelta(milliseconds=10), ranks=[0, 1])
    with pytest.raises(RuntimeError, match=r"mpi:all_reduce: timed out after 0.01 s.*group ranks \[0, 1\]"):
        w.wait()
    assert not w.is_completed()


class _NotHostArray(np.ndarray):
    """Data that is not a host ndarray: what makes a tensor a CUDA tensor for tensorlib (Tensor.is_cuda), here
    without CuPy (tests/tensorlib/distributed/test_nccl.py runs the same call on the fake CuPy's arrays)."""


def test_cuda_tensor_on_mpi_gives_torchs_message(group):
    t = tl.ones(2)
    t._data = t._data.view(_NotHostArray)
    assert t.is_cuda
    with pytest.raises(RuntimeError, match="CUDA tensor detected and the MPI used doesn't have CUDA-aware MPI"):
        dist.all_reduce(t)


def test_distributed_sampler_pads_drops_and_reshuffles_per_epoch():
    s = [DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False) for r in range(3)]
    assert [list(x) for x in s] == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]      # padded with the first ones
    d = [DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False, drop_last=True) for r in range(3)]
    assert [list(x) for x in d] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]] and len(d[0]) == 3
    a, b = (DistributedSampler(range(100), num_replicas=2, rank=r, seed=7) for r in range(2))
    first = sorted(list(a) + list(b))
    assert first == list(range(100))                    # one permutation shared by the ranks
    e0 = list(a)
    a.set_epoch(1)
    assert list(a) != e0 and sorted(list(a) + (b.set_epoch(1) or list(b))) == list(range(100))
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_ddp_refusals(group):
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="DistributedDataParallel is not needed when a module doesn't have any "
                                           "parameter that requires a gradient."):
        DDP(frozen)
    with pytest.raises(ValueError, match="device_ids and output_device arguments only work with"):
        DDP(nn.Linear(2, 2), device_ids=[0])
    with pytest.raises(ValueError, match="static_graph=True"):
        DDP(nn.Linear(2, 2), static_graph=True)
    m = DDP(nn.Linear(2, 2))
    assert list(m.state_dict()) == ["module.weight", "module.bias"] and m.module.weight is not None
    out = m(tl.ones(3, 2))
    out.sum().backward()
    assert m.module.weight.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_gloo_is_the_cpu_default_and_served_by_mpi():
    """torch's CPU backend name: get_default_backend_for_device gives it, and a one-rank gloo group runs
    collectives (on MPI) and reports "gloo" as its backend."""
    assert dist.get_default_backend_for_device("cpu") == "gloo"
    assert dist.get_default_backend_for_device("cuda:1") == "nccl"
    assert dist.get_default_backend_for_device(tl.device("cpu")) == "gloo"
    with pytest.raises(RuntimeError, match="Default backend not registered for device : xla"):
        dist.get_default_backend_for_device("xla")
    assert dist.is_gloo_available()
    dist.init_process_group(dist.get_default_backend_for_device("cpu"))
    try:
        assert dist.get_backend() == "gloo" and dist.get_world_size() == 1
        t = tl.ones(3)
        dist.all_reduce(t)
        assert t.tolist() == [1.0, 1.0, 1.0]
        assert dist.get_backend(dist.new_group([0])) == "gloo"
    finally:
        dist.destroy_process_group()
