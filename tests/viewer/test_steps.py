"""Steps as the unit in the viewer: the breakdown, ProfilerStep* rows, per-step diff, device time,
and the TUI's Steps tab, steps row, merged call tree, readability and export, on a synthetic
training-loop trace whose numbers are known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.cells import cell_len

from viewer.__main__ import main
from viewer.app import ViewerApp
from viewer.calltree import build_call_tree
from viewer.device import busy_ns, device_time
from viewer.diff import diff_tables, format_diff
from viewer.model import from_events
from viewer.opsview import OpsView
from viewer.selection import range_summary
from viewer.steps import NO_STEPS, step_breakdown
from viewer.summary import ops_table
from viewer.timeline import Timeline, ruler_ticks

from .hostile import HOSTILE, screen_text, wait_loaded

# One step (µs): data 200 (aten::stack 100 in it), forward 300 (MLP range, aten::linear 200 in it,
# launching a 100 µs kernel), backward 200, optimizer 100, and 200 of the step's own time.
PHASES_US = {"data": 200, "forward": 300, "backward": 200, "optimizer": 100, "other": 200}


def loop_events(n_steps: int, gpu: bool = False, first: int = 1) -> list[dict]:
    ev: list[dict] = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread"}}]

    def x(name, cat, ts, dur, pid=1, tid=1):
        ev.append({"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid, "ts": ts, "dur": dur})

    for k in range(n_steps):
        t = k * 1000
        x(f"ProfilerStep#{first + k}", "user_annotation", t, 1000)
        x("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", "user_annotation", t, 200)
        x("aten::stack", "cpu_op", t + 10, 100)
        x("MLP", "user_annotation", t + 200, 300)
        x("aten::linear", "cpu_op", t + 210, 200)
        if gpu:
            x("cudaLaunchKernel", "cuda_runtime", t + 220, 10)
            x("gemm_kernel", "kernel", t + 230, 100, pid=0, tid=7)
            ev.append({"ph": "s", "cat": "ac2g", "name": "ac2g", "id": k, "pid": 1, "tid": 1, "ts": t + 221})
            ev.append({"ph": "f", "cat": "ac2g", "name": "ac2g", "id": k, "pid": 0, "tid": 7, "ts": t + 230,
                       "bp": "e"})
        x("autograd::engine::evaluate_function: AddmmBackward0", "cpu_op", t + 500, 200)
        x("AddmmBackward0", "cpu_op", t + 510, 150)
        x("Optimizer.step#SGD.step", "user_annotation", t + 700, 100)
        x("aten::add_", "cpu_op", t + 710, 50)
    return ev


def write(tmp_path, name, events) -> str:
    p = tmp_path / name
    p.write_text(json.dumps({"traceEvents": events}))
    return str(p)


def test_breakdown_gives_each_phase_its_time():
    bd = step_breakdown(from_events(loop_events(3)))
    assert [r.step for r in bd.rows] == [1, 2, 3] and not bd.has_gpu
    for r in bd.rows:
        assert r.duration_ns == 1_000_000
        assert {p: r.phase(p) / 1000 for p in PHASES_US} == PHASES_US
        assert r.gpu_busy_ns is None
    avg = bd.average()
    assert avg is not None and avg.forward_ns == 300_000


def test_gpu_busy_and_idle_per_step():
    bd = step_breakdown(from_events(loop_events(2, gpu=True)))
    assert bd.has_gpu
    assert [(r.gpu_busy_ns, r.gpu_idle_ns) for r in bd.rows] == [(100_000, 900_000)] * 2


def test_no_steps_says_where_they_come_from(cpu_path, capsys):
    assert main(["summary", "--steps", cpu_path]) == 0
    assert capsys.readouterr().out.strip() == NO_STEPS


def test_summary_steps_text_and_json(tmp_path, capsys):
    path = write(tmp_path, "loop.json", loop_events(4, gpu=True))
    assert main(["summary", "--steps", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:7] == ["Step", "Total", "Data", "Forward", "Backward", "Optimizer", "Other"]
    assert "GPU busy" in out[0]
    assert sum(line.startswith("ProfilerStep#") for line in out) == 4
    assert out[-1].startswith("avg of 4") and "300 µs  30%" in out[-1]
    assert main(["summary", "--steps", "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["steps"]) == 4 and doc["has_gpu"]
    assert doc["average"]["backward_ns"] == 200_000 and doc["average"]["gpu_busy_ns"] == 100_000


def test_steps_are_one_row_in_the_ops_table():
    tr = from_events(loop_events(5))
    t = ops_table(tr)
    names = t.name
    assert "ProfilerStep*" in names and not any(n.startswith("ProfilerStep#") for n in names)
    i = names.index("ProfilerStep*")
    assert int(t.count[i]) == 5 and int(t.total[i]) == 5_000_000
    assert int(t.event_mask(tr, i).sum()) == 5


def test_device_time_goes_to_the_launching_op_and_its_ancestors():
    tr = from_events(loop_events(2, gpu=True))
    total, selfd = device_time(tr)
    t = ops_table(tr)
    row = {n: i for i, n in enumerate(t.name)}
    assert int(t.device[row["aten::linear"]]) == 200_000 and int(t.self_device[row["aten::linear"]]) == 200_000
    assert int(t.device[row["MLP"]]) == 200_000 and int(t.self_device[row["MLP"]]) == 0
    assert int(t.device[row["ProfilerStep*"]]) == 200_000
    assert int(t.device[row["aten::stack"]]) == 0
    # % busy: a kernel's share of GPU time, an op's of CPU time, never mixed.
    cpu, gpu = busy_ns(tr)
    assert (cpu, gpu) == (2_000_000, 200_000)
    assert t.pct[row["gemm_kernel"]] == pytest.approx(100.0)
    assert t.pct[row["aten::linear"]] == pytest.approx(20.0)


def test_diff_compares_per_step_when_step_counts_differ(tmp_path, capsys):
    a, b = from_events(loop_events(2)), from_events(loop_events(4, first=10))
    rows = diff_tables(ops_table(a), ops_table(b), 2, 4)
    assert not [r for r in rows if r.status]  # no step number is a new op
    assert all(r.ratio == pytest.approx(1.0) and r.count_a == r.count_b for r in rows)
    assert "per step" in format_diff(rows, steps=(2, 4)).splitlines()[0]
    pa, pb = write(tmp_path, "a.json", loop_events(2)), write(tmp_path, "b.json", loop_events(4, first=10))
    assert main(["diff", "--json", pa, pb]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(r["per_step"] and r["delta_total_ns"] == 0 and r["status"] == "" for r in doc)


def test_call_tree_merges_steps():
    tr = from_events(loop_events(3))
    t = build_call_tree(tr)
    assert t.steps == 3
    (root,) = t.roots[0].tolist()
    assert int(t.name_id[root]) == len(tr.names) and int(t.count[root]) == 3
    kids = {tr.names[int(t.name_id[p])]: p for p in t.children_of(root).tolist()}
    assert int(t.total[kids["MLP"]]) == 3 * 300_000


def test_range_summary_sums_what_is_inside():
    tr = from_events(loop_events(2, gpu=True))
    r = range_summary(tr, 200_000, 500_000)  # step 1's forward, exactly
    rows = {row["name"]: row for row in r.rows}
    assert rows["MLP"]["time_in_range_ns"] == 300_000 and rows["MLP"]["self_in_range_ns"] == 100_000
    assert rows["ProfilerStep*"]["self_in_range_ns"] == 0
    assert r.cpu_busy == 300_000 and r.kernels == 1 and r.gpu_busy == 100_000


@pytest.mark.parametrize("t0,t1", [(10.4e6, 10.45e6), (10.4e6, 10.4e6 + 40), (0, 3e9), (5e9, 5e9 + 3e6)])
def test_ruler_ticks_are_distinct_with_units(t0, t1):
    ticks = ruler_ticks(t0, t1, 100, 0)
    labels = [lb for _, lb in ticks]
    assert len(labels) >= 2 and len(set(labels)) == len(labels)
    assert all(lb.endswith(("ns", "µs", "ms", "s")) for lb in labels)
    xs = [x for x, _ in ticks]
    assert all(b - a >= len(lb) + 2 for (a, lb), b in zip(ticks, xs[1:]))


async def test_steps_tab_row_and_markers(tmp_path):
    path = write(tmp_path, "loop.json", loop_events(6, gpu=True))
    app = ViewerApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(app, pilot)
        tl = app.query_one(Timeline)
        assert tl.header == 2 and "steps (6)" in tl.render_line(1).text
        assert "▎#" in tl.render_line(1).text
        assert "6 steps (p)" in str(app.query_one("#status").render())
        await pilot.press("p")
        assert app.query_one("#tabs").active == "steps"
        text = screen_text(app)[0]
        assert "avg of 6" in text and "ProfilerStep#3" in text and "GPU busy" in text
        dt = app.query_one("#steps-table")
        dt.move_cursor(row=3)  # the average, then steps 1, 2, 3
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#tabs").active == "timeline"
        assert app.trace is not None and app.trace.name_of(tl.selected) == "ProfilerStep#3"
        await pilot.press("c")
        await pilot.pause()
        assert "average of 6 steps" in screen_text(app)[0]
        await pilot.press("o")
        await pilot.pause()
        text = screen_text(app)[0]
        assert "ProfilerStep*" in text and "ProfilerStep#" not in text and "Device" in text


async def test_tab_without_content_says_so_and_esc_leaves_the_filter(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("x")
        assert "no diff" in str(app.query_one("#status").render())
        await pilot.press("p")
        assert "no steps in this trace" in screen_text(app)[0]
        await pilot.press("o")
        ops = app.query_one(OpsView)
        header = screen_text(app)[0]
        for col in ("Name", "Calls", "Total", "Self"):
            assert col in header
        await pilot.press("f", "t")
        assert ops.query_one("#ops-filter").value == "t"
        await pilot.press("escape")
        assert app.focused is ops.query_one("#ops-table")
        await pilot.press("t")
        assert app.query_one("#tabs").active == "timeline"


async def test_layout_legend_and_ellipsis(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        tl = app.query_one(Timeline)
        details = app.query_one("#details")
        # The timeline is as tall as its rows; the details pane gets the rest.
        assert tl.size.height <= tl.header + len(tl.rows)
        assert details.size.height >= 24 - 6 - tl.size.height - 1
        assert "? keys and legend" in str(app.query_one("#status").render())
        lines = [tl.render_line(y).text for y in range(tl.header, tl.size.height)]
        assert any("…" in line[22:] for line in lines)  # a name cut short says so
        for _ in range(12):
            await pilot.press("w")
            labels = tl.render_line(0).text[22:].split("▏")[1:]
            labels = [lb.strip() for lb in labels if lb.strip()]
            assert len(set(labels)) == len(labels), labels
        await pilot.press("question_mark")
        assert "Legend" in str(app.screen.query_one("#help-text").render())


async def test_range_and_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "loop.json", loop_events(3, gpu=True))
    app = ViewerApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(app, pilot)
        tl = app.query_one(Timeline)
        assert app.trace is not None
        mlp = next(i for i in range(len(app.trace)) if app.trace.name_of(i) == "MLP")
        tl.select(mlp)
        await pilot.press("v", "v")  # the selected event's start, then its end
        assert tl.time_range == (float(app.trace.ts[mlp]), float(app.trace.ts[mlp] + app.trace.dur[mlp]))
        assert "CPU busy 300 µs" in screen_text(app)[0]
        await pilot.press("E")
        box = app.query_one("#export")
        box.value = "sel.json"
        await pilot.press("enter")
        doc = json.loads((tmp_path / "sel.json").read_text())
        assert doc["meta"]["kernels"] == 1 and {r["name"] for r in doc["rows"]} >= {"MLP", "aten::linear"}
        await pilot.press("o", "E")
        name = HOSTILE[4] + ".csv"  # an escape sequence in the file name is shown, not sent
        app.query_one("#export").value = name
        await pilot.press("enter")
        status = str(app.query_one("#status").render())
        assert "wrote" in status and "\x1b" not in status
        written = [p for p in tmp_path.iterdir() if p.suffix == ".csv"]
        assert len(written) == 1
        lines = written[0].read_text().splitlines()
        assert lines[0].startswith("name,cat,count,total_ns")
        assert any(line.startswith("ProfilerStep*") for line in lines)
        await pilot.press("E")
        app.query_one("#export").value = "ops.txt"
        await pilot.press("enter")
        assert "end it in .csv or .json" in str(app.query_one("#status").render())


def test_merged_rows_names_fit_cells():
    assert cell_len("ProfilerStep*") == 13
    assert np.isnan(ops_table(from_events([{"ph": "X", "cat": "Trace", "name": "env", "pid": 1, "tid": 1,
                                            "ts": 0, "dur": 5}])).pct[0])


def test_same_numbers_as_the_profilers_step_breakdown(tmp_path):
    """The trace-side breakdown agrees with prof.step_breakdown() on a real loop: data loading, a
    module, a user range (other), backward and the optimizer, to the nanosecond."""
    import profiler
    import tensorlib as tl
    import tensorlib.nn as nn
    import tensorlib.nn.functional as F
    from tensorlib.utils.data import DataLoader, TensorDataset

    from viewer.model import load_trace

    tl.manual_seed(0)
    x = tl.randn(64, 8)
    loader = DataLoader(TensorDataset(x, x[:, :3].argmax(dim=1)), batch_size=16)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    it = iter(loader)
    with profiler.profile(schedule=profiler.schedule(wait=0, warmup=1, active=3)) as prof:
        for _ in range(4):
            xb, yb = next(it)
            with profiler.record_function("my_range"):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            prof.step()
    path = str(tmp_path / "loop.json")
    prof.export_chrome_trace(path)
    want = prof.step_breakdown()
    got = step_breakdown(load_trace(path))
    assert len(want) == len(got) == 3
    for w, g in zip(want, got.rows):
        assert g.step == w.step
        assert g.duration_ns == pytest.approx(w.duration_us * 1000, abs=1)
        for p in ("data", "forward", "backward", "optimizer", "other"):
            assert g.phase(p) == pytest.approx(getattr(w, p + "_us") * 1000, abs=len(got) + 2), p
        assert g.forward_ns > 0 and g.backward_ns > 0 and g.optimizer_ns > 0 and g.data_ns > 0


def test_icicle_layout_nests_callees_under_callers(cuda_path):
    from viewer.flame import icicle_layout
    from viewer.model import load_trace

    for tr in (load_trace(cuda_path), from_events(loop_events(3, gpu=True))):
        t = build_call_tree(tr)
        start, level, lane_off = icicle_layout(t, len(tr.lanes))
        end = start + t.total
        has = np.flatnonzero(t.parent >= 0)
        par = t.parent[has]
        assert (start[has] >= start[par]).all() and (end[has] <= end[par]).all()
        assert (level[has] == level[par] + 1).all()
        for p in range(len(t.parent)):  # siblings side by side, biggest first, no overlap
            kids = t.children_of(p)
            assert (start[kids[1:]] == end[kids[:-1]]).all()
        assert int(lane_off[-1]) == int(t.total[t.parent < 0].sum())


async def test_flame_tab_navigates_and_zooms(tmp_path):
    from viewer.flame import FlameView

    path = write(tmp_path, "loop.json", loop_events(4))
    app = ViewerApp(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("i")
        assert app.query_one("#tabs").active == "flame"
        fv = app.query_one(FlameView)
        text = screen_text(app)[0]
        assert "ProfilerStep*" in text and "ProfilerStep#" not in text
        assert "ProfilerStep*" in fv.render_line(fv.size.height - 1).text  # the info line
        await pilot.press("down")
        child = fv.selected
        assert fv._path_name(child) == "MLP"  # the biggest callee of the average step
        await pilot.press("right")
        assert fv.selected != child and fv.paths.parent[fv.selected] == fv.paths.parent[child]
        await pilot.press("left", "enter")
        assert (fv.v0, fv.v1) == (float(fv.start[child]), float(fv.end[child]))
        assert "MLP" in fv.render_line(2).text and "aten::linear" in fv.render_line(3).text
        await pilot.press("escape")
        assert (fv.v0, fv.v1) == fv.all


def test_a_step_around_a_deep_stack_is_quick():
    n = 20_000  # pointer jumping: log2(depth) passes, not one per level
    ev = [{"ph": "X", "name": "ProfilerStep#1", "cat": "user_annotation", "ts": 0, "dur": 10, "pid": 1, "tid": 1}]
    ev += [{"ph": "X", "name": "Optimizer.step#SGD.step" if i == 5 else "op", "cat": "cpu_op", "ts": 0, "dur": 1,
            "pid": 1, "tid": 1} for i in range(n)]
    bd = step_breakdown(from_events(ev))
    (row,) = bd.rows
    assert row.optimizer_ns == 1000 and row.other_ns == 9000 and row.forward_ns == 0


async def test_diff_tab_compares_per_step():
    app = ViewerApp(trace=from_events(loop_events(2)), diff_trace=from_events(loop_events(4, first=7)))
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_loaded(app, pilot)
        assert app.query_one("#tabs").active == "diff"
        text = screen_text(app)[0]
        assert "0 new in B, 0 vanished" in text and "per step" in text
        assert "ProfilerStep*" in text and "ProfilerStep#" not in text
