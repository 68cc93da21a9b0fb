"""torch.set_num_threads / get_num_threads over the thread pools tensorlib's CPU kernels run on.

NumPy's matmul, einsum and linear algebra run on its BLAS (OpenBLAS, MKL, ...), which has its own pool;
threadpoolctl sets that pool (and any OpenMP pool a loaded library brings) for the whole process, as
torch's intra-op setting does. Elementwise NumPy kernels are single-threaded whatever the setting.
"""
from __future__ import annotations

import os

_USER_APIS = ("blas", "openmp")


def set_num_threads(int) -> None:
    n = int
    if not hasattr(n, "__index__"):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    n = n.__index__()
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    from threadpoolctl import threadpool_limits
    from . import _blas, _dnnl
    _blas.available()       # MKL and oneDNN (where installed) loaded first, so that the limit reaches their pools too
    _dnnl.available()
    threadpool_limits(limits=n, user_api=None)
    global _known
    _known = n


def get_num_threads() -> int:
    """The largest pool among the loaded BLAS/OpenMP libraries (the one matmul uses)."""
    from threadpoolctl import threadpool_info
    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") in _USER_APIS]
    global _known
    _known = max(pools) if pools else (os.cpu_count() or 1)
    return _known


_known: int | None = None       # the last number set or read here


def known_num_threads() -> int:
    """get_num_threads() as last set or read here (read once if never): for a kernel's choice between paths that
    depends on it (cat's, as torch's), which cannot pay threadpoolctl's query (~1 ms) a call."""
    return _known if _known is not None else get_num_threads()


_interop_threads: int | None = None      # set once, as torch's (which refuses a second setting)


def set_num_interop_threads(int) -> None:
    """torch.set_num_interop_threads: torch's inter-op pool runs independent ops of a TorchScript graph
    in parallel; tensorlib runs ops one after another (NumPy and CuPy have no such pool), so the number
    is kept for get_num_interop_threads and used by nothing. Checked and settable once, as torch's."""
    global _interop_threads
    n = int
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise RuntimeError(f"set_num_interop_threads expects an int, but got {type(n).__name__}")
    n = n.__index__()
    if n <= 0:
        raise RuntimeError("set_num_interop_threads expects a positive integer")
    if _interop_threads is not None:
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has started or "
                           "set_num_interop_threads called")
    _interop_threads = n


def get_num_interop_threads() -> int:
    """The number set by set_num_interop_threads; torch's default (the number of CPUs) before."""
    return _interop_threads if _interop_threads is not None else (os.cpu_count() or 1)
