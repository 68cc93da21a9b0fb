"""Only the process that started profiling reports (a forked child stops recording and writes nothing),
and the report does not depend on what the script did to sys.path (issue 21, item 3)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tensorlib as tl
from profiler import profile, record_function

ROOT = Path(__file__).resolve().parents[2]

FORKING = """
import os, sys, time
import tensorlib as tl
from profiler import record_function
with record_function("before_fork"):
    tl.ones(2) + 1
pid = os.fork()
if pid == 0:
    time.sleep(0.5)                     # the child finishes after the parent has reported
    with record_function("in_child"):
        tl.ones(2) * 3
    print("child done", flush=True)
    {child_exit}
else:
    with record_function("parent_after"):
        tl.ones(2) - 1
"""


def _cli(tmp_path, script, *options):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "profiler", "run", *options, str(script)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)


def _user_ranges(path):
    return sorted(e["name"] for e in json.loads(Path(path).read_text())["traceEvents"]
                  if e.get("cat") == "user_annotation")


@pytest.mark.parametrize("child_exit", ["pass", "sys.exit(0)", "raise ValueError('child failed')"])
def test_forked_child_neither_reports_nor_overwrites_the_trace(tmp_path, child_exit):
    script = tmp_path / "forks.py"
    script.write_text(FORKING.format(child_exit=child_exit))
    r = _cli(tmp_path, script, "-o", "out.json")       # returns once the child closed stdout too
    assert r.returncode == 0, r.stderr
    assert "child done" in r.stdout
    assert r.stdout.count("Self CPU time total") == 1 and r.stderr.count("wrote out.json") == 1
    assert _user_ranges(tmp_path / "out.json") == ["before_fork", "parent_after"]


def test_forked_child_stops_recording_frees_the_slot_and_skips_on_trace_ready(tmp_path):
    marker = tmp_path / "handler_ran_in"
    r, w = os.pipe()

    def handler(prof):
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")

    with profile(on_trace_ready=handler) as p:
        tl.ones(2) + 1
        pid = os.fork()
        if pid == 0:                                    # the child: must not touch the parent's profiler
            ok = b"0"
            try:
                tl.ones(2) * 3
                with profile() as q:                    # the slot is free in the child
                    tl.ones(2) - 1
                if [e.name for e in q.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::sub"]:
                    ok = b"1"
            finally:
                os.write(w, ok)
                os._exit(0)
        os.close(w)
        assert os.read(r, 1) == b"1"
        os.waitpid(pid, 0)
        with record_function("after"):
            tl.ones(2) - 1
    os.close(r)
    names = [e.name for e in p.events()]
    assert "aten::mul" not in names and names[-1] == "aten::sub" and "after" in names
    assert marker.read_text() == f"{os.getpid()}\n"


def test_forked_child_leaving_the_with_block_runs_no_handler(tmp_path):
    marker = tmp_path / "handler_ran_in"

    def handler(prof):
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")

    pid = -1
    try:
        with profile(on_trace_ready=handler):
            tl.ones(2) + 1
            pid = os.fork()
    finally:
        if pid == 0:
            os._exit(0)                                 # the child left the block: its stop() ran nothing
    os.waitpid(pid, 0)
    assert marker.read_text() == f"{os.getpid()}\n"


SHADOWS = {"orjson.py": "raise ImportError('shadowed orjson')", "numpy/__init__.py": "raise ImportError('shadowed')",
           "safeio/__init__.py": "raise ImportError('shadowed safeio')",
           "profiler/__init__.py": "raise ImportError('shadowed profiler')",
           "concurrent/__init__.py": "raise ImportError('shadowed')", "uuid.py": "raise ImportError('shadowed')"}


@pytest.mark.parametrize("change", ["sys.path.clear()", "sys.path[:] = ['/nonexistent']",
                                    "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'shadow'))"])
@pytest.mark.parametrize("output", ["out.json", "out.json.gz"])
def test_a_script_changing_sys_path_keeps_its_trace(tmp_path, change, output):
    for name, text in SHADOWS.items():
        (tmp_path / "shadow" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "shadow" / name).write_text(text)
    script = tmp_path / "paths.py"
    script.write_text("import os, sys\nimport tensorlib as tl\nfrom profiler import record_function\n"
                      "with record_function('kept'):\n    tl.ones(2) + 1\n" + change + "\n")
    r = _cli(tmp_path, script, "-o", output, "--stack", "--memory", "--shapes")
    assert r.returncode == 0, r.stderr
    assert f"wrote {output}" in r.stderr and "out.stacks.txt" in r.stderr
    assert (tmp_path / "out.stacks.txt").stat().st_size > 0
    if output == "out.json":
        assert _user_ranges(tmp_path / output) == ["kept"]
