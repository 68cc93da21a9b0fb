"""export_chrome_trace (Kineto schema, compared with a real torch trace), export_stacks, memory."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from tests.profiler._workloads import profiled_step
from profiler import profile, record_function

TORCH_TRACE = Path(__file__).resolve().parents[1] / "viewer" / "data" / "torch_cpu_mlp.json"  # from shared/traces


def _train_step(**kw):
    return profiled_step(8, 6, 3, "forward", **kw)


def _load(path):
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    return json.loads(data)


def _check_nesting(events):
    """Complete events on each (pid, tid) nest strictly: no partial overlaps."""
    lanes = {}
    for e in events:
        if e.get("ph") == "X":
            span = (round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000))
            lanes.setdefault((e["pid"], e["tid"]), []).append(span)
    for spans in lanes.values():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for s, t in spans:
            while stack and stack[-1] <= s:
                stack.pop()
            assert not stack or t <= stack[-1], "partial overlap on a lane"
            stack.append(t)


def test_chrome_trace_follows_kineto_schema(tmp_path):
    prof = _train_step(record_shapes=True)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    doc = _load(path)
    for key in ("traceEvents", "displayTimeUnit", "baseTimeNanoseconds", "schemaVersion", "deviceProperties",
                "traceName"):
        assert key in doc
    assert doc["displayTimeUnit"] == "ms" and doc["schemaVersion"] == 1
    evs = doc["traceEvents"]
    ops = [e for e in evs if e.get("cat") == "cpu_op" and e["name"] == "aten::matmul"]
    fwd = [e for e in ops if e["args"]["Input Dims"] == [[8, 6], [6, 3]]][0]
    for k in ("External id", "Sequence number", "Fwd thread id", "Input Dims", "Input type"):
        assert k in fwd["args"]
    assert fwd["args"]["Input type"] == ["float", "float"]
    ann = [e for e in evs if e.get("cat") == "user_annotation"]
    assert [e["name"] for e in ann] == ["forward"]
    node = [e for e in evs if e.get("name") == "MmBackward0"][0]
    assert node["cat"] == "cpu_op" and node["args"]["Sequence number"] == fwd["args"]["Sequence number"]
    flows = [e for e in evs if e.get("cat") == "fwdbwd"]
    s = [e for e in flows if e["ph"] == "s" and e["id"] == fwd["args"]["Sequence number"]]
    f = [e for e in flows if e["ph"] == "f" and e["id"] == fwd["args"]["Sequence number"]]
    assert len(s) == 1 and len(f) == 1 and f[0]["bp"] == "e"
    assert s[0]["ts"] == fwd["ts"] and f[0]["ts"] == node["ts"]
    meta = {e["name"] for e in evs if e["ph"] == "M"}
    assert {"process_name", "process_labels", "process_sort_index", "thread_name", "thread_sort_index"} <= meta
    _check_nesting(evs)
    ids = [e["args"]["External id"] for e in evs if e.get("ph") == "X"]
    assert len(ids) == len(set(ids)) == len(prof.events())


def test_chrome_trace_keys_are_a_subset_of_torchs(tmp_path):
    torch_doc = json.loads(TORCH_TRACE.read_text())
    torch_keys = {}
    for e in torch_doc["traceEvents"]:
        torch_keys.setdefault((e.get("ph"), e.get("cat")), set()).update(e)
    torch_args = {}
    for e in torch_doc["traceEvents"]:
        torch_args.setdefault(e.get("cat"), set()).update(e.get("args", {}))
    prof = _train_step(record_shapes=True)
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    for e in _load(tmp_path / "t.json")["traceEvents"]:
        key = (e.get("ph"), e.get("cat"))
        if key in torch_keys:
            assert set(e) <= torch_keys[key], (key, set(e) - torch_keys[key])
        if e.get("cat") in ("cpu_op", "user_annotation"):
            extra = set(e["args"]) - torch_args[e["cat"]]
            assert extra <= {"flops"}, extra
    assert set(_load(tmp_path / "t.json")) - set(torch_doc) <= {"profile_memory"}


def test_names_with_quotes_backslashes_newlines_and_non_ascii_round_trip(tmp_path):
    weird = 'a "quoted" \\ back\nslash \t ünïcödé 名前 \u2028 end'
    with profile() as prof:
        with record_function(weird):
            tl.ones(2)
    for name in ("t.json", "t.json.gz"):
        prof.export_chrome_trace(str(tmp_path / name))
        names = [e["name"] for e in _load(tmp_path / name)["traceEvents"] if e.get("ph") == "X"]
        assert weird in names


def test_export_is_atomic_and_unwritable_path_is_a_clear_error(tmp_path, monkeypatch):
    prof = _train_step()
    with pytest.raises(OSError, match="cannot write the Chrome trace"):
        prof.export_chrome_trace(str(tmp_path / "missing-dir" / "t.json"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match="cannot write the stacks"):       # unwritable even for root
        prof.export_stacks(str(tmp_path / "afile" / "s.txt"))
    assert sorted(os.listdir(tmp_path)) == ["afile"]
    # a write that fails at the last moment (a full disk, say) leaves nothing behind either
    def no_room(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", no_room)
    with pytest.raises(OSError, match="cannot write"):
        prof.export_chrome_trace(str(tmp_path / "t.json"))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_failed_serialisation_leaves_previous_file_intact(tmp_path, monkeypatch):
    import profiler._atomic as atomic
    path = tmp_path / "t.json"
    path.write_text("old")
    prof = _train_step()

    class Boom(Exception):
        pass

    real_replace = os.replace

    def fail(*a):
        raise Boom()

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(Boom):
        prof.export_chrome_trace(str(path))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["t.json"]


def test_export_stacks_folded_lines_sum_to_self_time(tmp_path):
    for kw in ({}, {"with_stack": True}):
        prof = _train_step(**kw)
        out = tmp_path / "stacks.txt"
        prof.export_stacks(str(out))
        lines = out.read_text().splitlines()
        assert lines
        total = sum(int(line.rsplit(" ", 1)[1]) for line in lines)
        expected = int(np.rint(prof.store.self_ns / 1e3).sum())
        assert total == expected
        assert any(line.startswith("forward;aten::matmul ") or ";forward;aten::matmul " in line for line in lines)
        if kw:
            # user frames (everything outside tensorlib and profiler) lead each root's path
            assert all("test_exports.py" in line and "_train_step" in line for line in lines)
            import profiler as _p
            pkgs = (os.path.dirname(tl.__file__) + os.sep, os.path.dirname(_p.__file__) + os.sep)
            assert not any(p in line for p in pkgs for line in lines)
    with pytest.raises(ValueError, match="metric must be one of"):
        prof.export_stacks(str(out), metric="wall")


def test_memory_per_op_and_timeline(tmp_path):
    a = tl.ones(256, 256)             # 256 KiB, allocated before profiling: not any op's, alive at start
    base = tl.memory_allocated("cpu")
    assert base >= 256 * 256 * 4
    with profile(profile_memory=True) as prof:
        with record_function("block"):
            b = a + 1                 # allocates 256 KiB
            c = b * 2                 # 256 KiB more
            del b                     # freed inside "block"
            c.add_(1)                 # in place: no allocation
        del c
    evs = {e.name: e for e in prof.events()}
    kib = 256 * 256 * 4
    assert evs["aten::add"].self_cpu_memory_usage == kib
    assert evs["aten::mul"].self_cpu_memory_usage == kib
    assert evs["aten::add_"].self_cpu_memory_usage == 0
    assert evs["block"].self_cpu_memory_usage == -kib              # the free of b happened in block itself
    assert evs["block"].cpu_memory_usage == kib                     # net: c still alive at its end
    t = prof.key_averages().table()
    assert "CPU Mem" in t and "256.00 KB" in t
    prof.export_memory_timeline(str(tmp_path / "mem.json"), device="cpu")
    times, sizes = json.loads((tmp_path / "mem.json").read_text())      # torch's [times, sizes by category]
    totals = [sum(row) for row in sizes]
    assert all(len(row) == 9 and row[0] == 0 for row in sizes)
    assert totals[0] == base and max(totals) == base + 2 * kib       # from the memory alive at start
    assert totals[-1] == base and times == sorted(times) and len(set(times)) == len(times)
    s = prof.memory_summary()
    from profiler.memory_record import format_bytes
    assert f"cpu: peak {format_bytes(base + 2 * kib)}" in s
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    evs = _load(tmp_path / "t.json")["traceEvents"]
    mem = [e for e in evs if e["name"] == "[memory]"]
    assert [e["args"]["Bytes"] for e in mem] == [kib, kib, -kib, -kib]
    assert [e["args"]["Total Allocated"] for e in mem] == [base + kib, base + 2 * kib, base + kib, base]
    assert all(e["args"]["Device Type"] == 0 for e in mem)
    assert len([e for e in evs if e["ph"] == "C"]) == 4


def test_memory_reports_need_profile_memory(tmp_path):
    prof = _train_step()
    with pytest.raises(RuntimeError, match="profile_memory=True"):
        prof.memory_summary()


def test_fast_template_path_writes_the_same_events_as_the_dict_path():
    from profiler.chrome import trace_dict
    prof = _train_step()
    store = prof.store
    assert store.extra is None
    fast = [e for e in trace_dict(store)["traceEvents"] if e["ph"] != "M"]
    store.extra = [(None, None, 0)] * len(store)
    try:
        slow = [e for e in trace_dict(store)["traceEvents"] if e["ph"] != "M"]
    finally:
        store.extra = None
    key = lambda e: (e["ph"], e.get("cat", ""), e["ts"], e.get("id", 0), e["name"])  # noqa: E731
    assert sorted(fast, key=key) == sorted(slow, key=key)
    x = [e for e in fast if e["ph"] == "X"]
    assert len(x) == len(store) and any("Sequence number" in e["args"] for e in x)


def _expected_rows(store, pid):
    """The op/range and memory rows of a detailed trace, written one event at a time from the store's
    columns: the reference the column formatter (profiler._jsonrows) must match field for field."""
    from profiler.torch_names import AUTOGRAD_TAGS, COMPOSITE_TAG, OP_TAGS
    rows = []
    for i in range(len(store)):
        tag = store.tags[store.tag_id[i]]
        args = {"External id": i + 1}
        if store.seq[i] >= 0:
            args.update({"Sequence number": int(store.seq[i]), "Fwd thread id": 0})
        ex = store.extra[i]
        if ex[0]:
            args.update({"Input Dims": ex[0][0], "Input type": ex[0][1]})
        rows.append({"ph": "X", "cat": "cpu_op" if tag in OP_TAGS + AUTOGRAD_TAGS or tag == COMPOSITE_TAG
                     else "user_annotation", "name": store.names[store.name_id[i]], "pid": pid,
                     "tid": int(store.tid[i]), "ts": round((int(store.t0[i]) - store.t_base) / 1000, 3),
                     "dur": round((int(store.t1[i]) - int(store.t0[i])) / 1000, 3), "args": args})
    total = store.cpu_base
    for m in store.mem_events:
        assert m["dev_type"] == 0                          # these workloads run on the CPU
        total += int(m["bytes"])
        ts = round((int(m["t"]) - store.t_base) / 1000, 3)
        rows.append({"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": pid,
                     "tid": int(m["tid"]), "ts": ts, "args": {"Total Reserved": total, "Total Allocated": total,
                                                              "Bytes": int(m["bytes"]), "Device Id": -1,
                                                              "Device Type": 0, "Addr": int(m["addr"])}})
        rows.append({"ph": "C", "name": "Memory (cpu)", "pid": pid, "ts": ts, "args": {"Allocated": total}})
    return rows


def _mlp():
    m = tl.nn.Sequential(tl.nn.Linear(6, 16), tl.nn.ReLU(), tl.nn.Linear(16, 3))
    return lambda: m(tl.randn(4, 6)).sum().backward()


def _gru():
    m = tl.nn.GRU(5, 7, batch_first=True)
    return lambda: m(tl.randn(2, 4, 5))[0].sum().backward()


def _transformer():
    m = tl.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    return lambda: m(tl.randn(2, 3, 8)).sum().backward()


@pytest.mark.parametrize("model", [_mlp, _gru, _transformer])
def test_detailed_trace_rows_are_the_events_one_by_one(model):
    """record_shapes + profile_memory: every op, range and memory row the column formatter writes is the
    event the store holds (names, ids, sequence numbers, shapes, times to the nanosecond, addresses)."""
    import orjson
    from profiler.chrome import trace_dict
    step = model()
    with profile(record_shapes=True, profile_memory=True) as prof:
        for _ in range(2):
            step()
    store = prof.store
    got = [e for e in trace_dict(store, prof)["traceEvents"] if e["ph"] in ("X", "i", "C")]
    want = _expected_rows(store, os.getpid())
    assert len(store.mem_events) > len(store) // 4 and any("Input Dims" in e["args"] for e in want)
    canon = lambda rows: sorted(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in rows)  # noqa: E731
    assert canon(got) == canon(want)


def test_trace_threads_each_on_their_own_lane_in_both_paths():
    import threading
    from profiler.chrome import trace_dict

    def work():
        t = tl.ones(3)
        for _ in range(5):
            t = t + 1

    with profile() as prof:
        th = threading.Thread(target=work)
        th.start()
        th.join()
        work()
    store = prof.store
    fast = sorted((e["tid"], e["ts"], e["name"]) for e in trace_dict(store)["traceEvents"] if e["ph"] == "X")
    store.extra = [(None, None, 0)] * len(store)
    slow = sorted((e["tid"], e["ts"], e["name"]) for e in trace_dict(store)["traceEvents"] if e["ph"] == "X")
    store.extra = None
    assert fast == slow
    assert len({t for t, _, _ in fast}) == 2
    assert sorted(fast) == sorted((int(store.tid[i]), round((int(store.t0[i]) - store.t_base) / 1000, 3),
                                   store.names[store.name_id[i]]) for i in range(len(store)))


def test_add_metadata_lands_at_the_traces_top_level(tmp_path):
    """torch's add_metadata (a string) and add_metadata_json (JSON text, written parsed); keys the trace writes
    itself and values that are not JSON are refused with a one-line error."""
    with profile() as prof:
        tl.ones(2).sum()
        prof.add_metadata("run", 'exp "7"\n')
        prof.add_metadata_json("config", '{"lr": 0.1, "layers": [1, 2]}')
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    doc = _load(tmp_path / "t.json")
    assert doc["run"] == 'exp "7"\n' and doc["config"] == {"lr": 0.1, "layers": [1, 2]}
    assert any(e.get("name") == "aten::sum" for e in doc["traceEvents"])
    with pytest.raises(ValueError, match="not JSON text"):
        prof.add_metadata_json("bad", "{oops")
    with pytest.raises(ValueError, match="a key the trace itself writes"):
        prof.add_metadata("traceEvents", "x")
    with pytest.raises(TypeError, match="must be a str"):
        prof.add_metadata("n", 3)


def test_export_memory_timeline_writes_torchs_file_kinds(tmp_path):
    """The suffix picks the kind, as torch's: .json / .json.gz plot points, .raw.json.gz raw events (bytes add
    up to the plot's), .html a page with the plot; `device` picks the device and a bad one is refused."""
    with profile(profile_memory=True) as prof:
        a = tl.ones(1000)
        b = a * 2
        del a
        c = b + 1
    del b, c
    prof.export_memory_timeline(str(tmp_path / "m.json.gz"), device="cpu")
    times, sizes = json.loads(gzip.decompress((tmp_path / "m.json.gz").read_bytes()))
    prof.export_memory_timeline(str(tmp_path / "m.raw.json.gz"), "cpu")
    raw = json.loads(gzip.decompress((tmp_path / "m.raw.json.gz").read_bytes()))
    assert {r[1] for r in raw} <= {1, 2, 4} and [r[2] > 0 for r in raw if r[1] != 1] == [True, True, False, True]
    assert sum(r[2] for r in raw) == sum(sizes[-1]) and len(times) == len(sizes)
    prof.export_memory_timeline(str(tmp_path / "m.html"), "cpu")
    page = (tmp_path / "m.html").read_text()
    assert page.startswith("<html>") and "<svg" in page and "Memory timeline (cpu)" in page
    prof.export_memory_timeline(str(tmp_path / "gpu.json"), "cuda:0")       # nothing recorded there
    assert json.loads((tmp_path / "gpu.json").read_text()) == [[0], [[0] * 9]]
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda:N'"):
        prof.export_memory_timeline(str(tmp_path / "x.json"), "tpu:3")
