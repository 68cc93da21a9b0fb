"""Sample calls of the c10d ops (tensorlib.distributed's collectives), each in a one-rank MPI group that the
call makes and destroys, so no other test finds a process group initialized."""
from __future__ import annotations

import tensorlib as tl


def _in_group(call):
    def fn(*inputs):
        import tensorlib.distributed as dist
        dist.init_process_group("mpi")
        try:
            return call(dist, *inputs)
        finally:
            dist.destroy_process_group()
    return fn


def _case(call, *shapes):
    return lambda: (_in_group(call), [tl.ones(*s) for s in shapes])


CASES = {
    "c10d::allreduce_": _case(lambda d, t: d.all_reduce(t), (4,)),
    "c10d::broadcast_": _case(lambda d, t: d.broadcast(t, src=0), (4,)),
    "c10d::reduce_": _case(lambda d, t: d.reduce(t, dst=0), (4,)),
    "c10d::allgather_": _case(lambda d, o, t: d.all_gather([o], t), (4,), (4,)),
    "c10d::_allgather_base_": _case(lambda d, o, t: d.all_gather_into_tensor(o, t), (4,), (4,)),
    "c10d::reduce_scatter_": _case(lambda d, o, t: d.reduce_scatter(o, [t]), (4,), (4,)),
    "c10d::_reduce_scatter_base_": _case(lambda d, o, t: d.reduce_scatter_tensor(o, t), (4,), (4,)),
    "c10d::gather_": _case(lambda d, t, o: d.gather(t, [o], dst=0), (4,), (4,)),
    "c10d::scatter_": _case(lambda d, t, i: d.scatter(t, [i], src=0), (4,), (4,)),
    "c10d::alltoall_base_": _case(lambda d, o, t: d.all_to_all_single(o, t), (4,), (4,)),
    "c10d::barrier": _case(lambda d: d.barrier()),
    "c10d::send": _case(lambda d, t: _self_send(d, t), (4,)),
    "c10d::recv_": _case(lambda d, t: _self_send(d, t), (4,)),
}


def _self_send(d, t):
    """One rank sending to itself: torch's isend refuses a destination equal to the sender, so the send
    goes through the same dispatched path (`_p2p`) as isend's, and irecv receives it."""
    from tensorlib.distributed import _pg
    pg = d._default()
    a = d._tensor(t).copy()         # the checks isend makes: a CUDA tensor gets torch's CUDA-aware MPI error
    w = d._p2p("c10d::send", "mpi:send", pg, t, lambda: pg.comm.Isend(_pg.raw(a), dest=0), {})
    out = tl.zeros(4)
    d.irecv(out, src=0).wait()
    w.wait()
    return out
