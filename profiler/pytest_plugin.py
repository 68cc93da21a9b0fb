"""pytest plugin (entry point `pytest11`, active on install).

`@pytest.mark.op_budget(max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None, max_syncs=None)`
fails a test whose op calls, bytes allocated or host-device syncs exceed the budget — counts, not seconds,
so the check is deterministic. It is active with or without `--tl-profile`.
"""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "op_budget(max_ops=None, max_calls=None, max_bytes=None, max_device_bytes=None, max_syncs=None): "
        "fail the test when the tensorlib ops it runs exceed these counts (max_calls: {op name: count}; "
        "byte limits as ints or strings like '10 MB')")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("op_budget")
    if marker is None:
        yield
        return
    from .budget import LIMITS, check_budget, count_ops
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: op_budget takes keyword arguments only ({', '.join(LIMITS)})")
    unknown = set(marker.kwargs) - set(LIMITS)
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: unknown op_budget limit(s) {sorted(unknown)}; "
                                f"valid: {', '.join(LIMITS)}")
    counter = count_ops()
    with counter:
        outcome = yield
    item.user_properties.append(("tl_op_counts", dict(counter.counts.calls)))
    if outcome.excinfo is not None:
        return
    over = check_budget(counter.counts, **marker.kwargs)
    if over:
        c = counter.counts
        report = "\n".join(f"  - {line}" for line in over)
        pytest.fail(f"op budget exceeded ({c.ops} op calls, {c.bytes} bytes, {c.syncs} syncs measured):\n{report}",
                    pytrace=False)
