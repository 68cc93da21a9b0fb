"""The README stays true: every Python block in it runs as written (doctest-style blocks give the output
shown), and every block marked `<!-- make readme: NAME -->` has a generator in devtools/readme.py, which
`make readme` uses to regenerate it from a real run."""
from __future__ import annotations

import doctest
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_python_block_runs(i, tmp_path):
    code = BLOCKS[i]
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, {}, f"README block {i}", "README.md", 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"README block {i} gives other output than it shows"
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"README block {i} fails:\n{code}\n{r.stderr}"


def test_every_generated_block_has_its_generator():
    sys.path.insert(0, str(ROOT))
    try:
        from devtools.readme import GENERATORS, MARKER
    finally:
        sys.path.remove(str(ROOT))
    names = [m.group(1) for m in MARKER.finditer(TEXT)]
    assert names and set(names) <= set(GENERATORS), names
    assert len(names) == TEXT.count("<!-- make readme:"), "a marker not followed by a fenced block"
