"""cupy.<name> for NumPy's functions: each forwards to NumPy with cupy arrays unwrapped (host arrays
refused) and the results wrapped; NumPy's ufuncs become `cupy.ufunc`s. Names CuPy does not provide
are listed in MISSING and raise AttributeError, as on CuPy."""
from __future__ import annotations

import functools
import types

import numpy

from ._core import _unwrap, _wrap, ufunc

# NumPy names that are not part of CuPy's namespace (object/string machinery, host I/O, legacy API)
MISSING = frozenset({
    "asmatrix", "matrix", "bmat", "recarray", "record", "rec", "char", "chararray", "ma", "ctypeslib",
    "frompyfunc", "vectorize", "piecewise", "apply_over_axes", "fromregex", "genfromtxt", "loadtxt",
    "savetxt", "save", "savez", "savez_compressed", "load", "memmap", "fromfile", "tofile", "nditer",
    "nested_iters", "busday_count", "busday_offset", "is_busday", "datetime_as_string", "datetime_data",
    "setbufsize", "getbufsize", "seterrcall", "geterrcall", "set_printoptions", "get_printoptions",
    "printoptions", "testing", "polynomial", "emath", "object_", "str_", "bytes_", "void", "datetime64",
    "timedelta64", "strings", "dtypes", "exceptions", "typing", "f2py", "distutils", "test",
})

# functions that move host data to the device on purpose: NumPy arrays are accepted (and copied)
EXPLICIT = frozenset({"array", "asarray", "asanyarray"})

UFUNCS: dict[str, ufunc] = {n: ufunc(getattr(numpy, n)) for n in dir(numpy)
                            if isinstance(getattr(numpy, n, None), numpy.ufunc)}
UFUNCS["true_divide"] = UFUNCS["divide"]
UFUNCS["abs"] = UFUNCS["absolute"]


def _forward(fn, name):
    explicit = name in EXPLICIT

    @functools.wraps(fn)
    def f(*args, **kwargs):
        a = _unwrap(args, explicit)
        kw = {k: _unwrap(v, explicit) for k, v in kwargs.items()}
        with numpy.errstate(all="ignore"):     # GPU arithmetic never warns about inf/nan
            r = fn(*a, **kw)
        return _wrap(r, tuple(args) + tuple(kwargs.values()))
    f.__module__ = "cupy"
    return f


def make(name, source=numpy, prefix="cupy"):
    """The cupy object for NumPy's `source.<name>` (AttributeError where CuPy has none)."""
    if name in MISSING or name.startswith("_"):
        raise AttributeError(f"module '{prefix}' has no attribute '{name}'")
    obj = getattr(source, name)          # AttributeError for names NumPy lacks too
    if isinstance(obj, numpy.ufunc):
        return UFUNCS[name]
    if isinstance(obj, types.ModuleType):
        return submodule(obj, f"{prefix}.{name}")
    if isinstance(obj, type) or not callable(obj):
        return obj                        # dtypes and scalar types are NumPy's own in CuPy; constants
    return _forward(obj, name)


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
