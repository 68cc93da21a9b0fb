"""The vendored real programs (tests/programs) on the GPU: each runs unchanged with the flag it already has for
an accelerator (`--accel`, no `--no-accel`, `--device=cuda`), once on torch and once on tensorlib over the real
CuPy, from torch's initial weights and one shared stream of random draws (as
devtools/torch_compat/test_programs_against_torch.py does on the CPU), several programs at a time.

    python devtools/gpu_programs.py [--programs a,b] [--steps N] [--jobs N] [--timeout S]

Prints per program: whether each library finished, the largest relative difference between their losses
step by step, and each one's median step time. Torch runs its own defaults (cuDNN convolutions may use TF32,
nanoGPT sets allow_tf32), so differences near 1e-3 are TF32's, not a defect; NaN or a failure is.
Exit status 1 if tensorlib failed where torch finished. Needs a GPU, CuPy, and torch with CUDA for the torch
column (without it, tensorlib's column alone, from its own initial weights).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safeio import write_bytes  # noqa: E402
from tests.programs import harness  # noqa: E402


def cuda_argv(name, argv):
    """The program's own command line with its accelerator switched on (the flag it already has)."""
    argv = [a for a in argv if a != "--no-accel"]          # mnist, vae: on unless --no-accel
    out = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--device=cpu":                              # nanoGPT (configurator)
            out.append("--device=cuda")
        elif a == "--device" and i + 1 < len(argv):          # makemore
            out += ["--device", "cuda"]
            skip = True
        else:
            out.append(a)
    if name.startswith("word_lm") or name in ("mnist_rnn", "dcgan"):
        out.append("--accel")
    return out


GPU_PROGRAMS = ["mnist", "vae", "word_lm_lstm", "word_lm_gru", "word_lm_rnn_tanh", "word_lm_transformer", "nanogpt",
                "makemore_transformer", "makemore_gru", "makemore_rnn", "makemore_mlp", "makemore_bow",
                "makemore_bigram", "mnist_rnn", "dcgan"]


def run_one(name, backend, work, steps, timeout, init, init_file=None):
    sizes, argv = harness.prepare(name, work, steps)
    write_bytes(work / "program.json", json.dumps({"sizes": sizes, "argv": cuda_argv(name, argv)}).encode())
    return harness.run(name, backend, work, steps, rng="shared", init=init, init_file=init_file, fresh=False,
                       timeout=timeout)


def compare(name, tmp, steps, timeout, with_torch):
    row = {"name": name}
    ref = None
    if with_torch:
        try:
            ref = run_one(name, "torch", tmp / name / "torch", steps, timeout, "dump")
            row["torch"] = ref
        except Exception as e:                      # noqa: BLE001 - reported in the table
            row["torch_error"] = str(e)[-1500:]
    try:
        init, init_file = ("load", tmp / name / "torch" / "init.npz") if ref is not None else (None, None)
        row["ours"] = run_one(name, "tensorlib", tmp / name / "tensorlib", steps, timeout, init, init_file)
    except Exception as e:                          # noqa: BLE001
        row["ours_error"] = str(e)[-3000:] or traceback.format_exc()
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default=",".join(GPU_PROGRAMS))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--log", help="also write every failure's output to this file")
    args = ap.parse_args(argv)
    import tensorlib as tl
    if not tl.cuda.is_available():
        print("CUDA is not available here: this check needs an NVIDIA GPU with CuPy.")
        return 2
    try:
        import torch
        with_torch = torch.cuda.is_available()
    except ImportError:
        with_torch = False
    names = [n for n in args.programs.split(",") if n]
    tmp = Path(tempfile.mkdtemp(prefix="gpu-programs-"))
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda n: compare(n, tmp, args.steps, args.timeout, with_torch), names))
    print(f"real programs on {tl.cuda.get_device_name(0)}, {args.steps} steps, shared random draws"
          f"{', from torch initial weights' if with_torch else ' (no CUDA torch: tensorlib alone)'}")
    print(f"{'program':<22} {'tensorlib':<10} {'torch':<8} {'losses':>7} {'max rel diff':>13} "
          f"{'tl ms/step':>11} {'torch ms/step':>14}")
    failed = False
    log = []
    for r in rows:
        ours, ref = r.get("ours"), r.get("torch")
        diff = ms_ours = ms_ref = "-"
        n = 0
        if ours and ref and len(ours["losses"]) == len(ref["losses"]):
            a, b = np.asarray(ours["losses"], float), np.asarray(ref["losses"], float)
            n = len(a)
            diff = f"{float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))):.1e}" if n else "-"
        elif ours:
            n = len(ours["losses"])
            if ref:
                diff = f"{len(ours['losses'])} vs {len(ref['losses'])}"
        if ours and ours.get("step_s"):
            ms_ours = f"{statistics.median(ours['step_s'][2:] or ours['step_s']) * 1e3:.1f}"
        if ref and ref.get("step_s"):
            ms_ref = f"{statistics.median(ref['step_s'][2:] or ref['step_s']) * 1e3:.1f}"
        if ours and not np.all(np.isfinite(ours["losses"])):
            diff += " NaN"
        st_o = "ok" if ours else "FAILED"
        st_t = "ok" if ref else ("FAILED" if with_torch else "-")
        failed |= ours is None and (ref is not None or not with_torch)
        print(f"{r['name']:<22} {st_o:<10} {st_t:<8} {n:>7} {diff:>13} {ms_ours:>11} {ms_ref:>14}")
        for key in ("ours_error", "torch_error"):
            if key in r:
                log.append(f"=== {r['name']} {key}\n{r[key]}\n")
    for entry in log:
        first = [ln for ln in entry.splitlines() if ln.strip()][-1:]
        print(entry.splitlines()[0], "::", first[0][:300] if first else "")
    if args.log:
        write_bytes(Path(args.log), "\n".join(log).encode())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
