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
    assert "max_bytes: 4.00 KB allocated > 1.00 KB; largest: zeros (4.00 KB)" in out


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
    assert calls["matmul"] == 3 and calls["relu"] == 1 and nbytes > 0


def test_parse_bytes():
    assert parse_bytes(10) == 10 and parse_bytes("10 MB") == 10_000_000 and parse_bytes("1.5KiB") == 1536
    with pytest.raises(ValueError, match="cannot read '10 parsecs' as a byte count"):
        parse_bytes("10 parsecs")


def test_check_budget_rejects_bad_max_calls():
    with pytest.raises(TypeError, match="max_calls must be a dict"):
        check_budget(count_ops().counts, max_calls=3)


def test_unknown_limit_is_a_usage_error(pytester):
    pytester.makepyfile(test_x='''
import pytest
@pytest.mark.op_budget(max_time=3)
def test_t():
    pass
''')
    r = pytester.runpytest_subprocess(*_plugin_args(pytester))
    assert "unknown op_budget limit(s) ['max_time']" in r.stdout.str() + r.stderr.str()
