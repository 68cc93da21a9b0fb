"""nan_watch: find the first op whose output holds NaN or Inf, forward or backward.

On the CPU each float output is checked as the op returns. On CUDA a check would synchronise, so each
output's "all finite" flag is computed on the device and queued; flags are fetched in batches (one
synchronisation per `batch` ops) and the first offending op, in execution order, is reported with what
was captured when it ran: op, phase, backward node, input shapes, the user's source line.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from safeio import literal

from tensorlib import Tensor
from tensorlib import dispatch as D

from ._hookctx import HookContext
from ._source import format_location, user_location


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

    def message(self) -> str:
        where = f"backward of {self.node}" if self.phase == "backward" and self.node else self.phase
        return literal(f"nan_watch: op '{self.op}' ({where}, seq {self.seq}) produced {self.what} in output {self.output} "
                f"of shape {self.output_shape}; input shapes {self.input_shapes}; at {format_location(self.location)}")


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


def _what(d) -> str:
    xp = np if type(d) is np.ndarray else d.__array_namespace__() if hasattr(d, "__array_namespace__") else np
    has_nan = bool(xp.isnan(d).any())
    return "NaN" if has_nan else "Inf"


class NanWatch(D.Hook):
    def __init__(self, mode="raise", batch=64):
        if mode not in ("raise", "warn"):
            raise ValueError(f"nan_watch mode must be 'raise' or 'warn', got {mode!r}")
        self.mode = mode
        self.batch = batch
        self.findings: list[Finding] = []
        self._pending = []          # CUDA: (flag on device, Finding-without-what, array)
        self._local = threading.local()
        self._lock = threading.Lock()

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

    def op_enter(self, op, inputs, attrs, phase, seq):
        return op.name, inputs, phase, seq

    def op_exit(self, token, outputs):
        if outputs is None:
            return
        outs = outputs if isinstance(outputs, tuple) else (outputs,)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                continue
            d = o._data
            if d.dtype.kind != "f":
                continue
            if type(d) is np.ndarray:
                if not np.isfinite(d).all():
                    self._found(token, i, d, user_location(3))
            else:
                flag = ~d.__array_namespace__().isfinite(d).all() if hasattr(d, "__array_namespace__") else None
                if flag is None:
                    import cupy
                    flag = ~cupy.isfinite(d).all()
                with self._lock:
                    self._pending.append((flag, token, i, d, user_location(3)))
                    full = len(self._pending) >= self.batch
                if full:
                    self.resolve()

    def _found(self, token, i, d, loc):
        name, inputs, phase, seq = token
        nodes = self._nodes()
        f = Finding(name, phase, seq, nodes[-1] if nodes else None, i, _what(d), _shapes(inputs), tuple(d.shape), loc)
        first = not self.findings
        self.findings.append(f)
        if not first:
            return          # later ones follow from the first
        if self.mode == "raise":
            raise NanInfError(f)
        warnings.warn(f.message(), RuntimeWarning, stacklevel=4)

    def resolve(self):
        """Fetch queued device flags (one synchronisation) and report the first offender in order."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        import cupy
        flags = cupy.stack([p[0] for p in pending]).get()
        for (flag, token, i, d, loc), bad in zip(pending, flags):
            if bad:
                self._found(token, i, d, loc)


class nan_watch(HookContext):
    """Context manager: `with nan_watch(): train_step()`; `.findings` lists what was seen."""

    def __init__(self, mode="raise", batch=64):
        self.hook = NanWatch(mode, batch)

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is None:
            self.hook.resolve()          # the CUDA checks still queued
        return False
