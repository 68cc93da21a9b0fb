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


def test_sanity_walkthrough_catches_the_missing_zero_grad_and_restores_the_model():
    """samples/debug_sanity.py (the README's sanity_check output): the one failed check is the missing
    zero_grad, and the model and optimizer are as they were before the trial steps."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("import runpy, numpy as np\n"
            "g = runpy.run_path('samples/debug_sanity.py')\n"
            "m, opt = g['model'], g['opt']\n"
            "print('GRADS', all(p.grad is None for p in m.parameters()), 'STATE', len(opt.state))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "[FAIL] gradients zeroed between steps" in r.stdout and "9/10 checks passed" in r.stdout
    assert "GRADS True STATE 0" in r.stdout
