"""A distributed job's traces (one per rank) as one trace: ranks side by side on one clock.

Each file's rank is its Kineto ``distributedInfo.rank`` (else its place in the sorted list of files). Times
are put on one clock by ``baseTimeNanoseconds`` (the wall clock at each rank's profiler start): rank r's
events move by ``base_r - min(base)``. Every pid of rank r becomes ``r * 10_000_000 + pid`` (OS pids and
GPU indices stay below that), named ``rank r · <its name>`` and sorted by rank, so each rank's lanes
(CPU threads, then GPU streams) sit together; flow ids are renumbered per rank so that one rank's arrows
never join another's. The merged trace's warnings flag what makes the alignment doubtful: a file without
``baseTimeNanoseconds``, ranks on different hosts (their clocks are only as close as NTP keeps them),
two files claiming one rank, or ranks whose recordings do not overlap in time at all.

`per_rank_steps` is the straggler view's data: for each ``ProfilerStep#N`` and rank, the step's time, the
time the rank's collectives ran (``mpi:*``, ``nccl:*``, ``gloo:*`` ranges and NCCL kernels, merged where
they overlap) and the time the rank's other lanes were busy (every event there but the step itself, merged:
a main thread waiting for an all-reduce is inside no event); the slowest rank of a step is the one that
computed longest, which the others wait for inside their collectives.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .loader import Progress, RawTrace, TraceError, _noop, parse_document, raw_trace, read_bytes

PID_STRIDE = 10_000_000
COMM_PREFIXES = ("mpi:", "nccl:", "gloo:", "ncclKernel", "ncclDevKernel")
TRACE_SUFFIXES = (".json", ".json.gz")


def job_files(path: str) -> list[str]:
    """The trace files of a job directory (``*.json``, ``*.json.gz``), sorted by name."""
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise TraceError(f"{path}: cannot list the directory: {exc.strerror or exc}") from None
    files = [os.path.join(path, n) for n in names if n.endswith(TRACE_SUFFIXES)
             and os.path.isfile(os.path.join(path, n))]
    if not files:
        raise TraceError(f"{path}: a directory without trace files (*.json, *.json.gz); pass a job's trace directory "
                         f"or the files themselves")
    return files


def _doc(path: str, warnings: list[str]) -> dict[str, Any]:
    local: list[str] = []
    try:
        doc = parse_document(read_bytes(path), local)
    except TraceError as exc:
        msg = str(exc)
        raise TraceError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    warnings.extend(f"{os.path.basename(path)}: {w}" for w in local)
    if isinstance(doc, list):
        return {"traceEvents": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise TraceError(f"{path}: not a Chrome trace: no 'traceEvents' array")
    return doc


def _rank_of(doc: dict[str, Any]) -> int | None:
    info = doc.get("distributedInfo")
    r = info.get("rank") if isinstance(info, dict) else None
    return r if isinstance(r, int) and not isinstance(r, bool) and 0 <= r < 1 << 20 else None


def _int_base(doc: dict[str, Any]) -> int | None:
    b = doc.get("baseTimeNanoseconds")
    return b if isinstance(b, int) and not isinstance(b, bool) else None


def _pid(rank: int, pid: Any) -> Any:
    if isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < PID_STRIDE:
        return rank * PID_STRIDE + pid
    return f"rank {rank} {pid}"


def _flow_id(rank: int, fid: Any) -> Any:
    if isinstance(fid, int) and not isinstance(fid, bool):
        return (rank << 44) + fid
    return f"{rank}:{fid}"


def merge_docs(docs: list[tuple[str, dict[str, Any]]], warnings: list[str]) -> RawTrace:
    """One RawTrace from (path, document) pairs of one job's ranks (see the module docstring)."""
    ranks: list[int] = []
    seen: dict[int, str] = {}
    for k, (path, doc) in enumerate(docs):
        r = _rank_of(doc)
        if r is None:
            warnings.append(f"{os.path.basename(path)}: no distributedInfo.rank; shown as rank {k}")
            r = k
        if r in seen:
            warnings.append(f"{os.path.basename(path)} and {os.path.basename(seen[r])} both claim rank {r}; "
                            f"the second is shown as rank {max(seen) + 1}")
            r = max(seen) + 1
        seen[r] = path
        ranks.append(r)
    bases = [_int_base(d) for _, d in docs]
    known = [b for b in bases if b is not None]
    base0 = min(known) if known else 0
    for (path, _), b in zip(docs, bases):
        if b is None:
            warnings.append(f"{os.path.basename(path)}: no baseTimeNanoseconds; its times are not aligned with "
                            f"the other ranks'")
    hosts = {d.get("host_name") for _, d in docs if isinstance(d.get("host_name"), str)}
    if len(hosts) > 1:
        warnings.append(f"the ranks ran on {len(hosts)} hosts: aligned by each host's wall clock, which agree only "
                        f"as closely as the hosts' clock synchronisation keeps them")
    events: list[Any] = []
    spans: list[tuple[float, float, int]] = []
    for (path, doc), r, b in zip(docs, ranks, bases):
        shift = (b - base0) / 1000.0 if b is not None else 0.0
        lo, hi = float("inf"), float("-inf")
        named: set[Any] = set()
        pids: set[Any] = set()
        for e in doc["traceEvents"]:
            if not isinstance(e, dict):
                continue
            e = dict(e)
            if "pid" in e:
                pids.add(e["pid"])
                e["pid"] = _pid(r, e["pid"])
            ts = e.get("ts")
            if isinstance(ts, (int, float)) and not isinstance(ts, bool) and e.get("ph") != "M":
                e["ts"] = ts + shift
                lo = min(lo, e["ts"])
                d = e.get("dur")
                hi = max(hi, e["ts"] + (d if isinstance(d, (int, float)) and not isinstance(d, bool) else 0))
            if "id" in e and e.get("ph") in ("s", "t", "f", "b", "e", "n"):
                e["id"] = _flow_id(r, e["id"])
            if e.get("ph") == "M" and isinstance(e.get("args"), dict):
                args = dict(e["args"])
                if e.get("name") == "process_name":
                    args["name"] = f"rank {r} · {args.get('name', '')}"
                    named.add(e["pid"])
                elif e.get("name") == "process_sort_index" and isinstance(args.get("sort_index"), int):
                    args["sort_index"] = r * PID_STRIDE + min(max(args["sort_index"], 0), PID_STRIDE - 1)
                e["args"] = args
            events.append(e)
        for p in sorted((_pid(r, p) for p in pids), key=str):
            if p not in named:
                events.append({"ph": "M", "name": "process_name", "pid": p, "tid": 0, "args": {"name": f"rank {r}"}})
            events.append({"ph": "M", "name": "process_sort_index", "pid": p, "tid": 0,
                           "args": {"sort_index": r * PID_STRIDE + (p % PID_STRIDE if isinstance(p, int) else 0)}})
        if lo <= hi:
            spans.append((lo, hi, r))
    if len(spans) > 1 and max(s[0] for s in spans) > min(s[1] for s in spans):
        warnings.append("the ranks' recordings do not overlap in time: their clocks disagree, or they recorded "
                        "different parts of the job")
    meta = {"baseTimeNanoseconds": base0, "displayTimeUnit": "ms",
            "distributedInfo": {"world_size": len(docs), "ranks": sorted(ranks)},
            "jobFiles": [{"rank": r, "file": os.path.basename(p), "baseTimeNanoseconds": b}
                         for (p, _), r, b in zip(docs, ranks, bases)]}
    return raw_trace(events, meta, warnings)


def load_job(paths: list[str], progress: Progress = _noop) -> RawTrace:
    """Several rank traces (or one job directory) as one RawTrace."""
    if len(paths) == 1 and os.path.isdir(paths[0]):
        paths = job_files(paths[0])
    warnings: list[str] = []
    docs = []
    for k, p in enumerate(paths):
        progress(0.5 * k / len(paths), f"reading {os.path.basename(p)}")
        docs.append((p, _doc(p, warnings)))
    progress(0.5, "merging ranks")
    return merge_docs(docs, warnings)


def rank_of_pid(pid: Any) -> int:
    """The rank of a merged pid (see `_pid`); -1 when it is not one."""
    if isinstance(pid, int) and not isinstance(pid, bool):
        return pid // PID_STRIDE
    if isinstance(pid, str) and pid.startswith("rank "):
        head = pid[5:].split(" ", 1)[0]
        return int(head) if head.isdigit() else -1
    return -1


def _union(iv: list[tuple[int, int]]) -> int:
    """Total length of the union of [t0, t1) intervals."""
    total, end = 0, None
    start = 0
    for a, b in sorted(iv):
        if end is None or a > end:
            if end is not None:
                total += end - start
            start, end = a, b
        else:
            end = max(end, b)
    if end is not None:
        total += end - start
    return total


def per_rank_steps(trace: Any) -> list[dict[str, Any]]:
    """For each ProfilerStep#N and rank of a merged job trace: step, compute and collective time (ns).

    `trace` is a viewer.model.Trace built from `load_job`. Rows are dicts with ``step``, ``rank``,
    ``step_ns``, ``compute_ns``, ``comm_ns`` and ``slowest`` (the rank that computed longest in that step).
    """
    names = trace.names
    lane_rank = np.array([rank_of_pid(ln.pid) for ln in trace.lanes] or [-1], np.int64)
    rank = lane_rank[trace.lane] if len(trace.lane) else np.zeros(0, np.int64)
    is_comm_name = np.array([n.startswith(COMM_PREFIXES) for n in names] or [False])
    is_step_name = np.array([n.startswith("ProfilerStep#") for n in names] or [False])
    comm = is_comm_name[trace.name_id] if len(trace.name_id) else np.zeros(0, bool)
    steps = np.flatnonzero(is_step_name[trace.name_id]) if len(trace.name_id) else np.zeros(0, np.int64)
    comm_lanes = set(trace.lane[comm].tolist())
    work = ~np.isin(trace.lane, list(comm_lanes)) & (trace.dur > 0)
    rows: list[dict[str, Any]] = []
    for i in steps.tolist():
        r = int(rank[i])
        t0, t1 = int(trace.ts[i]), int(trace.ts[i] + trace.dur[i])
        inside = (rank == r) & (trace.ts < t1) & (trace.ts + trace.dur > t0)

        def clipped(sel: np.ndarray) -> list[tuple[int, int]]:
            idx = np.flatnonzero(sel)
            return list(zip(np.maximum(trace.ts[idx], t0).tolist(),
                            np.minimum(trace.ts[idx] + trace.dur[idx], t1).tolist()))
        compute = _union(clipped(inside & work & ~is_step_name[trace.name_id]))
        rows.append({"step": names[trace.name_id[i]], "rank": r, "step_ns": t1 - t0, "compute_ns": compute,
                     "comm_ns": _union(clipped(inside & comm)), "slowest": False})
    by_step: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_step.setdefault(row["step"], []).append(row)
    for group in by_step.values():
        if len(group) > 1:
            max(group, key=lambda x: x["compute_ns"])["slowest"] = True
    rows.sort(key=lambda x: (_step_no(x["step"]), x["rank"]))
    return rows


def _step_no(name: str) -> int:
    tail = name.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else -1
