"""Real 2-rank MPI jobs (mpiexec from the mpich wheel): collectives against NumPy, DDP against one process.

Each job is a script beside this file that asserts as it goes and prints an OK line per check; the test
runs it under `mpiexec -n 2` and requires every rank's OK lines and a zero exit status."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason="tensorlib.distributed's MPI backend needs mpi4py (pip install mpi4py mpich)")

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


def mpiexec():
    exe = Path(sys.executable).with_name("mpiexec")
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def run_job(script, n=2, timeout=60, env=None):
    exe = mpiexec()
    if exe is None:
        pytest.fail("mpiexec not found: pip install mpich (the MPI wheel) beside mpi4py")
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    e.update(env or {})
    return subprocess.run([exe, "-n", str(n), sys.executable, str(HERE / script)], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=ROOT)


def count_ok(out, check):
    """How many ranks printed `OK <check>` (no check's name contains another's: the ranks' lines may
    interleave within mpiexec's output, so this counts occurrences, not lines)."""
    return out.count(f"OK {check}")


def test_collectives_match_numpy_on_two_ranks():
    p = run_job("job_collectives.py")
    assert p.returncode == 0, p.stdout + p.stderr
    for check in ("all_reduce", "broadcast reduce", "all_gather", "reduce_scatter", "gather scatter",
                  "all_to_all_single", "send recv", "objects", "new_group", "mismatch"):
        assert count_ok(p.stdout, check) == 2, (check, p.stdout, p.stderr)


def test_ddp_equals_single_process_training_on_two_ranks():
    p = run_job("job_ddp.py")
    assert p.returncode == 0, p.stdout + p.stderr
    for check in ("ddp equals single process", "no_sync", "find_unused_parameters", "unfinished reduction",
                  "buffers"):
        assert count_ok(p.stdout, check) == 2, (check, p.stdout, p.stderr)


def test_a_dying_rank_ends_the_job_with_a_nonzero_status(tmp_path):
    script = tmp_path / "die.py"
    script.write_text("import os, tensorlib as tl, tensorlib.distributed as dist\n"
                      "dist.init_process_group('mpi')\n"
                      "if dist.get_rank() == 1:\n    os._exit(3)\n"
                      "dist.all_reduce(tl.ones(4))\n")
    exe = mpiexec()
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([exe, "-n", "2", sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                       env=e, cwd=ROOT)
    assert p.returncode != 0
