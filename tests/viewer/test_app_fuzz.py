"""Random traces and random key sequences through the whole app: it must never raise."""

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer.app import ViewerApp
from viewer.model import from_events

from .test_bad_input import event

KEYS = ["w", "s", "a", "d", "f", "0", "full_stop", "comma", "left", "right", "up", "down",
        "left_square_bracket", "right_square_bracket", "escape", "pagedown", "pageup",
        "o", "c", "m", "e", "t", "3", "g", "enter", "question_mark", "escape", "n", "N"]


async def drive(trace, keys):
    app = ViewerApp(trace=trace)
    async with app.run_test(size=(90, 30)) as pilot:
        for _ in range(50):
            await pilot.pause()
            if app.query("#status"):
                break
        await pilot.press(*keys)
        await pilot.press("t", "slash", "a", "enter", "escape")
        await pilot.pause()
    return app


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=20), st.lists(st.sampled_from(KEYS), max_size=25))
def test_random_traces_and_keys_never_crash(events, keys):
    trace = from_events(events)
    app = asyncio.run(drive(trace, keys))
    assert app.return_code in (None, 0)
