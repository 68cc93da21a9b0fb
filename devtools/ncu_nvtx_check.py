"""Are kernels found inside tensorlib's NVTX ranges? The issue's check with Nsight Compute, for GPU
machines where nsys records but cannot turn its recording into a report.

    python devtools/ncu_nvtx_check.py            # runs ncu on itself and checks what it profiled
    python devtools/ncu_nvtx_check.py --child    # the workload alone (what ncu runs)

ncu is told to profile only kernels launched inside the NVTX range "matmul" of domain "tensorlib"
(`--nvtx --nvtx-include "tensorlib@matmul/"`); the workload runs matmuls inside those ranges and
elementwise ops outside them, so a pass means ncu saw matmul kernels and nothing else.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys


def child():
    # emit_nvtx itself, not TENSORLIB_NVTX=1: that variable acts through the package's entry point, which a
    # checkout run from its folder (as on a lent GPU machine) does not have
    import tensorlib as tl
    from profiler import emit_nvtx
    a = tl.randn(256, 256, device="cuda")
    b = tl.randn(256, 256, device="cuda")
    with emit_nvtx():
        for _ in range(3):
            c = tl.matmul(a, b)          # a "matmul" range: its GEMM kernel is profiled
            c = (c + 1).relu()           # "add"/"relu" ranges: excluded by the filter
    tl.cuda.synchronize()
    print("workload done", tuple(c.shape))


def main():
    if "--child" in sys.argv:
        child()
        return 0
    ncu = shutil.which("ncu") or os.environ.get("NCU")
    if not ncu:
        print("ncu (Nsight Compute, part of the CUDA toolkit) is not on PATH; set NCU=/path/to/ncu")
        return 2
    cmd = [ncu, "--nvtx", "--nvtx-include", "tensorlib@matmul/", "--metrics", "gpu__time_duration.sum",
           sys.executable, os.path.abspath(__file__), "--child"]
    env = dict(os.environ)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    text = out.stdout + out.stderr
    kernels = re.findall(r'==PROF== Profiling "([^"]+)"', text)
    print(f"ncu profiled {len(kernels)} kernel(s) inside tensorlib@matmul ranges: {sorted(set(kernels))}")
    if out.returncode != 0 or "workload done" not in text:
        print(text[-3000:])
        return 1
    gemm = [k for k in kernels if re.search(r"gemm|sgemm|cutlass|Kernel", k, re.I)]
    elementwise = [k for k in kernels if re.search(r"add|relu|maximum", k, re.I) and k not in gemm]
    ok = len(kernels) >= 3 and gemm and not elementwise
    print("PASS: only matmul's kernels were inside the filtered ranges" if ok else
          f"FAIL: gemm kernels {gemm}, elementwise kernels {elementwise}\n{text[-2000:]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
