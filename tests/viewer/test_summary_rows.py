"""`summary` prints torch's 100 rows by default (--all / --limit 0: every row), and the rows it picks are
the first ones of the full order: by the column, ties by name (lowercase), without sorting every name."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.__main__ import main
from viewer.model import from_events
from viewer.summary import ops_table


@pytest.fixture
def many_names(tmp_path):
    """150 distinct names, each once; durations 1..150 us."""
    evs = [{"ph": "X", "name": f"op{k:03d}", "cat": "c", "pid": 1, "tid": 1, "ts": 1000 * k, "dur": k + 1}
           for k in range(150)]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(evs))
    return str(path)


def _body(out):
    return [ln for ln in out.splitlines()[2:] if not ln.startswith("...")]


def test_summary_prints_100_rows_and_says_how_many_more(many_names, capsys):
    assert main(["summary", many_names]) == 0
    out = capsys.readouterr().out
    body = _body(out)
    assert len(body) == 100 and body[0].startswith("op149") and body[-1].startswith("op050")
    assert out.splitlines()[-1] == "... 50 more rows (--all or --limit N to show them)"


@pytest.mark.parametrize("flag", [["--all"], ["--limit", "0"]])
def test_summary_all_rows(many_names, capsys, flag):
    assert main(["summary", many_names, *flag]) == 0
    out = capsys.readouterr().out
    assert len(_body(out)) == 150 and "more rows" not in out


def test_summary_json_default_limit_is_noted_on_stderr(many_names, capsys):
    assert main(["summary", many_names, "--json"]) == 0
    res = capsys.readouterr()
    assert len(json.loads(res.out)) == 100
    assert "100 of 150 rows" in res.err
    assert main(["summary", many_names, "--json", "--all"]) == 0
    res = capsys.readouterr()
    assert len(json.loads(res.out)) == 150 and res.err == ""


@pytest.mark.parametrize("flags, msg", [(["--limit", "-1"], "--limit must be at least 0"),
                                        (["--all", "--limit", "3"], "--all and --limit cannot be used together")])
def test_summary_bad_limits(many_names, capsys, flags, msg):
    assert main(["summary", many_names, *flags]) == 1
    assert msg in capsys.readouterr().err


def _reference(table, column, descending):
    names = np.array([n.lower() for n in table.name]) if len(table) else np.zeros(0)
    values = getattr(table, column)
    return np.lexsort((names, -values if descending else values)).tolist()


row = st.tuples(st.sampled_from(["a", "B", "b", "c", "A", "d", "e"]), st.integers(0, 3), st.integers(0, 3))


@settings(max_examples=80, deadline=None)
@given(st.lists(row, max_size=30), st.sampled_from(["total", "count", "min", "pct", "avg"]), st.booleans(),
       st.integers(1, 12))
def test_limited_order_is_the_prefix_of_the_full_one(rows, column, descending, limit):
    evs = [{"ph": "X", "name": f"{n}{k % 3}", "cat": "c", "pid": 1, "tid": 1, "ts": 10 * k, "dur": d}
           for k, (n, d, _) in enumerate(rows)]
    table = ops_table(from_events(evs))
    full = _reference(table, column, descending)
    assert table.order(column, descending).tolist() == full
    assert table.rows(column, descending, limit) == full[:limit]


def test_text_columns_read_the_trace_names_by_id():
    """The name and cat columns are views over the trace's tables (no list per column): every way of
    reading them agrees with the names of the events, and the merged steps read ProfilerStep*."""
    evs = [{"ph": "X", "name": n, "cat": c, "pid": 1, "tid": 1, "ts": 10 * k, "dur": 1}
           for k, (n, c) in enumerate([("a", "x"), ("ProfilerStep#1", "user_annotation"), ("b", "y"),
                                       ("ProfilerStep#2", "user_annotation"), ("a", "x")])]
    table = ops_table(from_events(evs))
    names = [table.name[i] for i in range(len(table))]
    assert sorted(names) == ["ProfilerStep*", "a", "b"]
    assert list(table.name) == names and table.name == names and table.name[:2] == names[:2]
    assert [table.cat[i] for i in range(len(table))] == [dict(a="x", b="y").get(n, "user_annotation")
                                                        for n in names]
    assert list(table.shapes) == [""] * len(table) and not any(table.shapes)
    assert table.name != names[::-1]


def test_summary_lets_go_of_the_file_text(tmp_path, capsys):
    """`summary` releases the file's text before its table (as many bytes as the file): the table is
    the same, and reading an event afterwards is a clear error, not a wrong record."""
    from viewer.model import load_trace

    evs = [{"ph": "X", "name": f"op{k % 4}", "cat": "c", "pid": 1, "tid": 1, "ts": 10 * k, "dur": 2, "args": {"k": k}}
           for k in range(50)]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(evs))
    trace = load_trace(str(path))
    before = ops_table(trace).as_dicts(list(range(4)))
    assert trace.record(3).args is not None
    trace.release_text()
    assert ops_table(trace).as_dicts(list(range(4))) == before
    with pytest.raises(RuntimeError, match="released"):
        trace.record(7)
    assert main(["summary", str(path)]) == 0
    assert _body(capsys.readouterr().out)[0].startswith("op")
