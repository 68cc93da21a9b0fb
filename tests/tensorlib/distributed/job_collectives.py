"""Run by test_mpi.py under `mpiexec -n N`: every collective against a NumPy reference; prints OK per check."""
import sys

import numpy as np

import tensorlib as tl
import tensorlib.distributed as dist

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "mpi"


def base(k, dtype=np.float64, size=6):
    """What rank k contributes: deterministic, different per rank."""
    return (np.arange(size) + 10 * k + 1).astype(dtype)


def T(a):
    return tl.tensor(a)


allv = np.stack([base(k) for k in range(n)])
for op, ref in ((dist.ReduceOp.SUM, allv.sum(0)), (dist.ReduceOp.MAX, allv.max(0)), (dist.ReduceOp.MIN, allv.min(0)),
                (dist.ReduceOp.PRODUCT, allv.prod(0)), (dist.ReduceOp.AVG, allv.mean(0))):
    t = T(base(r))
    dist.all_reduce(t, op=op)
    np.testing.assert_allclose(t.numpy(), ref)
for dt in (np.int64, np.int32, np.float32, np.float16, np.uint8):
    t = T(base(r, dt))
    w = dist.all_reduce(t, async_op=True)
    assert w.wait() is True and w.is_completed()
    np.testing.assert_array_equal(t.numpy(), np.stack([base(k, dt) for k in range(n)]).sum(0).astype(dt))
b = T(np.array([r == 1, False]))
dist.all_reduce(b)
assert b.numpy().tolist() == [n > 1, False]
print("OK all_reduce")

t = T(base(r))
dist.broadcast(t, src=n - 1)
np.testing.assert_array_equal(t.numpy(), base(n - 1))
t = T(base(r))
dist.reduce(t, dst=0)
if r == 0:
    np.testing.assert_array_equal(t.numpy(), allv.sum(0))
print("OK broadcast reduce")

outs = [T(np.zeros(6)) for _ in range(n)]
dist.all_gather(outs, T(base(r)))
np.testing.assert_array_equal(np.stack([o.numpy() for o in outs]), allv)
out = T(np.zeros(6 * n))
dist.all_gather_into_tensor(out, T(base(r)))
np.testing.assert_array_equal(out.numpy(), allv.reshape(-1))
print("OK all_gather")

inp = np.stack([base(k, size=3 * n) for k in range(n)])      # rank k's input
o = T(np.zeros(3))
dist.reduce_scatter_tensor(o, T(inp[r]))
np.testing.assert_array_equal(o.numpy(), inp.sum(0).reshape(n, 3)[r])
o = T(np.zeros(3))
dist.reduce_scatter(o, [T(x) for x in inp[r].reshape(n, 3)])
np.testing.assert_array_equal(o.numpy(), inp.sum(0).reshape(n, 3)[r])
print("OK reduce_scatter")

gl = [T(np.zeros(6)) for _ in range(n)] if r == 0 else None
dist.gather(T(base(r)), gl, dst=0)
if r == 0:
    np.testing.assert_array_equal(np.stack([g.numpy() for g in gl]), allv)
t = T(np.zeros(6))
dist.scatter(t, [T(base(k) * 2) for k in range(n)] if r == 0 else None, src=0)
np.testing.assert_array_equal(t.numpy(), base(r) * 2)
print("OK gather scatter")

# all_to_all_single: equal splits, then uneven ones (rank k sends k+1+j rows to rank j)
inp = np.arange(2 * n, dtype=np.float64) + 100 * r
out = T(np.zeros(2 * n))
dist.all_to_all_single(out, T(inp))
expect = np.concatenate([np.arange(2 * n)[2 * r:2 * r + 2] + 100 * k for k in range(n)])
np.testing.assert_array_equal(out.numpy(), expect)
ins = [r + 1 + j for j in range(n)]
outs_ = [k + 1 + r for k in range(n)]
src = np.arange(sum(ins), dtype=np.float32) + 1000 * r
dst = T(np.zeros(sum(outs_), np.float32))
dist.all_to_all_single(dst, T(src), output_split_sizes=outs_, input_split_sizes=ins)
exp = []
for k in range(n):
    kin = [k + 1 + j for j in range(n)]
    off = sum(kin[:r])
    exp.append(np.arange(sum(kin), dtype=np.float32)[off:off + kin[r]] + 1000 * k)
np.testing.assert_array_equal(dst.numpy(), np.concatenate(exp))
print("OK all_to_all_single")

if n > 1:
    peer = 1 - r if r < 2 else None
    if peer is not None:
        t = T(np.zeros(4))
        w = dist.isend(T(base(r, size=4)), dst=peer)
        assert dist.recv(t, src=peer) == peer
        w.wait()
        np.testing.assert_array_equal(t.numpy(), base(peer, size=4))
print("OK send recv")

objs = [None] * n
dist.all_gather_object(objs, {"rank": r, "s": "x" * r})
assert objs == [{"rank": k, "s": "x" * k} for k in range(n)], objs
lst = [r, "a"] if r == 0 else [None, None]
dist.broadcast_object_list(lst, src=0)
assert lst == [0, "a"]
got = [None] * n if r == 0 else None
dist.gather_object(("g", r), got, dst=0)
if r == 0:
    assert got == [("g", k) for k in range(n)], got
mine = [None]
dist.scatter_object_list(mine, [{"to": k} for k in range(n)] if r == 0 else None, src=0)
assert mine == [{"to": r}], mine
print("OK objects")

dist.barrier()
sub = dist.new_group([0])
if r == 0:
    t = T(base(r))
    dist.all_reduce(t, group=sub)
    np.testing.assert_array_equal(t.numpy(), base(0))
    assert dist.get_world_size(sub) == 1
else:
    assert sub is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(sub) == -1
print("OK new_group")

# a rank that passes another size gets an error naming the ranks, not a hang
if n > 1:
    t = T(np.zeros(4 + r))
    try:
        dist.all_reduce(t)
    except RuntimeError as e:
        assert "all_reduce: ranks disagree" in str(e) and "rank 1" in str(e), e
        print("OK mismatch")
    else:
        sys.exit("no error on mismatched sizes")
# ... and so does one that passes another reduction op
if n > 1:
    try:
        dist.all_reduce(T(np.ones(3)), op=dist.ReduceOp.MAX if r == 1 else dist.ReduceOp.SUM)
    except RuntimeError as e:
        assert "rank 0 called all_reduce with 3 elements of float64 (op SUM) while rank 1 called all_reduce " \
               "with 3 elements of float64 (op MAX)" in str(e), e
        print("OK op mismatch")
    else:
        sys.exit("no error on mismatched ops")


class CountingComm:
    """A group's communicator that counts the MPI calls made on it."""

    def __init__(self, comm):
        self.comm = comm
        self.calls = []

    def __getattr__(self, name):
        f = getattr(self.comm, name)
        if not name[0].isupper() or not callable(f):
            return f

        def counted(*a, **k):
            self.calls.append(name)
            return f(*a, **k)
        return counted


# TORCH_DISTRIBUTED_DEBUG=OFF, set when a group is made: its collectives skip the check (one MPI call, not two)
if n > 1:
    import os
    os.environ["TORCH_DISTRIBUTED_DEBUG"] = "OFF"
    unchecked = dist.new_group(list(range(n)))
    del os.environ["TORCH_DISTRIBUTED_DEBUG"]
    checked = dist.new_group(list(range(n)))
    for g in (unchecked, checked):
        g.comm = CountingComm(g.comm)
        t = T(base(r))
        dist.all_reduce(t, group=g)
        np.testing.assert_array_equal(t.numpy(), allv.sum(0))
        dist.broadcast(t, src=0, group=g)
    assert unchecked.comm.calls == ["Allreduce", "Bcast"] and unchecked._calls == 0, unchecked.comm.calls
    # every rank on this host: the check goes through shared memory, with no MPI call of its own
    assert checked._slots is not None and checked._calls == 2, checked._calls
    assert checked.comm.calls == ["Allreduce", "Bcast"], checked.comm.calls
    # a group on several hosts has no shared slots: one allgather per check, and a mismatch still named
    spread = dist.new_group(list(range(n)))
    spread._slots = None
    spread.comm = CountingComm(spread.comm)
    dist.all_reduce(T(np.ones(3)), group=spread)
    assert spread.comm.calls == ["Allgather", "Allreduce"], spread.comm.calls
    try:
        dist.broadcast(T(np.ones(2 + r)), src=0, group=spread)
    except RuntimeError as e:
        assert "rank 0 called broadcast with 2 elements of float64 (root 0) while rank 1 called broadcast with 3 " \
               "elements of float64 (root 0)" in str(e), e
    else:
        sys.exit("no error on mismatched sizes in a group without shared slots")
    print("OK debug off")
# a group with its own timeout: a collective that a rank joins too late ends in an error naming it
if n > 1:
    import time
    from datetime import timedelta
    quick = dist.new_group(list(range(n)), timeout=timedelta(seconds=0.3))
    if r == 0:
        try:
            dist.all_reduce(T(np.ones(2)), group=quick)
        except RuntimeError as e:
            assert "mpi:all_reduce: timed out after 0.3 s" in str(e), e
            print("OK timeout")
        else:
            sys.exit("no timeout")
    else:
        time.sleep(0.8)                 # late: rank 0 has given up waiting, its MPI call completes now
        dist.all_reduce(T(np.ones(2)), group=quick)
        print("OK timeout")
    dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print("DONE")
