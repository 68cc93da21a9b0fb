"""The viewer on hostile or merely unlucky inputs: wall time and peak RSS of `python -m viewer summary`.

Each case runs in a fresh process (so peak RSS is that case's own) with a time limit; the figures are
what issue 21 asks for: nesting O(n log n) (1M identical events in one deep stack summarised in <= 5 s),
memory <= 3x the input's size on disk plus a constant, and a clear one-line error, quickly, for what
cannot be a trace (a gzip bomb, a sparse file of zeros, a FIFO, /dev/zero).

    python benchmarks/viewer_adversarial.py                  # every case, the 1M-event ones included
    python benchmarks/viewer_adversarial.py --events 160000  # smaller stacks
    python benchmarks/viewer_adversarial.py --cases deep_stack unclosed_b
    python benchmarks/viewer_adversarial.py --root /work/main   # another checkout's viewer (before/after)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# A child that runs the CLI in-process and reports its own peak RSS (ru_maxrss of this process only).
_CHILD = """
import sys, time
sys.argv = ["viewer", *sys.argv[1:]]
from viewer.__main__ import main
t, c = time.perf_counter(), time.process_time()
rc = main(sys.argv[1:])
sys.stdout.flush()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print("@@", rc, time.perf_counter() - t, hwm / 1024, time.process_time() - c, file=sys.stderr)
"""


def deep_stack(path: str, n: int) -> None:
    """n X events with the same ts and dur: each nests in the one before, one stack n deep."""
    one = b'{"ph":"X","name":"op","cat":"cpu_op","pid":1,"tid":1,"ts":0,"dur":1}'
    with open(path, "wb") as f:
        f.write(b"[" + b",".join([one] * n) + b"]")


def unclosed_b(path: str, n: int) -> None:
    """n B events that never end, each a microsecond after the last: drawn n rows deep."""
    with open(path, "wb") as f:
        f.write(b"[" + b",".join(b'{"ph":"B","name":"b%d","pid":1,"tid":1,"ts":%d}' % (i, i)
                                 for i in range(n)) + b"]")


def tiny_x(path: str, n: int) -> None:
    """n tiny X events one after another on one thread (no nesting): the common shape, at scale."""
    with open(path, "wb") as f:
        f.write(b"[" + b",".join(b'{"ph":"X","name":"op","cat":"cpu_op","pid":1,"tid":1,"ts":%d,"dur":1}' % (2 * i)
                                 for i in range(n)) + b"]")


def be_pairs(path: str, n: int) -> None:
    """n // 2 B/E pairs one after another (a few names), every one closed: 500k pairs for n = 1M."""
    with open(path, "wb") as f:
        f.write(b"[" + b",".join(b'{"ph":"B","name":"f%d","pid":1,"tid":1,"ts":%d},{"ph":"E","pid":1,"tid":1,"ts":%d}'
                                 % (i % 8, 2 * i, 2 * i + 1) for i in range(n // 2)) + b"]")


def mixed_be_x(path: str, n: int) -> None:
    """B/E pairs with an X event inside each, and every fourth B never closed, on 4 threads."""
    parts = []
    for i in range(n // 3):
        tid, t = i % 4, 10 * i
        parts.append(b'{"ph":"B","name":"outer%d","pid":1,"tid":%d,"ts":%d}' % (i % 16, tid, t))
        parts.append(b'{"ph":"X","name":"inner","cat":"cpu_op","pid":1,"tid":%d,"ts":%d,"dur":2}' % (tid, t + 1))
        if i % 4:
            parts.append(b'{"ph":"E","pid":1,"tid":%d,"ts":%d}' % (tid, t + 5))
    with open(path, "wb") as f:
        f.write(b"[" + b",".join(parts) + b"]")


def staircase(path: str, n: int) -> None:
    """n X events, each starting 1 us after the last and overlapping it partially (no nesting at all)."""
    with open(path, "wb") as f:
        f.write(b"[" + b",".join(b'{"ph":"X","name":"s","pid":1,"tid":1,"ts":%d,"dur":%d}' % (i, 1000)
                                 for i in range(n)) + b"]")


def gzip_bomb(path: str, _n: int) -> None:
    """3 MB of gzip inflating to about 3 GB of spaces."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 24)
    with open(path, "wb") as f:
        for _ in range(180):
            f.write(c.compress(block))
        f.write(c.flush())


def sparse_zeros(path: str, _n: int) -> None:
    """A 2 GiB file of zero bytes that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(2 << 30)


def big_arg(path: str, _n: int) -> None:
    """One event whose args hold a 50 MB string."""
    with open(path, "wb") as f:
        f.write(b'[{"ph":"X","name":"big","pid":1,"tid":1,"ts":0,"dur":1,"args":{"blob":"'
                + b"x" * (50 << 20) + b'"}}]')


CASES = {"tiny_x": tiny_x, "deep_stack": deep_stack, "unclosed_b": unclosed_b, "be_pairs": be_pairs,
         "mixed_be_x": mixed_be_x, "staircase": staircase,
         "gzip_bomb": gzip_bomb, "sparse_zeros": sparse_zeros, "big_arg": big_arg}


_IMPORTS = """
import sys
sys.argv = ["viewer"]
import viewer.__main__, viewer.model, viewer.summary
from viewer.__main__ import _keep_large_blocks_mapped
_keep_large_blocks_mapped()
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print("@@", 0, 0.0, hwm / 1024, 0.0, file=sys.stderr)
"""


def run_case(path: str, timeout: float, *extra: str, root: str = ROOT, code: str = _CHILD) -> dict:
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, "-c", code, "summary", path, *extra], capture_output=True,
                             text=True, timeout=timeout, env=env, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"wall_s": time.perf_counter() - t, "secs": None, "cpu": None,
                "result": f"over {timeout:.0f} s (killed)", "rss_mb": None}
    wall = time.perf_counter() - t
    tail = [ln for ln in res.stderr.splitlines() if ln.startswith("@@")]
    err = [ln for ln in res.stderr.splitlines() if not ln.startswith("@@")]
    if not tail:
        return {"wall_s": wall, "secs": None, "cpu": None,
                "result": (err[-1] if err else f"rc {res.returncode}")[:100], "rss_mb": None}
    _, rc, secs, rss, cpu = tail[-1].split()
    out = res.stdout.splitlines()
    first = (err[0] if err else out[2] if len(out) > 2 else "")
    return {"wall_s": wall, "secs": float(secs), "cpu": float(cpu),
            "result": f"rc {rc}, {len(out)} lines: {first[:70]}", "rss_mb": float(rss)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the stack-shaped cases")
    ap.add_argument("--cases", nargs="*", default=[*CASES, "fifo", "dev_zero"])
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--root", default=ROOT, help="the checkout whose viewer is measured (say /work/main: before)")
    args = ap.parse_args()
    base = run_case("-", 60.0, root=args.root, code=_IMPORTS)["rss_mb"] or 0.0
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; `python -m viewer summary` per case "
          f"(summary s: its wall time in the child, CPU s: its CPU time), "
          f"viewer of {os.path.abspath(args.root)}; the constant (interpreter + viewer imported): {base:.0f} MB")
    print(f"{'case':<14} {'disk MB':>8} {'wall s':>8} {'summary s':>10} {'CPU s':>6} {'peak MB':>8} {'x disk':>7} "
          f"{'x disk less const':>18}  result")
    with tempfile.TemporaryDirectory() as tmp:
        def show(name: str, disk: float, r: dict) -> None:
            rss, secs = r["rss_mb"], r["secs"]
            cols = (f"{rss:>8.0f} {rss / disk:>7.2f} {(rss - base) / disk:>18.2f}" if rss is not None and disk
                    else f"{rss if rss is not None else '-':>8} {'-':>7} {'-':>18}")
            secs_s = f"{secs:.2f}" if secs is not None else "-"
            cpu_s = f"{r['cpu']:.2f}" if r["cpu"] is not None else "-"
            print(f"{name:<14} {disk:>8.1f} {r['wall_s']:>8.2f} {secs_s:>10} {cpu_s:>6} {cols}  {r['result']}",
                  flush=True)

        for name in [c for c in args.cases if c in CASES]:
            path = os.path.join(tmp, name + (".json.gz" if name == "gzip_bomb" else ".json"))
            CASES[name](path, args.events)
            disk = os.stat(path).st_blocks * 512 / 1e6
            show(name, disk, run_case(path, args.timeout, root=args.root))
            os.unlink(path)
        fifo = os.path.join(tmp, "fifo.json")
        os.mkfifo(fifo)
        for name, path in (("fifo", fifo), ("dev_zero", "/dev/zero")):
            if name in args.cases:
                show(name, 0.0, run_case(path, 20.0, root=args.root))


if __name__ == "__main__":
    main()
