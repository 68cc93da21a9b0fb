"""CUDA paths that tests/tensorlib/test_cuda.py does not reach: factories and ops whose sample calls
build CPU tensors themselves (run here with every tensor on the device), memory accounting,
serialization, AMP training, device round trips. Run on a GPU by `make test-gpu`, and on the CPU
against the fake CuPy (tests/fakecupy) by `make test`."""
from __future__ import annotations

import gc
import io

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tests.tensorlib import op_cases
from tests.tensorlib.op_cases import CPU_ONLY, all_cases

pytestmark = pytest.mark.cuda

# ops whose sample call builds a CPU tensor (index, mask, constant) or is a factory
_MIXED = ["_amp_non_finite_check_and_unscale_", "bernoulli_", "bincount", "bucketize", "embedding", "exponential_",
          "gather", "index", "searchsorted",
          "index_add", "index_select", "masked_fill", "masked_fill_", "nll_loss", "nll_loss_backward", "normal_",
          "scatter", "scatter_add", "uniform_"]
_FACTORIES = ["zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
              "tensor", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like"]


def _cuda_factory(f):
    def g(*a, **k):
        if k.get("device") is None:
            k["device"] = "cuda"
        return f(*a, **k)
    return g


@pytest.fixture
def cuda_by_default(monkeypatch):
    """Factories called without device= make CUDA tensors, and _fixed constants are moved to CUDA."""
    for name in _FACTORIES:
        if hasattr(tl, name) and not name.endswith("_like"):
            monkeypatch.setattr(tl, name, _cuda_factory(getattr(tl, name)))
    import tests.tensorlib.op_cases_nn as nn_cases

    def fixed(fn, inputs, *consts):
        consts = tuple(c.cuda() if isinstance(c, tl.Tensor) else c for c in consts)
        return (lambda *xs: fn(*xs, *consts)), inputs
    monkeypatch.setattr(op_cases, "_fixed", fixed)
    monkeypatch.setattr(nn_cases, "_fixed", fixed)


@pytest.mark.parametrize("name", sorted(set(_MIXED) | {n for n in all_cases() if n in _FACTORIES}))
def test_op_runs_on_cuda_with_every_tensor_there(name, cuda_by_default):
    fn, inputs = all_cases()[name]()
    cu = [t.detach().cuda().requires_grad_(t.requires_grad) if isinstance(t, tl.Tensor) else t for t in inputs]
    out = fn(*cu)
    outs = out if isinstance(out, tuple) else (out,)
    assert any(isinstance(o, tl.Tensor) for o in outs)
    for o in outs:
        if isinstance(o, tl.Tensor):
            assert o.is_cuda, f"{name} produced a CPU tensor on CUDA inputs"
            if o.requires_grad and o.dtype.is_floating_point:
                o.sum().backward()


def test_cpu_index_tensor_indexes_a_cuda_tensor_like_torch():
    x = tl.arange(12.0, device="cuda").reshape(3, 4)
    idx = tl.tensor([2, 0])
    np.testing.assert_array_equal(x[idx].cpu().numpy(), x.cpu().numpy()[[2, 0]])
    x[idx] = 0.0
    assert float(x.sum()) == sum(range(4, 8))
    with pytest.raises(RuntimeError, match="indices should be either on cpu or on the same device"):
        tl.arange(4.0)[tl.tensor([1], device="cuda")]


def test_to_and_cpu_round_trips_keep_values_dtype_and_grad():
    x = tl.randn(3, 4, dtype=tl.float64, requires_grad=True)
    g = x.to("cuda")
    assert g.is_cuda and g.dtype == tl.float64 and g.requires_grad and g.device == tl.device("cuda", 0)
    h = g.to("cuda", dtype=tl.float32)
    assert h.dtype == tl.float32 and h.is_cuda
    assert g.to("cuda") is g and x.cpu() is x
    back = h.cpu()
    assert back.device == tl.device("cpu")
    np.testing.assert_allclose(back.detach().numpy(), x.detach().numpy().astype(np.float32))
    (g * 2).sum().backward()
    assert not x.grad.is_cuda and float(x.grad.sum()) == 24.0
    assert tl.zeros(2, device="cuda").cuda().tolist() == [0.0, 0.0]
    c = tl.empty(3, device="cuda")
    c.copy_(tl.tensor([1.0, 2.0, 3.0]))           # copy_ moves across devices
    assert c.is_cuda and c.tolist() == [1.0, 2.0, 3.0]


def test_mixing_devices_gives_torchs_error():
    with pytest.raises(RuntimeError, match=r"Expected all tensors to be on the same device, but found at least two "
                                           r"devices, cuda:0 and cpu!"):
        tl.matmul(tl.ones(2, 2, device="cuda"), tl.ones(2, 2))
    with pytest.raises(RuntimeError, match="same device"):
        tl.cat([tl.ones(2, device="cuda"), tl.ones(2)])


def test_cuda_memory_counts_tensors_and_peaks():
    gc.collect()
    tl.cuda.empty_cache()
    base = tl.cuda.memory_allocated()
    tl.cuda.reset_peak_memory_stats()
    a = tl.zeros(1000, device="cuda")          # 4000 bytes -> one 4096-byte block
    b = a[10:]                                  # a view: no new memory
    assert tl.cuda.memory_allocated() - base == 4096
    c = tl.ones(100, 100, device="cuda")        # 40000 bytes -> 40448
    assert tl.cuda.memory_allocated() - base == 4096 + 40448
    del a, b, c
    gc.collect()
    assert tl.cuda.memory_allocated() == base
    assert tl.cuda.max_memory_allocated() - base == 4096 + 40448
    st = tl.cuda.memory_stats()
    assert st["allocated_bytes.all.peak"] == tl.cuda.max_memory_allocated()
    assert st["allocation.all.allocated"] >= 2
    assert tl.cuda.memory_reserved() >= 4096 + 40448
    summary = tl.cuda.memory_summary()
    assert "Allocated memory" in summary and "GPU reserved memory" in summary
    reserved = tl.cuda.memory_reserved()
    tl.cuda.empty_cache()
    # not reserved == allocated: CuPy's pool keeps a chunk split between a live and a freed block (seen on an
    # H200 after other tests of the process; the fake's pool does not split); test_memory checks that a chunk
    # of its own is given back
    assert tl.cuda.memory_allocated() <= tl.cuda.memory_reserved() <= reserved


def test_save_and_load_of_cuda_tensors_with_map_location(tmp_path):
    sd = {"w": tl.randn(3, 2, device="cuda"), "step": tl.tensor(7, device="cuda"), "cpu": tl.ones(2)}
    p = tmp_path / "ckpt.pt"
    tl.save(sd, p)
    same = tl.load(p)
    assert same["w"].is_cuda and not same["cpu"].is_cuda
    np.testing.assert_array_equal(same["w"].cpu().numpy(), sd["w"].cpu().numpy())
    on_cpu = tl.load(p, map_location="cpu")
    assert not on_cpu["w"].is_cuda and int(on_cpu["step"]) == 7
    all_cuda = tl.load(p, map_location="cuda:0")
    assert all_cuda["cpu"].is_cuda
    buf = io.BytesIO()
    tl.save(sd["w"], buf)
    buf.seek(0)
    assert tl.load(buf, map_location=lambda storage, loc: storage).is_cuda is not None


def test_model_cuda_training_step_with_autocast_and_grad_scaler():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).cuda()
    assert all(p.is_cuda for p in model.parameters())
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler("cuda")
    x = tl.randn(5, 8, device="cuda")
    y = tl.tensor([0, 1, 2, 3, 0], device="cuda")
    before = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    for _ in range(2):
        opt.zero_grad()
        with tl.autocast("cuda", dtype=tl.float16):
            out = model(x)
            assert out.dtype == tl.float16 and out.is_cuda
            loss = nn.functional.cross_entropy(out.float(), y)
        scaler.scale(loss).backward()
        assert all(p.grad.is_cuda and p.grad.dtype == tl.float32 for p in model.parameters())
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() > 0
    after = [p.detach().cpu().numpy() for p in model.parameters()]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    # an inf gradient: the step is skipped and the scale backs off
    opt.zero_grad()
    scale = scaler.get_scale()
    with tl.autocast("cuda", dtype=tl.float16):
        loss = model(x).float().sum() * float("inf")
    scaler.scale(loss).backward()
    kept = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == scale * 0.5
    assert all(np.array_equal(a, p.detach().cpu().numpy()) for a, p in zip(kept, model.parameters()))


def test_dataloader_batches_moved_to_cuda():
    from tensorlib.utils.data import DataLoader, TensorDataset
    ds = TensorDataset(tl.arange(8.0).reshape(4, 2), tl.arange(4))
    for workers in (0, 1):
        for xb, yb in DataLoader(ds, batch_size=2, pin_memory=True, num_workers=workers):
            assert xb.is_pinned() and yb.is_pinned()
            xc = xb.cuda(non_blocking=True)
            assert xc.is_cuda and xc.cpu().tolist() == xb.tolist()


def test_cuda_generators_are_seeded_and_reproducible():
    tl.manual_seed(3)
    a = tl.randn(4, device="cuda")
    tl.manual_seed(3)
    b = tl.randn(4, device="cuda")
    assert a.is_cuda and a.tolist() == b.tolist()
    g = tl.Generator(device="cuda").manual_seed(5)
    r = tl.rand(3, device="cuda", generator=g)
    assert r.is_cuda and float(r.min()) >= 0.0 and float(r.max()) < 1.0
    p = tl.randperm(6, device="cuda")
    assert p.is_cuda and sorted(p.tolist()) == list(range(6))
    h = tl.rand(2, 3, device="cuda", dtype=tl.float16)
    assert h.dtype == tl.float16 and h.is_cuda


def _run(fn, inputs):
    out = fn(*inputs)
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, tl.Tensor)]
    diff = [o for o in outs if o.requires_grad and o.dtype.is_floating_point]
    if diff:
        sum((o.double() * (k + 1)).sum() for k, o in enumerate(diff)).backward()
    return ([o.detach().cpu().numpy() for o in outs],
            [t.grad.cpu().numpy() if isinstance(t, tl.Tensor) and t.grad is not None else None for t in inputs])


_RANDOM = {"bernoulli_", "exponential_", "normal_", "uniform_", "dropout", "native_dropout", "rand", "randn",
           "randint", "randperm",
           "rand_like", "randn_like", "random_fill", "empty", "empty_like", "empty_strided", "rrelu", "alpha_dropout",
           "feature_alpha_dropout", "dropout2d", "multinomial", "bernoulli", "random_", "poisson", "binomial",
           "_standard_gamma", "_sample_dirichlet", "pin_memory", "from_numpy",
           "alias_dtype"}


@pytest.mark.parametrize("name", sorted(n for n in all_cases() if n not in _RANDOM and n not in CPU_ONLY
                                        and not n.startswith("c10d::")))   # MPI, sparse: CPU only (test_cuda.py)
def test_forward_and_backward_on_cuda_match_cpu(name, cuda_by_default, monkeypatch):
    ref = _cpu_run(name, monkeypatch)
    fn, inputs = all_cases()[name]()
    cu = [t.detach().cuda().requires_grad_(t.requires_grad) if isinstance(t, tl.Tensor) else t for t in inputs]
    got = _run(fn, cu)
    for a, b in zip(got[0], ref[0]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{name}: output")
    for a, b in zip(got[1], ref[1]):
        assert (a is None) == (b is None), f"{name}: gradient present on one device only"
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{name}: gradient")


def _cpu_run(name, monkeypatch):
    """The same case run on the CPU, drawn from the same random numbers as the CUDA one (cases draw from
    op_cases._rng: both calls start from one saved state)."""
    state = op_cases._rng.bit_generator.state
    with monkeypatch.context() as m:
        import tests.tensorlib.op_cases_nn as nn_cases
        m.setattr(op_cases, "_fixed", _plain_fixed)
        m.setattr(nn_cases, "_fixed", _plain_fixed)
        for f in _FACTORIES:
            if hasattr(tl, f):
                m.setattr(tl, f, _ORIG[f])
        result = _run(*all_cases()[name]())
    op_cases._rng.bit_generator.state = state
    return result


def _plain_fixed(fn, inputs, *consts):
    return (lambda *xs: fn(*xs, *consts)), inputs


_ORIG = {f: getattr(tl, f) for f in _FACTORIES if hasattr(tl, f)}


def test_out_of_memory_is_counted():
    import cupy
    tl.zeros(1, device="cuda")
    pool = cupy.get_default_memory_pool()
    ooms = tl.cuda.memory_stats()["num_ooms"]
    tl.cuda.empty_cache()       # else the pool may serve 16 MiB from a cached free block within the limit
    pool.set_limit(size=pool.total_bytes() + (1 << 20))
    try:
        with pytest.raises(tl.cuda.OutOfMemoryError, match=r"CUDA out of memory\. Tried to allocate 16\.00 MiB") as ei:
            tl.zeros(1 << 22, device="cuda")
    finally:
        pool.set_limit(size=0)
    # torch's error type (a RuntimeError) and CuPy's (a MemoryError) both catch it; CuPy's fields survive
    assert isinstance(ei.value, RuntimeError) and isinstance(ei.value, cupy.cuda.memory.OutOfMemoryError)
    assert ei.value._size >= 1 << 24
    import pickle
    assert str(pickle.loads(pickle.dumps(ei.value))) == str(ei.value)
    assert tl.cuda.memory_stats()["num_ooms"] == ooms + 1
    assert "CUDA OOMs: " + str(ooms + 1) in tl.cuda.memory_summary()


def test_masked_fill_with_a_mask_on_another_device_gives_torchs_message():
    """Seen with torch 2.11 on an H200: a CPU causal mask against CUDA scores is refused with this message."""
    x, m = tl.zeros(2, 2, device="cuda"), tl.ones(2, 2, dtype=tl.bool)
    for f in (x.masked_fill, x.masked_fill_):
        with pytest.raises(RuntimeError, match=r"^expected self and mask to be on the same device, but got mask "
                                               r"on cpu and self on cuda:0$"):
            f(m, 1.0)
    assert x.masked_fill(m.cuda(), 1.0).cpu().tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_relu_backward_on_cuda_is_torchs_select():
    """threshold_backward on CuPy is torch's where(): 0 where the output is not positive, even for a NaN or
    inf gradient (the product it was before gave NaN there)."""
    x = tl.tensor([-1.0, 2.0, 0.0], device="cuda", requires_grad=True)
    x.relu().backward(tl.tensor([float("nan"), 3.0, float("inf")], device="cuda"))
    assert x.grad.cpu().tolist() == [0.0, 3.0, 0.0] and x.grad.dtype is tl.float32


@pytest.mark.parametrize("name", ["sqrt", "exp", "log", "tanh", "sigmoid"])
def test_in_place_unary_ops_on_cuda_equal_the_out_of_place_ones(name):
    """sqrt_, exp_, log_, tanh_, sigmoid_ write a float CUDA tensor's result into it (ops._define's `into`: the
    ufunc with out=, CuPy's as NumPy's) with the out-of-place op's values; an integer tensor still refuses."""
    x = tl.tensor(np.linspace(0.25, 2.0, 24, dtype=np.float32).reshape(4, 6)).cuda()
    want = getattr(x, name)()
    got = x.clone()
    assert getattr(got, name + "_")() is got and got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        getattr(tl.ones(3, dtype=tl.int64).cuda(), name + "_")()
