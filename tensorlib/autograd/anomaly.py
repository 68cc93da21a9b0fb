"""Anomaly detection: forward tracebacks on nodes, NaN checks on every backward output."""
from __future__ import annotations

from .._hooks import count_user
from .._state import STATE


def set_detect_anomaly(mode: bool, check_nan: bool = True):
    _switch(bool(mode), check_nan)
    return _Restore(None)


def is_anomaly_enabled() -> bool:
    return STATE.anomaly


def is_anomaly_check_nan_enabled() -> bool:
    return STATE.anomaly_check_nan


def _switch(mode, check_nan):
    if mode and not STATE.anomaly:
        count_user("anomaly", +1)
    elif not mode and STATE.anomaly:
        count_user("anomaly", -1)
    STATE.anomaly = mode
    STATE.anomaly_check_nan = check_nan


class _Restore:
    def __init__(self, prev):
        self.prev = prev

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class detect_anomaly:
    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = (STATE.anomaly, STATE.anomaly_check_nan)
        _switch(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _switch(*self.prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with detect_anomaly(self.check_nan):
                return fn(*a, **k)
        return wrapper


def set_anomaly_enabled(mode: bool, check_nan: bool = True) -> None:
    """torch.set_anomaly_enabled: switch anomaly detection on or off for this thread (the state
    detect_anomaly and set_detect_anomaly switch)."""
    _switch(bool(mode), bool(check_nan))
