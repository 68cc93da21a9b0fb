"""Fuzz the op_budget marker's arguments (issue 21, item 9).

In-process, hundreds of generated argument sets go through the plugin's own check: each is either
normalised to non-negative int limits whose verdict never raises, or refused with one line naming the
test, the argument and what it accepts. End to end, generated sets run in one child pytest (pytester):
a wrong set is an ERROR at setup whose body never ran, a valid one passes or fails exactly as the counts
say, and no traceback or INTERNALERROR appears.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from profiler import pytest_plugin
from profiler.budget import LIMITS, Counts, check_budget, count_ops

from ._scale import SCALE

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(60)

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10 ** 7), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["10 MB", "1 KiB", "10 XB", "-1", "1.5 kb", " 3 ", "0", "1e3", "nan"]),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.one_of(st.sampled_from(["add", "ones", "matmul", "matmull", ""]), st.integers(0, 3)),
                    st.one_of(st.integers(-2, 5), st.text(max_size=3), st.none(), st.floats(), st.booleans()),
                    max_size=3))
_names = st.sampled_from(LIMITS + ("max_time", "maxops", "max_calls"))
_markers = st.tuples(st.lists(st.integers(0, 3), max_size=1), st.dictionaries(_names, _values, max_size=3))


class _Marker:
    def __init__(self, args, kwargs):
        self.args, self.kwargs = tuple(args), kwargs


class _Item:
    nodeid = "test_m.py::test_x"

    def __init__(self, args, kwargs):
        self.marker = _Marker(args, kwargs)

    def get_closest_marker(self, name):
        return self.marker if name == "op_budget" else None


def _usage(args, kwargs):
    """The plugin's verdict on these arguments: (limits, None) or (None, the one-line message)."""
    try:
        return pytest_plugin._budget(_Item(args, kwargs)), None
    except pytest_plugin._BudgetUsage as e:
        return None, str(e)


@settings(max_examples=400 * SCALE, deadline=None)
@given(marker=_markers)
def test_marker_arguments_are_normalised_or_refused_in_one_line(marker):
    limits, problem = _usage(*marker)
    if problem is not None:
        assert problem.startswith("test_m.py::test_x: @pytest.mark.op_budget") and "\n" not in problem
        assert "expected" in problem or "valid:" in problem or "keyword arguments only" in problem \
            or "must be a dict" in problem or "no tensorlib op" in problem, problem
        return
    for key, value in limits.items():
        values = value.values() if key == "max_calls" else [value]
        assert all(type(v) is int and v >= 0 for v in values), limits
    counts = Counts()
    counts.calls.update({"add": 2, "ones": 1})
    counts.bytes_by_op.update({"ones": 8})
    over = check_budget(counts, **limits)
    assert bool(over) == _exceeded(counts, limits)


def _exceeded(c, lim):
    return (c.ops > lim.get("max_ops", math.inf) or c.bytes > lim.get("max_bytes", math.inf)
            or c.device_bytes > lim.get("max_device_bytes", math.inf) or c.syncs > lim.get("max_syncs", math.inf)
            or any(c.calls.get(k, 0) > v for k, v in lim.get("max_calls", {}).items()))


def _source(v) -> str:
    """Python source for a generated value (repr, except for non-finite floats)."""
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_source(k)}: {_source(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_source(x) for x in v) + "]"
    return repr(v)


@pytest.fixture
def _importable(monkeypatch):
    import os
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("COLUMNS", "1000")


def _plugin_args():
    from importlib.metadata import entry_points
    installed = any(ep.value == "profiler.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "profiler.pytest_plugin"]


_CURATED = [   # valid limits that pass and that fail, and the wrong arguments the issue lists
    ((), {"max_ops": 2, "max_calls": {"add": 1, "ones": 1}, "max_bytes": "16 B", "max_syncs": 0}),
    ((), {"max_ops": 1}), ((), {"max_calls": {"add": 0}}), ((), {"max_bytes": "1 KiB", "max_device_bytes": 0}),
    ((), {"max_bytes": 15}), ((), {"max_ops": "10"}), ((), {"max_calls": {"add": "3"}}), ((), {"max_bytes": "10 XB"}),
    ((), {"max_ops": float("nan")}), ((), {"max_bytes": float("nan")}), ((), {"max_ops": True}),
    ((), {"max_syncs": -1}), ((), {"max_calls": {"matmull": 1}}), ((5,), {}), ((), {"max_time": 1}),
]


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.filter_too_much])
@given(generated=st.lists(_markers, min_size=30, max_size=30))
def test_generated_markers_in_a_child_pytest(pytester, _importable, tmp_path_factory, generated):
    assume(len({repr(m) for m in generated}) > 20)          # one child run: not on the all-minimal example
    markers = _CURATED + generated
    import tensorlib as tl
    with count_ops() as measured:
        tl.ones(2) + 1                                    # the body every generated test runs
    ran = tmp_path_factory.mktemp("ran") / "bodies"
    src = ["import pytest", "import tensorlib as tl", ""]
    expect = {}
    for i, (args, kwargs) in enumerate(markers):
        call = ", ".join([_source(a) for a in args] + [f"{k}={_source(v)}" for k, v in kwargs.items()])
        src += [f"@pytest.mark.op_budget({call})", f"def test_{i}():", f"    open({str(ran)!r}, 'a').write('{i} ')",
                "    tl.ones(2) + 1", ""]
        limits, problem = _usage(args, kwargs)
        expect[i] = ("error", problem) if problem else ("failed" if _exceeded(measured.counts, limits) else "passed",
                                                        None)
    pytester.makepyfile(test_m="\n".join(src))
    r = pytester.runpytest_subprocess(*_plugin_args(), "-rA", "-p", "no:cacheprovider")
    out = r.stdout.str() + r.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    bodies = set(ran.read_text().split()) if ran.exists() else set()
    lines = {ln.split()[1].split("::")[1]: ln for ln in out.splitlines()
             if ln.split()[:1] in (["PASSED"], ["FAILED"], ["ERROR"]) and "::test_" in ln}
    for i, (outcome, problem) in expect.items():
        line = lines[f"test_{i}"]
        assert line.startswith(outcome.upper()), (line, outcome)
        assert (str(i) in bodies) == (outcome != "error"), line
        if problem:
            assert problem.replace("test_m.py::test_x", f"test_m.py::test_{i}") in line, line
