"""A FAKE CuPy for tests: NumPy on the CPU behind CuPy's API, so tensorlib's and the profiler's CUDA
code paths run (and are checked) on machines without a GPU.

Put tests/fakecupy on sys.path (PYTHONPATH=tests/fakecupy) and `import cupy` gets this. It is strict
where real CuPy is strict (see `cupy._core`: no implicit host conversion, host arrays refused as
operands, 0-d arrays instead of NumPy scalars), and it keeps the bookkeeping the profiler reads:
every array's buffer is a pool allocation (`cupy.get_default_memory_pool()`, 512-byte rounding,
malloc/free hooks with CuPy's keyword signatures, `cupy.cuda.set_allocator`), freed when the buffer
is garbage collected. Asynchrony and devices are simulated (`cupy.cuda._sim`): a queue per stream
with a device clock, so events complete only when the host has waited for them; FAKECUPY_DEVICES
devices (default 1), a current device per thread, arrays on the device that was current when they
were made, and CuPy's ValueError for an operand on another device.

Names and signatures are the real CuPy's (`cupy._api`: a table generated from the wheels), under
the rules of the major FAKECUPY_RULES names (13 or 14, default 14): a name CuPy lacks raises
AttributeError, an argument CuPy's signature lacks raises TypeError, `cupyx.scatter_add` takes that
major's dtypes only.

Not simulated: the kernels themselves (NumPy computes at once; only their timing is queued), CUPTI,
NVTX, cuBLAS/cuDNN.
`cupy.__fake__` is True so test setup can tell it apart from the real thing.
"""
from __future__ import annotations

import numpy

from . import _api, _namespace
from ._core import ndarray, ufunc

__fake__ = True
__version__ = _api.view()["version"]

from . import cuda, random
from .cuda.memory import get_default_memory_pool, get_default_pinned_memory_pool


def is_available():
    return True


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if type(a) is ndarray:
        return a.get(stream=stream, order=order, out=out)
    r = numpy.asarray(a, order=order)
    if out is not None:
        out[...] = r
        return out
    return r


def get_array_module(*args):
    return _this if any(type(a) is ndarray for a in args) else numpy


def from_dlpack(array, *, device=None, copy=None):
    if type(array) is ndarray:
        return array.view()
    raise TypeError(f"fake cupy: from_dlpack supports cupy arrays only, got {type(array)}")


fromDlpack = from_dlpack


def _make(name):
    v = _namespace.make(name)
    globals()[name] = v
    return v


def __getattr__(name):
    return _make(name)


import sys as _sys  # noqa: E402
_this = _sys.modules[__name__]
