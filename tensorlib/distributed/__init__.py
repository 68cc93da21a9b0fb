"""torch.distributed on MPI (mpi4py; the `mpich` wheel from PyPI is enough): process groups, collectives,
point-to-point messages and object collectives, with torch's names, defaults and errors.

Launch a job with MPI's launcher, ``mpiexec -n 2 python train.py``; ``init_process_group("mpi")`` (or
backend=None) joins MPI's world. torchrun's variables (RANK, WORLD_SIZE) are checked against MPI's when
set; MASTER_ADDR/MASTER_PORT play no part, since MPI wires the ranks itself.

Every collective is a dispatched op named as torch's profiler names it (``c10d::allreduce_``, ...), so the
profiler sees the call; its execution (on the group's worker thread; a synchronous call with nothing queued
on the caller's) is a ``mpi:all_reduce``-style range
with Kineto's communication arguments (see _pg.py). The MPI backend holds CPU tensors; the NCCL backend
(``init_process_group("nccl")``, CuPy's cupy.cuda.nccl) holds CUDA tensors and runs each collective on the
tensor's current stream (see _nccl.py: the job is still launched by MPI, whose world carries NCCL's unique
id). Object collectives of an NCCL group travel through its MPI communicator (they are host data).

`broadcast_object_list`, `all_gather_object`, `gather_object`, `scatter_object_list` pickle their
objects, as torch's do: unpickling runs code chosen by the sending rank. The ranks of one job trust each
other; never pass objects that came from outside the job.
"""
from __future__ import annotations

import enum
import importlib.util
import io
import os
import pickle
import threading
from datetime import timedelta
from functools import partial

import numpy as np

from .. import _hooks
from .. import dispatch as _D
from .._tensor import Tensor
from . import _nccl, _pg
from ._nccl import NcclProcessGroup
from ._pg import DEFAULT_TIMEOUT, ProcessGroup, ReduceOp, Work

__all__ = ["is_available", "is_initialized", "is_mpi_available", "is_nccl_available", "is_gloo_available",
           "is_torchelastic_launched", "init_process_group", "destroy_process_group", "get_rank", "get_world_size",
           "get_backend", "get_process_group_ranks", "get_group_rank", "get_global_rank", "barrier", "all_reduce",
           "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor",
           "gather", "scatter", "send", "recv", "isend", "irecv", "all_to_all_single", "broadcast_object_list",
           "all_gather_object", "gather_object", "scatter_object_list", "new_group", "ReduceOp", "Backend", "Work",
           "ProcessGroup", "GroupMember", "group", "default_pg_timeout", "trace_info", "collective_records"]

default_pg_timeout = DEFAULT_TIMEOUT
_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


def is_available() -> bool:
    return True


def is_mpi_available() -> bool:
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    return _nccl.nccl_module() is not None


def is_gloo_available() -> bool:
    """"gloo", torch's CPU backend, is served here by the MPI backend (see init_process_group)."""
    return is_mpi_available()


def get_default_backend_for_device(device) -> str:
    """torch.distributed.get_default_backend_for_device: "gloo" for the CPU, "nccl" for CUDA."""
    t = device.type if hasattr(device, "type") else str(device).split(":")[0]
    if t == "cpu":
        return "gloo"
    if t == "cuda":
        return "nccl"
    raise RuntimeError(f"Default backend not registered for device : {device}")


def is_torchelastic_launched() -> bool:
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


class Backend(str):
    """torch.distributed.Backend: the backend's lower-case name, validated."""
    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    MPI = "mpi"

    def __new__(cls, name: str):
        if not isinstance(name, str):
            raise ValueError(f"Backend constructor parameter must be string-ish, but got: {type(name)}")
        value = name.lower()
        if value not in ("gloo", "nccl", "mpi", "undefined"):
            raise ValueError(f"Invalid backend: '{name}'")
        return str.__new__(cls, value)


class GroupMember:
    """torch's placeholders: ``GroupMember.WORLD`` (the default group) and ``NON_GROUP_MEMBER`` (what
    `new_group` returns on a rank outside the new group)."""
    WORLD = None
    NON_GROUP_MEMBER = -100


class group:  # noqa: N801 - torch's name
    WORLD = None


# -- the default group --------------------------------------------------------------------------------

class _World:
    def __init__(self):
        self.pg: ProcessGroup | None = None
        self.groups: list[ProcessGroup] = []
        self.lock = threading.Lock()


_W = _World()


def is_initialized() -> bool:
    return _W.pg is not None


def _default() -> ProcessGroup:
    pg = _W.pg
    if pg is None:
        raise ValueError(_NOT_INITIALIZED)
    return pg


def _group(g) -> ProcessGroup | None:
    """The ProcessGroup a call names: the default group for None; None on a rank outside `g`."""
    if g is None or g is GroupMember.WORLD:
        pg = _W.pg
        if pg is None:
            raise ValueError(_NOT_INITIALIZED)
        return pg
    _default()
    if g is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(g, ProcessGroup):
        raise TypeError(f"group must be a ProcessGroup returned by new_group (or None), got {type(g).__name__}")
    if g not in _W.groups and g is not _W.pg:
        raise ValueError("The given group has been destroyed or does not belong to the current process group; "
                         "create groups with new_group after init_process_group")
    return g


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join MPI's world as the default group. backend: "mpi" or None (the same): CPU tensors; "gloo" (torch's
    CPU backend, what get_default_backend_for_device gives the CPU): the same MPI collectives on CPU tensors,
    the group reporting "gloo" as its backend, so a program written for gloo runs unchanged under MPI's
    launcher; "nccl": CUDA tensors on NCCL (the unique id travels through MPI's world)."""
    if _W.pg is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else Backend(backend)
    if name == "nccl" and not is_nccl_available():
        raise RuntimeError("Distributed package doesn't have NCCL built in. For tensorlib: install CuPy with its "
                           "NCCL library (pip install cupy-cuda12x nvidia-nccl-cu12); or use init_process_group('mpi') "
                           "with CPU tensors")
    if name not in ("mpi", "nccl", "gloo"):
        raise ValueError(f"Invalid backend: '{backend}'")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_method={init_method!r}: the MPI backend forms its group through MPI's launcher; pass "
                         f"init_method=None or 'env://' and launch with `mpiexec -n N`")
    if store is not None:
        raise ValueError(f"store: the {name.upper()} backend does not use a rendezvous store (MPI's launcher wires the "
                         f"ranks); pass store=None")
    if pg_options is not None:
        raise ValueError(f"pg_options: the {name.upper()} backend has no options; pass pg_options=None")
    if device_id is not None and name in ("mpi", "gloo"):
        raise ValueError(f"device_id: the {name.upper()} backend holds CPU tensors only here; pass device_id=None")
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TypeError(f"Expected timeout argument to be of typedatetime.timedelta, got {type(timeout)}")
    if not is_mpi_available():
        raise RuntimeError("Distributed package doesn't have MPI built in. MPI is only included if you build "
                           "PyTorch from source on a host that has MPI installed. For tensorlib: "
                           "pip install 'tensorlib[distributed]' (mpi4py and the mpich wheel)")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    r, n = comm.Get_rank(), comm.Get_size()
    for what, given, env, mine in (("world_size", world_size, "WORLD_SIZE", n), ("rank", rank, "RANK", r)):
        if given is not None and given != -1 and int(given) != mine:
            raise ValueError(f"init_process_group({what}={given}): MPI's launcher gave this process {what} {mine} "
                             f"(rank {r} of {n}); launch with `mpiexec -n {world_size if what == 'world_size' else n}` "
                             f"or leave {what} unset")
        v = os.environ.get(env)
        if v is not None and v.strip().lstrip("-").isdigit() and int(v) != mine and "PMI_RANK" not in os.environ:
            raise ValueError(f"{env}={v} in the environment, but MPI sees {what} {mine} (rank {r} of {n}): the ranks "
                             f"were not started by MPI. Launch them with "
                             f"`mpiexec -n {os.environ.get('WORLD_SIZE', 'N')} python script.py`")
    check = _pg.check_enabled()
    _abort_on_uncaught_exception()
    dup = comm.Dup()
    if name == "nccl":
        _W.pg = NcclProcessGroup(dup, "0", "default_pg", range(n), timeout or DEFAULT_TIMEOUT, check)
    else:
        _W.pg = ProcessGroup(dup, name, "0", "default_pg", range(n), timeout or DEFAULT_TIMEOUT, check)
    _W.groups = [_W.pg]
    _W.group_count = 1
    if device_id is not None:
        from .._device import to_device
        d = to_device(device_id) if not isinstance(device_id, int) else None
        if d is not None and d.type != "cuda":
            raise ValueError(f"device_id={device_id!r}: the NCCL backend needs a CUDA device")
        _W.pg.nccl_comm(device_id if d is None else (d.index or 0))


def _abort_on_uncaught_exception():
    """An exception that ends a rank's script aborts the MPI job (after its traceback is printed), as
    ``python -m mpi4py`` does: otherwise the rank would wait in MPI_Finalize at exit for ranks that wait for
    it in a collective, and the job would hang instead of ending."""
    import sys
    prev = sys.excepthook
    if getattr(prev, "_tensorlib_abort", False):
        return

    def hook(tp, value, tb):
        prev(tp, value, tb)
        if _W.pg is not None and not issubclass(tp, (SystemExit,)):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                if os.environ.get("TENSORLIB_RUN_AGENT"):
                    # under tensorlib.distributed.run: exit, and let this rank's agent report it and end the
                    # job; an MPI abort would have mpiexec kill the agent before it passed the traceback on
                    os._exit(1)
                from mpi4py import MPI
                MPI.COMM_WORLD.Abort(1)
    hook._tensorlib_abort = True
    sys.excepthook = hook


def destroy_process_group(group=None):
    """Run what is queued, stop the worker threads, free the communicators; the default group (None)
    takes every group with it."""
    pg = _group(group)
    if group is None or pg is _W.pg:
        for g in reversed(_W.groups):
            g.shutdown()
            g.comm.Free()
        _W.pg = None
        _W.groups = []
        return
    if pg is not None:
        pg.shutdown()
        pg.comm.Free()
        _W.groups.remove(pg)


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None, device_id=None):
    """A group of the given global ranks (every rank of the world must call it, as in torch); on a rank
    outside it, GroupMember.NON_GROUP_MEMBER."""
    world = _default()
    if backend is not None and Backend(backend) != world.backend:
        raise ValueError(f"new_group(backend={backend!r}): this job's backend is {world.backend!r}")
    if use_local_synchronization:
        raise ValueError("use_local_synchronization=True: MPI creates a communicator collectively over the whole "
                         "world; call new_group on every rank with use_local_synchronization=False")
    n = world.size()
    ranks = list(range(n)) if ranks is None else sorted(int(x) for x in ranks)
    for x in ranks:
        if not 0 <= x < n:
            raise ValueError(f"new_group: rank {x} is not in the world of {n} ranks")
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"new_group: ranks {ranks} holds duplicates")
    check = _pg.check_enabled()
    box = []

    def make():
        g = world.comm.Get_group()
        sub = g.Incl(ranks)
        box.append(world.comm.Create(sub))
        sub.Free()
        g.Free()
    _done(world.run("mpi:new_group", make, {}), False)
    comm = box[0]
    from mpi4py import MPI
    if comm == MPI.COMM_NULL:
        return GroupMember.NON_GROUP_MEMBER
    _W.group_count = getattr(_W, "group_count", 1) + 1
    cls = NcclProcessGroup if world.backend == "nccl" else None
    args = (str(_W.group_count - 1), group_desc or "undefined", ranks, timeout or world.timeout, check)
    pg = cls(comm, *args) if cls is not None else ProcessGroup(comm, world.backend, *args)
    _W.groups.append(pg)
    return pg


def get_rank(group=None) -> int:
    pg = _group(group)
    return -1 if pg is None else pg.rank()


def get_world_size(group=None) -> int:
    pg = _group(group)
    return -1 if pg is None else pg.size()


def get_backend(group=None) -> str:
    pg = _group(group)
    if pg is None:
        raise ValueError("Invalid process group specified")
    return Backend(pg.backend)


def get_process_group_ranks(group) -> list:
    pg = _group(group)
    return list(pg.ranks) if pg is not None else []


def get_group_rank(group, global_rank: int) -> int:
    pg = _group(group)
    if pg is None or global_rank not in pg.ranks:
        raise ValueError(f"Global rank {global_rank} is not part of group {group}")
    return pg.ranks.index(global_rank)


def get_global_rank(group, group_rank: int) -> int:
    pg = _group(group)
    if pg is None or not 0 <= group_rank < pg.size():
        raise ValueError(f"Group rank {group_rank} is not part of group {group}")
    return pg.ranks[group_rank]


# -- argument checks -----------------------------------------------------------------------------------

def _tensor(t, what="tensor", pg=None):
    if isinstance(t, Tensor):
        a = t._data
        if not t.is_cuda and a.flags.c_contiguous and (pg is None or pg.backend != "nccl"):
            return a            # the common case, checked first; the errors below otherwise
    else:
        raise TypeError(f"Invalid function argument. Expected parameter `{what}` of type torch.Tensor\n"
                        f"             but got {type(t)} instead.")
    nccl = pg is not None and pg.backend == "nccl"
    if not t.is_cuda:
        if nccl:
            raise RuntimeError("No backend type associated with device type cpu")
    elif not nccl:
        raise RuntimeError("CUDA tensor detected and the MPI used doesn't have CUDA-aware MPI support")
    if not t.is_contiguous():
        raise RuntimeError("Tensors must be contiguous")
    return t._data


def _tensor_list(ts, what, pg=None):
    if not isinstance(ts, (list, tuple)) or not all(isinstance(t, Tensor) for t in ts):
        raise TypeError(f"Invalid function argument. Expected parameter `{what}` of type List[torch.Tensor]\n"
                        f"             but got {type(ts)} instead.")
    return [_tensor(t, what, pg) for t in ts]


def _root(pg, src, group_src, name):
    """The root's rank in `pg` from a global rank (src/dst) or a group rank (group_src/group_dst)."""
    if group_src is not None:
        if src is not None:
            raise ValueError(f"Can not specify both {name} and group_{name}")
        if not 0 <= group_src < pg.size():
            raise ValueError(f"Group rank {group_src} is not part of group")
        return group_src
    if src is None:
        src = 0
    if src not in pg.ranks:
        raise ValueError(f"Global rank {src} is not part of group {pg.group_name}")
    return pg.ranks.index(src)


def _done(work, async_op):
    """What a collective returns: its Work for async_op=True; else None, once it has run (a Work from a
    synchronous call: it was queued behind others, or its group has a timeout of its own)."""
    if async_op:
        return work
    if work is not None:
        work.wait()
    return None


# -- the dispatched ops --------------------------------------------------------------------------------

def _start_kernel(xp, *arrays, start):
    """An in-place collective (allreduce_, ...) returns the tensor it works on, as torch's c10d ops do."""
    start()
    return arrays[0] if arrays else np.empty(0)


def _start_only_kernel(xp, *arrays, start):
    """send and barrier produce nothing: an empty result, never an alias of the tensor being sent."""
    start()
    return np.empty(0)


_OPS = {name: _D.register_op(name, _start_kernel if name.endswith("_") else _start_only_kernel) for name in (
    "c10d::allreduce_", "c10d::broadcast_", "c10d::reduce_", "c10d::allgather_", "c10d::_allgather_base_",
    "c10d::reduce_scatter_", "c10d::_reduce_scatter_base_", "c10d::gather_", "c10d::scatter_",
    "c10d::alltoall_base_", "c10d::barrier", "c10d::send", "c10d::recv_")}


def _run(opname, pg, title, fn, args, tensors, result=None, async_op=False):
    """Dispatch the c10d op (the profiler sees it), whose kernel runs `fn` through the group: at once for a
    synchronous call with nothing queued (None), else on the group's worker (a Work); see ProcessGroup.run.
    While no hook, op sink or mode observes ops, the kernel's work is done without the dispatcher (as the
    optimizers' fused paths do): the c10d ops have no autograd and return their input, so nothing else
    would differ, and a microsecond less per call is a few percent of a small all-reduce."""
    if not _hooks.full_path:             # _D.full_path_active(), without the call
        return pg.run(title, fn, args, result, async_op)
    box = []
    _D.dispatch(_OPS[opname], *tensors, start=lambda: box.append(pg.run(title, fn, args, result, async_op)))
    return box[0]


def _comm_args(name, in_n, out_n, dt, in_split="[]", out_split="[]"):
    """Kineto's per-call communication args, as a tuple: the dict is built when the records are read
    (ProcessGroup._comm_args), not on every call."""
    return (name, in_n, out_n, dt, in_split, out_split)


def _warn_non_member(name):
    import warnings
    warnings.warn(f"Running {name} on global rank {_default().rank()} which does not belong to the given group.",
                  stacklevel=3)


def _mpi_all_reduce(pg, a, how):
    mop, wdt, avg, code = how
    dt = a.dtype
    pg.check("all_reduce", dt, a.size, -1, code)
    if dt is wdt and not avg:          # the common case: the tensor's own buffer, in place
        pg.comm.Allreduce(pg.in_place, a, op=mop)
        return
    w = _pg.as_work(a, wdt)
    pg.comm.Allreduce(pg.in_place, w.reshape(-1), op=mop)
    _pg.back(a, w, pg.size() if avg else 0)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _W.pg if group is None else group
    if type(pg) is ProcessGroup and not async_op and isinstance(tensor, Tensor) and pg.all_reduce_now(tensor, op):
        return None                 # the common call, done at once (see ProcessGroup.all_reduce_now)
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("all_reduce")
    if pg.backend == "nccl":
        return _nc_all_reduce(pg, tensor, a, op, async_op)
    dt, n = a.dtype, a.size
    how = _pg._MPI_OPS.get((op, dt)) or _pg.mpi_op(op, dt)
    # _comm_args("allreduce", n, n, dt), without the call; a partial, not a closure (this is the hot
    # collective, DDP's buckets: every saving counts at 64 KiB)
    work = _run("c10d::allreduce_", pg, "mpi:all_reduce", partial(_mpi_all_reduce, pg, a, how),
                ("allreduce", n, n, dt, "[]", "[]"), (tensor,), [tensor], async_op=async_op)
    _D.bump_version(tensor)
    return work if async_op or work is None else _done(work, False)


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("broadcast")
    root = _root(pg, src, group_src, "src")
    if pg.backend == "nccl":
        return _nc_broadcast(pg, tensor, a, root, async_op)

    def fn():
        pg.check("broadcast", a.dtype, a.size, root)
        pg.comm.Bcast(_pg.raw(a), root=root)
    work = _run("c10d::broadcast_", pg, "mpi:broadcast", fn, _comm_args("broadcast", a.size, a.size, a.dtype),
                (tensor,), [tensor], async_op=async_op)
    _D.bump_version(tensor)
    return _done(work, async_op)


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("reduce")
    root = _root(pg, dst, group_dst, "dst")
    if pg.backend == "nccl":
        return _nc_reduce(pg, tensor, a, root, op, async_op)
    mop, wdt, avg, code = _pg.mpi_op(op, a.dtype)

    def fn():
        pg.check("reduce", a.dtype, a.size, root, code)
        w = _pg.as_work(a, wdt)
        if pg.rank() == root:
            pg.comm.Reduce(pg.in_place, w.reshape(-1), op=mop, root=root)
            _pg.back(a, w, pg.size() if avg else 0)
        else:
            pg.comm.Reduce(w.reshape(-1), None, op=mop, root=root)
    work = _run("c10d::reduce_", pg, "mpi:reduce", fn, _comm_args("reduce", a.size, a.size, a.dtype),
                (tensor,), [tensor], async_op=async_op)
    _D.bump_version(tensor)
    return _done(work, async_op)


def _same(arrays, a, name):
    for x in arrays:
        if x.size != a.size or x.dtype != a.dtype:
            raise RuntimeError(f"{name}: Tensors are not equal in size or data type")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    pg = _group(group)
    outs = _tensor_list(tensor_list, "tensor_list", pg)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("all_gather")
    if len(outs) != pg.size():
        raise RuntimeError("All gather: number of output tensors should equal to the world size")
    _same(outs, a, "all_gather")
    if pg.backend == "nccl":
        return _nc_all_gather(pg, tensor_list, outs, tensor, a, async_op)

    def fn():
        pg.check("all_gather", a.dtype, a.size)
        flat = np.empty((pg.size(), a.nbytes), np.uint8)
        pg.comm.Allgather(_pg.raw(a), flat)
        for o, row in zip(outs, flat):
            _pg.raw(o)[...] = row
    work = _run("c10d::allgather_", pg, "mpi:all_gather", fn,
                _comm_args("allgather", a.size, a.size * pg.size(), a.dtype), (tensor,), list(tensor_list),
                async_op=async_op)
    for t in tensor_list:
        _D.bump_version(t)
    return _done(work, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    pg = _group(group)
    o = _tensor(output_tensor, "output_tensor", pg)
    a = _tensor(input_tensor, "input_tensor", pg)
    if pg is None:
        return _warn_non_member("all_gather_into_tensor")
    if o.dtype != a.dtype:
        raise TypeError("output tensor must have the same type as input tensor")
    if o.size != a.size * pg.size():
        raise ValueError("output tensor size must be equal to world_size times input tensor size")
    if pg.backend == "nccl":
        return _nc_all_gather_base(pg, output_tensor, o, input_tensor, a, async_op)

    def fn():
        pg.check("all_gather", a.dtype, a.size)
        pg.comm.Allgather(_pg.raw(a), _pg.raw(o))
    work = _run("c10d::_allgather_base_", pg, "mpi:all_gather", fn,
                _comm_args("_allgather_base", a.size, o.size, a.dtype), (output_tensor, input_tensor),
                [output_tensor], async_op=async_op)
    _D.bump_version(output_tensor)
    return _done(work, async_op)


def _reduce_scatter_into(pg, out, inp, op):
    """Reduce `inp` (size x out.size elements, contiguous) over the group and keep this rank's block in `out`."""
    mop, wdt, avg, code = _pg.mpi_op(op, out.dtype)

    def fn():
        pg.check("reduce_scatter", out.dtype, out.size, -1, code)
        w_in = _pg.as_work(inp, wdt).reshape(-1)
        w_out = np.empty(out.size, wdt)
        pg.comm.Reduce_scatter_block(w_in, w_out, op=mop)
        if avg:
            w_out /= pg.size()
        out.reshape(-1)[...] = w_out.view(np.bool_) if out.dtype == np.bool_ else w_out.astype(out.dtype, copy=False)
    return fn


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _group(group)
    o = _tensor(output, "output", pg)
    ins = _tensor_list(input_list, "input_list", pg)
    if pg is None:
        return _warn_non_member("reduce_scatter")
    if len(ins) != pg.size():
        raise ValueError(f"reduce_scatter: input_list holds {len(ins)} tensors; it needs one per rank of the group "
                         f"({pg.size()})")
    _same(ins, o, "reduce_scatter")
    if pg.backend == "nccl":
        with _cp().cuda.Device(_dev(o)):
            flat = _cp().concatenate([x.reshape(-1) for x in ins])
        return _nc_reduce_scatter(pg, "c10d::reduce_scatter_", "reduce_scatter", output, o, (output,), flat, op,
                                  async_op)
    flat = np.concatenate([x.reshape(-1) for x in ins])
    work = _run("c10d::reduce_scatter_", pg, "mpi:reduce_scatter", _reduce_scatter_into(pg, o, flat, op),
                _comm_args("reduce_scatter", flat.size, o.size, o.dtype), (output,), [output], async_op=async_op)
    _D.bump_version(output)
    return _done(work, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _group(group)
    o = _tensor(output, "output", pg)
    a = _tensor(input, "input", pg)
    if pg is None:
        return _warn_non_member("reduce_scatter_tensor")
    if o.dtype != a.dtype:
        raise TypeError("input tensor must be the same type as the output tensor.")
    if a.size != o.size * pg.size():
        raise ValueError("input tensor must be the same size as output size times world size")
    if pg.backend == "nccl":
        return _nc_reduce_scatter(pg, "c10d::_reduce_scatter_base_", "_reduce_scatter_base", output, o,
                                  (output, input), a, op, async_op)
    work = _run("c10d::_reduce_scatter_base_", pg, "mpi:reduce_scatter", _reduce_scatter_into(pg, o, a, op),
                _comm_args("_reduce_scatter_base", a.size, o.size, a.dtype), (output, input), [output],
                async_op=async_op)
    _D.bump_version(output)
    return _done(work, async_op)


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False, group_dst=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("gather")
    root = _root(pg, dst, group_dst, "dst")
    me = pg.rank() == root
    if me:
        if gather_list is None:
            raise ValueError("Argument ``gather_list`` must be specified on destination rank.")
        outs = _tensor_list(gather_list, "gather_list", pg)
        if len(outs) != pg.size():
            raise RuntimeError("Gather: number of output tensors should equal to the world size")
        _same(outs, a, "gather")
    elif gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    if pg.backend == "nccl":
        return _nc_gather(pg, tensor, a, gather_list, outs if me else None, root, async_op)

    def fn():
        pg.check("gather", a.dtype, a.size, root)
        flat = np.empty((pg.size(), a.nbytes), np.uint8) if me else None
        pg.comm.Gather(_pg.raw(a), flat, root=root)
        if me:
            for o, row in zip(outs, flat):
                _pg.raw(o)[...] = row
    work = _run("c10d::gather_", pg, "mpi:gather", fn,
                _comm_args("gather", a.size, a.size * pg.size(), a.dtype), (tensor,), list(gather_list or []),
                async_op=async_op)
    for t in gather_list or []:
        _D.bump_version(t)
    return _done(work, async_op)


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False, group_src=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("scatter")
    root = _root(pg, src, group_src, "src")
    me = pg.rank() == root
    if me:
        if scatter_list is None:
            raise ValueError("Argument ``scatter_list`` must be specified on source rank.")
        ins = _tensor_list(scatter_list, "scatter_list", pg)
        if len(ins) != pg.size():
            raise RuntimeError("Scatter: number of input tensors should equal to the world size")
        _same(ins, a, "scatter")
        if pg.backend == "nccl":
            return _nc_scatter(pg, tensor, a, ins, root, async_op)
        flat = np.concatenate([_pg.raw(x) for x in ins])
    elif scatter_list:
        raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source ranks.")
    elif pg.backend == "nccl":
        return _nc_scatter(pg, tensor, a, None, root, async_op)
    else:
        flat = None

    def fn():
        pg.check("scatter", a.dtype, a.size, root)
        pg.comm.Scatter(flat, _pg.raw(a), root=root)
    work = _run("c10d::scatter_", pg, "mpi:scatter", fn,
                _comm_args("scatter", a.size * pg.size(), a.size, a.dtype), (tensor,), [tensor], async_op=async_op)
    _D.bump_version(tensor)
    return _done(work, async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None, async_op=False):
    pg = _group(group)
    o = _tensor(output, "output", pg)
    a = _tensor(input, "input", pg)
    if pg is None:
        return _warn_non_member("all_to_all_single")
    if o.dtype != a.dtype:
        raise RuntimeError("all_to_all_single: output and input must have the same dtype")
    n = pg.size()
    row_o = o.size // o.shape[0] if o.ndim and o.shape[0] else 1
    row_a = a.size // a.shape[0] if a.ndim and a.shape[0] else 1

    def counts(splits, arr, row, what):
        if not splits:
            if arr.ndim == 0 or arr.shape[0] % n:
                raise ValueError(f"Tensor's dim 0 does not divide equally across group size ({what})")
            return [arr.size // n] * n
        if len(splits) != n:
            raise ValueError(f"Split sizes doesn't match number of ranks ({what}: {len(splits)} for {n} ranks)")
        if sum(splits) != (arr.shape[0] if arr.ndim else 1):
            raise ValueError(f"Split sizes doesn't add up to the tensor's size in dim 0 ({what})")
        return [int(s) * row for s in splits]
    sc = counts(input_split_sizes, a, row_a, "input")
    rc = counts(output_split_sizes, o, row_o, "output")
    isz = a.itemsize
    if pg.backend == "nccl":
        return _nc_all_to_all(pg, output, o, input, a, sc, rc, input_split_sizes, output_split_sizes, async_op)

    def fn():
        pg.check("all_to_all", a.dtype, -1)
        sb = [c * isz for c in sc]
        rb = [c * isz for c in rc]
        pg.comm.Alltoallv([_pg.raw(a), (sb, np.cumsum([0] + sb[:-1]).tolist())],
                          [_pg.raw(o), (rb, np.cumsum([0] + rb[:-1]).tolist())])
    work = _run("c10d::alltoall_base_", pg, "mpi:all_to_all", fn,
                _comm_args("all_to_allv", a.size, o.size, a.dtype, str(list(input_split_sizes or [])),
                           str(list(output_split_sizes or []))), (output, input), [output], async_op=async_op)
    _D.bump_version(output)
    return _done(work, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    pg = _group(group)
    if pg is None:
        return _warn_non_member("barrier")
    if pg.backend == "nccl":
        cp = _cp()
        one = _u8(cp.ones(1, cp.float32))
        w = _nc_all_reduce(pg, one, one._data, ReduceOp.SUM, True, "c10d::barrier", "nccl:barrier")
        if not async_op:
            w.synchronize()       # torch's NCCL barrier blocks the host until the device has run it
            return None
        return w

    def fn():
        pg.check("barrier", np.uint8, 0)
        pg.comm.Barrier()
    work = _run("c10d::barrier", pg, "mpi:barrier", fn, _comm_args("barrier", 0, 0, np.uint8), (), async_op=async_op)
    return _done(work, async_op)


# -- the NCCL backend (CUDA tensors; see _nccl.py) ------------------------------------------------------

def _cp():
    from .._device import cupy
    return cupy()


def _dev(a) -> int:
    return int(a.device.id)


def _nc_all_reduce(pg, tensor, a, op, async_op, opname="c10d::allreduce_", title="nccl:all_reduce"):
    nccl = _nccl.nccl_module()
    code, _ = _nccl.nccl_dtype(nccl, a.dtype)
    rop = _nccl.nccl_op(nccl, op, a.dtype)
    coll = "barrier" if opname == "c10d::barrier" else "all_reduce"
    op_code = int(ReduceOp._coerce(op))

    def fn(comm, stream):
        pg.check(coll, a.dtype, a.size, -1, op_code)
        comm.allReduce(a.data.ptr, a.data.ptr, a.size, code, rop, stream)
    work = _nccl.run(_OPS[opname], pg, title, _dev(a), fn, _comm_args(coll.replace("_", ""), a.size, a.size,
                                                                        a.dtype),
                     (tensor,) if opname != "c10d::barrier" else (), [tensor])
    _D.bump_version(tensor)
    return _done(work, async_op)


def _nc_broadcast(pg, tensor, a, root, async_op):
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)

    def fn(comm, stream):
        pg.check("broadcast", a.dtype, a.size, root)
        comm.broadcast(a.data.ptr, a.data.ptr, a.size, code, root, stream)
    work = _nccl.run(_OPS["c10d::broadcast_"], pg, "nccl:broadcast", _dev(a), fn,
                     _comm_args("broadcast", a.size, a.size, a.dtype), (tensor,), [tensor])
    _D.bump_version(tensor)
    return _done(work, async_op)


def _nc_reduce(pg, tensor, a, root, op, async_op):
    nccl = _nccl.nccl_module()
    code, _ = _nccl.nccl_dtype(nccl, a.dtype)
    rop = _nccl.nccl_op(nccl, op, a.dtype)
    op_code = int(ReduceOp._coerce(op))

    def fn(comm, stream):
        pg.check("reduce", a.dtype, a.size, root, op_code)
        comm.reduce(a.data.ptr, a.data.ptr, a.size, code, rop, root, stream)
    work = _nccl.run(_OPS["c10d::reduce_"], pg, "nccl:reduce", _dev(a), fn, _comm_args("reduce", a.size, a.size,
                                                                                     a.dtype), (tensor,), [tensor])
    _D.bump_version(tensor)
    return _done(work, async_op)


def _nc_all_gather(pg, tensor_list, outs, tensor, a, async_op):
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)
    n = pg.size()

    def fn(comm, stream):
        pg.check("all_gather", a.dtype, a.size)
        flat = _cp().empty((n, a.size), a.dtype)
        comm.allGather(a.data.ptr, flat.data.ptr, a.size, code, stream)
        for o, row in zip(outs, flat):
            o.reshape(-1)[...] = row
    work = _nccl.run(_OPS["c10d::allgather_"], pg, "nccl:all_gather", _dev(a), fn,
                     _comm_args("allgather", a.size, a.size * n, a.dtype), (tensor,), list(tensor_list))
    for t in tensor_list:
        _D.bump_version(t)
    return _done(work, async_op)


def _nc_all_gather_base(pg, output_tensor, o, input_tensor, a, async_op):
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)

    def fn(comm, stream):
        pg.check("all_gather", a.dtype, a.size)
        comm.allGather(a.data.ptr, o.data.ptr, a.size, code, stream)
    work = _nccl.run(_OPS["c10d::_allgather_base_"], pg, "nccl:_allgather_base", _dev(a), fn,
                     _comm_args("_allgather_base", a.size, o.size, a.dtype), (output_tensor, input_tensor),
                     [output_tensor])
    _D.bump_version(output_tensor)
    return _done(work, async_op)


def _nc_reduce_scatter(pg, opname, name, output, o, tensors, flat, op, async_op):
    nccl = _nccl.nccl_module()
    code, _ = _nccl.nccl_dtype(nccl, o.dtype)
    rop = _nccl.nccl_op(nccl, op, o.dtype)
    op_code = int(ReduceOp._coerce(op))

    def fn(comm, stream):
        pg.check("reduce_scatter", o.dtype, o.size, -1, op_code)
        comm.reduceScatter(flat.data.ptr, o.data.ptr, o.size, code, rop, stream)
    work = _nccl.run(_OPS[opname], pg, f"nccl:{name}", _dev(o), fn, _comm_args(name, flat.size, o.size, o.dtype),
                     tensors, [output])
    _D.bump_version(output)
    return _done(work, async_op)


def _nc_gather(pg, tensor, a, gather_list, outs, root, async_op):
    """torch's NCCL gather: the root receives from every rank in one NCCL group."""
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)
    me = pg.rank() == root

    def fn(comm, stream):
        pg.check("gather", a.dtype, a.size, root)

        def exchange():
            if not me:
                comm.send(a.data.ptr, a.size, code, root, stream)
                return
            for r, o in enumerate(outs):
                if r != root:
                    comm.recv(o.data.ptr, a.size, code, r, stream)
        _nccl.group(exchange)
        if me:
            outs[root].reshape(-1)[...] = a.reshape(-1)
    work = _nccl.run(_OPS["c10d::gather_"], pg, "nccl:gather", _dev(a), fn,
                     _comm_args("gather", a.size, a.size * pg.size(), a.dtype), (tensor,), list(gather_list or []))
    for t in gather_list or []:
        _D.bump_version(t)
    return _done(work, async_op)


def _nc_scatter(pg, tensor, a, ins, root, async_op):
    """torch's NCCL scatter: the root sends every rank its block in one NCCL group."""
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)
    me = pg.rank() == root

    def fn(comm, stream):
        pg.check("scatter", a.dtype, a.size, root)

        def exchange():
            if not me:
                comm.recv(a.data.ptr, a.size, code, root, stream)
                return
            for r, x in enumerate(ins):
                if r != root:
                    comm.send(x.data.ptr, a.size, code, r, stream)
        _nccl.group(exchange)
        if me:
            a.reshape(-1)[...] = ins[root].reshape(-1)
    work = _nccl.run(_OPS["c10d::scatter_"], pg, "nccl:scatter", _dev(a), fn,
                     _comm_args("scatter", a.size * pg.size(), a.size, a.dtype), (tensor,), [tensor])
    _D.bump_version(tensor)
    return _done(work, async_op)


def _nc_all_to_all(pg, output, o, input, a, sc, rc, input_split_sizes, output_split_sizes, async_op):
    """torch's NCCL all_to_all: a send and a receive per peer in one NCCL group."""
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)
    isz = a.itemsize
    s_off = np.cumsum([0] + sc[:-1]).tolist()
    r_off = np.cumsum([0] + rc[:-1]).tolist()
    me = pg.rank()

    def fn(comm, stream):
        pg.check("all_to_all", a.dtype, -1)

        def exchange():
            for r in range(pg.size()):
                if r == me:
                    continue
                if sc[r]:
                    comm.send(a.data.ptr + s_off[r] * isz, sc[r], code, r, stream)
                if rc[r]:
                    comm.recv(o.data.ptr + r_off[r] * isz, rc[r], code, r, stream)
        _nccl.group(exchange)
        if rc[me] != sc[me]:
            raise RuntimeError(f"all_to_all_single: rank {pg.ranks[me]} sends itself {sc[me]} elements but expects "
                               f"{rc[me]}")
        o.reshape(-1)[r_off[me]:r_off[me] + rc[me]] = a.reshape(-1)[s_off[me]:s_off[me] + sc[me]]
    work = _nccl.run(_OPS["c10d::alltoall_base_"], pg, "nccl:all_to_all", _dev(a), fn,
                     _comm_args("all_to_allv", a.size, o.size, a.dtype, str(list(input_split_sizes or [])),
                                str(list(output_split_sizes or []))), (output, input), [output])
    _D.bump_version(output)
    return _done(work, async_op)


def _nc_p2p(pg, opname, title, tensor, a, peer, kind):
    code, _ = _nccl.nccl_dtype(_nccl.nccl_module(), a.dtype)

    def fn(comm, stream):
        if kind == "send":
            comm.send(a.data.ptr, a.size, code, peer, stream)
        else:
            comm.recv(a.data.ptr, a.size, code, peer, stream)
    work = _nccl.run(_OPS[opname], pg, title, _dev(a), fn, _comm_args(kind, a.size, a.size, a.dtype), (tensor,),
                     [tensor])
    work._source = peer
    return work


# -- point to point ------------------------------------------------------------------------------------

def _peer(pg, peer, group_peer, name):
    if group_peer is not None:
        if peer is not None:
            raise ValueError(f"Can not specify both {name} and group_{name}")
        return group_peer
    if peer is None:
        raise ValueError(f"Must specify either {name} or group_{name}")
    if peer not in pg.ranks:
        raise ValueError(f"Global rank {peer} is not part of group {pg.group_name}")
    return pg.ranks.index(peer)


def _p2p(opname, title, pg, tensor, post, args):
    """Point-to-point calls run on the caller's thread (MPI_THREAD_MULTIPLE): a nonblocking send or receive
    whose request the returned Work waits on, so two ranks that both send before receiving do not deadlock
    on the group's one worker."""
    box = []

    def start():
        tok = _D.range_enter(title, "user")
        try:
            w = Work(title, pg.timeout, [tensor], pg.ranks)
            w._request = post()
            box.append(w)
        finally:
            _D.range_exit(tok)
    _D.dispatch(_OPS[opname], tensor, start=start)
    return box[0]


def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("isend")
    peer = _peer(pg, dst, group_dst, "dst")
    if peer == pg.rank():
        raise ValueError("Invalid destination rank: destination rank should not be the same as the rank of the "
                         "current process.")
    if pg.backend == "nccl":
        return _nc_p2p(pg, "c10d::send", "nccl:send", tensor, a, peer, "send")
    return _p2p("c10d::send", "mpi:send", pg, tensor, lambda: pg.comm.Isend(_pg.raw(a), dest=peer, tag=tag),
                _comm_args("send", a.size, a.size, a.dtype))


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    pg = _group(group)
    a = _tensor(tensor, "tensor", pg)
    if pg is None:
        return _warn_non_member("irecv")
    if pg.backend == "nccl":
        if src is None and group_src is None:
            raise RuntimeError("ProcessGroupNCCL does not support recvAnysource")
        work = _nc_p2p(pg, "c10d::recv_", "nccl:recv", tensor, a, _peer(pg, src, group_src, "src"), "recv")
        _D.bump_version(tensor)
        return work
    from mpi4py import MPI
    peer = MPI.ANY_SOURCE if src is None and group_src is None else _peer(pg, src, group_src, "src")
    work = _p2p("c10d::recv_", "mpi:recv", pg, tensor, lambda: pg.comm.Irecv(_pg.raw(a), source=peer, tag=tag),
                _comm_args("recv", a.size, a.size, a.dtype))
    _D.bump_version(tensor)
    return work


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    w = isend(tensor, dst, group, tag, group_dst)
    if w is not None:
        w.wait()


def recv(tensor, src=None, group=None, tag=0, group_src=None) -> int:
    """Returns the sender's global rank (-1 on a rank outside the group), as torch's."""
    w = irecv(tensor, src, group, tag, group_src)
    if w is None:
        return -1
    w.wait()
    pg = _group(group)
    assert pg is not None, "irecv returned a work, so this rank is in the group"
    return pg.ranks[w.source_rank()]


# -- objects (pickled, as torch's: see the module docstring) -------------------------------------------

def _to_bytes(obj) -> np.ndarray:
    buf = io.BytesIO()
    pickle.Pickler(buf).dump(obj)
    return np.frombuffer(buf.getvalue(), np.uint8).copy()


def _from_bytes(a: np.ndarray):
    return pickle.loads(a.tobytes())  # noqa: S301 - torch's semantics; the job's ranks trust each other


def _u8(a):
    t = object.__new__(Tensor)
    t._data = a
    return t


def all_gather_object(object_list, obj, group=None):
    pg = _group(group)
    if pg is None:
        return _warn_non_member("all_gather_object")
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list holds {len(object_list)} entries; it needs one per rank "
                         f"of the group ({pg.size()})")
    if pg.backend == "nccl":
        object_list[:] = pg.comm.allgather(obj)
        return None
    data = _to_bytes(obj)
    n = pg.size()
    size = _u8(np.array([data.size], np.int64))
    sizes = [_u8(np.zeros(1, np.int64)) for _ in range(n)]
    all_gather(sizes, size, group=group)
    longest = max(int(s._data[0]) for s in sizes)
    mine = np.zeros(longest, np.uint8)
    mine[:data.size] = data
    outs = [_u8(np.empty(longest, np.uint8)) for _ in range(n)]
    all_gather(outs, _u8(mine), group=group)
    for i in range(n):
        object_list[i] = _from_bytes(outs[i]._data[:int(sizes[i]._data[0])])


def gather_object(obj, object_gather_list=None, dst=None, group=None, group_dst=None):
    pg = _group(group)
    if pg is None:
        return _warn_non_member("gather_object")
    root = _root(pg, dst, group_dst, "dst")
    lists = [None] * pg.size()
    all_gather_object(lists, obj, group=group)
    if pg.rank() == root:
        if object_gather_list is None or len(object_gather_list) != pg.size():
            raise ValueError("Argument ``object_gather_list`` must be specified on destination rank, with one entry "
                             "per rank of the group.")
        object_gather_list[:] = lists


def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    pg = _group(group)
    if pg is None:
        return _warn_non_member("broadcast_object_list")
    if device is not None and str(device) != "cpu" and pg.backend != "nccl":
        raise RuntimeError("CUDA tensor detected and the MPI used doesn't have CUDA-aware MPI support")
    root = _root(pg, src, group_src, "src")
    me = pg.rank() == root
    if pg.backend == "nccl":
        got = pg.comm.bcast(list(object_list) if me else None, root=root)
        if not me:
            object_list[:] = got
        return None
    blobs = [_to_bytes(o) for o in object_list] if me else []
    sizes = _u8(np.array([b.size for b in blobs] if me else [0] * len(object_list), np.int64))
    broadcast(sizes, group=group, group_src=root)
    flat = np.concatenate(blobs) if me and blobs else np.empty(int(sizes._data.sum()), np.uint8)
    broadcast(_u8(flat), group=group, group_src=root)
    if not me:
        off = 0
        for i, s in enumerate(sizes._data.tolist()):
            object_list[i] = _from_bytes(flat[off:off + s])
            off += s


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=None, group=None,
                        group_src=None):
    pg = _group(group)
    if pg is None:
        return _warn_non_member("scatter_object_list")
    if not isinstance(scatter_object_output_list, list) or len(scatter_object_output_list) < 1:
        raise ValueError("Expected argument scatter_object_output_list to be a list of size at least 1.")
    root = _root(pg, src, group_src, "src")
    objs = list(scatter_object_input_list) if pg.rank() == root else [None] * pg.size()
    if len(objs) != pg.size():
        raise ValueError("scatter_object_list: the source's input list needs one entry per rank of the group")
    broadcast_object_list(objs, group=group, group_src=root)
    scatter_object_output_list[0] = objs[pg.rank()]


def trace_info():
    """For instruments (the profiler's Chrome trace): Kineto's top-level ``distributedInfo`` for this
    process, or None outside a job."""
    pg = _W.pg
    if pg is None:
        return None
    return {"backend": pg.backend, "rank": pg.ranks[pg.rank()], "world_size": pg.size(), "pg_count": len(_W.groups),
            "pg_config": [{"pg_name": g.group_name, "pg_desc": g.group_desc,
                           "backend_config": "cuda:nccl" if g.backend == "nccl" else "cpu:mpi",
                           "pg_size": g.size(), "ranks": list(g.ranks)} for g in _W.groups]}


def collective_records():
    """For instruments: the collectives run on the groups' workers, newest last (at most 65,536), each with
    Kineto's communication args (profiler/chrome.py writes them as ``record_param_comms`` events)."""
    return _pg.records()
