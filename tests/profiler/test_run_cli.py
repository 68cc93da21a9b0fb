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


TORCH_SCRIPT = """
import torch
import torch.nn.functional as F
from torch.profiler import record_function
x = torch.randn(8, 4)
w = torch.randn(3, 4, requires_grad=True)
with record_function("my_block"):
    loss = F.cross_entropy(F.linear(x, w), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
loss.backward()
print("ran on", torch.__name__)
"""


def test_run_torch_profiles_a_pytorch_script_unchanged(tmp_path):
    """--torch answers the script's `import torch` with tensorlib (tensorlib.compat), so its ops are recorded;
    a name tensorlib lacks is reported in one line; without --torch a script that ran a real (here: stand-in)
    `torch` and recorded nothing is told about --torch."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    s = tmp_path / "train.py"
    s.write_text(TORCH_SCRIPT)
    out = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "profiler", "run", "--torch", "-o", str(out), str(s)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ran on tensorlib" in r.stdout and "aten::linear" in r.stdout and "my_block" in r.stdout
    names = {e.get("name") for e in json.loads(out.read_text())["traceEvents"]}
    assert {"aten::linear", "my_block", "autograd::engine::evaluate_function: MmBackward0"} <= names
    s.write_text("import torch\ntorch.frobnicate(1)\n")
    r = subprocess.run([sys.executable, "-m", "profiler", "run", "--torch", "-o", str(out), str(s)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1
    assert "profiler run: train.py:2 uses torch.frobnicate, which tensorlib does not have yet" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "torch.py").write_text("def ones(n):\n    return [1.0] * n\n")       # a framework of its own
    s.write_text("import torch\nprint(sum(torch.ones(3)))\n")
    r = subprocess.run([sys.executable, "-m", "profiler", "run", "-o", str(out), str(s)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0 and "3.0" in r.stdout
    assert "ran PyTorch's own ops, which this profiler does not see" in r.stderr and "--torch" in r.stderr
