"""The MPI process group: one worker thread per group runs that group's asynchronous collectives, in the order
they were issued, as torch's ProcessGroupMPI does.

Why a worker thread: an asynchronous collective (`async_op=True`, DDP's bucket all-reduces) must make
progress while the caller goes on computing. MPICH progresses nonblocking collectives only inside MPI
calls, so a nonblocking `Iallreduce` would sit idle until `wait()`; a blocking `Allreduce` on a thread
of its own (mpi4py releases the GIL inside MPI calls) overlaps with the caller's work for real. One
thread per group also keeps every rank's collectives on a communicator in one order, which MPI requires.
A synchronous call runs on the caller's thread when nothing is queued before it (see `ProcessGroup.run`).

Before its data moves, every collective checks that the whole group makes the same call: each rank hashes
its call's descriptor (which collective, dtype, element count, root, reduction op) to a 64-bit signature,
and every rank learns whether all signatures agree: through a shared-memory slot per rank when the whole
group is on one host (`_shared_slots`, no MPI call), else one 8-byte-per-rank allgather. When they do not,
the ranks exchange the descriptors themselves and raise one error, the same on every rank, naming the first
rank that differs and the collective, instead of a hang or MPI reading past a buffer. The check costs about
a microsecond on one host, a barrier's latency across hosts (see benchmarks/distributed.py); torch checks only under
TORCH_DISTRIBUTED_DEBUG=DETAIL, tensorlib by default, and not at all when TORCH_DISTRIBUTED_DEBUG=OFF is set
explicitly (`check_enabled`).

Each collective's run is a ``mpi:<name>`` range (torch's profiling titles for MPI), and a record with
Kineto's communication arguments lands in `RECORDS`, which the profiler's trace export reads.
"""
from __future__ import annotations

import collections
import enum
import os
import queue
import threading
import time
from array import array
from datetime import timedelta

import numpy as np

from .. import _hooks
from .. import dispatch as _D
from .. import _dtype

DEFAULT_TIMEOUT = timedelta(minutes=30)          # torch's default_pg_timeout

# (thread id, t0_ns, t1_ns, profiling title, (group's index in GROUPS, seq, per-call args)): Kineto's comm args
# are built from the last item only when read (`records`, for profiler/chrome.py), not on every collective. A
# record names its group by index, not by reference, so that it holds no object the garbage collector tracks:
# 65536 records that each held the group were 65536 tracked tuples for every full collection to walk, which
# made a small all-reduce's Python path 1.6x as slow.
RECORDS: collections.deque = collections.deque(maxlen=1 << 16)
_TLS = threading.local()    # .tid: the thread's native id, as records carry it
_ns = time.perf_counter_ns
GROUPS: list = []           # every ProcessGroup made, in order (a record's group outlives its destruction)


def records() -> list:
    """RECORDS as (thread id, t0_ns, t1_ns, title, Kineto's communication args dict), oldest first."""
    return [(tid, t0, t1, title, GROUPS[g]._comm_args(seq, args)) for tid, t0, t1, title, (g, seq, args)
            in list(RECORDS)]

_DTYPES = [np.dtype(d) for d in ("?", "u1", "i1", "i2", "i4", "i8", "f2", "f4", "f8")]
_COLLECTIVES = ["all_reduce", "broadcast", "reduce", "all_gather", "reduce_scatter", "gather", "scatter",
                "all_to_all", "barrier"]
_COLL_INDEX = {c: i for i, c in enumerate(_COLLECTIVES)}
_DESC_LEN = 5           # a call's descriptor: collective, dtype code, element count, root, reduction op (-1: none)


def check_enabled() -> bool:
    """Whether new groups check every collective's call across ranks: yes unless TORCH_DISTRIBUTED_DEBUG is OFF
    (torch's values, any case: OFF, INFO, DETAIL; torch checks at DETAIL only, and its default is OFF)."""
    level = os.environ.get("TORCH_DISTRIBUTED_DEBUG")
    if level is None:
        return True
    level = level.upper()
    if level not in ("OFF", "INFO", "DETAIL"):
        raise ValueError("The value of TORCH_DISTRIBUTED_DEBUG must be OFF, INFO, or DETAIL.")
    return level != "OFF"


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


class Work:
    """torch.distributed.Work: what an `async_op=True` call returns; `wait()` blocks until the collective
    has run (raising its error, if it failed), `is_completed()` asks without blocking."""

    def __init__(self, title, timeout, result=None, ranks=()):
        self._title = title
        self._timeout = timeout
        self._done = threading.Event()
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
    the group's size; `ranks` are the group's members as global ranks. `check`: whether collectives check
    that every rank makes the same call (see the module's docstring)."""

    def __init__(self, comm, backend, name, desc, ranks, timeout, check=True):
        from mpi4py import MPI
        self.comm = comm
        self.backend = backend
        self.group_name = name
        self.group_desc = desc
        self.ranks = list(ranks)
        self.timeout = timeout
        self._rank = comm.Get_rank()
        self._size = comm.Get_size()
        self._seq = 0
        self._index = len(GROUPS)
        GROUPS.append(self)
        self._args_head = {"Rank": self.ranks[self._rank]}       # Kineto's comm args: per group, built once
        self._args_tail = {"Group size": self._size, "Process Group Name": name, "Process Group Description": desc,
                           "Process Group Ranks": str(self.ranks)}
        # the check's buffers, reused by every call (a call runs under _lock, or on the group's one worker)
        self._checking = check and self._size > 1
        self._sig = array("q", [0])
        self._sigs = array("q", [0]) * self._size
        self._calls = 0                    # checked calls so far (the same count on every rank)
        self._win = self._slots = None
        if self._checking:
            self._win, self._slots = _shared_slots(comm)
        self._mine = _SLOT_STRIDE * self._rank
        self._peers = [_SLOT_STRIDE * r for r in range(self._size) if r != self._rank]
        self.in_place = MPI.IN_PLACE
        # a group given its own timeout runs every call on the worker, so that `Work.wait` can give up after
        # it (an MPI call cannot be interrupted)
        self._inline = timeout == DEFAULT_TIMEOUT
        self._live = True                  # until shutdown
        self._fast: dict = {}              # all_reduce_now's entries, per (op, dtype, size)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()      # held while a collective runs, on the worker or inline (not by
                                           # all_reduce_now: see there)
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
            work, title, fn, rec = item
            exc = None
            with self._lock:
                try:
                    self._execute(title, fn, rec)
                except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
                    exc = e
            with self._count_lock:
                self._pending -= 1
            work._finish(exc)

    @staticmethod
    def _execute(title, fn, rec):
        """Run collective `fn` as a `title` range; its record (with `rec`: group, seq, per-call args) goes to
        RECORDS whether it succeeds or not. While nothing observes ranges (no profiler), neither: the
        profiler's export keeps only the records whose range it holds."""
        if not _hooks.range_hooks:
            fn()
            return
        t0 = _ns()
        tok = _D.range_enter(title, "user")
        try:
            fn()
        finally:
            _D.range_exit(tok)
            try:
                tid = _TLS.tid
            except AttributeError:
                tid = _TLS.tid = threading.get_native_id()     # a system call: once per thread
            RECORDS.append((tid, t0, _ns(), title, rec))

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

    def run(self, title, fn, args, result=None, async_op=False):
        """Run collective `fn` (from its c10d op's kernel). A synchronous call on a group with the default
        timeout and nothing queued runs at once on the caller's thread: no Work, its error raised here
        (waking the worker and waiting for it costs milliseconds on a loaded machine, more than a megabyte's
        all-reduce). Otherwise `fn` is queued for the worker, and the Work returned (the caller waits on it
        after the op, as torch's c10d ops return a Work that Python waits on)."""
        self._seq = seq = self._seq + 1
        if self._inline and not async_op:
            lock = self._lock
            lock.acquire()
            try:
                if not self._pending:
                    if _hooks.range_hooks:
                        self._execute(title, fn, (self._index, seq, args))
                    else:
                        fn()            # _execute's whole work while nothing observes ranges
                    return None
            finally:
                lock.release()
        rec = (self._index, seq, args)
        work = Work(title, self.timeout, result, self.ranks)
        with self._count_lock:
            self._pending += 1
        self._queue.put((work, title, fn, rec))
        return work

    def all_reduce_now(self, tensor, op) -> bool:
        """The common all-reduce done at once on the caller's thread, in one frame: synchronous (the caller
        asks only then), a contiguous CPU tensor reduced in place in its own dtype, not AVG, on a live group
        that runs calls inline with nothing queued, while nothing observes ops or ranges: True. Else False,
        with nothing done: the caller takes the general path, which raises any error. Between two calls a
        64 KiB all-reduce evicts the interpreter's working set from the caches, so each frame and lookup costs
        several times what it costs in a tight loop (0.2-0.9 us a frame, measured around the MPI call at 2
        ranks): in one frame, with what a call needs made once per (op, dtype, size) (the MPI op, the check's
        signature), the Python outside MPI fell from 3.0-3.4 to 1.7-1.8 us a call unchecked, 6.0-6.4 to
        4.3-4.6 checked (on a loaded host; the check also absorbs the ranks' skew there). No lock (0.45 us
        there): with nothing queued the worker is idle, and only a thread issuing on this group could give it
        work, while this call runs on the one thread that issues: a group's collectives must come in one order
        on every rank, so from one thread at a time (MPI's rule for a communicator), as every caller in
        tensorlib (DDP, SyncBatchNorm) makes them."""
        a = tensor._data
        if type(a) is not np.ndarray or _hooks.full_path or _hooks.range_hooks or not self._live:
            return False
        key = (op, a.dtype, a.size)
        how = self._fast.get(key)
        if how is None:
            how = self._fast_entry(key)
        if not how or self._pending or not a.flags.c_contiguous:
            return False
        self._seq += 1
        if self._checking:
            self._agree(how[1], "all_reduce", how[2])
        self.comm.Allreduce(self.in_place, a, op=how[0])
        base = tensor._base                 # dispatch.bump_version, without the call
        (base if base is not None else tensor)._version += 1
        return True

    def _fast_entry(self, key):
        """all_reduce_now's entry for (op, dtype, size): (MPI op, the check's signature, the call's
        descriptor), or () where the general path must run (AVG, a working dtype of its own, a group with
        a timeout of its own, an op it rejects)."""
        op, dt, count = key
        if len(self._fast) >= 256:          # a job reducing many sizes: the entries are cheap to remake
            self._fast.clear()
        try:
            mop, wdt, avg, code = mpi_op(op, dt)
        except (TypeError, RuntimeError):
            how = ()
        else:
            desc = self._desc("all_reduce", dt, count, -1, code)
            how = (mop, hash(desc), desc) if wdt is dt and not avg and self._inline else ()
        self._fast[key] = how
        return how

    def shutdown(self):
        """Runs what is queued, then stops the worker (and frees the check's shared window: collective, as
        the communicator's own free that follows)."""
        self._live = False
        self._queue.put(None)
        self._thread.join()
        if self._win is not None:
            self._slots = None
            self._win.Free()
            self._win = None

    # -- run where the collective runs (worker or caller, under _lock) --------------------------------
    def check(self, collective, dt, count, root=-1, op=-1):
        """Every rank's (collective, dtype, count, root, op) must match, or every rank raises the same error
        naming the first rank that differs. count -1: a collective whose sizes may differ per rank."""
        if self._checking:
            desc = self._desc(collective, dt, count, root, op)
            self._agree(hash(desc), collective, desc)

    @staticmethod
    def _desc(collective, dt, count, root, op):
        """A call's descriptor: ints only, so that its hash is the same on every rank (no hash randomisation
        for ints)."""
        code = _CODES.get(dt)
        return (_COLL_INDEX[collective], code if code is not None else dtype_code(dt), count, root, op)

    def _agree(self, sig, collective, desc):
        """Whether every rank's call has signature `sig` (the hash of its descriptor `desc`): through the
        shared slots, else one allgather of the 64-bit signatures; the descriptors themselves travel only on
        a mismatch (`_mismatch` raises)."""
        self._calls = k = self._calls + 1
        slots = self._slots
        if slots is not None:
            tag = k & _TAG_MASK
            word = ((sig & _SIG_MASK) << _TAG_BITS) | tag
            i = k & 1
            slots[self._mine + i] = word
            for j in self._peers:
                w = slots[j + i]
                if w != word:
                    if w & _TAG_MASK != tag:
                        w = _wait_tag(slots, j + i, tag)
                    if w != word:
                        self._mismatch(collective, desc)
            return
        self._sig[0] = sig
        self.comm.Allgather(self._sig, self._sigs)
        if self._sigs.count(sig) != self._size:
            self._mismatch(collective, desc)

    def _mismatch(self, collective, desc):
        table = array("q", [0]) * (_DESC_LEN * self._size)
        self.comm.Allgather(array("q", desc), table)
        rows = [tuple(table[i:i + _DESC_LEN]) for i in range(0, len(table), _DESC_LEN)]
        for r, row in enumerate(rows):
            if row != rows[0]:
                raise RuntimeError(f"{collective}: ranks disagree on the call: rank {self.ranks[0]} {_says(rows[0])} "
                                   f"while rank {self.ranks[r]} {_says(row)}; every rank of the group must call the "
                                   f"same collective with tensors of the same size and dtype (and the same root "
                                   f"and op)")
        raise RuntimeError(f"{collective}: the ranks' call signatures differ although their calls agree "
                           f"({_says(rows[0])}): run every rank on the same Python build")


# The check on one host: each rank's word for its k-th checked call, (signature << 16 | k mod 2^16), in a
# shared-memory slot of its own, one slot per parity of k; a rank reads every peer's slot until it holds the
# same k, then compares. No MPI call, so the check costs what the ranks' arrival skew costs (which the
# collective that follows would wait for anyway) plus a few loads, not a round trip through MPI (an 8-byte
# allgather: 2-2.6 us, a 64 KiB all-reduce's tenth). Two slots suffice: a rank writes its word for call k+2
# only after passing check k+1, which needs every peer's word for k+1, written after that peer read all of
# call k's. One aligned 8-byte store per word, so a reader never sees half of one.
_TAG_BITS = 16
_TAG_MASK = (1 << _TAG_BITS) - 1
_SIG_MASK = (1 << (63 - _TAG_BITS)) - 1          # the word stays a non-negative int64
_SLOT_STRIDE = 8                                  # int64s per rank: a cache line each, no false sharing


def _shared_slots(comm):
    """(window, int64 memoryview of every rank's slots) when every rank of `comm` shares this host's memory,
    else (None, None): the check then uses an allgather. Collective over `comm`; every rank gets the same
    answer (a group on several hosts has no node holding all of it)."""
    from mpi4py import MPI
    try:
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    except MPI.Exception:
        return None, None
    whole = node.Get_size() == comm.Get_size()
    node.Free()
    if not whole:
        return None, None
    nbytes = 8 * _SLOT_STRIDE * comm.Get_size()
    try:
        win = MPI.Win.Allocate_shared(nbytes if comm.Get_rank() == 0 else 0, 8, comm=comm)
        buf, _ = win.Shared_query(0)
        slots = memoryview(buf).cast("B").cast("q")
    except MPI.Exception:
        win = slots = None
    if not comm.allreduce(slots is not None, op=MPI.LAND):
        return None, None       # no shared memory on some rank (a full /dev/shm): all use the allgather
    if comm.Get_rank() == 0:
        slots[:] = array("q", [0]) * len(slots)
    comm.Barrier()
    return win, slots


def _wait_tag(slots, i, tag):
    """Poll slot `i` until its word carries `tag` (the peer reached the same call); the word. Polls
    briefly, then yields the core at each poll (a peer descheduled on a busy host gets it, and another
    thread of this process the GIL), then sleeps between polls when the wait is long (a peer still
    computing)."""
    n = 0
    while True:
        w = slots[i]
        if w & _TAG_MASK == tag:
            return w
        n += 1
        if n > 64:
            if n < 20000:
                os.sched_yield()
            else:
                time.sleep(5e-5)


def _says(row) -> str:
    coll = _COLLECTIVES[row[0]] if 0 <= row[0] < len(_COLLECTIVES) else "?"
    dt = str(_DTYPES[row[1]]) if row[1] < len(_DTYPES) else "?"
    s = f"called {coll} with {row[2]} elements of {dt}" if row[2] >= 0 else f"called {coll} with {dt}"
    extra = [f"root {row[3]}"] if row[3] >= 0 else []
    if row[4] >= 0:
        names = {int(m): m.name for m in ReduceOp.RedOpType}
        extra.append(f"op {names.get(row[4], row[4])}")
    return s + (f" ({', '.join(extra)})" if extra else "")


# -- reductions ----------------------------------------------------------------------------------------

_MPI_OPS: dict = {}


def mpi_op(op, dt):
    """(MPI op, working dtype, average?, the ReduceOp's code) for ReduceOp `op` on arrays of dtype `dt`
    (cached per pair)."""
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
    return table[op], work, op == ReduceOp.AVG, int(op)


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
