"""Steps as the unit: where each `ProfilerStep#N` went, read from the trace alone.

The same phases as the profiler's `prof.step_breakdown()` (profiler/steps.py), recognised by the names
torch and tensorlib write:

* data: under `enumerate(DataLoader)#...`;
* backward: under `autograd::engine::evaluate_function: ...` (the autograd engine);
* optimizer: under `Optimizer.step#...` or `Optimizer.zero_grad#...`;
* forward: ops (`cpu_op`) and module ranges (`nn.Module: X` python functions, or a range named as a
  module path: a capitalised identifier with dotted attributes, `MLP`, `MLP.fc1`) not under the above;
* other: the rest (the step's own time between those, other user ranges' own time).

The outermost of data/backward/optimizer wins. Every event's self time inside a step goes to one
phase, so a step's phases add up to its duration. With device activity in the trace, GPU busy is the
time within the step's interval during which some kernel, memcpy or memset ran (the union over
streams), and GPU idle the rest of the step.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from itertools import compress, repeat

import numpy as np

from safeio import literal

from .convert import unique
from .device import gpu_activity
from .model import KIND_SPAN, Trace
from .names import Names
from .text import fmt_ns

PHASES = ("data", "forward", "backward", "optimizer", "other")
_OTHER, _DATA, _FWD, _BWD, _OPT = 4, 0, 1, 2, 3
STEP_NAME = re.compile(r"ProfilerStep#(\d+)\Z")
STEPS_STAR = "ProfilerStep*"
_MODULE_PATH = re.compile(r"[A-Z]\w*(\.\w+)*\Z")
NO_STEPS = ("no steps in this trace: steps are ProfilerStep#N ranges, written by profile(schedule=...) with "
            "prof.step() once per iteration")


def step_name_ids(trace: Trace) -> np.ndarray:
    """The name ids that are `ProfilerStep#N`."""
    names = trace.names
    maybe = (names.ids_starting_with("ProfilerStep#").tolist() if isinstance(names, Names)  # no str per name
             else compress(range(len(names)), map(str.startswith, names, repeat("ProfilerStep#"))))  # at C speed
    return np.array([k for k in maybe if STEP_NAME.match(names[k])], dtype=np.int64)


def step_events(trace: Trace) -> np.ndarray:
    """The step spans, by start time."""
    ids = step_name_ids(trace)
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    idx = np.flatnonzero(np.isin(trace.name_id, ids) & (trace.kind == KIND_SPAN))
    return idx[np.argsort(trace.ts[idx], kind="stable")]


def step_number(trace: Trace, i: int) -> int:
    m = STEP_NAME.match(trace.name_of(i))
    return int(m.group(1)) if m else -1


@dataclass
class StepRow:
    step: int  # -1 for the average
    event: int  # the step's span (-1 for the average)
    start_ns: int
    duration_ns: float
    data_ns: float
    forward_ns: float
    backward_ns: float
    optimizer_ns: float
    other_ns: float
    gpu_busy_ns: float | None
    gpu_idle_ns: float | None

    def phase(self, p: str) -> float:
        return float(getattr(self, p + "_ns"))


@dataclass
class StepBreakdown:
    rows: list[StepRow]
    has_gpu: bool

    def __len__(self) -> int:
        return len(self.rows)

    def average(self) -> StepRow | None:
        if not self.rows:
            return None
        n = len(self.rows)

        def mean(k: str) -> float:
            return sum(float(getattr(r, k)) for r in self.rows) / n

        gpu = self.has_gpu
        return StepRow(step=-1, event=-1, start_ns=0, duration_ns=mean("duration_ns"), data_ns=mean("data_ns"),
                       forward_ns=mean("forward_ns"), backward_ns=mean("backward_ns"),
                       optimizer_ns=mean("optimizer_ns"), other_ns=mean("other_ns"),
                       gpu_busy_ns=mean("gpu_busy_ns") if gpu else None,
                       gpu_idle_ns=mean("gpu_idle_ns") if gpu else None)

    def as_dicts(self) -> dict[str, object]:
        avg = self.average()
        return {"steps": [asdict(r) for r in self.rows], "average": asdict(avg) if avg else None,
                "has_gpu": self.has_gpu}


def _own_phase(trace: Trace) -> np.ndarray:
    """Each event's own phase: one regex per distinct name, then a lookup per event."""
    module = 5
    by_name = np.full(max(len(trace.names), 1), _OTHER, dtype=np.int8)
    for k, n in enumerate(trace.names):
        if n.startswith("enumerate(DataLoader)"):
            by_name[k] = _DATA
        elif n.startswith("autograd::engine::evaluate_function"):
            by_name[k] = _BWD
        elif n.startswith(("Optimizer.step#", "Optimizer.zero_grad#")):
            by_name[k] = _OPT
        elif n.startswith("nn.Module: ") or _MODULE_PATH.match(n):
            by_name[k] = module
    own = by_name[trace.name_id] if len(trace) else np.zeros(0, np.int8)
    cat_op = np.array([c == "cpu_op" for c in trace.cats] or [False], dtype=bool)[trace.cat_id]
    cat_range = np.array([c in ("user_annotation", "python_function") for c in trace.cats] or [False],
                         dtype=bool)[trace.cat_id]
    own = np.where((own == module) & ~cat_range, _OTHER, own)  # a capitalised op name is no module
    own = np.where(own == module, _FWD, own)
    return np.where((own == _OTHER) & cat_op, _FWD, own).astype(np.int8)


def _phases_and_steps(trace: Trace, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(phase, enclosing step or -1) per event, by pointer jumping up the nesting (log2(depth) passes).

    The profiler's rule, level by level (a child takes its parent's phase when that is data,
    backward or optimizer, or when it has none of its own), comes to: the outermost data/backward/
    optimizer range around an event (itself included) decides; without one, forward if the event or
    an ancestor is forward; else other."""
    own = _own_phase(trace)
    n = len(trace)
    dominant = (own == _DATA) | (own == _BWD) | (own == _OPT)
    dom = np.where(dominant, own, -1).astype(np.int8)
    fwd = own == _FWD
    step_of = np.full(n, -1, dtype=np.int64)
    step_of[steps] = steps
    jump = trace.parent.astype(np.int64).copy()
    lanes = unique(trace.lane[steps])
    on = np.isin(trace.lane, lanes)  # only the lanes holding steps matter
    has = np.flatnonzero(on & (jump >= 0))
    while len(has):
        nxt = jump[has]
        up_dom = dom[nxt]
        dom[has] = np.where(up_dom >= 0, up_dom, dom[has])  # the outer one wins
        fwd[has] |= fwd[nxt]
        up_step = step_of[nxt]
        step_of[has] = np.where(up_step >= 0, up_step, step_of[has])
        jump[has] = jump[nxt]
        has = has[jump[has] >= 0]
    phase = np.where(dom >= 0, dom, np.where(fwd, _FWD, _OTHER)).astype(np.int8)
    return phase, step_of


def union_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, sorted intervals covering the union of [start, end)."""
    if not len(starts):
        return starts, ends
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], ends[o]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > reach[:-1]
    heads = np.flatnonzero(new)
    return s[heads], np.maximum.reduceat(e, heads)


def covered(lo: np.ndarray, hi: np.ndarray, t0: int, t1: int) -> int:
    """How much of [t0, t1) the disjoint sorted intervals [lo, hi) cover."""
    a = int(np.searchsorted(hi, t0, "right"))
    b = int(np.searchsorted(lo, t1, "left"))
    if b <= a:
        return 0
    return int((np.minimum(hi[a:b], t1) - np.maximum(lo[a:b], t0)).clip(0).sum())


def step_breakdown(trace: Trace) -> StepBreakdown:
    steps = step_events(trace)
    gpu = gpu_activity(trace)
    has_gpu = bool(len(gpu))
    if not len(steps):
        return StepBreakdown([], has_gpu)
    phase, step_of = _phases_and_steps(trace, steps)
    inside = (step_of >= 0) & (trace.kind == KIND_SPAN)
    slot = np.searchsorted(np.sort(steps), step_of[inside])
    per = np.zeros((len(steps), len(PHASES)), dtype=np.int64)
    np.add.at(per, (slot, phase[inside].astype(np.int64)), trace.self_ns[inside])
    lo, hi = union_intervals(trace.ts[gpu], trace.ts[gpu] + trace.dur[gpu])
    rows = []
    for k, i in enumerate(np.sort(steps).tolist()):
        t0, t1 = int(trace.ts[i]), int(trace.ts[i] + trace.dur[i])
        busy = covered(lo, hi, t0, t1) if has_gpu else None
        ph = [float(v) for v in per[k].tolist()]
        rows.append(StepRow(step=step_number(trace, i), event=i, start_ns=t0, duration_ns=float(t1 - t0),
                            data_ns=ph[_DATA], forward_ns=ph[_FWD], backward_ns=ph[_BWD],
                            optimizer_ns=ph[_OPT], other_ns=ph[_OTHER],
                            gpu_busy_ns=None if busy is None else float(busy),
                            gpu_idle_ns=None if busy is None else float(t1 - t0 - busy)))
    rows.sort(key=lambda r: (r.start_ns, r.step))
    return StepBreakdown(rows, has_gpu)


def columns(has_gpu: bool) -> list[str]:
    return ["Step", "Total"] + [p.capitalize() for p in PHASES] + (["GPU busy", "GPU idle"] if has_gpu else [])


def cells(row: StepRow, has_gpu: bool, label: str) -> list[str]:
    """A row's cells as text: each phase with its share of the step."""
    out = [label, fmt_ns(row.duration_ns)]
    for p in PHASES:
        v = row.phase(p)
        share = v / row.duration_ns * 100 if row.duration_ns else 0.0
        out.append(f"{fmt_ns(v)} {share:3.0f}%")
    if has_gpu:
        busy, idle = row.gpu_busy_ns or 0.0, row.gpu_idle_ns or 0.0
        share = busy / row.duration_ns * 100 if row.duration_ns else 0.0
        out += [f"{fmt_ns(busy)} {share:3.0f}%", fmt_ns(idle)]
    return out


def row_label(row: StepRow, n: int) -> str:
    return f"avg of {n}" if row.step < 0 else f"ProfilerStep#{row.step}"


def format_steps(bd: StepBreakdown, limit: int | None = None) -> str:
    if not bd.rows:
        return NO_STEPS
    cols = columns(bd.has_gpu)
    rows = bd.rows[:limit] if limit else bd.rows
    table = [cells(r, bd.has_gpu, literal(row_label(r, len(bd)))) for r in rows]
    avg = bd.average()
    assert avg is not None  # there are rows
    footer = cells(avg, bd.has_gpu, row_label(avg, len(bd)))
    widths = [max(len(c[j]) for c in [cols, footer, *table]) for j in range(len(cols))]

    def line(c: list[str]) -> str:
        return "  ".join(f"{v:<{w}}" if j == 0 else f"{v:>{w}}" for j, (v, w) in enumerate(zip(c, widths)))

    sep = "-" * len(line(cols))
    out = [line(cols), sep, *(line(c) for c in table)]
    if len(rows) < len(bd.rows):
        out.append(f"... {len(bd.rows) - len(rows)} more steps")
    out += [sep, line(footer)]
    return "\n".join(out)
