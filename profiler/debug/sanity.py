"""sanity_check: a few training steps, then PyTorch debugging's sanity checklist, each item pass/fail with
the evidence that decided it (and a structured report for code)."""
from __future__ import annotations

import math
from collections import defaultdict
from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np

from safeio import literal

from tensorlib import Tensor
from tensorlib import dispatch as D
from tensorlib.dispatch import array_of, swap_array

from ._hookctx import BackwardCallbacks
from .nan_watch import nan_watch


@dataclass
class CheckItem:
    name: str
    passed: bool
    evidence: str


@dataclass
class SanityReport:
    items: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)      # per step: {param name: norm}

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items)

    def __getitem__(self, name) -> CheckItem:
        for i in self.items:
            if i.name == name:
                return i
        raise KeyError(f"no check named {name!r}; checks: {[i.name for i in self.items]}")

    def failed(self):
        return [i for i in self.items if not i.passed]

    def __str__(self):
        lines = ["tensorlib sanity check"]
        for i in self.items:
            lines.append(f"  [{'PASS' if i.passed else 'FAIL'}] {i.name}: {literal(i.evidence)}")   # module names
        lines.append(f"  {sum(i.passed for i in self.items)}/{len(self.items)} checks passed")
        return "\n".join(lines)


def _shape(x):
    if isinstance(x, Tensor):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)):
        return [_shape(v) for v in x]
    return type(x).__name__


def _devices(x, out):
    if isinstance(x, Tensor):
        out.add(str(x.device))
    elif isinstance(x, (tuple, list)):
        for v in x:
            _devices(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _devices(v, out)
    return out


class _Saved:
    """What the trial steps change, saved so that sanity_check leaves the model as it found it: the
    parameters and their gradients, the buffers, each module's train/eval mode and, when the optimizer is
    given, its state and group options. Arrays are copied raw (no op runs, so a profiler or watch around
    the call sees only the trial steps) and written back into the same arrays (references stay valid)."""

    def __init__(self, model, optimizer):
        params = list(model.parameters())
        self.arrays = [(t, array_of(t), array_of(t).copy()) for t in params + [b for _, b in model.named_buffers()]
                       if isinstance(t, Tensor)]
        self.grads = [(p, p.grad) for p in params]
        self.arrays += [(g, array_of(g), array_of(g).copy()) for _, g in self.grads if g is not None]
        self.modes = [(m, m.training) for m in model.modules()]
        self.optimizer = optimizer
        if optimizer is not None:
            self.state = {k: dict(v) for k, v in optimizer.state.items()}
            self.arrays += [(t, array_of(t), array_of(t).copy()) for st in self.state.values() for t in st.values()
                            if isinstance(t, Tensor)]
            self.groups = [deepcopy({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups]

    def restore(self):
        for t, arr, copy in self.arrays:
            arr[...] = copy
            swap_array(t, arr)
        for p, g in self.grads:
            p.grad = g
        for m, training in self.modes:
            m.training = training
        opt = self.optimizer
        if opt is not None:
            opt.state = defaultdict(dict, {k: dict(v) for k, v in self.state.items()})
            for g, saved in zip(opt.param_groups, self.groups):
                g.update(saved)


def sanity_check(model, loss_fn, batch, optimizer=None, steps=5, train_step=None, explode=1e3, vanish=1e-7,
                 verbose=True) -> SanityReport:
    """Run `steps` training steps on one batch `(inputs, targets)` and check the usual suspects.

    The step is `train_step(model, batch) -> loss` when given (your own loop body: a forgotten zero_grad
    shows up), else `zero_grad; loss_fn(model(inputs), targets).backward(); optimizer.step()`.
    The model's train/eval mode is the caller's (sanity_check does not call ``train()``: a model left in
    ``eval()`` is reported), and afterwards parameters, gradients, buffers, modes and (when `optimizer` is
    given; pass it with a train_step too) the optimizer's state are restored as they were.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError("sanity_check expects batch=(inputs, targets)")
    if train_step is None and optimizer is None:
        raise ValueError("sanity_check needs an optimizer, or a train_step(model, batch) that does the update")
    inputs, targets = batch
    report = SanityReport()
    named = list(model.named_parameters())
    accumulated = []
    eval_modules = []
    step_no = [0]

    def before_backward():
        # after the step's forward: the modes it ran in (the user's step may call train() itself)
        eval_modules.extend(n or type(model).__name__ for n, m in model.named_modules() if not m.training)
        # gradients still present (and nonzero) from the previous step: they are being accumulated
        if step_no[0] > 0:
            stale = [n for n, p in named if p.grad is not None and bool((array_of(p.grad) != 0).any())]
            if stale:
                accumulated.append((step_no[0], stale))

    out_shape = None
    saved = _Saved(model, optimizer)
    hook = BackwardCallbacks(begin=before_backward)
    D.add_hook(hook)
    nan_seen = None
    try:
        with nan_watch(mode="warn") as nw:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for s in range(steps):
                    step_no[0] = s
                    if train_step is not None:
                        loss = train_step(model, batch)
                    else:
                        optimizer.zero_grad()
                        out = model(inputs)
                        out_shape = _shape(out)
                        loss = loss_fn(out, targets)
                        loss.backward()
                        optimizer.step()
                    report.losses.append(float(loss.detach().item()))
                    norms = {}
                    for n, p in named:
                        if p.grad is not None:
                            norms[n] = float(p.grad.detach().norm().item())
                    report.grad_norms.append(norms)
        if nw.findings:
            nan_seen = nw.findings[0]
        if out_shape is None:
            from tensorlib.autograd.grad_mode import no_grad
            with no_grad():
                out_shape = _shape(model(inputs))
    finally:
        D.remove_hook(hook)
        bad_grads = [n for n, p in named if p.grad is not None
                     and not bool(np.isfinite(p.grad.detach().cpu().numpy()).all())]
        never = [n for n, p in named if p.requires_grad and p.grad is None]
        saved.restore()

    add = report.items.append
    add(CheckItem("shapes", True, f"inputs {_shape(inputs)} -> outputs {out_shape}; targets {_shape(targets)}"))
    frozen = [n for n, p in named if not p.requires_grad]
    add(CheckItem("parameters require grad", not frozen or len(frozen) < len(named),
                  f"{len(named) - len(frozen)}/{len(named)} require grad" +
                  (f"; frozen: {', '.join(frozen)}" if frozen else "")))
    losses = report.losses
    finite = all(math.isfinite(v) for v in losses)
    dec = finite and len(losses) >= 2 and losses[-1] < losses[0]
    add(CheckItem("loss decreasing", dec, "losses " + ", ".join(f"{v:.4g}" for v in losses)))
    last = report.grad_norms[-1] if report.grad_norms else {}
    big = {n: v for n, v in last.items() if v > explode}
    small = {n: v for n, v in last.items() if v < vanish}
    if big:
        ev = f"exploding (> {explode:g}): " + ", ".join(f"{n}={v:.3g}" for n, v in big.items())
    else:
        ev = f"max grad norm {max(last.values()):.3g}" if last else "no gradients"
    add(CheckItem("gradients not exploding", not big, ev))
    if small:
        ev = f"vanishing (< {vanish:g}): " + ", ".join(f"{n}={v:.3g}" for n, v in small.items())
    else:
        ev = f"min grad norm {min(last.values()):.3g}" if last else "no gradients"
    add(CheckItem("gradients not vanishing", not small, ev))
    add(CheckItem("train mode during training", not eval_modules,
                  "all modules in train()" if not eval_modules else
                  "in eval() while training: " + ", ".join(sorted(set(eval_modules), key=str)) +
                  " (call model.train() before training steps)"))
    add(CheckItem("gradients zeroed between steps", not accumulated,
                  "every backward started from zeroed/None gradients" if not accumulated else
                  f"gradients accumulated across steps (no zero_grad?): step {accumulated[0][0]} began with "
                  f"non-zero .grad on {', '.join(accumulated[0][1][:5])}"))
    devs = set()
    for _, p in named:
        devs.add(str(p.device))
    in_devs = _devices(inputs, set()) | _devices(targets, set())
    ok_dev = len(devs) <= 1 and (not in_devs or in_devs <= devs or not devs)
    add(CheckItem("tensors on one device", ok_dev, f"parameters on {sorted(devs)}, batch on {sorted(in_devs)}"))
    add(CheckItem("every parameter receives a gradient", not never,
                  "all trainable parameters got gradients" if not never else
                  "never received a gradient: " + ", ".join(never)))
    add(CheckItem("no NaN/Inf", finite and not bad_grads and nan_seen is None,
                  "loss and gradients finite" if finite and not bad_grads and nan_seen is None else
                  (nan_seen.message() if nan_seen is not None else
                   f"non-finite loss {losses}" if not finite else "non-finite gradients: " + ", ".join(bad_grads))))
    if verbose:
        print(report)
    return report
