"""tensorlib.jit: torch.jit.trace on the dispatcher's tracing hook; scripting is not supported."""
from __future__ import annotations

from ._graph import TracerWarning

__all__ = ["TracerWarning"]
