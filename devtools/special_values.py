"""Values and gradients of ops at special points, tensorlib against torch: NaN, infinities, signed zeros, ties,
an activation's bounds, empty slices. Each case runs one function on both libraries (float32 input requiring grad,
the output's backward with ones) and compares values and gradients (NaN where NaN, infinities equal, finite values
within rtol 2e-6 / atol 1e-7); a case that raises must raise in both. Prints the cases that differ and, for each,
the inputs where they do. Needs torch installed (a devtool, never a dependency).

torch's own answer at a NaN can depend on where the element sits: its vectorised loops and their scalar tails
disagree for hardtanh_backward and elu_backward (0 / NaN against g). Every element of a real tensor but the last
few takes the vectorised loop, which tensorlib follows; inputs of 17 elements put the NaN there.
Known differences (session 21): gelu's value and gelu_tanh's gradient at -3 (float32's 1 + erf and 1 + tanh cancel:
a few ulps of 1, relative 7e-5 there) and kl_div's gradient through a target of 0 (torch's is NaN by xlogy's rule,
tensorlib's 0).
Usage: python devtools/special_values.py [--cases substring]
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorlib as tl  # noqa: E402

NAN, INF = math.nan, math.inf
# 17 points: the NaN at index 14 falls in torch's vectorised loop (8 floats a vector), not its scalar tail
POINTS = [-7.0, -3.0, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 3.0, 6.0, 7.0, 25.0, NAN, INF, -INF]
ROWS = [-3.0, -1.0, -0.0, 0.0, 0.5, 2.0, NAN, INF, -INF, 1.0, 1.0, 4.0]      # 3 x 4, ties in the last row


def _cases():
    """name -> (input values, f(F, L, x)) with L the library and F its nn.functional."""
    p, r = POINTS, ROWS
    c = {
        "relu": (p, lambda F, L, x: F.relu(x)), "relu6": (p, lambda F, L, x: F.relu6(x)),
        "hardtanh": (p, lambda F, L, x: F.hardtanh(x)), "threshold": (p, lambda F, L, x: F.threshold(x, 0.5, -2.0)),
        "elu": (p, lambda F, L, x: F.elu(x)), "selu": (p, lambda F, L, x: F.selu(x)),
        "celu": (p, lambda F, L, x: F.celu(x, 0.7)), "leaky_relu": (p, lambda F, L, x: F.leaky_relu(x, 0.1)),
        "gelu": (p, lambda F, L, x: F.gelu(x)), "gelu_tanh": (p, lambda F, L, x: F.gelu(x, approximate="tanh")),
        "silu": (p, lambda F, L, x: F.silu(x)), "mish": (p, lambda F, L, x: F.mish(x)),
        "softplus": (p, lambda F, L, x: F.softplus(x)), "softsign": (p, lambda F, L, x: F.softsign(x)),
        "hardshrink": (p, lambda F, L, x: F.hardshrink(x, 0.5)),
        "softshrink": (p, lambda F, L, x: F.softshrink(x, 0.5)),
        "hardsigmoid": (p, lambda F, L, x: F.hardsigmoid(x)), "hardswish": (p, lambda F, L, x: F.hardswish(x)),
        "logsigmoid": (p, lambda F, L, x: F.logsigmoid(x)), "sigmoid": (p, lambda F, L, x: x.sigmoid()),
        "tanh": (p, lambda F, L, x: x.tanh()), "clamp": (p, lambda F, L, x: x.clamp(-1, 1)),
        "clamp_min": (p, lambda F, L, x: x.clamp(min=0)), "abs": (p, lambda F, L, x: x.abs()),
        "sign_times_x": (p, lambda F, L, x: x.sign() * x), "maximum_with_0": (p, lambda F, L, x: x.maximum(x * 0)),
        "smooth_l1": (p, lambda F, L, x: F.smooth_l1_loss(x, x * 0, reduction="none")),
        "huber": (p, lambda F, L, x: F.huber_loss(x, x * 0, reduction="none")),
        "l1": (p, lambda F, L, x: F.l1_loss(x, x * 0, reduction="none")),
        "mse": (p, lambda F, L, x: F.mse_loss(x, x * 0, reduction="none")),
        "bce_with_logits": (p, lambda F, L, x: F.binary_cross_entropy_with_logits(x, (x > 0).float(),
                                                                                 reduction="none")),
        "exp": (p, lambda F, L, x: x.exp()), "log_abs": (p, lambda F, L, x: x.abs().log()),
        "sqrt_abs": (p, lambda F, L, x: x.abs().sqrt()), "reciprocal": (p, lambda F, L, x: x.reciprocal()),
        "pow2": (p, lambda F, L, x: x ** 2), "pow_x_x": (p, lambda F, L, x: x.abs().pow(x)),
        "atan2": (p, lambda F, L, x: L.atan2(x, x * 0)), "erf": (p, lambda F, L, x: x.erf()),
        "fmod": (p, lambda F, L, x: x.fmod(2.0)), "remainder": (p, lambda F, L, x: x.remainder(2.0)),
        "max_all": (r, lambda F, L, x: x.max().reshape(1)), "min_all": (r, lambda F, L, x: x.min().reshape(1)),
        "max_dim": (r, lambda F, L, x: x.reshape(3, 4).max(1)[0]), "amax": (r, lambda F, L, x: x.reshape(3, 4).amax(1)),
        "sum": (r, lambda F, L, x: x.sum().reshape(1)), "prod": (r, lambda F, L, x: x.reshape(3, 4).prod(1)),
        "cumsum": (r, lambda F, L, x: x.cumsum(0)), "cumprod": (r, lambda F, L, x: x.cumprod(0)),
        "logsumexp": (r, lambda F, L, x: x.reshape(3, 4).logsumexp(1)),
        "softmax": (r, lambda F, L, x: F.softmax(x.reshape(3, 4), 1)),
        "log_softmax": (r, lambda F, L, x: F.log_softmax(x.reshape(3, 4), 1)),
        "norm": (r, lambda F, L, x: x.reshape(3, 4).norm(dim=1)), "norm_3": ([0.0, 0.0], lambda F, L, x: x.norm(p=3)),
        "std_constant": ([2.0, 2.0, 2.0], lambda F, L, x: x.std()), "sort": (r, lambda F, L, x: x.sort()[0]),
        "topk": (r, lambda F, L, x: x.topk(3)[0]),
        "layer_norm": (r, lambda F, L, x: F.layer_norm(x.reshape(3, 4), (4,))),
        "kl_div": (r, lambda F, L, x: F.kl_div(x, x.sigmoid(), reduction="none")),
        "cross_entropy": (r, lambda F, L, x: F.cross_entropy(x.reshape(3, 4), L.tensor([0, 1, 2]), reduction="none")),
        "nll_all_ignored": ([1.0, 0.0, 0.0, 1.0], lambda F, L, x: F.nll_loss(x.reshape(2, 2), L.tensor([-100, -100]))),
        "max_pool1d": (r, lambda F, L, x: F.max_pool1d(x.reshape(1, 1, 12), 2)),
        "avg_pool1d": (r, lambda F, L, x: F.avg_pool1d(x.reshape(1, 1, 12), 2)),
        "normalize_zero_row": ([0.0, 0.0, 3.0, 4.0], lambda F, L, x: F.normalize(x.reshape(2, 2))),
        "erfinv": ([-1.0, -0.5, 0.0, 0.5, 0.999, 1.0, 1.5, NAN], lambda F, L, x: x.erfinv()),
        "copysign": (p, lambda F, L, x: L.copysign(x, x * 0 - 1)),
        "clamp_by_tensor": (p, lambda F, L, x: L.clamp(x, min=x * 0)),
    }
    return c


def _same(u, v):
    if u is None or v is None:
        return u is None and v is None
    if u.shape != v.shape:
        return False
    fin = np.isfinite(u) & np.isfinite(v)
    return (np.array_equal(np.isnan(u), np.isnan(v))
            and np.array_equal(np.where(np.isinf(u), u, 0), np.where(np.isinf(v), v, 0))
            and np.allclose(u[fin], v[fin], rtol=2e-6, atol=1e-7))


def _run(lib, values, f):
    x = lib.tensor(values, requires_grad=True)
    try:
        y = f(lib.nn.functional, lib, x)
        y.backward(lib.ones_like(y))
    except Exception as e:      # noqa: BLE001 - either library's error is a result to compare
        return f"{type(e).__name__}: {e}"
    g = None if x.grad is None else x.grad.numpy().astype(np.float64)
    return y.detach().numpy().astype(np.float64).reshape(-1), g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="only cases whose name contains this")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("special_values.py compares against torch: pip install torch") from None
    cases = {n: c for n, c in _cases().items() if args.cases in n}
    bad = 0
    for name, (values, f) in cases.items():
        a, b = _run(tl, values, f), _run(torch, values, f)
        if isinstance(a, str) or isinstance(b, str):
            if isinstance(a, str) != isinstance(b, str):
                bad += 1
                print(f"{name}: tensorlib {'raised ' + a if isinstance(a, str) else 'ran'}, torch "
                      f"{'raised ' + b if isinstance(b, str) else 'ran'}")
            continue
        (ya, ga), (yb, gb) = a, b
        if _same(ya, yb) and _same(ga, gb):
            continue
        bad += 1
        print(f"{name}: values {'equal' if _same(ya, yb) else 'DIFFER'}, gradients "
              f"{'equal' if _same(ga, gb) else 'DIFFER'}")
        for i, v in enumerate(values):
            vy = i < len(ya) and i < len(yb) and not _same(ya[i:i + 1], yb[i:i + 1])
            vg = ga is not None and gb is not None and not _same(ga[i:i + 1], gb[i:i + 1])
            if vy or vg:
                print(f"    x={v!r}: tensorlib y={ya[i] if i < len(ya) else '-'} g={ga[i] if ga is not None else '-'}"
                      f" | torch y={yb[i] if i < len(yb) else '-'} g={gb[i] if gb is not None else '-'}")
    print(f"{bad} of {len(cases)} cases differ")


if __name__ == "__main__":
    main()
