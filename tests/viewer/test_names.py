"""Names as one blob interned by hash (viewer/names.py): the same names, ids and tables as a dict gives."""

import json

import numpy as np
import pytest

from viewer import names as names_mod
from viewer import stream
from viewer.convert import text
from viewer.model import from_events, load_trace
from viewer.names import NameInterner, Names
from viewer.steps import step_name_ids
from viewer.stream import _hashable_name, intern_values
from viewer.summary import ops_table, table_lines

ODD = ["a", "é", "\ud800", "", "ProfilerStep#3", "ProfilerStep#x", "Profiler", "b" * 300, "a\x00b"]


def test_names_read_back_every_string_and_pick_by_prefix():
    n = Names.of(ODD)
    assert list(n) == ODD and [n[k] for k in range(len(ODD))] == ODD and n[1:3] == ODD[1:3]
    assert n == ODD and n.take(np.array([4, 0])) == ["ProfilerStep#3", "a"]
    assert n.ids_starting_with("ProfilerStep#").tolist() == [4, 5]
    assert n.ids_starting_with("").tolist() == list(range(len(ODD)))


@pytest.mark.parametrize("limit", [0, 1, 3, 100])
def test_interner_agrees_with_a_dict_in_batches(limit):
    batches = [["x", "y", "x", 5], ["5", None, "z", "y"], [[1], "é", "\ud800", "x"], ["w" * 40] * 3]
    interner, table = NameInterner(_hashable_name, limit), {}
    got = [interner.ids(list(b)) for b in batches]
    want = [intern_values(list(b), table) for b in batches]
    names, remap = interner.result()
    ids = [g if remap is None else remap[g] for g in got]
    # By text (the model reads every name as its text: 5 and "5" are one name there).
    texts = list(map(text, table))
    assert [text(names[i]) for g in ids for i in g.tolist()] == [texts[i] for w in want for i in w.tolist()]
    assert isinstance(names, Names) == (limit < len(table))
    if isinstance(names, Names):
        assert len(set(names)) == len(names)  # each text once


def test_hash_collisions_are_told_apart(monkeypatch):
    interner = NameInterner(_hashable_name, 0)
    monkeypatch.setattr(names_mod, "hash", lambda s: 7, raising=False)  # every name one hash
    ids = interner.ids(["p", "q", "p", "r"])
    names, remap = interner.result()
    assert [names[i] for i in (ids if remap is None else remap[ids]).tolist()] == ["p", "q", "p", "r"]


def trace_events(n_names):
    ev = [{"ph": "X", "name": f"op{k % n_names}", "cat": "c", "pid": 1, "tid": 1 + k % 3, "ts": 3 * k, "dur": 2}
          for k in range(600)]
    ev += [{"ph": "B", "name": "ProfilerStep#1", "pid": 1, "tid": 9, "ts": 0},
           {"ph": "E", "pid": 1, "tid": 9, "ts": 2000}, {"ph": "B", "name": 42, "pid": 1, "tid": 9, "ts": 3000}]
    return ev


@pytest.mark.parametrize("n_names", [2, 600])
def test_a_trace_past_the_limits_reads_as_below_them(tmp_path, monkeypatch, n_names):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace_events(n_names)))
    below = load_trace(str(path))
    monkeypatch.setattr(stream, "_MAX_COMBOS", 4)
    monkeypatch.setattr(names_mod, "DICT_LIMIT", 4)
    past, past_slow = load_trace(str(path)), from_events(trace_events(n_names))
    assert isinstance(past.names, Names) and isinstance(past_slow.names, Names)
    for t in (past, past_slow):
        assert t.names == below.names
        np.testing.assert_array_equal(t.name_id, below.name_id)
        assert step_name_ids(t).tolist() == step_name_ids(below).tolist()
        a, b = ops_table(t), ops_table(below)
        assert list(table_lines(a, a.rows())) == list(table_lines(b, b.rows()))
