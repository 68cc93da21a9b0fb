"""torch.version: `__version__`, and `cuda` / `hip` / `rocm` / `xpu` / `git_version` / `debug` as torch's module
has them. `cuda` is the CUDA runtime version CuPy was built for ("13.0"), read on first use (CuPy imported then,
never at `import tensorlib`); None where CuPy is not installed, as torch's CPU builds say None."""
from __future__ import annotations

from typing import Optional

__all__ = [  # noqa: F822  (cuda: module __getattr__)
    "__version__", "cuda", "debug", "git_version", "hip", "rocm", "xpu"]

__version__ = "0.1.0"       # tensorlib.__version__ (the package version, also in pyproject.toml)
debug = False
hip: Optional[str] = None
rocm: Optional[str] = None
xpu: Optional[str] = None
git_version = "Unknown"


def _cuda_version() -> Optional[str]:
    try:
        import cupy
    except Exception:       # noqa: BLE001  (not installed, or its CUDA libraries missing: a CPU-only build, as torch's says None)
        return None
    try:
        v = int(cupy.cuda.runtime.runtimeGetVersion())      # 13000 -> "13.0"
    except Exception:       # noqa: BLE001  (CuPy without its CUDA runtime library: no CUDA here)
        return None
    return f"{v // 1000}.{(v % 1000) // 10}"


def __getattr__(name: str):
    if name == "cuda":
        value = _cuda_version()
        globals()["cuda"] = value       # read once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
