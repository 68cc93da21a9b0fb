"""python -m tensorlib.distributed.run: ranks' output prefixed, and a rank that dies (exception, os._exit,
signal) ends the job within seconds with a non-zero status that says which rank and how. Each case starts
a 2-rank job (several seconds on a loaded 2-core machine): marked slow."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason="the launcher runs mpiexec (pip install mpi4py mpich)")

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = '''
import os, sys
import tensorlib as tl, tensorlib.distributed as dist
dist.init_process_group()
t = tl.ones(2) * (dist.get_rank() + 1)
dist.all_reduce(t)
print("rank", os.environ["RANK"], "of", os.environ["WORLD_SIZE"], t.tolist())
print("threads", os.environ.get("OMP_NUM_THREADS"), tl.get_num_threads())
mode = sys.argv[1]
if dist.get_rank() == 1 and mode == "raise":
    raise ValueError("boom")
if dist.get_rank() == 1 and mode == "exit":
    os._exit(3)
if dist.get_rank() == 0 and mode == "kill":
    os.kill(os.getpid(), 9)
dist.barrier()
'''


def launch(tmp_path, mode, threads=None):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    return subprocess.run([sys.executable, "-m", "tensorlib.distributed.run", "--nproc-per-node", "2", str(script),
                           mode], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_ranks_run_with_torchruns_variables_and_prefixed_output(tmp_path):
    p = launch(tmp_path, "ok")
    assert p.returncode == 0, p.stderr
    assert "[rank0]:rank 0 of 2 [3.0, 3.0]" in p.stdout and "[rank1]:rank 1 of 2 [3.0, 3.0]" in p.stdout
    # as torchrun: one BLAS/OpenMP thread per rank by default, and a warning saying so, once
    assert "[rank0]:threads 1 1" in p.stdout and "[rank1]:threads 1 1" in p.stdout, p.stdout
    assert p.stderr.count("Setting OMP_NUM_THREADS environment variable for each process to be 1") == 1, p.stderr


@pytest.mark.slow
def test_a_thread_count_the_user_set_is_kept(tmp_path):
    p = launch(tmp_path, "ok", threads="2")
    assert p.returncode == 0, p.stderr
    assert "[rank0]:threads 2 2" in p.stdout and "[rank1]:threads 2 2" in p.stdout, p.stdout
    assert "Setting OMP_NUM_THREADS" not in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode, code, says", [
    ("exit", 3, "rank 1 (pid"), ("kill", 137, "was killed by signal SIGKILL"),
    ("raise", 1, "[rank1]:ValueError: boom")])
def test_a_dying_rank_ends_the_job(tmp_path, mode, code, says):
    p = launch(tmp_path, mode)
    assert p.returncode == code, (p.stdout, p.stderr)
    assert says in p.stderr


def test_bad_launcher_arguments_are_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tensorlib.distributed.run", "--nnodes", "2", __file__],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and "mpiexec -hosts" in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([sys.executable, "-m", "tensorlib.distributed.run", str(tmp_path / "absent.py")],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and "no such script" in p.stderr


def test_a_rank_that_outlives_its_agents_signal_is_killed(tmp_path, monkeypatch):
    """An agent passes mpiexec's SIGTERM/SIGINT on to its rank; a rank that does not exit (blocked in an MPI
    call, where no Python handler runs; here one that ignores the signal) is killed after the grace period,
    so the job ends instead of waiting for ever. The agent runs alone here (PMI_RANK set, no mpiexec)."""
    script = tmp_path / "stuck.py"
    script.write_text("import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\ntime.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PMI_RANK="0", PMI_SIZE="1", TENSORLIB_RUN_GRACE_S="1")
    p = subprocess.Popen([sys.executable, "-m", "tensorlib.distributed.run", str(script)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "[rank0]:ready\n"
        p.send_signal(15)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 137 and "rank 0 (pid" in err and "was killed by signal SIGKILL" in err, err


@pytest.mark.parametrize("ignores_term", [False, True])
def test_a_job_mpiexec_does_not_end_is_ended(tmp_path, ignores_term):
    """Once a rank has reported its failure, the launcher gives mpiexec a grace period to end the other ranks,
    then sends it SIGTERM, and SIGKILL after as long again (a CI run once waited for ever on a job whose
    failing rank had reported and whose mpiexec never ended the others). A stand-in for mpiexec that ignores
    the failure and, in the second case, SIGTERM; without a failure reported, a job is left to end itself."""
    import signal
    import time
    from tensorlib.distributed import run
    status = tmp_path / "status"
    quick = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    assert run._wait_for_job(quick, str(status), grace_s=0.1, poll_s=0.05) == 0     # no failure: not ended early
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignores_term else "") + \
        "print('up', flush=True)\ntime.sleep(60)\n"
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline() == "up\n"
        status.write_text("137\n")
        t0 = time.monotonic()
        rc = run._wait_for_job(job, str(status), grace_s=0.3, poll_s=0.05)
        took = time.monotonic() - t0
    finally:
        job.kill()
        job.wait()
    assert rc == (-signal.SIGKILL if ignores_term else -signal.SIGTERM)
    assert took < 20
