"""Name match between torch's trace and ours of the same training step: distinct names and event counts.

The same program (devtools/trace_names_vs_torch.py's MLP, CNN and Transformer encoder: one DataLoader
batch, forward, cross_entropy, backward, clip_grad_norm_, Adam step, zero_grad, as the one active
profiler step of a schedule, so that both traces have a ``ProfilerStep#0`` iteration for HTA's TraceDiff)
is profiled with torch.profiler on torch 2.13 and with this project's profiler on tensorlib. For every
model it reports

- names: the share of torch's distinct ``cpu_op``/``user_annotation`` names that our trace also has
  (what HTA's TraceDiff and `viewer diff` can pair by name);
- events: the share of torch's events that ours pairs by name, sum over names of min(ours, torch's)
  over torch's event count (a name we write once where torch writes it 40 times counts once);

and lists torch's names we lack, most frequent first.

Measured (torch 2.13, names / events): mlp 92.5 % of 67 / 74.8 % of 357, cnn 92.8 % of 97 / 65.5 % of 417 (with
oneDNN's ``mkldnn_convolution`` step and the one ``convolution_backward`` op; 91.8 % before them),
transformer 90.3 % of 134 / 61.3 % of 2205. Before: 91.0 / 73.7, 88.7 / 62.6, 74.6 / 50.1 (and 79.1 / 76.3 / 57.5 % of
names before issue 15's kernel steps; the Transformer went 66.4 -> 74.6 % when F.multi_head_attention_forward took
torch's op sequence, then -> 90.3 % when the attention kernel became torch's math backend step for step and reshape
took torch's three paths).
Where a tensorlib kernel does a step that torch dispatches as an op of its own, the kernel runs that step
inside a range of kind "op" with torch's name (`tensorlib._hooks.op_step`, only while a range hook listens:
one module-attribute test otherwise): ``as_strided`` in the strided views (select, slice, transpose, t (inside
``transpose``), permute, unsqueeze, squeeze, expand); ``unsqueeze`` + ``cat`` in stack (NumPy's stack does
exactly that); ``empty_like`` > ``empty_strided`` (``empty`` for a strided input, copied contiguous) + ``copy_``
in clone, ``clone`` in contiguous; ``empty_strided`` + ``copy_`` in a dtype conversion (aten::_to_copy);
``_local_scalar_dense`` in item; ``clamp_min`` in relu; ``zero_`` in nll_loss_backward's zeroed buffer; CPU dropout's
noise buffer ``empty_like`` > ``empty_strided``, its draw ``bernoulli_``, ``div_`` and ``mul``; ``view`` in the
reshape of a contiguous tensor; the alias that detach makes below autograd (``detach``, torch's autograd kernel's
own record); ``_convolution`` around conv2d's choice of backend and its run; ``zeros``, ``select``/``slice`` and
``copy_`` in select_backward / slice_backward (SelectBackward0 / SliceBackward0 run those ops, as torch's);
the attention kernel's ``_scaled_dot_product_attention_math`` > ``mul`` (Q and K^T scaled by sqrt(scale), as
torch's), ``transpose``, ``bmm``, ``_safe_softmax`` > ``softmax`` > ``_softmax``, ``isneginf``, ``all``,
``scalar_tensor``, ``where`` (a fully masked row gives zeros, as torch's), ``dropout`` (dropout's own kernel) and
``bmm``; its backward's ``bmm``, ``mul`` and ``_softmax_backward_data``. reshape dispatches torch's op for its
path: a view of a contiguous tensor (ViewBackward0), ``_reshape_alias`` where the strides allow the shape
(ReshapeAliasBackward0), else ``clone`` + ``_unsafe_view`` (CloneBackward0, UnsafeViewBackward0: a copy, no longer
a view of its input); unflatten is torch's composite around ``view``; squeeze(dim)'s node is ``SqueezeBackward1``.
``nll_loss`` is a composite around its kernel, torch's ``nll_loss_forward``; CPU dropout's node is ``MulBackward0``
as torch's (CUDA runs the fused ``native_dropout``, ``NativeDropoutBackward0``).

torch's names still unmatched, and why (work tensorlib does not do, so no event claims it):

- ``aten::_to_copy`` (all three; with its ``empty_strided`` + ``copy_``, most of the unmatched events): torch
  wraps the Python scalars of Adam's ``add_``/``mul_``/``div``/``add_`` (and dropout's ``div_``, the attention's
  scaling) in 0-d tensors and converts them; tensorlib hands the scalar to the NumPy kernel as it is (NumPy takes
  it as a weak scalar). A real tensorlib dtype conversion is matched. In the MLP, ``copy_`` and
  ``empty_strided`` occur only there and in addmm (below), so they stay unmatched too.
- ``aten::resolve_conj`` (all three): torch's check for lazily conjugated inputs before a BLAS call;
  tensorlib has no lazy conjugation.
- ``aten::expand`` under ``aten::addmm`` (mlp, cnn): torch's addmm copies the bias, expanded, into the output
  before the GEMM accumulates into it; tensorlib's adds the bias to the product (a broadcast, no view, no copy).
- ``aten::as_strided_`` / ``aten::resize_`` under ``aten::mkldnn_convolution`` (cnn): torch's output buffers.
  tensorlib writes ``mkldnn_convolution`` where its float32 CPU convolution runs on oneDNN (the `onednn` extra,
  tensorlib/_dnnl.py); where it runs im2col + GEMM (torch's would be ``_slow_conv2d_forward``) only the
  ``_convolution`` layer above it is written.
  ``aten::_batch_norm_impl_index`` (cnn): torch's choice among cuDNN, MIOpen and native batch norm; tensorlib
  has one kernel, so no layer. ``aten::resize_`` in native_layer_norm_backward (transformer): its output buffers.
- the Transformer's attention nodes (its dropout takes torch's math path; without dropout torch and tensorlib
  both run the flash kernel's one op and node, ``ScaledDotProductFlashAttentionForCpuBackward0``): tensorlib's
  math-path attention is one op forward and one backward (issue 17's speed),
  node ``ScaledDotProductAttentionBackward0``, where torch 2.13's math path is a composite whose ops each make a
  node: ``BmmBackward0``, ``SafeSoftmaxBackward0``, ``MulBackward1`` (the scaling), ``ExpandBackward0`` and
  ``ReshapeAliasBackward0`` (its matmul's batch folding). The forward ops are all matched as the kernel's steps;
  the backward's steps (``bmm``, ``_softmax_backward_data``) too, inside the one node.

    python -m devtools.name_match                      # needs torch
    python -m devtools.name_match --save after.json    # also keep the scores
    python -m devtools.name_match --before before.json # print before -> after
    python -m devtools.name_match --traces DIR         # keep both traces (DIR/<model>_{torch,tensorlib}.json)
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import warnings

from devtools import trace_names_vs_torch as tnt

MODELS = tnt.MODELS


def name_counts(path) -> collections.Counter:
    """Events per name (cpu_op and user_annotation, complete events) in the Chrome trace at `path`."""
    with open(path, "rb") as f:
        doc = json.load(f)
    return collections.Counter(e["name"] for e in doc["traceEvents"]
                               if e.get("ph") == "X" and e.get("cat") in tnt.NAME_CATS)


def profile_step(lib, kind, path):
    """Profile one training step of model `kind` on `lib` (torch or tensorlib) inside a profiler step,
    after one warm-up step; write the Chrome trace to `path`."""
    model, shape = tnt.build(lib, kind)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(tnt.data(lib, shape))
    tnt.train_step(lib, model, batches, opt)       # warm up: optimizer state, lazy imports
    if lib.__name__ == "torch":
        import torch.profiler as prof
    else:
        import profiler as prof
    with warnings.catch_warnings():     # "won't be using warmup": the step before the profile warmed up
        warnings.simplefilter("ignore", UserWarning)
        sched = prof.schedule(wait=0, warmup=0, active=1, repeat=1)
        with prof.profile(activities=[prof.ProfilerActivity.CPU], schedule=sched,
                          on_trace_ready=lambda p: p.export_chrome_trace(str(path))) as p:
            tnt.train_step(lib, model, batches, opt)
            p.step()


def match(theirs: collections.Counter, ours: collections.Counter) -> dict:
    """The two shares (in %) and torch's names we lack with their counts."""
    names = sum(1 for n in theirs if n in ours)
    events = sum(min(c, ours.get(n, 0)) for n, c in theirs.items())
    return {"names": 100.0 * names / max(len(theirs), 1),
            "events": 100.0 * events / max(sum(theirs.values()), 1),
            "torch_names": len(theirs), "our_names": len(ours),
            "torch_events": sum(theirs.values()), "our_events": sum(ours.values()),
            "missing": {n: c for n, c in theirs.most_common() if n not in ours}}


def measure(kind, trace_dir=None) -> dict:
    import tensorlib
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        d = trace_dir or tmp
        paths = {lib.__name__: os.path.join(d, f"{kind}_{lib.__name__}.json") for lib in (torch, tensorlib)}
        profile_step(torch, kind, paths["torch"])
        profile_step(tensorlib, kind, paths["tensorlib"])
        return match(name_counts(paths["torch"]), name_counts(paths["tensorlib"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--save", metavar="FILE", help="write the scores as JSON")
    ap.add_argument("--before", metavar="FILE", help="scores saved earlier with --save: print before -> after")
    ap.add_argument("--traces", metavar="DIR", help="keep both traces of each model in DIR")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list the missing names")
    args = ap.parse_args(argv)
    before = {}
    if args.before:
        with open(args.before, "rb") as f:
            before = json.load(f)
    if args.traces:
        os.makedirs(args.traces, exist_ok=True)
    results = {}
    print(f"{'model':<12} {'names matched':>22} {'events matched':>22}")
    for kind in args.models:
        r = results[kind] = measure(kind, args.traces)
        b = before.get(kind)
        cols = []
        for key, total in (("names", "torch_names"), ("events", "torch_events")):
            now = f"{r[key]:5.1f} % of {r[total]}"
            cols.append(f"{b[key]:5.1f} -> {now}" if b else now)
        print(f"{kind:<12} {cols[0]:>22} {cols[1]:>22}")
        if not args.quiet:
            for n, c in r["missing"].items():
                print(f"    missing {c:4d} x {n}")
    if args.save:
        from safeio import write_bytes
        write_bytes(args.save, (json.dumps(results, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
