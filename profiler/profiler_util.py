"""torch.autograd.profiler_util (``tensorlib.autograd.profiler_util``): the result classes programs import from
there: EventList, FunctionEvent, FunctionEventAvg."""
from __future__ import annotations

from .aggregate import EventList, FunctionEventAvg
from .function_event import FunctionEvent

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg"]
