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


def test_distributed_outside_a_group_answers_as_torch():
    assert dist.is_available() and not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(tl.zeros(2))):
        with pytest.raises(ValueError, match=NOT_INIT):
            call()
    with pytest.raises(ValueError, match=NOT_INIT):
        DistributedDataParallel(nn.Linear(2, 3))
    with pytest.raises(RuntimeError, match="has no NCCL backend"):
        dist.init_process_group("nccl")
