"""Finds the NVTX C headers and compiles the recorder tool, so tests can attach a real NVTX tool
to a Python process without Nsight Systems."""

from __future__ import annotations

import glob
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("nvtx_recorder.c")
HEADERS_HINT = (
    "NVTX C headers (nvtx3/nvToolsExt.h) not found: pip install nvidia-nvtx-cu12 (the test extra "
    "should carry it), install the CUDA toolkit, or set NVTX_INCLUDE_DIR to the folder holding nvtx3/"
)


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("NVTX_INCLUDE_DIR"):
        found.append(Path(os.environ["NVTX_INCLUDE_DIR"]))
    roots = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        roots.append(site.getusersitepackages())
    roots.extend(p for p in sys.path if p.endswith("site-packages"))
    found.extend(Path(root) / "nvidia" / "nvtx" / "include" for root in roots)  # nvidia-nvtx-cu12 wheel
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home:
        found.append(Path(cuda_home) / "include")
    found.extend(Path(p) for p in ["/usr/local/cuda/include", *sorted(glob.glob("/usr/local/cuda-*/include"))])
    found.append(Path("/usr/include"))
    return found


def find_nvtx_include() -> Path | None:
    """The first folder holding ``nvtx3/nvToolsExt.h``: env override, the wheel, then a CUDA toolkit."""
    for folder in _candidates():
        if (folder / "nvtx3" / "nvToolsExt.h").is_file():
            return folder
    return None


def find_compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_recorder(out_dir: Path, compiler: str, include: Path) -> Path:
    """Compiles nvtx_recorder.c into ``out_dir``; raises with the compiler's output on failure."""
    library = Path(out_dir) / "libnvtx_recorder.so"
    command = [compiler, "-shared", "-fPIC", "-O1", "-Wall", f"-I{include}",
               str(SOURCE), "-o", str(library), "-lpthread"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the NVTX recorder failed: {' '.join(command)}\n{result.stderr}")
    return library
