"""The Memory tab, the memory flame graph and `summary --memory`, on traces of our profiler (made here)
and of torch 2.13 (tests/viewer/data/torch_cpu_memory.json, devtools/make_torch_memory_trace.py;
torch_cuda_mlp.json, torch 2.11 on an H100)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from viewer.__main__ import main
from viewer.app import HelpScreen, ViewerApp
from viewer.flame import FlameView, memory_trees
from viewer.memory_tab import MemoryPlots, memory_report, memory_samples, memory_series
from viewer.model import from_events, load_trace

from .conftest import CUDA, DATA
from .hostile import screen_text, wait_loaded

TORCH_CPU = DATA / "torch_cpu_memory.json"
# the `ours` fixture's parameters, and Adam's two moments of each, alive before profiling began
ALIVE_AT_LEAST = 3 * (64 * 128 + 128 + 128 * 10 + 10) * 4


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> str:
    """Our profiler: parameters and Adam state made before profiling, two steps profiled."""
    import tensorlib as tl
    from profiler import profile
    from tensorlib import nn, optim

    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = tl.randn(32, 64), tl.randint(0, 10, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    opt.zero_grad()
    with profile(profile_memory=True, with_stack=True, record_shapes=True) as prof:
        for _ in range(2):
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            prof.step()
    path = str(tmp_path_factory.mktemp("mem") / "ours.json")
    prof.export_chrome_trace(path)
    return path


# ---- the series: one plot per distinct series ----

def test_ours_one_plot_for_allocated_reserved_and_the_counter(ours):
    tr = load_trace(ours)
    series = memory_series(tr)
    # The file holds allocated = reserved in [memory] events and the same samples as a counter track:
    # three identical plots before; one now, the others named in its notes.
    assert [s.title for s in series] == ["CPU allocated"]
    s = series[0]
    assert "reserved: the same" in s.notes and any(n.startswith("counter Memory (cpu)") for n in s.notes)
    _, alloc, _, nbytes, _ = memory_samples(tr)["CPU"]
    assert s.peak_value == alloc.max() and s.alive_at_start == alloc[0] - nbytes[0] >= ALIVE_AT_LEAST
    # The op at the peak, its path and the Call stack our profiler writes with with_stack=True.
    assert s.peak_op.startswith("aten::") and s.peak.path[-1] == s.peak_op
    assert s.peak.stack_from == "Call stack" and any("test_memory_tab.py" in f for f in s.peak.stack)


def test_torch_cpu_reserved_zero_is_a_note_and_the_stack_is_python_function():
    tr = load_trace(str(TORCH_CPU))
    series = memory_series(tr)
    assert [s.title for s in series] == ["CPU allocated"]
    s = series[0]
    assert "reserved: 0 throughout (not recorded)" in s.notes
    assert s.alive_at_start == 0
    assert s.peak_op == "aten::div" and s.peak.path == ["Optimizer.step#Adam.step", "aten::div"]
    assert s.peak.stack_from == "python_function"
    assert s.peak.stack[0].startswith("torch/optim/adam.py") and "make_torch_memory_trace.py" in s.peak.stack[-1]


def test_torch_cuda_alive_at_start_and_reserved_where_it_differs():
    tr = load_trace(str(CUDA))
    series = memory_series(tr)
    assert [s.title for s in series] == ["CUDA:0 allocated", "CUDA:0 reserved"]
    alloc = series[0]
    first = json.loads(CUDA.read_text())["traceEvents"]
    mem = sorted((e for e in first if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    assert alloc.alive_at_start == mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"] == 68243968
    assert alloc.peak_value == max(e["args"]["Total Allocated"] for e in mem)
    assert alloc.peak_op == "aten::sum"
    row = memory_report(tr)[0]
    assert row["allocated_during_profile_at_peak"] == alloc.peak_value - 68243968
    assert row["op_path"] == ["autograd::engine::evaluate_function: AddmmBackward0", "aten::sum"]
    assert row["stack"] == [] and row["op_category"] == "cpu_op"


def test_a_counter_that_differs_is_kept_and_a_negative_one_sets_the_baseline():
    ev = [{"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": t,
           "args": {"Total Allocated": v, "Total Reserved": v, "Bytes": b, "Device Type": 0}}
          for t, v, b in ((1, 100, 100), (2, 300, 200))]
    ev += [{"ph": "C", "name": "Other", "pid": 1, "ts": t, "args": {"v": v}} for t, v in ((1, 5), (2, -7))]
    series = memory_series(from_events(ev))
    assert [s.title for s in series] == ["CPU allocated", "Other · v (counter, pid 1)"]
    assert series[0].lowest == 0 and series[1].lowest == -7


# ---- the plot: zero baseline, time axis, band ----

def _plot_lines(tr, width=100):
    plots = MemoryPlots(tr, memory_series(tr))
    return plots, [plots.line(y, width).text for y in range(11)]


def test_plot_starts_at_zero_with_distinct_time_ticks():
    # 20 KiB .. 21 KiB: the y axis used to start at the minimum (19.6 KiB), which hid the 20 KiB below.
    ev = [{"ph": "X", "name": "op", "pid": 1, "tid": 1, "ts": 0, "dur": 10_000}]
    ev += [{"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 1000 * k,
            "args": {"Total Allocated": 20480 + 100 * k, "Bytes": 100, "Device Type": 0}} for k in range(10)]
    _, lines = _plot_lines(from_events(ev))
    assert "peak 20.9 KiB" in lines[0] and "alive at start: 19.9 KiB" in lines[1]
    assert lines[2].startswith("   20.9 KiB┤") and lines[8].startswith("        0 B┼")
    bottom = lines[7][12:]
    # Every column is filled at the bottom: the band, 19.9 KiB of 20.9 (95 % of the height).
    assert set(bottom.strip()) == {"░"} and set(lines[3][12:].strip()) <= {"░", "▇", "█", " "}
    ticks = lines[9].split()
    assert ticks[0] == "time" and len(ticks) >= 4
    labels = ticks[1:]
    assert len(set(labels)) == len(labels) and all(re.fullmatch(r"\d+(\.\d+)?(ns|µs|ms|s)", lb) for lb in labels)
    # Each label sits under a tick mark of the zero axis.
    for m in re.finditer(r"\S+", lines[9][12:]):
        assert lines[8][12 + m.start()] == "┬"


def test_plot_marks_the_peak():
    tr = load_trace(str(CUDA))
    _, lines = _plot_lines(tr)
    assert "▼" in lines[2] and "░" in lines[5]  # the band: 65 MiB alive at start


# ---- the app, headless ----

async def _memory_screen(path, size, *keys):
    app = ViewerApp(str(path))
    async with app.run_test(size=size) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("m")
        for _ in range(200):       # the tab composes its plots on first show: a loaded machine takes a while
            await app.workers.wait_for_complete()
            await pilot.pause()
            text = screen_text(app)[0]
            if "— peak" in text or "No memory data" in text:
                break
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        await pilot.pause()
        return screen_text(app)[0]


@pytest.mark.parametrize("size", [(80, 24), (120, 40), pytest.param((200, 60), marks=pytest.mark.slow)])
async def test_memory_tab_on_screen(size):
    text = await _memory_screen(CUDA, size)
    assert "CUDA:0 allocated — peak 65.1 MiB" in text and "in aten::sum" in text[:2000]
    assert "alive at start: 65.1 MiB" in text
    assert "0 B┼┬" in text and re.search(r"time +0ms +\d+ms", text)
    if size[1] >= 40:
        assert "op at peak: aten::sum  (cpu_op, 22.5 µs)" in text
        assert "op path: autograd::engine::evaluate_function: AddmmBackward0 > aten::sum" in text


async def test_memory_tab_80x24_scrolls_to_the_details():
    text = await _memory_screen(TORCH_CPU, (80, 24), "end")
    assert "op at peak: aten::div" in text and "torch/optim/adam.py(347): _single_tensor_adam" in text


async def test_memory_tab_ours(ours):
    text = await _memory_screen(ours, (120, 40))
    assert "CPU allocated — peak" in text
    # the parameters, Adam's state and the batch (~120 KiB) at least; tensors other tests in this process left
    # alive count too (the figure is the process's CPU allocation when profiling began)
    alive = re.search(r"alive at start: ([\d.]+) (KiB|MiB|GiB)", text)
    assert alive and float(alive[1]) * {"KiB": 1, "MiB": 1024, "GiB": 1024 ** 2}[alive[2]] >= 100, text
    assert "reserved: the same" in text and text.count("— peak") == 1  # one plot, not three
    assert "stack (Call stack, innermost first)" in text and "test_memory_tab.py(" in text


async def test_memory_tab_without_memory():
    text = await _memory_screen(DATA / "torch_cpu_mlp.json", (80, 24))
    assert "No memory data" in text


# ---- the memory flame graph ----

def test_memory_tree_sums_the_bytes_of_each_path(ours):
    tr = load_trace(ours)
    fv = FlameView(tr)
    trees = memory_trees(tr, fv.time_paths)
    assert list(trees) == ["CPU"]
    tree, outside = trees["CPU"]
    _, _, _, nbytes, ev = memory_samples(tr)["CPU"]
    allocated = float(nbytes[nbytes > 0].sum())
    assert float(tree.self.sum()) + outside == allocated and outside == 0  # every allocation inside an op
    roots = tree.parent < 0
    assert float(tree.total[roots].sum()) == allocated
    for p in range(len(tree.parent)):  # a path's total is its own bytes and its children's totals
        assert tree.total[p] == tree.self[p] + tree.total[tree.children_of(p)].sum()
    kids = tree.children_of(int(np.flatnonzero(roots)[0]))
    assert list(tree.total[kids]) == sorted(tree.total[kids], reverse=True)


@pytest.mark.parametrize("size", [(80, 24), pytest.param((140, 40), marks=pytest.mark.slow)])
async def test_flame_memory_mode_key(ours, size):
    app = ViewerApp(ours)
    async with app.run_test(size=size) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("i")
        await pilot.pause()
        fv = app.query_one(FlameView)
        time_total = int(fv.paths.total[fv.selected])
        assert "[time]" in fv._info()
        await pilot.press("b")
        await pilot.pause()
        info = fv._info()
        assert fv.mode == "CPU" and info.startswith(" [memory CPU]") and " allocated " in info and "KiB" in info
        assert int(fv.paths.total[fv.selected]) != time_total
        assert "[memory CPU]" in screen_text(app)[0]
        await pilot.press("b")
        await pilot.pause()
        assert fv.mode == "time" and fv._info().startswith(" [time]")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Bytes allocated by call path" in str(app.screen.query_one("#help-text").render())


async def test_flame_memory_mode_without_memory_says_so(cpu_path):
    app = ViewerApp(cpu_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("i", "b")
        await pilot.pause()
        fv = app.query_one(FlameView)
        assert fv.mode == "time" and "no memory to show" in fv._info()


def test_flame_memory_mode_two_devices():
    ev = [{"ph": "X", "name": "op", "pid": 1, "tid": 1, "ts": 0, "dur": 100}]
    ev += [{"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 10 + k,
            "args": {"Total Allocated": 10 * (k + 1), "Bytes": 10, "Device Type": dt, "Device Id": 0}}
           for k, dt in enumerate((0, 1, 1))]
    tr = from_events(ev)
    fv = FlameView(tr)
    seen = []
    for _ in range(3):
        fv.action_switch_mode()
        seen.append((fv.mode, int(fv.paths.total.sum())))
    assert seen == [("CPU", 10), ("CUDA:0", 20), ("time", 100_000)]


# ---- summary --memory ----

def test_summary_memory_text_and_json(capsys):
    assert main(["summary", "--memory", str(CUDA)]) == 0
    out = capsys.readouterr().out
    assert ("CUDA:0 allocated\n  peak: 65.1 MiB at +6.92 ms, when +512 B was allocated\n"
            "  alive at start: 65.1 MiB (allocated before") in out
    assert "op at peak: aten::sum  (cpu_op, 22.5 µs)" in out and "CUDA:0 reserved" in out
    assert main(["summary", "--memory", "--json", str(CUDA)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["series"] for r in rows] == ["CUDA:0 allocated", "CUDA:0 reserved"]
    assert rows[0]["alive_at_start"] == 68243968 and rows[0]["op_at_peak"] == "aten::sum"
    assert rows[0]["event_at_peak_bytes"] == 512
    assert rows[0]["peak"] == memory_report(load_trace(str(CUDA)))[0]["peak"]


def test_summary_memory_with_stack(capsys, ours):
    assert main(["summary", "--memory", str(TORCH_CPU)]) == 0
    out = capsys.readouterr().out
    assert "stack (python_function, innermost first):\n      torch/optim/adam.py(347): _single_tensor_adam" in out
    assert main(["summary", "--memory", "--json", ours]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["stack_from"] == "Call stack" and row["alive_at_start"] >= ALIVE_AT_LEAST
    assert main(["summary", "--memory", str(DATA / "torch_cpu_mlp.json")]) == 0
    assert "no memory data" in capsys.readouterr().out


def test_summary_memory_is_literal(tmp_path, capsys):
    bad = "\x1b]2;x\x07[bold]"
    ev = [{"ph": "X", "name": bad, "cat": bad, "pid": 1, "tid": 1, "ts": 0, "dur": 10, "args": {"Call stack": bad}},
          {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 5,
           "args": {"Total Allocated": 10, "Bytes": 10, "Device Type": bad}}]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": ev}))
    assert main(["summary", "--memory", str(p)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]2;x\\x07[bold]" in out
