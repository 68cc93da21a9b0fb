"""torch.fx.GraphModule: a Module whose `forward` is the Python code generated from a Graph, holding the
submodules, parameters and buffers the graph's call_module / get_attr nodes name (copied from the traced
root, so its state_dict is the root's for those)."""
from __future__ import annotations

import copy
import itertools
import linecache
import pickle
import types
from typing import Any

from ..nn.modules.module import Module
from .graph import Graph, PythonCode

__all__ = ["GraphModule"]

_next_id = itertools.count()
# the Tracer a loaded GraphModule is traced again with, when it was not traced by a tracer class of its own (set by
# tensorlib/fx/_symbolic_trace.py, which imports this module)
_DEFAULT_TRACER: list = [None]


def _exec_with_source(src: str, globals: dict[str, Any]) -> None:
    """Run generated source under a `<eval_with_key>.N` file name that linecache knows, so tracebacks
    through a GraphModule's forward show its lines (as torch's)."""
    key = f"<eval_with_key>.{next(_next_id)}"
    linecache.cache[key] = (len(src), None, src.splitlines(True), key)
    exec(compile(src, key, "exec"), globals)


def _forward_from_src(src: str, globals: dict[str, Any]) -> Any:
    globals_copy = dict(globals)
    _exec_with_source(src, globals_copy)
    return globals_copy["forward"]


def _copy_attr(from_module: Module, to_module: Module, target: str) -> None:
    from .._tensor import Tensor
    from ..nn.parameter import Parameter
    *prefix, field = target.split(".")
    for item in prefix:
        f = getattr(from_module, item)
        t = getattr(to_module, item, None)
        if f is t:
            return
        if t is None:
            t = Module()
            setattr(to_module, item, t)
        from_module, to_module = f, t
    orig = getattr(from_module, field)
    if isinstance(orig, Tensor) and not isinstance(orig, Parameter):
        to_module.register_buffer(field, orig)
    else:
        setattr(to_module, field, orig)


def _assign_attr(from_obj: Any, to_module: Module, target: str) -> None:
    from .._tensor import Tensor
    from ..nn.parameter import Parameter
    *prefix, field = target.split(".")
    for item in prefix:
        t = getattr(to_module, item, None)
        if t is None:
            t = Module()
            setattr(to_module, item, t)
        to_module = t
    if isinstance(from_obj, Tensor) and not isinstance(from_obj, Parameter):
        to_module.register_buffer(field, from_obj)
    else:
        setattr(to_module, field, from_obj)


def _addindent(s_: str, num_spaces: int) -> str:
    s = s_.split("\n")
    if len(s) == 1:
        return s_
    first = s.pop(0)
    return first + "\n" + "\n".join((num_spaces * " ") + line for line in s)


class _CodeOnlyModule(Module):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        object.__setattr__(self, "__dict__", body)


class GraphModule(Module):
    """A Module generated from a Graph: `graph`, its source `code`, `recompile()` after editing the graph.
    Each instance has its own class (so its `forward` is its own)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        for t in cls.__mro__:
            if t.__qualname__.split(".")[-1] != "GraphModuleImpl":
                cls = t
                break

        class GraphModuleImpl(cls):  # type: ignore[misc, valid-type]
            pass
        return super().__new__(GraphModuleImpl)

    def __init__(self, root: Module | dict[str, Any], graph: Graph, class_name: str = "GraphModule") -> None:
        super().__init__()
        self.__class__.__name__ = class_name
        if isinstance(root, Module):
            self.training = root.training
            if isinstance(root, _CodeOnlyModule):
                for k, _ in root.named_children():
                    _copy_attr(root, self, k)
                for k, _ in root.named_buffers():
                    _copy_attr(root, self, k)
                for k, _ in root.named_parameters():
                    _copy_attr(root, self, k)
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    assert isinstance(node.target, str)
                    _copy_attr(root, self, node.target)
        elif isinstance(root, dict):
            targets_to_copy = []
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    assert isinstance(node.target, str)
                    if node.target not in root:
                        raise RuntimeError("Node " + str(node) + " referenced target " + node.target
                                           + " but that target was not provided in ``root``!")
                    targets_to_copy.append(node.target)
            targets_to_copy.sort(key=lambda t: t.count("."))
            for target_to_copy in targets_to_copy:
                _assign_attr(root[target_to_copy], self, target_to_copy)
        else:
            raise RuntimeError("Unsupported type " + str(root) + " passed for root!")
        self.graph = graph
        self._tracer_cls = None
        if graph._tracer_cls and "<locals>" not in graph._tracer_cls.__qualname__:
            self._tracer_cls = graph._tracer_cls
        self.meta: dict[str, Any] = {}

    @property
    def graph(self) -> Graph:
        return self._graph

    @graph.setter
    def graph(self, g: Graph) -> None:
        if not isinstance(g, Graph):
            raise AssertionError(f"Expected a Graph instance, but got {type(g)}")
        self._graph = g
        g.owning_module = self
        self.recompile()

    @property
    def code(self) -> str:
        if not hasattr(self, "_code"):
            raise RuntimeError("Code has not been generated! Please report a bug to PyTorch")
        return self._code

    def recompile(self) -> PythonCode:
        """Regenerate `code` and `forward` from `graph` (call it after editing the graph)."""
        python_code = self._graph.python_code(root_module="self")
        self._code = python_code.src
        cls = type(self)
        cls.forward = _forward_from_src(self._code, python_code.globals)
        for _, submod in self.named_children():
            if isinstance(submod, GraphModule):
                submod.recompile()
        return python_code

    # --- submodules -------------------------------------------------------------------------------------------
    def add_submodule(self, target: str, m: Module) -> bool:
        *prefix, field = target.split(".")
        mod: Module = self
        for item in prefix:
            submod = getattr(mod, item, None)
            if submod is None:
                submod = Module()
                setattr(mod, item, submod)
            if not isinstance(submod, Module):
                return False
            mod = submod
        mod.add_module(field, m)
        return True

    def delete_submodule(self, target: str) -> bool:
        atoms = target.split(".")
        path, target_submod = atoms[:-1], atoms[-1]
        mod: Any = self
        for item in path:
            if not hasattr(mod, item):
                return False
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                return False
        if not hasattr(mod, target_submod) or not isinstance(getattr(mod, target_submod), Module):
            return False
        delattr(mod, target_submod)
        return True

    def delete_all_unused_submodules(self) -> None:
        used: list[str] = []
        for node in self.graph.nodes:
            if node.op in ("call_module", "get_attr") and isinstance(node.target, str):
                used.extend(itertools.accumulate(node.target.split("."), lambda x, y: f"{x}.{y}"))
                if node.op == "call_module":
                    try:
                        submod = self.get_submodule(node.target)
                        used.extend(f"{node.target}.{n}" for n, _ in submod.named_modules() if n)
                    except AttributeError:
                        pass
        for name in [name for name, _ in self.named_modules() if name and name not in used]:
            self.delete_submodule(name)

    # --- printing and copying ---------------------------------------------------------------------------------
    def print_readable(self, print_output: bool = True, include_stride: bool = False,
                       include_device: bool = False, colored: bool = False) -> str:
        """The generated code of this module and of its GraphModule children, as a class."""
        return _print_readable(self, self._get_name(), print_output)

    def __str__(self) -> str:
        orig_str = super().__str__()
        print_readable_reminder = "# To see more debug info, please use `graph_module.print_readable()`"
        return "\n".join([orig_str, self._code, print_readable_reminder])

    def __deepcopy__(self, memo: dict[int, Any]) -> GraphModule:
        res = type(self).__new__(type(self))
        memo[id(self)] = res
        fake_mod = _CodeOnlyModule(copy.deepcopy(self.__dict__, memo))
        GraphModule.__init__(res, fake_mod, fake_mod.__dict__["_graph"], type(self).__name__)
        res.meta = copy.deepcopy(getattr(self, "meta", {}), memo)
        return res

    def __copy__(self) -> GraphModule:
        res = GraphModule(self, self.graph, type(self).__name__)
        res.meta = getattr(self, "meta", {})
        return res

    def __reduce__(self):
        """torch's: the module's __dict__ without its graph, and the import lines its code needs; unpickling runs
        the code for a forward and traces it again, its submodules kept as leaves (reduce_graph_module)."""
        body = self.__dict__.copy()
        python_code = self.recompile()
        del body["_graph"]
        body["_graphmodule_cls_name"] = type(self).__name__
        return (reduce_graph_module, (body, _format_import_block(python_code.globals)))


def _format_import_block(globals_: dict[str, Any]) -> str:
    """The import lines that give the generated code its globals back in another process (torch's
    _format_import_block): a custom builtin's own line, a module by its name, anything else by module and name."""
    from .graph import _custom_builtins
    lines = {"import tensorlib"}
    for name, obj in globals_.items():
        builtin = _custom_builtins.get(name)
        if builtin is not None and builtin[1] is obj:
            lines.add(builtin[0])
        elif isinstance(obj, types.ModuleType):
            lines.add(f"import {obj.__name__}" if obj.__name__ == name else f"import {obj.__name__} as {name}")
        else:
            module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
            if not module or not qualname or "<locals>" in qualname or "." in qualname:
                raise pickle.PicklingError(f"GraphModule pickling: the global {name!r} of its code ({obj!r:.60}) "
                                           f"cannot be imported by name")
            lines.add(f"from {module} import {qualname} as {name}")
    return "\n".join(sorted(lines)) + "\n"


def reduce_graph_module(body: dict[str, Any], import_block: str) -> GraphModule:
    """Unpickle a GraphModule (its __reduce__): its code run for a forward, traced again with every submodule a
    leaf (they were not traced through in the original either)."""
    forward = _forward_from_src(import_block + body["_code"], {})
    tracer_cls = body.get("_tracer_cls") or _DEFAULT_TRACER[0]

    class KeepModules(tracer_cls):  # type: ignore[misc, valid-type]
        def is_leaf_module(self, m: Module, module_qualified_name: str) -> bool:
            return True

    class CodeOnly(_CodeOnlyModule):
        pass
    CodeOnly.forward = forward
    com = CodeOnly(body)
    graph = KeepModules().trace(com)
    graph._tracer_cls = tracer_cls
    gm = GraphModule(com, graph, class_name=body.get("_graphmodule_cls_name", "GraphModule"))
    for k, v in body.items():
        if not hasattr(gm, k):
            setattr(gm, k, v)
    return gm


def _print_readable(module: GraphModule, module_name: str, print_output: bool = True) -> str:
    verbose_python_code = module.graph.python_code(root_module="self", verbose=True)
    module_code = verbose_python_code.src.lstrip("\n")
    module_code = f"class {module_name}(tensorlib.nn.Module):\n" + module_code
    module_code = _addindent(module_code, 4)
    submodule_code_list = [""]
    for submodule_name, submodule in module.named_children():
        if isinstance(submodule, GraphModule):
            submodule_code_list.append(_print_readable(submodule, submodule_name, print_output=False))
    submodule_code = _addindent("\n".join(submodule_code_list), 4)
    output = module_code + submodule_code
    if print_output:
        print(module_code + submodule_code)
    return output


def _make_graph_module(root: Module | dict[str, Any], graph: Graph, class_name: str = "GraphModule") -> GraphModule:
    return GraphModule(root, graph, class_name)


