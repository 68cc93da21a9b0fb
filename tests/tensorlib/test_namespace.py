"""The torch namespace a training script touches before step 1: torch.accelerator and the thread settings,
with torch's results and errors (checked against torch 2.13 on a CPU-only machine)."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tensorlib as tl


def test_accelerator_without_one_answers_as_torch():
    if tl.cuda.is_available():
        pytest.skip("this case is the CPU-only one; the cuda-marked test covers a device")
    acc = tl.accelerator
    assert acc.current_accelerator() is None and acc.current_accelerator(check_available=True) is None
    assert acc.is_available() is False and acc.device_count() == 0
    for call in (acc.current_device_index, acc.synchronize, acc.memory_allocated):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available."):
            call()
    with acc.device_index(None):
        pass
    acc.empty_cache()


@pytest.mark.cuda
def test_accelerator_on_cuda():
    acc = tl.accelerator
    assert acc.current_accelerator() == tl.device("cuda") and acc.is_available()
    assert acc.device_count() == tl.cuda.device_count() >= 1
    assert acc.current_device_index() == tl.cuda.current_device()
    x = tl.ones(256, device="cuda")
    assert acc.memory_allocated() == tl.cuda.memory_allocated() >= x.numel() * 4
    assert acc.max_memory_allocated(0) >= acc.memory_allocated(0)
    acc.synchronize()
    with acc.device_index(0):
        assert acc.current_device_index() == 0
    with pytest.raises(ValueError, match="cpu doesn't match the current accelerator cuda."):
        acc.synchronize("cpu")
    assert set(acc.get_device_capability()) == {"major", "minor"}


def _blas_threads():
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_set_num_threads_sets_the_blas_pool():
    before = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        assert tl.get_num_threads() == 1 == _blas_threads()
        a = tl.randn(64, 64)
        np.testing.assert_allclose((a @ a).numpy(), a.numpy() @ a.numpy(), rtol=1e-5)
    finally:
        tl.set_num_threads(before)
    assert tl.get_num_threads() == before


@pytest.mark.parametrize("bad, message", [(0, "set_num_threads expects a positive integer"),
                                          (-2, "set_num_threads expects a positive integer"),
                                          ("a", "set_num_threads expects an int, but got str"),
                                          (1.5, "set_num_threads expects an int, but got float")])
def test_set_num_threads_refuses_as_torch(bad, message):
    with pytest.raises(RuntimeError, match=message):
        tl.set_num_threads(bad)
