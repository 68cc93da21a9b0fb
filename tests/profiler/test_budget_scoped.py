"""op_budget as a context manager, torch's names in max_calls, one byte convention, results mid-test."""
import pytest

import profiler
import tensorlib as tl
from profiler.budget import BudgetExceeded, parse_bytes
from profiler.memory_record import format_bytes

from .test_pytest_plugin import _importable, _plugin_args  # noqa: F401  (the fixture and helper)

pytest_plugins = ["pytester"]


def test_op_budget_scopes_a_block_outside_pytest_markers():
    w = tl.randn(16, 16)                       # construction: outside the budget
    with profiler.op_budget(max_ops=3, max_calls={"aten::matmul": 1}) as b:
        (w @ w).sum()
    assert b.counts.ops == 2 and b.counts.calls["matmul"] == 1


def test_op_budget_exceeded_names_the_counts():
    w = tl.randn(32, 32)
    with pytest.raises(BudgetExceeded) as info:
        with profiler.op_budget(max_calls={"aten::matmul": 1}, max_bytes="1 KB"):
            (w @ w) @ w
    msg = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "op budget exceeded (2 op calls, 8.00 KB allocated, 0 syncs measured)" in msg
    assert "max_calls['aten::matmul']: 2 calls > 1" in msg
    assert "max_bytes: 8.00 KB allocated > 1.00 KB; largest: matmul (8.00 KB)" in msg


def test_op_budget_checks_its_arguments_first():
    with pytest.raises(ValueError, match=r"max_calls\['aten::lienar'\]: no tensorlib op .* mean 'aten::linear'"):
        profiler.op_budget(max_calls={"aten::lienar": 2})
    with pytest.raises(ValueError, match=r"did you mean 'linear'"):
        profiler.op_budget(max_calls={"lienar": 2})


def test_an_exception_in_the_block_is_not_masked_by_the_budget():
    with pytest.raises(ZeroDivisionError):
        with profiler.op_budget(max_ops=0):
            tl.ones(2) + 1
            1 / 0


def test_one_byte_convention_torch_binary_units():
    assert parse_bytes("4 KB") == 4096 == parse_bytes("4KiB")
    assert format_bytes(30256) == "29.55 KB" and format_bytes(4096) == "4.00 KB"


MID_TEST = '''
import tensorlib as tl

def test_mid(tl_profile):
    tl.ones(3) * 2
    assert [r.key for r in tl_profile.key_averages()].count("aten::mul") == 1
    tl.ones(3) * 2
    assert [e.name for e in tl_profile.events()].count("aten::mul") == 2

def test_alloc():
    tl.zeros(7564)                   # 30256 bytes
'''


def test_tl_profile_reads_mid_test_and_the_summary_uses_binary_units(pytester):
    from tensorlib import cuda
    pytester.makepyfile(test_mid=MID_TEST)
    r = pytester.runpytest_subprocess(*_plugin_args(pytester), "--tl-profile")
    r.assert_outcomes(passed=2)
    text = r.stdout.str()
    assert "29.55 KB" in text and "30.26 KB" not in text
    assert ("CUDA ms" in text) == cuda.is_available()        # no CUDA column without CUDA
