"""torch.multiprocessing.spawn / start_processes: run `fn(i, *args)` in `nprocs` processes; when one fails, the
others are terminated and the parent raises ProcessRaisedException with the child's traceback (or
ProcessExitedException with its exit code or signal). Follows torch/multiprocessing/spawn.py (BSD licence) case
for case: the child writes its formatted traceback to an error file the parent reads (text through safeio, in a
directory of the launch's own; a file, not a pipe, so that a long traceback cannot block the exiting child)."""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings

from safeio import read_bounded, write_bytes

__all__ = ["ProcessContext", "ProcessException", "ProcessExitedException", "ProcessRaisedException", "spawn",
           "SpawnContext", "start_processes"]

log = logging.getLogger(__name__)


class ProcessException(Exception):
    __slots__ = ["error_index", "error_pid"]

    def __init__(self, msg: str, error_index: int, error_pid: int):
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.error_pid = error_pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.error_pid)


class ProcessRaisedException(ProcessException):
    """A process failed by an exception its code raised."""


class ProcessExitedException(ProcessException):
    """A process failed by a signal or a non-zero exit code."""
    __slots__ = ["exit_code"]

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int, signal_name: str | None = None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.error_pid, self.exit_code, self.signal_name)


def _wrap(fn, i, args, error_file):
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass        # SIGINT: the parent is stopping us
    except Exception:       # noqa: BLE001  (any error of the user's function is reported to the parent)
        import traceback
        write_bytes(error_file, traceback.format_exc().encode("utf-8", "replace"), what="spawn error file")
        sys.exit(1)


class ProcessContext:
    def __init__(self, processes, error_files):
        self.error_files = error_files
        self._error_dir: str | None = None      # start_processes' directory of the error files
        self.processes = processes
        self.sentinels = {process.sentinel: index for index, process in enumerate(processes)}

    def pids(self):
        return [int(process.pid) for process in self.processes]

    def _join_procs_with_timeout(self, timeout: float):
        end = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0, end - time.monotonic()))

    def join(self, timeout: float | None = None, grace_period: float | None = None):
        """Wait for the processes (up to `timeout`); True once all have exited cleanly, False while some run.
        If one exited with a non-zero status, terminate the others (after `grace_period`, then SIGKILL) and raise
        the first failure's cause."""
        if len(self.sentinels) == 0:
            self._remove_error_files()
            return True
        ready = multiprocessing.connection.wait(self.sentinels.keys(), timeout=timeout)
        error_index = None
        for sentinel in ready:
            index = self.sentinels.pop(sentinel)
            process = self.processes[index]
            process.join()
            if process.exitcode != 0:
                error_index = index
                break
        if error_index is None:
            if self.sentinels:
                return False
            self._remove_error_files()
            return True
        if grace_period is not None:
            self._join_procs_with_timeout(grace_period)
        for process in self.processes:
            if process.is_alive():
                log.warning("Terminating process %s via signal SIGTERM", process.pid)
                process.terminate()
        self._join_procs_with_timeout(30 if grace_period is None else grace_period)
        for process in self.processes:
            if process.is_alive():
                log.warning("Unable to shutdown process %s via SIGTERM , forcefully exiting via SIGKILL", process.pid)
                process.kill()
            process.join()
        failed = self.processes[error_index]
        original_trace = None
        if os.access(self.error_files[error_index], os.R_OK):
            original_trace = read_bounded(self.error_files[error_index], what="spawn error file").decode(
                "utf-8", "replace")
        self._remove_error_files()
        if original_trace is None:
            exitcode = failed.exitcode
            if exitcode < 0:
                try:
                    name = signal.Signals(-exitcode).name
                except ValueError:
                    name = f"<Unknown signal {-exitcode}>"
                raise ProcessExitedException(f"process {error_index:d} terminated with signal {name}",
                                             error_index=error_index, error_pid=failed.pid, exit_code=exitcode,
                                             signal_name=name)
            raise ProcessExitedException(f"process {error_index:d} terminated with exit code {exitcode:d}",
                                         error_index=error_index, error_pid=failed.pid, exit_code=exitcode)
        msg = f"\n\n-- Process {error_index:d} terminated with the following error:\n" + original_trace
        raise ProcessRaisedException(msg, error_index, failed.pid)


    def _remove_error_files(self):
        if self._error_dir is not None:
            shutil.rmtree(self._error_dir, ignore_errors=True)
            self._error_dir = None


class SpawnContext(ProcessContext):
    def __init__(self, processes, error_files):
        warnings.warn("SpawnContext is renamed to ProcessContext since 1.4 release.", stacklevel=2)
        super().__init__(processes, error_files)


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """`fn(i, *args)` for i in range(nprocs), each in a process of `start_method`; with join, wait for all
    (raising the first failure), else return the ProcessContext."""
    mp = multiprocessing.get_context(start_method)
    error_dir = tempfile.mkdtemp(prefix="tensorlib-spawn-")
    error_files = [os.path.join(error_dir, f"process-{i}.txt") for i in range(nprocs)]
    processes = []
    for i in range(nprocs):
        process = mp.Process(target=_wrap, args=(fn, i, args, error_files[i]), daemon=daemon)
        process.start()
        processes.append(process)
    context = ProcessContext(processes, error_files)
    context._error_dir = error_dir
    if not join:
        return context
    try:
        while not context.join():
            pass
    finally:
        context._remove_error_files()
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """start_processes with the "spawn" start method (another one is used with torch's FutureWarning)."""
    if start_method != "spawn":
        warnings.warn(f"This method only supports start_method=spawn (got: {start_method}).\nTo use a different "
                      "start_method use:\n\t\t torch.multiprocessing.start_processes(...)", FutureWarning, stacklevel=2)
    return start_processes(fn, args, nprocs, join, daemon, start_method="spawn")
