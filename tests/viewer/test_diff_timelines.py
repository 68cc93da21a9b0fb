"""The diff's side-by-side timelines (the A|B tab, X): A above B on one time axis aligned at each
trace's first ProfilerStep (or its start), zoom and pan moving both, the picked op highlighted in
both, at 80x24; headless through App.run_test()."""

from __future__ import annotations

import numpy as np
import pytest
from rich.cells import cell_len

from viewer.app import ViewerApp
from viewer.difftimeline import AlignedTimeline, DiffTimelines, alignment, op_mask
from viewer.model import from_events
from viewer.timeline import _MATCH, _SELECTED, GUTTER, Timeline

from .hostile import screen_text, wait_loaded
from .test_steps import loop_events


def shifted(events: list[dict], by_us: float, slow: float = 1.0) -> list[dict]:
    """The same loop started `by_us` later, every span `slow` times as long."""
    out = []
    for e in events:
        e = dict(e)
        if "ts" in e:
            e["ts"] = e["ts"] * slow + by_us
        if "dur" in e:
            e["dur"] = e["dur"] * slow
        out.append(e)
    return out


def two_runs():
    # A: 3 steps from t=0 after 5 ms of setup; B: 4 steps, twice as slow, from a clock 1 s later.
    setup = [{"ph": "X", "name": "setup", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 4000}]
    a = from_events(setup + shifted(loop_events(3), 5000))
    b = from_events(shifted(setup, 1_000_000) + shifted(loop_events(4, first=1), 1_000_000 + 5000, slow=2.0))
    return a, b


def same_view(ta: AlignedTimeline, tb: AlignedTimeline) -> bool:
    """The two views cover the same time from their alignment points (to float rounding)."""
    return (ta.t0 - ta.align == pytest.approx(tb.t0 - tb.align, abs=1e-3)
            and ta.t1 - ta.align == pytest.approx(tb.t1 - tb.align, abs=1e-3))


def ruler(tl: Timeline) -> str:
    return tl.render_line(0).text[GUTTER:]


def lane_ys(tl: Timeline) -> range:
    """The screen lines of the lane rows on screen."""
    return range(tl.header, min(tl.size.height, tl.header + len(tl.rows) - tl.top))


def lane_text(tl: Timeline) -> str:
    return "\n".join(tl.render_line(y).text for y in lane_ys(tl))


def styles_of(tl: Timeline, name: str) -> set:
    """The styles of the cells that draw an event called `name` on the lanes."""
    out = set()
    for y in lane_ys(tl):
        strip = tl.render_line(y)
        owner = tl.owners(*tl.rows[tl.top + y - tl.header])
        x = 0
        for seg in strip:
            c = x - GUTTER
            if 0 <= c < len(owner) and owner[c] >= 0 and tl.trace.name_of(int(owner[c])) == name:
                out.add(seg.style)
            x += cell_len(seg.text)
    return out


def test_alignment_is_the_first_step_or_the_start():
    a, b = two_runs()
    assert alignment(a) == (float(a.ts[np.flatnonzero(np.array([a.name_of(i) for i in range(len(a))])
                                                      == "ProfilerStep#1")[0]]), "ProfilerStep#1")
    no_steps = from_events([{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 70, "dur": 5}])
    assert alignment(no_steps) == (float(no_steps.home[0]), "the trace's start")
    assert op_mask(b, "ProfilerStep*", "user_annotation").sum() == 4
    assert op_mask(b, "aten::linear", "cpu_op").sum() == 4 and op_mask(b, "aten::linear", "other").sum() == 0


async def test_two_timelines_stacked_aligned_and_moving_together():
    a, b = two_runs()
    app = ViewerApp(trace=a, diff_trace=b)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("X")
        await pilot.pause()
        assert app.query_one("#tabs").active == "sidebyside"
        view = app.query_one(DiffTimelines)
        ta, tb = view.tl_a, view.tl_b
        assert app.focused is ta
        # Stacked: A's timeline above B's, both on screen at 80x24 with their steps rows and lanes.
        assert ta.region.y < tb.region.y and ta.region.bottom <= tb.region.y
        assert ta.region.height >= 4 and tb.region.height >= 4 and view.region.bottom <= 24
        text = screen_text(app)[0]
        assert "A = " in text and "B = " in text and "0 at ProfilerStep#1" in text
        assert "steps (3)" in text and "steps (4)" in text
        assert "▎#1" in ta.render_line(1).text and "▎#1" in tb.render_line(1).text
        # One axis: the same time span per cell, the same ruler labels at the same cells, 0 at step 1.
        assert ruler(ta) == ruler(tb) and "▏0" in ruler(ta)
        assert ta.render_line(0).text[:GUTTER] == tb.render_line(0).text[:GUTTER]
        zero = ruler(ta).index("▏0")
        # Step 1 starts in that column in both (A's clock is 1 s behind B's).
        assert ta.step_owners(ta.track_width)[zero + 1] >= 0 and tb.step_owners(tb.track_width)[zero + 1] >= 0
        assert ta.step_owners(ta.track_width)[zero - 1] < 0 and tb.step_owners(tb.track_width)[zero - 1] < 0
        # Zoom and pan in A move B by the same time; in B, A follows.
        for keys in (("w", "w", "w"), ("d", "d"), ("a",), ("s",)):
            await pilot.press(*keys)
            assert same_view(ta, tb)
            assert ruler(ta) == ruler(tb)
        await pilot.press("tab")
        assert app.focused is tb
        await pilot.press("w", "d")
        assert same_view(ta, tb)
        await pilot.press("0")  # home: both traces' spans, aligned
        assert ta.t0 - ta.align <= min(ta.home_rel[0], tb.home_rel[0])
        assert ta.t1 - ta.align >= max(ta.home_rel[1], tb.home_rel[1])
        assert "▏0" in ruler(ta) and ruler(ta) == ruler(tb)


async def test_the_picked_op_is_highlighted_in_both():
    a, b = two_runs()
    app = ViewerApp(trace=a, diff_trace=b)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("X")
        await pilot.pause()
        view = app.query_one(DiffTimelines)
        ta, tb = view.tl_a, view.tl_b
        # The Diff table's row under the cursor (the largest change: the step) is the op picked at first.
        top = app.query_one("DiffView").rows[0]
        assert view.picked == (top.name, top.cat) == ("ProfilerStep*", "user_annotation")
        assert "ProfilerStep* (user_annotation)" in str(app.query_one("#sbs-info").render())
        # Pick aten::linear in A (an event of A's): A's one is selected, every linear of both is highlighted.
        first = next(i for i in range(len(a)) if a.name_of(i) == "aten::linear")
        ta.select(first)
        await pilot.pause()
        assert view.picked == ("aten::linear", "cpu_op")
        assert ta.match_mask is not None and tb.match_mask is not None
        assert int(ta.match_mask.sum()) == 3 and int(tb.match_mask.sum()) == 4
        await pilot.press("0")
        await pilot.pause()
        assert _SELECTED in styles_of(ta, "aten::linear") and _MATCH in styles_of(tb, "aten::linear")
        info = str(app.query_one("#sbs-info").render())
        assert "aten::linear (cpu_op)" in info and "per step" in info and "B/A 2.00x" in info
        # The app's details pane (trace A's) was not handed an index of B's.
        assert app.query_one("#tabs").active == "sidebyside"


async def test_diff_table_row_shows_the_op_in_both_timelines():
    a, b = two_runs()
    app = ViewerApp(trace=a, diff_trace=b)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        assert app.query_one("#tabs").active == "diff"
        assert "Enter or X" in screen_text(app)[0]
        dt = app.query_one("#diff-table")
        view_rows = app.query_one("DiffView").rows
        row = next(k for k, r in enumerate(view_rows) if r.name == "AddmmBackward0")
        dt.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#tabs").active == "sidebyside"
        view = app.query_one(DiffTimelines)
        assert view.picked == ("AddmmBackward0", "cpu_op")
        ta, tb = view.tl_a, view.tl_b
        assert ta.trace.name_of(ta.selected) == "AddmmBackward0"
        # Fitted to A's first one; B shows the same aligned time (B is slower: its op comes later there).
        assert "AddmmBackward0" in lane_text(ta) and same_view(ta, tb)
        assert _SELECTED in styles_of(ta, "AddmmBackward0")
        await pilot.press("0")
        await pilot.pause()
        assert _MATCH in styles_of(tb, "AddmmBackward0") and _MATCH in styles_of(ta, "AddmmBackward0")
        assert same_view(ta, tb)
        assert "AddmmBackward0 (cpu_op)" in screen_text(app)[0]


async def test_no_steps_aligns_at_the_start_and_no_diff_says_so(cpu_path):
    ev = [{"ph": "X", "name": n, "cat": "cpu_op", "pid": 1, "tid": 1, "ts": t, "dur": 100}
          for n, t in (("aten::mm", 0), ("aten::add", 200))]
    a = from_events(ev)
    b = from_events(shifted(ev, 50_000, slow=1.5))
    app = ViewerApp(trace=a, diff_trace=b)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("X")
        await pilot.pause()
        text = screen_text(app)[0]
        assert "0 at the trace's start" in text
        ta, tb = app.query_one("#sbs-a", AlignedTimeline), app.query_one("#sbs-b", AlignedTimeline)
        assert ta.header == 1 and ruler(ta) == ruler(tb)
        assert "aten::mm" in lane_text(ta) and "aten::mm" in lane_text(tb)
        # aten::mm starts in the same column in both.
        assert lane_text(ta).index("aten::mm") == lane_text(tb).index("aten::mm")
    app = ViewerApp(cpu_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("X")
        assert "no diff" in str(app.query_one("#status").render())
        assert app.query_one("#tabs").active == "timeline"
