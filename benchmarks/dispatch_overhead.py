"""Per-op cost of a tiny op (add on 8 float32 elements) through tensorlib's dispatcher, against NumPy
(or CuPy), a bare Python wrapper and torch eager, measured in the same run.

    python benchmarks/dispatch_overhead.py [--device cpu|cuda] [--n 200000] [--quick] [--cpu-time]

--cpu-time times with this thread's CPU clock (time.thread_time) instead of the wall clock: on a shared
machine, time spent descheduled then does not count (use a smaller --n, the clock is coarser).
The last line compares the case with an input that requires grad against torch's same case.
"""
from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tensorlib as tl
from tensorlib import dispatch


TIMER = timeit.default_timer


def per_call_us(fn, n, repeat=7):
    fn()
    return min(timeit.repeat(fn, number=n, repeat=repeat, timer=TIMER)) / n * 1e6


class _Wrapped:
    __slots__ = ("d",)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    ap.add_argument("--cpu-time", action="store_true", help="time with the thread's CPU clock (shared machine)")
    args = ap.parse_args(argv)
    global TIMER
    if args.cpu_time:
        TIMER = time.thread_time
    n = 5_000 if args.quick else args.n
    dev = args.device
    if dev == "cuda" and not tl.cuda.is_available():
        print("CUDA is not available: nothing to measure on the GPU.")
        return 0
    xp = np if dev == "cpu" else tl._device.cupy()
    na, nb = xp.ones(8, dtype=np.float32), xp.ones(8, dtype=np.float32)
    wa, wb = _Wrapped(), _Wrapped()
    wa.d, wb.d = na, nb

    def wrapper():
        r = object.__new__(_Wrapped)
        r.d = wa.d + wb.d
        return r

    a, b = tl.ones(8, device=dev), tl.ones(8, device=dev)
    ag = tl.ones(8, device=dev, requires_grad=True)
    rows = [("numpy" if dev == "cpu" else "cupy", per_call_us(lambda: na + nb, n)),
            ("bare python wrapper", per_call_us(wrapper, n)),
            ("tensorlib (no grad)", per_call_us(lambda: a + b, n)),
            ("tensorlib (input requires grad)", per_call_us(lambda: ag + b, n))]

    class NoOp(dispatch.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            return None

    h = dispatch.add_hook(NoOp())
    try:
        rows.append(("tensorlib + one no-op hook", per_call_us(lambda: a + b, n)))
    finally:
        dispatch.remove_hook(h)
    try:
        import torch
        torch.set_num_threads(1)
        ta = torch.ones(8, device=dev)
        tb = torch.ones(8, device=dev)
        tg = torch.ones(8, device=dev, requires_grad=True)
        rows.append(("torch eager", per_call_us(lambda: ta + tb, n)))
        rows.append(("torch eager (input requires grad)", per_call_us(lambda: tg + tb, n)))
        torch_us = rows[-2][1]
        torch_grad_us = rows[-1][1]
    except ImportError:
        torch_us = torch_grad_us = None
    base = rows[0][1]
    print(f"add on 8 float32 elements, {dev}, best of 7 x {n} calls")
    print(f"{'case':36s} {'us/op':>8s} {'x ' + rows[0][0]:>10s} {'x torch':>8s}")
    for name, us in rows:
        vs_t = f"{us / torch_us:8.2f}" if torch_us else "     n/a"
        print(f"{name:36s} {us:8.3f} {us / base:10.2f} {vs_t}")
    if torch_grad_us:
        print(f"input requires grad: tensorlib {rows[3][1]:.3f} us / torch {torch_grad_us:.3f} us = "
              f"{rows[3][1] / torch_grad_us:.2f}x (target <= 1.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
