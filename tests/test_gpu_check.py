"""devtools/gpu_check.py itself: end to end under the fake CuPy (two simulated devices, quick mode), and
its one-line refusal where no GPU is visible."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "devtools" / "gpu_check.py"


def _run(env_extra, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), **env_extra)
    return subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, env=env,
                          timeout=300)


def test_runs_end_to_end_under_the_fake_cupy():
    r = _run({"FAKECUPY_DEVICES": "2"}, [str(ROOT), str(ROOT / "tests" / "fakecupy")])
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "FAKE CuPy" in out and "timings are meaningless" in out
    for claim in ("GPU lanes never before their launches", "reported peak == cuda.max_memory_allocated()",
                  "sync count == CuPy's syncs: item", "ops on cuda:1 run and are timed on device 1"):
        line = next(ln for ln in out.splitlines() if ln.startswith(claim))
        assert line.rstrip().endswith("PASS"), line
    assert "0 failed" in out


def test_without_a_gpu_it_says_so_in_one_line():
    r = _run({"CUDA_VISIBLE_DEVICES": ""}, [str(ROOT)])
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("gpu_check: no usable GPU here")
