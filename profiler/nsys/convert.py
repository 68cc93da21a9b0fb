"""nsys SQLite export -> our Kineto-compatible Chrome trace, so an Nsight Systems capture opens in
the same viewer and tools as a trace from our own profiler (and compares against torch's).

Mapping (Kineto's conventions): NVTX ranges become ``X`` events on their CPU thread (``cpu_op`` for
tensorlib's op/backward categories, ``user_annotation`` otherwise), kernels / memcpys / memsets
become ``kernel`` / ``gpu_memcpy`` / ``gpu_memset`` events on pid = device, tid = stream, CUDA runtime
calls become ``cuda_runtime`` events, and each runtime call is tied to the GPU work it launched by an
``ac2g`` flow sharing the CUPTI correlation id. nsys timestamps are ns since the capture started;
``baseTimeNanoseconds`` is that start in UTC epoch ns, and ``ts``/``dur`` are µs with ns precision.
"""

from __future__ import annotations

import re
import sqlite3
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from safeio import literal

from profiler._atomic import write_bytes
from profiler.occupancy import from_kineto, kernel_args
from profiler.nsys.schema import EVENT_TABLES, Export, check_schema, open_export, quote

SCHEMA_VERSION = 1  # Kineto's trace schemaVersion

# ENUM_NSYS_EVENT_TYPE ids used for NVTX rows (looked up by name when the enum table exists).
NVTX_EVENT_TYPES = {
    "NvtxCategory": 33,
    "NvtxMark": 34,
    "NvtxThread": 39,
    "NvtxPushPopRange": 59,
    "NvtxStartEndRange": 60,
    "NvtxDomainCreate": 75,
}

# CUPTI's CUpti_ActivityMemcpyKind / CUpti_ActivityMemoryKind numbering, which nsys exports as is;
# names as Kineto prints them ("Memcpy HtoD (Pageable -> Device)").
MEMCPY_KINDS = ("Unknown", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH", "PtoP")
MEMORY_KINDS = ("Unknown", "Pageable", "Pinned", "Device", "Array", "Managed", "Device Static", "Managed Static")

TENSORLIB_DOMAIN = "tensorlib"
TENSORLIB_OP_CATEGORIES = {"op", "backward"}
# profiler.nvtx's record_shapes message, torch emit_nvtx style: "add, seq = 12, sizes = [[8], [8]]".
OP_MESSAGE = re.compile(r"^(?P<name>[^,]+?)(?:, seq = (?P<seq>-?\d+))?(?:, sizes = (?P<sizes>\[.*\]))?$")
RUNTIME_VERSION_SUFFIX = re.compile(r"_v\d+$")


def us(ns: int) -> float:
    """ns -> µs keeping ns precision (three decimals), as Kineto writes them."""
    return round(ns / 1000, 3)


def split_gtid(gtid: int | None) -> tuple[int, int]:
    """nsys serialized GlobalId -> (pid, tid)."""
    if gtid is None:
        return 0, 0
    return (gtid >> 24) & 0xFFFFFF, gtid & 0xFFFFFF


def _kind_name(names: tuple[str, ...], value: int | None) -> str:
    return names[value] if value is not None and 0 <= value < len(names) else "Unknown"


def _bandwidth(nbytes: int, start: int, end: int) -> float:
    return round(nbytes / (end - start), 3) if end > start else 0.0  # bytes/ns == GB/s


def parse_op_message(message: str) -> tuple[str, dict[str, Any]]:
    """Splits a tensorlib op message into the op name and Kineto-style args."""
    match = OP_MESSAGE.match(message)
    if match is None:
        return message, {}
    args: dict[str, Any] = {}
    if match["seq"] is not None:
        seq = int(match["seq"]) if len(match["seq"]) <= 20 else None
        if seq is None or not _is_int64(seq):
            return message, {}
        args["Sequence number"] = seq
    if match["sizes"] is not None:
        try:
            import orjson

            args["Input Dims"] = orjson.loads(match["sizes"])
        except ValueError:
            return message, {}
    return match["name"], args


def _is_int64(v: int) -> bool:
    return -(1 << 63) <= v < (1 << 63)


# What each column we read may hold (nsys writes INTEGER/TEXT, NOT NULL where the first two say so); a
# row with anything else (a float, a BLOB, text in a number) is skipped and counted, never guessed at.
# The check is SQLite's typeof() in the query, so the rows are filtered at SQLite's speed.
INT, INT_OR_NULL, TEXT_OR_NULL = "('integer')", "('integer', 'null')", "('text', 'null')"
_GPU_WORK = {"start": INT, "end": INT, "deviceId": INT, "streamId": INT, "contextId": INT_OR_NULL,
             "correlationId": INT_OR_NULL, "globalPid": INT_OR_NULL}
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "StringIds": {"id": INT, "value": TEXT_OR_NULL},
    "NVTX_EVENTS": {"start": INT, "end": INT_OR_NULL, "eventType": INT_OR_NULL, "text": TEXT_OR_NULL,
                    "textId": INT_OR_NULL, "globalTid": INT_OR_NULL, "domainId": INT_OR_NULL,
                    "category": INT_OR_NULL, "color": INT_OR_NULL, "int64Value": INT_OR_NULL},
    "CUPTI_ACTIVITY_KIND_RUNTIME": {"start": INT, "end": INT, "globalTid": INT_OR_NULL,
                                    "correlationId": INT_OR_NULL, "nameId": INT_OR_NULL},
    "CUPTI_ACTIVITY_KIND_KERNEL": {**_GPU_WORK, "demangledName": INT_OR_NULL, "registersPerThread": INT_OR_NULL,
                                   "staticSharedMemory": INT_OR_NULL, "dynamicSharedMemory": INT_OR_NULL,
                                   **{f"{k}{a}": INT_OR_NULL for k in ("grid", "block") for a in "XYZ"}},
    "CUPTI_ACTIVITY_KIND_MEMCPY": {**_GPU_WORK, "bytes": INT, "copyKind": INT_OR_NULL, "srcKind": INT_OR_NULL,
                                   "dstKind": INT_OR_NULL},
    "CUPTI_ACTIVITY_KIND_MEMSET": {**_GPU_WORK, "bytes": INT, "memKind": INT_OR_NULL},
    "TARGET_INFO_GPU": {"id": INT, "name": TEXT_OR_NULL},       # the other properties: INT_OR_NULL
    "TARGET_INFO_SESSION_START_TIME": {"utcEpochNs": INT},
    "PROCESSES": {"globalPid": INT, "name": TEXT_OR_NULL},
    "ThreadNames": {"nameId": INT_OR_NULL, "globalTid": INT},
    "ENUM_NSYS_EVENT_TYPE": {"id": INT, "name": TEXT_OR_NULL},
}


class _Converter:
    def __init__(self, conn: Export, columns: dict[str, set[str]], trace_name: str) -> None:
        self.conn = conn
        self.columns = columns
        self.trace_name = trace_name
        self.skipped: Counter[str] = Counter()
        self.strings = {r["id"]: r["value"] or "" for r in self.read("StringIds", ("id", "value"))}
        # Where events go as they are made: a list (convert_export), or an _EventBytes that serializes
        # each at once (import_nsys: memory bounded by the output, not a dict per event).
        self.events: Any = []
        self.cpu_threads: set[tuple[int, int]] = set()
        self.gpu_streams: set[tuple[int, int]] = set()
        self.trace_end = 0

    def has(self, table: str, column: str | None = None) -> bool:
        return table in self.columns and (column is None or column in self.columns[table])

    def read(self, table: str, names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The rows of `table` whose values have the types COLUMN_TYPES allows, as dicts of the given
        columns (all that COLUMN_TYPES lists and the table has, by default); other rows are counted in
        `skipped`. Rows whose end precedes their start are skipped too (a negative duration)."""
        names, valid = self._valid(table, names)
        try:
            rows = self.conn.execute(f"SELECT {', '.join(quote(c) for c in names)} FROM {quote(table)} "
                                     f"WHERE {' AND '.join(valid)}").fetchall()
            total = self.conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
        except sqlite3.Error as exc:
            raise self.conn.error(exc, f"table {table}") from exc
        if total > len(rows):
            self.skipped[table] += total - len(rows)
        return [dict(zip(names, row)) for row in rows]

    def _valid(self, table: str, names: tuple[str, ...] | None) -> tuple[tuple[str, ...], list[str]]:
        types = COLUMN_TYPES[table]
        if names is None:
            names = tuple(c for c in types if c in self.columns[table])
        valid = [f"typeof({quote(c)}) IN {types.get(c, INT_OR_NULL)}" for c in names]
        if "start" in names and "end" in names:
            valid.append('("end" IS NULL OR "end" >= "start")')
        return names, valid

    def read_events(self, table: str) -> list[dict[str, Any]]:
        """As `read`, in time order (ties in the table's own order, as ORDER BY start, rowid gave)."""
        rows = self.read(table)
        rows.sort(key=lambda r: r["start"])
        return rows

    def iter_events(self, table: str) -> Iterator[dict[str, Any]]:
        """`read_events`, a row at a time: SQLite sorts (by start, then rowid: the table's own order)
        and one dict lives at a time. A table without a rowid is read and sorted whole, as before."""
        names, valid = self._valid(table, None)
        query = (f"SELECT {', '.join(quote(c) for c in names)} FROM {quote(table)} "
                 f"WHERE {' AND '.join(valid)} ORDER BY \"start\", rowid")
        try:
            cursor = self.conn.execute(query)
        except sqlite3.Error:  # WITHOUT ROWID (or a view): no rowid to break ties with
            yield from self._read_events_uncounted(table)
            return
        try:
            for row in cursor:
                yield dict(zip(names, row))
        except sqlite3.Error as exc:
            raise self.conn.error(exc, f"table {table}") from exc

    def _read_events_uncounted(self, table: str) -> list[dict[str, Any]]:
        """read_events, without counting the skipped rows again (read_event_tables counted them)."""
        before = self.skipped[table]
        rows = self.read_events(table)
        if before:
            self.skipped[table] = before
        else:
            self.skipped.pop(table, None)
        return rows

    # ---- metadata -------------------------------------------------------------------------
    def base_time_ns(self) -> int:
        if self.has("TARGET_INFO_SESSION_START_TIME", "utcEpochNs"):
            rows = self.read("TARGET_INFO_SESSION_START_TIME")
            if rows:
                return rows[0]["utcEpochNs"]
        return 0

    def device_properties(self) -> list[dict[str, Any]]:
        if not self.has("TARGET_INFO_GPU", "id"):
            return []
        wanted = {  # Kineto's deviceProperties key -> TARGET_INFO_GPU column
            "name": "name",
            "totalGlobalMem": "totalMemory",
            "computeMajor": "computeMajor",
            "computeMinor": "computeMinor",
            "maxThreadsPerBlock": "maxThreadsPerBlock",
            "regsPerBlock": "maxRegistersPerBlock",
            "regsPerMultiprocessor": "maxRegistersPerSm",
            "warpSize": "threadsPerWarp",
            "sharedMemPerBlock": "maxShmemPerBlock",
            "sharedMemPerMultiprocessor": "maxShmemPerSm",
            "numSms": "smCount",
            "sharedMemPerBlockOptin": "maxShmemPerBlockOptin",
        }
        present = {k: c for k, c in wanted.items() if self.has("TARGET_INFO_GPU", c)}
        devices = []
        names = ("id", *dict.fromkeys(present.values()))
        if self.has("TARGET_INFO_GPU", "maxWarpsPerSm"):
            names += ("maxWarpsPerSm",)
        for row in sorted(self.read("TARGET_INFO_GPU", names), key=lambda r: r["id"]):
            props: dict[str, Any] = {"id": row["id"]}
            props.update({k: row[c] for k, c in present.items() if row[c] is not None})
            threads = (row.get("maxWarpsPerSm") or 0) * props.get("warpSize", 0)
            if threads and _is_int64(threads):
                props["maxThreadsPerMultiprocessor"] = threads
            devices.append(props)
        return devices

    def metadata_events(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        process_names: dict[int, str] = {}
        if self.has("PROCESSES", "globalPid") and self.has("PROCESSES", "name"):
            for r in self.read("PROCESSES", ("globalPid", "name")):
                if r["name"] is not None:
                    process_names[split_gtid(r["globalPid"])[0]] = r["name"]
        thread_names: dict[tuple[int, int], str] = {}
        if self.has("ThreadNames", "nameId") and self.has("ThreadNames", "globalTid"):
            for r in self.read("ThreadNames", ("nameId", "globalTid")):
                thread_names[split_gtid(r["globalTid"])] = self.strings.get(r["nameId"], "")
        gpu_names = {d["id"]: d.get("name") for d in devices}
        meta: list[dict[str, Any]] = []
        for pid in sorted({p for p, _ in self.cpu_threads}):
            meta.append(_meta("process_name", pid, 0, process_names.get(pid, f"process {pid}")))
        for pid, tid in sorted(self.cpu_threads):
            meta.append(_meta("thread_name", pid, tid, thread_names.get((pid, tid)) or f"thread {tid}"))
        for device in sorted({d for d, _ in self.gpu_streams}):
            meta.append(_meta("process_name", device, 0, f"GPU {device}"))
            if gpu_names.get(device):
                meta.append({"name": "process_labels", "ph": "M", "pid": device, "tid": 0,
                             "args": {"labels": gpu_names[device]}})
        for device, stream in sorted(self.gpu_streams):
            meta.append(_meta("thread_name", device, stream, f"stream {stream}"))
        return meta

    # ---- NVTX ------------------------------------------------------------------------------
    def nvtx_types(self) -> dict[str, int]:
        types = dict(NVTX_EVENT_TYPES)
        if self.has("ENUM_NSYS_EVENT_TYPE", "name"):
            for r in self.read("ENUM_NSYS_EVENT_TYPE", ("id", "name")):
                if r["name"] in types:
                    types[r["name"]] = r["id"]
        return types

    def nvtx(self) -> None:
        if "NVTX_EVENTS" not in self.columns:
            return
        types = self.nvtx_types()
        payload = self.has("NVTX_EVENTS", "int64Value")
        domains: dict[tuple[int, int], str] = {}
        categories: dict[tuple[int, int, int], str] = {}
        for r in self.iter_events("NVTX_EVENTS"):
            pid = split_gtid(r["globalTid"])[0]
            if r["eventType"] == types["NvtxDomainCreate"]:
                domains[(pid, r["domainId"] or 0)] = self._text(r)
            elif r["eventType"] == types["NvtxCategory"]:
                categories[(pid, r["domainId"] or 0, r["category"] or 0)] = self._text(r)
        ranges = (types["NvtxPushPopRange"], types["NvtxStartEndRange"])
        for r in self.iter_events("NVTX_EVENTS"):
            if r["eventType"] not in ranges and r["eventType"] != types["NvtxMark"]:
                continue
            pid, tid = split_gtid(r["globalTid"])
            domain = domains.get((pid, r["domainId"] or 0), "")
            category = categories.get((pid, r["domainId"] or 0, r["category"] or 0))
            name = self._text(r)
            args: dict[str, Any] = {"domain": domain}
            if category is not None:
                args["category"] = category
            if r["color"] is not None:
                args["color"] = f"#{r['color'] & 0xFFFFFF:06X}"
            cat = "user_annotation"
            if domain == TENSORLIB_DOMAIN and category in TENSORLIB_OP_CATEGORIES:
                cat = "cpu_op"
                name, parsed = parse_op_message(name)
                args.update(parsed)
                if payload and r["int64Value"] is not None:
                    args.setdefault("Sequence number", r["int64Value"])
            event: dict[str, Any] = {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": us(r["start"])}
            if r["eventType"] == types["NvtxMark"]:
                event.update(ph="i", s="t")
            else:
                end = r["end"]
                if end is None:  # never popped: clip to the end of the capture, and say so
                    end = max(self.trace_end, r["start"])
                    args["unfinished"] = True
                event["dur"] = us(end - r["start"])
            event["args"] = args
            self.cpu_threads.add((pid, tid))
            self.events.append(event)

    def _text(self, row: dict[str, Any]) -> str:
        if row["text"] is not None:
            return row["text"]
        return self.strings.get(row["textId"], "") if row["textId"] is not None else ""

    # ---- CUDA ------------------------------------------------------------------------------
    def runtime(self) -> dict[tuple[int | None, int], tuple[Any, Any, Any]]:
        """Emits cuda_runtime events; returns their (pid, tid, ts) by (pid, correlation id) for the flows."""
        launches: dict[tuple[int | None, int], tuple[Any, Any, Any]] = {}
        if "CUPTI_ACTIVITY_KIND_RUNTIME" not in self.columns:
            return launches
        for r in self.iter_events("CUPTI_ACTIVITY_KIND_RUNTIME"):
            pid, tid = split_gtid(r["globalTid"])
            name = RUNTIME_VERSION_SUFFIX.sub("", self.strings.get(r["nameId"], f"<string {r['nameId']}>"))
            event = {
                "ph": "X", "cat": "cuda_runtime", "name": name, "pid": pid, "tid": tid,
                "ts": us(r["start"]), "dur": us(r["end"] - r["start"]),
                "args": {"correlation": r["correlationId"]},
            }
            self.cpu_threads.add((pid, tid))
            self.events.append(event)
            if r["correlationId"] is not None:
                launch = (pid, tid, event["ts"])
                launches[(pid, r["correlationId"])] = launch
                launches.setdefault((None, r["correlationId"]), launch)
        return launches

    def gpu(self, launches: dict[tuple[int | None, int], tuple[Any, Any, Any]],
            props: dict[Any, dict[str, Any] | None]) -> None:
        flows: Any = self.events.new()

        def emit(r: dict[str, Any], cat: str, name: str, args: dict[str, Any]) -> None:
            device, stream = r["deviceId"], r["streamId"]
            base_args = {"device": device, "context": r["contextId"], "stream": stream,
                         "correlation": r["correlationId"]}
            event = {
                "ph": "X", "cat": cat, "name": name, "pid": device, "tid": stream,
                "ts": us(r["start"]), "dur": us(r["end"] - r["start"]), "args": {**base_args, **args},
            }
            self.gpu_streams.add((device, stream))
            self.events.append(event)
            pid = split_gtid(r["globalPid"])[0] if r["globalPid"] is not None else None
            launch = launches.get((pid, r["correlationId"])) if r["correlationId"] is not None else None
            if launch is not None:
                flow = {"id": r["correlationId"], "cat": "ac2g", "name": "ac2g"}
                flows.append({"ph": "s", **flow, "pid": launch[0], "tid": launch[1], "ts": launch[2]})
                flows.append({"ph": "f", **flow, "pid": device, "tid": stream, "ts": event["ts"], "bp": "e"})

        if "CUPTI_ACTIVITY_KIND_KERNEL" in self.columns:
            for r in self.iter_events("CUPTI_ACTIVITY_KIND_KERNEL"):
                emit(r, "kernel", self.strings.get(r["demangledName"], f"<string {r['demangledName']}>"), kernel_args({
                    "registers per thread": r["registersPerThread"],
                    "shared memory": (r["staticSharedMemory"] or 0) + (r["dynamicSharedMemory"] or 0),
                    "grid": [r["gridX"], r["gridY"], r["gridZ"]],
                    "block": [r["blockX"], r["blockY"], r["blockZ"]],
                }, props.get(r["deviceId"])))
        if "CUPTI_ACTIVITY_KIND_MEMCPY" in self.columns:
            for r in self.iter_events("CUPTI_ACTIVITY_KIND_MEMCPY"):
                kind = _kind_name(MEMCPY_KINDS, r["copyKind"])
                src, dst = _kind_name(MEMORY_KINDS, r["srcKind"]), _kind_name(MEMORY_KINDS, r["dstKind"])
                emit(r, "gpu_memcpy", f"Memcpy {kind} ({src} -> {dst})", {
                    "bytes": r["bytes"], "memory bandwidth (GB/s)": _bandwidth(r["bytes"], r["start"], r["end"]),
                })
        if "CUPTI_ACTIVITY_KIND_MEMSET" in self.columns:
            for r in self.iter_events("CUPTI_ACTIVITY_KIND_MEMSET"):
                emit(r, "gpu_memset", f"Memset ({_kind_name(MEMORY_KINDS, r['memKind'])})", {
                    "bytes": r["bytes"], "memory bandwidth (GB/s)": _bandwidth(r["bytes"], r["start"], r["end"]),
                })
        self.events.extend(flows)

    def read_event_tables(self) -> None:
        """Count each event table's invalid rows (skipped), and find the capture's end (the last start or
        end of a valid row), in SQL: the rows themselves are read later, one at a time."""
        ends = []
        for table in EVENT_TABLES:
            if table not in self.columns:
                continue
            _, valid = self._valid(table, None)
            try:
                good, end = self.conn.execute(
                    f"SELECT count(*), max(CASE WHEN \"end\" IS NULL THEN \"start\" ELSE \"end\" END) "
                    f"FROM {quote(table)} WHERE {' AND '.join(valid)}").fetchone()
                total = self.conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
            except sqlite3.Error as exc:
                raise self.conn.error(exc, f"table {table}") from exc
            if total > good:
                self.skipped[table] += total - good
            if end is not None:
                ends.append(end)
        self.trace_end = max(ends, default=0)

    def convert(self) -> dict[str, Any]:
        self.read_event_tables()
        self.nvtx()
        devices = self.device_properties()
        self.gpu(self.runtime(), {d["id"]: from_kineto(d) for d in devices})
        return {
            "schemaVersion": SCHEMA_VERSION,
            "deviceProperties": devices,
            "displayTimeUnit": "ms",
            "baseTimeNanoseconds": self.base_time_ns(),
            "traceName": self.trace_name,
            "traceEvents": self.events.before(self.metadata_events(devices)),
        }


class _EventList(list):  # type: ignore[type-arg]
    """convert_export's events: dicts in a list."""

    def new(self) -> _EventList:
        return _EventList()

    def before(self, meta: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return meta + self


class _EventBytes:
    """import_nsys's events: each serialized as it is made, into one buffer (about the output's size),
    with the counts the CLI's summary line gives."""

    def __init__(self) -> None:
        import orjson

        self.dumps = orjson.dumps
        self.buf = bytearray()
        self.count = 0
        self.cats: Counter[str] = Counter()
        self.flows = 0

    def append(self, event: dict[str, Any]) -> None:
        if self.count:
            self.buf += b","
        self.buf += self.dumps(event)
        self.count += 1
        ph = event.get("ph")
        if ph == "s":
            self.flows += 1
        elif ph not in ("M", "f"):
            self.cats[event.get("cat", "")] += 1

    def new(self) -> _EventBytes:
        return _EventBytes()

    def extend(self, other: _EventBytes) -> None:
        if other.count:
            if self.count:
                self.buf += b","
            self.buf += other.buf
            self.count += other.count
            self.cats.update(other.cats)
            self.flows += other.flows
        other.buf = bytearray()

    def before(self, meta: list[dict[str, Any]]) -> _EventBytes:
        head = _EventBytes()
        for m in meta:
            head.append(m)
        head.extend(self)
        return head


def _meta(kind: str, pid: int, tid: int, name: str) -> dict[str, Any]:
    return {"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}


class MalformedRowsWarning(UserWarning):
    """Rows of the export whose values nsys would never write were skipped (one warning per import)."""


def convert_export(sqlite_path: str | Path, trace_name: str | None = None) -> dict[str, Any]:
    """Reads an nsys SQLite export into a Chrome trace dict; NsysImportError on unusable input. Rows with
    values of the wrong type are skipped, and one MalformedRowsWarning says how many, per table."""
    head, events = _convert(sqlite_path, trace_name or str(sqlite_path), _EventList())
    return {**head, "traceEvents": events}


def _convert(sqlite_path: str | Path, trace_name: str, sink: Any) -> tuple[dict[str, Any], Any]:
    """The trace's header fields and its events, made into `sink` (an _EventList or an _EventBytes)."""
    conn = open_export(sqlite_path)
    try:
        columns = check_schema(conn, str(sqlite_path))
        converter = _Converter(conn, columns, trace_name)
        converter.events = sink
        trace = converter.convert()
    finally:
        conn.close()
    if converter.skipped:
        counts = ", ".join(f"{n} in {t}" for t, n in sorted(converter.skipped.items()))
        warnings.warn(literal(f"{sqlite_path}: skipped {sum(converter.skipped.values())} malformed row(s) "
                              f"({counts}): NULL, text, float or BLOB where nsys writes a number, or an end "
                              f"before the start"), MalformedRowsWarning, stacklevel=3)
    events = trace.pop("traceEvents")
    return trace, events


def import_nsys(sqlite_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """``python -m profiler import-nsys``: converts and writes the trace (through safeio: atomically,
    so a full disk keeps the old output; gzipped when the name ends in .gz). Rows are read one at a time
    and each event is serialized as it is made, so memory is bounded by the size of the output rather
    than a dict per row and per event. Returns the trace's header fields (everything but traceEvents)
    with `eventCount`, `eventsByCategory` (flows and metadata left out) and `flowCount`."""
    import orjson

    head, events = _convert(sqlite_path, str(out_path), _EventBytes())
    assert isinstance(events, _EventBytes)
    prefix = orjson.dumps({**head, "traceEvents": []})
    assert prefix.endswith(b"[]}")
    write_bytes(out_path, (prefix[:-2], events.buf, b"]}"), what="Chrome trace")
    return {**head, "eventCount": events.count, "eventsByCategory": dict(events.cats), "flowCount": events.flows}
