import json

from viewer.__main__ import main


def test_summary_json_sorted_and_limited(cpu_path, capsys):
    assert main(["summary", cpu_path, "--sort", "count", "--limit", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    with open(cpu_path) as f:
        events = json.load(f)["traceEvents"]
    top = rows[0]
    assert top["count"] == sum(1 for e in events if e.get("ph") == "X" and e["name"] == top["name"]
                               and e.get("cat") == top["cat"])


def test_summary_text_and_by_shape(cpu_path, capsys):
    assert main(["summary", cpu_path, "--filter", "aten::addmm", "--by-shape"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("name")
    body = out[2:]
    assert body and all("aten::addmm" in line for line in body)
    assert any("[[" in line for line in body)  # the Input Dims are part of the key


def test_diff_text(cpu_path, cuda_path, capsys):
    assert main(["diff", cpu_path, cuda_path, "--text"]) == 0
    out = capsys.readouterr().out
    assert "Activity Buffer Request" in out and "new" in out
    assert "vanished" in out.splitlines()[-1]


def test_diff_same_trace_has_no_deltas(cpu_path, capsys):
    assert main(["diff", cpu_path, cpu_path, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["delta_total_ns"] == 0 and r["ratio"] == 1.0 and r["status"] == "" for r in rows)


def test_markup_and_escapes_printed_literally(tmp_path, capsys):
    p = tmp_path / "m.json"
    p.write_text(json.dumps([{"ph": "X", "name": "[bold]x\x1b[31m\x07", "ts": 0, "dur": 1, "pid": 1, "tid": 1}]))
    assert main(["summary", str(p)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold]x\\x1b[31m\\x07" in out
