"""cupy.<name> for NumPy's functions: each forwards to NumPy with cupy arrays unwrapped (host arrays
refused) and the results wrapped; NumPy's ufuncs become `cupy.ufunc`s. Only the names the real CuPy
has (cupy._api: the table generated from its wheels, under FAKECUPY_RULES' major) exist, and each
call must fit CuPy's signature of that name: NumPy's extra keywords raise TypeError, as on CuPy."""
from __future__ import annotations

import functools
import types

import numpy

from . import _api
from ._core import _unwrap, _wrap, ufunc
from .cuda import _sim

# functions that move host data to the device on purpose: NumPy arrays are accepted (and copied)
EXPLICIT = frozenset({"array", "asarray", "asanyarray"})

UFUNCS: dict[str, ufunc] = {n: ufunc(getattr(numpy, n)) for n in dir(numpy)
                            if isinstance(getattr(numpy, n, None), numpy.ufunc)}
UFUNCS["true_divide"] = UFUNCS["divide"]
UFUNCS["abs"] = UFUNCS["absolute"]


def _forward(fn, name, prefix):
    explicit = name in EXPLICIT

    @functools.wraps(fn)
    def f(*args, **kwargs):
        _api.check_call(prefix, name, args, kwargs)
        if prefix == "cupy":
            _sim.inside(name, args, kwargs)      # the waits CuPy makes inside (nonzero, unique, ...)
        a = _unwrap(args, explicit)
        kw = {k: _unwrap(v, explicit) for k, v in kwargs.items()}
        with numpy.errstate(all="ignore"):     # GPU arithmetic never warns about inf/nan
            r = fn(*a, **kw)
        return _wrap(r, tuple(args) + tuple(kwargs.values()))
    f.__module__ = "cupy"
    return f


def make(name, source=numpy, prefix="cupy"):
    """The cupy object for NumPy's `source.<name>` (AttributeError where CuPy has none)."""
    if not _api.has(prefix, name):
        raise AttributeError(f"module '{prefix}' has no attribute '{name}'")
    try:
        obj = getattr(source, name)
    except AttributeError:
        raise AttributeError(f"fake cupy: {prefix}.{name} (CuPy has it, NumPy does not) is not simulated; "
                             f"add it to tests/fakecupy") from None
    if isinstance(obj, numpy.ufunc):
        return UFUNCS[name]
    if isinstance(obj, types.ModuleType):
        return submodule(obj, f"{prefix}.{name}")
    if isinstance(obj, type) or not callable(obj):
        return obj                        # dtypes and scalar types are NumPy's own in CuPy; constants
    return _forward(obj, name, prefix)


class submodule(types.ModuleType):
    """cupy.linalg, cupy.fft, cupy.lib.stride_tricks, ...: NumPy's module behind the same walls."""

    def __init__(self, mod, name):
        super().__init__(name)
        self._mod = mod

    def __getattr__(self, name):
        v = make(name, self._mod, self.__name__)
        setattr(self, name, v)
        return v


def lookup(func):
    """The cupy function NEP 18 dispatches `func` (a NumPy function) to, or None (NotImplemented):
    the name looked up in the cupy module mirroring func's module, as CuPy's __array_function__ does."""
    import cupy
    mod = cupy
    for part in (func.__module__ or "numpy").split(".")[1:]:
        if part.startswith("_"):
            break
        mod = getattr(mod, part, None)
        if mod is None:
            return None
    try:
        f = getattr(mod, func.__name__)
    except AttributeError:
        return None
    return None if f is func else f
