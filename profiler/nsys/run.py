"""``python -m profiler nsys``: profile a script under Nsight Systems with tensorlib's NVTX ranges
switched on, then export and convert the capture, so one command gives a trace our viewer opens.

The steps are plain functions (find, build the command lines, run) so they can be tested with a
fake ``nsys`` on PATH; nothing here needs a GPU.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from profiler.nsys.convert import import_nsys
from profiler.nsys.schema import NsysImportError

DEFAULT_TRACE = "--trace=cuda,nvtx,osrt"
DEFAULT_CAPTURE_RANGE = "--capture-range=cudaProfilerApi"
INSTALL_FOLDERS = (
    "/opt/nvidia/nsight-systems/*/bin",
    "/opt/nvidia/nsight-systems-cli/*/bin",
    "/usr/local/cuda/bin",
    "/usr/local/cuda-*/bin",
    "/usr/lib/nsight-systems/bin",
)
INSTALL_HINT = (
    "install Nsight Systems (NVIDIA's nsight-systems-cli package, or the one bundled with the CUDA "
    "toolkit) or set NSYS=/path/to/nsys"
)


class NsysError(NsysImportError):
    """nsys itself is missing or failed."""


def _newest_first(paths: list[str]) -> list[str]:
    def key(path: str) -> list[int]:
        return [int(part) for part in "".join(c if c.isdigit() else " " for c in path).split()]

    return sorted(paths, key=key, reverse=True)


def find_nsys(environ: Mapping[str, str] | None = None) -> str:
    """$NSYS, then PATH, then the usual install folders (newest version first)."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("NSYS")
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise NsysError(f"NSYS={explicit} is not an executable file")
    on_path = shutil.which("nsys", path=environ.get("PATH", ""))
    if on_path:
        return on_path
    for pattern in INSTALL_FOLDERS:
        for folder in _newest_first(glob.glob(pattern)):
            candidate = os.path.join(folder, "nsys")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    searched = ", ".join(("$NSYS", "PATH", *INSTALL_FOLDERS))
    raise NsysError(f"nsys (Nsight Systems CLI) not found in {searched}; {INSTALL_HINT}")


def _given(options: Sequence[str], short: str, long: str) -> bool:
    for option in options:
        if option in (short, long) or option.startswith(long + "="):
            return True
        if option.startswith(short) and not option.startswith("--") and len(option) > len(short):
            return True
    return False


def profile_command(nsys: str, name: str, nsys_options: Sequence[str], program: Sequence[str]) -> list[str]:
    """``nsys profile`` with our defaults unless the caller set that option already."""
    defaults = []
    if not _given(nsys_options, "-t", "--trace"):
        defaults.append(DEFAULT_TRACE)
    if not _given(nsys_options, "-c", "--capture-range"):
        defaults.append(DEFAULT_CAPTURE_RANGE)
    if not _given(nsys_options, "-f", "--force-overwrite"):
        defaults.append("--force-overwrite=true")
    return [nsys, "profile", *defaults, *nsys_options, f"--output={name}", *program]


def export_command(nsys: str, report: Path, sqlite_path: Path) -> list[str]:
    return [nsys, "export", "--type=sqlite", "--force-overwrite=true", f"--output={sqlite_path}", str(report)]


def profile_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The profiled script's environment: tensorlib's import registers the NVTX hook (profiler.nvtx)."""
    env = dict(os.environ if environ is None else environ)
    env["TENSORLIB_NVTX"] = "1"
    return env


@dataclass
class NsysRun:
    report: Path
    sqlite: Path
    trace: Path
    returncode: int  # the profiled program's status as nsys reported it
    events: int


def _report_of(name: str) -> Path | None:
    for suffix in (".nsys-rep", ".qdrep"):  # .qdrep before Nsight Systems 2021.4
        path = Path(name + suffix)
        if path.is_file():
            return path
    return None


def run_nsys(
    program: Sequence[str],
    name: str = "nsys-profile",
    nsys_options: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> NsysRun:
    """Profiles ``program``, exports ``NAME.sqlite`` and writes ``NAME.pt.trace.json``."""
    if not program:
        raise NsysError("no program to profile: put it after `--`, e.g. `-- python train.py`")
    nsys = find_nsys(environ)
    for stale in (name + ".nsys-rep", name + ".qdrep"):
        Path(stale).unlink(missing_ok=True)  # so a failed run cannot pass off an old report as its own
    profiled = subprocess.run(profile_command(nsys, name, nsys_options, program), env=profile_environment(environ))
    report = _report_of(name)
    if report is None:
        hint = ""
        if not _given(nsys_options, "-c", "--capture-range"):
            hint = (
                "; with --capture-range=cudaProfilerApi nothing is captured unless the script calls "
                "cudaProfilerStart (wrap the steps in profiler.nvtx.cuda_profiler_range()), "
                "or pass --capture-range=none"
            )
        raise NsysError(f"nsys profile (exit status {profiled.returncode}) wrote no report {name}.nsys-rep{hint}")
    sqlite_path = Path(name + ".sqlite")
    exported = subprocess.run(export_command(nsys, report, sqlite_path), capture_output=True, text=True)
    if exported.returncode != 0 or not sqlite_path.is_file():
        detail = (exported.stderr or exported.stdout).strip().splitlines()
        raise NsysError(
            f"nsys export of {report} failed (exit status {exported.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )
    trace_path = Path(name + ".pt.trace.json")
    trace = import_nsys(sqlite_path, trace_path)
    return NsysRun(report, sqlite_path, trace_path, profiled.returncode, trace["eventCount"])
