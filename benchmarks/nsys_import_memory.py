"""Peak memory of `python -m profiler import-nsys` on a large synthetic nsys SQLite export (issue 21).

The export holds N kernel launches: a cudaLaunchKernel runtime row and a kernel row each (so 2N events
and N flows in the trace). The import runs in a fresh process that reports its own VmHWM; the table
gives it beside the sizes of the export and of the trace written.

    python benchmarks/nsys_import_memory.py --launches 300000
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_CHILD = """
import sys
from profiler._cli import main
rc = main(["import-nsys", sys.argv[1], "-o", sys.argv[2]])
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print("@@", rc, hwm / 1024, file=sys.stderr)
"""
_IMPORTS = """
import profiler._cli, profiler.nsys.convert, orjson
print(next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")) / 1024)
"""

PID, TID = 4242, 4243
GTID, GPID = (PID << 24) | TID, PID << 24


def make_export(path: str, n: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE META_DATA_EXPORT (name TEXT NOT NULL, value TEXT)")
    db.execute("CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, "
               "eventClass INTEGER NOT NULL, globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, "
               "returnValue INTEGER NOT NULL, callchainId INTEGER)")
    db.execute("CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, "
               "deviceId INTEGER NOT NULL, contextId INTEGER NOT NULL, streamId INTEGER NOT NULL, "
               "correlationId INTEGER, globalPid INTEGER, demangledName INTEGER NOT NULL, "
               "shortName INTEGER NOT NULL, registersPerThread INTEGER NOT NULL, gridX INTEGER NOT NULL, "
               "gridY INTEGER NOT NULL, gridZ INTEGER NOT NULL, blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, "
               "blockZ INTEGER NOT NULL, staticSharedMemory INTEGER NOT NULL, dynamicSharedMemory INTEGER NOT NULL)")
    db.executemany("INSERT INTO StringIds VALUES (?, ?)",
                   [(1, "cudaLaunchKernel_v7000"), (2, "void add_kernel<float>(float*, float const*, int)"),
                    (3, "add_kernel")])
    db.execute("INSERT INTO META_DATA_EXPORT VALUES ('EXPORT_SCHEMA_VERSION', '3.24.14')")
    db.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?, ?, 1, ?, ?, 1, 0, NULL)",
                   ((1000 * i, 1000 * i + 400, GTID, i) for i in range(n)))
    db.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?, ?, 0, 1, 7, ?, ?, 2, 3, 16, 2, 1, 1, 128, 1, "
                   "1, 0, 256)", ((1000 * i + 500, 1000 * i + 900, i, GPID) for i in range(n)))
    db.commit()
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=300_000)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        db, out = os.path.join(tmp, "big.sqlite"), os.path.join(tmp, "big.pt.trace.json")
        make_export(db, args.launches)
        base = float(subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True,
                                    env=env).stdout)
        res = subprocess.run([sys.executable, "-c", _CHILD, db, out], capture_output=True, text=True, env=env)
        line = [ln for ln in res.stderr.splitlines() if ln.startswith("@@")]
        if not line:
            raise SystemExit(res.stderr[-2000:])
        _, rc, hwm = line[-1].split()
        db_mb, out_mb = os.path.getsize(db) / 2**20, os.path.getsize(out) / 2**20
        print(f"{args.launches} launches: export {db_mb:.0f} MiB, trace written {out_mb:.0f} MiB (rc {rc})")
        print(f"imports only {base:.0f} MiB; import-nsys peak {float(hwm):.0f} MiB = "
              f"{float(hwm) / out_mb:.2f}x the trace ({(float(hwm) - base) / out_mb:.2f}x less imports)")


if __name__ == "__main__":
    main()
