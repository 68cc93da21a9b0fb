"""export_chrome_trace: the event store as a Kineto-compatible Chrome trace (DESIGN.md conventions).

ts/dur are µs with ns precision, counted from ``baseTimeNanoseconds`` (wall clock at start()). Ops are
``cpu_op`` with ``External id``, ``Sequence number``, ``Fwd thread id`` and, with record_shapes,
``Input Dims``/``Input type``; autograd nodes are ``cpu_op`` too (as torch's evaluate_function events);
other ranges are ``user_annotation``, except that with with_stack nn.Module ranges and the user's
Python frames are torch's ``python_function`` events (python_trace.py). ``fwdbwd`` flows join each
forward op to the backward node with its sequence number; with CUDA activity each op's GPU span is a
``kernel`` event on pid = device, tid = stream, joined by an ``ac2g`` flow (with cuda_timing="cupti",
CUPTI's kernels, memcpys, memsets and their launch calls instead, as Kineto writes them). ``[memory]``
instant events and one counter track per device carry allocations. Written with orjson, atomically.
"""
from __future__ import annotations

import json
import os
import socket
import uuid

import numpy as np
import orjson

from ._nogc import no_gc
from ._atomic import write_bytes
from ._jsonrows import format_rows
from .events import CALL_TAGS, OP_TAGS, dense_unique, extra_table
from .torch_names import AUTOGRAD_TAGS, COMPOSITE_TAG
from .memory_record import CPU, device_name, timeline
from .occupancy import kernel_args
from .python_trace import has_python_events, module_event_rows, python_events


def _json(obj) -> bytes:
    """orjson.dumps, with lone surrogates (``record_function("x\\ud800")``, a file name decoded with
    surrogateescape) written as the text ``\\ud800``: orjson refuses to encode them, and a JSON ``\\ud800``
    escape loads in Python's json but not in orjson or other strict readers. Only a failed encoding pays
    for the second pass."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return orjson.dumps(_no_surrogates(obj))


def _no_surrogates(obj):
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_surrogates(v) for v in obj]
    return obj


def _us(ns):
    """ns (int64 array) -> µs floats with 3 decimals (ns precision)."""
    return (np.asarray(ns, np.int64) / 1000.0).round(3)


@no_gc
def trace_parts(store, prof=None):
    """(document without traceEvents, event dicts, pre-encoded JSON text of further events).

    Ops and ranges are formatted straight from the columns by NumPy (`_x_rows`), which is many times
    faster than building a dict per event; those with a call stack or FLOPs (with_stack, with_flops) are
    dicts for orjson."""
    pid = os.getpid()
    tb = store.t_base
    tags = store.tags
    names = store.names
    tag_cat = ["cpu_op" if t in OP_TAGS or t in AUTOGRAD_TAGS or t == COMPOSITE_TAG else "user_annotation"
               for t in tags]
    extra = store.extra
    ev = []
    add = ev.append
    # metadata
    add({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0, "args": {"name": "python"}})
    add({"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "ts": 0, "args": {"labels": "CPU"}})
    add({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "ts": 0, "args": {"sort_index": pid}})
    for t, tname in store.thread_names.items():
        add({"ph": "M", "name": "thread_name", "pid": pid, "tid": t, "ts": 0,
             "args": {"name": f"thread {t} ({tname})"}})
        add({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": t, "ts": 0, "args": {"sort_index": t}})
    for src in prof.trace_sources() if prof is not None else ():
        ev.extend(src(pid, tb))
    # CUDA API calls (cuda_timing="cupti") are events of the store, written by _cupti_events as Kineto does
    calls = np.isin(store.tag_id, [k for k, t in enumerate(tags) if t in CALL_TAGS])
    ts_f = (store.t0 - tb) / 1000.0
    dur_f = (store.t1 - store.t0) / 1000.0
    text: list = []
    kept = ~calls
    slow: list = []
    sig = None
    if extra is not None:
        # with record_shapes / profile_memory an op's args differ from the default options' only by its
        # "Input Dims"/"Input type", one of a few signatures (format_extras shares each among its events):
        # those rows are formatted from the columns too, the signature's JSON taken from a table. Rows with
        # a call stack or FLOPs, and nn.Module ranges written as python_function events, are dicts below.
        table, eid = extra_table(store)
        frag_of: dict = {}
        frags = [b""]
        is_slow = np.zeros(len(table), bool)
        frag = np.zeros(len(table), np.int64)
        for k, ex in enumerate(table):
            if ex[1] or ex[2] or len(ex) > 3:
                is_slow[k] = True
                continue
            sd = ex[0]
            if not sd:
                continue
            f = frag_of.get(id(sd))
            if f is None:
                f = frag_of[id(sd)] = len(frags)
                frags.append(b',"Input Dims":' + _json(sd[0]) + b',"Input type":' + _json(sd[1]))
            frag[k] = f
        sig = (frags, frag[eid])
        slow = np.flatnonzero(is_slow[eid]).tolist()
        if slow:
            kept[slow] = False
    text.extend(_x_rows(store, kept, pid, tag_cat, sig))
    if slow:
        tid = store.tid.tolist()
        seq = store.seq.tolist()
        ts = ts_f.round(3).tolist()
        dur = dur_f.round(3).tolist()
        tag_id = store.tag_id.tolist()
        name_id = store.name_id.tolist()
        py = has_python_events(store)
        call_stacks = prof is None or prof.call_stack_args
        as_python = module_event_rows(store) if py else set()     # nn.Module ranges: python_function below
        as_python.update(np.flatnonzero(calls).tolist())
        for i in slow:
            if i in as_python:
                continue
            args = {"External id": i + 1}
            sq = seq[i]
            if sq >= 0:
                args["Sequence number"] = sq
                args["Fwd thread id"] = 0
            ex = extra[i]
            if ex[0]:
                args["Input Dims"] = ex[0][0]
                args["Input type"] = ex[0][1]
            if ex[1] and call_stacks:
                args["Call stack"] = ";".join(reversed(ex[1]))
            if ex[2]:
                args["flops"] = ex[2]       # ours: torch computes FLOPs but does not export them
            add({"ph": "X", "cat": tag_cat[tag_id[i]], "name": names[name_id[i]], "pid": pid, "tid": tid[i],
                 "ts": ts[i], "dur": dur[i], "args": args})
        if py:
            ev.extend(python_events(store, pid, call_stacks))
    ts = ts_f.round(3)
    # forward -> backward flows: the forward op and the autograd node range with the same sequence number
    if "r:backward" in tags and "forward" in tags:
        bw = tags.index("r:backward")
        fw = tags.index("forward")
        fwd_idx = np.flatnonzero((store.tag_id == fw) & (store.seq >= 0))
        bwd_idx = np.flatnonzero((store.tag_id == bw) & (store.seq >= 0))
        useq, first = np.unique(store.seq[fwd_idx], return_index=True)     # the first forward op per seq
        at = np.minimum(np.searchsorted(useq, store.seq[bwd_idx]), max(len(useq) - 1, 0))
        hit = (useq[at] == store.seq[bwd_idx]) if len(useq) else np.zeros(len(bwd_idx), bool)
        src, dst = fwd_idx[first[at[hit]]], bwd_idx[hit]
        for sq, tf, ti, ts_s, ts_i in zip(store.seq[dst].tolist(), store.tid[src].tolist(), store.tid[dst].tolist(),
                                          ts[src].tolist(), ts[dst].tolist()):
            add({"ph": "s", "id": sq, "pid": pid, "tid": tf, "ts": ts_s, "cat": "fwdbwd", "name": "fwdbwd"})
            add({"ph": "f", "id": sq, "pid": pid, "tid": ti, "ts": ts_i, "cat": "fwdbwd", "name": "fwdbwd", "bp": "e"})
    props = _cuda_props() if store.has_device_time else {}      # read once: kernel figures and the header
    _gpu_events(store, ev, pid, ts, props)
    _memory_events(store, text, pid)
    _comm_events(store, ev, pid)
    doc = {"schemaVersion": 1, "deviceProperties": _device_properties(props), "trace_id": uuid.uuid4().hex.upper(),
           "host_name": socket.gethostname(), "displayTimeUnit": "ms", "baseTimeNanoseconds": store.wall_base_ns}
    info = _distributed_info()
    if info is not None:
        doc["distributedInfo"] = info
    if prof is not None:
        doc["record_shapes"] = int(prof.record_shapes)
        doc["profile_memory"] = int(prof.profile_memory)
        doc["with_stack"] = int(prof.with_stack)
        doc.update(prof._metadata)            # add_metadata(_json): the user's keys (none of RESERVED_KEYS)
    return doc, ev, text


def _x_rows(store, kept, pid, tag_cat, sig=None):
    """The ops and ranges selected by `kept` as JSON rows formatted by NumPy (_jsonrows): every one differs
    only in numbers, in a prefix taken from a small table (one per name, tag and thread) and, with `sig`
    ((entries, id per event)), in the args' tail taken from a second one. Generators for trace_chunks."""
    names, tags, tb, n = store.names, store.tags, store.t_base, len(store)
    ntag = max(len(tags), 1)
    threads = np.array(sorted(store.thread_names), np.int64)     # every thread that recorded
    tix = np.searchsorted(threads, store.tid)
    if len(store.tid) and not (threads[np.minimum(tix, len(threads) - 1)] == store.tid).all():
        threads = np.unique(store.tid)                              # a store built some other way
        tix = np.searchsorted(threads, store.tid)
    key = (store.name_id.astype(np.int64) * ntag + store.tag_id) * len(threads) + tix
    uk, inv = dense_unique(key, len(names) * ntag * len(threads))
    prefix = []
    for k in uk.tolist():
        nt, th = divmod(k, len(threads))
        nm, tg = divmod(nt, ntag)
        prefix.append(b'{"ph":"X","cat":"%s","name":%s,"pid":%d,"tid":%d' % (
            tag_cat[tg].encode(), _json(names[nm]), pid, int(threads[th])))
    ts_ns = store.t0 - tb
    dur_ns = store.t1 - store.t0
    has_seq = store.seq >= 0
    out = []
    for sel, tail in ((~has_seq & kept, ["sig", b"}}"]),
                      (has_seq & kept, [b',"Sequence number":', "seq", b',"Fwd thread id":0', "sig", b"}}"])):
        idx = np.flatnonzero(sel)
        if not len(idx):
            continue
        if len(idx) == n:       # every event (nothing to select: spare millions of copies)
            cols = (inv, ts_ns, dur_ns, np.arange(1, n + 1), store.seq, sig[1] if sig else None)
        else:
            cols = (inv[idx], ts_ns[idx], dur_ns[idx], idx + 1, store.seq[idx], sig[1][idx] if sig else None)
        parts = [("table", prefix, cols[0]), b',"ts":', ("us", cols[1]), b',"dur":', ("us", cols[2]),
                 b',"args":{"External id":', ("int", cols[3])]
        for p in tail:
            if p == "seq":
                parts.append(("int", cols[4]))
            elif p == "sig":
                if sig is not None:
                    parts.append(("table", sig[0], cols[5]))
            else:
                parts.append(p)
        out.append(format_rows(parts, len(idx)))
    return out


def trace_chunks(doc, ev, text):
    """The trace file's bytes as chunks to write in order: the orjson-encoded events, then the rows
    formatted from columns (each begins with a comma; `format_rows` generators whose chunks reuse two
    buffers, so each must be written before the next-but-one is produced), then the rest of the document."""
    yield b'{"traceEvents":['
    yield memoryview(_json(ev))[1:-1]
    for t in text:
        yield from t
    yield b"],"
    info = doc.get("distributedInfo")
    if info is not None:
        # spaced as Kineto writes it: HTA finds a file's rank with the pattern `"rank":\s+(\d+)`
        yield b'"distributedInfo": ' + json.dumps(info).encode() + b","
        doc = {k: v for k, v in doc.items() if k != "distributedInfo"}
    yield _json(doc)[1:]


def trace_bytes(doc, ev, text) -> bytes:
    return b"".join([bytes(c) for c in trace_chunks(doc, ev, text)])


def trace_dict(store, prof=None) -> dict:
    """The whole trace as a dict (tests, tools); export_chrome_trace writes the same content."""
    doc, ev, text = trace_parts(store, prof)
    return orjson.loads(trace_bytes(doc, ev, text))


def _gpu_events(store, ev, pid, ts, props):
    if store.gpu_records is not None:
        _cupti_events(store, ev, pid, props)
        return
    if not store.has_device_time:
        return
    idx = np.flatnonzero(store.dev_start >= 0)
    if not len(idx):
        return
    gts = _us(store.dev_start[idx] - store.t_base).tolist()
    gdur = _us(store.dev_ns[idx]).tolist()
    names, name_id, tid, ts = store.names, store.name_id, store.tid, ts
    stream_ids = _stream_ids(store.dev_stream[idx])
    lanes = set()
    for k, i in enumerate(idx.tolist()):
        dev = int(store.dev_index[i])
        stream = stream_ids[k]
        lanes.add((dev, stream))
        corr = i + 1
        ev.append({"ph": "X", "cat": "kernel", "name": names[int(name_id[i])], "pid": dev, "tid": stream, "ts": gts[k],
                   "dur": gdur[k], "args": {"External id": i + 1, "queued": 0, "device": dev, "stream": stream,
                                            "correlation": corr}})
        # the launch call, which HTA needs to keep the kernel: where in the op it ran is not measured here
        # (cuda_timing="cupti" measures it), so it is a zero-length call at the op's start
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": pid, "tid": int(tid[i]),
                   "ts": float(ts[i]), "dur": 0.0, "args": {"External id": i + 1, "cbid": LAUNCH_KERNEL_CBID,
                                                            "correlation": corr}})
        ev.append({"ph": "s", "id": corr, "pid": pid, "tid": int(tid[i]), "ts": float(ts[i]), "cat": "ac2g",
                   "name": "ac2g"})
        ev.append({"ph": "f", "id": corr, "pid": dev, "tid": stream, "ts": gts[k], "cat": "ac2g", "name": "ac2g",
                   "bp": "e"})
    _gpu_lane_names(ev, lanes, pid)


LAUNCH_KERNEL_CBID = 211          # CUPTI's callback id of cudaLaunchKernel (cupti_runtime_cbid.h)
DEFAULT_STREAM_ID = 7             # the id CUPTI (and so Kineto) gives the legacy default stream


def _stream_ids(ptrs):
    """Kineto's small stream ids for CuPy's stream pointers: the default stream (pointer 0) is 7, as
    CUPTI numbers it; other streams get 8, 9, ... in order of first use."""
    ids = {0: DEFAULT_STREAM_ID}
    out = []
    for p in np.asarray(ptrs).tolist():
        if p not in ids:
            ids[p] = DEFAULT_STREAM_ID + len(ids)
        out.append(ids[p])
    return out


def _gpu_lane_names(ev, lanes, pid):
    """Kineto's metadata for GPU lanes: the process named as the CPU's, labelled ``GPU n``, sorted after it."""
    for dev in sorted({d for d, _ in lanes}):
        ev.append({"ph": "M", "name": "process_name", "pid": dev, "tid": 0, "ts": 0, "args": {"name": "python"}})
        ev.append({"ph": "M", "name": "process_labels", "pid": dev, "tid": 0, "ts": 0,
                   "args": {"labels": f"GPU {dev}"}})
        ev.append({"ph": "M", "name": "process_sort_index", "pid": dev, "tid": 0, "ts": 0,
                   "args": {"sort_index": 5000000 + dev}})
    for dev, stream in sorted(lanes):
        ev.append({"ph": "M", "name": "thread_name", "pid": dev, "tid": stream, "ts": 0,
                   "args": {"name": f"stream {stream} "}})
        ev.append({"ph": "M", "name": "thread_sort_index", "pid": dev, "tid": stream, "ts": 0,
                   "args": {"sort_index": stream}})


def _cupti_events(store, ev, pid, props):
    """cuda_timing="cupti": Kineto's events from the CUPTI records (profiler/cupti.py), arguments named
    and ordered as in torch's traces: GPU activities on pid = device, tid = stream; launch calls on
    their CPU thread; an ``ac2g`` flow per launched activity, id = the CUPTI correlation id, ``s`` at
    the call's start and ``f`` (``"bp": "e"``) at the activity's start."""
    tb = store.t_base
    calls = store.api_records or []
    launch = {}
    for cat, name, cbid, tid, corr, t0, t1, owner in calls:
        args = {"External id": owner + 1} if owner >= 0 else {}
        args["cbid"] = cbid
        args["correlation"] = corr
        e = {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": round((t0 - tb) / 1000.0, 3),
             "dur": round((t1 - t0) / 1000.0, 3), "args": args}
        ev.append(e)
        launch.setdefault(corr, e)
    lanes = set()
    started = set()
    for cat, name, dev, ctx, stream, corr, t0, t1, owner, extra in store.gpu_records:
        args = {"External id": owner + 1} if owner >= 0 else {}
        if cat == "kernel":
            args["queued"] = 0              # Kineto's (CUPTI's queued timestamp, not collected: 0 as in torch's)
        args.update({"device": dev, "context": ctx, "stream": stream, "correlation": corr})
        if cat == "kernel":
            args.update(kernel_args(extra, props.get(dev)))
        else:
            args["bytes"] = extra["bytes"]
            args["memory bandwidth (GB/s)"] = extra["bytes"] / (t1 - t0) if t1 > t0 else 0.0   # bytes/ns = GB/s
        gts = round((t0 - tb) / 1000.0, 3)
        ev.append({"ph": "X", "cat": cat, "name": name, "pid": dev, "tid": stream, "ts": gts,
                   "dur": round((t1 - t0) / 1000.0, 3), "args": args})
        lanes.add((dev, stream))
        call = launch.get(corr)
        if call is not None:
            if corr not in started:         # one start per launch (a graph launch runs many activities)
                started.add(corr)
                ev.append({"ph": "s", "id": corr, "pid": pid, "tid": call["tid"], "ts": call["ts"], "cat": "ac2g",
                           "name": "ac2g"})
            ev.append({"ph": "f", "id": corr, "pid": dev, "tid": stream, "ts": gts, "cat": "ac2g", "name": "ac2g",
                       "bp": "e"})
    _gpu_lane_names(ev, lanes, pid)


def _memory_events(store, text, pid):
    """``[memory]`` instant events and the device's ``Memory (device)`` counter, two rows per memory record,
    formatted from the columns (`_jsonrows`): a detailed profile has one record per allocation and per
    free, more than its ops."""
    mem = store.mem_events
    if mem is None or not len(mem):
        return
    base = getattr(store, "cuda_base", {})
    for key, (t, total) in timeline(mem, base, getattr(store, "cpu_base", 0)).items():
        m = np.flatnonzero((mem["dev_type"] == key[0]) & (mem["dev_id"] == key[1]))
        ts = np.asarray(t, np.int64) - store.t_base
        dev = b'"Device Id":%d,"Device Type":%d' % (int(key[1]) if key[0] != CPU else -1, int(key[0]))
        text.append(format_rows([b'{"ph":"i","cat":"cpu_instant_event","s":"t","name":"[memory]","pid":%d,"tid":' % pid,
                                 ("int", mem["tid"][m]), b',"ts":', ("us", ts), b',"args":{"Total Reserved":',
                                 ("int", total), b',"Total Allocated":', ("int", total), b',"Bytes":',
                                 ("int", mem["bytes"][m]), b"," + dev + b',"Addr":', ("int", mem["addr"][m]), b"}}"],
                                len(m)))
        counter = b'{"ph":"C","name":' + _json(f"Memory ({device_name(key)})") + b',"pid":%d,"ts":' % pid
        text.append(format_rows([counter, ("us", ts), b',"args":{"Allocated":', ("int", total), b"}}"], len(m)))


def _distributed_info():
    from tensorlib.distributed import trace_info
    return trace_info()


def _comm_events(store, ev, pid):
    """Kineto's ``record_param_comms`` events (cat cpu_op, with ``Collective name``, ``In msg nelems``,
    ``Out msg nelems``, ``Group size``, ``dtype``, split sizes and the process group's name and ranks),
    one around each recorded ``mpi:*`` or ``nccl:*`` range that tensorlib.distributed ran (on a group's worker
    thread or the caller's).
    A record counts when the store holds its range: same thread and title, starting inside the record."""
    from tensorlib.distributed import collective_records
    RECORDS = collective_records()
    if not RECORDS or not len(store):
        return
    names = store.names
    titles = {k: nm for k, nm in enumerate(names) if nm.startswith(("mpi:", "nccl:"))}
    if not titles:
        return
    sel = np.flatnonzero(np.isin(store.name_id, list(titles)))
    starts: dict = {}
    for i, t0 in zip(sel.tolist(), store.t0[sel].tolist()):
        starts.setdefault((int(store.tid[i]), titles[int(store.name_id[i])]), []).append(t0)
    for v in starts.values():
        v.sort()
    tb = store.t_base
    ext = len(store)
    for tid, t0, t1, title, args in list(RECORDS):
        v = starts.get((tid, title))
        if not v:
            continue
        k = int(np.searchsorted(v, t0))
        if k == len(v) or v[k] > t1:
            continue
        ext += 1
        ev.append({"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": pid, "tid": tid,
                   "ts": round((t0 - tb) / 1000.0, 3), "dur": round((t1 - t0) / 1000.0, 3),
                   "args": {"External id": ext, "Record function id": 0, **args}})


def _cuda_props() -> dict:
    """CuPy's getDeviceProperties per device index ({} without CUDA)."""
    from tensorlib.cuda import cupy_or_none
    cupy = cupy_or_none()
    if cupy is None:
        return {}
    rt = cupy.cuda.runtime
    return {d: rt.getDeviceProperties(d) for d in range(rt.getDeviceCount())}


# deviceProperties as Kineto writes them: (its key, CuPy's getDeviceProperties key), each where CuPy gives it
_KINETO_PROPS = (("totalGlobalMem", "totalGlobalMem"), ("computeMajor", "major"), ("computeMinor", "minor"),
                 ("maxThreadsPerBlock", "maxThreadsPerBlock"),
                 ("maxThreadsPerMultiprocessor", "maxThreadsPerMultiProcessor"),
                 ("regsPerBlock", "regsPerBlock"), ("warpSize", "warpSize"), ("sharedMemPerBlock", "sharedMemPerBlock"),
                 ("numSms", "multiProcessorCount"), ("regsPerMultiprocessor", "regsPerMultiprocessor"),
                 ("sharedMemPerBlockOptin", "sharedMemPerBlockOptin"),
                 ("sharedMemPerMultiprocessor", "sharedMemPerMultiprocessor"))


def _device_properties(props):
    """Kineto's ``deviceProperties``: one entry per GPU CuPy sees (`props`, from _cuda_props: none where the
    profile timed no GPU)."""
    out = []
    for d, p in props.items():
        name = p["name"].decode() if isinstance(p["name"], bytes) else p["name"]
        out.append({"id": d, "name": name, **{ours: p[theirs] for ours, theirs in _KINETO_PROPS if theirs in p}})
    return out


# the top-level keys a trace writes itself (add_metadata refuses them)
RESERVED_KEYS = frozenset({"schemaVersion", "deviceProperties", "trace_id", "host_name", "displayTimeUnit",
                           "baseTimeNanoseconds", "distributedInfo", "record_shapes", "profile_memory", "with_stack",
                           "traceName", "traceEvents"})


def export_chrome_trace(store, path, prof=None):
    doc, ev, text = trace_parts(store, prof)
    doc["traceName"] = os.fspath(path)
    write_bytes(path, trace_chunks(doc, ev, text), what="Chrome trace")
    return path
