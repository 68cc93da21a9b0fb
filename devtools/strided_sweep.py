"""Every registered op's sample call (tests/tensorlib/op_cases*.py) rerun with non-contiguous float inputs.

Each float tensor argument is replaced, one layout at a time, by an equal-valued tensor of another layout:

- ``t``:      a transposed copy transposed back (last two dims; strides reversed),
- ``step``:   every other element along dim 0 of a tensor twice as long (a stride of 2),
- ``flip``:   a negative-stride NumPy flip of a flip (what an array from NumPy can hold; torch cannot),
- ``expand``: a 0-stride broadcast along dim 0 (its values made equal along that dim, in both runs),

either as a leaf whose data has that layout (``leaf``) or as a view op of a contiguous leaf (``view``: the
gradient then passes the view's backward). The outputs, the inputs' values after the call (in-place ops,
out=) and the gradients (of the sum of the float outputs, each weighted by its position) must equal the
contiguous run's; an error must be the same error.  An in-place write into an expanded input must be torch's
"unsupported operation: more than one element of the written-to tensor refers to a single memory location".

    PYTHONPATH=. python devtools/strided_sweep.py [NAME ...] [--layouts t,step,flip,expand] [--modes leaf,view]
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

import numpy as np

import tensorlib as tl

LAYOUTS = ("t", "step", "flip", "expand")
MODES = ("leaf", "view")
OVERLAP = "unsupported operation: more than one element of the written-to tensor refers to a single memory location"


_MODS: list = []


def _reseed(seed):
    if not _MODS:
        import tests.tensorlib as pkg
        from tests.tensorlib import op_cases
        _MODS.append(op_cases)
        _MODS.extend(importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, "tests.tensorlib.")
                     if m.name.rsplit(".", 1)[-1].startswith("op_cases_"))
    for m in _MODS:
        if isinstance(getattr(m, "_rng", None), np.random.Generator):
            m._rng = np.random.default_rng(seed)
    tl.manual_seed(seed)
    np.random.seed(seed)


def _flat(x):
    if isinstance(x, tl.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _flat(v)]
    return []


def _is_float(t):
    return (isinstance(t, tl.Tensor) and type(t._data) is np.ndarray and t._data.dtype.kind in "fc"
            and not getattr(t, "is_sparse", False) and type(t) in (tl.Tensor, tl.nn.Parameter))


def applicable(layout, a):
    if layout == "t":
        return a.ndim >= 2 and a.shape[-1] > 1 and a.shape[-2] > 1
    if layout in ("step", "expand"):
        return a.ndim >= 1 and a.shape[0] > 1
    if layout == "flip":
        return a.ndim >= 1 and a.size > 1
    raise ValueError(layout)


def _layout_array(layout, a):
    """An array equal to `a` (for expand: to its values broadcast from index 0) in the layout."""
    if layout == "t":
        return np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    if layout == "step":
        d = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
        d[::2] = a
        d[1::2] = 7.25
        return d[::2]
    if layout == "flip":
        axes = tuple(range(a.ndim))
        return np.flip(np.flip(a, axes).copy(), axes)
    if layout == "expand":
        return np.broadcast_to(a[:1], a.shape)
    raise ValueError(layout)


def _layout_view(layout, leaf_data, rg):
    """A contiguous leaf and a view of it in the layout: (leaf, view, leaf-grad -> view-shaped grad)."""
    a = leaf_data
    if layout == "t":
        L = tl.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), requires_grad=rg)
        return L, L.transpose(-1, -2), (lambda g: np.swapaxes(g, -1, -2))
    if layout == "step":
        d = np.full((2 * a.shape[0],) + a.shape[1:], 7.25, a.dtype)
        d[::2] = a
        L = tl.tensor(d, requires_grad=rg)
        return L, L[::2], (lambda g: g[::2])
    if layout == "flip":
        axes = list(range(a.ndim))
        L = tl.tensor(np.flip(a, axes).copy(), requires_grad=rg)
        return L, L.flip(axes), (lambda g: np.flip(g, axes))
    if layout == "expand":
        L = tl.tensor(a[:1].copy(), requires_grad=rg)
        return L, L.expand(*a.shape), (lambda g: np.broadcast_to(g, a.shape))
    raise ValueError(layout)


def _snap(x):
    if x is None:
        return None
    d = x._data if isinstance(x, tl.Tensor) else x
    if type(d) is not np.ndarray:
        return repr(type(d))
    return (d.shape, str(d.dtype), np.array(d, copy=True))


def _replace(inputs, fn):
    """inputs with each float tensor (at top level or in a list/tuple) replaced by fn(index, tensor)."""
    k = [0]

    def rec(v):
        if _is_float(v):
            i = k[0]
            k[0] += 1
            return fn(i, v)
        if isinstance(v, list):
            return [rec(u) for u in v]
        if isinstance(v, tuple):
            return tuple(rec(u) for u in v)
        return v
    return [rec(v) for v in inputs]


def _run(build, seed, layout=None, mode=None, which=None, expand_values=False):
    """Run one case; which: the index of the float input to relayout (None: none). Returns a result dict."""
    _reseed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn, inputs = build()
    grads_of = []     # (tensor to differentiate against, map to the original input's shape)
    keep = []         # tensors whose values after the call are compared
    state = {"applied": False}

    def sub(i, t):
        data = t._data
        if expand_values and i == which and applicable("expand", data):
            data = np.ascontiguousarray(np.broadcast_to(data[:1], data.shape))
        rg = t.requires_grad
        if i != which or layout is None or not applicable(layout, data):
            if data is not t._data:
                nt = tl.tensor(data, requires_grad=rg)
            else:
                nt = t
            if rg and nt.is_leaf:
                grads_of.append((nt, None))
            keep.append((nt, None))
            return nt
        state["applied"] = True
        if mode == "leaf":
            arr = _layout_array(layout, data)
            nt = tl.from_numpy(arr)
            if arr.dtype != data.dtype:
                raise AssertionError
            if rg:
                nt.requires_grad_()
            if rg:
                grads_of.append((nt, None))
            keep.append((nt, None))
            return nt
        L, v, back = _layout_view(layout, data, rg)
        if rg:
            state["grad_index"] = len(grads_of)
            grads_of.append((L, None if layout == "expand" else back))
        keep.append((L, back))
        return v

    if which is not None or expand_values:
        inputs = _replace(list(inputs), sub)
    else:
        def plain(i, t):
            if t.requires_grad and t.is_leaf:
                grads_of.append((t, None))
            keep.append((t, None))
            return t
        inputs = _replace(list(inputs), plain)
    if which is not None and layout is not None and not state["applied"]:
        return None
    res = {}
    if "grad_index" in state and layout == "expand":
        res["expand_grad_index"] = state["grad_index"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(*inputs)
    except Exception as e:      # noqa: BLE001
        return {"raised": (type(e).__name__, str(e).split("\n")[0][:200])}
    outs = _flat(out)
    res["out"] = [_snap(t) for t in outs]
    after = []
    for t, back in keep:
        d = t._data
        if type(d) is np.ndarray:
            after.append(np.array(back(d) if back is not None else d, copy=True))
    res["inputs_after"] = after
    diff = [t for t in outs if t.requires_grad and t.dtype.is_floating_point]
    leaves = [g for g, _ in grads_of]
    if diff and leaves:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loss = sum((t.double() * (k + 1)).sum() for k, t in enumerate(diff))
                gs = tl.autograd.grad(loss, leaves, allow_unused=True)
            res["grads"] = [None if g is None else np.array(b(g._data) if b is not None else g._data, copy=True)
                            for g, (_, b) in zip(gs, grads_of)]
        except Exception as e:  # noqa: BLE001
            res["grads"] = ("raised", type(e).__name__, str(e).split("\n")[0][:200])
    return res


def _eq(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    return a == b


def _describe(a, b):
    if not isinstance(a, dict) or not isinstance(b, dict):
        return f"{a!r:.150} vs {b!r:.150}"
    if "raised" in a or "raised" in b:
        return f"ref {a.get('raised', 'ok')} / got {b.get('raised', 'ok')}"
    return ", ".join(k for k in sorted(set(a) | set(b)) if not _eq(a.get(k), b.get(k)))


# errors torch raises for the same layouts (so not differences)
TORCH_REFUSES = (
    "Tensor must have a last dimension with stride 1",      # view_as_complex of a non-unit last stride
    "Tensors must be contiguous",                           # c10d collectives
    "view size is not compatible with input tensor's size and stride",     # view of a non-viewable layout
)
# ops whose result depends on the input's geometry by definition (torch's too)
GEOMETRY = {"as_strided_backward"}

RANDOM_OUTPUT = {"uniform_", "normal_", "bernoulli_", "random_", "exponential_", "random_fill", "bernoulli",
                 "poisson", "_standard_gamma", "_sample_dirichlet", "rand_like", "randn_like", "randint_like",
                 "multinomial", "dropout", "native_dropout", "geometric_", "log_normal_", "cauchy_",
                 "feature_alpha_dropout", "alpha_dropout", "rrelu", "fused_dropout", "_fused_dropout"}


def sweep(names=None, layouts=LAYOUTS, modes=MODES, verbose=False):
    """Yields (name, layout, mode, which, problem) for every difference; returns the count of runs."""
    from tests.tensorlib.op_cases import all_cases
    cases = all_cases()
    runs = 0
    found = []
    for name in sorted(names or cases):
        build = cases[name]
        seed = sum(map(ord, name))
        ref = _run(build, seed)
        nfloat = 0
        _reseed(seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, inputs = build()
            nfloat = sum(1 for _ in _replace_count(inputs))
        except Exception:       # noqa: BLE001
            continue
        for which in range(nfloat):
            for layout in layouts:
                exp_ref = _run(build, seed, which=which, expand_values=True) if layout == "expand" else ref
                for mode in modes:
                    got = _run(build, seed, layout=layout, mode=mode, which=which,
                               expand_values=(layout == "expand"))
                    if got is None:
                        continue
                    runs += 1
                    want = exp_ref
                    gi = got.pop("expand_grad_index", None)
                    if gi is not None and isinstance(want.get("grads"), list):
                        want = dict(want, grads=list(want["grads"]))
                        g = want["grads"][gi]
                        if g is not None:
                            want["grads"][gi] = g.sum(0, keepdims=True)
                    if _eq(want, got):
                        continue
                    if name in RANDOM_OUTPUT and "raised" not in got and "raised" not in want:
                        continue
                    if (layout == "expand" and "raised" in got and OVERLAP in got["raised"][1]):
                        continue        # torch refuses the write into an expanded input too
                    if "raised" in got and "raised" not in want and any(m in got["raised"][1] for m in TORCH_REFUSES):
                        continue
                    if name in GEOMETRY:
                        continue
                    p = (name, layout, mode, which, _describe(want, got))
                    found.append(p)
                    if verbose:
                        print(*p, sep=" | ", flush=True)
    return runs, found


def _replace_count(inputs):
    out = []
    _replace(list(inputs), lambda i, t: out.append(i) or t)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args(argv)
    runs, found = sweep(args.names or None, args.layouts.split(","), args.modes.split(","), verbose=True)
    print(f"{runs} runs, {len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
