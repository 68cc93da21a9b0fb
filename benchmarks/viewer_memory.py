"""Peak memory of loading a trace of many tiny events, as a multiple of its size on disk (issue 21).

Each measurement runs in a fresh process and reads its own VmHWM (peak resident set): `python -m viewer
summary FILE` (the whole load, then the ops table), `json.load` of the same file (the baseline any
dict-per-event reader pays), and the interpreter with the viewer imported and nothing loaded (the
constant). With `--compare DIR`, the viewer of another checkout (say the main branch) is measured on the
same file in the same run: before and after side by side.

    python benchmarks/viewer_memory.py                       # 1M events, about 69 MB
    python benchmarks/viewer_memory.py --events 200000 --compare /work/main
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

_HWM = """
def _hwm():
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")) / 1024
"""
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
_SUMMARY = _HWM + """
import sys, io, contextlib, time
from viewer.__main__ import main
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["summary", sys.argv[1]])
print(rc, time.perf_counter() - t, _hwm())
"""
_JSON = _HWM + """
import sys, json, time
t = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    doc = json.load(f)
print(0, time.perf_counter() - t, _hwm())
"""
_IMPORTS = _HWM + """
import time
t = time.perf_counter()
import viewer.model, viewer.summary, viewer.__main__
print(0, time.perf_counter() - t, _hwm())
"""


def tiny_events(path: str, n: int) -> None:
    """n X events of 68 bytes each, nested in one another (same ts and dur)."""
    one = b'{"ph":"X","name":"op","cat":"cpu_op","pid":1,"tid":1,"ts":0,"dur":1}'
    with open(path, "wb") as f:
        f.write(b"[" + b",".join([one] * n) + b"]")


def measure(code: str, path: str, root: str) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=root)
    res = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, env=env,
                         cwd=tempfile.gettempdir())
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    rc, secs, mb = res.stdout.split()[-3:]
    return float(secs), float(mb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--compare", metavar="DIR", help="another checkout whose viewer is measured too")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; peak RSS (VmHWM) per fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny_events.json")
        tiny_events(path, args.events)
        disk = os.path.getsize(path) / 2**20
        print(f"{args.events} events, {disk:.1f} MiB on disk")
        print(f"{'what':<34} {'seconds':>8} {'peak MiB':>9} {'x disk':>7} {'x disk, less imports':>21}")
        rows = [("json.load (dicts, baseline)", _JSON, ROOT)]
        if args.compare:
            rows.append((f"summary, {os.path.basename(os.path.abspath(args.compare))} (before)", _SUMMARY,
                         args.compare))
        rows.append(("summary, this checkout", _SUMMARY, ROOT))
        _, base = measure(_IMPORTS, path, ROOT)
        print(f"{'imports only (the constant)':<34} {'':>8} {base:>9.0f}")
        for label, code, root in rows:
            t = time.perf_counter()
            secs, mb = measure(code, path, root)
            del t
            print(f"{label:<34} {secs:>8.2f} {mb:>9.0f} {mb / disk:>7.2f} {(mb - base) / disk:>21.2f}")


if __name__ == "__main__":
    main()
