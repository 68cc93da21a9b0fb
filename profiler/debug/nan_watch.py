"""nan_watch: find the first op whose output holds NaN or Inf, forward or backward.

On the CPU each float output is checked as the op returns. On CUDA a check would synchronise, so each
float output is reduced on the device, right after its op, to one 0-d code (0 finite, 1 Inf, 2 or 3
NaN), and only the codes and what the report needs (op, phase, backward node, input and output shapes,
the user's source line) are queued: no output or input array is kept alive by the watch. The codes are
fetched in batches (one synchronisation per `batch` outputs) and the first offending op, in execution
order, is reported. For a NaN made in backward, the report also names the forward op behind the
autograd node and the user's line that ran it, as torch's detect_anomaly does: while the watch is on,
each forward op's file and line are remembered by sequence number (the backward ops carry the
forward's).
"""
from __future__ import annotations

import linecache
import sys
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from safeio import literal

from tensorlib import Tensor
from tensorlib import dispatch as D
from tensorlib.dispatch import array_of

from ._hookctx import HookContext
from ._source import INTERNAL_DIRS, format_location, user_location


class NanInfError(RuntimeError):
    """Raised by nan_watch(mode="raise") at the first op that produced NaN/Inf."""

    def __init__(self, finding):
        super().__init__(finding.message())
        self.finding = finding


@dataclass
class Finding:
    op: str
    phase: str
    seq: int
    node: str | None
    output: int
    what: str
    input_shapes: list
    output_shape: tuple
    location: tuple
    forward_op: str | None = None         # backward findings: the forward op that made the node...
    forward_location: tuple | None = None  # ...and the user's line it ran from (as detect_anomaly shows)

    def message(self) -> str:
        where = f"backward of {self.node}" if self.phase == "backward" and self.node else self.phase
        text = (f"nan_watch: op '{self.op}' ({where}, seq {self.seq}) produced {self.what} in output {self.output} "
                f"of shape {self.output_shape}; input shapes {self.input_shapes}; at {format_location(self.location)}")
        if self.phase == "backward":
            if self.forward_location is not None:
                text += (f"; the node's forward op '{self.forward_op}' (seq {self.seq}) ran at "
                         f"{format_location(self.forward_location)}")
            else:
                text += "; its forward op ran before nan_watch started (run the forward inside it to see its line)"
        return literal(text)


def _shapes(inputs):
    out = []
    for a in inputs:
        if isinstance(a, Tensor):
            out.append(tuple(a.shape))
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor):
            out.append([tuple(t.shape) for t in a])
        else:
            out.append(type(a).__name__ if not isinstance(a, (int, float, bool)) else a)
    return out


def _what(code) -> str:
    """The name of a code from `_device_code` (NaN wins: a NaN is the harder bug to trace)."""
    return "NaN" if code >= 2 else "Inf"


def _device_code(d):
    """A 0-d device array: 2 * (any NaN) + (any Inf), computed on the GPU without synchronising."""
    import cupy
    return cupy.isnan(d).any() * 2 + cupy.isinf(d).any()


class NanWatch(D.Hook):
    def __init__(self, mode="raise", batch=64):
        if mode not in ("raise", "warn"):
            raise ValueError(f"nan_watch mode must be 'raise' or 'warn', got {mode!r}")
        self.mode = mode
        self.batch = batch
        self.findings: list[Finding] = []
        self._pending = []          # CUDA: (0-d code on device, op metadata, output index, shape, location)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._forward: dict = {}
        self._internal_code: dict = {}

    def _nodes(self):
        st = getattr(self._local, "nodes", None)
        if st is None:
            st = self._local.nodes = []
        return st

    def range_enter(self, name, kind):
        if kind == "backward":
            self._nodes().append(name)
            return True
        return None

    def range_exit(self, token):
        if token:
            self._nodes().pop()

    # forward ops remembered for backward findings: seq -> (op name, user file, line); the oldest dropped
    FORWARD_MEMORY = 100_000

    def op_enter(self, op, inputs, attrs, phase, seq):
        if phase == "forward" and seq >= 0:
            # the user's frame, cheaply (file and line; the source text is read only for a report), so a
            # NaN in the backward of this op can name the line that ran it
            fwd = self._forward
            fwd[seq] = (op.name, *self._user_line())
            if len(fwd) > self.FORWARD_MEMORY:
                del fwd[next(iter(fwd))]
        return op.name, inputs, phase, seq

    def _user_line(self):
        """(file, line) of the innermost user frame, with the internal/user verdict cached per code
        object: a fraction of user_frame's cost, paid on every forward op while the watch is on."""
        f = sys._getframe(2)
        internal = self._internal_code
        while f is not None:
            c = f.f_code
            inside = internal.get(c)
            if inside is None:
                inside = internal[c] = c.co_filename.startswith(INTERNAL_DIRS)
            if not inside:
                return c.co_filename, f.f_lineno
            f = f.f_back
        return "<unknown>", 0

    def _meta(self, token):
        """What a report needs from an op, without its arrays: (name, phase, seq, node, input shapes)."""
        name, inputs, phase, seq = token
        nodes = self._nodes()
        return name, phase, seq, nodes[-1] if nodes else None, _shapes(inputs)

    def op_exit(self, token, outputs):
        if outputs is None:
            return
        outs = outputs if isinstance(outputs, tuple) else (outputs,)
        meta = None
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                continue
            d = array_of(o)
            if d.dtype.kind != "f":
                continue
            if meta is None:
                meta = self._meta(token)
            if type(d) is np.ndarray:
                if not np.isfinite(d).all():
                    self._found(meta, i, 2 if np.isnan(d).any() else 1, tuple(d.shape), user_location(3))
                continue
            entry = (_device_code(d), meta, i, tuple(d.shape), user_location(3))
            with self._lock:
                self._pending.append(entry)
                full = len(self._pending) >= self.batch
            if full:
                self.resolve()

    def _found(self, meta, i, code, shape, loc):
        name, phase, seq, node, input_shapes = meta
        fwd = self._forward.get(seq) if phase == "backward" else None
        fwd_loc = (fwd[1], fwd[2], linecache.getline(fwd[1], fwd[2]).strip()) if fwd is not None else None
        f = Finding(name, phase, seq, node, i, _what(code), input_shapes, shape, loc,
                    fwd[0] if fwd is not None else None, fwd_loc)
        first = not self.findings
        self.findings.append(f)
        if not first:
            return          # later ones follow from the first
        if self.mode == "raise":
            raise NanInfError(f)
        warnings.warn(f.message(), RuntimeWarning, stacklevel=4)

    def resolve(self):
        """Fetch the queued device codes (one synchronisation) and report the first offender in order."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        import cupy
        codes = cupy.stack([p[0] for p in pending]).get()
        for (_, meta, i, shape, loc), code in zip(pending, codes):
            if code:
                self._found(meta, i, int(code), shape, loc)


class nan_watch(HookContext):
    """Context manager: `with nan_watch(): train_step()`; `.findings` lists what was seen."""

    def __init__(self, mode="raise", batch=64):
        self.hook = NanWatch(mode, batch)

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is None:
            self.hook.resolve()          # the CUDA checks still queued
        return False
