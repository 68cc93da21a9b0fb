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
    from . import _blas
    _blas.available()       # MKL (where installed) loaded first, so that the limit reaches its pool too
    threadpool_limits(limits=n, user_api=None)


def get_num_threads() -> int:
    """The largest pool among the loaded BLAS/OpenMP libraries (the one matmul uses)."""
    from threadpoolctl import threadpool_info
    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") in _USER_APIS]
    return max(pools) if pools else (os.cpu_count() or 1)
