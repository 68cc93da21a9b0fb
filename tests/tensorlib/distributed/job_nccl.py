"""Run by test_nccl.py under `mpiexec -n 2` with the fake CuPy (tests/fakecupy, FAKECUPY_RULES=14) or a real one:
every collective of the NCCL backend on CUDA tensors against NumPy, the backends' wrong-device errors, and a
DDP step on NCCL equal to one process's training on the global batch; prints OK per check."""
import numpy as np

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP

assert dist.is_nccl_available()
dist.init_process_group("nccl")
r, n = dist.get_rank(), dist.get_world_size()
assert dist.get_backend() == "nccl"
dev = tl.device("cuda", r % tl.cuda.device_count())     # a GPU per rank, as NCCL wants (the fake: one will do)
tl.cuda.set_device(dev)


def base(k, dtype=np.float64, size=6):
    return (np.arange(size) + 10 * k + 1).astype(dtype)


def T(a):
    return tl.tensor(a, device=dev)


def host(t):
    return t.cpu().numpy()


allv = np.stack([base(k) for k in range(n)])
for op, ref in ((dist.ReduceOp.SUM, allv.sum(0)), (dist.ReduceOp.MAX, allv.max(0)), (dist.ReduceOp.MIN, allv.min(0)),
                (dist.ReduceOp.PRODUCT, allv.prod(0)), (dist.ReduceOp.AVG, allv.mean(0))):
    t = T(base(r))
    dist.all_reduce(t, op=op)
    np.testing.assert_allclose(host(t), ref)
for dt in (np.int64, np.int32, np.float32, np.float16, np.uint8, np.int8):
    t = T(base(r, dt))
    w = dist.all_reduce(t, async_op=True)
    assert w.wait() is True
    np.testing.assert_array_equal(host(t), np.stack([base(k, dt) for k in range(n)]).sum(0).astype(dt))
b = T(np.array([r == 1, False]))
dist.all_reduce(b)
assert host(b).tolist() == [n > 1, False]
try:
    dist.all_reduce(T(base(r, np.int16)))
    raise AssertionError("int16 on NCCL")
except TypeError as e:
    assert "not supported for NCCL process group: Short" in str(e), e
try:
    dist.all_reduce(T(base(r, np.int64)), op=dist.ReduceOp.BAND)
    raise AssertionError("BAND on NCCL")
except ValueError as e:
    assert str(e) == "Cannot use ReduceOp.BAND with NCCL", e
print("OK all_reduce")

t = T(base(r))
dist.broadcast(t, src=n - 1)
np.testing.assert_array_equal(host(t), base(n - 1))
t = T(base(r))
dist.reduce(t, dst=0)
if r == 0:
    np.testing.assert_array_equal(host(t), allv.sum(0))
print("OK broadcast reduce")

outs = [T(np.zeros(6)) for _ in range(n)]
dist.all_gather(outs, T(base(r)))
np.testing.assert_array_equal(np.stack([host(o) for o in outs]), allv)
out = T(np.zeros(6 * n))
dist.all_gather_into_tensor(out, T(base(r)))
np.testing.assert_array_equal(host(out), allv.reshape(-1))
print("OK all_gather")

inp = np.stack([base(k, size=3 * n) for k in range(n)])
o = T(np.zeros(3))
dist.reduce_scatter_tensor(o, T(inp[r]))
np.testing.assert_array_equal(host(o), inp.sum(0).reshape(n, 3)[r])
o = T(np.zeros(3))
dist.reduce_scatter(o, [T(x) for x in inp[r].reshape(n, 3)])
np.testing.assert_array_equal(host(o), inp.sum(0).reshape(n, 3)[r])
print("OK reduce_scatter")

gl = [T(np.zeros(6)) for _ in range(n)] if r == 0 else None
dist.gather(T(base(r)), gl, dst=0)
if r == 0:
    np.testing.assert_array_equal(np.stack([host(g) for g in gl]), allv)
t = T(np.zeros(6))
dist.scatter(t, [T(base(k) * 2) for k in range(n)] if r == 0 else None, src=0)
np.testing.assert_array_equal(host(t), base(r) * 2)
print("OK gather scatter")

inp = np.arange(2 * n, dtype=np.float64) + 100 * r
out = T(np.zeros(2 * n))
dist.all_to_all_single(out, T(inp))
expect = np.concatenate([np.arange(2 * n)[2 * r:2 * r + 2] + 100 * k for k in range(n)])
np.testing.assert_array_equal(host(out), expect)
print("OK all_to_all_single")

peer = (r + 1) % n
src = (r - 1) % n
got = T(np.zeros(6))
if r % 2 == 0:
    dist.send(T(base(r)), dst=peer)
    dist.recv(got, src=src)
else:
    dist.recv(got, src=src)
    dist.send(T(base(r)), dst=peer)
np.testing.assert_array_equal(host(got), base(src))
dist.barrier()
print("OK send recv")

objs = [None] * n
dist.all_gather_object(objs, {"rank": r})
assert objs == [{"rank": k} for k in range(n)], objs
lst = [f"from {r}", r] if r == 0 else [None, None]
dist.broadcast_object_list(lst, src=0)
assert lst == ["from 0", 0], lst
print("OK objects")

# the wrong device for the backend: torch's message
try:
    dist.all_reduce(tl.ones(3))
    raise AssertionError("CPU tensor on NCCL")
except RuntimeError as e:
    assert str(e) == "No backend type associated with device type cpu", e
# ranks that disagree: one error naming the rank, not a hang
try:
    dist.all_reduce(T(np.zeros(4 + r)))
    raise AssertionError("mismatch not detected")
except RuntimeError as e:
    assert "all_reduce: ranks disagree" in str(e) and "rank 1 called all_reduce with 5 elements" in str(e), e
print("OK errors")

# DDP on NCCL: the replica's parameters after N steps equal one process's on the global batch (float64)
rng = np.random.default_rng(0)
X = rng.standard_normal((32, 8))
Y = rng.standard_normal((32, 4))


def make(seed):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)).double()


ref = make(1).to(dev)
ddp = DDP(make(1 + r).to(dev), bucket_cap_mb=0.0002)
assert len(ddp._buckets) > 1
opt_ref = tl.optim.SGD(ref.parameters(), lr=0.1)
opt = tl.optim.SGD(ddp.parameters(), lr=0.1)
shard = slice(r * 32 // n, (r + 1) * 32 // n)
for step in range(3):
    opt_ref.zero_grad()
    nn.functional.mse_loss(ref(T(X)), T(Y)).backward()
    opt_ref.step()
    opt.zero_grad()
    nn.functional.mse_loss(ddp(T(X[shard])), T(Y[shard])).backward()
    opt.step()
for p, q in zip(ddp.module.parameters(), ref.parameters()):
    assert p.is_cuda
    np.testing.assert_allclose(host(p.detach()), host(q.detach()), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(host(p.grad), host(q.grad), rtol=1e-6, atol=1e-12)
print("OK ddp on nccl")

# profiled: the collective's range, its record_param_comms with Kineto's args, and its work on the GPU lane
import json  # noqa: E402
import tempfile  # noqa: E402

import profiler  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    t = T(base(r))
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU, profiler.ProfilerActivity.CUDA]) as p:
        dist.all_reduce(t)
    p.export_chrome_trace(f"{tmp}/t.json")
    with open(f"{tmp}/t.json") as f:
        doc = json.load(f)
ev = doc["traceEvents"]
assert doc["distributedInfo"]["backend"] == "nccl" and doc["distributedInfo"]["rank"] == r
comm = [e for e in ev if e.get("name") == "record_param_comms"]
assert len(comm) == 1 and comm[0]["args"]["Collective name"] == "allreduce", comm
assert comm[0]["args"]["In msg nelems"] == 6 and comm[0]["args"]["Group size"] == n
assert any(e.get("name") == "nccl:all_reduce" for e in ev)
assert any(e.get("cat") == "kernel" and e.get("name") == "c10d::allreduce_" for e in ev), "no GPU work of the call"
print("OK profiled")

dist.destroy_process_group()
