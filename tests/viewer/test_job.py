"""A distributed job's rank traces opened as one: ranks side by side on one clock (viewer/job.py)."""
from __future__ import annotations

import json

import pytest

from viewer.__main__ import main
from viewer.app import ViewerApp
from viewer.job import PID_STRIDE, per_rank_steps, rank_of_pid
from viewer.model import load_trace

from .hostile import wait_loaded


def _rank_trace(rank, base, compute_us, host="h", with_info=True):
    """Two profiler steps: `compute_us` of work on the main thread, then an all-reduce on the worker
    thread until the step ends at 1000 µs (the slower rank computes longer and waits less)."""
    ev = [{"ph": "M", "name": "process_name", "pid": 4242, "tid": 0, "args": {"name": "python"}}]
    for s in range(2):
        t = s * 1000.0
        ev += [{"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{s}", "pid": 4242, "tid": 1, "ts": t,
                "dur": 1000.0, "args": {}},
               {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 4242, "tid": 1, "ts": t + 1,
                "dur": compute_us, "args": {}},
               {"ph": "X", "cat": "user_annotation", "name": "mpi:all_reduce", "pid": 4242, "tid": 2,
                "ts": t + 1 + compute_us, "dur": 998.0 - compute_us, "args": {}},
               {"ph": "s", "id": 7, "pid": 4242, "tid": 1, "ts": t + 1, "cat": "ac2g", "name": "ac2g"},
               {"ph": "f", "id": 7, "pid": 4242, "tid": 2, "ts": t + 1 + compute_us, "cat": "ac2g", "name": "ac2g",
                "bp": "e"}]
    doc = {"traceEvents": ev, "baseTimeNanoseconds": base, "host_name": host}
    if with_info:
        doc["distributedInfo"] = {"backend": "mpi", "rank": rank, "world_size": 2}
    return doc


@pytest.fixture
def job(tmp_path):
    d = tmp_path / "job"
    d.mkdir()
    base = 1_700_000_000_000_000_000
    # rank 1 started its profiler 500 µs after rank 0; files named so that name order is not rank order
    (d / "b.pt.trace.json").write_text(json.dumps(_rank_trace(0, base, 600.0)))
    (d / "a.pt.trace.json").write_text(json.dumps(_rank_trace(1, base + 500_000, 200.0)))
    return d


def test_a_directory_loads_as_ranks_side_by_side_on_one_clock(job):
    t = load_trace(str(job))
    ranks = {rank_of_pid(ln.pid) for ln in t.lanes if ln.pid is not None}
    assert ranks == {0, 1}
    assert all(ln.pid // PID_STRIDE == rank_of_pid(ln.pid) for ln in t.lanes if isinstance(ln.pid, int))
    assert {ln.process.split(" (")[0] for ln in t.lanes if isinstance(ln.pid, int)} == {"rank 0 · python",
                                                                                         "rank 1 · python"}
    # lanes grouped by rank: every rank-0 lane before every rank-1 lane
    order = [rank_of_pid(ln.pid) for ln in t.lanes if isinstance(ln.pid, int)]
    assert order == sorted(order)
    step0 = [i for i in range(len(t.names)) if t.names[i] == "ProfilerStep#0"][0]
    starts = sorted(t.ts[t.name_id == step0].tolist())
    assert starts[1] - starts[0] == 500_000          # aligned by baseTimeNanoseconds (ns)
    assert t.meta["distributedInfo"]["ranks"] == [0, 1]
    assert not t.warnings


def test_several_files_are_a_job_too_and_doubtful_clocks_are_flagged(tmp_path):
    a, b = tmp_path / "r0.json", tmp_path / "r1.json"
    a.write_text(json.dumps(_rank_trace(0, 10**18, 300.0, host="h1")))
    b.write_text(json.dumps(_rank_trace(0, 10**18 + 10**12, 300.0, host="h2", with_info=False)))
    t = load_trace([str(a), str(b)])
    text = " | ".join(t.warnings)
    assert "2 hosts" in text and "do not overlap in time" in text and "no distributedInfo.rank" in text


def test_ranks_names_the_slowest_rank_per_step(job, capsys):
    rows = per_rank_steps(load_trace(str(job)))
    assert [(r["step"], r["rank"], r["slowest"]) for r in rows] == [
        ("ProfilerStep#0", 0, True), ("ProfilerStep#0", 1, False), ("ProfilerStep#1", 0, True),
        ("ProfilerStep#1", 1, False)]
    r0 = rows[0]
    assert r0["compute_ns"] == 600_000 and r0["comm_ns"] == 398_000 and r0["step_ns"] == 1_000_000
    assert main(["ranks", str(job)]) == 0
    out = capsys.readouterr().out
    assert out.count("<- slowest") == 2


def test_summary_per_rank_and_across_ranks(job, capsys):
    assert main(["summary", "--per-rank", "--json", str(job)]) == 0
    per = json.loads(capsys.readouterr().out)
    assert sorted(per) == ["rank 0", "rank 1"]
    addmm = {k: [r for r in v if r["name"] == "aten::addmm"][0] for k, v in per.items()}
    assert addmm["rank 0"]["count"] == 2 and addmm["rank 0"]["total_ns"] == 1_200_000
    assert main(["summary", "--json", str(job)]) == 0
    both = [r for r in json.loads(capsys.readouterr().out) if r["name"] == "aten::addmm"][0]
    assert both["count"] == 4
    assert main(["summary", "--rank", "5", str(job)]) == 1
    assert "the job has ranks [0, 1]" in capsys.readouterr().err
    assert main(["ranks", str(job / "a.pt.trace.json")]) == 1


def test_an_empty_directory_is_one_clear_error(tmp_path, capsys):
    assert main(["summary", str(tmp_path)]) == 1
    assert "a directory without trace files" in capsys.readouterr().err


async def test_the_tui_opens_several_rank_traces(job):
    files = sorted(str(p) for p in job.iterdir())
    app = ViewerApp(None, job=files)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(app, pilot)
        assert app.trace is not None and app.error is None
        assert {rank_of_pid(ln.pid) for ln in app.trace.lanes if isinstance(ln.pid, int)} == {0, 1}


async def test_the_ranks_tab_shows_compute_and_wait_per_rank_and_the_straggler_at_80x24(job):
    from textual.widgets import DataTable

    from viewer.ranksview import RanksView

    app = ViewerApp(str(job))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        view = app.query_one(RanksView)
        table = app.query_one("#ranks-table", DataTable)
        assert table.row_count == 4
        rows = [[str(c) for c in table.get_row_at(k)] for k in range(4)]
        # step, rank, step ms, compute ms, wait ms, bar, mark: rank 0 computed 600 µs and is the straggler
        assert rows[0][:5] == ["ProfilerStep#0", "0", "1.000", "0.600", "0.398"] and rows[0][6] == "◀ slowest"
        assert rows[1][:5] == ["ProfilerStep#0", "1", "1.000", "0.200", "0.798"] and rows[1][6] == ""
        assert rows[0][5].count("█") == 10 and rows[1][5].count("░") == 13
        assert "bold yellow" in str(table.get_row_at(0)[0].style) and not str(table.get_row_at(1)[0].style)
        status = str(app.query_one("#ranks-status").render())
        assert "2 ranks, 2 steps" in status and "rank 0 in 2 of 2 steps" in status
        # usable at 80x24: every column fits on screen
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        assert view.region.height > 4
        # Enter: the chosen rank's step on the timeline
        table.focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        tl = app.query_one("Timeline")
        tr = app.trace
        assert tr is not None and tr.names[tr.name_id[tl.selected]] == "ProfilerStep#0"
        assert rank_of_pid(tr.lanes[int(tr.lane[tl.selected])].pid) == 1


async def test_one_trace_has_no_ranks_tab_and_hostile_step_names_are_literal(tmp_path):
    from viewer.ranksview import row_cells

    one = tmp_path / "one.json"
    one.write_text(json.dumps(_rank_trace(0, 10**18, 300.0)))
    app = ViewerApp(str(one))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        assert not app.query("TabPane#ranks")
        assert "no ranks" in str(app.query_one("#status").render())
    cells = row_cells({"step": "ProfilerStep#\x1b[2J1", "rank": 0, "step_ns": 10, "compute_ns": 5, "comm_ns": 5,
                       "slowest": False})
    assert "\x1b" not in cells[0]
