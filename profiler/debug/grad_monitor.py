"""grad_monitor: per-parameter gradient norms after each backward, flagged exploding or vanishing.

Norms are computed after every `.backward()` (a dispatcher hook's `backward_end`) on the
gradients as they then stand. History is kept per step for a table, and as Chrome-trace counter events
(`ph: "C"`) that the profiler merges into its trace when both are active.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from safeio import literal

from tensorlib import dispatch as D

from ._hookctx import BackwardCallbacks


@dataclass
class GradRecord:
    step: int
    name: str
    norm: float
    flag: str          # "", "exploding", "vanishing", "nan"
    time_ns: int


class grad_monitor:
    def __init__(self, model, explode=1e3, vanish=1e-7, every=1):
        self.model = model
        self.explode = explode
        self.vanish = vanish
        self.every = every
        self.records: list[GradRecord] = []
        self.step = 0

    def _named(self):
        if hasattr(self.model, "named_parameters"):
            return list(self.model.named_parameters())
        return [(f"param{i}", p) for i, p in enumerate(self.model)]

    def _after_backward(self):
        from ..profile import current_profile
        prof = current_profile()
        if prof is not None:
            prof.add_trace_source(self.chrome_events)   # counter tracks in that profiler's trace
        self.step += 1
        if (self.step - 1) % self.every:
            return
        now = time.perf_counter_ns()
        from tensorlib.autograd.grad_mode import no_grad
        with no_grad():
            for name, p in self._named():
                g = p.grad
                if g is None:
                    continue
                n = float(g.norm().item())
                flag = "nan" if not math.isfinite(n) else "exploding" if n > self.explode else \
                    "vanishing" if n < self.vanish else ""
                self.records.append(GradRecord(self.step, name, n, flag, now))

    def __enter__(self):
        self._hook = BackwardCallbacks(end=self._after_backward)
        D.add_hook(self._hook)
        return self

    def __exit__(self, *exc):
        D.remove_hook(self._hook)
        return False

    def flagged(self):
        return [r for r in self.records if r.flag]

    def latest(self):
        if not self.records:
            return []
        last = self.records[-1].step
        return [r for r in self.records if r.step == last]

    def table(self) -> str:
        rows = self.latest()
        names = [literal(r.name) for r in rows]            # the user's parameter names, shown as text
        width = max([len("Parameter")] + [len(n) for n in names])
        lines = [f"{'Parameter':<{width}}  {'Grad norm':>12}  Flag", "-" * (width + 22)]
        for r, name in zip(rows, names):
            lines.append(f"{name:<{width}}  {r.norm:>12.4e}  {r.flag}")
        flagged = self.flagged()
        lines.append(f"steps: {self.step}, flagged: {len(flagged)} (exploding > {self.explode:g}, "
                     f"vanishing < {self.vanish:g})")
        return "\n".join(lines)

    def chrome_events(self, pid=0, base_ns=0):
        """Counter tracks, one per parameter ("grad_norm/NAME"), in Kineto's time base (µs)."""
        return [{"ph": "C", "name": f"grad_norm/{r.name}", "pid": pid, "ts": (r.time_ns - base_ns) / 1e3,
                 "args": {"norm": r.norm}} for r in self.records]
