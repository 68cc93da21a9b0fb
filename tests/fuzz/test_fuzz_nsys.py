"""Fuzz: import-nsys on generated hostile SQLite exports (issue 21). A valid export is damaged at random:
tables with quoted, control-character or look-alike names; values of every storage class (NULL, int,
float, text, invalid UTF-8, BLOB) in the columns we read; event tables replaced by views (recursive CTEs,
randomblob) or rebuilt WITHOUT ROWID; tables dropped. Every case must end, quickly, in a trace that
encodes as JSON or in one clear line: no traceback, no escape on the terminal."""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sqlite3
import tempfile
import time
import warnings

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from safeio import literal

from profiler._cli import main
from profiler.nsys.convert import COLUMN_TYPES, MalformedRowsWarning, convert_export
from profiler.nsys.schema import NsysImportError
from tests.profiler.test_nsys_import import DDL, make_export

from ._scale import SCALE

NASTY = ['"', "'", '""', "\x1b]2;PWNED\x07", "\x1b[2J", "\u202e", "\u200b", "\x9b", "\U000e0041", "[b]", "\\",
         "\n", "\x00", ";", "--", "NVTX_EVENTS", "StringIds"]
names = st.lists(st.sampled_from(NASTY) | st.text(max_size=4), min_size=1, max_size=4).map("".join)
values = st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1), st.floats(allow_nan=True),
                   st.text(max_size=8), st.binary(max_size=8),
                   st.binary(min_size=1, max_size=8).map(lambda b: ("cast", b)))   # invalid UTF-8 as TEXT
EVENT_TABLES = [t for t in COLUMN_TYPES if t in DDL]
RECURSIVE = ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n AS start, n AS end, "
             "59 AS eventType, 'x' AS text, NULL AS textId, 1 AS globalTid, NULL AS domainId, NULL AS category, "
             "NULL AS color, n AS id, 'v' AS value FROM c")
mutation = st.one_of(
    st.tuples(st.just("table"), names, names),
    st.tuples(st.just("value"), st.sampled_from(EVENT_TABLES), st.data()),
    st.tuples(st.just("view"), st.sampled_from(EVENT_TABLES),
              st.sampled_from([RECURSIVE, "SELECT randomblob(50000000) AS start"])),
    st.tuples(st.just("without_rowid"), st.sampled_from(EVENT_TABLES), st.none()),
    st.tuples(st.just("drop"), st.sampled_from(EVENT_TABLES), st.none()),
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _apply(conn, kind, table, arg):
    if kind == "table":
        conn.execute(f"CREATE TABLE {_q(table)} ({_q(arg)})")
    elif kind == "value":
        cols = [c for c in COLUMN_TYPES[table] if c in DDL[table].split()]
        column, value = arg.draw(st.sampled_from(cols)), arg.draw(values)
        sql = f"UPDATE {table} SET {_q(column)} = " + ("CAST(? AS TEXT)" if isinstance(value, tuple) else "?")
        conn.execute(sql + " WHERE rowid IN (SELECT rowid FROM " + table + " LIMIT 1)",
                     (value[1] if isinstance(value, tuple) else value,))
    elif kind == "view":
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE VIEW {table} AS {arg}")
    elif kind == "without_rowid":
        conn.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
        conn.execute(f"CREATE TABLE {table} ({DDL[table].replace(' NOT NULL PRIMARY KEY', '')}, "
                     f"_k INTEGER PRIMARY KEY) WITHOUT ROWID")
        cols = ", ".join(c.split()[0] for c in DDL[table].split(", "))
        conn.execute(f"INSERT INTO {table} ({cols}, _k) SELECT {cols}, rowid FROM old_{table}")
        conn.execute(f"DROP TABLE old_{table}")
    elif kind == "drop":
        conn.execute(f"DROP TABLE IF EXISTS {table}")


@functools.lru_cache(maxsize=1)
def _base_export() -> bytes:
    """A valid export's bytes, made once: each example copies them (SQLite's commits fsync, which on a
    busy disk costs more than everything else an example does)."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(make_export(os.path.join(tmp, "r.sqlite")), "rb") as f:
            return f.read()


def _safe(text: str) -> bool:
    return all(literal(line) == line for line in text.split("\n"))


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, max_size=6))
def test_hostile_exports_convert_or_fail_in_one_clear_line(mutations):
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "r.sqlite")
        with open(db, "wb") as f:
            f.write(_base_export())
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA synchronous = OFF")
        for kind, table, arg in mutations:
            with contextlib.suppress(sqlite3.Error):      # what SQLite itself refuses (NUL in a name, NOT NULL,
                _apply(conn, kind, table, arg)            # a view dropped as a table...) is not a case

        conn.commit()
        conn.close()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MalformedRowsWarning)
            try:
                trace = convert_export(db)
            except NsysImportError as e:
                assert "\n" not in str(e)
            else:
                assert json.loads(orjson.dumps(trace))["traceEvents"] is not None
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["import-nsys", str(db), "-o", os.path.join(tmp, "t.json")])
        assert rc in (0, 1)
        assert "Traceback" not in err.getvalue() and _safe(out.getvalue()) and _safe(err.getvalue())
        assert len(err.getvalue().splitlines()) <= 2                  # one error, or one warning
        assert time.perf_counter() - t0 < 10
