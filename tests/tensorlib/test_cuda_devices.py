"""Two CUDA devices: ops run with their tensors' device current (torch's device guard), draws come from
each device's own generator with torch's seeding rules, memory counters are per device. On a machine with
one GPU these run under the fake CuPy with two simulated devices (FAKECUPY_DEVICES); with two real GPUs
they run there."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

pytestmark = pytest.mark.cuda


@pytest.fixture
def two():
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
        tl.random._cuda_generators.pop(1, None)     # device 1 is gone again: so is its generator


def test_ops_on_cuda1_run_with_device_1_current(two):
    a = tl.ones(3, 4, device="cuda:1", requires_grad=True)
    b = tl.arange(4.0, device="cuda:1")
    assert two.cuda.runtime.getDevice() == 0
    out = ((a + 1) * b).relu().sum(dim=0)                  # binary, unary, reduction with attrs
    assert out.device == tl.device("cuda:1")
    c = tl.cat([a, a.to(tl.int64)])                        # list op with promotion
    assert c.device == tl.device("cuda:1") and c.dtype == tl.float32
    out.sum().backward()                                   # backward ops too
    assert a.grad.device == tl.device("cuda:1")
    np.testing.assert_allclose(a.grad.cpu().numpy(), np.tile([0, 1, 2, 3], (3, 1)))
    with tl.no_grad():
        a.add_(1)                                          # in-place
    assert two.cuda.runtime.getDevice() == 0               # the guard restored the current device
    with pytest.raises(RuntimeError, match="same device, but found at least two devices, cuda:1 and cuda:0"):
        a + tl.ones(3, 4, device="cuda:0")


def test_each_device_draws_from_its_own_generator_seeded_as_torch(two):
    tl.manual_seed(3)
    d0, d1 = tl.rand(5, device="cuda:0"), tl.rand(5, device="cuda:1")
    assert d1.device == tl.device("cuda:1")
    assert d0.cpu().tolist() == d1.cpu().tolist()           # same seed, own stream per device
    tl.manual_seed(3)
    cpu_first = tl.rand(2).tolist()
    tl.manual_seed(3)
    tl.cuda.manual_seed(11)                                # the current device only: not the CPU
    assert tl.rand(2).tolist() == cpu_first
    assert tl.rand(5, device="cuda:1").cpu().tolist() == d1.cpu().tolist()     # nor device 1
    tl.cuda.manual_seed_all(5)
    x = tl.rand(5, device="cuda:0").cpu().tolist()
    assert tl.rand(5, device="cuda:1").cpu().tolist() == x
    ones = tl.ones(1000, device="cuda:1")
    for t in (tl.nn.functional.dropout(ones, 0.5), tl.multinomial(ones[:5], 3), tl.bernoulli(ones * 0.5),
              tl.randn(3, device="cuda:1"), tl.randint(0, 5, (3,), device="cuda:1")):
        assert t.device == tl.device("cuda:1")


def test_memory_counters_are_per_device(two):
    import gc
    gc.collect()
    tl.cuda.reset_peak_memory_stats(0)
    tl.cuda.reset_peak_memory_stats(1)
    base0, base1 = tl.cuda.memory_allocated(0), tl.cuda.memory_allocated(1)
    x = tl.zeros(1024, device="cuda:1")
    y = x + 1                                              # made on device 1 by the guard
    assert tl.cuda.memory_allocated(1) == base1 + 2 * 4096
    assert tl.cuda.memory_allocated(0) == base0
    assert tl.cuda.max_memory_allocated("cuda:1") >= base1 + 2 * 4096
    del x, y
    gc.collect()
    assert tl.cuda.memory_allocated(1) == base1
