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
                  "all_to_all_single", "send recv", "objects", "new_group", "mismatch", "op mismatch",
                  "debug off", "timeout"):
        assert count_ok(p.stdout, check) == 2, (check, p.stdout, p.stderr)


def test_ddp_equals_single_process_training_on_two_ranks():
    p = run_job("job_ddp.py")
    assert p.returncode == 0, p.stdout + p.stderr
    for check in ("ddp equals single process", "gradient_as_bucket_view", "no_sync", "find_unused_parameters",
                  "unfinished reduction", "buffers", "sync batchnorm"):
        assert count_ok(p.stdout, check) == 2, (check, p.stdout, p.stderr)


def test_a_program_written_for_gloo_runs_on_two_ranks(tmp_path):
    """pytorch/examples' CPU path: init_process_group(get_default_backend_for_device(...)), i.e. "gloo", under
    MPI's launcher: the same collectives, the backend reported as gloo."""
    script = tmp_path / "gloo.py"
    script.write_text("import tensorlib as tl, tensorlib.distributed as dist\n"
                      "dist.init_process_group(backend=dist.get_default_backend_for_device('cpu'))\n"
                      "t = tl.ones(2) * (dist.get_rank() + 1)\n"
                      "dist.all_reduce(t)\n"
                      "print(f'OK gloo {dist.get_backend()} {t.tolist()}', flush=True)\n"   # one write per rank
                      "dist.destroy_process_group()\n")
    p = run_job(script)             # (an absolute path: HERE / script is the script)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("OK gloo gloo [3.0, 3.0]") == 2, p.stdout


def test_a_dying_rank_ends_the_job_with_a_nonzero_status(tmp_path):
    script = tmp_path / "die.py"
    script.write_text("import os, tensorlib as tl, tensorlib.distributed as dist\n"
                      "dist.init_process_group('mpi')\n"
                      "if dist.get_rank() == 1:\n    os._exit(3)\n"
                      "dist.all_reduce(tl.ones(4))\n")
    assert run_job(script).returncode != 0


def test_each_rank_writes_a_trace_with_distributed_info_and_comm_args(tmp_path):
    import json
    exe = mpiexec()
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([exe, "-n", "2", sys.executable, str(HERE / "job_profile.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60, env=e, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    files = sorted(tmp_path.glob("*.pt.trace.json"))
    assert [f.name.split(".")[0].rsplit("_", 1)[1] for f in files] == ["rank0", "rank1"], files
    for r, f in enumerate(files):
        text = f.read_text()
        assert f'"rank": {r}' in text         # spaced, as Kineto writes it: HTA's pattern for the rank
        doc = json.loads(text)
        info = doc["distributedInfo"]
        assert (info["backend"], info["rank"], info["world_size"]) == ("mpi", r, 2)
        ev = doc["traceEvents"]
        comms = [x for x in ev if x.get("name") == "record_param_comms"]
        assert comms and all(x["cat"] == "cpu_op" for x in comms)
        a = comms[0]["args"]
        assert a["Collective name"] == "allreduce" and a["Group size"] == 2 and a["dtype"] == "Float"
        assert a["Process Group Ranks"] == "[0, 1]" and a["In msg nelems"] == a["Out msg nelems"] > 0
        calls = [x for x in ev if x.get("name") == "c10d::allreduce_"]
        runs = [x for x in ev if x.get("name") == "mpi:all_reduce"]
        assert len(calls) == len(runs) == len(comms) >= 4
        # each record_param_comms encloses its mpi:all_reduce on the group's worker thread
        for c, m in zip(sorted(comms, key=lambda x: x["ts"]), sorted(runs, key=lambda x: x["ts"])):
            assert c["tid"] == m["tid"] and c["ts"] <= m["ts"] and m["ts"] + m["dur"] <= c["ts"] + c["dur"] + 1e-3
        # overlap: the first bucket's all-reduce is issued before the last backward op of its step ends
        main = calls[0]["tid"]
        assert runs[0]["tid"] != main
        bwd = [x for x in ev if x.get("tid") == main and x.get("name", "").startswith("autograd::engine")]
        first = min(calls, key=lambda x: x["ts"])
        assert any(b["ts"] > first["ts"] for b in bwd), "no backward work after the first all-reduce was issued"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:invalid value encountered in scalar divide:RuntimeWarning")   # HTA's NaN overlap
def test_hta_reads_the_ranks_of_a_job_directory(tmp_path):
    """HTA finds each file's rank and runs its comm/comp overlap per rank. On CPU traces the overlap is
    NaN: HTA measures it between GPU kernels, which an MPI job on CPUs has none of."""
    pytest.importorskip("hta")
    exe = mpiexec()
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([exe, "-n", "2", sys.executable, str(HERE / "job_profile.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60, env=e, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    from hta.trace_analysis import TraceAnalysis
    a = TraceAnalysis(trace_dir=str(tmp_path))
    assert sorted(a.t.traces) == [0, 1]
    overlap = a.get_comm_comp_overlap(visualize=False)
    assert sorted(overlap["rank"]) == [0, 1]
