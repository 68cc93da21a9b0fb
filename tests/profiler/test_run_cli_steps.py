"""python -m profiler explains itself: --help per command, -- as documented, schedule options,
--with-flops, files named on stderr, and a script's own profile() nesting under the runner."""
from __future__ import annotations

import json

import pytest

from profiler._cli import SUBCOMMANDS, main

ARGV = "import sys\nimport tensorlib as tl\ntl.ones(2) + 1\nprint('argv', sys.argv[1:])\n"

TRAIN = """
import tensorlib as tl
from tensorlib import nn, optim
m = nn.Linear(4, 2)
opt = optim.SGD(m.parameters(), lr=0.1)
for _ in range(6):
    loss = m(tl.randn(3, 4)).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""

NESTED = """
import tensorlib as tl
from profiler import profile, record_function
tl.ones(3) * 2                            # before the inner profile: the outer's only
with profile() as inner:
    with record_function("inner_block"):
        tl.ones(3).exp()
names = sorted({e.name for e in inner.events()})
print("inner", names)
print(inner.key_averages().table(row_limit=5))
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(tmp, name, text):
    (tmp / name).write_text(text)
    return name


def test_help_has_a_line_per_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert any(line.strip().startswith(name + " ") for line in out.splitlines()), name
    assert "COMMAND --help" in out


@pytest.mark.parametrize("words, script_argv", [
    (["a", "--", "-o", "y.json"], ["a", "-o", "y.json"]),
    (["--", "-o", "y.json"], ["-o", "y.json"]),
    (["a", "--", "b", "--"], ["a", "b", "--"]),
    (["a", "-o", "mine.json"], ["a"]),
])
def test_double_dash_hands_everything_after_the_script_to_it(in_tmp, capsys, words, script_argv):
    s = _write(in_tmp, "argv.py", ARGV)
    assert main(["run", s, *words]) == 0
    captured = capsys.readouterr()
    assert f"argv {script_argv}" in captured.out
    written = "mine.json" if "mine.json" in words and "--" not in words else "trace.json"
    assert (in_tmp / written).exists() and not (in_tmp / "y.json").exists()
    assert f"wrote {written}" in captured.err


def test_a_script_that_exits_before_any_op_writes_nothing(in_tmp, capsys):
    s = _write(in_tmp, "reject.py", "import sys\nsys.exit(2)\n")
    assert main(["run", "-o", "out.json", s, "--bad"]) == 2
    captured = capsys.readouterr()
    assert "status 2 before any tensorlib op ran" in captured.err
    assert not (in_tmp / "out.json").exists() and "Self CPU" not in captured.out


def test_schedule_options_follow_torch_with_optimizer_steps(in_tmp, capsys):
    s = _write(in_tmp, "train.py", TRAIN)
    assert main(["run", "--wait", "1", "--warmup", "1", "--active", "2", "--repeat", "1", s]) == 0
    out = capsys.readouterr().out
    evs = json.loads((in_tmp / "trace.json").read_text())["traceEvents"]
    assert sorted(e["name"] for e in evs if e.get("name", "").startswith("ProfilerStep")) == \
        ["ProfilerStep#2", "ProfilerStep#3"]
    assert sum(1 for e in evs if e.get("name") == "Optimizer.step#SGD.step") == 2
    assert "ProfilerStep*" in out and "Backward" in out and "avg of 2" in out     # table and step breakdown


def test_bad_schedule_option_is_a_usage_error(in_tmp, capsys):
    s = _write(in_tmp, "train.py", TRAIN)
    assert main(["run", "--active", "0", s]) == 2
    assert "active must be an int >= 1" in capsys.readouterr().err


def test_with_flops_adds_the_flops_column(in_tmp, capsys):
    s = _write(in_tmp, "train.py", TRAIN)
    assert main(["run", "--with-flops", s]) == 0
    out = capsys.readouterr().out
    assert "FLOPs" in out


def test_a_scripts_own_profile_nests_under_the_runner(in_tmp, capsys):
    s = _write(in_tmp, "nested.py", NESTED)
    assert main(["run", "-o", "outer.json", s]) == 0
    out = capsys.readouterr().out
    assert "inner ['aten::empty', 'aten::exp', 'aten::fill_', 'aten::ones', 'inner_block']" in out     # its block only
    evs = json.loads((in_tmp / "outer.json").read_text())["traceEvents"]
    names = {e.get("name") for e in evs}
    assert {"aten::mul", "aten::exp", "inner_block"} <= names                # the outer saw everything


NESTED_UNDER_SCHEDULE = """
import tensorlib as tl
from tensorlib import nn, optim
from profiler import profile
m = nn.Linear(4, 2)
opt = optim.SGD(m.parameters(), lr=0.1)
with profile() as inner:                     # starts while the runner's schedule still waits
    for _ in range(5):
        m(tl.randn(3, 4)).sum().backward()
        opt.step()
print("inner steps", sum(e.name == "Optimizer.step#SGD.step" for e in inner.events()))
"""


def test_a_nested_profile_gets_what_the_runners_schedule_records_while_it_runs(in_tmp, capsys):
    s = _write(in_tmp, "nested_sched.py", NESTED_UNDER_SCHEDULE)
    assert main(["run", "--wait", "2", "--active", "10", s]) == 0
    # the runner records from the third optimizer step on: the nested profile has those three
    assert "inner steps 3" in capsys.readouterr().out
