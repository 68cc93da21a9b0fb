"""A launcher like torchrun, on MPI's: ``python -m tensorlib.distributed.run --nproc-per-node N script.py [args]``.

It starts ``mpiexec -n N`` (the mpich wheel's, or the first on PATH) with this module as each rank's agent.
An agent runs the script as its child, with torchrun's variables set (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT) and MPI's connection passed down, so the child joins
the job when it calls ``init_process_group``. The agent prefixes every line the child writes with
``[rank<r>]:`` (as torchrun's ``--log-line-prefix``), and when the child fails it says which rank died and how
(exit code, or the signal that killed it) and exits with that status: mpiexec then ends every other rank (if
it has not within a grace period, the launcher ends mpiexec: `_wait_for_job`) and the launcher exits with the
first failing rank's status (which the agents write to a file in a folder the
launcher names, since mpiexec's own code can be that of an agent it killed). The child dies with its agent
(PR_SET_PDEATHSIG), so no rank outlives the job. Ctrl-C reaches every process of the terminal's process
group, ranks included.

With more than one rank per host and OMP_NUM_THREADS unset, every rank gets OMP_NUM_THREADS=1, with
torchrun's warning: N ranks each running a BLAS or OpenMP pool as wide as the machine would ask for N times
its cores (NumPy's OpenBLAS reads OMP_NUM_THREADS too). Set OMP_NUM_THREADS to choose another count.

Across hosts, start the agents with mpiexec directly: ``mpiexec -hosts a,b -n 8 python -m
tensorlib.distributed.run script.py`` (a process started by mpiexec is an agent; --nnodes > 1 without it
is refused, since MPI forms the job, not a rendezvous at MASTER_ADDR).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

_STATUS_DIR = "TENSORLIB_RUN_STATUS_DIR"     # where agents write a failing rank's exit status
# a signalled rank's time to exit before its agent kills it (TENSORLIB_RUN_GRACE_S: the tests' shorter one)
_GRACE_S = float(os.environ.get("TENSORLIB_RUN_GRACE_S", "10"))


def _parser():
    p = argparse.ArgumentParser(prog="python -m tensorlib.distributed.run",
                                description="Run a training script on N ranks (mpiexec underneath).")
    p.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1, help="ranks on this host")
    p.add_argument("--nnodes", type=int, default=1, help="hosts (>1: start this module with mpiexec -hosts)")
    p.add_argument("--node-rank", "--node_rank", type=int, default=0, help="this host's index (GROUP_RANK)")
    p.add_argument("--master-addr", "--master_addr", default="127.0.0.1", help="set as MASTER_ADDR for the script")
    p.add_argument("--master-port", "--master_port", type=int, default=29500, help="set as MASTER_PORT")
    p.add_argument("script", help="the training script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return p


def _mpiexec():
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return exe if os.path.exists(exe) else shutil.which("mpiexec")


def _die_with_parent():
    """In the child, before exec: SIGKILL when the agent dies (Linux's PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _pump(src, dst, prefix):
    for line in iter(src.readline, b""):
        dst.write(prefix + line)
        dst.flush()
    src.close()


_OMP_WARNING = ("\n*****************************************\n"
                "Setting OMP_NUM_THREADS environment variable for each process to be {} in default, to avoid your "
                "system being overloaded, please further tune the variable for optimal performance in your "
                "application as needed. \n"
                "*****************************************")


def _default_threads(local_ranks: int, warn: bool = True):
    """torchrun's default: OMP_NUM_THREADS=1 for every rank when a host runs several and it is unset."""
    if "OMP_NUM_THREADS" not in os.environ and local_ranks > 1:
        if warn:
            print(_OMP_WARNING.format(1), file=sys.stderr, flush=True)
        os.environ["OMP_NUM_THREADS"] = "1"


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def agent(args) -> int:
    """One rank: run the script as a child with torchrun's variables and MPI's connection."""
    rank = int(os.environ["PMI_RANK"])
    world = int(os.environ.get("PMI_SIZE", "1"))
    local = int(os.environ.get("MPI_LOCALRANKID", rank))
    local_world = os.environ.get("MPI_LOCALNRANKS", str(args.nproc_per_node))
    _default_threads(int(local_world), warn=local == 0)     # agents started by mpiexec itself; one warning a host
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local),
               LOCAL_WORLD_SIZE=os.environ.get("MPI_LOCALNRANKS", str(args.nproc_per_node)),
               GROUP_RANK=str(args.node_rank), MASTER_ADDR=args.master_addr, MASTER_PORT=str(args.master_port),
               TENSORLIB_RUN_AGENT="1")
    fds = tuple(int(os.environ[k]) for k in ("PMI_FD",) if os.environ.get(k, "").isdigit())
    child = subprocess.Popen([sys.executable, "-u", args.script, *args.args], env=env, pass_fds=fds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    prefix = f"[rank{rank}]:".encode()
    pumps = [threading.Thread(target=_pump, args=(child.stdout, sys.stdout.buffer, prefix), daemon=True),
             threading.Thread(target=_pump, args=(child.stderr, sys.stderr.buffer, prefix), daemon=True)]
    for t in pumps:
        t.start()
    def forward(signum, frame):
        """Pass mpiexec's signal on; a child still alive after a grace period is killed (as torchrun escalates
        to SIGKILL): a rank blocked inside an MPI call (a barrier whose peer died) runs no Python signal
        handler, so a SIGINT alone left it, its agent and the job waiting for ever (a CI run timed out so)."""
        child.send_signal(signum)
        timer = threading.Timer(_GRACE_S, lambda: child.poll() is None and child.kill())
        timer.daemon = True
        timer.start()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, forward)
    code = child.wait()
    for t in pumps:
        t.join(timeout=5)
    if code != 0:
        status = 128 - code if code < 0 else code
        sys.stderr.write(f"tensorlib.distributed.run: rank {rank} (pid {child.pid}) {_how(code)}; ending the job\n")
        sys.stderr.flush()
        _report_failure(status)
        return status
    return 0


def _report_failure(status: int) -> None:
    """Tell the launcher this rank's status: mpiexec's own exit code is not always the first failing rank's
    (it can be that of an agent it killed while ending the job)."""
    folder = os.environ.get(_STATUS_DIR)
    if folder:
        try:
            fd = os.open(os.path.join(folder, "status"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.write(fd, f"{status}\n".encode())      # one short write: O_APPEND keeps ranks' lines whole
        finally:
            os.close(fd)


def _first_failure(folder: str, ranks: int):
    from safeio import InputError, read_bounded
    try:
        data = read_bounded(os.path.join(folder, "status"), what="rank status file", max_bytes=8 * ranks + 8)
    except (OSError, InputError):
        return None
    first = data.split(b"\n", 1)[0]
    return int(first) if first.isdigit() else None


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.nproc_per_node < 1:
        print("tensorlib.distributed.run: --nproc-per-node must be at least 1", file=sys.stderr)
        return 2
    if not os.path.isfile(args.script):
        print(f"tensorlib.distributed.run: no such script: {args.script!r}", file=sys.stderr)
        return 2
    if "PMI_RANK" in os.environ:        # started by mpiexec: this process is one rank's agent
        return agent(args)
    if args.nnodes != 1:
        print(f"tensorlib.distributed.run: --nnodes {args.nnodes}: MPI forms a multi-host job; start the agents with "
              f"`mpiexec -hosts HOST1,HOST2 -n TOTAL python -m tensorlib.distributed.run script.py`", file=sys.stderr)
        return 2
    _default_threads(args.nproc_per_node)
    exe = _mpiexec()
    if exe is None:
        print("tensorlib.distributed.run: mpiexec not found; pip install mpich (or install an MPI)", file=sys.stderr)
        return 2
    cmd = [exe, "-n", str(args.nproc_per_node), sys.executable, "-m", "tensorlib.distributed.run",
           "--nproc-per-node", str(args.nproc_per_node), "--node-rank", str(args.node_rank),
           "--master-addr", args.master_addr, "--master-port", str(args.master_port), args.script, *args.args]
    with tempfile.TemporaryDirectory(prefix="tensorlib-run-") as folder:
        os.environ[_STATUS_DIR] = folder
        job = subprocess.Popen(cmd)
        try:
            code = _wait_for_job(job, os.path.join(folder, "status"))
        except KeyboardInterrupt:
            job.kill()
            job.wait()
            return 130
        first = _first_failure(folder, args.nproc_per_node) if code != 0 else None
        return code if first is None else first


def _wait_for_job(job, status_file, grace_s=None, poll_s=0.2) -> int:
    """mpiexec's exit status. Once a rank has reported its failure (`status_file` exists), mpiexec has `grace_s`
    (the agents' grace and 5 s more) to end the other ranks; then it is sent SIGTERM, which it passes on to every
    process it started, and SIGKILL after as long again. A CI run once waited for ever on a job whose rank 0 was
    killed while rank 1 sat in a barrier: its agent reported, and mpiexec never ended the job."""
    grace_s = _GRACE_S + 5 if grace_s is None else grace_s
    failed_at = None
    signals = [signal.SIGTERM, signal.SIGKILL]
    while True:
        try:
            return job.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if failed_at is None:
            if os.path.exists(status_file):
                failed_at = now
        elif now - failed_at > grace_s and signals:
            sys.stderr.write(f"tensorlib.distributed.run: mpiexec has not ended the job {grace_s:g} s after a rank "
                             f"failed; sending it {signals[0].name}\n")
            sys.stderr.flush()
            job.send_signal(signals.pop(0))
            failed_at = now


if __name__ == "__main__":
    sys.exit(main())
