"""Other producers' traces (py-spy, viztracer, epoch-scale clocks, flow v2, legacy async, the spec's own
examples, real torch traces) read as catapult and Perfetto read them.

Every file is checked against a reference aggregation written here straight from the Trace Event
Format spec and catapult's importer rules, deliberately naive (exact Decimal times, an O(n^2)
containment search for each slice's parent), so that it shares no code or shortcut with the viewer:

- X events are slices; B/E pair per thread on a stack in time order (file order among equal times);
  a B never ended is closed at its thread's last timestamp; b/e (and the legacy S/F) pair per
  (pid, cat, id, name) on a lane per name; a missing tid is the pid.
- A slice's parent is the innermost slice of its lane that contains it; of two with the same start
  and end, the one earlier in the file is the outer one.
- Self time is the duration less the children's durations; totals and self times are summed by name.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from viewer.__main__ import main
from viewer.model import Trace, load_trace
from viewer.summary import ops_table

DATA = Path(__file__).parent / "data"
PRODUCERS = sorted((DATA / "producers").glob("*.json"))
CORPUS = PRODUCERS + [DATA / "torch_cpu_mlp.json", DATA / "torch_cuda_mlp.json", DATA / "small.json"]

Slice = tuple[Any, int, int, str, int]  # lane, start ns, end ns, name, file index


def _ns(v: Any) -> int | None:
    """µs (number or numeric string) as exact ns, or None."""
    if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
        return None
    try:
        d = Decimal(v.strip()) if isinstance(v, str) else Decimal(v)
    except ArithmeticError:
        return None
    return int((d * 1000).to_integral_value()) if d.is_finite() else None


def _without_trailing_commas(text: str) -> str:
    """The text less every comma that only whitespace separates from a closing bracket or brace (outside
    strings), read one character at a time."""
    out: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            in_string = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            in_string = True
        elif ch in "]}":
            k = len(out)
            while k and out[k - 1] in " \t\r\n":
                k -= 1
            if k and out[k - 1] == ",":
                del out[k - 1]
        out.append(ch)
    return "".join(out)


def _document(text: str) -> Any:
    """Strict JSON; else as Perfetto reads it (trailing commas, raw control characters in strings); else a
    trace cut off mid-write, as catapult repairs it (everything up to the last complete event, closed)."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        pass
    lenient = _without_trailing_commas(text)
    try:
        return json.loads(lenient, parse_float=Decimal, strict=False)
    except json.JSONDecodeError:
        pass
    cut = lenient.rstrip().rstrip(",").rfind("}")
    while cut >= 0:
        for closer in ("]", "]}", "}"):
            try:
                return json.loads(lenient[: cut + 1] + closer, parse_float=Decimal, strict=False)
            except json.JSONDecodeError:
                continue
        cut = lenient.rfind("}", 0, cut)
    raise ValueError("not JSON, however read")


def _events(path: Path) -> list[dict[str, Any]]:
    doc = _document(path.read_text())
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    out = []
    for e in events:
        e = dict(e)
        if e.get("tid") is None and e.get("pid") is not None:
            e["tid"] = e["pid"]
        out.append(e)
    return out


def _thread_slices(events: list[dict[str, Any]]) -> list[Slice]:
    slices: list[Slice] = []
    last: dict[Any, int] = defaultdict(lambda: -(2**63))
    for k, e in enumerate(events):
        ts, lane = _ns(e.get("ts")), (e.get("pid"), e.get("tid"))
        if ts is None:
            continue
        if e.get("ph") == "X":
            dur = _ns(e.get("dur", 0)) or 0
            slices.append((lane, ts, ts + max(dur, 0), str(e.get("name")), k))
            last[lane] = max(last[lane], ts + max(dur, 0))
        elif e.get("ph") in ("B", "E") or (e.get("ph") in ("i", "I") and e.get("s", "t") == "t"):
            last[lane] = max(last[lane], ts)
    stacks: dict[Any, list[int]] = defaultdict(list)
    be = [k for k, e in enumerate(events) if e.get("ph") in ("B", "E") and _ns(e.get("ts")) is not None]
    for k in sorted(be, key=lambda k: _ns(events[k]["ts"]) or 0):
        e = events[k]
        lane = (e.get("pid"), e.get("tid"))
        if e["ph"] == "B":
            stacks[lane].append(k)
        elif stacks[lane]:
            b = stacks[lane].pop()
            slices.append((lane, _ns(events[b]["ts"]) or 0, _ns(e["ts"]) or 0, str(events[b].get("name")), b))
    for lane, open_b in stacks.items():
        for b in open_b:
            start = _ns(events[b]["ts"]) or 0
            slices.append((lane, start, max(last[lane], start), str(events[b].get("name")), b))
    return slices


def _async_slices(events: list[dict[str, Any]]) -> list[Slice]:
    slices: list[Slice] = []
    open_: dict[Any, list[int]] = defaultdict(list)
    asy = [k for k, e in enumerate(events) if e.get("ph") in ("b", "e", "S", "F") and _ns(e.get("ts")) is not None]
    for k in sorted(asy, key=lambda k: _ns(events[k]["ts"]) or 0):
        e = events[k]
        ident = e.get("id", e.get("id2"))
        key = (e.get("pid"), e.get("cat"), json.dumps(ident), e.get("name"), e["ph"] in "SF")
        if e["ph"] in ("b", "S"):
            open_[key].append(k)
        elif open_[key]:
            b = open_[key].pop()
            lane = (e.get("pid"), "async: " + str(e.get("name")))
            slices.append((lane, _ns(events[b]["ts"]) or 0, _ns(e["ts"]) or 0, str(e.get("name")), b))
    return slices


def reference(path: Path) -> dict[str, tuple[int, int, int]]:
    """Per name: (count, total ns, self ns), by the naive rules in the module docstring."""
    events = _events(path)
    slices = _thread_slices(events) + _async_slices(events)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in slices:
        lane, start, end, name, k = s
        children = [c for c in slices if c is not s and _parent(c, slices) is s]
        # Steps are one row, as in torch's tables: ProfilerStep#1, #2, ... are ProfilerStep*.
        row = out["ProfilerStep*" if re.fullmatch(r"ProfilerStep#\d+", name) else name]
        row[0] += 1
        row[1] += end - start
        row[2] += max(end - start - sum(c[2] - c[1] for c in children), 0)
    return {name: (c, t, own) for name, (c, t, own) in out.items()}


def _contains(a: Slice, b: Slice) -> bool:
    if a[0] != b[0] or not (a[1] <= b[1] and b[2] <= a[2]):
        return False
    return (a[1], a[2]) != (b[1], b[2]) or a[4] < b[4]


def _parent(c: Slice, slices: list[Slice]) -> Slice | None:
    hosts = [p for p in slices if p is not c and _contains(p, c)]
    # The innermost: the one that began last, then the shortest; of identical intervals, the last in the
    # file. Where slices nest properly that is simply the shortest container; where they overlap
    # partially (real torch traces: a record_function range begins inside one Python call and ends in
    # another) it is the open slice the viewer draws it under.
    return min(hosts, key=lambda p: (-p[1], p[2] - p[1], -p[4]), default=None)


def viewer_summary(trace: Trace) -> dict[str, tuple[int, int, int]]:
    table = ops_table(trace)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i in range(len(table)):
        row = out[table.name[i]]
        row[0] += int(table.count[i])
        row[1] += int(table.total[i])
        row[2] += int(table.self[i])
    return {name: (c, t, own) for name, (c, t, own) in out.items()}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_summary_agrees_with_the_reference_aggregation(path: Path) -> None:
    assert viewer_summary(load_trace(str(path))) == reference(path)


def test_summary_json_cli_agrees_with_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "producers" / "pyspy_like_be.json"
    assert main(["summary", "--json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["ops"] if isinstance(rows, dict) else rows
    got = {r["name"]: (r["count"], r["total_ns"], r["self_ns"]) for r in rows}
    assert got == reference(path)


def _by_name(trace: Trace, name: str) -> list[int]:
    return [i for i in range(len(trace)) if trace.name_of(i) == name]


def test_identical_intervals_nest_in_file_order_not_closing_order() -> None:
    """py-spy's frames of one sample begin and end together: <module> is outermost, inner innermost."""
    for f in ("pyspy_like_be.json", "sampled_x_identical.json"):
        tr = load_trace(str(DATA / "producers" / f))
        depth = {tr.name_of(i): int(tr.depth[i]) for i in range(len(tr))}
        assert (depth["<module>"], depth["main"], depth["work"], depth["inner"]) == (0, 1, 2, 3), f
        inner = _by_name(tr, "inner")[0]
        assert int(tr.self_ns[inner]) == int(tr.dur[inner])


def test_unclosed_b_closes_at_its_threads_last_timestamp() -> None:
    tr = load_trace(str(DATA / "producers" / "unclosed_b.json"))
    i = _by_name(tr, "never_ends")[0]
    # Thread 1 ends with later_x at 430 µs; thread 2's E at 5000 µs is another thread's.
    assert (int(tr.ts[i]), int(tr.dur[i])) == (100_000, 330_000)
    assert any("B events never ended" in w and "thread's last timestamp" in w for w in tr.warnings)


def test_numeric_strings_everywhere_and_one_bad_string_drops_only_its_event() -> None:
    tr = load_trace(str(DATA / "producers" / "numeric_strings.json"))
    names = {tr.name_of(i) for i in range(len(tr))}
    assert {"x_str", "x_num", "be_str", "inst_str", "epoch_parent", "epoch_child"} <= names
    assert "x_bad" not in names
    assert any("1 events with a missing, non-numeric" in w for w in tr.warnings)
    be = _by_name(tr, "be_str")[0]
    assert (int(tr.ts[be]), int(tr.dur[be])) == (100_000, 50_250)
    mem = {s: v for c in tr.counters for s, v in c.series.items()}
    assert mem["bytes"][1].tolist() == [1024.0, 2048.5]
    assert mem["pages"][1].tolist() == [4.0]


@pytest.mark.parametrize("name", ["epoch_ns.json", "numeric_strings.json"])
def test_epoch_scale_timestamps_keep_their_nanoseconds(name: str) -> None:
    """The child ends 24 ns before its parent; float64 µs × 1000 moved it 26 ns after."""
    tr = load_trace(str(DATA / "producers" / name))
    pairs = [("parent", "child"), ("outer_be", "inner_be")] if name == "epoch_ns.json" else [
        ("epoch_parent", "epoch_child")]
    for parent, child in pairs:
        p, c = _by_name(tr, parent)[0], _by_name(tr, child)[0]
        assert int(tr.ts[p]) + int(tr.dur[p]) - (int(tr.ts[c]) + int(tr.dur[c])) == 24
        assert int(tr.parent[c]) == p
        assert int(tr.self_ns[p]) == 100_000 - 49_776


def test_flow_v2_binds_like_s_f_flows() -> None:
    tr = load_trace(str(DATA / "producers" / "flow_v2.json"))
    pairs = {(tr.name_of(int(s)), tr.name_of(int(d))) for s, d in zip(tr.flow_src, tr.flow_dst)}
    assert pairs == {("launch", "relay"), ("relay", "kernel"), ("post", "recv"), ("old_src", "old_dst")}
    assert not any("flow" in w for w in tr.warnings)


def test_legacy_async_s_t_f_drawn_as_async_slices() -> None:
    tr = load_trace(str(DATA / "producers" / "legacy_async.json"))
    spans = sorted((int(tr.ts[i]), int(tr.dur[i])) for i in _by_name(tr, "request") if tr.kind[i] == 0)
    assert spans == [(100_000, 300_000), (120_000, 60_000)]
    lane = tr.lanes[int(tr.lane[_by_name(tr, "request")[0]])]
    assert lane.tid == "async: request"
    assert not any("'S'" in w or "'T'" in w or "'F'" in w for w in tr.warnings)


def test_missing_tid_takes_the_pid() -> None:
    tr = load_trace(str(DATA / "producers" / "missing_tid.json"))
    assert len(tr.lanes) == 1 and tr.lanes[0].name == "main"
    step = _by_name(tr, "step")[0]
    assert int(tr.dur[step]) == 10_000
    assert sorted(int(tr.parent[i]) for i in _by_name(tr, "op")) == [step, step]
    assert not tr.warnings


_PROGRAM = textwrap.dedent("""
    import sys
    from viztracer import VizTracer

    def leaf(n):
        return sum(range(n))

    def middle(k):
        return [leaf(200) for _ in range(k)]

    tracer = VizTracer(output_file=sys.argv[1], verbose=0)
    tracer.start()
    for k in range(5):
        middle(k + 1)
    tracer.stop()
    tracer.save()
""")


def test_a_real_viztracer_trace_summarises_as_the_reference(tmp_path: Path) -> None:
    pytest.importorskip("viztracer", reason="viztracer is in the test extra; install it to run this test")
    out = tmp_path / "viz.json"
    prog = tmp_path / "prog.py"
    prog.write_text(_PROGRAM)
    subprocess.run([sys.executable, str(prog), str(out)], check=True, capture_output=True, timeout=120)
    trace = load_trace(str(out))
    got, want = viewer_summary(trace), reference(out)
    assert got == want
    calls = {name.split(" ")[0]: row[0] for name, row in got.items()}  # viztracer names: "f (path:line)"
    assert (calls["middle"], calls["leaf"], calls["builtins.sum"]) == (5, 15, 15)
    assert np.all(trace.self_ns >= 0)


@pytest.mark.parametrize("damage", ["truncated", "nan_token"])
def test_epoch_scale_nanoseconds_kept_on_the_slow_path_too(tmp_path: Path, damage: str) -> None:
    """A file msgspec refuses (cut off mid-event, or a NaN token) goes through orjson / the stdlib."""
    text = (DATA / "producers" / "epoch_ns.json").read_text().rstrip()
    if damage == "truncated":
        text = text[: text.rindex('{"ph":"i"')] + '{"ph":"i","na'
    else:
        text = text.replace('"s":"t"}', '"s":"t","args":{"v":NaN}}')
    path = tmp_path / "t.json"
    path.write_text(text)
    tr = load_trace(str(path))
    for parent, child in (("parent", "child"), ("outer_be", "inner_be")):
        p, c = _by_name(tr, parent)[0], _by_name(tr, child)[0]
        assert int(tr.ts[p]) + int(tr.dur[p]) - (int(tr.ts[c]) + int(tr.dur[c])) == 24
        assert int(tr.parent[c]) == p
