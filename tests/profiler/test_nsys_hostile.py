"""import-nsys on hostile or damaged SQLite (issue 21, item 7): odd names, wrong value types, invalid
UTF-8, WITHOUT ROWID tables, views posing as tables, generated columns, non-regular inputs, a work
budget, and an output that a failed write leaves as it was. Every case: a result or one clear line."""
from __future__ import annotations

import errno
import os
import sqlite3
import time
import warnings

import orjson
import pytest

from safeio import literal

from profiler._cli import main
from profiler.nsys import schema
from profiler.nsys.convert import MalformedRowsWarning, convert_export, parse_op_message
from profiler.nsys.schema import NsysImportError
from tests.profiler.test_nsys_import import DDL, expected_trace, make_export


def _sql(db, *statements):
    conn = sqlite3.connect(db)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()
    return db


def _events(trace, cat):
    return [e for e in trace["traceEvents"] if e.get("cat") == cat and e["ph"] != "M"]


def test_quotes_and_odd_characters_in_table_names_are_harmless(tmp_path):
    db = _sql(make_export(tmp_path / "r.sqlite"), 'CREATE TABLE "a""b" (x)',
              "CREATE TABLE \"x'); DROP TABLE y; --\" (z)", 'CREATE TABLE "\x1b]2;t\x07" ("c""d")',
              'CREATE TABLE "NVTX_EVENTS""" (start)')
    assert convert_export(db, "t.json") == expected_trace("t.json")


@pytest.mark.parametrize("bad", [None, "twelve", 1.5, b"\x00\x01", "\udcff".encode("utf-8", "surrogatepass")])
@pytest.mark.parametrize("table,column", [
    ("CUPTI_ACTIVITY_KIND_KERNEL", "start"), ("CUPTI_ACTIVITY_KIND_KERNEL", "deviceId"),
    ("CUPTI_ACTIVITY_KIND_MEMCPY", "bytes"), ("CUPTI_ACTIVITY_KIND_RUNTIME", "end"),
    ("NVTX_EVENTS", "start"), ("CUPTI_ACTIVITY_KIND_MEMSET", "streamId")])
def test_wrong_value_types_skip_the_row_and_warn_once(tmp_path, table, column, bad):
    db = make_export(tmp_path / "r.sqlite", ddl={table: DDL[table].replace(" NOT NULL", "")})
    conn = sqlite3.connect(db)
    rowid = conn.execute(f"SELECT min(rowid) FROM {table}").fetchone()[0]
    conn.execute(f'UPDATE {table} SET "{column}" = ? WHERE rowid = ?', (bad, rowid))
    conn.commit()
    conn.close()
    with pytest.warns(MalformedRowsWarning) as caught:
        trace = convert_export(db)
    assert len(caught) == 1
    assert f"skipped 1 malformed row(s) (1 in {table})" in str(caught[0].message)
    assert len(trace["traceEvents"]) < len(expected_trace("x")["traceEvents"]) + 1
    orjson.dumps(trace)


@pytest.mark.parametrize("column", ["text", "value"])
def test_wrong_types_in_text_columns(tmp_path, column):
    table = "NVTX_EVENTS" if column == "text" else "StringIds"
    db = make_export(tmp_path / "r.sqlite", ddl={table: DDL[table].replace(" NOT NULL", "")})
    _sql(db, f"UPDATE {table} SET {column} = x'00ff' WHERE rowid = 1")
    with pytest.warns(MalformedRowsWarning, match=f"1 in {table}"):
        convert_export(db)


def test_end_before_start_is_skipped_not_a_negative_duration(tmp_path):
    db = _sql(make_export(tmp_path / "r.sqlite"), "UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET end = start - 5")
    with pytest.warns(MalformedRowsWarning, match="1 in CUPTI_ACTIVITY_KIND_KERNEL"):
        trace = convert_export(db)
    assert _events(trace, "kernel") == [] and all(e.get("dur", 0) >= 0 for e in trace["traceEvents"])


def test_invalid_utf8_is_replaced(tmp_path):
    db = _sql(make_export(tmp_path / "r.sqlite"),
              "UPDATE StringIds SET value = CAST(x'6b65726e656cff80' AS TEXT) WHERE id = 3",
              "UPDATE NVTX_EVENTS SET text = CAST(x'c0afed' AS TEXT) WHERE text = 'checkpoint'")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = convert_export(db)
    assert _events(trace, "kernel")[0]["name"] == "kernel\ufffd\ufffd"
    assert "\ufffd" in [e for e in trace["traceEvents"] if e["ph"] == "i"][0]["name"]
    orjson.dumps(trace)


def test_without_rowid_tables(tmp_path):
    db = make_export(tmp_path / "r.sqlite")
    cols = DDL["CUPTI_ACTIVITY_KIND_RUNTIME"].replace("correlationId INTEGER", "correlationId INTEGER NOT NULL")
    _sql(db, "ALTER TABLE CUPTI_ACTIVITY_KIND_RUNTIME RENAME TO old",
         f"CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME ({cols}, PRIMARY KEY (correlationId)) WITHOUT ROWID",
         "INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME SELECT * FROM old", "DROP TABLE old")
    assert convert_export(db, "t.json") == expected_trace("t.json")


def test_views_are_not_read(tmp_path):
    """A recursive view would never end and a randomblob() view would fill memory: only tables count."""
    db = make_export(tmp_path / "r.sqlite", drop=("NVTX_EVENTS", "StringIds"))
    _sql(db, "CREATE VIEW NVTX_EVENTS AS WITH RECURSIVE c(start) AS (SELECT 1 UNION ALL SELECT start + 1 FROM c) "
             "SELECT start, start AS end, 59 AS eventType, 'x' AS text, NULL AS textId, 1 AS globalTid, "
             "NULL AS domainId, NULL AS category, NULL AS color FROM c",
         "CREATE VIEW StringIds AS SELECT 1 AS id, randomblob(1000000000) AS value")
    t0 = time.perf_counter()
    with pytest.raises(NsysImportError, match="table StringIds is missing"):
        convert_export(db)
    assert time.perf_counter() - t0 < 2


def test_generated_columns_are_not_data(tmp_path):
    db = make_export(tmp_path / "r.sqlite", drop=("StringIds",))
    _sql(db, "CREATE TABLE StringIds (id INTEGER, value TEXT AS (zeroblob(900000000)) VIRTUAL)")
    with pytest.raises(NsysImportError, match="table StringIds lacks column"):
        convert_export(db)


def test_work_budget(tmp_path, monkeypatch):
    db = make_export(tmp_path / "r.sqlite")
    monkeypatch.setattr(schema, "MIN_STEPS", 0)
    monkeypatch.setattr(schema, "STEPS_PER_BYTE", 0)
    monkeypatch.setattr(schema, "_STEPS_PER_CALL", 10)
    with pytest.raises(NsysImportError, match="gave up reading .*more work than a file of this size needs"):
        convert_export(db)


def test_values_longer_than_the_file_are_refused(tmp_path):
    db = make_export(tmp_path / "r.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE big (x)")
    conn.execute("INSERT INTO big VALUES (zeroblob(2000000))")      # stored compactly? no: 2 MB on disk
    conn.commit()
    conn.close()
    convert_export(db)                                                # a table we do not read is not read


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_non_regular_inputs_are_refused_in_one_line(tmp_path, kind):
    path = {"fifo": tmp_path / "p.sqlite", "directory": tmp_path, "device": "/dev/zero"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(NsysImportError) as info:
        convert_export(path)
    assert "\n" not in str(info.value) and "not a nsys SQLite export" in str(info.value)


def test_file_names_needing_uri_quoting(tmp_path):
    db = make_export(tmp_path / "a?mode=rw&b#c%20d.sqlite")
    assert convert_export(db, "t.json") == expected_trace("t.json")
    assert sorted(os.listdir(tmp_path)) == ["a?mode=rw&b#c%20d.sqlite"]      # read-only: no journal, no -wal


def test_parse_op_message_with_absurd_numbers():
    assert parse_op_message("add, seq = " + "9" * 5000) == ("add, seq = " + "9" * 5000, {})
    assert parse_op_message("add, seq = 99999999999999999999")[1] == {}
    assert parse_op_message("add, sizes = [1e999]")[1] == {}


def test_failed_write_keeps_the_old_output(tmp_path, monkeypatch, capsys):
    db = make_export(tmp_path / "r.sqlite")
    out = tmp_path / "t.json"
    out.write_bytes(b"previous")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    assert main(["import-nsys", str(db), "-o", str(out)]) == 1
    assert out.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == ["r.sqlite", "t.json"]
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_escapes_and_warns_in_one_line(tmp_path, capsys):
    db = make_export(tmp_path / "r\x1b[2J.sqlite", ddl={"NVTX_EVENTS": DDL["NVTX_EVENTS"].replace(" NOT NULL", "")})
    _sql(db, "UPDATE NVTX_EVENTS SET start = 'x' WHERE rowid = 1")
    out = tmp_path / "t\u202e.json"
    assert main(["import-nsys", str(db), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err + captured.out and "\u202e" not in captured.out
    assert captured.err == (f"profiler import-nsys: warning: {literal(str(db))}: skipped 1 "
                            "malformed row(s) (1 in NVTX_EVENTS): NULL, text, float or BLOB where nsys writes a "
                            "number, or an end before the start\n")
    bad = make_export(tmp_path / "v.sqlite", version="\x1b]2;x\x07")
    assert main(["import-nsys", str(bad), "-o", str(out)]) == 1
    assert "\x1b" not in capsys.readouterr().err
