"""torch.fx.Proxy: the stand-in value that flows through a traced program and records, as graph nodes,
every operator (call_function(operator.X)), Tensor method (call_method) and attribute read (getattr) applied
to it. tensorlib has no __torch_function__ protocol: calls of tensorlib's functions on proxies are recorded
by the wrappers the Tracer patches in (tensorlib/fx/_symbolic_trace.py)."""
from __future__ import annotations

import dis
import inspect
import operator
import os
import sys
import types
from typing import Any, Callable, Iterator

from .graph import Graph, magic_methods, reflectable_magic_methods
from .node import Argument, Node, Target, map_aggregate

__all__ = ["TracerBase", "GraphAppendingTracer", "TraceError", "Proxy", "Attribute", "Scope"]

base_types = (int, float, bool, complex, str, bytes, type(None), type(...))


class Scope:
    """The module path and type a node was recorded under."""

    def __init__(self, module_path: str, module_type: Any) -> None:
        self.module_path = module_path
        self.module_type = module_type


class TraceError(ValueError):
    pass


class TracerBase:
    graph: Graph
    record_stack_traces: bool = False
    check_mutable_operations: bool = False
    trace_asserts: bool = False
    proxy_buffer_attributes: bool = False
    traced_func_name: str = "forward"

    def create_node(self, kind: str, target: Target, args: tuple, kwargs: dict, name: str | None = None,
                    type_expr: Any | None = None) -> Node:
        """Insert a graph node; override to check or change what is recorded."""
        node = self.graph.create_node(kind, target, args, kwargs, name, type_expr)
        module_stack = getattr(self, "module_stack", None)
        if module_stack:
            node.meta["nn_module_stack"] = dict(module_stack)
        return node

    def proxy(self, node: Node) -> Proxy:
        return Proxy(node, self)

    def create_proxy(self, kind: str, target: Target, args: tuple, kwargs: dict, name: str | None = None,
                     type_expr: Any | None = None, proxy_factory_fn: Callable[[Node], Proxy] | None = None
                     ) -> Proxy:
        """Create a node from `args`/`kwargs` (proxies become their nodes) and return its Proxy."""
        args_ = self.create_arg(args)
        kwargs_ = self.create_arg(kwargs)
        assert isinstance(args_, tuple)
        assert isinstance(kwargs_, dict)
        node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
        return self.proxy(node) if not proxy_factory_fn else proxy_factory_fn(node)

    def create_arg(self, a: Any) -> Argument:
        """Lower a value seen as an argument into what a node stores (Nodes, containers, literals)."""
        if isinstance(a, Proxy):
            return a.node
        if hasattr(a, "__fx_create_arg__"):
            return a.__fx_create_arg__(self)
        if isinstance(a, tuple):
            if hasattr(a, "_fields"):
                return type(a)(*[self.create_arg(elem) for elem in a])  # type: ignore[arg-type]
            return tuple(self.create_arg(elem) for elem in a)
        if isinstance(a, list):
            return [self.create_arg(elem) for elem in a]
        if isinstance(a, dict):
            r = {}
            for k, v in a.items():
                if not isinstance(k, str):
                    k = self.create_arg(k)

                    def no_node(arg):
                        if isinstance(arg, Node):
                            raise RuntimeError("Keys for dictionaries used as an argument cannot contain a "
                                               f"Node. Got key: {k}")
                        return arg
                    map_aggregate(k, no_node)
                r[k] = self.create_arg(v)
            return r
        if isinstance(a, slice):
            return slice(self.create_arg(a.start), self.create_arg(a.stop), self.create_arg(a.step))
        if isinstance(a, range):
            return range(self.create_arg(a.start), self.create_arg(a.stop), self.create_arg(a.step))  # type: ignore
        from .._dtype import dtype
        from .._device import device
        from .._memory_format import memory_format
        from .._sparse import layout
        import enum
        if isinstance(a, (*base_types, enum.Enum, dtype, device, memory_format, layout)) or a is None or a is ...:
            return a
        raise NotImplementedError(f"argument of type: {type(a)}")

    def to_bool(self, obj: Proxy) -> bool:
        _refuse_inside_tensorlib()
        raise TraceError("symbolically traced variables cannot be used as inputs to control flow")

    def iter(self, obj: Proxy) -> Iterator:
        _refuse_inside_tensorlib()
        raise TraceError("Proxy object cannot be iterated. This can be attempted when the Proxy is used in a "
                         "loop or as a *args or **kwargs function argument. See the torch.fx docs on "
                         "pytorch.org for a more detailed explanation of what types of control flow can be "
                         "traced, and check out the Proxy docstring for help troubleshooting Proxy iteration "
                         "errors")

    def keys(self, obj: Proxy) -> Proxy:
        return Attribute(obj, "keys")()


_FX_DIR = os.path.dirname(os.path.abspath(__file__))
_TENSORLIB_DIR = os.path.dirname(_FX_DIR)


def _refuse_inside_tensorlib() -> None:
    """A Proxy tested or iterated by tensorlib's own code (not the traced program) reached a kernel: a call
    on proxies that nothing recorded. torch records such calls at any time (__torch_function__); tensorlib
    records its functions only while Tracer.trace or Transformer.transform runs, so say that instead of
    blaming the program's control flow."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_FX_DIR):
        frame = frame.f_back
    if frame is None:
        return
    where = os.path.abspath(frame.f_code.co_filename)
    if where.startswith(_TENSORLIB_DIR + os.sep) and not where.startswith(_FX_DIR):
        raise TraceError("tensorlib.fx: a tensorlib function was called on a Proxy that nothing records (a "
                         "function reached by a path other than its public name, or a Proxy kept after its trace "
                         "ended); tensorlib has no __torch_function__: call it by its public name "
                         "(tensorlib.relu, tensorlib.nn.functional.relu) or create the node with "
                         "graph.call_function")


class GraphAppendingTracer(TracerBase):
    """The tracer of a Proxy made directly on a graph's node: appends to that graph."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.scope = Scope("", None)
        self.module_stack: dict[str, tuple[str, Any]] = {}


# Called with every Proxy made (tensorlib/fx/_symbolic_trace.py sets it): one made outside a trace or a
# Transformer run (a graph built from proxies by hand) turns the recording of tensorlib's functions on for as long
# as such proxies live, as torch's __torch_function__ records calls on proxies at any time
_made_proxy: Callable[[Proxy], None] | None = None


class Proxy:
    """A Node wrapper that records what the traced program does to it. Proxies cannot be iterated, tested
    for truth or measured with len(): wrap such code in a leaf function (`fx.wrap`) or specialize it with
    `concrete_args`."""

    def __init__(self, node: Node, tracer: TracerBase | None = None) -> None:
        if tracer is None:
            tracer = GraphAppendingTracer(node.graph)
        self.tracer = tracer
        self.node = node
        if _made_proxy is not None:
            _made_proxy(self)

    def __repr__(self) -> str:
        return f"Proxy({self.node.name})"

    def __getattr__(self, k: str) -> Attribute:
        return Attribute(self, k)

    def __getstate__(self) -> dict:
        return self.__dict__

    def __setstate__(self, d: dict) -> None:
        self.__dict__ = d

    def __deepcopy__(self, memo: dict) -> Proxy:
        import copy
        new_proxy = Proxy(self.node, self.tracer)
        for k, v in self.__dict__.items():
            if k not in ("node", "tracer"):
                new_proxy.__dict__[k] = copy.deepcopy(v, memo)
        return new_proxy

    def __call__(self, *args: Any, **kwargs: Any) -> Proxy:
        return self.tracer.create_proxy("call_method", "__call__", (self,) + args, kwargs)

    def __iter__(self) -> Iterator[Proxy]:
        frame = inspect.currentframe()
        assert frame is not None
        calling_frame = frame.f_back
        assert calling_frame is not None
        inst_list = list(dis.get_instructions(calling_frame.f_code))
        if sys.version_info >= (3, 11):
            from bisect import bisect_left
            inst_idx = bisect_left(inst_list, calling_frame.f_lasti, key=lambda x: x.offset)
        else:
            inst_idx = calling_frame.f_lasti // 2
        inst = inst_list[inst_idx]
        if inst.opname == "UNPACK_SEQUENCE":     # `a, b = proxy`: a known count, so index it
            return (self[i] for i in range(inst.argval))  # type: ignore[index]
        return self.tracer.iter(self)

    def __abs__(self) -> Proxy:
        return self.tracer.create_proxy("call_function", operator.abs, (self,), {})

    def __bool__(self) -> bool:
        return self.tracer.to_bool(self)

    def keys(self) -> Proxy:
        return self.tracer.keys(self)

    def __len__(self) -> int:
        raise RuntimeError("'len' is not supported in symbolic tracing by default. If you want this call to "
                           "be recorded, please call torch.fx.wrap('len') at module scope")

    # tensorlib's Tensor binary operators give NotImplemented for a Proxy, so `tensor + proxy` reaches the
    # reflected operators below; hashing keeps proxies usable as dict keys (their __eq__ records a node)
    __hash__ = object.__hash__


class Attribute(Proxy):
    """`proxy.attr`: a getattr node, made only if the attribute is used as a value (`proxy.view(...)` is one
    call_method node instead)."""

    def __init__(self, root: Proxy, attr: str) -> None:
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self._node: Node | None = None

    @property
    def node(self) -> Node:  # type: ignore[override]
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr, (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args: Any, **kwargs: Any) -> Proxy:
        return self.tracer.create_proxy("call_method", self.attr, (self.root,) + args, kwargs)


class ParameterProxy(Proxy):
    """A parameter's proxy whose shape, size(), dim(), ndim, numel() and nelement() are the parameter's own
    (Tracer(param_shapes_constant=True))."""

    def __init__(self, tracer: TracerBase, node: Node, name: str, param: Any) -> None:
        super().__init__(node, tracer)
        self.param = param
        self.name = name

    def __repr__(self) -> str:
        return f"ParameterProxy({self.name})"

    @property
    def shape(self):
        return self.param.shape

    def size(self):
        return self.param.size()

    def dim(self):
        return self.param.dim()

    @property
    def ndim(self):
        return self.param.ndim

    def numel(self):
        return self.param.numel()

    def nelement(self):
        return self.param.nelement()


def _scope(method: str) -> None:
    def impl(*args: Any, **kwargs: Any) -> Proxy:
        tracer = args[0].tracer
        target = getattr(operator, method)
        return tracer.create_proxy("call_function", target, args, kwargs)
    impl.__name__ = method
    setattr(Proxy, f"__{method.strip('_')}__", impl)


for _method in magic_methods:
    _scope(_method)


def _define_reflectable(orig_method_name: str) -> None:
    method_name = f"__r{orig_method_name.strip('_')}__"

    def impl(self: Proxy, rhs: Any) -> Proxy:
        target = getattr(operator, orig_method_name)
        return self.tracer.create_proxy("call_function", target, (rhs, self), {})
    impl.__name__ = method_name
    impl.__qualname__ = method_name
    setattr(Proxy, method_name, impl)


for _orig in reflectable_magic_methods:
    _define_reflectable(_orig)
