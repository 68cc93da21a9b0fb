"""key_averages().table(): torch's layout, sort keys, optional columns; schedule / step / on_trace_ready."""
from __future__ import annotations

import os

import pytest

import tensorlib as tl
from tests.profiler._workloads import profiled_step
from profiler import ProfilerAction, profile, schedule, tensorboard_trace_handler, trace_handler
from profiler.table import format_time
from profiler.memory_record import format_bytes


def _run(**kw):
    return profiled_step(16, 8, 4, "fwd", **kw)


def _header(table):
    return table.splitlines()[1]


def test_table_layout_matches_torch():
    prof = _run()
    t = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    lines = t.splitlines()
    sep = lines[0]
    assert set(sep) == {"-", " "} and lines[2] == sep and lines[-2] == sep
    cols = [c for c in _header(t).split("  ") if c.strip()]
    assert [c.strip() for c in cols] == ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
                                         "# of Calls"]
    assert all(len(c) == 12 for c in sep.split("  ")[1:-1])        # torch's 12-wide columns
    assert len(lines) == 3 + 5 + 2
    assert lines[-1].startswith("Self CPU time total: ")
    body = lines[3:8]
    cells = [[f.strip() for f in line.split("  ") if f.strip()] for line in body]
    selfs = [float(c[2][:-2]) * {"us": 1, "ms": 1e3}[c[2][-2:]] for c in cells]
    assert selfs == sorted(selfs, reverse=True)


def test_percentages_add_up_to_100():
    prof = _run()
    rows = prof.key_averages()
    total = rows.self_cpu_time_total
    assert sum(r.self_cpu_time_total for r in rows) == pytest.approx(total)
    t = rows.table(row_limit=0)
    pct = [float(line.split()[-6].rstrip("%")) for line in t.splitlines()[3:-2]]
    assert sum(pct) == pytest.approx(100, abs=0.1)


def test_optional_columns_appear_only_with_data():
    plain = _header(_run().key_averages().table())
    assert "CPU Mem" not in plain and "FLOPs" not in plain and "CUDA" not in plain and "Input Shapes" not in plain
    mem = _run(profile_memory=True, record_shapes=True, with_flops=True)
    t = mem.key_averages(group_by_input_shape=True).table()
    h = _header(t)
    for col in ("CPU Mem", "Self CPU Mem", "Input Shapes", "Total KFLOPs"):
        assert col in h
    assert "[[16, 8], [8, 4]]" in t
    assert "FLOPs" not in _header(_run(record_shapes=True).key_averages().table())   # only with with_flops
    st = _run(with_stack=True).key_averages(group_by_stack_n=2).table()
    assert "Source Location" in _header(st) and "test_table_schedule.py" in st


def test_sort_keys_and_unknown_key_error():
    rows = _run().key_averages()
    for key in ("self_cpu_time_total", "cpu_time_total", "count", "cpu_memory_usage", "self_cuda_time_total", "flops"):
        rows.table(sort_by=key)
    by_count = rows.table(sort_by="count", row_limit=1).splitlines()[3]
    assert int(by_count.split()[-1]) == max(r.count for r in rows)
    with pytest.raises(ValueError, match="valid keys: self_cpu_time_total, cpu_time_total"):
        rows.table(sort_by="bogus")


def test_top_level_only_time_unit_header_and_name_width():
    rows = _run().key_averages()
    t = rows.table(top_level_events_only=True, time_unit="ms", header="my header", max_name_column_width=6)
    lines = t.splitlines()
    assert lines[1] == "my header"
    names = [line.split()[0] for line in lines[5:-2]]
    assert "fwd" in names and "aten::relu" not in names        # relu runs inside fwd
    assert all(len(n) <= 6 for n in names)
    assert "ms" in lines[5] and "us" not in lines[5]
    with pytest.raises(ValueError, match="time_unit"):
        rows.table(time_unit="hours")


def test_formats_like_torch():
    assert format_time(5.0) == "5.000us" and format_time(1500.0) == "1.500ms" and format_time(2.5e6) == "2.500s"
    assert format_bytes(4) == "4 B" and format_bytes(32768) == "32.00 KB" and format_bytes(-8192) == "-8.00 KB"
    assert format_bytes(3 * 1024 ** 2) == "3.00 MB"


def test_forward_and_backward_ops_share_their_row_as_torchs():
    prof = _run()
    rows = prof.key_averages()
    mm = [r for r in rows if r.key == "aten::mm"]        # matmul's mm forward, MmBackward0's mm backward
    phases = [e.phase for e in prof.events() if e.name == "aten::mm"]
    assert len(mm) == 1 and mm[0].count == len(phases) and {"forward", "backward"} <= set(phases)
    table = rows.table()
    assert "aten::mm " in table and "(backward)" not in table      # the trace's names, as torch's table
    tot = rows.total_average()
    assert tot.count == sum(r.count for r in rows)
    assert tot.cpu_time_total == pytest.approx(rows.self_cpu_time_total)


def test_schedule_matches_torch_semantics():
    s = schedule(wait=1, warmup=1, active=2, repeat=2, skip_first=1)
    A = ProfilerAction
    got = [s(i) for i in range(11)]
    assert got == [A.NONE, A.NONE, A.WARMUP, A.RECORD, A.RECORD_AND_SAVE, A.NONE, A.WARMUP, A.RECORD,
                   A.RECORD_AND_SAVE, A.NONE, A.NONE]
    with pytest.raises(ValueError, match="active"):
        schedule(wait=1, warmup=1, active=0)


def test_schedule_records_only_active_steps_and_calls_on_trace_ready_per_cycle():
    seen = []

    def ready(p):
        seen.append((p.step_num, sorted({e.trace_name for e in p.events() if e.kind == "step"}),
                     sum(1 for e in p.events() if e.name == "aten::add")))

    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2), on_trace_ready=ready) as prof:
        for _ in range(10):
            tl.ones(2) + 1
            prof.step()
    assert seen == [(4, ["ProfilerStep#2", "ProfilerStep#3"], 2), (8, ["ProfilerStep#6", "ProfilerStep#7"], 2)]
    steps = [e for e in prof.events() if e.kind == "step"]
    assert all(any(c.name == "aten::add" for c in s.children) for s in steps)


def test_acc_events_keeps_every_cycle():
    with profile(schedule=schedule(wait=0, warmup=0, active=1, repeat=3), acc_events=True) as prof:
        for _ in range(3):
            tl.ones(2)
            prof.step()
    assert sorted(e.trace_name for e in prof.events() if e.kind == "step") == ["ProfilerStep#0", "ProfilerStep#1",
                                                                           "ProfilerStep#2"]


def test_trace_handler_writes_torch_file_names(tmp_path):
    assert tensorboard_trace_handler is trace_handler
    with profile(schedule=schedule(wait=0, warmup=0, active=1, repeat=2),
                 on_trace_ready=trace_handler(str(tmp_path / "tb"), worker_name="w0", use_gzip=True)) as prof:
        for _ in range(3):
            tl.ones(2)
            prof.step()
    assert sorted(os.listdir(tmp_path / "tb")) == ["w0.1.pt.trace.json.gz", "w0.2.pt.trace.json.gz"]


def test_step_without_schedule_counts_steps_but_marks_none():
    """torch records ProfilerStep#N ranges only under a schedule (profile.record_steps): its traces of steps
    without one have none (seen in torch 2.11's on an H200, whose HTA then finds no iteration, and in torch
    2.13's table here). Ours marked them, so that HTA compared iterations torch's trace did not have."""
    with profile() as prof:
        for _ in range(3):
            tl.ones(1)
            prof.step()
    assert [e.trace_name for e in prof.events() if e.kind == "step"] == []
    assert prof.step_num == 3
    assert sorted(r.key for r in prof.key_averages()) == ["aten::empty", "aten::fill_", "aten::ones"]
    with profile(schedule=schedule(wait=0, warmup=0, active=5)) as prof:
        for _ in range(3):
            tl.ones(1)
            prof.step()
    assert [e.trace_name for e in prof.events() if e.kind == "step"] == [f"ProfilerStep#{i}" for i in (0, 1, 2, 3)]


def test_schedule_active_windows_are_cuda_capture_ranges(monkeypatch):
    """Each active window brackets itself with cudaProfilerStart/Stop (nsys --capture-range=cudaProfilerApi)."""
    import importlib
    calls = []

    class FakeRuntime:
        def profilerStart(self):
            calls.append(("start", prof.step_num))

        def profilerStop(self):
            calls.append(("stop", prof.step_num))

    pmod = importlib.import_module("profiler.profile")
    monkeypatch.setattr(pmod, "_capture_runtime", lambda: FakeRuntime())
    import tensorlib as tl
    from profiler import profile, schedule
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2)) as prof:
        for _ in range(8):
            tl.ones(2) + 1
            prof.step()
    assert calls == [("start", 2), ("stop", 4), ("start", 6), ("stop", 8)]   # steps 2-3 and 6-7 are active
