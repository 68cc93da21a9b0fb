"""torch.multiprocessing: Python's multiprocessing, with tensors that cross processes by shared memory, and
`spawn` / `start_processes` (torch's process launcher: `fn(i, *args)` in each process, a child's exception raised
in the parent with its traceback).

A tensor put on a multiprocessing queue, or passed to a Process started by "spawn" or "forkserver", is sent as
the file descriptor of its shared memory (Tensor.share_memory_, which sending does first, as torch's does: the
sender's tensor then lives in shared memory too), so both processes see one set of values: Hogwild training
(`model.share_memory()`, then workers updating it) works as with torch. A child made by "fork" inherits the
shared mapping itself. The reductions are registered with multiprocessing's own pickler (`ForkingPickler`),
which only carries data between a program's processes: `pickle` and `tensorlib.load` still refuse tensors.
CUDA tensors are refused with a clear error (CuPy's IPC handles are not wired here)."""
from __future__ import annotations

import multiprocessing
from multiprocessing import *  # noqa: F401,F403 - torch.multiprocessing re-exports Python's module
from multiprocessing.reduction import ForkingPickler

from .reductions import init_reductions
from .spawn import (ProcessContext, ProcessException, ProcessExitedException, ProcessRaisedException,  # noqa: F401
                    SpawnContext, spawn, start_processes)

__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies", "init_reductions",
           "spawn", "start_processes", "ProcessContext", "ProcessException", "ProcessExitedException",
           "ProcessRaisedException", "SpawnContext", "ForkingPickler"] + list(multiprocessing.__all__)

_SHARING = "file_descriptor"


def get_all_sharing_strategies() -> set:
    """The ways tensors can be shared: by file descriptor (a memfd's), the only one here ("file_system", torch's
    named shared-memory files, is not implemented: set_sharing_strategy refuses it)."""
    return {"file_descriptor"}


def get_sharing_strategy() -> str:
    return _SHARING


def set_sharing_strategy(new_strategy: str) -> None:
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"sharing strategy {new_strategy!r} is not supported by tensorlib.multiprocessing "
                         f"(supported: 'file_descriptor'); tensors are shared by their memfd's file descriptor")
    global _SHARING
    _SHARING = new_strategy


init_reductions()
