"""Viewer speed on synthetic Kineto-like traces of 100k and 1M events.

Prints, per size: file size, load time (parse + columns + flows, no UI; wall and CPU), `python -m viewer
summary` in a fresh process (CPU seconds and peak RSS: issue 17's <= 2 s and <= 0.8 GB), time from app start to
first paint of the timeline (headless, loading in the worker as the real app does, which binds flows after
the first paint; wall and CPU of the process, both threads), peak resident memory of a
fresh process doing that, timeline redraw time per zoom/pan step (every visible line rendered), and
the time to build the ops table. Each size runs in its own subprocess so RSS figures do not mix.

    python benchmarks/viewer_load.py            # 100k and 1M
    python benchmarks/viewer_load.py --sizes 100000
    python benchmarks/viewer_load.py --root /work/main --repeat 3   # another checkout's viewer; best of 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import orjson

OPS = ["aten::linear", "aten::relu", "aten::add", "aten::mul", "aten::conv2d", "aten::matmul", "aten::sum"]


def make_trace(n_events: int) -> dict:
    """Steps of nested CPU ops, each launching a kernel (with an ac2g flow), on 4 threads."""
    ev: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "python"}},
        {"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "gpu"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}},
    ]
    t = {tid: 0.0 for tid in range(1, 5)}
    gpu_t = 0.0
    corr = 0
    step = 0
    while len(ev) < n_events:
        tid = 1 + step % 4
        start = t[tid]
        ev.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}", "pid": 1, "tid": tid,
                   "ts": start, "dur": 0.0, "args": {"External id": step}})
        step_ev = ev[-1]
        cur = start + 1.0
        for k in range(40):
            op = OPS[(step + k) % len(OPS)]
            ev.append({"ph": "X", "cat": "cpu_op", "name": op, "pid": 1, "tid": tid, "ts": cur, "dur": 9.0,
                       "args": {"External id": corr, "Input Dims": [[8, 64], [64, 64]], "Sequence number": corr}})
            ev.append({"ph": "X", "cat": "cpu_op", "name": op + "_inner", "pid": 1, "tid": tid, "ts": cur + 1,
                       "dur": 7.0, "args": {"External id": corr}})
            ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": tid,
                       "ts": cur + 2, "dur": 4.0, "args": {"correlation": corr}})
            ev.append({"ph": "s", "cat": "ac2g", "name": "ac2g", "id": corr, "pid": 1, "tid": tid, "ts": cur + 2})
            gpu_t = max(gpu_t, cur + 5)
            ev.append({"ph": "X", "cat": "kernel", "name": f"kernel_{op}", "pid": 0, "tid": 7, "ts": gpu_t,
                       "dur": 3.0, "args": {"correlation": corr}})
            ev.append({"ph": "f", "cat": "ac2g", "name": "ac2g", "id": corr, "pid": 0, "tid": 7, "ts": gpu_t,
                       "bp": "e"})
            gpu_t += 3.5
            corr += 1
            cur += 10.0
        step_ev["dur"] = cur - start
        t[tid] = cur + 5.0
        step += 1
    return {"traceEvents": ev[:n_events], "displayTimeUnit": "ms", "schemaVersion": 1}


def rss_mb() -> float:
    """Peak RSS of this process: VmHWM, not ru_maxrss, which Linux carries over from the parent across fork
    and exec (the parent that made a 1M-event trace peaked at 0.6 GB, and every child read that)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def measure_load(path: str) -> dict:
    """Runs in a fresh process: the loader alone, then the ops table, with peak RSS."""
    sys.path.insert(0, os.environ.get("VIEWER_ROOT", ROOT))
    from viewer.model import load_trace
    from viewer.summary import ops_table

    s, c = time.perf_counter(), time.process_time()
    trace = load_trace(path)
    out = {"load_s": time.perf_counter() - s, "load_cpu_s": time.process_time() - c, "events": len(trace),
           "load_rss_mb": rss_mb()}
    s = time.perf_counter()
    ops_table(trace)
    out["ops_table_s"] = time.perf_counter() - s
    return out


def measure_app(path: str) -> dict:
    """Runs in a fresh process: the real app (headless), loading in its worker, until first paint."""
    sys.path.insert(0, os.environ.get("VIEWER_ROOT", ROOT))
    from viewer.app import ViewerApp
    from viewer.timeline import Timeline

    async def run() -> dict:
        app = ViewerApp(path)
        t0, c0 = time.perf_counter(), time.process_time()
        async with app.run_test(size=(200, 60)) as pilot:
            # Sleep rather than poll the pilot, which would keep taking the GIL from the loader thread.
            while app.first_paint_at is None and app.error is None:
                await asyncio.sleep(0.05)
            paint = app.first_paint_at - t0
            paint_cpu = app.first_paint_cpu - c0
            rss_paint = rss_mb()
            await pilot.pause()
            tl = app.query_one(Timeline)
            times = []
            for key in "wwwwwwddddssssaaaawwwwwwwwwwdddddd":
                getattr(tl, {"w": "action_zoom_in", "s": "action_zoom_out", "a": "action_pan_left",
                             "d": "action_pan_right"}[key])()
                s = time.perf_counter()
                for y in range(tl.size.height):  # every visible line, as one redraw does
                    tl.render_line(y)
                times.append(time.perf_counter() - s)
        return {"first_paint_s": paint, "first_paint_cpu_s": paint_cpu, "paint_rss_mb": rss_paint,
                "redraw_ms_median": statistics.median(times) * 1e3, "redraw_ms_max": max(times) * 1e3,
                "app_rss_mb": rss_mb()}

    return asyncio.run(run())


def _sub(mode: str, path: str, root: str) -> dict:
    res = subprocess.run([sys.executable, __file__, mode, path], capture_output=True, text=True,
                         env=dict(os.environ, VIEWER_ROOT=root))
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--root", default=ROOT, help="the checkout whose viewer is measured (say /work/main: before)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best (least CPU) is shown")
    ap.add_argument("--measure-load", help=argparse.SUPPRESS)
    ap.add_argument("--measure-app", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_load:
        print(json.dumps(measure_load(args.measure_load)))
        return
    if args.measure_app:
        print(json.dumps(measure_app(args.measure_app)))
        return
    from viewer_adversarial import run_case  # (this directory is on sys.path when run as a script)

    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; viewer of {os.path.abspath(args.root)}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("load: wall seconds (CPU seconds of the process, steadier on a shared machine); best of "
          f"{args.repeat} by CPU")
    print("summary: `python -m viewer summary` in a fresh process, CPU seconds / peak RSS MB")
    print("RSS: peak resident MB of the process (app: at first paint / after the redraws)")
    print(f"{'events':>9} {'file MB':>8} {'load s (cpu)':>13} {'load RSS MB':>12} {'summary cpu s / MB':>19} "
          f"{'first paint s (cpu)':>20} {'app RSS MB':>11} {'redraw ms (median/max)':>23} {'ops table s':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = os.path.join(tmp, f"synthetic_{n}.json")
            with open(path, "wb") as f:
                f.write(orjson.dumps(make_trace(n)))
            mb = os.path.getsize(path) / 1e6
            r = min((_sub("--measure-load", path, args.root) for _ in range(args.repeat)),
                    key=lambda d: d["load_cpu_s"])
            r.update(min((_sub("--measure-app", path, args.root) for _ in range(args.repeat)),
                         key=lambda d: d["first_paint_cpu_s"]))
            summ = min((run_case(path, 300.0, root=args.root) for _ in range(args.repeat)),
                       key=lambda d: d["cpu"] if d["cpu"] is not None else float("inf"))
            load = f"{r['load_s']:.2f} ({r['load_cpu_s']:.2f})"
            paint = f"{r['first_paint_s']:.2f} ({r['first_paint_cpu_s']:.2f})"
            app_rss = f"{r['paint_rss_mb']:.0f} / {r['app_rss_mb']:.0f}"
            summary = (f"{summ['cpu']:.2f} / {summ['rss_mb']:.0f}" if summ["cpu"] is not None
                       else summ["result"][:19])
            print(f"{n:>9} {mb:>8.0f} {load:>13} {r['load_rss_mb']:>12.0f} {summary:>19} {paint:>20} "
                  f"{app_rss:>11} {r['redraw_ms_median']:>12.1f} / {r['redraw_ms_max']:<8.1f} "
                  f"{r['ops_table_s']:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
