"""torch.fx for tensorlib: symbolic tracing of Modules and functions into a Graph IR, GraphModules
generated from graphs, the Interpreter/Transformer, subgraph rewriting and shape propagation, with torch
2.13's names, node names, generated code (`tensorlib` for `torch`) and messages. Imported on first use
(`tensorlib.fx`, or `import torch.fx` under tensorlib.compat)."""
from __future__ import annotations

from . import passes, subgraph_rewriter  # noqa: F401
from ._symbolic_trace import PH, Tracer, is_fx_tracing, symbolic_trace, wrap
from .graph import CodeGen, Graph, PythonCode
from .graph_module import GraphModule
from .interpreter import Interpreter, Transformer
from .node import Node, has_side_effect, map_aggregate, map_arg
from .proxy import Proxy, TraceError
from .subgraph_rewriter import replace_pattern

__all__ = ["symbolic_trace", "Tracer", "Graph", "GraphModule", "Node", "Proxy", "Interpreter", "Transformer",
           "wrap", "PH", "map_arg", "map_aggregate", "has_side_effect", "TraceError", "CodeGen", "PythonCode",
           "is_fx_tracing", "replace_pattern"]
