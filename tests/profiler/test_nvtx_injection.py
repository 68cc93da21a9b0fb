"""End to end: a real NVTX tool (tests/profiler/nvtx_injection/nvtx_recorder.c, loaded through
NVTX_INJECTION64_PATH) records what profiler.nvtx sends through the ``nvtx`` package: the domain,
messages, categories, colours, payloads and nesting that Nsight Systems would see."""

from __future__ import annotations

from pathlib import Path

from profiler.nvtx import CATEGORIES, COLORS

from .nvtx_injection.recorder import ranges, run_under_recorder

SCENARIO = Path(__file__).with_name("nvtx_injection") / "scenario.py"


def run_scenario(lib: Path, tmp_path: Path, scenario: str, mode: str = "plain") -> list[dict]:
    return run_under_recorder(lib, [str(SCENARIO), scenario, mode], tmp_path / f"{scenario}-{mode}.jsonl")


def col(category: str) -> str:
    return f"0x{COLORS[category]:08X}"


def push(depth, message, category, payload=None):
    return ("push", depth, message, category, col(category), payload)


def test_domain_and_categories_are_declared(nvtx_recorder_lib, tmp_path):
    records = run_scenario(nvtx_recorder_lib, tmp_path, "training_step")
    assert [r["message"] for r in records if r["event"] == "domain"] == ["tensorlib"]
    declared = [(r["category"], r["message"]) for r in records if r["event"] == "category"]
    assert declared == list(enumerate(CATEGORIES, start=1))
    pushes = [r for r in records if r["event"] == "push"]
    assert {r["category"] for r in pushes if r["category_name"] == "op"} == {1}


def test_training_step_nesting_names_categories_colours_and_seq(nvtx_recorder_lib, tmp_path):
    records = run_scenario(nvtx_recorder_lib, tmp_path, "training_step")
    assert len({r["tid"] for r in records if r["event"] in ("push", "pop")}) == 1
    assert ranges(records) == [
        push(1, "ProfilerStep#0", "step"),
        push(2, "DataLoader.next", "data"),
        ("pop", 2),
        push(2, "model", "module"),
        push(3, "model.fc1", "module"),
        push(4, "matmul", "op", 12),
        ("pop", 4),
        push(4, "add", "op", 13),
        ("pop", 4),
        ("pop", 3),
        ("pop", 2),
        push(2, "AddBackward0", "backward"),
        push(3, "sum", "backward", 13),
        ("pop", 3),
        ("pop", 2),
        push(2, "Optimizer.step#SGD.step", "optimizer"),
        push(3, "add_", "op", 14),
        ("pop", 3),
        ("pop", 2),
        push(2, "log_metrics", "user"),
        ("pop", 2),
        ("pop", 1),
    ]


def test_record_shapes_messages_match_torch_emit_nvtx(nvtx_recorder_lib, tmp_path):
    records = run_scenario(nvtx_recorder_lib, tmp_path, "training_step", "shapes")
    ops = [row for row in ranges(records) if row[0] == "push" and row[3] in ("op", "backward") and "seq" in row[2]]
    assert ops == [
        push(4, "matmul, seq = 12, sizes = [[8, 4], [4, 2]]", "op", 12),
        push(4, "add, seq = 13, sizes = [[8, 2], [2]]", "op", 13),
        push(3, "sum, seq = 13, sizes = [[8, 2], []]", "backward", 13),
        push(3, "add_, seq = 14, sizes = [[4, 2], [4, 2]]", "op", 14),
    ]
    # Ranges other than ops keep their plain names.
    assert push(3, "model.fc1", "module") in ranges(records)


def test_threads_nest_independently(nvtx_recorder_lib, tmp_path):
    records = run_scenario(nvtx_recorder_lib, tmp_path, "threads")
    by_tid: dict[int, list[dict]] = {}
    for r in records:
        if r["event"] in ("push", "pop"):
            by_tid.setdefault(r["tid"], []).append(r)
    assert len(by_tid) == 2
    for rows in by_tid.values():
        base = int(rows[0]["message"].removeprefix("worker"))
        expected = []
        for i in range(3):
            expected += [push(1, f"worker{base}", "user"), push(2, "mul", "op", base + i), ("pop", 2), ("pop", 1)]
        assert ranges(rows) == expected


def test_recorder_sees_other_domains_and_escapes_messages(nvtx_recorder_lib, tmp_path):
    """The recorder is a general NVTX tool: the nvtx package's default domain and awkward text work too."""
    code = (
        "import nvtx\n"
        "nvtx.push_range('outer', color=0xFF00FF00, domain='other')\n"
        "nvtx.mark('say \"hi\"\\\\ then\\nnewline', domain='other')\n"
        "nvtx.pop_range(domain='other')\n"
    )
    records = run_under_recorder(nvtx_recorder_lib, ["-c", code], tmp_path / "other.jsonl")
    assert [(r["event"], r.get("message"), r.get("color")) for r in records if r["event"] != "domain"] == [
        ("push", "outer", "0xFF00FF00"),
        ("mark", 'say "hi"\\ then\nnewline', "0x000000FF"),
        ("pop", None, None),
    ]
    assert ranges(records, domain="other") == [("push", 1, "outer", "", "0xFF00FF00", None), ("pop", 1)]


def test_real_tensorlib_step_under_tensorlib_nvtx(nvtx_recorder_lib, tmp_path):
    """TENSORLIB_NVTX=1 and an unmodified tensorlib script: every op, backward node and region as Nsight
    Systems would see it, with backward ops carrying their forward op's sequence number."""
    import os
    script = Path(__file__).with_name("nvtx_injection") / "tensorlib_step.py"
    env = dict(os.environ, TENSORLIB_NVTX="1")
    records = run_under_recorder(nvtx_recorder_lib, [str(script)], tmp_path / "step.jsonl", env=env)
    assert ranges(records) == [
        push(1, "randn", "op", 0), ("pop", 1),
        push(1, "randn", "op", 1), ("pop", 1),
        push(1, "model.fc1", "module"),
        push(2, "matmul", "op", 2),
        push(3, "mm", "op"), ("pop", 3),                      # torch's matmul of two matrices is its mm
        ("pop", 2),
        ("pop", 1),
        push(1, "sum", "op", 3), ("pop", 1),
        push(1, "ones_like", "op"),                            # the implicit gradient of the scalar loss,
        push(2, "empty_like", "op"),                           # as torch's: empty_like, then fill_
        push(3, "empty_strided", "op", 4), ("pop", 3),
        ("pop", 2),
        push(2, "fill_", "op", 5), ("pop", 2),
        ("pop", 1),
        push(1, "SumBackward0", "backward"),
        push(2, "expand", "backward", 3),                     # seq 3: the forward sum's; a full sum's 0-d
        push(3, "as_strided", "op"), ("pop", 3),              # gradient expanded as it is, as torch's
        ("pop", 2),
        ("pop", 1),
        push(1, "MmBackward0", "backward"),
        push(2, "t", "backward", 2),                          # seq 2: the forward matmul's; torch's mm formula
        push(3, "transpose", "op"),
        push(4, "as_strided", "op"), ("pop", 4),
        ("pop", 3),
        ("pop", 2),
        push(2, "mm", "backward", 2), ("pop", 2),
        ("pop", 1),
        push(1, "tensorlib::autograd::AccumulateGrad", "backward"),
        push(2, "detach", "backward"),
        push(3, "detach", "op"), ("pop", 3),                  # the alias made below autograd, torch's "detach"
        ("pop", 2),
        ("pop", 1),
        push(1, "Optimizer.step#SGD.step", "optimizer"),
        push(2, "mul", "op", 6), ("pop", 2),
        push(2, "sub_", "op", 7), ("pop", 2),
        ("pop", 1),
    ]
