"""pytest plugin (entry point `pytest11`, active on install).

- `@pytest.mark.op_budget(max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None, max_syncs=None)`
  fails a test whose op calls, bytes allocated or host-device syncs exceed the budget — counts, not
  seconds, so the check is deterministic. Active with or without `--tl-profile`. Its arguments are
  checked at the test's setup, before fixtures or body run: a wrong one is an ERROR naming the test, the
  argument and what it accepts.
- `--tl-profile` profiles every test; `--tl-profile-dir DIR` writes one Chrome trace per test; the run ends
  with a "tensorlib profile" section listing the `--tl-top N` most expensive tests. Results travel in
  each report's user_properties, so under pytest-xdist the controller's summary has every worker's tests.
- fixture `tl_profile`: an active profiler for the test body (`.events()`, `.key_averages()`: what is
  recorded so far, at any point).
- `profiler.op_budget(...)` as a context manager scopes the same budget to a block (see budget.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

_KEY = "tl_profile"


def pytest_addoption(parser):
    g = parser.getgroup("tensorlib", "tensorlib profiler")
    g.addoption("--tl-profile", action="store_true", help="profile every test with the tensorlib profiler")
    g.addoption("--tl-profile-dir", metavar="DIR", default=None,
                help="with --tl-profile: write one Chrome trace per test into DIR")
    g.addoption("--tl-top", metavar="N", type=int, default=10,
                help="with --tl-profile: how many of the most expensive tests to list (default 10)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "op_budget(max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None, max_syncs=None): "
        "fail the test when the tensorlib ops it runs exceed these counts (max_calls: {op name: count}; "
        "byte limits as ints or strings like '10 MB')")
    if config.getoption("--tl-profile-dir") and not config.getoption("--tl-profile"):
        config.option.tl_profile = True          # asking for traces implies profiling
    config._tl_results = []


def _safe_name(nodeid: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    return (s[:180] or "test") + ".pt.trace.json"


class _Profiling:
    """Profiler + counter around one test's call phase."""

    def __init__(self, item, prof=None):
        import profiler
        from .budget import count_ops
        self.item = item
        self.own = prof is None
        self.prof = prof if prof is not None else profiler.profile(profile_memory=True)
        self.counter = count_ops()

    def __enter__(self):
        if self.own:
            self.prof.start()
        self.counter.__enter__()
        return self

    def __exit__(self, *exc):
        self.counter.__exit__(*exc)
        if self.own:
            self.prof.stop()
        return False

    def result(self, config):
        c = self.counter.counts
        ka = self.prof.key_averages()
        total = ka.total_average()
        ops = [a for a in ka if getattr(a, "kind", "op") == "op"]
        top = sorted(ops, key=lambda a: a.self_cpu_time_total, reverse=True)[:3]
        res = {"nodeid": self.item.nodeid, "ops": c.ops, "bytes": c.bytes, "device_bytes": c.device_bytes,
               "syncs": c.syncs, "cpu_us": float(total.self_cpu_time_total),
               "cuda_us": float(getattr(total, "self_cuda_time_total", 0.0) or 0.0),
               "top": [(a.key, round(float(a.self_cpu_time_total), 1)) for a in top]}
        d = config.getoption("--tl-profile-dir")
        if d:
            Path(d).mkdir(parents=True, exist_ok=True)
            path = Path(d) / _safe_name(self.item.nodeid)
            self.prof.export_chrome_trace(str(path))
            res["trace"] = str(path)
        return res


@pytest.fixture
def tl_profile(request):
    """An active tensorlib profiler around the test body: `.events()` / `.key_averages()` give what is
    recorded so far at any point of the test (and everything after `tl_profile.stop()`)."""
    import profiler
    prof = profiler.profile(record_shapes=True, profile_memory=True)
    prof.start()
    request.node._tl_fixture_prof = prof
    try:
        yield prof
    finally:
        if prof._running:
            prof.stop()


def _budget(item):
    """The item's op_budget limits, checked and normalised; None without the marker. A wrong argument
    raises _BudgetUsage with one line naming the test, the argument and what it accepts."""
    marker = item.get_closest_marker("op_budget")
    if marker is None:
        return None
    from tensorlib import dispatch
    from .budget import LIMITS, budget_limits
    where = f"{item.nodeid}: @pytest.mark.op_budget"
    if marker.args:
        raise _BudgetUsage(f"{where} takes keyword arguments only ({', '.join(LIMITS)}), got positional "
                           f"{', '.join(repr(a)[:40] for a in marker.args)}")
    try:
        return budget_limits(marker.kwargs, ops=dispatch.registry())
    except (TypeError, ValueError) as e:
        raise _BudgetUsage(f"{where}: {e}") from None


class _BudgetUsage(Exception):
    """A wrong op_budget argument (reported at the test's setup, before its fixtures and body run)."""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Check the marker's arguments before anything of the test runs. A wrong argument errors this test
    at setup, as pytest reports its own marker-argument mistakes (a bad skipif condition, an unknown
    fixture in usefixtures): the test shows as ERROR, not FAILED (it did not run), and the rest of the
    session still runs, where a session-wide UsageError would hide every other result for one typo."""
    _checked_budget(item)


def _checked_budget(item):
    """_budget(item), or the test failed with the usage message (outside the except block, so the report
    is that one line and not a chained traceback)."""
    try:
        return _budget(item)
    except _BudgetUsage as e:
        problem = str(e)
    pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    limits = _checked_budget(item)     # checked at setup; again here for a marker added since
    profiling = item.config.getoption("--tl-profile")
    if limits is None and not profiling:
        return (yield)
    from .budget import check_budget, count_ops, exceeded_message
    if profiling:
        session = _Profiling(item, getattr(item, "_tl_fixture_prof", None))
        counter = session.counter
    else:
        session = None
        counter = count_ops()
    try:
        with session if session is not None else counter:
            result = yield          # the test body; its own failure propagates from here
    finally:
        if session is not None:
            try:
                item.user_properties.append((_KEY, session.result(item.config)))
            except Exception as e:  # noqa: BLE001 - a report must never break the test run
                item.user_properties.append((_KEY, {"nodeid": item.nodeid, "error": f"{type(e).__name__}: {e}"}))
    if limits is not None:
        over = check_budget(counter.counts, **limits)
        if over:
            pytest.fail(exceeded_message(counter.counts, over), pytrace=False)
    return result


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for k, v in getattr(report, "user_properties", ()):
        if k == _KEY:
            cfg = _config_of(report)
            if cfg is not None:
                cfg._tl_results.append(v)


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    _CONFIG[:] = [session.config]


def _config_of(report):
    return _CONFIG[0] if _CONFIG else None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("--tl-profile"):
        return
    results = [r for r in getattr(config, "_tl_results", []) if "error" not in r]
    errors = [r for r in getattr(config, "_tl_results", []) if "error" in r]
    tr = terminalreporter
    tr.write_sep("=", "tensorlib profile")
    if not results:
        tr.write_line("no tensorlib ops were profiled")
    n = config.getoption("--tl-top")
    top = sorted(results, key=lambda r: r["cpu_us"], reverse=True)[:n]
    width = max([len("test")] + [len(r["nodeid"]) for r in top])
    width = min(width, 70)
    has_cuda = any(r["cuda_us"] for r in results)        # no CUDA column where nothing ran on a GPU
    cuda_head = f"  {'CUDA ms':>8}" if has_cuda else ""
    if top:
        tr.write_line(f"{'test':<{width}}  {'ops':>7}  {'CPU ms':>9}{cuda_head}  {'alloc':>10}  top ops (self CPU us)")
    for r in top:
        name = r["nodeid"] if len(r["nodeid"]) <= width else "..." + r["nodeid"][-(width - 3):]
        tops = ", ".join(f"{k} {v:g}" for k, v in r["top"])
        cuda = f"  {r['cuda_us'] / 1e3:>8.3f}" if has_cuda else ""
        tr.write_line(f"{name:<{width}}  {r['ops']:>7}  {r['cpu_us'] / 1e3:>9.3f}{cuda}  "
                      f"{_fmt_bytes(r['bytes']):>10}  {tops}")
    tr.write_line(f"{len(results)} tests profiled" + (f"; traces in {config.getoption('--tl-profile-dir')}"
                                                    if config.getoption("--tl-profile-dir") else ""))
    for r in errors:
        tr.write_line(f"could not report {r['nodeid']}: {r['error']}")


def _fmt_bytes(n):
    from .budget import _fmt_bytes as f
    return f(n)
