"""The loader and the ops table against numbers computed here, independently, from the raw JSON."""

import json
from collections import defaultdict

import numpy as np
import pytest

from viewer.model import load_trace
from viewer.summary import ops_table

from .conftest import CPU, CUDA


def raw_events(path):
    with open(path) as f:
        return json.load(f)["traceEvents"]


def expected_ops(events):
    """(cat, name) -> [count, total_ns, self_ns], self time by a plain per-thread stack walk."""
    by_thread = defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            # Integer ns first, as the viewer does: float µs sums misjudge equal end times.
            e = dict(e, ts=round(e["ts"] * 1000), dur=round(e["dur"] * 1000))
            by_thread[(e["pid"], e["tid"])].append(e)
    out = defaultdict(lambda: [0, 0, 0])
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        children = defaultdict(float)
        opened = []
        for e in evs:
            # The parent is the innermost earlier event that contains e entirely (partial overlaps,
            # which Kineto writes between user annotations and python functions, are not parents).
            opened = [o for o in opened if o["ts"] + o["dur"] > e["ts"]]
            hosts = [o for o in opened if e["ts"] + e["dur"] <= o["ts"] + o["dur"]]
            if hosts:
                children[id(hosts[-1])] += e["dur"]
            opened.append(e)
        for e in evs:
            row = out[(e.get("cat", ""), e["name"])]
            row[0] += 1
            row[1] += e["dur"]
            row[2] += max(e["dur"] - children[id(e)], 0)
    return out


def expected_flows(events):
    ends = defaultdict(dict)
    for e in events:
        if e.get("ph") in ("s", "f"):
            ends[(e["cat"], e["id"])][e["ph"]] = e
    return {k: v for k, v in ends.items() if len(v) == 2}


@pytest.mark.parametrize("path", [CPU, CUDA], ids=["cpu", "cuda"])
def test_ops_table_matches_independent_computation(path):
    events = raw_events(path)
    exp = expected_ops(events)
    table = ops_table(load_trace(str(path)))
    got = {(table.cat[i], table.name[i]): (int(table.count[i]), int(table.total[i]), int(table.self[i]))
           for i in range(len(table))}
    assert set(got) == set(exp)
    for key, (count, total, selft) in exp.items():
        g = got[key]
        assert g[0] == count, key
        assert g[1] == total, key
        assert g[2] == selft, key
    # % is a share of the busy time of the row's kind of lane: GPU streams (kernels, memcpys, memsets)
    # or everything else; envelopes (Kineto's Trace span, gpu_user_annotation) are neither busy nor a row.
    gpu_lanes = {(e["pid"], e["tid"]) for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")}
    envelope = ("Trace", "gpu_user_annotation")
    gpu_ops = {(e.get("cat", ""), e["name"]) for e in events
               if e.get("ph") == "X" and (e["pid"], e["tid"]) in gpu_lanes}
    busy = {kind: sum(v[2] for k, v in exp.items() if k[0] not in envelope and (k in gpu_ops) == kind)
            for kind in (False, True)}
    for i in range(len(table)):
        key = (table.cat[i], table.name[i])
        if key[0] in envelope:
            assert np.isnan(table.pct[i]), key
        else:
            assert table.pct[i] == pytest.approx(100.0 * exp[key][1] / busy[key in gpu_ops], rel=1e-9), key
    if path == CUDA:  # the kernel rows are a share of GPU time: they add up to 100 %
        kernels = [i for i in range(len(table)) if (table.cat[i], table.name[i]) in gpu_ops
                   and table.cat[i] not in envelope]
        assert sum(table.pct[kernels]) == pytest.approx(100.0)


@pytest.mark.parametrize("path", [CPU, CUDA], ids=["cpu", "cuda"])
def test_lanes_are_the_threads_and_streams(path):
    events = raw_events(path)
    trace = load_trace(str(path))
    x_threads = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "X"}
    lanes = {(ln.pid, ln.tid) for ln in trace.lanes}
    assert x_threads <= lanes
    for li, lane in enumerate(trace.lanes):
        ts = trace.ts[lane.start:lane.stop]
        assert (np.diff(ts) >= 0).all()
        assert (trace.lane[lane.start:lane.stop] == li).all()
    n_x = sum(e.get("ph") == "X" for e in events)
    n_i = sum(e.get("ph") in ("i", "I") for e in events)
    assert len(trace) == n_x + n_i


def test_cuda_lane_names_and_gpu_stream():
    trace = load_trace(str(CUDA))
    gpu = [ln for ln in trace.lanes if ln.pid == 0 and ln.tid == 7]
    assert len(gpu) == 1
    assert gpu[0].name == "stream 7"
    assert "GPU 0" in gpu[0].process
    # GPU lanes sort after CPU lanes (process_sort_index 5000000 vs 404).
    titles = [ln.pid for ln in trace.lanes]
    assert titles.index(0) > titles.index(404)
    assert any("duplicate thread_name" in w for w in trace.warnings)


@pytest.mark.parametrize("path", [CPU, CUDA], ids=["cpu", "cuda"])
def test_flows_bind_like_catapult(path):
    events = raw_events(path)
    exp = expected_flows(events)
    trace = load_trace(str(path))
    assert len(trace.flow_src) == len(exp)
    pairs = set()
    for s, d, cat in zip(trace.flow_src, trace.flow_dst, trace.flow_cat):
        pairs.add((cat, trace.name_of(int(s)), trace.name_of(int(d))))
        if cat == "ac2g":
            # Kineto: the launch and the kernel share a correlation id, which is the flow id.
            assert trace.args_of(int(s))["correlation"] == trace.args_of(int(d))["correlation"]
            assert trace.cat_of(int(d)) in ("kernel", "gpu_memset", "gpu_memcpy")
            assert trace.cat_of(int(s)) in ("cuda_runtime", "cuda_driver")
    n_ac2g = sum(1 for k in exp if k[0] == "ac2g")
    assert sum(c == "ac2g" for c in trace.flow_cat) == n_ac2g
    if path == CUDA:
        assert n_ac2g == 26
        assert any("only one end" in w for w in trace.warnings)


def test_selecting_a_cpu_op_finds_the_kernels_it_launched():
    trace = load_trace(str(CUDA))
    events = raw_events(CUDA)
    linear = [i for i in range(len(trace)) if trace.name_of(i) == "aten::addmm"]
    assert linear
    i = linear[0]
    ext = trace.args_of(i)["External id"]
    kernels = {trace.args_of(k).get("correlation") for k in trace.launched(i) if trace.cat_of(k) != "cpu_op"}
    # Independently: launches nested in the op (same thread, inside its interval) carry correlation ids.
    op = trace.raw[i]
    t0, t1 = op["ts"], op["ts"] + op["dur"]
    corr = {e["args"]["correlation"] for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver")
            and e["tid"] == op["tid"] and t0 <= e["ts"] <= t1 and "correlation" in e.get("args", {})}
    gpu_corr = {e["args"]["correlation"] for e in events if e.get("cat") in ("kernel", "gpu_memset")}
    assert kernels == corr & gpu_corr
    assert kernels
    assert ext is not None


def test_memory_instants_are_loaded_with_args():
    trace = load_trace(str(CUDA))
    mem = [i for i in range(len(trace)) if trace.name_of(i) == "[memory]"]
    assert len(mem) == 30
    assert all("Total Allocated" in trace.args_of(i) for i in mem)
    assert trace.meta["deviceProperties"][0]["name"].startswith("NVIDIA")
