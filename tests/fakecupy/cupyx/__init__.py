"""cupyx (fake): the few extras tensorlib uses. See cupy/__init__.py."""
from __future__ import annotations

import numpy

import cupy
from cupy import _api
from cupy._core import _elementwise_arg, _index, ndarray
from cupy.cuda.memory import alloc_pinned_memory

from . import scipy


def empty_pinned(shape, dtype=float, order="C"):
    """A NumPy array in page-locked host memory (its base is a PinnedMemoryPointer), as CuPy's."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = numpy.dtype(dtype)
    nbytes = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    mem = alloc_pinned_memory(nbytes)
    raw = numpy.asarray(mem)
    return raw[:nbytes].view(dtype).reshape(shape, order=order)


def zeros_pinned(shape, dtype=float, order="C"):
    out = empty_pinned(shape, dtype, order)
    out[...] = 0
    return out


def empty_like_pinned(a, dtype=None, order="K", subok=None, shape=None):
    return empty_pinned(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def scatter_add(a, slices, value):
    """a[slices] += value with repeated indices accumulating (cupyx.scatter_add): only the dtypes
    CuPy's atomicAdd kernel takes under FAKECUPY_RULES' major (no int8/int16/uint8/uint16/bool; no
    int64 on CuPy 13)."""
    if type(a) is not ndarray:
        raise TypeError(f"Unsupported type {type(a)}")
    check_scatter_add_dtype(a.dtype)
    numpy.add.at(a._a, _index(slices), _elementwise_arg(value))


def check_scatter_add_dtype(dtype):
    ok = _api.view()["semantics"]["scatter_add_dtypes"]
    if numpy.dtype(dtype).name not in ok:
        raise TypeError(f"scatter_add only supports {', '.join(ok)} as data type (CuPy {cupy.__version__}; "
                        f"got {numpy.dtype(dtype).name})")


def scatter_max(a, slices, value):
    numpy.maximum.at(a._a, _index(slices), _elementwise_arg(value))


def scatter_min(a, slices, value):
    numpy.minimum.at(a._a, _index(slices), _elementwise_arg(value))


def get_runtime_info(full=True):
    return f"CuPy Version : {cupy.__version__} (fake)"
