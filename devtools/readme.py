"""`make readme`: regenerate every README block marked `<!-- make readme: NAME -->` from a real run.

Each NAME below is a function returning the block's text; the fenced block right after the marker is
replaced. Runs use one BLAS thread and seed 0, as the samples do, so a busy machine's thread fights do
not show up as a bottleneck. tests/test_readme.py checks that every marker has a generator here and that
the README's Python blocks still run.
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WIDTH = 140
MARKER = re.compile(r"^<!-- make readme: ([\w-]+) -->\n```[^\n]*\n.*?^```\n", re.S | re.M)


def _run(args, cwd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise SystemExit(f"make readme: {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout + r.stderr


def _table_excerpt(text, rows):
    """The first `rows` rows of torch's table, cut at WIDTH columns, then the total and what follows."""
    lines = [ln[:WIDTH].rstrip() for ln in text.splitlines()]
    rules = [i for i, ln in enumerate(lines) if ln.startswith("-----")]
    body_start, body_end = rules[1] + 1, rules[2]
    kept = lines[:body_start] + lines[body_start:min(body_end, body_start + rows)]
    if body_end - body_start > rows:
        kept.append("...")
    return "\n".join(kept + [ln for ln in lines[body_end + 1:] if ln])


def demo():
    with tempfile.TemporaryDirectory() as d:
        out = _run([str(ROOT / "samples" / "profile_demo.py")], d)
    return _table_excerpt(out, 8)


def profiler_example():
    """The README's profiler example (the Python block before this marker), run as it is."""
    text = README.read_text(encoding="utf-8")
    at = text.index("<!-- make readme: profiler-example -->")
    code = text[:at].rsplit("```python\n", 1)[1].split("```", 1)[0]
    with tempfile.TemporaryDirectory() as d:
        return "\n".join(ln.rstrip() for ln in _run(["-c", code], d).strip().splitlines())


GENERATORS = {"demo": demo, "profiler-example": profiler_example}


def main() -> int:
    text = README.read_text(encoding="utf-8")

    def replace(m):
        name = m.group(1)
        fence = m.group(0).split("\n", 2)[1]
        return f"<!-- make readme: {name} -->\n{fence}\n{GENERATORS[name]()}\n```\n"

    new = MARKER.sub(replace, text)
    from safeio import write_bytes
    write_bytes(README, new.encode(), what="README")
    print(f"make readme: regenerated {len(MARKER.findall(text))} blocks in README.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
