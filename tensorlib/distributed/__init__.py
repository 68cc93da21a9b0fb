"""torch.distributed, before tensorlib has a transport (the distributed issue builds MPI and NCCL backends).

The imports a training script makes work, and its checks answer as torch's do in a process that has not
joined a group: `is_available()` is True (the package is there), `is_initialized()` is False, and every
call that needs the default group raises torch's ValueError. `init_process_group` refuses plainly, saying
that no backend exists yet, instead of pretending to join one.
"""
from __future__ import annotations

__all__ = ["is_available", "is_initialized", "is_mpi_available", "is_nccl_available", "is_gloo_available",
           "init_process_group", "destroy_process_group", "get_rank", "get_world_size", "get_backend",
           "barrier", "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter", "send", "recv", "isend", "irecv",
           "all_to_all_single", "broadcast_object_list", "all_gather_object", "new_group", "ReduceOp"]

_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


def is_available() -> bool:
    return True


def is_initialized() -> bool:
    return False


def is_mpi_available() -> bool:
    return False


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    return False


class ReduceOp:
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    raise RuntimeError("tensorlib.distributed has no communication backend yet (MPI and NCCL backends are "
                       "planned); run the script as a single process, without init_process_group")


def _needs_group(name):
    def call(*args, **kwargs):
        raise ValueError(_NOT_INITIALIZED)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"torch.distributed.{name}: needs an initialized process group, which tensorlib cannot make yet."
    return call


for _name in ("destroy_process_group", "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce",
              "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
              "reduce_scatter_tensor", "gather", "scatter", "send", "recv", "isend", "irecv",
              "all_to_all_single", "broadcast_object_list", "all_gather_object", "new_group"):
    globals()[_name] = _needs_group(_name)
del _name
