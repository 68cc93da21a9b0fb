"""device_watch: an op that runs on the CPU inside the forward of a module whose parameters live on CUDA —
"tensors stuck on the CPU" (a `zeros(n)` without `device=` in forward, a CPU constant, a forgotten `.to()`).
Warned once per call site, with the module's name and the user's line."""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from safeio import literal

from tensorlib import Tensor
from tensorlib import dispatch as D
from tensorlib.dispatch import array_of

from ._hookctx import HookContext
from ._source import format_location, user_location


@dataclass
class DeviceFinding:
    op: str
    module: str
    location: tuple

    def message(self):
        return literal(f"device_watch: op '{self.op}' ran on the CPU inside {self.module}, "
                       f"whose parameters are on CUDA; at {format_location(self.location)} "
                       "(create tensors with device=..., or move them with .to())")


def _module_frames():
    from tensorlib.nn.modules.module import module_stack
    return module_stack()


class DeviceWatch(D.Hook):
    def __init__(self):
        self.findings: list[DeviceFinding] = []
        self._sites = set()
        self._on_cuda: dict = {}
        self._lock = threading.Lock()

    def range_enter(self, name, kind):   # makes nn.Module name its forwards (the module call stack)
        return None

    def _module_on_cuda(self, module):
        key = id(module)
        v = self._on_cuda.get(key)
        if v is None:
            v = any(not p.is_cpu for p in module.parameters())
            self._on_cuda[key] = v
        return v

    def op_enter(self, op, inputs, attrs, phase, seq):
        return op.name if phase == "forward" else None

    def op_exit(self, name, outputs):
        if name is None or outputs is None:
            return
        frames = _module_frames()
        if not frames:
            return
        module, qual = frames[-1]
        outs = outputs if isinstance(outputs, tuple) else (outputs,)
        if not any(isinstance(o, Tensor) and type(array_of(o)) is np.ndarray for o in outs):
            return
        if not self._module_on_cuda(module):
            return
        loc = user_location(3)
        with self._lock:
            if loc[:2] in self._sites:
                return
            self._sites.add(loc[:2])
            f = DeviceFinding(name, qual, loc)
            self.findings.append(f)
        warnings.warn(f.message(), RuntimeWarning, stacklevel=4)


class device_watch(HookContext):
    def __init__(self):
        self.hook = DeviceWatch()
