"""python -m profiler run: an unmodified script profiled, table printed, trace written, status kept."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiler._cli import main

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import tensorlib as tl
t = tl.ones(4, 4)
for _ in range(int(sys.argv[1])):
    t = t * 2
print("script argv", sys.argv[1:], __name__)
if len(sys.argv) > 2:
    raise {exc}
"""


def _script(tmp_path, exc="SystemExit(3)"):
    p = tmp_path / "train.py"
    p.write_text(SCRIPT.format(exc=exc))
    return p


def test_run_profiles_script_prints_table_and_writes_trace(tmp_path, capsys):
    s = _script(tmp_path)
    out = tmp_path / "t.json"
    rc = main(["run", "-o", str(out), "--sort", "count", "--shapes", str(s), "5"])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "script argv ['5'] __main__" in text
    assert "Self CPU time total" in text and "Input Shapes" in text
    mul_row = [line for line in text.splitlines() if line.strip().startswith("aten::mul ")][0]
    cells = [c.strip() for c in mul_row.split("  ") if c.strip()]
    assert cells[-2] == "5" and cells[-1] == "[[4, 4], []]"       # # of Calls, Input Shapes
    doc = json.loads(out.read_text())
    assert sum(1 for e in doc["traceEvents"] if e.get("name") == "aten::mul") == 5
    assert f"python -m viewer {out}" in captured.err      # files written are named on stderr


def test_run_options_after_the_scripts_arguments(tmp_path, capsys):
    """The issue's usage line: run script.py [args] [-o trace.json] [--sort KEY] ... ; a trailing -- hands
    such words to the script instead."""
    s = _script(tmp_path)
    out = tmp_path / "late.json"
    rc = main(["run", str(s), "4", "-o", str(out), "--sort=count", "--row-limit", "3", "--shapes"])
    text = capsys.readouterr().out
    assert rc == 0 and "script argv ['4'] __main__" in text
    assert "Input Shapes" in text and out.exists()
    assert sum(1 for e in json.loads(out.read_text())["traceEvents"] if e.get("name") == "aten::mul") == 4
    # -- ends the scan and is not passed on (the script exits 3 when given a second argument)
    rc = main(["run", "-o", str(tmp_path / "early.json"), str(s), "1", "--memory", "--", ])
    text = capsys.readouterr().out
    assert rc == 3 and "script argv ['1', '--memory'] __main__" in text and (tmp_path / "early.json").exists()
    assert "Memory summary" not in text


def test_split_tail():
    from profiler.run import _split_tail
    assert _split_tail(["--epochs", "1", "-o", "t.json", "--memory"]) == (["--epochs", "1"], ["-o", "t.json",
                                                                                             "--memory"])
    assert _split_tail(["--epochs", "1"]) == (["--epochs", "1"], [])
    assert _split_tail(["a", "--stack", "--"]) == (["a", "--stack"], [])
    assert _split_tail(["--cuda-timing=events"]) == ([], ["--cuda-timing=events"])
    assert _split_tail([]) == ([], [])


def test_run_keeps_exit_status_and_reports_after_an_exception(tmp_path, capsys):
    s = _script(tmp_path)
    rc = main(["run", "-o", str(tmp_path / "a.json"), str(s), "2", "x"])
    assert rc == 3
    assert (tmp_path / "a.json").exists()
    s2 = _script(tmp_path, exc="ValueError('boom')")
    rc = main(["run", "-o", str(tmp_path / "b.json"), "--memory", "--stack", str(s2), "2", "x"])
    err = capsys.readouterr()
    assert rc == 1 and "ValueError: boom" in err.err
    assert (tmp_path / "b.json").exists() and (tmp_path / "b.stacks.txt").read_text().strip()
    assert "Memory summary" in err.out


def test_run_errors(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--sort", "bogus", "x.py"])


def test_run_as_subprocess(tmp_path):
    s = _script(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "profiler", "run", "-o", str(tmp_path / "t.json.gz"), str(s), "3"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Self CPU time total" in r.stdout and (tmp_path / "t.json.gz").exists()


def test_profile_demo_trains_and_writes_a_trace(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(ROOT / "samples" / "profile_demo.py"), "--steps", "2", "-o",
                        str(tmp_path / "trace.json")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Self CPU time total" in r.stdout and "python -m viewer" in r.stdout
    evs = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = {e["name"] for e in evs}
    assert {"MLP", "MLP.fc1", "Optimizer.step#SGD.step", "Optimizer.zero_grad#SGD.zero_grad", "ProfilerStep#3",
            "aten::linear", "AddmmBackward0", "aten::nll_loss"} <= names
    assert any(n.startswith("enumerate(DataLoader)#") for n in names)
