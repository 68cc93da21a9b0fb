"""Pilot tests: every binding and view, driven headless through App.run_test()."""

import json

import numpy as np
from rich.cells import cell_len
import pytest

from viewer.app import HelpScreen, ViewerApp
from viewer.calltree import CallTreeView
from viewer.details import Details
from viewer.model import from_events
from viewer.opsview import OpsView
from viewer.timeline import GUTTER, Timeline

from .hostile import wait_loaded

SIZE = (120, 40)


async def start(app, pilot):
    """Wait until the worker's result is on screen (the status bar or the error line is mounted)."""
    await wait_loaded(app, pilot)
    return app.query_one(Timeline) if app.trace is not None else None


def wheel(x, shift=False):
    """A stand-in wheel event: Pilot has no scroll helper."""
    return type("Wheel", (), {"x": x, "y": 3, "shift": shift, "stop": lambda self: None})()


def index_of(trace, name):
    return next(i for i in range(len(trace)) if trace.name_of(i) == name)


async def test_loads_in_a_worker_and_shows_lanes(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        assert app.trace is not None and len(app.trace) == 175
        text = "\n".join(tl.render_line(y).text for y in range(1, 12))
        assert "forward" in text and "aten::linear" in text
        assert app.first_paint_at is not None


async def test_zoom_pan_fit_reset_keys(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        t0, t1 = tl.t0, tl.t1
        await pilot.press("w")
        assert tl.t1 - tl.t0 == pytest.approx((t1 - t0) / 1.5)
        await pilot.press("s", "s")
        assert tl.t1 - tl.t0 == pytest.approx((t1 - t0) * 1.5)
        a0 = tl.t0
        await pilot.press("d")
        assert tl.t0 > a0
        await pilot.press("a", "a")
        assert tl.t0 < a0
        ev = index_of(app.trace, "aten::addmm")
        tl.select(ev)
        await pilot.press("f")
        dur = float(app.trace.dur[ev])
        assert tl.t0 <= app.trace.ts[ev] and tl.t1 >= app.trace.ts[ev] + dur
        assert tl.t1 - tl.t0 < dur * 1.2
        await pilot.press("0")
        assert (tl.t0, tl.t1) == pytest.approx((t0, t1))


async def test_event_navigation_keys(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        tr = app.trace
        lin = index_of(tr, "aten::linear")
        tl.select(lin)
        await pilot.press("down")
        child = tl.selected
        assert tr.parent[child] == lin
        await pilot.press("up")
        assert tl.selected == lin
        await pilot.press("full_stop")
        nxt = tl.selected
        assert nxt != lin and tr.lane[nxt] == tr.lane[lin] and tr.depth[nxt] == tr.depth[lin]
        assert tr.ts[nxt] > tr.ts[lin]
        await pilot.press("comma")
        assert tl.selected == lin
        await pilot.press("right")
        assert tl.selected == nxt
        await pilot.press("left")
        assert tl.selected == lin
        await pilot.press("escape")
        assert tl.selected == -1


async def test_follow_flows_and_details(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        tr = app.trace
        launch = next(int(s) for s, c in zip(tr.flow_src, tr.flow_cat) if c == "ac2g")
        tl.select(launch)
        await pilot.pause()
        details = str(app.query_one(Details).body.render())
        assert "correlation" in details and "flows out" in details
        await pilot.press("right_square_bracket")
        kernel = tl.selected
        assert tr.cat_of(kernel) in ("kernel", "gpu_memset")
        await pilot.press("left_square_bracket")
        assert tl.selected == launch
        # Selecting a CPU op highlights the kernels its launches started.
        addmm = index_of(tr, "aten::addmm")
        tl.select(addmm)
        gpu = {k for k in tl.related if tr.lanes[tr.lane[k]].pid == 0}
        assert gpu and all(tr.cat_of(k) in ("kernel", "gpu_memset") for k in gpu)
        assert gpu == {k for k in tr.launched(addmm) if tr.cat_of(k) in ("kernel", "gpu_memset")}


async def test_mouse_click_wheel_drag(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        # Find a cell showing an event and click it.
        target = None
        for y in range(1, 15):
            owner = tl.owners(*tl.rows[tl.top + y - 1])
            hits = np.flatnonzero(owner >= 0)
            if len(hits):
                target = (GUTTER + int(hits[0]), y, int(owner[hits[0]]))
                break
        x, y, ev = target
        await pilot.click(Timeline, offset=(x, y))
        assert tl.selected == ev
        span = tl.t1 - tl.t0
        await pilot.mouse_down(Timeline, offset=(GUTTER + 40, 3))
        await pilot.hover(Timeline, offset=(GUTTER + 50, 3))
        await pilot.mouse_up(Timeline, offset=(GUTTER + 50, 3))
        assert tl.t1 - tl.t0 == pytest.approx(span)
        assert tl.selected == ev  # a drag is not a click
        t0 = tl.t0
        tl.on_mouse_scroll_up(wheel(x=GUTTER + 10))
        assert tl.t1 - tl.t0 < span and tl.t0 > t0 - 1


async def test_ops_table_sort_filter_and_jump(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("o")
        ops = app.query_one(OpsView)
        t = ops.table
        assert [t.total[i] for i in ops.shown] == sorted(t.total, reverse=True)
        await pilot.press("3")  # count
        assert ops.sort_col == "count"
        assert [t.count[i] for i in ops.shown] == sorted(t.count, reverse=True)
        await pilot.press("3")
        assert [t.count[i] for i in ops.shown] == sorted(t.count)
        await pilot.press("g")
        assert ops.by_shape and any(ops.table.shapes)
        await pilot.press("g")
        ops.query_one("#ops-filter").value = "addmm"
        await pilot.pause()
        assert ops.shown and all("addmm" in ops.table.name[i].lower() for i in ops.shown)
        ops.query_one("#ops-table").focus()
        await pilot.press("enter")
        await pilot.pause()
        tl = app.query_one(Timeline)
        assert app.query_one("#tabs").active == "timeline"
        assert "addmm" in app.trace.name_of(tl.selected).lower()
        assert tl.match_mask is not None and tl.match_mask[tl.selected]


async def test_search_next_previous_and_close(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        await pilot.press("slash")
        await pilot.press(*"aten::mm")
        await pilot.press("enter")
        tr = app.trace
        mm = [i for i in range(len(tr)) if "aten::mm" in tr.name_of(i).lower()]
        assert len(app.matches) >= len(mm) >= 2
        first = tl.selected
        assert first == int(app.matches[0])
        await pilot.press("enter")
        assert tl.selected == int(app.matches[1])
        await pilot.press("shift+enter")
        assert tl.selected == first
        await pilot.press("escape")
        assert not app.query_one("#search").has_class("open")
        await pilot.press("n")
        assert tl.selected == int(app.matches[1])
        await pilot.press("N")
        assert tl.selected == first


async def test_search_regex_and_args(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        app.run_search("/^aten::(add|mul)_?$/", 1)
        wanted = ("aten::add", "aten::add_", "aten::mul", "aten::mul_")
        assert len(app.matches) and all(app.trace.name_of(int(i)) in wanted
                                        for i in app.matches)
        app.run_search("Sequence number", 1)  # only in args
        assert len(app.matches) and tl.selected in set(app.matches.tolist())
        app.run_search("/[unclosed/", 1)
        assert "bad regex" in str(app.query_one("#status").render())


async def test_tabs_calltree_memory_help_quit(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        tabs = app.query_one("#tabs")
        for key, tab in (("o", "ops"), ("c", "calltree"), ("m", "memory"), ("e", "warnings"), ("t", "timeline")):
            await pilot.press(key)
            assert tabs.active == tab
        await pilot.press("c")
        tree = app.query_one(CallTreeView)
        first = next(n for lane in tree.root.children for n in lane.children if n.allow_expand)
        assert not first.children  # children are added only on expansion
        first.expand()
        await pilot.pause()
        assert first.children
        totals = [tree.tree_data.total[c.data.path] for c in first.children]
        assert totals == sorted(totals, reverse=True)
        assert sum(totals) <= tree.tree_data.total[first.data.path]
        await pilot.press("t", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one("#help-text").render())
        for b in (*ViewerApp.BINDINGS, *Timeline.BINDINGS):
            assert b.description in help_text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0 or app.return_code is None


async def test_memory_view_names_the_peak(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("m")
        await pilot.pause()
        mv = app.query_one("#memory-plots")
        head = mv.render_line(0).text
        assert "CUDA:0 allocated" in head and "peak 65.1 MiB" in head and "aten::" in head
        plot = "".join(mv.render_line(y).text for y in range(2, 8))
        assert "▼" in plot and "░" in plot  # the peak, and the 65 MiB alive at start as a band


async def test_bad_file_shows_one_line_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"traceEvents": [{"ph": "X",, }]}')
    app = ViewerApp(str(p))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.trace is None
        assert "invalid JSON at line 1" in app.error
        msg = str(app.query_one("#error").render())
        assert "error:" in msg
        await pilot.press("q")


async def test_markup_and_escapes_never_interpreted(tmp_path):
    evil = "[bold red]x[/][link=http://e]y\x1b[2J\x07"
    p = tmp_path / "evil.json"
    p.write_text(json.dumps([{"ph": "X", "name": evil, "cat": "[i]", "ts": 0, "dur": 100, "pid": "[b]p",
                              "tid": 1, "args": {"[k]": "\x1b]0;title\x07"}}]))
    app = ViewerApp(str(p))
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        line = tl.render_line(1).text
        assert "[bold red]x[/]" in line and "\x1b" not in line
        tl.select(0)
        await pilot.pause()
        details = str(app.query_one(Details).body.render())
        assert "[link=http://e]y\\x1b[2J\\x07" in details
        assert "\x1b" not in details and "\x07" not in details


async def test_diff_tab(cpu_path, cuda_path):
    app = ViewerApp(cpu_path, diff_path=cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.query_one("#tabs").active == "diff"  # opens on the comparison
        await pilot.press("t", "x")
        assert app.query_one("#tabs").active == "diff"
        dt = app.query_one("#diff-table")
        assert dt.row_count > 100


async def test_partially_overlapping_events_are_all_drawn():
    tr = from_events([{"ph": "X", "name": n, "ts": ts, "dur": d, "pid": 1, "tid": 1}
                      for n, ts, d in (("aaaa", 0, 100), ("bbbb", 50, 100), ("cccc", 120, 50))])
    app = ViewerApp(trace=tr)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        text = "\n".join(tl.render_line(y).text for y in range(1, 4))
        for n in ("aaaa", "bbbb", "cccc"):
            assert n in text


def test_owners_pick_the_dominant_event():
    # 1000 tiny events and one long one inside a 10-cell view: each cell shows what covers most of it.
    evs = [{"ph": "X", "name": f"t{i}", "ts": i * 0.01, "dur": 0.005, "pid": 1, "tid": 1} for i in range(500)]
    evs.append({"ph": "X", "name": "long", "ts": 6.0, "dur": 4.0, "pid": 1, "tid": 1})
    tr = from_events(evs)
    tl = Timeline(tr)
    tl.t0, tl.t1 = 0.0, 10_000.0
    owner = tl.owners(0, 0, 10)
    long = index_of(tr, "long")
    assert list(owner[6:10]) == [long] * 4
    assert all(o >= 0 and tr.name_of(int(o)).startswith("t") for o in owner[:5])
    assert owner[5] == -1


async def test_empty_trace_opens_with_a_warning(tmp_path):
    p = tmp_path / "empty.json"
    p.write_text('{"traceEvents": []}')
    app = ViewerApp(str(p))
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        assert app.error is None and len(app.trace) == 0
        assert "No events to show" in tl.render_line(1).text
        for key in ("w", "s", "a", "d", "f", "0", "full_stop", "comma", "up", "down", "right_square_bracket",
                    "left_square_bracket", "escape", "pagedown", "o", "c", "m", "e", "t"):
            await pilot.press(key)
        assert app.query_one("#tabs").active == "timeline"
        await pilot.press("slash", "x", "enter")
        assert "no match" in str(app.query_one("#status").render())


async def test_lane_scrolling_keys_and_shift_wheel():
    tr = from_events([{"ph": "X", "name": f"op{t}", "ts": 0, "dur": 10, "pid": 1, "tid": t} for t in range(80)])
    app = ViewerApp(trace=tr)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        assert tl.top == 0
        await pilot.press("pagedown")
        step = tl.top
        assert step > 0
        assert "op" in tl.render_line(1).text and f"tid {step}" in tl.render_line(1).text
        await pilot.press("pageup")
        assert tl.top == 0
        await pilot.press("shift+down")
        assert tl.top == step
        # Wheel over the lane names (or with shift) scrolls lanes instead of zooming.
        span = tl.t1 - tl.t0
        tl.on_mouse_scroll_down(wheel(x=2))
        assert tl.top == step + 1
        tl.on_mouse_scroll_up(wheel(x=GUTTER + 5, shift=True))
        assert tl.top == step
        assert tl.t1 - tl.t0 == span
        tl.on_mouse_scroll_down(wheel(x=GUTTER + 5))
        assert tl.t1 - tl.t0 > span


@pytest.mark.parametrize("key,column", list(enumerate(
    ("name", "cat", "count", "total", "self", "avg", "min", "max", "pct"), start=1)))
async def test_every_sort_key(cpu_path, key, column):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("o")
        ops = app.query_one(OpsView)
        await pilot.press(str(key))
        if column == "total":  # already the sort column: the key flips the direction
            await pilot.press(str(key))
        assert ops.sort_col == column
        values = getattr(ops.table, column)
        shown = [values[i] for i in ops.shown]
        if column in ("name", "cat"):
            shown = [v.lower() for v in shown]
            assert shown == sorted(shown)
        else:
            assert shown == sorted(shown, reverse=True)
        # The table widget shows the same order.
        dt = ops.query_one("#ops-table")
        assert [int(k.value) for k in list(dt.rows)[:5]] == ops.shown[:5]


async def test_big_trace_search_runs_in_a_worker(cpu_path, monkeypatch):
    import viewer.app as app_mod

    monkeypatch.setattr(app_mod, "BACKGROUND_SEARCH_EVENTS", 1)
    app = ViewerApp(cpu_path)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        app.run_search("aten::mm", 1)
        assert "searching" in str(app.query_one("#status").render())
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(app.matches) >= 2 and tl.selected == int(app.matches[0])
        app.run_search("/(/", 1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "bad regex" in str(app.query_one("#status").render())


async def test_flows_bound_after_first_paint_reach_status_and_warnings(cuda_path):
    app = ViewerApp(cuda_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.trace.pending_flows is None and len(app.trace.flow_src) == 33
        assert "33 flows" in str(app.query_one("#status").render())
        await pilot.press("e")
        text = str(app.query_one("#warnings-text").render())
        assert "only one end" in text and "duplicate thread_name" in text
        assert "Warnings (2)" in str(app.query_one("#tabs").get_tab("warnings").label)


async def test_wide_characters_keep_every_line_the_terminal_width():
    names = ["日本語のカーネル名前", "🔥🔥 fused_kernel 🔥", "ok", "e\u0301\u0301 combining"]
    tr = from_events([{"ph": "X", "name": n, "ts": i * 5, "dur": 4 + i, "pid": "进程", "tid": f"线程{i % 2}"}
                      for i, n in enumerate(names * 5)])
    app = ViewerApp(trace=tr)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        for zoom in range(4):
            for y in range(tl.size.height):
                strip = tl.render_line(y)
                assert sum(cell_len(seg.text) for seg in strip) == tl.size.width
            await pilot.press("w")


async def test_zooming_far_from_zero_never_divides_by_zero():
    # 4.6e15 µs is 4.6e18 ns, where neighbouring float64 values are 512 ns apart.
    tr = from_events([{"ph": "X", "name": "far", "ts": 4.6e15, "dur": 0.001, "pid": 1, "tid": 1}])
    app = ViewerApp(trace=tr)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        await pilot.press(*["w"] * 60, "f", "d", "a")
        assert tl.t1 > tl.t0
        for y in range(tl.size.height):
            tl.render_line(y)


async def test_counter_series_are_drawn_as_sparkline_lanes():
    def C(name, pid, ts, **series):
        return {"ph": "C", "name": name, "pid": pid, "ts": ts, "args": series}

    used = [(0, 0), (25, 50), (50, 100), (75, 25)]  # (µs, value)
    evs = [{"ph": "X", "name": "work", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
           {"ph": "X", "name": "other", "ts": 10, "dur": 80, "pid": 2, "tid": 1},
           *(C("mem", 1, t, used=v, free=7) for t, v in used),
           C("util", 9, 40, busy=0.5), C("util", 9, 60, busy=0.75)]
    tr = from_events(evs)
    app = ViewerApp(trace=tr)
    async with app.run_test(size=SIZE) as pilot:
        tl = await start(app, pilot)
        lines = [tl.render_line(y).text for y in range(1, 7)]
        gutters = [ln[:GUTTER] for ln in lines]
        # A process's series right after its lanes; a counter of a process without lanes at the end.
        assert [g.split()[0] for g in gutters[:5]] == ["tid", "mem", "mem", "tid", "util"]
        # The value range in the title: bytes for memory-like names (as the Memory tab does), else numbers.
        assert gutters[1].rstrip("│").endswith("0B–100B") and "used" in gutters[1]
        assert gutters[2].rstrip("│").endswith("7B–7B") and "free" in gutters[2]
        assert gutters[4].rstrip("│").endswith("0.5–0.75")
        W = tl.track_width
        cell = lambda t_us: int((t_us * 1000 - tl.t0) // ((tl.t1 - tl.t0) / W))  # noqa: E731
        spark = lines[1][GUTTER:]
        assert len(spark) == W
        assert spark[cell(50)] == "█"  # the maximum
        assert set(spark[: cell(0)]) <= {" "}  # nothing before the first sample
        assert set(spark[cell(0) + 1 : cell(25)]) == {"▁"}  # the minimum, held until the next sample
        assert set(spark[cell(75) + 1 :]) == {"▃"}  # 25 of 0–100, held to the end
        assert set(lines[2][GUTTER:][cell(0) + 1 :]) == {"▄"}  # a constant series sits mid-height
        # Zooming redraws the series for the new range; counter rows select nothing.
        tl.set_view(45_000, 55_000)
        k = cell(50)  # 50 held until 50 µs, then 100: the cell holding both shows the higher
        assert tl.render_line(2).text[GUTTER:] == "▅" * k + "█" * (W - k)
        assert tl.event_at(GUTTER + 3, 2) == -1
        await pilot.click(Timeline, offset=(GUTTER + 3, 2))
        assert tl.selected == -1
        await pilot.press("full_stop")  # steps through events, skipping the counter rows
        assert tr.name_of(tl.selected) in ("work", "other")
