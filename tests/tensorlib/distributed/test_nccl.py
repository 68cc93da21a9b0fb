"""The NCCL backend on 2 ranks (mpiexec from the mpich wheel; CuPy's cupy.cuda.nccl, or the fake CuPy's under
FAKECUPY_RULES, whose ranks meet at a bootstrap root as NCCL's do): every collective against NumPy, the
wrong-device and mismatch errors, and DDP on NCCL equal to one process's training (job_nccl.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .test_mpi import HERE, ROOT, count_ok, mpiexec

pytest.importorskip("mpi4py", reason="the NCCL backend is launched by MPI (pip install mpi4py mpich)")

pytestmark = pytest.mark.cuda


def _env():
    import tensorlib as tl
    cp = tl._device.cupy()
    paths = [str(ROOT)]
    if getattr(cp, "__fake__", False):
        paths.append(str(ROOT / "tests" / "fakecupy"))
    # a GPU machine's own mpiexec may be Open MPI, which refuses root without these (the mpich wheel ignores them)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
                OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def test_nccl_collectives_and_ddp_on_two_ranks():
    import tensorlib.distributed as dist
    if not dist.is_nccl_available():
        pytest.skip("CuPy has no NCCL library here (pip install nvidia-nccl-cu12)")
    import tensorlib as tl
    if not getattr(tl._device.cupy(), "__fake__", False) and tl.cuda.device_count() < 2:
        pytest.skip(f"NCCL needs a GPU per rank (it refuses two ranks on one device): 2 ranks, "
                    f"{tl.cuda.device_count()} GPU here")
    p = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(HERE / "job_nccl.py")], capture_output=True,
                       text=True, timeout=180, env=_env(), cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    for check in ("all_reduce", "broadcast reduce", "all_gather", "reduce_scatter", "gather scatter",
                  "all_to_all_single", "send recv", "objects", "errors", "ddp on nccl", "profiled"):
        assert count_ok(p.stdout, check) == 2, (check, p.stdout, p.stderr)


def test_a_cuda_tensor_on_the_mpi_backend_gives_torchs_error():
    import tensorlib as tl
    import tensorlib.distributed as dist
    dist.init_process_group("mpi")
    try:
        with pytest.raises(RuntimeError, match="CUDA tensor detected and the MPI used doesn't have CUDA-aware MPI"):
            dist.all_reduce(tl.ones(3, device="cuda"))
    finally:
        dist.destroy_process_group()


def test_nccl_group_of_one_rank_in_process():
    """A 1-rank NCCL job in this process: the unique id, the communicator on the tensor's device, the
    records with Kineto's args, a CPU tensor refused with torch's message."""
    import numpy as np

    import tensorlib as tl
    import tensorlib.distributed as dist
    if not dist.is_nccl_available():
        pytest.skip("CuPy has no NCCL library here")
    dist.init_process_group("nccl")
    try:
        t = tl.tensor(np.arange(4.0), device="cuda")
        w = dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True)
        w.wait()
        assert t.cpu().numpy().tolist() == [0.0, 1.0, 2.0, 3.0]
        title, args = dist.collective_records()[-1][3:]
        assert title == "nccl:all_reduce" and args["Collective name"] == "allreduce" and args["dtype"] == "Double"
        with pytest.raises(RuntimeError, match="^No backend type associated with device type cpu$"):
            dist.broadcast(tl.ones(2), src=0)
        assert dist.get_backend() == "nccl"
    finally:
        dist.destroy_process_group()
