"""The NCCL backend: collectives on CUDA tensors through CuPy's `cupy.cuda.nccl` (NCCL's own library, the
`nvidia-nccl-cu*` wheel), run on the tensor's current stream.

How the ranks find each other: the job is launched by MPI (``mpiexec`` or ``python -m
tensorlib.distributed.run``), as for the MPI backend, and the group's MPI communicator carries NCCL's unique
id from the group's first rank to the others (torch hands it over through its TCP store at
MASTER_ADDR:MASTER_PORT instead; MPI's wiring makes a store unnecessary, and MASTER_ADDR/MASTER_PORT play no
part). The NCCL communicator of a group is made on first use, on the device of the first tensor given to it
(torch's lazy init), or at once for ``init_process_group(device_id=...)``; one communicator per device.

Every collective first makes the MPI backend's check over the group's MPI communicator (a 64-bit signature of
which collective, dtype, count, root and op, compared through shared memory or an allgather; see _pg.py): ranks
that disagree get one clear error naming the rank, where NCCL itself would hang or read past a buffer. Then the
NCCL call is enqueued on the current stream of the tensor's device; the data moves when the stream reaches it,
as in torch (whose NCCL stream waits for the current stream, and which the current stream waits for after
`Work.wait()`). `Work.wait()` makes the current stream wait for the collective's event (the host does not
block); `is_completed()` asks the event.

Each call is a ``nccl:<collective>`` range on the caller's thread (torch's profiling titles for NCCL), with
a record carrying Kineto's communication arguments in `_pg.RECORDS`, as the MPI backend's.
"""
from __future__ import annotations

import threading
import time

from .. import _device
from .. import dispatch as _D
from . import _pg
from ._pg import ProcessGroup, ReduceOp, Work


def nccl_module():
    """CuPy's cupy.cuda.nccl, or None when CuPy or its NCCL library is missing."""
    cp = _device.cupy_or_none()
    if cp is None:
        return None
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", False) else None


class NcclProcessGroup(ProcessGroup):
    """A group on NCCL: `comm` is its MPI communicator (descriptors, the unique id), `nccl_comm(device)`
    its NCCL communicator on a device."""

    def __init__(self, comm, name, desc, ranks, timeout, check=True):
        super().__init__(comm, "nccl", name, desc, ranks, timeout, check)
        self._nccl: dict[int, object] = {}
        self._nccl_lock = threading.Lock()

    def nccl_comm(self, device: int):
        c = self._nccl.get(device)
        if c is not None:
            return c
        with self._nccl_lock:
            c = self._nccl.get(device)
            if c is None:
                nccl = nccl_module()
                uid = nccl.get_unique_id() if self._rank == 0 else None
                uid = self.comm.bcast(uid, root=0)
                cp = _device.cupy()
                with cp.cuda.Device(device):
                    c = nccl.NcclCommunicator(self._size, uid, self._rank)
                self._nccl[device] = c
        return c

    def shutdown(self):
        super().shutdown()
        for c in self._nccl.values():
            c.destroy()
        self._nccl.clear()


class NcclWork(Work):
    """What a collective on NCCL returns: done when the device has run it (an event after it on its stream)."""

    def __init__(self, title, timeout, result, ranks, event):
        super().__init__(title, timeout, result, ranks)
        self._event = event
        self._done.set()

    def is_completed(self) -> bool:
        return self._event is None or bool(self._event.done)

    def wait(self, timeout=None) -> bool:
        if self._event is not None:
            _device.cupy().cuda.get_current_stream().wait_event(self._event)
        return True

    def synchronize(self):
        if self._event is not None:
            self._event.synchronize()


# -- dtypes and ops -------------------------------------------------------------------------------------

def nccl_dtype(nccl, dt):
    """(NCCL datatype code, the dtype the buffer is viewed as) for NumPy dtype `dt`; torch's error where
    NCCL has no type."""
    name = dt.name
    if name == "bool":
        return nccl.NCCL_UINT8, "uint8"
    table = {"int8": nccl.NCCL_INT8, "uint8": nccl.NCCL_UINT8, "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64,
             "float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
    code = table.get(name)
    if code is None:
        raise TypeError(f"Input tensor data type is not supported for NCCL process group: {_pg.scalar_name(dt)}")
    return code, name


def nccl_op(nccl, op, dt):
    """NCCL's reduction code for ReduceOp `op` on dtype `dt`, as torch's getNcclReduceOp maps it."""
    op = ReduceOp._coerce(op)
    if dt.name == "bool":
        if op == ReduceOp.AVG:
            raise TypeError("Cannot use ReduceOp.AVG with boolean inputs")
        table = {ReduceOp.SUM: nccl.NCCL_MAX, ReduceOp.MAX: nccl.NCCL_MAX, ReduceOp.MIN: nccl.NCCL_MIN,
                 ReduceOp.PRODUCT: nccl.NCCL_MIN}
    else:
        table = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_AVG, ReduceOp.PRODUCT: nccl.NCCL_PROD,
                 ReduceOp.MIN: nccl.NCCL_MIN, ReduceOp.MAX: nccl.NCCL_MAX}
    if op not in table:
        raise ValueError(f"Cannot use ReduceOp.{op.name} with NCCL")
    return table[op]


def buf(a):
    """(device pointer, element count, NCCL datatype) of contiguous CuPy array `a`."""
    nccl = nccl_module()
    code, _ = nccl_dtype(nccl, a.dtype)
    return a.data.ptr, a.size, code


# -- running a collective ---------------------------------------------------------------------------------

def run(opname_op, pg: NcclProcessGroup, title, device, fn, args, tensors, result):
    """Dispatch the c10d op (the profiler sees it); its kernel runs `fn(comm, stream_ptr)` at once on the
    caller's thread, on the current stream of `device`, then records an event after it."""
    box: list = []

    def start():
        cp = _device.cupy()
        with cp.cuda.Device(device):
            comm = pg.nccl_comm(device)
            stream = cp.cuda.get_current_stream()
            pg._seq += 1
            full = (pg._index, pg._seq, args)
            t0 = time.perf_counter_ns()
            tok = _D.range_enter(title, "user")
            try:
                fn(comm, stream.ptr)
            finally:
                _D.range_exit(tok)
            _pg.RECORDS.append((threading.get_native_id(), t0, time.perf_counter_ns(), title, full))
            ev = cp.cuda.Event(disable_timing=True)
            ev.record(stream)
        box.append(NcclWork(title, pg.timeout, result, pg.ranks, ev))
    _D.dispatch(opname_op, *tensors, start=start)
    return box[0]


def group(fn):
    """Run `fn()` between ncclGroupStart and ncclGroupEnd (point-to-point exchanges that must not block)."""
    nccl = nccl_module()
    nccl.groupStart()
    try:
        fn()
    finally:
        nccl.groupEnd()
