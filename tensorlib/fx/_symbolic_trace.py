"""torch.fx's symbolic tracer on tensorlib: `symbolic_trace`, `Tracer`, `wrap`, `PH`.

torch records `torch.relu(proxy)` through the __torch_function__ protocol; tensorlib has none, so for the
time of a trace the Tracer replaces the public functions of the namespaces a traced program reaches
(tensorlib.*, tensorlib.nn.functional.*, tensorlib.special/linalg/fft.*; under tensorlib.compat `torch` and
`torch.nn.functional` are these same modules) with wrappers that record a call_function node when an argument
(nested in lists, tuples or dicts too) is a Proxy and otherwise call the original. Names a traced module's
file bound to those functions (`from torch import relu`) are patched the same way, as torch patches
`math.sqrt` and `fx.wrap`'d functions. The node targets are the original functions, so a GraphModule's
code calls them. Every patch is reverted when the trace ends, raised or not."""
from __future__ import annotations

import builtins
import contextlib
import functools
import inspect
import math
import types
import warnings
import weakref
from typing import Any, Callable, Iterator

from ._names import _NOT_RECORDED, _namespace_modules, _public_names, _unpatched, _wrapped_fns_to_patch, wrap
from .graph import Graph
from .node import Argument, Node, map_aggregate
from . import graph_module as _graph_module
from . import proxy as _proxy_module
from .proxy import ParameterProxy, Proxy, Scope, TracerBase, TraceError

__all__ = ["Tracer", "symbolic_trace", "wrap", "PH", "PHBase", "is_fx_tracing"]

HAS_VARSTUFF = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
_is_fx_tracing_flag = False


def is_fx_tracing() -> bool:
    return _is_fx_tracing_flag


wrap.__module__ = __name__     # torch's path: a GraphModule's code writes tensorlib.fx._symbolic_trace.wrap(...)


def _recorded_functions() -> list[tuple[dict, str, Callable]]:
    """(namespace dict, name, function) of each function a trace patches."""
    out: list[tuple[dict, str, Callable]] = []
    for mod in _namespace_modules():
        for k, v in list(vars(mod).items()):
            v = _unpatched(v)       # (the proxies made outside a trace may have patched it already)
            if (k.startswith("_") or k in _NOT_RECORDED or isinstance(v, type)
                    or not isinstance(v, (types.FunctionType, types.BuiltinFunctionType))):
                continue
            out.append((vars(mod), k, v))
    return out


# --- patching --------------------------------------------------------------------------------------------------
class _PatchedFn:
    def __init__(self, frame_dict: Any, fn_name: str, orig_fn: Any, new_fn: Any, kind: str) -> None:
        self.frame_dict, self.fn_name, self.orig_fn, self.new_fn, self.kind = frame_dict, fn_name, orig_fn, new_fn, kind

    def patch(self) -> None:
        if self.kind == "attr":
            setattr(self.frame_dict, self.fn_name, self.new_fn)
        else:
            self.frame_dict[self.fn_name] = self.new_fn

    def revert(self) -> None:
        if self.kind == "attr":
            setattr(self.frame_dict, self.fn_name, self.orig_fn)
        elif self.kind == "del":
            del self.frame_dict[self.fn_name]
        else:
            self.frame_dict[self.fn_name] = self.orig_fn


class _Patcher:
    """Replaces names in dicts (module globals) and attributes of classes until it exits; exit reverts
    every patch, in reverse order, whatever ended the trace."""

    def __init__(self) -> None:
        self.patches_made: list[_PatchedFn] = []
        self.visited: set[int] = set()

    def patch(self, frame_dict: dict, name: str, new_fn: Callable, deduplicate: bool = True) -> None:
        setattr(new_fn, "__fx_already_patched", deduplicate)   # (not `new_fn.__fx...`: the class would mangle it)
        if name not in frame_dict and hasattr(builtins, name):
            p = _PatchedFn(frame_dict, name, None, new_fn, "del")
        elif getattr(frame_dict[name], "__fx_already_patched", False):
            return
        else:
            p = _PatchedFn(frame_dict, name, frame_dict[name], new_fn, "item")
        self.patches_made.append(p)
        p.patch()

    def patch_method(self, cls: type, name: str, new_fn: Callable, deduplicate: bool = True) -> None:
        setattr(new_fn, "__fx_already_patched", deduplicate)
        orig_fn = getattr(cls, name)
        if getattr(orig_fn, "__fx_already_patched", False):
            return
        p = _PatchedFn(cls, name, orig_fn, new_fn, "attr")
        self.patches_made.append(p)
        p.patch()

    def visit_once(self, thing: object) -> bool:
        idx = id(thing)
        if idx in self.visited:
            return False
        self.visited.add(idx)
        return True

    def __enter__(self) -> _Patcher:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        while self.patches_made:
            self.patches_made.pop().revert()
        self.visited.clear()


def _find_proxy(*objects_to_search: Any) -> Proxy | None:
    proxy = None

    def find_proxy(x: Any) -> Any:
        nonlocal proxy
        if isinstance(x, Proxy):
            proxy = x
        return x
    map_aggregate(objects_to_search, find_proxy)
    return proxy


class _RecordingFunction:
    """What a patched name holds during a trace: a call with a Proxy among its arguments (nested in lists,
    tuples, dicts too) is recorded as one call_function node of the original function; any other call runs
    it. It compares and hashes as the original, so `target == tensorlib.relu` in a Transformer still holds."""

    def __init__(self, orig_fn: Callable, is_wrapped: bool) -> None:
        functools.update_wrapper(self, orig_fn)
        self._orig_fn = self._fx_original = orig_fn     # Graph.create_node records the original
        self._is_wrapped = is_wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        proxy = _find_proxy(args, kwargs)
        if proxy is not None:
            return_proxy = proxy.tracer.create_proxy("call_function", self._orig_fn, args, kwargs)
            if self._is_wrapped:
                return_proxy.node.meta["is_wrapped"] = True
            return return_proxy
        return self._orig_fn(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return other is self or other is self._orig_fn

    def __hash__(self) -> int:
        return hash(self._orig_fn)

    def __repr__(self) -> str:
        return repr(self._orig_fn)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)


def _create_wrapped_func(orig_fn: Callable, is_wrapped: bool = True) -> Callable:
    return _RecordingFunction(orig_fn, is_wrapped)


def _patch_wrapped_functions(patcher: _Patcher) -> None:
    for (_, name), frame_dict in _wrapped_fns_to_patch.copy().items():
        orig_fn = getattr(builtins, name) if name not in frame_dict and hasattr(builtins, name) else frame_dict[name]
        patcher.patch(frame_dict, name, _create_wrapped_func(orig_fn))


def _autowrap_check(patcher: _Patcher, frame_dict: dict, function_ids: dict[int, bool]) -> None:
    """Patch the names in `frame_dict` bound to a recorded function (math.sqrt, `from torch import relu`)."""
    if patcher.visit_once(frame_dict):
        for name, value in list(frame_dict.items()):
            if not name.startswith("_") and callable(value) and id(value) in function_ids:
                patcher.patch(frame_dict, name, _create_wrapped_func(value, function_ids[id(value)]))


@contextlib.contextmanager
def _recording_functions() -> Iterator[None]:
    """tensorlib's public functions record call_function nodes for Proxy arguments while this is entered."""
    _public_names()
    with _recording(), _Patcher() as patcher:
        for frame_dict, name, orig in _recorded_functions():
            patcher.patch(frame_dict, name, _create_wrapped_func(orig, is_wrapped=False))
        yield


# --- proxies outside a trace -------------------------------------------------------------------------------------
# torch records a call on a Proxy whenever it happens (__torch_function__), so programs build graphs from proxies
# made by hand: `Proxy(node, GraphAppendingTracer(graph))`, then `torch.tanh(p)`, a module or a GraphModule called on
# it (pytorch/examples fx/proxy_based_graph_creation.py, inline_function.py, wrap_output_dynamically.py). tensorlib
# records its functions by patching them (above), so a Proxy made outside a trace or a Transformer run patches them
# until the last such Proxy is gone (the calls of other code meanwhile pay the wrapper's argument scan); the patches of
# a trace running then defer to these (deduplicated), so these are reverted only once no trace runs.
_RECORDING = [0]        # traces and Transformer runs in progress (their own patches in place)
_FREE: dict[str, Any] = {"alive": 0, "patcher": None}


@contextlib.contextmanager
def _recording() -> Iterator[None]:
    _RECORDING[0] += 1
    try:
        yield
    finally:
        _RECORDING[0] -= 1
        if not _RECORDING[0] and not _FREE["alive"]:
            _stop_free_recording()


def _made_proxy(proxy: Proxy) -> None:
    if _RECORDING[0]:
        return
    _FREE["alive"] += 1
    weakref.finalize(proxy, _free_proxy_gone)
    if _FREE["patcher"] is None:
        _public_names()
        patcher = _FREE["patcher"] = _Patcher()
        for frame_dict, name, orig in _recorded_functions():
            patcher.patch(frame_dict, name, _create_wrapped_func(orig, is_wrapped=False))
        _patch_wrapped_functions(patcher)


def _free_proxy_gone() -> None:
    _FREE["alive"] -= 1
    if not _FREE["alive"] and not _RECORDING[0]:
        _stop_free_recording()


def _stop_free_recording() -> None:
    patcher, _FREE["patcher"] = _FREE["patcher"], None
    if patcher is not None:
        patcher.__exit__(None, None, None)


_proxy_module._made_proxy = _made_proxy


# --- placeholders for concrete_args ------------------------------------------------------------------------
class PHBase:
    """A concrete_args value that stays an input (a placeholder) instead of a specialized constant."""

    def __repr__(self) -> str:
        return "PH"


PH = PHBase()


@wrap
def _assert_is_none(value: Any, msg: str) -> None:
    """torch.fx's check of a concrete None argument, raised explicitly: an `assert` statement would vanish under
    `python -O` and read differently under pytest, which rewrites this package's asserts (the distribution
    registers a pytest plugin)."""
    if value is not None:
        raise AssertionError(msg)


def _assert(condition: Any, message: str) -> None:
    """torch._assert: raise AssertionError(message) when `condition` is false (how a specialized concrete
    argument is checked at call time)."""
    if not condition:
        raise AssertionError(message)


# --- the tracer ------------------------------------------------------------------------------------------------
class Tracer(TracerBase):
    """Traces a Module (its `forward`) or a function with Proxy inputs into a Graph. Modules of tensorlib.nn
    (except Sequential) are leaves, recorded as call_module; other modules are traced through. Parameters read
    as attributes become get_attr nodes."""

    def __init__(self, autowrap_modules: tuple[types.ModuleType, ...] = (math,),
                 autowrap_functions: tuple[Callable, ...] = (), param_shapes_constant: bool = False) -> None:
        super().__init__()
        self._autowrap_function_ids: dict[int, bool] = {
            id(value): True for m in autowrap_modules for name, value in m.__dict__.items()
            if not name.startswith("_") and callable(value)}
        self._autowrap_function_ids.update({id(f): True for f in autowrap_functions})
        self._autowrap_search: list[types.ModuleType] = list(autowrap_modules)
        self.param_shapes_constant = param_shapes_constant
        self.submodule_paths: dict[Any, str] | None = None
        self.root_module_name = ""
        self.scope = Scope("", None)
        self.module_stack: dict[str, tuple[str, Any]] = {}
        self.num_calls: dict[str, int] = {}
        self.node_name_to_scope: dict[str, tuple[str, type]] = {}
        self.tensor_attrs: dict[int, tuple[Any, str]] = {}

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None) -> Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        self.node_name_to_scope[node.name] = (self.scope.module_path, self.scope.module_type)
        return node

    def get_fresh_qualname(self, prefix: str) -> str:
        i = 0
        while hasattr(self.root, f"{prefix}{i}"):
            i += 1
        return f"{prefix}{i}"

    def create_arg(self, a: Any) -> Argument:
        """Parameters, buffers and submodules of the root become get_attr nodes; other tensors become
        constants stored on the root (`_tensor_constant0`)."""
        from ..nn.modules.module import Module
        from ..nn.parameter import Parameter
        from .._tensor import Tensor
        if isinstance(a, Parameter):
            for n, p in self.root.named_parameters():
                if a is p:
                    return self.create_node("get_attr", n, (), {})
            raise NameError("parameter is not a member of this module")
        if isinstance(a, Tensor):
            for n_, p_ in self.root.named_buffers():
                if a is p_:
                    return self.create_node("get_attr", n_, (), {})
        elif isinstance(a, Module):
            for n_, p_ in self.root.named_modules():
                if a is p_:
                    return self.create_node("get_attr", n_, (), {})
        if isinstance(a, tuple) and hasattr(a, "_fields"):
            args = tuple(self.create_arg(elem) for elem in a)
            return self.create_node("call_function", a.__class__, args, {})
        if isinstance(a, Tensor):
            entry = self.tensor_attrs.get(id(a))
            if entry is None:
                qualname = self.get_fresh_qualname("_tensor_constant")
                self.tensor_attrs[id(a)] = (a, qualname)
                setattr(self.root, qualname, a)
            else:
                qualname = entry[1]
            return self.create_node("get_attr", qualname, (), {})
        return super().create_arg(a)

    def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
        """tensorlib.nn's modules (torch.nn's under compat) are leaves, Sequential excepted."""
        from ..nn.modules.container import Sequential
        mod = type(m).__module__
        return (mod.startswith("tensorlib.nn") or mod.startswith("tensorlib.ao.nn")) and not isinstance(m, Sequential)

    def path_of_module(self, mod: Any) -> str:
        if self.submodule_paths:
            path = self.submodule_paths.get(id(mod))
            if path is None:
                raise NameError("module is not installed as a submodule")
            return path
        for n, p in self.root.named_modules():
            if mod is p:
                return n
        raise NameError("module is not installed as a submodule")

    def call_module(self, m: Any, forward: Callable, args: tuple, kwargs: dict) -> Any:
        """A leaf module is one call_module node; any other runs its forward on the proxies."""
        module_qualified_name = self.path_of_module(m)
        prev = (self.scope.module_path, self.scope.module_type)
        self.scope.module_path, self.scope.module_type = module_qualified_name, type(m)
        try:
            num_calls = self.num_calls.get(module_qualified_name, 0)
            module_key = f"{module_qualified_name}@{num_calls}" if num_calls > 0 else module_qualified_name
            self.module_stack[module_key] = (module_qualified_name, type(m))
            self.num_calls[module_qualified_name] = num_calls + 1
            if not self.is_leaf_module(m, module_qualified_name):
                ret_val = forward(*args, **kwargs)
            else:
                ret_val = self.create_proxy("call_module", module_qualified_name, args, kwargs)
            self.module_stack.pop(module_key, None)
        finally:
            self.scope.module_path, self.scope.module_type = prev
        return ret_val

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Proxy]) -> Any:
        """A parameter read from a module is the proxy of one get_attr node (one per parameter)."""
        from ..nn.parameter import Parameter
        from .._tensor import Tensor

        def maybe_get_proxy_for_attr(attr_val, collection_to_search, parameter_proxy_cache):
            for n, p in collection_to_search:
                if attr_val is p:
                    if n not in parameter_proxy_cache:
                        factory = (None if not self.param_shapes_constant
                                   else (lambda node: ParameterProxy(self, node, n, attr_val)))
                        parameter_proxy_cache[n] = self.create_proxy("get_attr", n, (), {}, proxy_factory_fn=factory)
                    return parameter_proxy_cache[n]
            return None

        if isinstance(attr_val, Parameter):
            p = maybe_get_proxy_for_attr(attr_val, self.root.named_parameters(), parameter_proxy_cache)
            if p is not None:
                return p
        if self.proxy_buffer_attributes and isinstance(attr_val, Tensor):
            p = maybe_get_proxy_for_attr(attr_val, self.root.named_buffers(), parameter_proxy_cache)
            if p is not None:
                return p
        return attr_val

    def create_args_for_root(self, root_fn: Callable, is_module: bool,
                             concrete_args: dict[str, Any] | tuple | None = None) -> tuple[Callable, list]:
        fn_for_analysis = inspect.unwrap(root_fn)
        co = fn_for_analysis.__code__
        total_args = co.co_argcount + co.co_kwonlyargcount
        names_iter = iter(co.co_varnames)
        args: list[Any] = []
        skip_arg_idx = 0
        if is_module:
            if total_args == 0:
                raise RuntimeError("``self`` argument cannot be part of *args expansion!")
            skip_arg_idx = 1
            next(names_iter)
            args.append(self.root)
        sig = inspect.signature(fn_for_analysis)
        arg_names = [next(names_iter) for _ in range(skip_arg_idx, total_args)]
        if isinstance(concrete_args, tuple):
            if len(arg_names) != len(concrete_args):
                raise RuntimeError(f"Tracing expected {len(arg_names)} arguments but got "
                                   f"{len(concrete_args)} concrete arguments")
            concrete_args = dict(zip(arg_names, concrete_args))
        args.extend(self._proxy_placeholder(name, concrete_args, sig, fn_for_analysis) for name in arg_names)
        if co.co_kwonlyargcount > 0 or co.co_flags & HAS_VARSTUFF:
            if co.co_flags & inspect.CO_VARARGS:
                args.append(self._proxy_placeholder("*" + next(names_iter), concrete_args, sig, fn_for_analysis))
            if co.co_flags & inspect.CO_VARKEYWORDS:
                args.append(self._proxy_placeholder("**" + next(names_iter), concrete_args, sig, fn_for_analysis))
            root_fn = _patch_function(root_fn, len(args))  # type: ignore[arg-type]
        return root_fn, args

    def _proxy_placeholder(self, name: str, concrete_args: dict | None, sig: inspect.Signature,
                           fn_for_analysis: Callable) -> Any:
        if concrete_args is not None and name in concrete_args:
            x = concrete_args[name]
            if isinstance(x, (list, tuple, dict)):
                raise NotImplementedError(f"tensorlib.fx: concrete_args['{name}'] is a {type(x).__name__}; "
                                          "tensorlib's tracer specializes single values (None, numbers, bools, "
                                          "PH), not containers of them")
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
            out = self.create_proxy("placeholder", f"{name}_1", default, {})
            if isinstance(x, PHBase):
                return out
            if type(x) in (bool, int, float, complex, str):
                self.create_proxy("call_function", _assert, (out == x, f"{name} has been specialized to have "
                                                             f"value {x} but got another value"), {})
            elif x is None:
                self.create_proxy("call_function", _assert_is_none,
                                  (out, f"{name} has been specialized to have value None but got another value"), {})
            else:
                warnings.warn(f"Was not able to add assertion to guarantee correct input {name} to specialized "
                              "function. It is up to the user to make sure that your inputs match the inputs you "
                              "specialized the function with.", stacklevel=2)
            return x
        if name[0] == "*":
            default = ()
        else:
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
        ann = getattr(fn_for_analysis, "__annotations__", {}).get(name, None)
        return self.create_proxy("placeholder", name, default, {}, type_expr=ann if isinstance(ann, type) else None)

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> Graph:
        """Trace `root` (a Module or a function) into a Graph; `concrete_args` specializes inputs to values."""
        global _is_fx_tracing_flag
        from ..nn.modules.module import Module
        old_flag = _is_fx_tracing_flag
        _is_fx_tracing_flag = True
        recording = _recording()
        recording.__enter__()
        try:
            if isinstance(root, Module):
                self.root = root
                if not hasattr(type(root), self.traced_func_name):
                    raise AssertionError(f"traced_func_name={self.traced_func_name} doesn't exist in "
                                         f"{type(root).__name__}")
                fn = getattr(type(root), self.traced_func_name)
                self.root_module_name = root._get_name()
                self.submodule_paths = {id(mod): name for name, mod in root.named_modules()}
            else:
                self.root = Module()
                fn = root
            self.graph = Graph(tracer_cls=getattr(self, "__class__", None))
            if hasattr(fn, "__code__"):
                code = fn.__code__
                self.graph._co_fields = {"co_name": code.co_name, "co_filename": code.co_filename,
                                         "co_firstlineno": code.co_firstlineno}
            self.tensor_attrs = {}

            def collect_tensor_attrs(m: Any, prefix_atoms: list[str]) -> None:
                from .._tensor import Tensor
                for k, v in m.__dict__.items():
                    if isinstance(v, Tensor):
                        self.tensor_attrs[id(v)] = (v, ".".join(prefix_atoms + [k]))
                for k, v in m.named_children():
                    collect_tensor_attrs(v, prefix_atoms + [k])
            collect_tensor_attrs(self.root, [])

            if not isinstance(fn, types.FunctionType):
                raise AssertionError(f"Expected FunctionType, got {type(fn)}")
            fn_globals = fn.__globals__
            fn, args = self.create_args_for_root(fn, isinstance(root, Module), concrete_args)
            parameter_proxy_cache: dict[str, Proxy] = {}
            _public_names(refresh=True)           # before patching: the originals' public names
            recorded = _recorded_functions()
            function_ids = dict(self._autowrap_function_ids)
            function_ids.update({id(f): False for _, _, f in recorded})
            orig_getattr, orig_call = Module.__getattr__, Module.__call__

            with _Patcher() as patcher:
                @functools.wraps(orig_getattr)
                def module_getattr_wrapper(mod, attr):
                    attr_val = orig_getattr(mod, attr)
                    return self.getattr(attr, attr_val, parameter_proxy_cache)

                @functools.wraps(orig_call)
                def module_call_wrapper(mod, *args, **kwargs):
                    def forward(*args, **kwargs):
                        return orig_call(mod, *args, **kwargs)
                    _autowrap_check(patcher, getattr(getattr(mod, "forward", mod), "__globals__", {}), function_ids)
                    return self.call_module(mod, forward, args, kwargs)

                patcher.patch_method(Module, "__getattr__", module_getattr_wrapper, deduplicate=False)
                patcher.patch_method(Module, "__call__", module_call_wrapper, deduplicate=False)
                for frame_dict, name, orig in recorded:
                    patcher.patch(frame_dict, name, _create_wrapped_func(orig, is_wrapped=False))
                _patch_wrapped_functions(patcher)
                _autowrap_check(patcher, fn_globals, function_ids)
                for module in self._autowrap_search:
                    _autowrap_check(patcher, module.__dict__, function_ids)
                ann = getattr(inspect.unwrap(fn), "__annotations__", {}).get("return", None)
                self.create_node("output", "output", (self.create_arg(fn(*args)),), {},
                                 type_expr=ann if isinstance(ann, type) else None)
            self.submodule_paths = None
        finally:
            _is_fx_tracing_flag = old_flag
            recording.__exit__(None, None, None)
        return self.graph


def _patch_function(fn: types.FunctionType, nargs: int) -> types.FunctionType:
    """`fn` with its *args / **kwargs turned into plain positional parameters (each receives one proxy)."""
    co = fn.__code__
    new_code = co.replace(co_argcount=nargs, co_posonlyargcount=0, co_kwonlyargcount=0,
                          co_flags=co.co_flags & ~HAS_VARSTUFF)
    return types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def symbolic_trace(root: Any, concrete_args: dict[str, Any] | None = None) -> Any:
    """Trace a Module or a function into a GraphModule (see Tracer)."""
    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    from ..nn.modules.module import Module
    name = root.__class__.__name__ if isinstance(root, Module) else root.__name__
    return _graph_module._make_graph_module(tracer.root, graph, name)


__all__ += ["TraceError"]
_graph_module._DEFAULT_TRACER[0] = Tracer
