"""Instructions per training step of the real programs (tests/programs), recorded and not, counted by valgrind's
callgrind: a measure that does not move with the machine's load, for A/B comparisons of the profiler's overhead
that timings on a shared 2-core machine blur (their run-to-run spread is 5-15 %; these counts repeat to 0.01 %).

    python devtools/step_instructions.py --programs word_lm_transformer,makemore_gru --modes default,detailed

Per program and profiler mode, one run records steps [A, B) (the profiler's toggle_collection_dynamic, as
benchmarks/programs.py's toggled runs) and one leaves them unrecorded; callgrind counts only those steps (a tiny
extension, built here with gcc, toggles its collection from the runner's step hook). Prints thousands of
instructions per step and the recorded/unrecorded ratio. Instructions are not time: cache misses and the
allocator's page faults are not in them, so the time ratio is larger (benchmarks/programs.py measures that).

Needs valgrind with its headers (Debian: apt install valgrind) and gcc. Set TREE to time another checkout of
this repository (a git worktree of the baseline) with the same script: --tree /path/to/worktree.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

_TOGGLE_C = r"""
#include <Python.h>
#include <valgrind/callgrind.h>
static PyObject *toggle(PyObject *m, PyObject *a) { CALLGRIND_TOGGLE_COLLECT; Py_RETURN_NONE; }
static PyMethodDef M[] = {{"toggle", toggle, METH_NOARGS, "callgrind's collection on/off"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "cgtoggle", NULL, -1, M};
PyMODINIT_FUNC PyInit_cgtoggle(void) { return PyModule_Create(&D); }
"""

# the child: the runner with its step hook replaced (steps [A, B) recorded or not, callgrind collecting over them)
_CHILD = r"""
import sys
tree, helper, spec, mode, a, b = sys.argv[1:7]
sys.path[:0] = [tree, helper]
import cgtoggle
import tests.programs.runner as R
A, B = int(a), int(b)
def toggled_on(n):
    if n == A or n == B:
        cgtoggle.toggle()
    return mode == "on" and A <= n < B
R.toggled_on = toggled_on
R.main(spec)
"""


def build_helper(tmp: pathlib.Path) -> pathlib.Path:
    src = tmp / "cgtoggle.c"
    src.write_text(_TOGGLE_C)
    out = tmp / ("cgtoggle" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-I" + sysconfig.get_paths()["include"], str(src), "-o",
                    str(out)], check=True)
    return tmp


def count(tree: pathlib.Path, helper: pathlib.Path, spec: pathlib.Path, mode: str, a: int, b: int,
          out: pathlib.Path) -> int:
    """Instructions callgrind counted over steps [a, b) of one run."""
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(tree))
    # one thread per BLAS pool, fixed hashes and no address randomisation: the counts repeat run to run
    cmd = ["setarch", "-R", "valgrind", "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
           sys.executable, "-c", _CHILD, str(tree), str(helper), str(spec), mode, str(a), str(b)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=spec.parent)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"callgrind run failed ({' '.join(cmd[:6])} ...):\n{r.stderr[-3000:]}")
    return int(m.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", default="word_lm_lstm,word_lm_transformer,makemore_gru")
    ap.add_argument("--modes", default="default,detailed", help="profiler options: default, detailed")
    ap.add_argument("--first", type=int, default=20, help="the first counted step (after warm-up)")
    ap.add_argument("--steps", type=int, default=10, help="steps counted per run")
    ap.add_argument("--tree", default=str(ROOT), help="the checkout whose tensorlib and profiler run")
    ap.add_argument("--keep", default=None, help="a folder to keep callgrind's files in (PROGRAM-MODE-on|off.out, "
                    "for callgrind_annotate)")
    args = ap.parse_args(argv)
    tree = pathlib.Path(args.tree).resolve()
    sys.path.insert(0, str(tree))
    from tests.programs import harness
    a, b = args.first, args.first + args.steps
    print(f"{tree}: thousands of instructions per step (callgrind, steps {a}-{b - 1}), recorded / unrecorded")
    print(f"{'program':22s} {'mode':9s} {'unrecorded':>11s} {'recorded':>10s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        (tmp / "helper").mkdir()
        helper = build_helper(tmp / "helper")
        for name in args.programs.split(","):
            work = tmp / name
            sizes, prog_argv = harness.prepare(name, work, b + 4)
            for mode in args.modes.split(","):
                spec = work / f"spec-{mode}.json"
                spec.write_text(json.dumps({
                    "backend": "tensorlib", "workdir": str(work), "argv": prog_argv, "sizes": sizes, "rng": "native",
                    "init": None, "init_at": harness.INIT_AT.get(name), "threads": 1, "profile": mode,
                    "clock": "cpu", "toggle": True, "init_file": str(work / "init.npz"),
                    "out": str(work / f"result-{mode}.json")}))
                keep = pathlib.Path(args.keep) if args.keep else tmp
                keep.mkdir(parents=True, exist_ok=True)
                off = count(tree, helper, spec, "off", a, b, keep / f"{name}-{mode}-off.out") / args.steps / 1e3
                on = count(tree, helper, spec, "on", a, b, keep / f"{name}-{mode}-on.out") / args.steps / 1e3
                print(f"{name:22s} {mode:9s} {off:11.0f} {on:10.0f} {on / off:6.3f}x", flush=True)


if __name__ == "__main__":
    main()
