"""The C parts of the hot paths, and whether they are used.

Six optional extension modules, built by `pip install` on Linux from C files beside their Python twins
(setup.py; without a C compiler the package installs without them):
  tensorlib._cstate             STATE's phase and seq per thread (_state.py: their C twin, which the engine and
                                the recorded paths read and write without a dict; both require it)
  tensorlib._crecorded          the dispatcher's recorded paths (dispatch.py: an op under a profiler's op sink or
                                its one op hook, an op run on arrays by run_recorded)
  tensorlib._cexecute           the executor's common case (_execute.py: an unobserved op on NumPy arrays)
  tensorlib.autograd._cengine   the backward engine's loop (autograd/engine.py: a backward() pass)
  tensorlib._cmath              one-pass loops where NumPy takes several passes or a scalar loop (ops/_fastmath.py:
                                float32 exp/tanh on AVX2, addcmul_, threshold_backward, layer_norm, an LSTM step,
                                a strided copy for im2col)
  profiler._crecord             the profiler recorder's hook methods and its CPU memory records (profiler/_native.py)
Each does what its Python twin does, step for step, at a lower cost per op; the Python code stays the
reference and is used when the module is absent, when TENSORLIB_NATIVE=0 is set in the environment, or (for the
two that keep records) when the module's clock is not time.perf_counter_ns's (CLOCK_MONOTONIC on Linux; checked
once here)."""
from __future__ import annotations

import importlib
import os
import time
from types import ModuleType

__all__ = ["load", "status"]

_STATUS: dict[str, str] = {}


_LOADED: dict[str, ModuleType | None] = {}


def load(name: str) -> ModuleType | None:
    """The extension module `name` when it is to be used, else None (why: status()); decided once per name
    (tensorlib.dispatch and tensorlib.memory both ask for tensorlib._crecorded)."""
    if name not in _LOADED:
        _LOADED[name] = _load(name)
    return _LOADED[name]


def _load(name: str) -> ModuleType | None:
    if os.environ.get("TENSORLIB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _STATUS[name] = "off (TENSORLIB_NATIVE=0)"
        return None
    try:
        mod = importlib.import_module(name)
    except ImportError as e:
        _STATUS[name] = f"not built ({e})"
        return None
    if not hasattr(mod, "perf_counter_ns"):     # no records, no clock (tensorlib._cexecute)
        _STATUS[name] = "on"
        return mod
    for _ in range(5):      # the same clock: the module's reading falls between two of time.perf_counter_ns's
        a = time.perf_counter_ns()
        b = mod.perf_counter_ns()
        c = time.perf_counter_ns()
        if a <= b <= c:
            break
    else:
        _STATUS[name] = "off (its clock is not time.perf_counter_ns's)"
        return None
    _STATUS[name] = "on"
    return mod


def status() -> dict[str, str]:
    """{module name: "on", or why it is not used} for the modules asked for so far."""
    return dict(_STATUS)
