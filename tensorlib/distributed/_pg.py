"""The MPI process group: one worker thread per group runs that group's collectives, in the order they were
issued, as torch's ProcessGroupMPI does.

Why a worker thread: an asynchronous collective (`async_op=True`, DDP's bucket all-reduces) must make
progress while the caller goes on computing. MPICH progresses nonblocking collectives only inside MPI
calls, so a nonblocking `Iallreduce` would sit idle until `wait()`; a blocking `Allreduce` on a thread
of its own (mpi4py releases the GIL inside MPI calls) overlaps with the caller's work for real. One
thread per group also keeps every rank's collectives on a communicator in one order, which MPI requires.
A synchronous call finding nothing queued runs on the caller's thread instead (see `ProcessGroup.enqueue`).

Before its data moves, every collective exchanges a small descriptor (which collective, dtype, element
count, root) with the rest of the group: a rank that calls another collective, or passes another size or
dtype, gets one clear error naming the rank and the collective on every rank, instead of a hang or MPI
reading past a buffer. It costs one 32-byte allgather per collective (see benchmarks/distributed.py).

Each collective's run on the worker is a ``mpi:<name>`` range (torch's profiling titles for MPI), and a
record with Kineto's communication arguments lands in `RECORDS`, which the profiler's trace export reads.
"""
from __future__ import annotations

import collections
import enum
import queue
import struct
import threading
import time
from datetime import timedelta

import numpy as np

from .. import dispatch as _D
from .. import _dtype

DEFAULT_TIMEOUT = timedelta(minutes=30)          # torch's default_pg_timeout

# (thread id, t0_ns, t1_ns, profiling title, (group, seq, per-call args)): Kineto's comm args are built from the
# last item only when read (`records`, for profiler/chrome.py), not on every collective
RECORDS: collections.deque = collections.deque(maxlen=1 << 16)


def records() -> list:
    """RECORDS as (thread id, t0_ns, t1_ns, title, Kineto's communication args dict), oldest first."""
    return [(tid, t0, t1, title, pg._comm_args(seq, args)) for tid, t0, t1, title, (pg, seq, args) in list(RECORDS)]

_DTYPES = [np.dtype(d) for d in ("?", "u1", "i1", "i2", "i4", "i8", "f2", "f4", "f8")]
_COLLECTIVES = ["all_reduce", "broadcast", "reduce", "all_gather", "reduce_scatter", "gather", "scatter",
                "all_to_all", "barrier"]
_COLL_INDEX = {c: i for i, c in enumerate(_COLLECTIVES)}
_DESC = struct.Struct("=4q")          # a collective's descriptor: collective, dtype code, element count, root


class ReduceOp:
    """torch.distributed.ReduceOp: ``ReduceOp.SUM`` etc. are members of ``ReduceOp.RedOpType``."""

    class RedOpType(enum.IntEnum):
        SUM = 0
        AVG = 1
        PRODUCT = 2
        MIN = 3
        MAX = 4
        BAND = 5
        BOR = 6
        BXOR = 7
        PREMUL_SUM = 8
        UNUSED = 9

    SUM = RedOpType.SUM
    AVG = RedOpType.AVG
    PRODUCT = RedOpType.PRODUCT
    MIN = RedOpType.MIN
    MAX = RedOpType.MAX
    BAND = RedOpType.BAND
    BOR = RedOpType.BOR
    BXOR = RedOpType.BXOR
    PREMUL_SUM = RedOpType.PREMUL_SUM

    @staticmethod
    def _coerce(op):
        if isinstance(op, ReduceOp.RedOpType):
            return op
        if isinstance(op, str) and op.upper() in ReduceOp.RedOpType.__members__:
            return ReduceOp.RedOpType[op.upper()]
        raise TypeError(f"op must be a torch.distributed.ReduceOp (e.g. ReduceOp.SUM), got {op!r}")


_CODES: dict = {}
_NAMES: dict = {}


def dtype_code(dt) -> int:
    c = _CODES.get(dt)
    if c is None:
        try:
            c = _DTYPES.index(np.dtype(dt))
        except ValueError:
            c = len(_DTYPES)
        _CODES[dt] = c
    return c


def scalar_name(dt) -> str:
    """Kineto's ``dtype`` argument: the ScalarType name (Float, Long, ...)."""
    n = _NAMES.get(dt)
    if n is None:
        n = _NAMES[dt] = _dtype.scalar_name(_dtype.from_np(np.dtype(dt)))
    return n


class _Completed:
    """The `_done` of a Work that finished before anyone could wait for it (a synchronous call run on the
    caller's thread): a threading.Event's interface without building one (a Condition and a lock per call)."""
    __slots__ = ()

    @staticmethod
    def is_set():
        return True

    @staticmethod
    def wait(timeout=None):
        return True

    @staticmethod
    def set():
        return None


_COMPLETED = _Completed()


class Work:
    """torch.distributed.Work: what an `async_op=True` call returns; `wait()` blocks until the collective
    has run (raising its error, if it failed), `is_completed()` asks without blocking."""

    def __init__(self, title, timeout, result=None, ranks=(), done=False):
        self._title = title
        self._timeout = timeout
        self._done = _COMPLETED if done else threading.Event()
        self._exc = None
        self._result = result if result is not None else []
        self._ranks = ranks
        self._request = None          # point-to-point: the MPI request
        self._source = -1

    def _finish(self, exc=None):
        self._exc = exc
        self._done.set()

    def is_completed(self) -> bool:
        if self._request is not None and not self._done.is_set():
            if self._request.Test():
                self._finish()
        return self._done.is_set()

    def is_success(self) -> bool:
        if not self.is_completed():
            raise RuntimeError("Invalid call to AsyncWork::isSuccess before work has completed")
        return self._exc is None

    def exception(self):
        return self._exc

    def source_rank(self) -> int:
        return self._source

    def result(self):
        return self._result

    def wait(self, timeout=None) -> bool:
        if self._done is _COMPLETED:          # ran on the caller's thread: nothing to wait for
            if self._exc is not None:
                raise self._exc
            return True
        if self._request is not None and not self._done.is_set():
            from mpi4py import MPI
            st = MPI.Status()
            self._request.Wait(st)
            self._source = st.Get_source()
            self._finish()
            return True
        t = timeout if timeout is not None else self._timeout
        secs = t.total_seconds() if isinstance(t, timedelta) else float(t)
        if not self._done.wait(secs):
            raise RuntimeError(
                f"{self._title}: timed out after {secs:g} s waiting for the collective (group ranks "
                f"{list(self._ranks)}); a rank of the group has not called it, or is blocked elsewhere. "
                f"Every rank must issue the same collectives in the same order")
        if self._exc is not None:
            raise self._exc
        return True

    def __repr__(self):
        return f"<Work {self._title} {'completed' if self._done.is_set() else 'pending'}>"


class ProcessGroup:
    """A communicator and its worker thread. `rank()`/`size()` are this process's rank in the group and
    the group's size; `ranks` are the group's members as global ranks."""

    def __init__(self, comm, backend, name, desc, ranks, timeout):
        self.comm = comm
        self.backend = backend
        self.group_name = name
        self.group_desc = desc
        self.ranks = list(ranks)
        self.timeout = timeout
        self._rank = comm.Get_rank()
        self._size = comm.Get_size()
        self._seq = 0
        self._args_head = {"Rank": self.ranks[self._rank]}       # Kineto's comm args: per group, built once
        self._args_tail = {"Group size": self._size, "Process Group Name": name, "Process Group Description": desc,
                           "Process Group Ranks": str(self.ranks)}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()      # held while a collective runs, on the worker or inline
        self._count_lock = threading.Lock()
        self._pending = 0                  # queued, not yet finished
        self._thread = threading.Thread(target=self._loop, name=f"mpi pg {name}", daemon=True)
        self._thread.start()

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def name(self) -> str:
        return self.backend.upper()

    def _loop(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._lock:
                self._execute(*item)
            with self._count_lock:
                self._pending -= 1

    def _execute(self, work, title, fn, args):
        t0 = time.perf_counter_ns()
        tok = _D.range_enter(title, "user")
        try:
            fn()
            exc = None
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            exc = e
        finally:
            _D.range_exit(tok)
        RECORDS.append((threading.get_native_id(), t0, time.perf_counter_ns(), title, args))
        work._finish(exc)

    def _comm_args(self, seq, args):
        """Kineto's communication args of call number `seq`, whose own args are `args`: a dict, or the tuple
        (collective name, in nelems, out nelems, dtype, in split, out split) that __init__'s _comm_args makes."""
        d = self._args_head.copy()
        if isinstance(args, tuple):
            name, in_n, out_n, dt, in_split, out_split = args
            args = {"Collective name": name, "In msg nelems": int(in_n), "Out msg nelems": int(out_n),
                    "dtype": scalar_name(dt), "In split size": in_split, "Out split size": out_split}
        d.update(args)
        d.update(self._args_tail)
        d["Seq"] = seq
        return d

    def enqueue(self, title, fn, args, result=None, inline=False) -> Work:
        """Queue `fn` for the worker; or, with inline=True (a synchronous call), nothing queued and the
        default timeout, run it on the caller's thread at once: waking the worker and waiting for it costs
        milliseconds on a loaded machine, more than a megabyte's all-reduce. A group given its own timeout
        always goes through the worker, so that `Work.wait` can give up after it (an MPI call cannot)."""
        self._seq += 1
        args = (self, self._seq, args)
        if inline and self.timeout == DEFAULT_TIMEOUT:
            with self._lock:
                if not self._pending:
                    work = Work(title, self.timeout, result, self.ranks, done=True)
                    self._execute(work, title, fn, args)
                    return work
        work = Work(title, self.timeout, result, self.ranks)
        with self._count_lock:
            self._pending += 1
        self._queue.put((work, title, fn, args))
        return work

    def shutdown(self):
        """Runs what is queued, then stops the worker."""
        self._queue.put(None)
        self._thread.join()

    # -- run on the worker -------------------------------------------------------------------------------
    def check(self, collective, dt, count, root=-1):
        """Every rank's (collective, dtype, count, root) must match: one error naming the first rank that
        differs, raised on every rank alike (they all see the whole table). count -1: not compared."""
        if self._size == 1:
            return
        mine = _DESC.pack(_COLL_INDEX[collective], dtype_code(dt), count, root)
        got = bytearray(32 * self._size)
        self.comm.Allgather(mine, got)
        if got == mine * self._size:         # the common case: every rank made the same call
            return
        table = np.frombuffer(bytes(got), np.int64).reshape(self._size, 4)
        ref = table[0]
        for r in range(1, self._size):
            row = table[r]
            if (row == ref).all() or (row[0] == ref[0] and row[1] == ref[1] and row[3] == ref[3]
                                      and (row[2] == -1 or ref[2] == -1)):
                continue
            raise RuntimeError(f"{collective}: ranks disagree on the call: rank {self.ranks[0]} {_says(ref)} while "
                               f"rank {self.ranks[r]} {_says(row)}; every rank of the group must call the same "
                               f"collective with tensors of the same size and dtype")


def _says(row) -> str:
    coll = _COLLECTIVES[row[0]] if 0 <= row[0] < len(_COLLECTIVES) else "?"
    dt = str(_DTYPES[row[1]]) if row[1] < len(_DTYPES) else "?"
    s = f"called {coll} with {row[2]} elements of {dt}" if row[2] >= 0 else f"called {coll} with {dt}"
    return s + (f" (root {row[3]})" if row[3] >= 0 else "")


# -- reductions ----------------------------------------------------------------------------------------

_MPI_OPS: dict = {}


def mpi_op(op, dt):
    """(MPI op, working dtype, average?) for ReduceOp `op` on arrays of dtype `dt` (cached per pair)."""
    key = (op, dt)
    r = _MPI_OPS.get(key)
    if r is None:
        r = _MPI_OPS[key] = _mpi_op(op, dt)
    return r


def _mpi_op(op, dt):
    """(MPI op, working dtype) for ReduceOp `op` on arrays of dtype `dt`. bool reduces as uint8 with the
    logical ops torch applies to bools; float16 reduces in float32 (MPI has no half type)."""
    from mpi4py import MPI
    dt = np.dtype(dt)
    op = ReduceOp._coerce(op)
    if dt == np.bool_:
        table = {ReduceOp.SUM: MPI.BOR, ReduceOp.MAX: MPI.BOR, ReduceOp.MIN: MPI.BAND, ReduceOp.PRODUCT: MPI.BAND,
                 ReduceOp.BAND: MPI.BAND, ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}
        work = np.dtype(np.uint8)
    else:
        table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
                 ReduceOp.MAX: MPI.MAX}
        if dt.kind in "iu":
            table.update({ReduceOp.BAND: MPI.BAND, ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR})
        work = np.dtype(np.float32) if dt == np.float16 else dt
    if op == ReduceOp.AVG and dt.kind not in "fc":
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor on the MPI backend, got "
                           f"{scalar_name(dt)}")
    if op not in table:
        raise RuntimeError(f"ReduceOp.{op.name} is not supported for {scalar_name(dt)} tensors on the MPI backend")
    return table[op], work, op == ReduceOp.AVG


_IN_PLACE: list = []


def IN_PLACE():  # noqa: N802 - MPI's name
    """mpi4py's MPI.IN_PLACE (the import looked up once, not per call)."""
    if not _IN_PLACE:
        from mpi4py import MPI
        _IN_PLACE.append(MPI.IN_PLACE)
    return _IN_PLACE[0]


def as_work(a, work):
    """The array to hand to MPI in the working dtype (a view for bool -> uint8; a copy for float16)."""
    if a.dtype == work:
        return a
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    return a.astype(work)


def back(a, w, avg_n=0):
    """Write the reduced working array `w` into `a` (averaging over avg_n ranks for ReduceOp.AVG)."""
    if avg_n:
        w /= avg_n
    if w is not a and w.base is not a:
        a[...] = w.astype(a.dtype)


def raw(a):
    """A byte view of a contiguous array: data movement (broadcast, gather, ...) of any dtype."""
    return a.reshape(-1).view(np.uint8)
