"""cupy.cuda.nccl (fake): NCCL's communicators for ranks that are processes (or threads) of one machine.

The API is CuPy 14's `cupy.cuda.nccl` (cupy_backends/cuda/libs/nccl.pyx): `get_unique_id()`,
`NcclCommunicator(ndev, commId, rank)` and its `allReduce`, `reduce`, `broadcast`, `bcast`, `allGather`,
`reduceScatter`, `send`, `recv` on raw device pointers (intptr_t) with an element count, an NCCL datatype
and op code and a stream pointer; `groupStart`/`groupEnd`; `NcclCommunicator.initAll`; the NCCL_* codes;
`NcclError` with NCCL's messages. Under FAKECUPY_RULES=13 the unique id is CuPy 13's tuple of 128 ints.

How the ranks meet: as in NCCL, `get_unique_id()` starts a bootstrap root in the calling process (here a
`multiprocessing.connection` listener on 127.0.0.1) and the id carries its port and a random key (the
connection's authentication key). Each `NcclCommunicator(ndev, id, rank)` connects to it and blocks until
all `ndev` ranks have joined (ncclCommInitRank). Every call then sends its descriptor and the bytes it
reads to the root, which runs the collective when every rank has issued its call of the same sequence
number, and sends each rank what lands in its receive buffer. Sends are buffered at the root (a `send`
never waits for its `recv`); a `recv` waits for the matching send.

Strict where NCCL is, and louder where NCCL would hang or corrupt memory: a datatype or op outside NCCL's
codes, a rank outside [0, ndev), a root or peer outside the communicator, a destroyed communicator:
NcclError(NCCL_ERROR_INVALID_ARGUMENT). A buffer pointer that is not inside a live allocation of the
communicator's device for ``count`` elements, or a stream pointer that is not a live stream of that device:
NcclError(NCCL_ERROR_INVALID_ARGUMENT) (NCCL's pointer check). Ranks whose calls disagree (another
collective, count, datatype, op or root; a recv whose count or datatype differs from the send) get
NcclError(NCCL_ERROR_INVALID_USAGE) on every rank, with a ``NCCL WARN`` line on stderr saying who called
what. A rank that went away: NcclError(NCCL_ERROR_REMOTE_ERROR). Nothing waits forever: a call gives up
after FAKECUPY_NCCL_TIMEOUT seconds (default 120) with NCCL_ERROR_SYSTEM_ERROR.

Timing: each call enqueues a kernel on its stream (cupy.cuda._sim) after the data has moved; the data
itself moves at once, as the fake's other kernels compute at once. Not simulated: commSplit, NcclConfig's
effect, bfloat16 reductions (NumPy has no bfloat16).
"""
from __future__ import annotations

import os
import secrets
import sys
import threading
from multiprocessing.connection import Client, Listener

import numpy

from .. import _api

NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = 0, 1, 2, 3, 4
NCCL_INT8 = NCCL_CHAR = 0
NCCL_UINT8 = 1
NCCL_INT32 = NCCL_INT = 2
NCCL_UINT32 = 3
NCCL_INT64 = 4
NCCL_UINT64 = 5
NCCL_FLOAT16 = NCCL_HALF = 6
NCCL_FLOAT32 = NCCL_FLOAT = 7
NCCL_FLOAT64 = NCCL_DOUBLE = 8
NCCL_BFLOAT16 = 9

available = True

_VERSION = 22807                    # NCCL 2.28.7, as NCCL_VERSION_CODE encodes it
_ID_BYTES = 128
_MAGIC = b"fakenccl"
_TIMEOUT = float(os.environ.get("FAKECUPY_NCCL_TIMEOUT", "120"))

# NCCL datatype -> NumPy dtype (bfloat16: 2-byte opaque, moved but never reduced)
_DTYPES = {0: numpy.dtype(numpy.int8), 1: numpy.dtype(numpy.uint8), 2: numpy.dtype(numpy.int32),
           3: numpy.dtype(numpy.uint32), 4: numpy.dtype(numpy.int64), 5: numpy.dtype(numpy.uint64),
           6: numpy.dtype(numpy.float16), 7: numpy.dtype(numpy.float32), 8: numpy.dtype(numpy.float64),
           9: numpy.dtype(numpy.uint16)}

_ERRORS = {0: ("NCCL_ERROR_SUCCESS", "no error"),
           1: ("NCCL_ERROR_UNHANDLED_CUDA_ERROR", "unhandled cuda error (run with NCCL_DEBUG=INFO for details)"),
           2: ("NCCL_ERROR_SYSTEM_ERROR", "unhandled system error (run with NCCL_DEBUG=INFO for details)"),
           3: ("NCCL_ERROR_INTERNAL_ERROR", "internal error - please report this issue to the NCCL developers"),
           4: ("NCCL_ERROR_INVALID_ARGUMENT", "invalid argument (run with NCCL_DEBUG=WARN for details)"),
           5: ("NCCL_ERROR_INVALID_USAGE", "invalid usage (run with NCCL_DEBUG=WARN for details)"),
           6: ("NCCL_ERROR_REMOTE_ERROR", "remote process exited or there was a network error")}
_INVALID_ARGUMENT, _INVALID_USAGE, _SYSTEM_ERROR, _REMOTE_ERROR = 4, 5, 2, 6


class NcclError(RuntimeError):
    """As CuPy's: ``NcclError(status)``, message '<NCCL_ERROR_NAME>: <ncclGetErrorString>'."""

    def __init__(self, status):
        self.status = status
        name, msg = _ERRORS.get(status, ("NCCL_ERROR_UNKNOWN", "unknown result code"))
        super().__init__(f"{name}: {msg}")

    def __reduce__(self):
        return (type(self), (self.status,))


def _warn(text):
    """NCCL's diagnostic line (what NCCL_DEBUG=WARN prints) for an error the status code cannot explain."""
    sys.stderr.write(f"{os.uname().nodename}:{os.getpid()} NCCL WARN (fake) {text}\n")
    sys.stderr.flush()


def check_status(status):
    _api.check_call("cupy.cuda.nccl", "check_status", (status,), {})
    if status != 0:
        raise NcclError(status)


def get_build_version():
    return _VERSION


def get_version():
    return _VERSION


# -- the bootstrap root -------------------------------------------------------------------------------

class _Root:
    """One communicator's meeting point, in the process that called get_unique_id: a thread per rank's
    connection, the pending calls of every sequence number, the buffered point-to-point messages."""

    def __init__(self):
        self.key = secrets.token_bytes(32)
        self.listener = Listener(("127.0.0.1", 0), authkey=self.key)
        self.port = self.listener.address[1]
        self.cond = threading.Condition()
        self.ndev = None
        self.joined: dict[int, tuple] = {}
        self.calls: dict[int, dict[int, tuple]] = {}       # seq -> rank -> (descriptor, payload)
        self.results: dict[int, dict[int, object]] = {}    # seq -> rank -> reply
        self.p2p: dict[tuple[int, int], list] = {}         # (src, dst) -> [(count, datatype, payload)]
        self.lost = False
        threading.Thread(target=self._accept, name="fake nccl root", daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):
                return
            threading.Thread(target=self._serve, args=(conn,), name="fake nccl root conn", daemon=True).start()

    def _serve(self, conn):
        import queue
        inbox: queue.SimpleQueue = queue.SimpleQueue()

        def read():                     # read ahead, so a rank's next calls never block its socket
            try:
                while True:
                    inbox.put(conn.recv())
            except (OSError, EOFError):
                inbox.put(None)
        threading.Thread(target=read, daemon=True).start()
        rank = None
        while True:
            msg = inbox.get()
            if msg is None:
                with self.cond:
                    if rank is not None and rank in self.joined:
                        self.lost = True
                        self.cond.notify_all()
                return
            kind = msg[0]
            try:
                if kind == "join":
                    rank = msg[2]
                    reply = self._join(*msg[1:])
                elif kind == "send":
                    reply = self._send(rank, *msg[1:])
                elif kind == "recv":
                    reply = self._recv(rank, *msg[1:])
                elif kind == "bye":
                    reply = None
                else:
                    reply = self._collective(rank, *msg[1:])
            except NcclError as e:
                reply = e
            if kind == "bye":
                with self.cond:
                    self.joined.pop(rank, None)
                return
            try:
                conn.send(reply)
            except (OSError, EOFError):
                return

    def _wait(self, ready):
        if not self.cond.wait_for(lambda: ready() or self.lost, timeout=_TIMEOUT):
            raise NcclError(_SYSTEM_ERROR)
        if not ready():
            raise NcclError(_REMOTE_ERROR)

    def _join(self, ndev, rank, pid, device):
        with self.cond:
            if self.ndev is None:
                self.ndev = ndev
            if ndev != self.ndev:
                _warn(f"rank {rank} joined with ndev {ndev}, another rank with {self.ndev}")
                raise NcclError(_INVALID_USAGE)
            if rank in self.joined:
                _warn(f"rank {rank} joined the communicator twice")
                raise NcclError(_INVALID_USAGE)
            for r, (p, d) in self.joined.items():
                if (p, d) == (pid, device):
                    _warn(f"Duplicate GPU detected : rank {rank} and rank {r} both on CUDA device {device}")
                    raise NcclError(_INVALID_USAGE)
            self.joined[rank] = (pid, device)
            self.cond.notify_all()
            self._wait(lambda: len(self.joined) >= self.ndev)
        return "ok"

    def _send(self, rank, peer, count, datatype, payload):
        with self.cond:
            self.p2p.setdefault((rank, peer), []).append((count, datatype, payload))
            self.cond.notify_all()
        return "ok"

    def _recv(self, rank, peer, count, datatype):
        with self.cond:
            self._wait(lambda: bool(self.p2p.get((peer, rank))))
            scount, sdt, payload = self.p2p[(peer, rank)].pop(0)
        if (scount, sdt) != (count, datatype):
            _warn(f"rank {rank} receives {count} elements of datatype {datatype} from rank {peer}, which sent "
                  f"{scount} of datatype {sdt}")
            raise NcclError(_INVALID_USAGE)
        return payload

    def _collective(self, rank, seq, desc, payload):
        with self.cond:
            self.calls.setdefault(seq, {})[rank] = (desc, payload)
            if len(self.calls[seq]) == self.ndev:
                self.results[seq] = _run(self.calls.pop(seq), self.ndev)
                self.cond.notify_all()
            self._wait(lambda: seq in self.results)
            out = self.results[seq].pop(rank)
            if not self.results[seq]:
                del self.results[seq]
        return out


def _says(d):
    name, count, datatype, op, root = d
    extra = (f" op {op}" if op >= 0 else "") + (f" root {root}" if root >= 0 else "")
    return f"{name} of {count} elements of datatype {datatype}{extra}"


def _run(calls, n):
    """The replies of one collective: {rank: bytes for its receive buffer (or None), or an NcclError}."""
    descs = {r: c[0] for r, c in calls.items()}
    ref = descs[0]
    for r in range(1, n):
        if descs[r] != ref:
            _warn(f"ranks disagree on a collective: rank 0 calls {_says(ref)}, rank {r} calls {_says(descs[r])}")
            return {r: NcclError(_INVALID_USAGE) for r in range(n)}
    name, count, datatype, op, root = ref
    dt = _DTYPES[datatype]
    arrs = [numpy.frombuffer(calls[r][1], dt) if calls[r][1] is not None else None for r in range(n)]
    if name in ("allReduce", "reduce", "reduceScatter"):
        if datatype == NCCL_BFLOAT16:
            raise NotImplementedError("fake nccl: bfloat16 reductions are not simulated (NumPy has no bfloat16)")
        with numpy.errstate(all="ignore"):
            acc = arrs[0].copy()
            for a in arrs[1:]:
                if op in (NCCL_SUM, NCCL_AVG):
                    acc += a
                elif op == NCCL_PROD:
                    acc *= a
                elif op == NCCL_MAX:
                    numpy.maximum(acc, a, out=acc)
                else:
                    numpy.minimum(acc, a, out=acc)
            if op == NCCL_AVG:
                acc = (acc / n).astype(dt) if dt.kind == "f" else acc // n
        if name == "allReduce":
            return {r: acc.tobytes() for r in range(n)}
        if name == "reduce":
            return {r: acc.tobytes() if r == root else None for r in range(n)}
        return {r: acc[r * count:(r + 1) * count].tobytes() for r in range(n)}
    if name == "broadcast":
        return {r: calls[root][1] for r in range(n)}
    if name == "allGather":
        whole = b"".join(calls[r][1] for r in range(n))
        return {r: whole for r in range(n)}
    raise AssertionError(name)


_roots: list[_Root] = []


def get_unique_id():
    """128 bytes naming a new bootstrap root in this process (CuPy 13's rules: a tuple of 128 ints)."""
    _api.check_call("cupy.cuda.nccl", "get_unique_id", (), {})
    root = _Root()
    _roots.append(root)
    raw = _MAGIC + root.port.to_bytes(2, "little") + root.key
    raw += b"\0" * (_ID_BYTES - len(raw))
    if _api.RULES == "13":
        return tuple(b - 256 if b > 127 else b for b in raw)
    return raw


# -- groups ---------------------------------------------------------------------------------------------

_group = threading.local()


def groupStart():
    _api.check_call("cupy.cuda.nccl", "groupStart", (), {})
    _group.depth = getattr(_group, "depth", 0) + 1
    if _group.depth == 1:
        _group.ops = []


def groupEnd():
    """Runs the calls made since groupStart: every call is posted to the roots first, then the replies are
    collected, so a group holding both sides of an exchange (or every device's call, with initAll's
    communicators) completes, as in NCCL."""
    _api.check_call("cupy.cuda.nccl", "groupEnd", (), {})
    depth = getattr(_group, "depth", 0)
    if depth == 0:
        _warn("groupEnd called without a matching groupStart")
        raise NcclError(_INVALID_USAGE)
    _group.depth = depth - 1
    if _group.depth:
        return
    ops, _group.ops = _group.ops, []
    for op in ops:
        op.post()
    first = None
    for op in ops:
        try:
            op.finish()
        except NcclError as e:
            first = first or e
    if first is not None:
        raise first


class _Op:
    """One call: post() sends it to the root, finish() takes the reply into the receive buffer and
    enqueues the kernel on the stream."""

    def __init__(self, comm, msg, out, nbytes, stream):
        self.comm, self.msg, self.out, self.nbytes, self.stream = comm, msg, out, nbytes, stream

    def post(self):
        try:
            self.comm._conn.send(self.msg)
        except (OSError, EOFError):
            raise NcclError(_REMOTE_ERROR) from None

    def finish(self):
        try:
            reply = self.comm._conn.recv()
        except (OSError, EOFError):
            raise NcclError(_REMOTE_ERROR) from None
        if isinstance(reply, NcclError):
            raise reply
        if self.out is not None and isinstance(reply, bytes):
            if len(reply) != self.out.nbytes:
                raise NcclError(_INVALID_USAGE)
            self.out[...] = numpy.frombuffer(reply, numpy.uint8)
        from . import _sim
        _sim.launch(self.nbytes, stream=self.stream)


# -- communicators --------------------------------------------------------------------------------------

def _check_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, numpy.integer)):
        raise TypeError(f"an integer is required (argument {name!r} got {type(v).__name__})")
    return int(v)


class NcclConfig:
    def __init__(self, split_share=0):
        self.split_share = split_share


class NcclCommunicator:
    """One rank of a communicator, on the device current at construction (see the module docstring)."""

    def __init__(self, ndev, commId, rank, config=None):
        _api.check_call("cupy.cuda.nccl", "NcclCommunicator", (ndev, commId, rank, config), {})
        ndev, rank = _check_int("ndev", ndev), _check_int("rank", rank)
        want = tuple if _api.RULES == "13" else bytes
        if not isinstance(commId, want):
            raise TypeError(f"Argument 'commId' has incorrect type (expected {want.__name__}, got "
                            f"{type(commId).__name__})")
        if config is not None and not isinstance(config, NcclConfig):
            raise TypeError(f"Argument 'config' has incorrect type (expected cupy_backends.cuda.libs.nccl.NcclConfig, "
                            f"got {type(commId).__name__})")
        if len(commId) != _ID_BYTES:
            raise ValueError(f"commId length {len(commId)} != {_ID_BYTES}.")
        raw = bytes(b & 0xFF for b in commId) if want is tuple else commId
        if ndev < 1 or not 0 <= rank < ndev:
            _warn(f"Invalid rank requested : {rank}/{ndev}")
            raise NcclError(_INVALID_ARGUMENT)
        if not raw.startswith(_MAGIC):
            raise NcclError(_INVALID_ARGUMENT)
        from . import runtime
        port = int.from_bytes(raw[8:10], "little")
        key = raw[10:42]
        self._conn = None
        try:
            self._conn = Client(("127.0.0.1", port), authkey=key)
        except OSError:
            _warn(f"cannot reach the bootstrap root at 127.0.0.1:{port}")
            raise NcclError(_SYSTEM_ERROR) from None
        self._ndev, self._rank, self._device = ndev, rank, runtime.getDevice()
        self._seq = 0
        _Op(self, ("join", ndev, rank, os.getpid(), self._device), None, 0, None).post()
        self._finish_join()

    def _finish_join(self):
        try:
            reply = self._conn.recv()
        except (OSError, EOFError):
            raise NcclError(_REMOTE_ERROR) from None
        if isinstance(reply, NcclError):
            self._conn.close()
            self._conn = None
            raise reply

    @property
    def comm(self):
        return 0 if self._conn is None else id(self)

    @staticmethod
    def initAll(devices):
        """One communicator per device, all in this process (ncclCommInitAll)."""
        from . import runtime
        if isinstance(devices, list):
            devlist = devices
        elif isinstance(devices, int):
            devlist = list(range(devices))
        else:
            raise ValueError('"devices" should be an int or a list of int.')
        uid = get_unique_id()
        comms: list = [None] * len(devlist)
        errors: list = []

        def make(i, d):
            try:
                runtime.setDevice(d)
                comms[i] = NcclCommunicator(len(devlist), uid, i)
            except Exception as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
        ts = [threading.Thread(target=make, args=(i, d)) for i, d in enumerate(devlist)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise errors[0]
        return comms

    def _check(self, method, args):
        _api.check_call("cupy.cuda.nccl.NcclCommunicator", method, args, {}, method=True)
        if self._conn is None:
            _warn(f"{method}: the communicator was destroyed")
            raise NcclError(_INVALID_ARGUMENT)

    def destroy(self):
        if self._conn is not None:
            try:
                self._conn.send(("bye",))      # no reply awaited: the root's process may be finalizing MPI
            except (OSError, EOFError):
                pass
            self._conn.close()
            self._conn = None

    abort = destroy

    def __del__(self):
        try:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def device_id(self):
        self._check("device_id", ())
        return self._device

    def rank_id(self):
        self._check("rank_id", ())
        return self._rank

    def size(self):
        self._check("size", ())
        return self._ndev

    def check_async_error(self):
        self._check("check_async_error", ())

    def commSplit(self, color, key, config=None):
        raise NotImplementedError("fake nccl: commSplit is not simulated")

    # -- argument checks ------------------------------------------------------------------------------
    def _datatype(self, method, datatype):
        datatype = _check_int("datatype", datatype)
        if datatype not in _DTYPES:
            _warn(f"{method}: invalid type {datatype}, last type is {NCCL_BFLOAT16}")
            raise NcclError(_INVALID_ARGUMENT)
        return datatype

    def _op(self, method, op):
        op = _check_int("op", op)
        if not 0 <= op <= NCCL_AVG:
            _warn(f"{method}: invalid reduction operation {op}")
            raise NcclError(_INVALID_ARGUMENT)
        return op

    def _peer(self, method, what, r):
        r = _check_int(what, r)
        if not 0 <= r < self._ndev:
            _warn(f"{method}: invalid {what} {r}, should be in [0, {self._ndev})")
            raise NcclError(_INVALID_ARGUMENT)
        return r

    def _buffer(self, method, what, ptr, count, datatype):
        """The bytes at device pointer `ptr` for `count` elements: NCCL's pointer check."""
        from .._core import buffer_at
        ptr = _check_int(what, ptr)
        count = _check_int("count", count)
        if count < 0:
            raise OverflowError("can't convert negative value to size_t")
        nbytes = count * _DTYPES[datatype].itemsize
        if nbytes == 0:
            return numpy.zeros(0, numpy.uint8)
        found = buffer_at(ptr, nbytes)
        if found is None:
            _warn(f"{method} : {what} {ptr:#x} is not a valid pointer for {count} elements of datatype {datatype}")
            raise NcclError(_INVALID_ARGUMENT)
        buf, dev = found
        if dev != self._device:
            _warn(f"{method} : {what} {ptr:#x} is on CUDA device {dev}, the communicator on {self._device}")
            raise NcclError(_INVALID_ARGUMENT)
        return buf

    def _stream(self, method, stream):
        from . import Stream, _streams, runtime
        stream = _check_int("stream", stream)
        if stream == 0:
            prev = runtime.getDevice()
            runtime.setDevice(self._device)
            try:
                return Stream(null=True)
            finally:
                runtime.setDevice(prev)
        s = _streams.get(stream)
        if s is None or s.device_id != self._device:
            _warn(f"{method} : stream {stream:#x} is not a stream of CUDA device {self._device}")
            raise NcclError(_INVALID_ARGUMENT)
        return s

    def _issue(self, msg, out, nbytes, stream):
        op = _Op(self, msg, out, nbytes, stream)
        if getattr(_group, "depth", 0):
            _group.ops.append(op)
            return
        op.post()
        op.finish()

    def _coll(self, desc, send, recv, nbytes, stream):
        self._seq += 1
        self._issue(("coll", self._seq, desc, None if send is None else send.tobytes()), recv, nbytes, stream)

    # -- the calls --------------------------------------------------------------------------------------
    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._check("allReduce", (sendbuf, recvbuf, count, datatype, op, stream))
        dt, op = self._datatype("AllReduce", datatype), self._op("AllReduce", op)
        s = self._buffer("AllReduce", "sendbuff", sendbuf, count, dt)
        r = self._buffer("AllReduce", "recvbuff", recvbuf, count, dt)
        self._coll(("allReduce", count, dt, op, -1), s, r, r.nbytes, self._stream("AllReduce", stream))

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        self._check("reduce", (sendbuf, recvbuf, count, datatype, op, root, stream))
        dt, op = self._datatype("Reduce", datatype), self._op("Reduce", op)
        root = self._peer("Reduce", "root", root)
        s = self._buffer("Reduce", "sendbuff", sendbuf, count, dt)
        r = self._buffer("Reduce", "recvbuff", recvbuf, count, dt) if self._rank == root else None
        self._coll(("reduce", count, dt, op, root), s, r, s.nbytes, self._stream("Reduce", stream))

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self._check("broadcast", (sendbuff, recvbuff, count, datatype, root, stream))
        dt = self._datatype("Broadcast", datatype)
        root = self._peer("Broadcast", "root", root)
        s = self._buffer("Broadcast", "sendbuff", sendbuff, count, dt) if self._rank == root else None
        r = self._buffer("Broadcast", "recvbuff", recvbuff, count, dt)
        self._coll(("broadcast", count, dt, -1, root), s, r, r.nbytes, self._stream("Broadcast", stream))

    def bcast(self, buff, count, datatype, root, stream):
        self._check("bcast", (buff, count, datatype, root, stream))
        dt = self._datatype("Bcast", datatype)
        root = self._peer("Bcast", "root", root)
        b = self._buffer("Bcast", "buff", buff, count, dt)
        self._coll(("broadcast", count, dt, -1, root), b if self._rank == root else None, b, b.nbytes,
                   self._stream("Bcast", stream))

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        self._check("allGather", (sendbuf, recvbuf, count, datatype, stream))
        dt = self._datatype("AllGather", datatype)
        s = self._buffer("AllGather", "sendbuff", sendbuf, count, dt)
        r = self._buffer("AllGather", "recvbuff", recvbuf, count * self._ndev, dt)
        self._coll(("allGather", count, dt, -1, -1), s, r, r.nbytes, self._stream("AllGather", stream))

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        self._check("reduceScatter", (sendbuf, recvbuf, recvcount, datatype, op, stream))
        dt, op = self._datatype("ReduceScatter", datatype), self._op("ReduceScatter", op)
        s = self._buffer("ReduceScatter", "sendbuff", sendbuf, recvcount * self._ndev, dt)
        r = self._buffer("ReduceScatter", "recvbuff", recvbuf, recvcount, dt)
        self._coll(("reduceScatter", recvcount, dt, op, -1), s, r, s.nbytes, self._stream("ReduceScatter", stream))

    def send(self, sendbuf, count, datatype, peer, stream):
        self._check("send", (sendbuf, count, datatype, peer, stream))
        dt = self._datatype("Send", datatype)
        peer = self._peer("Send", "peer", peer)
        s = self._buffer("Send", "sendbuff", sendbuf, count, dt)
        self._issue(("send", peer, count, dt, s.tobytes()), None, s.nbytes, self._stream("Send", stream))

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._check("recv", (recvbuf, count, datatype, peer, stream))
        dt = self._datatype("Recv", datatype)
        peer = self._peer("Recv", "peer", peer)
        r = self._buffer("Recv", "recvbuff", recvbuf, count, dt)
        self._issue(("recv", peer, count, dt), r, r.nbytes, self._stream("Recv", stream))
