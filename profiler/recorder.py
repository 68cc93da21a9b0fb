"""The hot path: a compact tuple per op and per range, appended to the recording thread's own list.

Nothing is derived while the program runs. Each thread appends to its own list (no lock, no thread id per record;
the watchdog moves a list's older records into tuples the cyclic GC stops walking, `freeze`); a record is laid out
as the op sink's ``tensorlib.dispatch.OpRecord``, ``(name, tag, seq, t0, t1)`` with ``perf_counter_ns`` stamps,
where ``tag`` is the op's phase (``"forward"``/``"backward"``) or ``"r:" + kind`` for a named range (the field
positions below, NAME ... T1, are derived from OpRecord). With default options the dispatcher writes the op
records itself (the recorder is its op-record sink, `dispatch.set_op_sink`) and only ranges pass through hook
methods. With ``record_shapes``/``profile_memory``/``with_stack``/``with_flops`` the recorder is an op hook too
and the record grows one field, ``(name, tag, seq, extra id, t0, t1)``, the id of an extra ``(shapes_dtypes,
stack, flops)`` in the process's table of distinct extras (`EXTRAS`, `extra_id`; with record_shapes but no stack
or FLOPs, found per op by one dict lookup of a flat key of the inputs' shapes and dtypes, `shapes_id`), so that
every record is a tuple of strings and ints, which the cyclic GC untracks the first time it sees it (a record
holding nested tuples stays tracked through several full collections, each walking every record kept so far);
with_stack adds to an nn.Module range's extra its module's ``(class name, id)``, for torch's python_function
events (python_trace.py), and names each frame's function as torch does (`FUNCTION_OF_FRAME`). Records land in
exit order; `events.build` turns them into a tree after ``stop()``.

The hook methods are closures bound on the instance (the dispatcher binds them at registration and
`dispatch.refresh_hooks()` re-reads them), so that switching to "dropping" once ``max_events`` is
reached is one attribute assignment.
"""
from __future__ import annotations

import itertools
from typing import Any
import os
import sys
import threading
import time

import numpy as np

from tensorlib import Tensor
from tensorlib.nn.parameter import Parameter
from tensorlib import dispatch as _dispatch
from tensorlib.dispatch import OpRecord, array_of
from ._native import crecord

ndarray = np.ndarray

# Where a record's fields are, op or range, plain or extended: OpRecord's layout, a range's tag in the
# phase's place, and an extended record's `extra` inserted before the times (so these count from the end).
NAME = OpRecord._fields.index("name")
TAG = OpRecord._fields.index("phase")
SEQ = OpRecord._fields.index("seq")
EXTRA = SEQ + 1
T0 = OpRecord._fields.index("t0_ns") - len(OpRecord._fields)
T1 = OpRecord._fields.index("t1_ns") - len(OpRecord._fields)

_RANGE_TAGS: dict[str, str] = {}


def range_tag(kind: str) -> str:
    tag = _RANGE_TAGS.get(kind)
    if tag is None:
        tag = _RANGE_TAGS.setdefault(kind, sys.intern("r:" + kind))
    return tag


for _kind in ("module", "backward", "optimizer", "data", "user", "step", "sync", "op"):     # see tensorlib.Hook
    range_tag(_kind)


# A thread's record buffer while the C recorders run: tensorlib._crecorded.Records (a record pushed from C is kept
# without a tuple, so without an allocation that counts toward the cyclic GC's next collection: a profiled step
# triggered about two, each walking the program's young objects; the GC does not walk it either, so `freeze` leaves
# it alone). None: lists (the Python twins; tests of the lists' freezing set it so).
_RECORDS = getattr(_dispatch._crecorded, "Records", None)


# Record blocks (4096 records, 196 KB each) a profile's start touches ahead (Recorder.__init__): 8, the first
# ~32k records, a few ms once per process
PREFAULT_BLOCKS = 8


def _bounded_buffers() -> bool:
    """Whether threads record into C Records buffers, which keep at most max_events records themselves (else
    lists, which the watchdog bounds)."""
    return _RECORDS is not None and crecord is not None


class _ThreadBuffer(threading.local):
    """One list per thread; registered with the recorder on the thread's first record."""

    def __init__(self, recorder):
        self.buf = recorder._new_buffer()


class _Counter:
    """Stands in for a thread's record list once max_events is reached: counts, keeps nothing."""
    __slots__ = ("n",)

    def __init__(self):
        self.n = 0

    def append(self, record):
        self.n += 1


class _Counting:
    """In place of the per-thread buffers after overflow: every thread's `buf` is one counter."""

    def __init__(self):
        self.buf = _Counter()


class _Watchdog:
    """One daemon thread per process, started on first use, that watches the recording recorder's
    lists (a thread per profile() would cost each short profile half a millisecond to start and join)."""

    INTERVAL_S = 0.02

    def __init__(self):
        self.reset()

    def reset(self):
        """A fresh lock and no thread: the state after a fork, in the child."""
        self._cv = threading.Condition()
        self._rec = None
        self._thread = None

    def watch(self, rec):
        with self._cv:
            self._rec = rec
            if self._thread is None or not self._thread.is_alive():      # first use, or after a fork
                self._thread = threading.Thread(target=self._run, name="tensorlib-profiler-watchdog", daemon=True)
                self._thread.start()
            self._cv.notify()

    def unwatch(self, rec):
        """After this returns the watchdog no longer touches `rec` (an overflow in progress completes first)."""
        with self._cv:
            if self._rec is rec:
                self._rec = None
                self._cv.notify()

    def _run(self):
        cv = self._cv
        with cv:
            while True:
                while self._rec is None:
                    cv.wait()
                cv.wait(self.INTERVAL_S)
                rec = self._rec          # (read after the wait, dropped before the next: a stopped profile's
                if rec is None:          # recorder is not kept alive by this frame while the thread waits)
                    continue
                if rec.over_limit():
                    rec._overflow()          # under the lock: unwatch() waits for it
                    self._rec = None
                else:
                    rec.freeze()
                rec = None


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):     # a child starts without the thread, and its lock may be held
    os.register_at_fork(after_in_child=_WATCHDOG.reset)


# Records moved at a time out of a thread's list into an immutable chunk (Recorder.freeze)
CHUNK = 1 << 14


class Recorder:
    """Dispatcher hook recording every op and range while registered (see module docstring)."""

    def __init__(self, *, record_shapes=False, profile_memory=False, with_stack=False, with_flops=False,
                 max_events=10_000_000, memory=None, module_ranges=True):
        self.module_ranges = bool(module_ranges or with_stack)   # (Hook.module_ranges; with_stack's nn.Module events)
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.extended = bool(record_shapes or profile_memory or with_stack or with_flops)
        self.max_events = int(max_events)
        self.dropped = 0
        self.active = False
        self.buffers: list[tuple[int, str, list]] = []   # (native thread id, thread name, newest records)
        self._chunks: dict[int, list[tuple]] = {}         # id(a list in buffers) -> its older records (freeze)
        self._lock = threading.Lock()
        self._tls = _ThreadBuffer(self)
        self.tls = self._tls            # read by the dispatcher's op-record sink on every op
        self._counting = None           # after overflow: what the sink writes to instead (_Counting)
        self.memory = memory                              # memory.MemoryRecorder or None
        self._stack_cache: dict = {}
        self._stacks: dict = {}
        self._codes: list = []
        self._bind()
        # the first PREFAULT_BLOCKS blocks of C records touched now, as the profile starts, not inside the steps it
        # records (a page's first touch costs 2-9 µs on a VM: 85 records' worth; once per process: dead buffers'
        # blocks refill the spares)
        prefault = getattr(_dispatch._crecorded, "prefault", None) if _bounded_buffers() else None
        if prefault is not None:        # (None too for an extension built before it)
            prefault(PREFAULT_BLOCKS)

    # -- buffers -----------------------------------------------------------------------------------
    def _new_buffer(self):
        # the C recorders' own buffer where they run (tensorlib._crecorded.Records: a record pushed from C is kept
        # without a tuple, so without an allocation the cyclic GC counts); a list for the Python twins
        # (a Records buffer keeps at most max_events records itself and counts the rest: see start_watchdog)
        buf: Any = _RECORDS(self.max_events) if _bounded_buffers() else []
        t = threading.current_thread()
        with self._lock:
            self._chunks[id(buf)] = []
            self.buffers.append((threading.get_native_id(), t.name, buf))
        return buf

    def _count(self, buf) -> int:
        """How many records a thread has kept: its frozen chunks' and its list's."""
        return sum(map(len, self._chunks.get(id(buf), ()))) + len(buf)

    def total_records(self) -> int:
        return sum(self._count(b) for _, _, b in list(self.buffers))

    def counts(self) -> list[int]:
        """Records kept so far per thread, in the order of `buffers` (and of peek()'s lists)."""
        with self._lock:
            return [self._count(b) for _, _, b in self.buffers]

    def _records(self, buf, n):
        """A thread's first n records, in order: its frozen chunks, then its list (under the lock)."""
        chunks = self._chunks.get(id(buf))
        if not chunks:
            return buf[:n]
        out = list(itertools.chain(*chunks))
        if n <= len(out):
            del out[n:]
        else:
            out.extend(buf[:n - len(out)])
        return out

    def freeze(self):
        """Move each thread's records, once its list holds CHUNK of them, into a tuple (the watchdog does, every
        interval). The cyclic GC untracks a tuple once its records are (within a collection or two), where every
        full collection walks a list's items: kept in lists, a million records added 22 ms to each full
        collection with default options, their memory records 84 ms more. Moving them takes the GIL for a copy
        of pointers (two per record) every CHUNK records; the recording thread only ever appends, so deleting
        the copied head under the GIL loses nothing. (Memory records are packed bytes: nothing to move.)"""
        with self._lock:
            for _, _, buf in self.buffers:
                n = len(buf)
                if n >= CHUNK and type(buf) is list:       # (a Records buffer is not walked by the GC)
                    self._chunks[id(buf)].append(tuple(buf[:n]))
                    del buf[:n]

    def snapshot(self):
        """(tid, name, records) with each list cut at its current length, and at max_events: records
        appended by a straggling thread after stop() are not read, and those past the limit (written
        before the watchdog noticed it) are counted as dropped, as if recording had stopped there."""
        self.stop_watchdog()
        with self._lock:
            out = []
            for tid, name, buf in self.buffers:
                self.dropped += getattr(buf, "dropped", 0)      # (a Records' own count past its bound)
                n = self._count(buf)
                if n > self.max_events:
                    self.dropped += n - self.max_events
                    n = self.max_events
                out.append((tid, name, self._records(buf, n)))
        if self._counting is not None:
            self.dropped += self._counting.buf.n
            self._counting.buf.n = 0
        return out

    def peek(self):
        """(tid, name, records) as they stand now, cut at max_events, while recording goes on: what
        results read mid-recording. Unlike snapshot() it changes nothing."""
        with self._lock:
            return [(tid, name, self._records(buf, min(self._count(buf), self.max_events)))
                    for tid, name, buf in self.buffers]

    # -- the lists' bound ---------------------------------------------------------------------------
    # A C Records buffer bounds itself: past max_events it counts each record instead of keeping it (one
    # compare per record, in C), and no watchdog runs. Nothing on the Python twins' hot path checks a list's
    # length (a check on every record costs a tenth of the profiler's per-op time); the process's watchdog
    # thread looks every 20 ms instead and, once a thread's list holds max_events records, switches recording
    # to counting (the dispatcher's op sink to a counter, the hook methods to dropping ones). A 20 ms
    # overshoot is a few thousand records, cut off (and counted as dropped) by snapshot(). The watchdog's
    # wake-ups cost the recording thread: while it waits for the GIL, each release of it by the recording
    # thread (NumPy's calls on larger arrays release it) wakes it, ~1 µs per Linear layer's product measured.
    def start_watchdog(self):
        """Bounds the lists while recording runs (see above); a C Records buffer bounds itself."""
        if not _bounded_buffers():
            _WATCHDOG.watch(self)

    def stop_watchdog(self):
        _WATCHDOG.unwatch(self)

    def over_limit(self) -> bool:
        return any(self._count(b) >= self.max_events for _, _, b in list(self.buffers))

    @property
    def uses_sink(self) -> bool:
        """Default options: ops are recorded by the dispatcher (dispatch.set_op_sink), not by op hooks."""
        return not self.extended

    def _overflow(self):
        """A thread's list reached max_events: every later record is counted, not kept."""
        if self.extended:
            self.op_exit = self._drop_op_exit
            if self.op_arrays is not None:
                self.op_arrays = self._drop_op_arrays
                self.op_done = self._drop_op_done
        else:
            self._counting = _Counting()
            self.tls = self._counting       # the dispatcher's op sink now counts instead of keeping
        self.range_exit = self._drop_range_exit
        self._c_range = None
        self.op_steps_at = self.op_region = None      # (op_region: the generic path, range_exit's)
        if self.op_step is not None:
            self.op_step = self._drop_op_step
        from tensorlib import dispatch
        dispatch.refresh_hooks()      # the dispatcher binds hook methods (and the sink's tls) once

    def _drop_op_exit(self, token, outputs):
        self.dropped += 1

    def _drop_op_arrays(self, op, arrays, attrs, phase, seq):
        self.dropped += 1
        return op.kernel(np, *arrays, **attrs)

    def _drop_op_done(self, op, arrays, attrs, phase, seq, out, t0, t1):
        self.dropped += 1

    def _drop_range_exit(self, token):
        if self.active:
            self.dropped += 1

    def _drop_op_step(self, name, fn, *args):
        try:
            return fn(*args)
        finally:
            self._drop_range_exit(None)

    # -- the hook methods ---------------------------------------------------------------------------
    # Records are appended after stop() too by a range that was open then (its exit comes later): they
    # land in lists that snapshot() has already cut, which costs less than testing `active` on every exit.
    def _bind(self):
        pc = time.perf_counter_ns
        tls = self._tls
        tags = _RANGE_TAGS
        rtag = range_tag
        op_tag = range_tag("op")
        op_arrays = op_done = None

        def range_exit(token):      # every record is its enter token and the exit time
            t1 = pc()
            tls.buf.append((*token, t1))

        if not self.extended:
            # ops: the dispatcher writes (name, phase, seq, t0, t1) itself (dispatch.set_op_sink), which
            # costs half of an op_enter/op_exit pair; only ranges come through the hook methods
            def range_enter(name, kind):
                return (name, tags.get(kind) or rtag(kind), -1, pc())

            def op_range_enter(name, args):     # a composite op's region: range_enter(name, "op"), one call
                return (name, op_tag, -1, pc())
            self.op_range_enter = op_range_enter

            def op_step(name, fn, *args):
                t0 = pc()
                try:
                    return fn(*args)
                finally:
                    t1 = pc()
                    tls.buf.append((name, op_tag, -1, t0, t1))
        else:
            shapes = self.record_shapes or self.with_flops
            flops_on = self.with_flops
            stack = self.with_stack
            mem = self.memory if self.profile_memory else None
            stack_of = self._stack

            if mem is not None:
                record_outputs = mem.record_outputs
                record_arrays = mem.record_arrays
            ids = _EXTRA_IDS.get

            # The token carries the op's inputs (the dispatcher's own tuple) for the memory record's "not an
            # input's memory" test at exit. With record_shapes the token holds the op's extra id already:
            # `shapes_id` finds it from a flat key of the inputs' shapes and dtypes (one dict lookup per op);
            # the signature itself (`_raw_inputs`) is built once per distinct key and formatted once per
            # distinct extra at build time (`format_extras`). The record holds its extra's id (`extra_id`),
            # not the extra: a record of atoms only, which the cyclic GC untracks at once.
            if shapes and not stack and not flops_on:
                def op_enter(op, inputs, attrs, phase, seq):
                    return (op.name, phase, seq, shapes_id(inputs), pc(), inputs)
            elif not shapes and not stack:
                def op_enter(op, inputs, attrs, phase, seq):
                    return (op.name, phase, seq, 0, pc(), inputs)
            else:
                def op_enter(op, inputs, attrs, phase, seq):
                    return (op.name, phase, seq, _raw_inputs(inputs) if shapes else None, stack_of() if stack else None,
                            inputs, pc())

            if flops_on:
                def op_exit(token, outputs):
                    flops = _flops(token[0], _format_sig(token[3]), outputs)
                    t1 = pc()
                    if mem is not None:     # stamped a nanosecond before the op's end: one clock read less
                        record_outputs(outputs, token[5], t1 - 1)
                    ex = (token[3], token[4], flops)
                    eid = ids(ex)
                    tls.buf.append((token[0], token[1], token[2], extra_id(ex) if eid is None else eid, token[6], t1))
            elif stack:
                def op_exit(token, outputs):
                    t1 = pc()
                    if mem is not None:
                        record_outputs(outputs, token[5], t1 - 1)
                    ex = (token[3], token[4], 0)
                    eid = ids(ex)
                    tls.buf.append((token[0], token[1], token[2], extra_id(ex) if eid is None else eid, token[6], t1))
            elif mem is not None:       # the token is the record's first five fields and the op's inputs
                def op_exit(token, outputs):
                    t1 = pc()
                    inputs = token[5]
                    if not inputs or outputs is not inputs[0]:     # an in-place op's output: no new memory
                        record_outputs(outputs, inputs, t1 - 1)     # stamped a nanosecond before the op's end
                    tls.buf.append((token[0], token[1], token[2], token[3], token[4], t1))
            else:
                def op_exit(token, outputs):
                    t1 = pc()
                    tls.buf.append((token[0], token[1], token[2], token[3], token[4], t1))

            if not flops_on:
                # the engine's sink formulas (a backward formula's ops run as kernels on NumPy arrays, no tensors
                # made for them: tensorlib.Hook.op_arrays): the record op_enter/op_exit would write of the
                # dispatched op, its Input Shapes (and with_stack its stack: the dispatched formula's, whose user
                # frames are the backward() call's; the engine's are internal) and its outputs' memory from the
                # arrays it would have had
                if stack:
                    def arrays_eid(arrays):
                        ex = (_raw_inputs(arrays, _ARRAY_TYPES, _same) if shapes else None, stack_of(), 0)
                        eid = ids(ex)
                        return extra_id(ex) if eid is None else eid
                else:
                    arrays_eid = arrays_shapes_id if shapes else None

                def op_arrays(op, arrays, attrs, phase, seq):
                    eid = arrays_eid(arrays) if arrays_eid is not None else 0
                    t0 = pc()
                    try:
                        out = op.kernel(np, *arrays, **attrs)
                    except BaseException:
                        tls.buf.append((op.name, phase, seq, eid, t0, pc()))
                        raise
                    t1 = pc()
                    if mem is not None:
                        if type(out) is not ndarray:
                            out = _as_arrays(out)       # a NumPy scalar: the 0-d array its tensor will hold
                        record_arrays(out, arrays, t1 - 1)
                    tls.buf.append((op.name, phase, seq, eid, t0, t1))
                    return out

                def op_done(op, arrays, attrs, phase, seq, out, t0, t1):
                    # op_arrays' record of an op that ran elsewhere (a C loop that timed it: dispatch.record_ran),
                    # `out` returned as op_arrays returns it
                    eid = arrays_eid(arrays) if arrays_eid is not None else 0
                    if mem is not None and out is not None:
                        if type(out) is not ndarray:
                            out = _as_arrays(out)       # a NumPy scalar: the 0-d array its tensor will hold
                        record_arrays(out, arrays, t1 - 1)
                    tls.buf.append((op.name, phase, seq, eid, t0, t1))
                    return out

            if stack:
                from tensorlib.nn.modules.module import module_stack

                def range_enter(name, kind):
                    ex = (None, stack_of(), 0)
                    if kind == "module":        # the nn.Module itself, for torch's python_function events
                        fr = module_stack()
                        if fr and fr[-1][1] is name:
                            m = fr[-1][0]
                            ex = (*ex, (type(m).__name__, id(m)))
                    eid = ids(ex)
                    return (name, rtag(kind), -1, extra_id(ex) if eid is None else eid, pc())
                op_step = None      # a step's stack is its range's: the generic path (range_enter above)
            else:
                def range_enter(name, kind):
                    return (name, tags.get(kind) or rtag(kind), -1, 0, pc())

                def op_step(name, fn, *args):
                    t0 = pc()
                    try:
                        return fn(*args)
                    finally:
                        t1 = pc()
                        tls.buf.append((name, op_tag, -1, 0, t0, t1))

            if shapes:
                def op_range_enter(name, args):     # a composite op (aten::conv2d...): its Input Shapes too
                    eid = extra_id((_raw_inputs(args), stack_of(), 0)) if stack else shapes_id(args)
                    return (name, op_tag, -1, eid, pc())
                self.op_range_enter = op_range_enter

            self.op_enter = op_enter
            self.op_exit = op_exit
        self.native = None
        op_region = None        # (C only: see below)
        if crecord is not None and not self.with_flops:
            # the same methods in C (profiler/_crecord.c): the same records, less per op
            mem = self.memory if self.profile_memory else None
            native = self.native = crecord.OpHooks(
                tls, _SHAPES_IDS, shapes_id, arrays_shapes_id, _as_arrays, tags, range_tag, op_tag,
                mem._native if mem is not None else None, self.extended, bool(self.record_shapes),
                self._stack if self.with_stack else None, _raw_inputs, _EXTRA_IDS, extra_id, _raw_arrays)
            if self.with_stack:
                # a module's range carries its module (range_enter above), and op_step is off with stacks. The C
                # op_enter calls _stack from no frame of its own, one frame nearer the dispatcher's caller than
                # the Python op_enter does: the frame left out is the dispatcher's, which the stacks leave out
                # anyway (_internal); op_arrays's is a sink formula's, likewise
                self.op_enter = native.op_enter
                self.op_exit = native.op_exit
                op_arrays, op_done = native.op_arrays, native.op_done
                py_range_enter, c_range_enter = range_enter, native.range_enter

                def range_enter(name, kind):     # a module's range names its module: the Python method's
                    return py_range_enter(name, kind) if kind == "module" else c_range_enter(name, kind)
                if self.record_shapes:
                    self.op_range_enter = native.op_range_enter
            else:
                range_enter, range_exit, op_step = native.range_enter, native.range_exit, native.op_step
                op_region = getattr(native, "op_region", None)      # (None for an extension built before it)
                self.op_range_enter = native.op_range_enter
                if self.extended:
                    self.op_enter = native.op_enter
                    self.op_exit = native.op_exit
                    op_arrays, op_done = native.op_arrays, native.op_done
        self.range_enter = range_enter
        self.range_exit = range_exit
        # the registry calls it for kernel steps (tensorlib._hooks.op_step) while this is the only region hook
        self.op_step = op_step
        # and this for composite ops' regions (tensorlib._hooks.op_region), where op_step is C's
        self.op_region = op_region
        # the C engine's node regions recorded in one C call (tensorlib.Hook.c_range), where the C methods are the
        # ones bound above: None with stacks (range_enter reads one) or without C record buffers
        c_range = getattr(self.native, "c_range", None)     # (None too for an extension built before it)
        self._c_range = c_range if c_range is not None and not self.with_stack else None
        # records of op_step's kind for steps a C loop timed (tensorlib.Hook.op_steps_at), where op_step is C's
        self.op_steps_at = getattr(self.native, "op_steps_at", None) if self._c_range is not None else None
        self.op_arrays = op_arrays      # for the engine's sink formulas while this is the only op hook
        self.op_done = op_done          # (with op_arrays: ops a C loop ran, recorded as op_arrays records)

    @property
    def c_range(self):
        """tensorlib.Hook.c_range: a new capsule per read (the registry reads it once per refresh of its hooks and
        holds it while this is registered). The capsule holds the C methods' object, an edge the cyclic GC does not
        see: kept on this recorder, the cycle recorder -> its threading.local -> the C methods -> recorder was never
        collected, nor the records it holds."""
        make = self._c_range
        return make() if make is not None else None

    # -- with_stack ---------------------------------------------------------------------------------
    def _stack(self):
        """The user's Python frames (outside tensorlib and profiler), outermost first, interned so a
        loop body's thousands of ops share one tuple."""
        if crecord is not None:     # the key in C (the same ids and lines): a dict hit for a stack seen before
            st = self._stacks.get(crecord.frames_key(2))
            if st is not None:
                return st
        f = sys._getframe(2)
        key = []
        codes = []
        while f is not None:
            key.append(id(f.f_code))      # ids: hashing code objects themselves is slow
            key.append(f.f_lineno)
            codes.append(f.f_code)
            f = f.f_back
        key = tuple(key)
        st = self._stacks.get(key)
        if st is None:
            self._codes.extend(codes)     # keep the code objects alive, so their ids stay theirs
            frames = []
            for code, line in zip(reversed(codes), reversed(key[1::2])):
                fn = code.co_filename
                if _internal(fn):
                    continue
                frame = f"{fn}({line}): {code.co_name}"
                frames.append(frame)
                FUNCTION_OF_FRAME.setdefault(frame, f"{fn}({code.co_firstlineno}): {code.co_name}")
            st = self._stacks.setdefault(key, tuple(frames))
        return st


_INTERNAL_DIRS: tuple = ()


# A stack frame as with_stack records it, "file(current line): function", -> the function as torch's
# python_function events name it, "file(first line): function"; filled as stacks are first seen (one
# entry per distinct frame in the program, kept for the process: the mapping never changes)
FUNCTION_OF_FRAME: dict[str, str] = {}

_RANGE_EXTRA = (None, None, 0)        # a range's (shapes_dtypes, stack, flops) without with_stack

# Every distinct extra an extended record has had, and its id (its index in EXTRAS): records hold the id.
# Kept for the process, as FUNCTION_OF_FRAME (one entry per distinct signature, stack and FLOPs count
# profiled), so that the records of every recorder, snapshot and nested profile read alike. Id 0 is a
# range's extra, which is also an op's without record_shapes and with_stack.
EXTRAS: list = [_RANGE_EXTRA]
_EXTRA_IDS: dict = {_RANGE_EXTRA: 0}
_EXTRAS_LOCK = threading.Lock()


def extra_id(ex) -> int:
    """The id of extra `ex` (shapes signature, stack, flops[, module]), a new one the first time."""
    eid = _EXTRA_IDS.get(ex)
    if eid is None:
        with _EXTRAS_LOCK:          # threads: one id per extra, and EXTRAS[id] written before the id is seen
            eid = _EXTRA_IDS.get(ex)
            if eid is None:
                eid = len(EXTRAS)
                EXTRAS.append(ex)
                _EXTRA_IDS[ex] = eid
    return eid


# A flat key of an op's inputs (per tensor its array's shape and dtype, per other argument its type) -> the
# id of the extra (its `_raw_inputs` signature, no stack, no FLOPs): the signature is built once per
# distinct key. A list or tuple argument (a tensor list's shapes) takes the full signature as its key.
_SHAPES_IDS: dict = {}


def shapes_id(inputs) -> int:
    """The extra id of an op's inputs' signature without stack or FLOPs (record_shapes' per-op work). The key
    grows by tuple concatenation (cheaper than a list made into a tuple for an op's one to three inputs), and
    a plain Tensor or Parameter is known by its type alone (`_IS_TENSOR` answers for other types)."""
    key: tuple = ()
    for a in inputs:
        t = type(a)
        if t is Tensor or t is Parameter or _IS_TENSOR[t]:
            d = array_of(a)
            key += (d.shape, d.dtype)
        elif _IS_SEQUENCE[t] and a and isinstance(a[0], Tensor):
            return extra_id((_raw_inputs(inputs), None, 0))     # a tensor list: its signature (shapes) is the key
        else:
            key += (t,)     # another argument (an int list: view's, sum's dims) is its type in the signature
    eid = _SHAPES_IDS.get(key)
    if eid is None:
        eid = _SHAPES_IDS.setdefault(key, extra_id((_raw_inputs(inputs), None, 0)))
    return eid


def arrays_shapes_id(arrays) -> int:
    """shapes_id of the op an `op_arrays` call stands for, from the arrays its tensors would hold (the same key
    and signature as theirs: (shape, dtype) per array; a list of arrays is a tensor list)."""
    key: tuple = ()
    for a in arrays:
        t = type(a)
        if t is ndarray or _IS_NP_SCALAR[t]:      # a NumPy scalar: a formula's 0-d array, its tensor's
            key += (a.shape, a.dtype)
        elif _IS_SEQUENCE[t] and a and isinstance(a[0], _ARRAY_TYPES):
            return extra_id((_raw_inputs(arrays, _ARRAY_TYPES, _same), None, 0))   # a list of arrays: a tensor list
        else:
            key += (t,)
    eid = _SHAPES_IDS.get(key)
    if eid is None:
        eid = _SHAPES_IDS.setdefault(key, extra_id((_raw_inputs(arrays, _ARRAY_TYPES, _same), None, 0)))
    return eid


def _same(a):
    return a


def _raw_arrays(arrays):
    """_raw_inputs of an op_arrays call's arrays (a list of arrays: a tensor list)."""
    return _raw_inputs(arrays, _ARRAY_TYPES, _same)


def _as_arrays(out):
    """A kernel's result with its NumPy scalars made 0-d arrays, as the dispatcher's tensors hold them."""
    if isinstance(out, np.generic):
        return np.asarray(out)
    if type(out) is tuple:
        return tuple([np.asarray(o) if isinstance(o, np.generic) else o for o in out])
    return out


class _IsSubclass(dict):
    """type -> whether it is a subclass of `base`, answered once per type (a dict hit where isinstance walks
    the MRO)."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __missing__(self, t):
        v = self[t] = issubclass(t, self.base)
        return v


_IS_TENSOR = _IsSubclass(Tensor)
_IS_SEQUENCE = _IsSubclass((list, tuple))
_IS_NP_SCALAR = _IsSubclass(np.generic)
_ARRAY_TYPES = (ndarray, np.generic)     # what stands for a tensor among op_arrays' arguments


def _extras_lock_after_fork():
    global _EXTRAS_LOCK
    _EXTRAS_LOCK = threading.Lock()     # another thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_extras_lock_after_fork)


def _internal(filename: str) -> bool:
    global _INTERNAL_DIRS
    if not _INTERNAL_DIRS:
        import os
        import tensorlib
        import profiler
        _INTERNAL_DIRS = (os.path.dirname(tensorlib.__file__) + os.sep, os.path.dirname(profiler.__file__) + os.sep,
                          os.path.dirname(threading.__file__) + os.sep + "threading.py",
                          os.path.dirname(threading.__file__) + os.sep + "contextlib.py")
    return filename.startswith(_INTERNAL_DIRS) or filename.startswith("<frozen")


def _raw_inputs(inputs, tensor=Tensor, data=array_of):
    """What record_shapes needs of an op's inputs, cheap while the program runs: per input a (shape, dtype
    name) pair for a tensor, ("TensorList", shapes) for a tensor list, the type's name as torch writes it
    ("Scalar", ...) otherwise; `_format_sig` turns it into torch's "Input Dims" / "Input type". (`tensor`,
    `data`: what a tensor is and its array; (_ARRAY_TYPES, _same) for the arrays of `op_arrays`.) Only tuples,
    ints and strings: the cyclic GC untracks such a record the first time it sees it, where a dtype or a
    class (GC objects, even if untracked themselves) would keep the record tracked, and walked by every
    full collection, for the life of the profile."""
    sig = []
    for a in inputs:
        if isinstance(a, tensor):
            d = data(a)
            dt = d.dtype
            sig.append((d.shape, _DTYPE_NAMES.get(dt) or _dtype_name(dt)))
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], tensor):
            sig.append(("TensorList", tuple([data(x).shape for x in a if isinstance(x, tensor)])))
        else:
            t = type(a)
            sig.append(_TYPE_NAMES.get(t) or _type_name(t))
    return tuple(sig)


_SCALARS = (int, float, bool, complex)
_TYPE_NAMES: dict[type, str] = {}


def _type_name(t: type) -> str:
    """torch's "Input type" of a non-tensor argument: "Scalar" for a number, the class's name otherwise."""
    return _TYPE_NAMES.setdefault(t, "Scalar" if issubclass(t, _SCALARS) else t.__name__)


def _format_sig(sig):
    """torch's "Input Dims" / "Input type" from `_raw_inputs`'s signature: a shape list per tensor input,
    [] for a scalar; a tensor list (cat, stack) is a list of shapes. None stays None."""
    if sig is None:
        return None
    shapes = []
    dtypes = []
    for it in sig:
        if type(it) is tuple:
            if it[0] == "TensorList":
                shapes.append([list(s) for s in it[1]])
                dtypes.append("TensorList")
            else:
                shapes.append(list(it[0]))
                dtypes.append(it[1])
        else:
            shapes.append([])
            dtypes.append(it)
    return shapes, dtypes


def _shapes_dtypes(inputs):
    """torch's "Input Dims" / "Input type" of `inputs` (formatted at once; the recorder formats lazily)."""
    return _format_sig(_raw_inputs(inputs))


def format_extras(ids) -> tuple[list, np.ndarray]:
    """(the distinct extras of records with ids `ids` (an int array), the index of each record's among
    them), each raw shape signature formatted once per distinct signature; `events.build` gives the events
    with one extra one shared tuple (and a signature's (shapes, dtypes) lists), which lets the exports
    work per distinct extra (`events.extra_table`)."""
    ids = np.asarray(ids, np.int64)
    if not len(ids):
        return [], np.zeros(0, np.int64)
    first = np.full(int(ids.max()) + 1, len(ids), np.int64)      # ids index EXTRAS: no sorting of events
    np.minimum.at(first, ids, np.arange(len(ids)))
    used = np.flatnonzero(first < len(ids))
    used = used[np.argsort(first[used], kind="stable")]     # in order of first use, as the events have them
    index = np.empty(len(first), np.int64)
    index[used] = np.arange(len(used))
    formatted: dict = {}
    table = []
    for k in used.tolist():
        ex = EXTRAS[k]
        sig = ex[0]
        if sig is not None:
            f = formatted.get(sig)
            if f is None:
                f = formatted[sig] = _format_sig(sig)
            ex = (f, *ex[1:])
        table.append(ex)
    return table, index[ids]


_DTYPE_NAMES = {np.dtype("float32"): "float", np.dtype("float64"): "double", np.dtype("float16"): "c10::Half",
                np.dtype("int64"): "long int", np.dtype("int32"): "int", np.dtype("bool"): "bool",
                np.dtype("int8"): "signed char", np.dtype("uint8"): "unsigned char", np.dtype("int16"): "short int",
                np.dtype("complex64"): "c10::complex<float>", np.dtype("complex128"): "c10::complex<double>"}


def _dtype_name(dt) -> str:
    """torch's C++ type names in traces (float, long int, ...), so trace tools read ours alike."""
    name = _DTYPE_NAMES.get(dt)
    return name if name is not None else _DTYPE_NAMES.setdefault(dt, str(dt))


_MATMUL_OPS = frozenset({"matmul", "mm", "bmm", "dot", "outer", "linear", "addmm"})
_CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "convolution"})
_ELEMENTWISE_OPS = frozenset({"mul", "add"})      # torch counts one FLOP per element of the first input


def _flops(name, shapes_dtypes, outputs) -> int:
    """FLOPs as torch's profiler estimates them (torch/csrc/profiler/util.cpp computeFlops): 2 per
    multiply-add for the matrix products (tensorlib's linear and matmul are single ops, so they carry
    what torch puts on the mm/addmm they decompose into) and convolutions, and one per element of the
    first input for mul and add."""
    if shapes_dtypes is None or not (name in _MATMUL_OPS or name in _CONV_OPS or name in _ELEMENTWISE_OPS):
        return 0
    shapes = shapes_dtypes[0]
    try:
        if name in _ELEMENTWISE_OPS:
            first = shapes[0]
            return int(np.prod(first, dtype=np.int64)) if isinstance(first, list) and first else 0
        out = array_of(outputs).shape if isinstance(outputs, Tensor) else None
        if out is None:
            return 0
        if name in _MATMUL_OPS:
            # the reduced dimension: the first matrix's last one (addmm's first input is the bias)
            a = shapes[1] if name == "addmm" else shapes[0]
            k = a[-1] if len(a) else 1
            return 2 * int(np.prod(out, dtype=np.int64)) * int(k)
        w = shapes[1]                   # conv: weight [out_c, in_c / groups, *kernel]
        return 2 * int(np.prod(out, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
    except (IndexError, TypeError, AttributeError):
        return 0
