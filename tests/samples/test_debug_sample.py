"""samples/debug_nan.py: the walkthrough finds the planted NaN and names its line."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_debug_walkthrough_names_the_planted_nan():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "samples/debug_nan.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "nan_watch: op 'sqrt' (forward" in r.stdout
    assert "samples/debug_nan.py:16: y = (x - 0.5).sqrt()" in r.stdout
    assert "flagged: 0" in r.stdout
    assert "RuntimeWarning" not in r.stderr       # tensorlib's kernels stay quiet, as torch's do
