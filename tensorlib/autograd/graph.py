"""torch.autograd.graph: the nodes a forward op leaves behind. They are recorded by the dispatcher's
graph layer, `tensorlib._graph`, which sits below the kernel executor; this is their public name."""
from __future__ import annotations

from .._graph import AccumulateGrad, Node, accumulator, view_positions

__all__ = ["Node", "AccumulateGrad", "accumulator", "view_positions"]
