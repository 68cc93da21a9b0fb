"""What we need from an ``nsys export --type sqlite`` database, checked up front so a wrong or
too-old file fails with one line naming what is missing instead of a traceback mid-conversion.

Column names follow the Nsight Systems "SQLite Export Schema Reference" (export schema 3.x).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from safeio import InputError, open_input

SUPPORTED_SCHEMA_MAJOR = 3

# Columns we read from each table. StringIds is always present in an export; the event tables are
# created lazily by nsys (only for what was traced), so each is optional but must be complete.
STRINGS_TABLE = "StringIds"
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    STRINGS_TABLE: ("id", "value"),
    "NVTX_EVENTS": ("start", "end", "eventType", "text", "textId", "globalTid", "domainId", "category", "color"),
    "CUPTI_ACTIVITY_KIND_KERNEL": (
        "start", "end", "deviceId", "contextId", "streamId", "correlationId", "globalPid", "demangledName",
        "gridX", "gridY", "gridZ", "blockX", "blockY", "blockZ", "registersPerThread",
        "staticSharedMemory", "dynamicSharedMemory",
    ),
    "CUPTI_ACTIVITY_KIND_MEMCPY": (
        "start", "end", "deviceId", "contextId", "streamId", "correlationId", "globalPid", "bytes", "copyKind",
        "srcKind", "dstKind",
    ),
    "CUPTI_ACTIVITY_KIND_MEMSET": (
        "start", "end", "deviceId", "contextId", "streamId", "correlationId", "globalPid", "bytes", "memKind",
    ),
    "CUPTI_ACTIVITY_KIND_RUNTIME": ("start", "end", "globalTid", "correlationId", "nameId"),
}
EVENT_TABLES = tuple(t for t in REQUIRED_COLUMNS if t != STRINGS_TABLE)


class NsysImportError(Exception):
    """A problem with the input, worded for a one-line CLI error."""


# Work allowed per byte of the database file, in SQLite virtual-machine steps (the progress handler is
# called every _STEPS_PER_CALL of them): a conversion reads each table once, about 1 step per byte
# (measured: a 14.9 MB export of 300k rows, 14.8M steps); past 100x that the import is abandoned.
STEPS_PER_BYTE = 100
MIN_STEPS = 50_000_000
_STEPS_PER_CALL = 10_000


class Export(sqlite3.Connection):
    """A read-only connection to an export, with the work budget its progress handler enforces."""

    source = ""
    budget_calls = 0
    over_budget = False

    def _tick(self) -> int:
        self.budget_calls -= 1
        if self.budget_calls < 0:
            self.over_budget = True
            return 1                                # non-zero: SQLite interrupts the statement
        return 0

    def error(self, exc: sqlite3.Error, what: str) -> NsysImportError:
        if self.over_budget:
            return NsysImportError(f"{self.source}: gave up reading {what}: more work than a file of this size "
                                   f"needs (a damaged or hostile database?)")
        return NsysImportError(f"{self.source}: cannot read {what} ({exc}); export it again with "
                               "`nsys export --type sqlite`")


def _uri(path: str) -> str:
    """A read-only, immutable URI (no journal, no lock, no -wal/-shm files created) for any file name,
    '?' and '#' included."""
    return Path(os.path.abspath(path)).as_uri() + "?mode=ro&immutable=1"


def open_export(path: str | Path) -> Export:
    """Opens read-only and proves it is an SQLite database (sqlite3 is lazy about both). A FIFO, a
    device or a directory is refused as every reader refuses them (safeio.open_input). Text is decoded
    with invalid UTF-8 replaced, no value may be longer than the file, and the work is bounded by the
    file's size."""
    try:
        f, size = open_input(path, what="nsys SQLite export")
    except InputError as exc:
        raise NsysImportError(str(exc)) from None
    f.close()
    conn = sqlite3.connect(_uri(os.fspath(path)), uri=True, factory=Export)
    conn.source = str(path)
    conn.text_factory = lambda b: b.decode("utf-8", "replace")
    if sys.version_info >= (3, 11):     # Connection.setlimit is new in 3.11; 3.10 keeps SQLite's own cap
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(size, 1 << 20))
    conn.budget_calls = max(MIN_STEPS, STEPS_PER_BYTE * size) // _STEPS_PER_CALL
    conn.set_progress_handler(conn._tick, _STEPS_PER_CALL)
    try:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if conn.over_budget:
            raise conn.error(exc, "its schema") from exc
        raise NsysImportError(
            f"{path}: not an SQLite database ({exc}); export one with `nsys export --type sqlite`") from exc
    return conn


def quote(name: str) -> str:
    """An SQL identifier for any table or column name (a '"' in it doubled)."""
    return '"' + name.replace('"', '""') + '"'


def table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """The ordinary columns of every real table: views (a recursive or randomblob() view would never
    end or fill memory), virtual tables and generated (hidden) columns are not data nsys wrote."""
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'")]
    return {t: {row[0] for row in conn.execute("SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0", (t,))}
            for t in tables}


def schema_version(conn: sqlite3.Connection, columns: dict[str, set[str]]) -> str | None:
    if not {"name", "value"} <= columns.get("META_DATA_EXPORT", set()):
        return None
    row = conn.execute("SELECT value FROM META_DATA_EXPORT WHERE name = 'EXPORT_SCHEMA_VERSION'").fetchone()
    return None if row is None or not isinstance(row[0], (str, int, float)) else str(row[0])


def check_schema(conn: Export, source: str) -> dict[str, set[str]]:
    """Returns the columns of every table; raises NsysImportError naming what is missing or unsupported."""
    try:
        columns = table_columns(conn)
        version = schema_version(conn, columns)
    except sqlite3.Error as exc:
        raise conn.error(exc, "its schema") from exc
    if version is not None:
        major = version.split(".", 1)[0]
        if not major.isdigit() or int(major) != SUPPORTED_SCHEMA_MAJOR:
            raise NsysImportError(
                f"{source}: nsys export schema version {version} is not supported (expected {SUPPORTED_SCHEMA_MAJOR}.x)"
            )
    if STRINGS_TABLE not in columns:
        raise NsysImportError(f"{source}: table {STRINGS_TABLE} is missing; not an nsys SQLite export")
    present = [t for t in EVENT_TABLES if t in columns]
    if not present:
        raise NsysImportError(
            f"{source}: none of the tables {', '.join(EVENT_TABLES)} is present; was anything traced "
            "(nsys --trace=cuda,nvtx)?"
        )
    for table in (STRINGS_TABLE, *present):
        missing = [c for c in REQUIRED_COLUMNS[table] if c not in columns[table]]
        if missing:
            raise NsysImportError(
                f"{source}: table {table} lacks column(s) {', '.join(missing)}; unsupported nsys export schema"
            )
    return columns
