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


def _run_any(args, cwd, env_extra=None):
    """(exit status, stdout + stderr) of a run that may fail on purpose (a budget test, a refused file)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT), **(env_extra or {}))
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return r.returncode, r.stdout + r.stderr


def dispatch():
    """benchmarks/dispatch_overhead.py's table (its closing ratio line is in benchmarks/README.md), timed
    with the thread's CPU clock so that other jobs on the machine do not count."""
    out = _run(["benchmarks/dispatch_overhead.py", "--cpu-time", "--n", "50000"], ROOT)
    lines = out.strip().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("add on "))
    return "\n".join(ln.rstrip() for ln in lines[start:] if not ln.startswith("input requires grad:"))


def debug_nan():
    """samples/debug_nan.py's first line: nan_watch's message."""
    return _run(["samples/debug_nan.py"], ROOT).strip().splitlines()[0].rstrip()


def debug_sanity():
    return "\n".join(ln.rstrip() for ln in _run(["samples/debug_sanity.py"], ROOT).strip().splitlines())


def pytest_budgets():
    """The failing budget's message (--runxfail), then the --tl-profile summary."""
    sample = "samples/test_budgets_example.py"
    _, out = _run_any(["-m", "pytest", sample, "--runxfail", "-p", "no:cacheprovider"], ROOT)
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("op budget exceeded"))
    stop = next(i for i in range(start, len(lines)) if lines[i].startswith("====="))
    failure = lines[start:stop]
    _, out = _run_any(["-m", "pytest", sample, "--tl-profile", "-p", "no:cacheprovider"], ROOT)
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if "tensorlib profile" in ln)
    stop = next(i for i in range(start, len(lines)) if lines[i].endswith("tests profiled"))
    return "\n".join([f"$ pytest {sample} --runxfail", *failure, "",
                      f"$ OPENBLAS_NUM_THREADS=1 pytest {sample} --tl-profile",
                      *(ln.rstrip() for ln in lines[start:stop + 1])])


def _nsys_db(d, version="3.24.14"):
    sys.path.insert(0, str(ROOT))
    try:
        from tests.profiler.test_nsys_import import make_export
    finally:
        sys.path.remove(str(ROOT))
    return make_export(pathlib.Path(d) / "report.sqlite", version=version)


def nsys_import():
    """`import-nsys` on the test suite's small database (tests/profiler/test_nsys_import.py)."""
    with tempfile.TemporaryDirectory() as d:
        _nsys_db(d)
        out = _run(["-m", "profiler", "import-nsys", "report.sqlite", "-o", "trace.json"], d)
    return "$ python -m profiler import-nsys report.sqlite -o trace.json\n" + out.strip()


def nsys_events():
    """Some events of that conversion, one per line: an op, its launch, the kernel and their flow."""
    import json

    with tempfile.TemporaryDirectory() as d:
        _nsys_db(d)
        _run(["-m", "profiler", "import-nsys", "report.sqlite", "-o", "trace.json"], d)
        events = json.loads((pathlib.Path(d) / "trace.json").read_text(encoding="utf-8"))["traceEvents"]
    named = (("cpu_op", "add"), ("cuda_runtime", "cudaLaunchKernel"))
    keep = [e for e in events if (e.get("cat"), e.get("name")) in named
            or e.get("cat") == "kernel" or (e.get("cat") == "ac2g" and e.get("id") == 7)]
    return "\n".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in keep)


def nsys_errors():
    """Two files import-nsys refuses: a newer export schema, and a file that is not a database."""
    with tempfile.TemporaryDirectory() as d:
        _nsys_db(d, version="4.0.1")
        (pathlib.Path(d) / "README.md").write_text("# not a database\n", encoding="utf-8")
        lines = []
        for args in (["report.sqlite", "-o", "t.json"], ["README.md"]):
            rc, out = _run_any(["-m", "profiler", "import-nsys", *args], d)
            if rc == 0:
                raise SystemExit(f"make readme: import-nsys {' '.join(args)} was expected to fail")
            lines += [f"$ python -m profiler import-nsys {' '.join(args)}", out.strip()]
    return "\n".join(lines)


GENERATORS = {"demo": demo, "profiler-example": profiler_example, "dispatch": dispatch, "debug-nan": debug_nan,
              "debug-sanity": debug_sanity, "pytest-budgets": pytest_budgets, "nsys-import": nsys_import,
              "nsys-events": nsys_events, "nsys-errors": nsys_errors}


def main(argv=None) -> int:
    """Every marked block, or only the ones named on the command line (`python devtools/readme.py demo`)."""
    only = set(sys.argv[1:] if argv is None else argv)
    if only - set(GENERATORS):
        raise SystemExit(f"make readme: no generator for {sorted(only - set(GENERATORS))}; "
                         f"there are {sorted(GENERATORS)}")
    text = README.read_text(encoding="utf-8")

    def replace(m):
        name = m.group(1)
        if only and name not in only:
            return m.group(0)
        fence = m.group(0).split("\n", 2)[1]
        return f"<!-- make readme: {name} -->\n{fence}\n{GENERATORS[name]()}\n```\n"

    new = MARKER.sub(replace, text)
    from safeio import write_bytes
    write_bytes(README, new.encode(), what="README")
    n = len(only) if only else len(MARKER.findall(text))
    print(f"make readme: regenerated {n} blocks in README.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
