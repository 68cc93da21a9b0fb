"""CUDA paths (run by `make test-gpu` on a machine with a GPU and CuPy; skipped elsewhere, saying why)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tests.tensorlib.op_cases import CPU_ONLY, all_cases

pytestmark = pytest.mark.cuda


def test_device_queries():
    assert tl.cuda.is_available() and tl.cuda.device_count() >= 1
    assert isinstance(tl.cuda.get_device_name(0), str)
    tl.cuda.set_device(0)
    assert tl.cuda.current_device() == 0


def test_round_trip_and_numpy_error():
    x = tl.arange(6.0).reshape(2, 3)
    g = x.cuda()
    assert g.device == tl.device("cuda:0") and g.is_cuda
    assert (g.cpu() == x).all()
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu\(\)"):
        g.numpy()
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found at least two "
                                           "devices, cuda:0 and cpu!"):
        g + x


def test_training_math_matches_cpu():
    tl.manual_seed(0)
    w = tl.randn(4, 3, dtype=tl.float64)
    x = tl.randn(5, 4, dtype=tl.float64)
    wc = w.cuda().requires_grad_()
    wh = w.clone().requires_grad_()
    (x.cuda() @ wc).tanh().sum().backward()
    (x @ wh).tanh().sum().backward()
    np.testing.assert_allclose(wc.grad.cpu().numpy(), wh.grad.numpy(), rtol=1e-10)


# pin_memory takes CPU tensors only (tests/tensorlib/data covers it on CUDA machines)
# c10d:: ops are tensorlib.distributed's collectives: the MPI backend takes CPU tensors only (a CUDA one gets
# torch's CUDA-aware MPI error, tests/tensorlib/distributed); NCCL, for CUDA tensors, is not built
@pytest.mark.parametrize("name", sorted(n for n in all_cases() if n not in ("from_numpy", "alias_dtype", "pin_memory")
                                        and not n.startswith("c10d::")))
def test_every_op_runs_on_cuda(name):
    fn, inputs = all_cases()[name]()
    cu = [t.detach().cuda().requires_grad_(t.requires_grad) if isinstance(t, tl.Tensor) else t for t in inputs]
    if name in CPU_ONLY:        # sparse COO: refused on CUDA, saying so
        with pytest.raises(NotImplementedError, match="sparse COO tensors are CPU-only"):
            fn(*cu)
        return
    try:
        out = fn(*cu)
    except RuntimeError as e:
        if "same device" in str(e) or "indices should be" in str(e):  # the case builds a CPU index/mask itself
            pytest.skip("the sample call mixes a CPU index or mask into the op")
        raise
    if not inputs:
        return  # factories: their sample calls build CPU tensors
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if isinstance(o, tl.Tensor):
            assert o.is_cuda, f"{name} produced a CPU tensor from CUDA inputs"
