"""nn.DataParallel on a CPU or one device, and what a script meets in torch.distributed / DDP before
tensorlib has a transport: torch's answers for a process outside any group (checked against torch 2.13)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel

NOT_INIT = "Default process group has not been initialized, please make sure to call init_process_group."


def test_data_parallel_runs_the_module_with_torch_state_dict_keys():
    lin = nn.Linear(2, 3)
    dp = nn.DataParallel(lin)
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = tl.randn(4, 2)
    np.testing.assert_array_equal(dp(x).detach().numpy(), lin(x).detach().numpy())
    dp(x).sum().backward()
    assert lin.weight.grad is not None
    assert repr(dp).startswith("DataParallel(\n  (module): Linear(in_features=2, out_features=3")


@pytest.mark.cuda
def test_data_parallel_on_one_device_moves_inputs_and_checks_parameters():
    lin = nn.Linear(2, 3).to("cuda")
    dp = nn.DataParallel(lin, device_ids=[0])
    out = dp(tl.randn(4, 2))                    # a CPU input is moved to device_ids[0], as torch scatters it
    assert out.device == tl.device("cuda", 0)
    with pytest.raises(RuntimeError, match=r"module must have its parameters and buffers on device cuda:0 "
                                           r"\(device_ids\[0\]\) but found one of them on device: cpu"):
        nn.DataParallel(nn.Linear(2, 3), device_ids=[0])(tl.randn(1, 2))


def test_distributed_outside_a_group_answers_as_torch(monkeypatch):
    monkeypatch.setattr(dist._nccl, "nccl_module", lambda: None)      # as without CuPy (the fake has NCCL)
    assert dist.is_available() and not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(tl.zeros(2))):
        with pytest.raises(ValueError, match=NOT_INIT):
            call()
    with pytest.raises(ValueError, match=NOT_INIT):
        DistributedDataParallel(nn.Linear(2, 3))
    with pytest.raises(RuntimeError, match="doesn't have NCCL built in"):
        dist.init_process_group("nccl")


@pytest.fixture
def two_devices():
    cp = tl._device.cupy()
    if cp.cuda.runtime.getDeviceCount() >= 2:
        yield cp
        return
    if not getattr(cp, "__fake__", False):
        pytest.skip("needs two GPUs (this machine has one)")
    cp.cuda.runtime._COUNT = 2
    try:
        yield cp
    finally:
        cp.cuda.runtime._COUNT = 1
        tl.random._cuda_generators.pop(1, None)


@pytest.mark.cuda
def test_data_parallel_over_two_devices_scatters_replicates_and_gathers(two_devices):
    tl.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    ref = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    ref.load_state_dict(net.state_dict())
    net = net.to("cuda:0")
    dp = nn.DataParallel(net)
    assert dp.device_ids == [0, 1] and dp.output_device == 0
    x = tl.randn(6, 3)
    seen = []
    hook = net[0].register_forward_hook(lambda m, i, o: seen.append((i[0].device, i[0].shape[0])))
    out = dp(x.to("cuda:0"))
    hook.remove()
    assert seen == [(tl.device("cuda:0"), 3), (tl.device("cuda:1"), 3)]          # one chunk per device
    assert out.device == tl.device("cuda:0") and out.shape == (6, 2)
    want = tl.cat([ref(x[:3]), ref(x[3:])])          # BatchNorm's statistics per replica, as in torch
    np.testing.assert_allclose(out.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.pow(2).sum().backward()
    tl.cat([ref(x[:3]), ref(x[3:])]).pow(2).sum().backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert p.grad.device == tl.device("cuda:0")       # gradients of both replicas summed on the module
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
    scalars = nn.DataParallel(_Mean())
    with pytest.warns(UserWarning, match="Was asked to gather along dimension 0, but all input tensors were scalars"):
        assert scalars(tl.ones(4, 2, device="cuda:0")).shape == (2,)


class _Mean(nn.Module):
    def forward(self, x):
        return x.mean()
