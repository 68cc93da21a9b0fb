"""torch.fx.subgraph_rewriter.replace_pattern: find every non-overlapping occurrence of a pattern graph in a
GraphModule and replace it with a replacement graph."""
from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple

from .graph import Graph
from .graph_module import GraphModule
from .node import Node

__all__ = ["Match", "replace_pattern"]


class Match(NamedTuple):
    anchor: Node                    # the pattern's node the match was found from
    nodes_map: dict[Node, Node]     # pattern node -> matched node of the rewritten graph


def _as_graph(obj: Callable | Graph | GraphModule) -> tuple[Graph, Any]:
    if isinstance(obj, GraphModule):
        return obj.graph, obj
    if isinstance(obj, Graph):
        return obj, obj.owning_module
    from ._symbolic_trace import symbolic_trace
    gm = symbolic_trace(obj)
    return gm.graph, gm


def _try_get_attr(mod: Any, target: str) -> Any:
    for atom in target.split("."):
        mod = getattr(mod, atom, None)
        if mod is None:
            return None
    return mod


class _Matcher:
    """Matches the pattern backwards from its returned nodes: a pattern placeholder matches any node
    (consistently), other nodes match nodes of the same op and target whose arguments match."""

    def __init__(self, pattern: Graph, pattern_module: Any, target_module: Any) -> None:
        self.pattern = pattern
        self.pattern_module = pattern_module
        self.target_module = target_module
        out = pattern.output_node
        returned = out.args[0]
        self.returning: list[Node] = [a for a in (returned if isinstance(returned, (list, tuple)) else [returned])
                                      if isinstance(a, Node)]
        self.placeholders = [n for n in pattern.nodes if n.op == "placeholder"]

    def _nodes_equal(self, pn: Node, gn: Node) -> bool:
        if pn.op == "placeholder":
            return True
        if pn.op != gn.op:
            return False
        if pn.op == "get_attr":
            from .._tensor import Tensor
            pv = _try_get_attr(self.pattern_module, pn.target)  # type: ignore[arg-type]
            gv = _try_get_attr(self.target_module, gn.target)  # type: ignore[arg-type]
            return type(pv) is type(gv) and (isinstance(pv, Tensor) or pv is gv)
        return pn.target == gn.target

    def _match_args(self, pa: Any, ga: Any, nodes_map: dict[Node, Node]) -> bool:
        if isinstance(pa, Node) and isinstance(ga, Node):
            return self._match_nodes(pa, ga, nodes_map)
        if isinstance(pa, (list, tuple)) and isinstance(ga, (list, tuple)):
            return len(pa) == len(ga) and all(self._match_args(a, b, nodes_map) for a, b in zip(pa, ga))
        if isinstance(pa, dict) and isinstance(ga, dict):
            return pa.keys() == ga.keys() and all(self._match_args(pa[k], ga[k], nodes_map) for k in pa)
        if isinstance(pa, Node) or isinstance(ga, Node):
            return False
        return type(pa) is type(ga) and pa == ga

    def _match_nodes(self, pn: Node, gn: Node, nodes_map: dict[Node, Node]) -> bool:
        if pn in nodes_map:
            return nodes_map[pn] is gn
        if any(v is gn for v in nodes_map.values()):
            return False
        if not self._nodes_equal(pn, gn):
            return False
        saved = dict(nodes_map)
        nodes_map[pn] = gn
        if pn.op == "placeholder":
            return True
        ok = (len(pn.args) == len(gn.args) and self._match_args(tuple(pn.args), tuple(gn.args), nodes_map)
              and self._match_args(dict(pn.kwargs), dict(gn.kwargs), nodes_map))
        if not ok:
            nodes_map.clear()
            nodes_map.update(saved)
        return ok

    def _contained(self, nodes_map: dict[Node, Node]) -> bool:
        """Values computed inside the match are used only inside it (the returned ones excepted)."""
        inside = {gn for pn, gn in nodes_map.items() if pn.op != "placeholder"}
        for pn, gn in nodes_map.items():
            if pn.op == "placeholder" or pn in self.returning:
                continue
            if any(u not in inside for u in gn.users):
                return False
        return True

    def match(self, graph: Graph) -> list[dict[Node, Node]]:
        if not self.returning:
            return []
        matches: list[dict[Node, Node]] = []
        taken: set[Node] = set()
        anchor = self.returning[0]
        for gn in graph.nodes:
            nodes_map: dict[Node, Node] = {}
            if not self._match_nodes(anchor, gn, nodes_map):
                continue
            if not all(self._match_candidates_rest(r, nodes_map, graph) for r in self.returning[1:]):
                continue
            if not all(p in nodes_map for p in self.placeholders) or not self._contained(nodes_map):
                continue
            inner = {g for p, g in nodes_map.items() if p.op != "placeholder"}
            if inner & taken:
                continue
            taken |= inner
            matches.append(nodes_map)
        return matches

    def _match_candidates_rest(self, pn: Node, nodes_map: dict[Node, Node], graph: Graph) -> bool:
        if pn in nodes_map:
            return True
        for gn in graph.nodes:
            trial = dict(nodes_map)
            if self._match_nodes(pn, gn, trial):
                nodes_map.update(trial)
                return True
        return False


def replace_pattern(gm: GraphModule, pattern: Callable | GraphModule,
                    replacement: Callable | GraphModule) -> list[Match]:
    """Replace each non-overlapping match of `pattern` in gm's graph with `replacement` (both traced with
    symbolic_trace when they are functions or modules; they take the same inputs), then recompile gm.
    Returns the matches."""
    original_graph = gm.graph
    pattern_graph, pattern_module = _as_graph(pattern)
    replacement_graph, replacement_module = _as_graph(replacement)
    matcher = _Matcher(pattern_graph, pattern_module, gm)
    found = matcher.match(original_graph)
    replacement_placeholders = [n for n in replacement_graph.nodes if n.op == "placeholder"]
    results: list[Match] = []
    for nodes_map in found:
        placeholder_nodes = [nodes_map[p] for p in matcher.placeholders]
        assert len(placeholder_nodes) == len(replacement_placeholders)
        val_map: dict[Node, Any] = dict(zip(replacement_placeholders, placeholder_nodes))
        returning_nodes = [nodes_map[r] for r in matcher.returning]
        user_nodes: set[Node] = set()
        for n in returning_nodes:
            user_nodes.update(n.users)
        first_user_node = next((n for n in original_graph.nodes if n in user_nodes), None)
        insert_point = first_user_node
        if insert_point is None:
            next_node = None
            for n in reversed(original_graph.nodes):
                if n in returning_nodes:
                    insert_point = next_node
                    break
                next_node = n
        with original_graph.inserting_before(insert_point):
            copied = original_graph.graph_copy(replacement_graph, val_map)
        copied_list = list(copied) if isinstance(copied, (list, tuple)) else [copied]
        assert len(copied_list) == len(returning_nodes), "pattern and replacement return different numbers of values"
        for gn, copied_node in zip(returning_nodes, copied_list):
            gn.replace_all_uses_with(copied_node)
        for pn in reversed(list(pattern_graph.nodes)):
            if pn.op not in ("placeholder", "output"):
                original_graph.erase_node(nodes_map[pn])
        results.append(Match(anchor=matcher.returning[0], nodes_map=nodes_map))

    from .._tensor import Tensor
    for node in replacement_graph.nodes:
        if node.op in ("call_module", "get_attr") and replacement_module is not None:
            if _try_get_attr(gm, node.target) is not None:  # type: ignore[arg-type]
                continue
            attr = _try_get_attr(replacement_module, node.target)  # type: ignore[arg-type]
            if attr is None:
                continue
            new_attr = copy.deepcopy(attr)
            if isinstance(new_attr, Tensor):
                from .graph_module import _assign_attr
                _assign_attr(new_attr, gm, node.target)  # type: ignore[arg-type]
            else:
                gm.add_submodule(node.target, new_attr)  # type: ignore[arg-type]
    gm.recompile()
    return results
