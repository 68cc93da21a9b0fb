"""Run by test_mpi.py under `mpiexec -n 2`: DDP on 2 ranks against one process on the global batch.

Every rank also trains the single-process reference itself (same seed, same data), so the comparison
needs no files: after N steps of SGD the DDP replica's parameters and gradients equal the reference's
within 1e-6 relative (float64). Covers bucketing (a tiny bucket_cap_mb: several buckets), no_sync
accumulation, find_unused_parameters, buffers and the state-dict keys."""
import numpy as np

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP
from tensorlib.utils.data import DistributedSampler

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()


class Net(nn.Module):
    def __init__(self, unused=False):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 4)
        self.extra = nn.Linear(4, 4) if unused else None

    def forward(self, x, use_extra=False):
        y = self.fc2(tl.tanh(self.bn(self.fc1(x))))
        return self.extra(y) if use_extra else y


def make(seed, unused=False):
    tl.manual_seed(seed)
    return Net(unused).double()


rng = np.random.default_rng(0)
X = tl.tensor(rng.standard_normal((64, 8)))
Y = tl.tensor(rng.standard_normal((64, 4)))


def close(a, b, what):
    a, b = a.detach().numpy(), b.detach().numpy()
    err = np.max(np.abs(a - b) / (np.abs(b) + 1e-12))
    assert np.allclose(a, b, rtol=1e-6, atol=1e-12), f"{what}: max rel err {err}"


# the reference: one process, the whole batch; fc1/fc2 only (BatchNorm's batch statistics differ per shard)
ref = make(1)
ref.bn = nn.Identity()
model = make(1 + r)            # different init per rank: DDP must broadcast rank 0's
model.bn = nn.Identity()
ddp = DDP(model, bucket_cap_mb=0.0002)      # ~200 bytes: several buckets
assert len(ddp._buckets) > 1, len(ddp._buckets)
assert all(k.startswith("module.") for k in ddp.state_dict()), list(ddp.state_dict())
for p, q in zip(ddp.module.parameters(), ref.parameters()):
    close(p, q, "broadcast at construction")
opt_ref = tl.optim.SGD(ref.parameters(), lr=0.1)
opt = tl.optim.SGD(ddp.parameters(), lr=0.1)
sampler = DistributedSampler(range(64), shuffle=False)
mine = list(sampler)
assert mine == list(range(r, 64, n)), mine
for step in range(3):
    opt_ref.zero_grad()
    nn.functional.mse_loss(ref(X), Y).backward()
    opt_ref.step()
    opt.zero_grad()
    nn.functional.mse_loss(ddp(X[mine]), Y[mine]).backward()
    for p, q in zip(ddp.module.parameters(), ref.parameters()):
        close(p.grad, q.grad, f"step {step} grad")
    opt.step()
for p, q in zip(ddp.module.parameters(), ref.parameters()):
    close(p, q, "parameters after 3 steps")
print("OK ddp equals single process")

# gradient_as_bucket_view=True: the same training, each .grad a view of its bucket (no copy out); zero_grad
# both ways (to None: the hook divides the new gradient into the slot; in place: it adds to the view), and
# no_sync accumulating into the views
vref = make(3)
vref.bn = nn.Identity()
vmodel = make(3 + r)
vmodel.bn = nn.Identity()
vddp = DDP(vmodel, bucket_cap_mb=0.0002, gradient_as_bucket_view=True)
assert vddp.gradient_as_bucket_view and len(vddp._buckets) > 1
o_vref = tl.optim.SGD(vref.parameters(), lr=0.1)
o_v = tl.optim.SGD(vddp.parameters(), lr=0.1)
for step in range(4):
    o_vref.zero_grad(set_to_none=step < 2)
    nn.functional.mse_loss(vref(X), Y).backward()
    o_vref.step()
    o_v.zero_grad(set_to_none=step < 2)
    nn.functional.mse_loss(vddp(X[mine]), Y[mine]).backward()
    for p, q in zip(vddp.module.parameters(), vref.parameters()):
        close(p.grad, q.grad, f"bucket view step {step} grad")
        assert any(np.shares_memory(p.grad.numpy(), b.flat) for b in vddp._buckets), "grad is a bucket view"
    o_v.step()
for p, q in zip(vddp.module.parameters(), vref.parameters()):
    close(p, q, "bucket view parameters after 4 steps")
vref.zero_grad()
nn.functional.mse_loss(vref(X), Y).backward()
vddp.zero_grad(set_to_none=False)
half = len(mine) // 2
with vddp.no_sync():
    (nn.functional.mse_loss(vddp(X[mine[:half]]), Y[mine[:half]]) / 2).backward()
(nn.functional.mse_loss(vddp(X[mine[half:]]), Y[mine[half:]]) / 2).backward()
for p, q in zip(vddp.module.parameters(), vref.parameters()):
    close(p.grad, q.grad, "bucket view no_sync accumulation")
print("OK gradient_as_bucket_view")

# no_sync: two half-batches accumulated locally, then one synchronised backward = the whole batch
ref.zero_grad()
nn.functional.mse_loss(ref(X), Y).backward()
ddp.zero_grad()
half = len(mine) // 2
with ddp.no_sync():
    (nn.functional.mse_loss(ddp(X[mine[:half]]), Y[mine[:half]]) / 2).backward()
g_local = ddp.module.fc1.weight.grad.clone()
(nn.functional.mse_loss(ddp(X[mine[half:]]), Y[mine[half:]]) / 2).backward()
assert not np.allclose(g_local.numpy(), ddp.module.fc1.weight.grad.numpy())
for p, q in zip(ddp.module.parameters(), ref.parameters()):
    close(p.grad, q.grad, "no_sync accumulation")
print("OK no_sync")

# find_unused_parameters: rank 0 uses `extra`, rank 1 does not; both get the average of rank 0's grad and 0
um = make(5, unused=True)
um.bn = nn.Identity()
uddp = DDP(um, find_unused_parameters=True)
out = uddp(X[mine], use_extra=(r == 0))
out.sum().backward()
w = um.extra.weight.grad
assert w is not None, "a parameter used on another rank gets the average"
g = w.clone()
dist.all_reduce(g)          # every rank holds the same average
close(g / n, w, "unused-parameter average")
print("OK find_unused_parameters")

# without find_unused_parameters, an unused parameter leaves the reduction unfinished: torch's error next forward
um2 = make(6, unused=True)
um2.bn = nn.Identity()
u2 = DDP(um2)
u2(X[mine]).sum().backward()
try:
    u2(X[mine])
except RuntimeError as e:
    assert "Expected to have finished reduction in the prior iteration" in str(e), e
    print("OK unfinished reduction")

# buffers: broadcast from rank 0 at each forward
bm = make(7)
bd = DDP(bm)
bm.bn.running_mean.fill_(float(r + 1))
bd.eval()                   # eval: the forward itself leaves the running statistics as they are
bd(X[mine])
assert np.array_equal(bm.bn.running_mean.numpy(), np.ones(16)), "rank 0's buffers broadcast at forward"
print("OK buffers")
# SyncBatchNorm: DDP over a converted model on half batches equals BatchNorm on the whole batch, gradients,
# parameters and running statistics alike
ref = make(9)
sync = nn.SyncBatchNorm.convert_sync_batchnorm(make(9))
assert isinstance(sync.bn, nn.SyncBatchNorm)
sddp = DDP(sync)
o_ref = tl.optim.SGD(ref.parameters(), lr=0.1)
o_s = tl.optim.SGD(sddp.parameters(), lr=0.1)
for step in range(2):
    o_ref.zero_grad()
    nn.functional.mse_loss(ref(X), Y).backward()
    o_ref.step()
    o_s.zero_grad()
    nn.functional.mse_loss(sddp(X[mine]), Y[mine]).backward()
    for p, q in zip(sync.parameters(), ref.parameters()):
        close(p.grad, q.grad, f"SyncBatchNorm step {step} grad")
    o_s.step()
close(sync.bn.running_mean, ref.bn.running_mean, "SyncBatchNorm running_mean")
close(sync.bn.running_var, ref.bn.running_var, "SyncBatchNorm running_var")
print("OK sync batchnorm")
dist.destroy_process_group()
print("DONE")
