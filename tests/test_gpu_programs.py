"""devtools/gpu_programs.py and devtools/gpu_traces.py (the real-GPU checks of the vendored programs and of
torch's tools on our GPU traces): each program's own accelerator flag, and both scripts end to end under the
fake CuPy (tensorlib's column alone: no CUDA torch here)."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from devtools import gpu_programs
from tests.programs import harness

ROOT = Path(__file__).resolve().parents[1]


def test_every_program_is_switched_to_the_gpu_by_a_flag_it_has(tmp_path):
    switched = {}
    for name in gpu_programs.GPU_PROGRAMS:
        _, argv = harness.prepare(name, tmp_path / name, 2)
        new = gpu_programs.cuda_argv(name, argv)
        assert "--no-accel" not in new and "--device=cpu" not in new
        assert ["--device", "cpu"] not in [new[i:i + 2] for i in range(len(new) - 1)]
        source = "\n".join(p.read_text() for p in (tmp_path / name).glob("*.py"))
        added = [a for a in new if a not in argv]
        for flag in added:                 # the program declares every flag we add
            assert flag.split("=")[0].lstrip("-").replace("-", "_") in source.replace("-", "_"), (name, flag)
        switched[name] = added or "--no-accel dropped"
    assert switched["nanogpt"] == ["--device=cuda"] and switched["mnist"] == "--no-accel dropped"
    assert switched["word_lm_lstm"] == ["--accel"] and "cuda" in switched["makemore_gru"]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "fakecupy")]),
                FAKECUPY_RULES="14")


@pytest.mark.slow
def test_programs_and_traces_run_under_the_fake_cupy(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "devtools" / "gpu_programs.py"), "--programs", "mnist,nanogpt",
                        "--steps", "2", "--jobs", "2"], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.startswith(("mnist", "nanogpt"))}
    assert rows["mnist"][1] == "ok" and rows["nanogpt"][1] == "ok", r.stdout
    out = tmp_path / "t.tar.gz"
    r = subprocess.run([sys.executable, str(ROOT / "devtools" / "gpu_traces.py"), "--out", str(out), "--models",
                        "mlp"], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with tarfile.open(out) as tar:
        assert "gpu-traces/mlp/tensorlib-events/rank0.pt.trace.json" in tar.getnames()
    assert "mlp tensorlib-events:" in r.stdout and " kernel " in r.stdout
