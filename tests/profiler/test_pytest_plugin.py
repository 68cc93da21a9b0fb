"""The pytest plugin, run in a child pytest (pytester) so that passing and failing budgets are both seen."""
from __future__ import annotations

import pytest

from profiler.budget import check_budget, count_ops, parse_bytes

pytest_plugins = ["pytester"]

BUDGET_TESTS = '''
import pytest
import tensorlib as tl

@pytest.mark.op_budget(max_calls={"matmul": 2}, max_ops=10)
def test_within():
    a = tl.ones(2, 2)
    (a @ a) @ a

@pytest.mark.op_budget(max_calls={"matmul": 1})
def test_over_calls():
    a = tl.ones(2, 2)
    (a @ a) @ a

@pytest.mark.op_budget(max_bytes="1 KB")
def test_over_bytes():
    tl.zeros(1000)

@pytest.mark.op_budget(max_bytes=10_000)
def test_bytes_ok():
    tl.zeros(1000)
'''


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    # the child pytest runs in a temporary folder: make this checkout importable there
    import os
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))


def _plugin_args(pytester):
    # installed (pip install -e .) the plugin loads through its pytest11 entry point; from a bare checkout it
    # is named explicitly
    from importlib.metadata import entry_points
    installed = any(ep.value == "profiler.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "profiler.pytest_plugin"]


def _run(pytester, *args):
    pytester.makepyfile(test_budget=BUDGET_TESTS)
    return pytester.runpytest_subprocess(*_plugin_args(pytester), *args)


def test_budget_pass_and_fail_with_report(pytester):
    r = _run(pytester)
    r.assert_outcomes(passed=2, failed=2)
    out = r.stdout.str()
    assert "max_calls['matmul']: 2 calls > 1" in out
    assert "max_bytes: 3.91 KB allocated > 1.00 KB; largest: zeros (3.91 KB)" in out


def test_counts_are_deterministic():
    import tensorlib as tl

    def work():
        with count_ops() as c:
            w = tl.randn(8, 8, requires_grad=True)
            (w @ w).relu().sum().backward()
        return dict(c.counts.calls), c.counts.bytes
    first = work()
    assert first == work() == work()
    calls, nbytes = first
    assert calls["matmul"] == 1 and calls["mm"] == 2 and calls["relu"] == 1 and nbytes > 0   # backward: torch's mm


def test_parse_bytes():
    assert parse_bytes(10) == 10 and parse_bytes("1.5KiB") == 1536
    assert parse_bytes("10 MB") == 10 * 2 ** 20 == parse_bytes("10MiB")
    with pytest.raises(ValueError, match="byte limit='10 parsecs': cannot read it as a byte count"):
        parse_bytes("10 parsecs")


def test_check_budget_rejects_bad_max_calls():
    with pytest.raises(TypeError, match="max_calls must be a dict"):
        check_budget(count_ops().counts, max_calls=3)


BAD_MARKERS = {   # marker arguments -> what the error must say; every one used to run the body first
    "max_time=3": "unknown limit 'max_time'; valid: max_ops, max_calls, max_bytes, max_device_bytes, max_syncs",
    "3": "takes keyword arguments only",
    'max_ops="10"': "max_ops='10': expected a non-negative int, got str",
    "max_ops=True": "max_ops=True: expected a non-negative int, got bool",
    "max_ops=-1": "max_ops=-1: expected a non-negative int, got a negative number",
    "max_ops=2.5": "max_ops=2.5: expected a non-negative int, got float",
    'max_calls={"add": "3"}': "max_calls['add']='3': expected a non-negative int, got str",
    'max_calls={"matmull": 3}': "max_calls['matmull']: no tensorlib op has this name "
                                "(tensorlib's or torch's profiled name, e.g. 'linear' or 'aten::linear'); "
                                "did you mean 'matmul'",
    "max_calls=3": "max_calls must be a dict of op name -> count",
    'max_bytes="10 XB"': "max_bytes='10 XB': cannot read it as a byte count; expected a non-negative int or a string",
    'max_bytes=float("nan")': "max_bytes=nan: expected a non-negative int or a string like '10 MB'",
    "max_device_bytes=-5": "max_device_bytes=-5: expected a non-negative int or a string like '10 MB' (units B, KB",
    "max_syncs=None, max_bytes=True": "max_bytes=True: expected a non-negative int or a string like '10 MB'",
}


def test_wrong_marker_arguments_error_at_setup_before_the_body(pytester, tmp_path, monkeypatch):
    """Each wrong argument: the test is an ERROR at setup (one line naming the test, the argument and what is
    accepted), neither its fixture nor its body runs, and the other tests still run."""
    ran = tmp_path / "ran"
    src = ["import pytest", "import tensorlib as tl", f"RAN = {str(ran)!r}", "",
           "@pytest.fixture", "def touched():", "    open(RAN, 'a').write('fixture ')", ""]
    for i, args in enumerate(BAD_MARKERS):
        src += [f"@pytest.mark.op_budget({args})", f"def test_bad_{i}(touched):",
                f"    open(RAN, 'a').write('body{i} ')", ""]
    src += ["@pytest.mark.op_budget(max_ops=5, max_calls={'add': 1}, max_bytes='1 KiB', max_syncs=0)",
            "def test_good():", "    tl.ones(2) + 1", ""]
    pytester.makepyfile(test_bad="\n".join(src))
    monkeypatch.setenv("COLUMNS", "1000")          # the short summary keeps whole lines
    r = pytester.runpytest_subprocess(*_plugin_args(pytester), "-rE")
    r.assert_outcomes(passed=1, errors=len(BAD_MARKERS))
    assert not ran.exists()
    out = r.stdout.str()
    for i, message in enumerate(BAD_MARKERS.values()):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"ERROR test_bad.py::test_bad_{i} "))
        assert f"test_bad.py::test_bad_{i}: @pytest.mark.op_budget" in line and message in line, line


def test_budget_limits_normalise():
    from profiler.budget import budget_limits
    assert budget_limits({"max_ops": 3, "max_bytes": "2 KB", "max_calls": {"add": 0}, "max_syncs": None}) == \
        {"max_ops": 3, "max_bytes": 2048, "max_calls": {"add": 0}}
    with pytest.raises(ValueError, match="max_bytes=-1.0"):
        budget_limits({"max_bytes": -1.0})


PROFILED_TESTS = '''
import tensorlib as tl

def test_small():
    tl.ones(2) + 1

def test_big():                 # tens of ms: first-call costs of test_small (a few ms under load) stay below
    a = tl.randn(256, 256)
    for _ in range(20):
        a = (a @ a).tanh()

def test_fixture(tl_profile):
    (tl.ones(3, 3) @ tl.ones(3, 3)).sum()
    tl_profile.stop()
    names = [e.key for e in tl_profile.key_averages()]
    assert "aten::matmul" in names and "aten::sum" in names
'''


def test_tl_profile_summary_and_traces(pytester, tmp_path):
    pytester.makepyfile(test_prof=PROFILED_TESTS)
    out_dir = tmp_path / "traces"
    r = pytester.runpytest_subprocess(*_plugin_args(pytester), "--tl-profile", f"--tl-profile-dir={out_dir}",
                                      "--tl-top", "2")
    r.assert_outcomes(passed=3)
    text = r.stdout.str()
    assert "tensorlib profile" in text and "3 tests profiled" in text
    lines = [ln for ln in text.splitlines() if "test_prof.py::" in ln]
    assert len(lines) == 2 and "test_big" in lines[0] and "aten::mm" in lines[0]   # most expensive first (matmul's mm)
    traces = sorted(p.name for p in out_dir.iterdir())
    assert traces == ["test_prof.py_test_big.pt.trace.json", "test_prof.py_test_fixture.pt.trace.json",
                      "test_prof.py_test_small.pt.trace.json"]
    import json
    doc = json.loads((out_dir / traces[0]).read_text())
    assert any(e.get("name") == "aten::matmul" for e in doc["traceEvents"])


def test_tl_profile_fixture_without_option(pytester):
    pytester.makepyfile(test_prof=PROFILED_TESTS)
    r = pytester.runpytest_subprocess(*_plugin_args(pytester), "-k", "fixture")
    r.assert_outcomes(passed=1)
    assert "tensorlib profile" not in r.stdout.str()


def test_tl_profile_under_xdist_reports_every_worker(pytester):
    pytest.importorskip("xdist", reason="pytest-xdist is part of the test extra")
    pytester.makepyfile(test_prof=PROFILED_TESTS)
    r = pytester.runpytest_subprocess(*_plugin_args(pytester), "-n", "2", "--tl-profile", "--tl-top", "5")
    r.assert_outcomes(passed=3)
    text = r.stdout.str()
    assert "3 tests profiled" in text
    assert sum("test_prof.py::" in ln for ln in text.splitlines()) == 3
