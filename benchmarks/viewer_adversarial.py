"""The viewer on hostile or merely unlucky inputs: wall time and peak RSS of `python -m viewer summary`.

Each case runs in a fresh process (so peak RSS is that case's own) with a time limit; the figures are
what issue 21 asks for: nesting O(n log n) (1M identical events in one deep stack summarised in <= 5 s),
memory <= 3x the input's size on disk plus a constant, and a clear one-line error, quickly, for what
cannot be a trace (a gzip bomb, a sparse file of zeros, a FIFO, /dev/zero).

    python benchmarks/viewer_adversarial.py                  # every case, the 1M-event ones included
    python benchmarks/viewer_adversarial.py --events 160000  # smaller stacks
    python benchmarks/viewer_adversarial.py --cases deep_stack unclosed_b
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
t = time.perf_counter()
rc = main(sys.argv[1:])
sys.stdout.flush()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print("@@", rc, time.perf_counter() - t, hwm / 1024, file=sys.stderr)
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


CASES = {"deep_stack": deep_stack, "unclosed_b": unclosed_b, "staircase": staircase,
         "gzip_bomb": gzip_bomb, "sparse_zeros": sparse_zeros, "big_arg": big_arg}


def run_case(path: str, timeout: float, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD, "summary", path, *extra], capture_output=True,
                             text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"wall_s": time.perf_counter() - t, "result": f"over {timeout:.0f} s (killed)", "rss_mb": None}
    wall = time.perf_counter() - t
    tail = [ln for ln in res.stderr.splitlines() if ln.startswith("@@")]
    err = [ln for ln in res.stderr.splitlines() if not ln.startswith("@@")]
    if not tail:
        return {"wall_s": wall, "result": (err[-1] if err else f"rc {res.returncode}")[:100], "rss_mb": None}
    _, rc, _secs, rss = tail[-1].split()
    first = (err[0] if err else res.stdout.splitlines()[2] if len(res.stdout.splitlines()) > 2 else "")
    return {"wall_s": wall, "result": f"rc {rc}: {first[:90]}", "rss_mb": float(rss)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the stack-shaped cases")
    ap.add_argument("--cases", nargs="*", default=[*CASES, "fifo", "dev_zero"])
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; `python -m viewer summary` per case")
    print(f"{'case':<14} {'disk MB':>8} {'wall s':>8} {'peak RSS MB':>12}  result")
    with tempfile.TemporaryDirectory() as tmp:
        for name in [c for c in args.cases if c in CASES]:
            path = os.path.join(tmp, name + (".json.gz" if name == "gzip_bomb" else ".json"))
            CASES[name](path, args.events)
            disk = os.stat(path).st_blocks * 512 / 1e6
            r = run_case(path, args.timeout)
            rss = f"{r['rss_mb']:.0f}" if r["rss_mb"] is not None else "-"
            print(f"{name:<14} {disk:>8.1f} {r['wall_s']:>8.2f} {rss:>12}  {r['result']}", flush=True)
            os.unlink(path)
        fifo = os.path.join(tmp, "fifo.json")
        os.mkfifo(fifo)
        for name, path in (("fifo", fifo), ("dev_zero", "/dev/zero")):
            if name in args.cases:
                r = run_case(path, 20.0)
                rss = f"{r['rss_mb']:.0f}" if r["rss_mb"] is not None else "-"
                print(f"{name:<14} {0:>8.1f} {r['wall_s']:>8.2f} {rss:>12}  {r['result']}", flush=True)


if __name__ == "__main__":
    main()
