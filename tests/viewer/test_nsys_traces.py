"""An Nsight Systems capture, converted by `python -m profiler import-nsys`, opens in the viewer.

The SQLite export is built here (column names from the nsys "SQLite Export Schema Reference", as in
tests/profiler/test_nsys_import.py) from a small description of two CPU threads with nested NVTX
ranges and CUDA launches, and kernels on two GPUs and three streams. Every expected number (lanes,
kernels per stream, durations, nesting, self time, launch flows) is computed from that description.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict

import numpy as np
import pytest

from profiler._cli import main as profiler_main
from viewer.app import ViewerApp
from viewer.details import Details
from viewer.model import KIND_SPAN, load_trace
from viewer.summary import ops_table
from viewer.timeline import Timeline

PID = 3100
THREADS = {3101: "main", 3102: "dataloader"}
DOMAIN_ID, OP_CAT, MODULE_CAT = 1, 1, 2

DDL = {
    "StringIds": "id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL",
    "META_DATA_EXPORT": "name TEXT NOT NULL, value TEXT",
    "ThreadNames": "nameId INTEGER NOT NULL, priority INTEGER, globalTid INTEGER",
    "PROCESSES": "globalPid INTEGER, pid INTEGER, name TEXT",
    "NVTX_EVENTS": ("start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, category INTEGER, "
                    "color INTEGER, text TEXT, globalTid INTEGER, textId INTEGER, domainId INTEGER, "
                    "int64Value INTEGER"),
    "CUPTI_ACTIVITY_KIND_RUNTIME": ("start INTEGER NOT NULL, end INTEGER NOT NULL, globalTid INTEGER, "
                                    "correlationId INTEGER, nameId INTEGER NOT NULL"),
    "CUPTI_ACTIVITY_KIND_KERNEL": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, "
        "streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER NOT NULL, "
        "registersPerThread INTEGER NOT NULL, gridX INTEGER NOT NULL, gridY INTEGER NOT NULL, gridZ INTEGER NOT NULL, "
        "blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, blockZ INTEGER NOT NULL, "
        "staticSharedMemory INTEGER NOT NULL, dynamicSharedMemory INTEGER NOT NULL"),
    "CUPTI_ACTIVITY_KIND_MEMCPY": (
        "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, "
        "streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, bytes INTEGER NOT NULL, "
        "copyKind INTEGER NOT NULL, srcKind INTEGER, dstKind INTEGER"),
}
KERNEL_NAMES = ["void gemm<float>(float const*, float*)", "void relu_kernel(float*)", "void reduce(float*, int)"]
STRINGS = {1: "cudaLaunchKernel_v7000", 2: "cudaMemcpyAsync_v3020", 3: "main", 4: "dataloader",
           **{10 + k: n for k, n in enumerate(KERNEL_NAMES)}}


def gtid(tid: int) -> int:
    return (PID << 24) | tid


def capture() -> dict:
    """What happened, in ns since the capture started; the export and the expectations come from it."""
    ranges, launches, kernels, copies = [], [], [], []
    corr = 100
    for tid, base in ((3101, 1_000), (3102, 500_000)):
        for step in range(3):
            t = base + step * 100_000
            ranges.append(dict(tid=tid, start=t, end=t + 90_000, text=f"step {step}", domain=0, cat=None))
            ranges.append(dict(tid=tid, start=t + 1_000, end=t + 80_000, text="model.block", domain=DOMAIN_ID,
                               cat=MODULE_CAT))
            for k in range(3):
                op_start = t + 2_000 + k * 20_000
                op = "addmm" if k < 2 else "relu"
                ranges.append(dict(tid=tid, start=op_start, end=op_start + 15_000, domain=DOMAIN_ID, cat=OP_CAT,
                                   text=f"{op}, seq = {corr}, sizes = [[8, 4], [4, 4]]" if op == "addmm" else op))
                launches.append(dict(tid=tid, start=op_start + 1_000, end=op_start + 3_000, corr=corr, api=1))
                # Three streams on two devices; the kernel runs after its launch.
                device, stream = [(0, 7), (0, 13), (1, 7)][(step + k) % 3]
                name = 10 + [0, 2, 1][k]  # gemm, reduce, relu_kernel
                kernels.append(dict(device=device, stream=stream, start=op_start + 5_000 + tid % 7,
                                    end=op_start + 5_000 + tid % 7 + 2_000 + 300 * k, corr=corr, name=name))
                corr += 1
            launches.append(dict(tid=tid, start=t + 70_000, end=t + 71_000, corr=corr, api=2))
            copies.append(dict(device=0, stream=13, start=t + 75_000, end=t + 75_640, corr=corr, bytes=4096))
            corr += 1
    return dict(ranges=ranges, launches=launches, kernels=kernels, copies=copies)


def write_export(path, cap: dict) -> None:
    db = sqlite3.connect(path)
    for table, columns in DDL.items():
        db.execute(f"CREATE TABLE {table} ({columns})")

    def insert(table, **row):
        db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    db.executemany("INSERT INTO StringIds VALUES (?, ?)", STRINGS.items())
    insert("META_DATA_EXPORT", name="EXPORT_SCHEMA_VERSION", value="3.11.0")
    insert("PROCESSES", globalPid=PID << 24, pid=PID, name="python3")
    for tid, name in THREADS.items():
        insert("ThreadNames", nameId=3 if name == "main" else 4, priority=0, globalTid=gtid(tid))
        insert("NVTX_EVENTS", start=0, eventType=75, domainId=DOMAIN_ID, text="tensorlib", globalTid=gtid(tid))
        insert("NVTX_EVENTS", start=0, eventType=33, domainId=DOMAIN_ID, category=OP_CAT, text="op",
               globalTid=gtid(tid))
        insert("NVTX_EVENTS", start=0, eventType=33, domainId=DOMAIN_ID, category=MODULE_CAT, text="module",
               globalTid=gtid(tid))
    for r in cap["ranges"]:
        insert("NVTX_EVENTS", start=r["start"], end=r["end"], eventType=59, domainId=r["domain"], category=r["cat"],
               text=r["text"], globalTid=gtid(r["tid"]))
    for r in cap["launches"]:
        insert("CUPTI_ACTIVITY_KIND_RUNTIME", start=r["start"], end=r["end"], globalTid=gtid(r["tid"]),
               correlationId=r["corr"], nameId=r["api"])
    for k in cap["kernels"]:
        insert("CUPTI_ACTIVITY_KIND_KERNEL", start=k["start"], end=k["end"], deviceId=k["device"], contextId=1,
               streamId=k["stream"], correlationId=k["corr"], globalPid=PID << 24, demangledName=k["name"],
               registersPerThread=32, gridX=4, gridY=1, gridZ=1, blockX=256, blockY=1, blockZ=1,
               staticSharedMemory=0, dynamicSharedMemory=0)
    for c in cap["copies"]:
        insert("CUPTI_ACTIVITY_KIND_MEMCPY", start=c["start"], end=c["end"], deviceId=c["device"], contextId=1,
               streamId=c["stream"], correlationId=c["corr"], globalPid=PID << 24, bytes=c["bytes"], copyKind=1,
               srcKind=1, dstKind=3)
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nsys")
    cap = capture()
    write_export(tmp / "report.sqlite", cap)
    out = tmp / "report.pt.trace.json"
    assert profiler_main(["import-nsys", str(tmp / "report.sqlite"), "-o", str(out)]) == 0
    return cap, str(out)


def test_lanes_are_cpu_threads_and_gpu_streams(converted):
    cap, path = converted
    trace = load_trace(path)
    assert trace.warnings == []
    streams = sorted({(k["device"], k["stream"]) for k in cap["kernels"] + cap["copies"]})
    expected = [(f"GPU {d} ({d})", f"stream {s}") for d, s in streams]  # devices 0, 1 sort before pid 3100
    expected += [(f"python3 ({PID})", THREADS[t]) for t in sorted(THREADS)]
    assert [(ln.process, ln.name) for ln in trace.lanes] == expected
    # Each CPU lane: three nesting levels of NVTX (step > module > op) plus the launches inside ops.
    for ln in trace.lanes[len(streams):]:
        assert ln.rows == 4


def test_kernels_land_on_their_streams_with_exact_times(converted):
    cap, path = converted
    trace = load_trace(path)
    lane_of = {(ln.pid, ln.tid): i for i, ln in enumerate(trace.lanes)}
    got = sorted((int(trace.lane[i]), trace.name_of(i), int(trace.ts[i]), int(trace.dur[i]))
                 for i in range(len(trace)) if trace.cat_of(i) == "kernel")
    want = sorted((lane_of[(k["device"], k["stream"])], STRINGS[k["name"]], k["start"], k["end"] - k["start"])
                  for k in cap["kernels"])
    assert got == want
    table = ops_table(trace)
    for name in KERNEL_NAMES:
        durs = [k["end"] - k["start"] for k in cap["kernels"] if STRINGS[k["name"]] == name]
        row = next(r for r in range(len(table)) if table.name[r] == name)
        assert (int(table.count[row]), int(table.total[row]), int(table.max[row])) == (len(durs), sum(durs), max(durs))
    copies = [i for i in range(len(trace)) if trace.cat_of(i) == "gpu_memcpy"]
    assert len(copies) == len(cap["copies"])
    assert {int(trace.dur[i]) for i in copies} == {c["end"] - c["start"] for c in cap["copies"]}


def test_nvtx_ranges_nest_and_launch_flows_reach_the_kernels(converted):
    cap, path = converted
    trace = load_trace(path)
    spans = [i for i in range(len(trace)) if trace.kind[i] == KIND_SPAN]
    by_name = defaultdict(list)
    for i in spans:
        by_name[trace.name_of(i)].append(i)
    ops = by_name["addmm"] + by_name["relu"]
    assert Counter(trace.name_of(i) for i in ops) == Counter(
        r["text"].split(",")[0] for r in cap["ranges"] if r["cat"] == OP_CAT)
    for i in ops:
        assert trace.cat_of(i) == "cpu_op" and trace.name_of(int(trace.parent[i])) == "model.block"
    for i in by_name["model.block"]:
        assert trace.name_of(int(trace.parent[i])).startswith("step ")
        # Children: its three ops and the cudaMemcpyAsync issued between them and its end.
        kids = [j for j in spans if trace.parent[j] == i]
        assert sorted(trace.name_of(j) for j in kids) == ["addmm", "addmm", "cudaMemcpyAsync", "relu"]
        assert int(trace.self_ns[i]) == int(trace.dur[i]) - sum(int(trace.dur[j]) for j in kids)
    assert [trace.args_of(i)["Input Dims"] for i in by_name["addmm"]] == [[[8, 4], [4, 4]]] * len(by_name["addmm"])
    # One ac2g flow per GPU activity; each op launched exactly its own kernel.
    assert len(trace.flow_src) == len(cap["kernels"]) + len(cap["copies"])
    kernel_of = {k["corr"]: k for k in cap["kernels"]}
    for i in ops:
        (k,) = trace.launched(i)
        corr = trace.args_of(k)["correlation"]
        assert int(trace.ts[k]) == kernel_of[corr]["start"]
        launch = [j for j in trace.descendants(i) if trace.cat_of(j) == "cuda_runtime"]
        assert [trace.args_of(j)["correlation"] for j in launch] == [corr]


async def test_app_shows_the_capture(converted):
    cap, path = converted
    app = ViewerApp(path)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        for _ in range(100):
            await pilot.pause()
            if app.query("#status"):
                break
        await pilot.pause()
        tl = app.query_one(Timeline)
        tr = app.trace
        gutter = [tl.render_line(y).text[:22] for y in range(1, 30)]
        # A lane's name on its first row, its process on the second (one-row GPU lanes show no process).
        for label in ("stream 13", "main", "dataloader", f"python3 ({PID})"):
            assert any(label in g for g in gutter), label
        assert sum("stream 7" in g for g in gutter) == 2  # on GPU 0 and GPU 1
        status = str(app.query_one("#status").render())
        assert f"{len(tr.lanes)} lanes" in status and f"{len(cap['kernels']) + len(cap['copies'])} flows" in status
        op = next(i for i in range(len(tr)) if tr.name_of(i) == "addmm")
        tl.select(op)
        await pilot.press("down")  # into the op: its cudaLaunchKernel
        assert tr.name_of(tl.selected) == "cudaLaunchKernel"
        await pilot.press("right_square_bracket")  # follow the launch to its kernel
        await pilot.pause()
        k = tl.selected
        assert tr.cat_of(k) == "kernel" and tr.lanes[int(tr.lane[k])].name.startswith("stream ")
        details = str(app.query_one(Details).body.render())
        assert "registers per thread: 32" in details and "grid: [4, 1, 1]" in details
        np.testing.assert_array_equal(tr.flow_dst[tr.flow_src == tl.selected], [])
