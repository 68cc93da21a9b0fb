"""torch.ops.profiler: the profiler's operators, ``_record_function_enter`` / ``_record_function_enter_new`` (open a
user range, as ``record_function.__enter__`` does, and return its handle) and ``_record_function_exit`` (close it).
Programs call them directly where a ``with record_function(...)`` block cannot be: an FX graph keeps a profiler
range as two call_function nodes on these (pytorch/examples fx/profiling_tracer.py), and code that opens a range
in one function and closes it in another holds the handle. The range is tensorlib's user region, the one
``tensorlib.profiler.record_function`` opens (a "user_annotation" in traces)."""
from __future__ import annotations

import sys

from .._hooks import record_range


class _RecordFunction:
    """torch.classes.profiler._RecordFunction: the handle of an open range (closed once by _record_function_exit)."""

    __slots__ = ("_range",)

    def __init__(self, name: str):
        self._range = record_range(name, "user")
        self._range.__enter__()

    @property
    def name(self) -> str:
        return self._range.name

    def __repr__(self):
        return f"<tensorlib.ops.profiler._RecordFunction {self._range.name!r}>"


def _check_name(op: str, name, args) -> None:
    if not isinstance(name, str):
        raise RuntimeError(f"profiler::{op}() Expected a value of type 'str' for argument 'name' but instead found "
                           f"type '{type(name).__name__}'.")
    if args is not None and not isinstance(args, str):
        raise RuntimeError(f"profiler::{op}() Expected a value of type 'Optional[str]' for argument 'args' but "
                           f"instead found type '{type(args).__name__}'.")


def _enter_new(name, args=None):
    _check_name("_record_function_enter_new", name, args)
    return _RecordFunction(name)


def _enter(name, args=None):
    # torch's older form returns its handle as a Tensor; tensorlib hands back the same handle object as
    # _record_function_enter_new, which _record_function_exit takes alike
    _check_name("_record_function_enter", name, args)
    return _RecordFunction(name)


def _exit(handle) -> None:
    if not isinstance(handle, _RecordFunction):
        raise RuntimeError(f"profiler::_record_function_exit() Expected the handle that _record_function_enter or "
                           f"_record_function_enter_new returned for argument 'handle' but instead found type "
                           f"'{type(handle).__name__}'.")
    handle._range.__exit__(None, None, None)


class _Packet:
    """An OpOverloadPacket: callable, with its overloads as attributes (``.default``...) and ``overloads()``. Called
    on an FX Proxy (a trace, or a graph built from proxies), it is recorded as a call_function node, as torch's
    __torch_function__ records it; the graph's code names it ``tensorlib.ops.profiler.<name>``."""

    def __init__(self, qualified: str, fn, overloads: tuple[str, ...]):
        self._qualified = qualified
        self._fn = fn
        self._overloads = overloads
        self.__module__ = "tensorlib.ops.profiler"
        self.__name__ = qualified.rsplit(".", 1)[-1]
        for o in overloads:
            setattr(self, o, fn)

    def __call__(self, *args, **kwargs):
        fx = sys.modules.get("tensorlib.fx.proxy")      # no Proxy exists unless tensorlib.fx was imported
        if fx is not None:
            for a in (*args, *kwargs.values()):
                if isinstance(a, fx.Proxy):
                    return a.tracer.create_proxy("call_function", self, args, kwargs)
        return self._fn(*args, **kwargs)

    def overloads(self) -> list[str]:
        return list(self._overloads)

    def __repr__(self):
        return self._qualified


class _ProfilerNamespace:
    """torch.ops.profiler (torch._ops._OpNamespace)."""

    name = "profiler"
    _record_function_enter = _Packet("profiler._record_function_enter", _enter, ("default",))
    _record_function_enter_new = _Packet("profiler._record_function_enter_new", _enter_new, ("default",))
    _record_function_exit = _Packet("profiler._record_function_exit", _exit, ("default", "_RecordFunction"))

    def __getattr__(self, name):
        raise AttributeError(f"'_OpNamespace' 'profiler' object has no attribute '{name}'")

    def __repr__(self):
        return "<module 'torch.ops.profiler'>"


profiler = _ProfilerNamespace()
