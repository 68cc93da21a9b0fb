"""The NumPy row formatter behind the default-options Chrome export: every row it writes must parse back
to exactly the values it was given, whatever their sign, size and table entry."""
import json

import numpy as np
import orjson
from hypothesis import given, settings, strategies as st

from profiler._jsonrows import format_rows

ints = st.integers(min_value=-(2**62), max_value=2**62)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ints, st.integers(-5_000_000, 5_000_000), st.integers(0, 3)), min_size=1, max_size=40),
       st.lists(st.text(max_size=40), min_size=4, max_size=4))
def test_rows_parse_back_exactly(rows, names):
    a = np.array([r[0] for r in rows], np.int64)
    us = np.array([r[1] for r in rows], np.int64)
    ids = np.array([r[2] for r in rows], np.int64)
    entries = [b'{"name":' + orjson.dumps(nm) for nm in names]
    parts = [("table", entries, ids), b',"n":', ("int", a), b',"t":', ("us", us), b"}"]
    text = b"[0" + b"".join(bytes(c) for c in format_rows(parts, len(rows))) + b"]"
    got = json.loads(text)[1:]
    # rows come grouped by table-entry length, in order within a group: compare as multisets
    expect = [{"name": names[i], "n": int(x), "t": round(int(u) / 1000, 3)} for x, u, i in zip(a, us, ids)]
    key = lambda d: (d["name"], d["n"], d["t"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expect, key=key)
    # the microsecond text is exact: three decimals, no float rounding
    for tok in text.split(b'"t":')[1:]:
        num = tok.split(b"}")[0].strip()
        assert len(num.split(b".")[1]) == 3


def test_rows_keep_order_within_a_group():
    n = 1000
    parts = [("table", [b'{"k":1'], np.zeros(n, np.int64)), b',"i":', ("int", np.arange(n)), b"}"]
    got = json.loads(b"[0" + b"".join(bytes(c) for c in format_rows(parts, n)) + b"]")[1:]
    assert [d["i"] for d in got] == list(range(n))


def test_empty():
    assert list(format_rows([b"{}"], 0)) == []


def test_long_and_short_entries_are_grouped_not_padded():
    ids = np.array([0, 1, 0, 1])
    entries = [b'{"k":"' + b"x" * 100 + b'"', b'{"k":"y"']
    chunks = [bytes(c) for c in format_rows([("table", entries, ids), b',"i":', ("int", np.arange(4)), b"}"], 4)]
    assert len(chunks) == 2                       # one buffer per entry length
    text = b"".join(bytes(c) for c in chunks)
    assert len(text) == sum(1 + len(entries[i]) + len(b',"i":') + 1 + 1 for i in ids)   # no padding
    got = json.loads(b"[0" + text + b"]")[1:]
    assert sorted(d["i"] for d in got) == [0, 1, 2, 3]
