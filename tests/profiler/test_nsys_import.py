"""import-nsys: small databases in the nsys SQLite export schema (column names from Nsight Systems'
"SQLite Export Schema Reference") converted to our trace and compared exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from profiler._cli import main
from profiler.nsys.convert import convert_export, parse_op_message, split_gtid
from profiler.nsys.schema import NsysImportError

PID, TID = 4242, 4243
GTID = (PID << 24) | TID
GPID = PID << 24

DDL = {
    "StringIds": "id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL",
    "META_DATA_EXPORT": "name TEXT NOT NULL, value TEXT",
    "TARGET_INFO_SESSION_START_TIME": "utcEpochNs INTEGER, utcTime TEXT, localTime TEXT",
    "TARGET_INFO_GPU": (
        "vmId INTEGER NOT NULL, id INTEGER NOT NULL, name TEXT, busLocation TEXT, totalMemory INTEGER, "
        "smCount INTEGER, maxShmemPerBlock INTEGER, maxShmemPerBlockOptin INTEGER, maxShmemPerSm INTEGER, "
        "maxRegistersPerBlock INTEGER, maxRegistersPerSm INTEGER, threadsPerWarp INTEGER, maxWarpsPerSm INTEGER, "
        "maxThreadsPerBlock INTEGER, computeMajor INTEGER, computeMinor INTEGER"
    ),
    "ThreadNames": "nameId INTEGER NOT NULL, priority INTEGER, globalTid INTEGER",
    "PROCESSES": "globalPid INTEGER, pid INTEGER, name TEXT",
    "NVTX_EVENTS": (
        "start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER, category INTEGER, "
        "color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER, textId INTEGER, domainId INTEGER, "
        "uint64Value INTEGER, int64Value INTEGER, doubleValue REAL, uint32Value INTEGER, int32Value INTEGER, "
        "floatValue REAL, jsonTextId INTEGER, jsonText TEXT"
    ),
    "CUPTI_ACTIVITY_KIND_RUNTIME": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER NOT NULL, globalTid INTEGER, "
        "correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER NOT NULL, callchainId INTEGER"
    ),
    "CUPTI_ACTIVITY_KIND_KERNEL": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, "
        "streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER NOT NULL, "
        "shortName INTEGER NOT NULL, mangledName INTEGER, launchType INTEGER, cacheConfig INTEGER, "
        "registersPerThread INTEGER NOT NULL, gridX INTEGER NOT NULL, gridY INTEGER NOT NULL, gridZ INTEGER NOT NULL, "
        "blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, blockZ INTEGER NOT NULL, "
        "staticSharedMemory INTEGER NOT NULL, dynamicSharedMemory INTEGER NOT NULL, "
        "localMemoryPerThread INTEGER NOT NULL, localMemoryTotal INTEGER NOT NULL, gridId INTEGER NOT NULL, "
        "sharedMemoryExecuted INTEGER, graphNodeId INTEGER, sharedMemoryLimitConfig INTEGER"
    ),
    "CUPTI_ACTIVITY_KIND_MEMCPY": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, "
        "streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, bytes INTEGER NOT NULL, "
        "copyKind INTEGER NOT NULL, deprecatedSrcId INTEGER, srcKind INTEGER, dstKind INTEGER, "
        "srcDeviceId INTEGER, srcContextId INTEGER, dstDeviceId INTEGER, dstContextId INTEGER, "
        "migrationCause INTEGER, graphNodeId INTEGER, virtualAddress INTEGER"
    ),
    "CUPTI_ACTIVITY_KIND_MEMSET": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, "
        "streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, value INTEGER NOT NULL, "
        "bytes INTEGER NOT NULL, graphNodeId INTEGER, memKind INTEGER"
    ),
}

STRINGS = {
    1: "model.fc1",
    2: "cudaLaunchKernel_v7000",
    3: "void add_kernel<float>(float*, float const*, int)",
    4: "add_kernel",
    5: "cudaMemcpyAsync_v3020",
    6: "cudaMemsetAsync_v3020",
    7: "python3",
}


def insert(db: sqlite3.Connection, table: str, **row) -> None:
    names = ", ".join(f'"{k}"' for k in row)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def make_export(path: Path, *, drop: tuple[str, ...] = (), version: str = "3.24.14", ddl: dict | None = None) -> Path:
    """A one-step capture: a module range around an op range (tensorlib domain), a launch, a kernel,
    a memcpy and a memset with their runtime calls, a mark and a range that was never popped."""
    ddl = {**DDL, **(ddl or {})}
    db = sqlite3.connect(path)
    for table, columns in ddl.items():
        if table not in drop:
            db.execute(f"CREATE TABLE {table} ({columns})")
    has = lambda t: t not in drop  # noqa: E731
    if has("StringIds"):
        db.executemany("INSERT INTO StringIds VALUES (?, ?)", STRINGS.items())
    if has("META_DATA_EXPORT"):
        insert(db, "META_DATA_EXPORT", name="EXPORT_SCHEMA_VERSION", value=version)
    if has("TARGET_INFO_SESSION_START_TIME"):
        insert(db, "TARGET_INFO_SESSION_START_TIME", utcEpochNs=1_700_000_000_123_456_789)
    if has("TARGET_INFO_GPU"):
        insert(db, "TARGET_INFO_GPU", vmId=0, id=0, name="NVIDIA H100 80GB HBM3", totalMemory=85_045_395_456,
               smCount=132, maxShmemPerBlock=49152, maxShmemPerBlockOptin=232448, maxShmemPerSm=233472,
               maxRegistersPerBlock=65536, maxRegistersPerSm=65536, threadsPerWarp=32, maxWarpsPerSm=64,
               maxThreadsPerBlock=1024, computeMajor=9, computeMinor=0)
    if has("ThreadNames"):
        insert(db, "ThreadNames", nameId=7, priority=0, globalTid=GTID)
    if has("PROCESSES"):
        insert(db, "PROCESSES", globalPid=GPID, pid=PID, name="python3")
    if has("NVTX_EVENTS"):
        nv = lambda **r: insert(db, "NVTX_EVENTS", globalTid=GTID, **r)  # noqa: E731
        nv(start=10, eventType=75, domainId=1, text="tensorlib")
        nv(start=11, eventType=33, domainId=1, category=1, text="op")
        nv(start=12, eventType=33, domainId=1, category=3, text="module")
        nv(start=1_000_123, end=9_000_456, eventType=59, domainId=1, category=3, color=0xFF1F77B4, textId=1)
        nv(start=2_000_001, end=5_000_002, eventType=59, domainId=1, category=1, color=0xFF76B900,
           text="add, seq = 12, sizes = [[8], [8]]", int64Value=12)
        nv(start=5_100_000, end=5_200_000, eventType=59, domainId=1, category=1, color=0xFF76B900,
           text="relu", int64Value=13)
        nv(start=9_500_000, eventType=34, domainId=0, text="checkpoint")
        nv(start=9_600_000, eventType=59, domainId=0, text="never popped")
    if has("CUPTI_ACTIVITY_KIND_RUNTIME"):
        rt = lambda **r: insert(db, "CUPTI_ACTIVITY_KIND_RUNTIME", eventClass=1, globalTid=GTID, returnValue=0, **r)  # noqa: E731
        rt(start=2_500_000, end=3_500_000, correlationId=7, nameId=2)
        rt(start=6_000_000, end=6_400_000, correlationId=8, nameId=5)
        rt(start=6_500_000, end=6_600_000, correlationId=9, nameId=6)
    gpu = dict(deviceId=0, contextId=1, streamId=7, globalPid=GPID)
    if has("CUPTI_ACTIVITY_KIND_KERNEL"):
        insert(db, "CUPTI_ACTIVITY_KIND_KERNEL", start=4_000_000, end=4_800_250, correlationId=7,
               demangledName=3, shortName=4, registersPerThread=16, gridX=2, gridY=1, gridZ=1, blockX=128,
               blockY=1, blockZ=1, staticSharedMemory=0, dynamicSharedMemory=256, localMemoryPerThread=0,
               localMemoryTotal=0, gridId=1, **gpu)
    if has("CUPTI_ACTIVITY_KIND_MEMCPY"):
        insert(db, "CUPTI_ACTIVITY_KIND_MEMCPY", start=7_000_000, end=7_000_512, correlationId=8, bytes=1024,
               copyKind=1, srcKind=1, dstKind=3, **gpu)
    if has("CUPTI_ACTIVITY_KIND_MEMSET"):
        insert(db, "CUPTI_ACTIVITY_KIND_MEMSET", start=7_600_000, end=7_600_100, correlationId=9, value=0,
               bytes=512, memKind=3, **gpu)
    db.commit()
    db.close()
    return path


def expected_trace(trace_name: str) -> dict:
    flow = {"cat": "ac2g", "name": "ac2g"}
    gpu_args = {"device": 0, "context": 1, "stream": 7}
    return {
        "schemaVersion": 1,
        "deviceProperties": [{
            "id": 0, "name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 85_045_395_456, "computeMajor": 9,
            "computeMinor": 0, "maxThreadsPerBlock": 1024, "regsPerBlock": 65536, "regsPerMultiprocessor": 65536,
            "warpSize": 32, "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": 233472, "numSms": 132,
            "sharedMemPerBlockOptin": 232448, "maxThreadsPerMultiprocessor": 2048,
        }],
        "displayTimeUnit": "ms",
        "baseTimeNanoseconds": 1_700_000_000_123_456_789,
        "traceName": trace_name,
        "traceEvents": [
            {"name": "process_name", "ph": "M", "pid": PID, "tid": 0, "args": {"name": "python3"}},
            {"name": "thread_name", "ph": "M", "pid": PID, "tid": TID, "args": {"name": "python3"}},
            {"name": "process_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}},
            {"name": "process_labels", "ph": "M", "pid": 0, "tid": 0, "args": {"labels": "NVIDIA H100 80GB HBM3"}},
            {"name": "thread_name", "ph": "M", "pid": 0, "tid": 7, "args": {"name": "stream 7"}},
            {"ph": "X", "cat": "user_annotation", "name": "model.fc1", "pid": PID, "tid": TID, "ts": 1000.123,
             "dur": 8000.333, "args": {"domain": "tensorlib", "category": "module", "color": "#1F77B4"}},
            {"ph": "X", "cat": "cpu_op", "name": "add", "pid": PID, "tid": TID, "ts": 2000.001, "dur": 3000.001,
             "args": {"domain": "tensorlib", "category": "op", "color": "#76B900", "Sequence number": 12,
                      "Input Dims": [[8], [8]]}},
            {"ph": "X", "cat": "cpu_op", "name": "relu", "pid": PID, "tid": TID, "ts": 5100.0, "dur": 100.0,
             "args": {"domain": "tensorlib", "category": "op", "color": "#76B900", "Sequence number": 13}},
            {"ph": "i", "s": "t", "cat": "user_annotation", "name": "checkpoint", "pid": PID, "tid": TID,
             "ts": 9500.0, "args": {"domain": ""}},
            {"ph": "X", "cat": "user_annotation", "name": "never popped", "pid": PID, "tid": TID, "ts": 9600.0,
             "dur": 0.0, "args": {"domain": "", "unfinished": True}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": PID, "tid": TID, "ts": 2500.0,
             "dur": 1000.0, "args": {"correlation": 7}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "pid": PID, "tid": TID, "ts": 6000.0,
             "dur": 400.0, "args": {"correlation": 8}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaMemsetAsync", "pid": PID, "tid": TID, "ts": 6500.0,
             "dur": 100.0, "args": {"correlation": 9}},
            {"ph": "X", "cat": "kernel", "name": "void add_kernel<float>(float*, float const*, int)", "pid": 0,
             "tid": 7, "ts": 4000.0, "dur": 800.25,
             "args": {**gpu_args, "correlation": 7, "registers per thread": 16, "shared memory": 256,
                      "blocks per SM": 0.015152, "warps per SM": 0.060606,   # Kineto's, from the GPU's 132 SMs
                      "grid": [2, 1, 1], "block": [128, 1, 1], "est. achieved occupancy %": 0}},
            {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "pid": 0, "tid": 7,
             "ts": 7000.0, "dur": 0.512,
             "args": {**gpu_args, "correlation": 8, "bytes": 1024, "memory bandwidth (GB/s)": 2.0}},
            {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "pid": 0, "tid": 7, "ts": 7600.0,
             "dur": 0.1, "args": {**gpu_args, "correlation": 9, "bytes": 512, "memory bandwidth (GB/s)": 5.12}},
            {"ph": "s", "id": 7, **flow, "pid": PID, "tid": TID, "ts": 2500.0},
            {"ph": "f", "id": 7, **flow, "pid": 0, "tid": 7, "ts": 4000.0, "bp": "e"},
            {"ph": "s", "id": 8, **flow, "pid": PID, "tid": TID, "ts": 6000.0},
            {"ph": "f", "id": 8, **flow, "pid": 0, "tid": 7, "ts": 7000.0, "bp": "e"},
            {"ph": "s", "id": 9, **flow, "pid": PID, "tid": TID, "ts": 6500.0},
            {"ph": "f", "id": 9, **flow, "pid": 0, "tid": 7, "ts": 7600.0, "bp": "e"},
        ],
    }


@pytest.fixture
def nsys_db(tmp_path):
    return make_export(tmp_path / "report.sqlite")


def test_full_conversion_is_exact(nsys_db):
    trace = convert_export(nsys_db, trace_name="trace.json")
    expected = expected_trace("trace.json")
    assert trace["traceEvents"] == expected["traceEvents"]
    assert trace == expected


def test_cli_writes_the_trace_and_a_summary(nsys_db, tmp_path, capsys):
    out = tmp_path / "trace.json"
    assert main(["import-nsys", str(nsys_db), "-o", str(out)]) == 0
    assert orjson.loads(out.read_bytes()) == expected_trace(str(out))
    assert capsys.readouterr().out == (
        f"wrote {out}: 2 cpu_op, 3 cuda_runtime, 1 gpu_memcpy, 1 gpu_memset, 1 kernel, 3 user_annotation, "
        "3 ac2g flows\n"
    )


def test_cli_default_output_name(nsys_db, capsys):
    assert main(["import-nsys", str(nsys_db)]) == 0
    assert nsys_db.with_suffix(".pt.trace.json").is_file()


def test_timestamps_keep_nanoseconds(nsys_db):
    events = convert_export(nsys_db)["traceEvents"]
    fc1 = next(e for e in events if e["name"] == "model.fc1")
    assert (fc1["ts"], fc1["dur"]) == (1000.123, 8000.333)
    assert b'"ts":1000.123' in orjson.dumps(fc1)


def test_without_optional_tables(tmp_path):
    db = make_export(
        tmp_path / "r.sqlite",
        drop=("META_DATA_EXPORT", "TARGET_INFO_SESSION_START_TIME", "TARGET_INFO_GPU", "ThreadNames", "PROCESSES",
              "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET", "NVTX_EVENTS"),
    )
    trace = convert_export(db)
    assert trace["baseTimeNanoseconds"] == 0 and trace["deviceProperties"] == []
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    assert meta == [
        {"name": "process_name", "ph": "M", "pid": PID, "tid": 0, "args": {"name": f"process {PID}"}},
        {"name": "thread_name", "ph": "M", "pid": PID, "tid": TID, "args": {"name": f"thread {TID}"}},
        {"name": "process_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}},
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": 7, "args": {"name": "stream 7"}},
    ]
    assert sorted(e["cat"] for e in trace["traceEvents"] if e["ph"] == "X") == ["cuda_runtime"] * 3 + ["kernel"]
    assert sum(e["ph"] == "f" for e in trace["traceEvents"]) == 1


def error_of(path) -> str:
    with pytest.raises(NsysImportError) as info:
        convert_export(path)
    return str(info.value)


def test_missing_file(tmp_path):
    assert error_of(tmp_path / "nope.sqlite") == f"{str(tmp_path / 'nope.sqlite')!r}: no such file"


def test_not_sqlite(tmp_path):
    bad = tmp_path / "report.nsys-rep"
    bad.write_bytes(b"QDSTRM\x00 not a database at all" * 10)
    assert error_of(bad).startswith(f"{bad}: not an SQLite database (file is not a database)")


def test_missing_strings_table(tmp_path):
    db = make_export(tmp_path / "r.sqlite", drop=("StringIds",))
    assert error_of(db) == f"{db}: table StringIds is missing; not an nsys SQLite export"


def test_no_event_tables(tmp_path):
    db = make_export(tmp_path / "r.sqlite", drop=("NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_KERNEL",
                                                  "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET",
                                                  "CUPTI_ACTIVITY_KIND_RUNTIME"))
    assert error_of(db) == (
        f"{db}: none of the tables NVTX_EVENTS, CUPTI_ACTIVITY_KIND_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, "
        "CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_RUNTIME is present; "
        "was anything traced (nsys --trace=cuda,nvtx)?"
    )


def test_missing_columns(tmp_path):
    db = make_export(tmp_path / "r.sqlite", drop=("CUPTI_ACTIVITY_KIND_KERNEL",))
    columns = (DDL["CUPTI_ACTIVITY_KIND_KERNEL"].replace("gridY INTEGER NOT NULL, ", "")
               .replace("correlationId INTEGER, ", ""))
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL ({columns})")
    conn.commit()
    conn.close()
    assert error_of(db) == (
        f"{db}: table CUPTI_ACTIVITY_KIND_KERNEL lacks column(s) correlationId, gridY; unsupported nsys export schema"
    )


def test_unknown_schema_version(tmp_path):
    db = make_export(tmp_path / "r.sqlite", version="4.0.1")
    assert error_of(db) == f"{db}: nsys export schema version 4.0.1 is not supported (expected 3.x)"


def test_cli_error_is_one_line_with_status_1(tmp_path, capsys):
    db = make_export(tmp_path / "r.sqlite", version="2.1")
    assert main(["import-nsys", str(db), "-o", str(tmp_path / "t.json")]) == 1
    err = capsys.readouterr().err
    assert err == f"profiler import-nsys: error: {db}: nsys export schema version 2.1 is not supported (expected 3.x)\n"
    assert not (tmp_path / "t.json").exists()


def test_parse_op_message():
    assert parse_op_message("add, seq = 12, sizes = [[8], [8]]") == (
        "add", {"Sequence number": 12, "Input Dims": [[8], [8]]})
    assert parse_op_message("add, seq = 3") == ("add", {"Sequence number": 3})
    assert parse_op_message("sum, sizes = [[]]") == ("sum", {"Input Dims": [[]]})
    assert parse_op_message("relu") == ("relu", {})
    assert parse_op_message("odd, sizes = [[1, oops]]") == ("odd, sizes = [[1, oops]]", {})


def test_split_gtid():
    assert split_gtid(GTID) == (PID, TID)
    assert split_gtid(GPID) == (PID, 0)


def test_import_streams_what_convert_export_returns(nsys_db, tmp_path):
    """import_nsys serializes each event as it is made (memory bounded by the output): the file it
    writes, plain or gzipped, is the trace convert_export returns, and its counts describe that trace."""
    import gzip

    from profiler.nsys.convert import import_nsys

    for name in ("t.json", "t.json.gz"):
        out = tmp_path / name
        head = import_nsys(nsys_db, out)
        data = out.read_bytes()
        trace = orjson.loads(gzip.decompress(data) if name.endswith(".gz") else data)
        assert trace == expected_trace(str(out)) == convert_export(nsys_db, str(out))
        assert head["eventCount"] == len(trace["traceEvents"])
        assert head["flowCount"] == 3 and head["eventsByCategory"]["kernel"] == 1
        assert {k: v for k, v in head.items() if k in trace} == {k: v for k, v in trace.items() if k != "traceEvents"}
