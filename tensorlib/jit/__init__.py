"""tensorlib.jit: torch.jit.trace, save and load on the dispatcher's tracing hook (see _trace.py).
Scripting (compiling Python source) is not supported: `script` says so and points at `trace`."""
from __future__ import annotations

from ._graph import TracerWarning
from ._trace import TracedFunction, TracedModule, load, save, script, trace

ScriptModule = TracedModule          # what torch.jit.trace/load return (TopLevelTracedModule is a ScriptModule)
ScriptFunction = TracedFunction
TopLevelTracedModule = TracedModule


def is_tracing() -> bool:
    """torch.jit.is_tracing: True while tensorlib.jit.trace or tensorlib.onnx.export records a forward."""
    from ._graph import _tracing
    return bool(_tracing())


def is_scripting() -> bool:
    return False


__all__ = ["trace", "script", "save", "load", "TracerWarning", "TracedModule", "TracedFunction", "ScriptModule",
           "ScriptFunction", "TopLevelTracedModule", "is_tracing", "is_scripting"]
