"""samples/test_budgets_example.py passes its budgets, and its planted over-budget test reports why."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "samples/test_budgets_example.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _plugin():
    from importlib.metadata import entry_points
    installed = any(ep.value == "profiler.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "profiler.pytest_plugin"]


def test_budget_sample_passes_and_reports():
    r = _pytest(*_plugin())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed, 1 xfailed" in r.stdout
    r = _pytest(*_plugin(), "--runxfail")
    assert r.returncode == 1
    assert "op budget exceeded" in r.stdout and "max_calls['linear']: 6 calls > 2" in r.stdout
