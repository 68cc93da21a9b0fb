"""The public paths of tensorlib's functions (`tensorlib.relu`, as torch prints `torch.relu`) and the registry
of `fx.wrap`'d functions: what node printing, code generation and the tracer share (no fx import here, so
the fx modules import it without a cycle)."""
from __future__ import annotations

import inspect
import types
from typing import Any, Callable

# --- the namespaces whose functions a trace records ----------------------------------------------------------
_NAMESPACES = ("tensorlib", "tensorlib.nn.functional", "tensorlib.special", "tensorlib.linalg", "tensorlib.fft")
# functions that inspect their argument rather than compute on it (torch.is_tensor(proxy) is False in torch too)
_NOT_RECORDED = frozenset({"is_tensor", "is_storage", "typename", "compile", "save", "load", "set_printoptions",
                           "set_default_dtype", "set_default_device", "manual_seed", "set_rng_state"})
_names_cache: dict[int, str] | None = None


def _namespace_modules() -> list[types.ModuleType]:
    import importlib
    return [importlib.import_module(n) for n in _NAMESPACES]


def _public_names(refresh: bool = False) -> dict[int, str]:
    """{id(object): its public path}, for every public callable of the traced namespaces (first namespace
    wins: tensorlib.conv2d, not tensorlib.nn.functional.conv2d, when they are one function)."""
    global _names_cache
    if _names_cache is None or refresh:
        names: dict[int, str] = {}
        for mod in _namespace_modules():
            d = vars(mod)
            for k, v in d.items():
                if k.startswith("_") or isinstance(v, types.ModuleType) or not callable(v):
                    continue
                v = _unpatched(v)       # (a trace's, or the proxies made outside one: fx/_symbolic_trace.py)
                if v is None or id(v) in names:
                    continue
                own = getattr(v, "__name__", None)       # tensorlib.atan, not its alias tensorlib.arctan
                names[id(v)] = f"{mod.__name__}.{own if own and _unpatched(d.get(own)) is v else k}"
        from .._tensor import Tensor
        for k, v in vars(Tensor).items():
            if not k.startswith("_") and callable(v) and id(v) not in names:
                names[id(v)] = f"tensorlib.Tensor.{k}"
        _names_cache = names
    return _names_cache


def _unpatched(v: Any) -> Any:
    """The function a patched name stands for (its recording wrapper's original; None for other patches)."""
    if getattr(v, "__fx_already_patched", False):
        return getattr(v, "_fx_original", None)
    return v


_wrapped_fns_to_patch: dict[tuple[int, str], dict] = {}


def wrap(fn_or_name: str | Callable) -> Any:
    """Called at the top level of a module: make the module's global function `fn_or_name` a leaf of every
    trace (one call_function node, not traced through). Also usable as a decorator."""
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise RuntimeError("Unsupported type for global function! Must be either a callable or string name")
    fn_name = fn_or_name if isinstance(fn_or_name, str) else fn_or_name.__name__
    currentframe = inspect.currentframe()
    assert currentframe is not None
    f = currentframe.f_back
    assert f is not None
    if f.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    _wrapped_fns_to_patch[(id(f.f_globals), fn_name)] = f.f_globals
    return fn_or_name
