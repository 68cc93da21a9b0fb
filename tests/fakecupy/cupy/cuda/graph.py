"""cupy.cuda.graph (fake): CuPy's Graph class exists (made by Stream.end_capture, never by the user), but
stream capture is not simulated (see Stream.begin_capture), so no Graph is ever made here."""
from __future__ import annotations


class Graph:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("fake cupy: a Graph is made by Stream.end_capture, which the fake does not simulate")
