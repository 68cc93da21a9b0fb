"""The backward side of the profiled-names sweep (test_profiled_names_sweep_against_torch.py): for each function both
libraries accept with the sweep's argument patterns, the autograd nodes a backward pass of its float output runs
(the `autograd::engine::evaluate_function: <node>` events of a profile) and the ops each node records directly (less
torch's internal helpers), tensorlib against torch 2.13; prints the functions whose nodes or ops differ. A script,
not a test (many differ still: a formula's inner ops are tensorlib's own where torch's gave the same values):
PYTHONPATH=.:devtools python devtools/torch_compat/backward_sweep.py [space.name ...]"""
from __future__ import annotations

import pathlib
import sys
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import test_profiled_names_sweep_against_torch as S  # noqa: E402

import profiler  # noqa: E402

torch, tl = S.torch, S.tl
_NODE = "autograd::engine::evaluate_function: "


def _grad_args(lib, space, k):
    """The pattern's float32 tensors as fresh leaves that require grad."""
    out = []
    for a in S._patterns(space, lib)[k]:
        if isinstance(a, lib.Tensor) and a.dtype == lib.float32:
            a = a.detach().clone().requires_grad_()
        elif isinstance(a, list):
            a = [t.detach().clone().requires_grad_() for t in a]
        out.append(a)
    return tuple(out)


def _depth_under(e, node):
    """How deep e lies under node (1: a child), or 0 where it is not under it."""
    d, q = 1, e.cpu_parent
    while q is not None and q is not node:
        q, d = q.cpu_parent, d + 1
    return d if q is node else 0


def backward_nodes(lib, space, name, k):
    """[(node name, (the ops it records directly, less torch's helpers))] of a backward pass of the function's
    float32 output (summed), AccumulateGrad left out; None where there is no such output."""
    args = _grad_args(lib, space, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = S._call(lib, space, name, k, args)
    if isinstance(out, (tuple, list)):
        out = next((o for o in out if isinstance(o, lib.Tensor) and o.requires_grad), None)
    if not isinstance(out, lib.Tensor) or not out.requires_grad or out.dtype != lib.float32:
        return None
    loss = out.sum() if out.dim() else out
    with (torch.profiler if lib is torch else profiler).profile() as p:
        loss.backward()
    evs = sorted(p.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    nodes = []
    for e in evs:
        if e.name.startswith(_NODE) and not e.name.endswith("AccumulateGrad"):
            ops = tuple(c.name.replace("aten::", "") for c in evs
                        if c.name not in S.HELPERS and _depth_under(c, e) == 2)   # (under the node's own event)
            nodes.append((e.name[len(_NODE):], ops))
    return nodes


NOT_COMPARED = "not compared"


def difference(space, name):
    """Why ours differs from torch's backward of space.name (its nodes, or the ops in them), None where they agree,
    NOT_COMPARED where there is nothing to compare (no pattern, or no float output requiring grad in torch)."""
    k = S.pattern(space, name)
    if k is None:
        return NOT_COMPARED
    try:
        theirs = backward_nodes(torch, space, name, k)
    except Exception:   # noqa: BLE001 - torch has no backward for it with these arguments: not compared
        return NOT_COMPARED
    if theirs is None:
        return NOT_COMPARED
    try:
        ours = backward_nodes(tl, space, name, k)
    except Exception as e:  # noqa: BLE001 - reported, not raised: the sweep goes on
        return f"tensorlib raised {type(e).__name__}: {e}"[:160]
    if ours is None:
        return "tensorlib's output has no gradient"
    if [n for n, _ in ours] != [n for n, _ in theirs]:
        return f"nodes {[n for n, _ in ours]} vs torch's {[n for n, _ in theirs]}"
    if ours != theirs:
        return f"ops {ours} vs torch's {theirs}"
    return None


if __name__ == "__main__":
    only = set(sys.argv[1:])
    rows = [(f"{s}.{n}", difference(s, n)) for s, n in S.CASES if not only or f"{s}.{n}" in only]
    rows = [(n, d) for n, d in rows if d is not NOT_COMPARED]
    bad = [(n, d) for n, d in rows if d]
    nodes = sum(1 for _, d in bad if d.startswith("nodes"))
    print(f"compared {len(rows)}, differ {len(bad)} ({nodes} in their nodes, the others in the ops inside)")
    for n, d in bad:
        print(f"| {n} | {d} |")
