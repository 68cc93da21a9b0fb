"""What we need from an ``nsys export --type sqlite`` database, checked up front so a wrong or
too-old file fails with one line naming what is missing instead of a traceback mid-conversion.

Column names follow the Nsight Systems "SQLite Export Schema Reference" (export schema 3.x).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def open_export(path: str | Path) -> sqlite3.Connection:
    """Opens read-only and proves it is an SQLite database (sqlite3 is lazy about both)."""
    path = Path(path)
    if not path.is_file():
        raise NsysImportError(f"{path}: no such file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise NsysImportError(f"{path}: not an SQLite database ({exc}); export one with `nsys export --type sqlite`") from exc
    return conn


def table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
    return {t: {row[1] for row in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}


def schema_version(conn: sqlite3.Connection, columns: dict[str, set[str]]) -> str | None:
    if not {"name", "value"} <= columns.get("META_DATA_EXPORT", set()):
        return None
    row = conn.execute("SELECT value FROM META_DATA_EXPORT WHERE name = 'EXPORT_SCHEMA_VERSION'").fetchone()
    return None if row is None else str(row[0])


def check_schema(conn: sqlite3.Connection, source: str) -> dict[str, set[str]]:
    """Returns the columns of every table; raises NsysImportError naming what is missing or unsupported."""
    columns = table_columns(conn)
    version = schema_version(conn, columns)
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
