"""nn.Module's backward hooks, global hooks and state-dict protocol side by side with torch: each script in
module_api/ runs once with `torch` and once with `tensorlib` as torch (its first argument picks), printing
the grads each hook got, the call order, state_dict keys and metadata, and the error and warning texts;
the two outputs must be the same line for line."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("torch")

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = sorted((HERE / "module_api").glob("*.py"))


def _run(script, backend):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore::UserWarning:" + str(script))
    r = subprocess.run([sys.executable, str(script), backend], capture_output=True, text=True, env=env, timeout=300,
                       cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_same_output_as_torch(script):
    ours = _run(script, "tensorlib").splitlines()
    theirs = _run(script, "torch").splitlines()
    assert ours == theirs
