"""Steps as the unit: where each ``ProfilerStep#N`` went (``prof.step_breakdown()``).

torch has no key_averages-level API for this (its TensorBoard plugin and HTA's
``get_temporal_breakdown`` compute a "step time breakdown" from the trace); this one is computed from
the event store. Every event's self time inside a step is given to one phase, so the phases of a step
add up exactly to its duration:

* ``data``: under a DataLoader range (kind "data"; in the trace, ``enumerate(DataLoader)#...``),
* ``backward``: under the autograd engine (kind "backward", backward-phase ops; in the trace, the
  ``autograd::engine::evaluate_function: ...`` events and what they enclose),
* ``optimizer``: under an optimizer range (kind "optimizer"; ``Optimizer.step#...``,
  ``Optimizer.zero_grad#...``),
* ``forward``: forward ops and module ranges not under one of the above (the loss included),
* ``other``: the rest (the step's own time between those, user ranges with no op inside).

The outermost of data/backward/optimizer wins (an op the optimizer runs is optimizer time). With GPU
times (CUDA), ``gpu_busy_us`` is the union of the device intervals of the step's ops that fall inside
the step, and ``gpu_idle_us`` the rest of the step's duration. Steps exist only with a schedule, as in
torch (``profile(schedule=...)`` and ``prof.step()``).
"""
from __future__ import annotations

import re

import numpy as np

from safeio import literal

from .events import EventStore
from .torch_names import AUTOGRAD_TAGS, COMPOSITE_TAG

PHASES = ("data", "forward", "backward", "optimizer", "other")
_OTHER, _DATA, _FWD, _BWD, _OPT = 0, 1, 2, 3, 4
_PHASE_OF = {_DATA: "data", _FWD: "forward", _BWD: "backward", _OPT: "optimizer", _OTHER: "other"}
STEP_NAME = re.compile(r"ProfilerStep#(\d+)\Z")


class StepStats:
    """One step: its number, duration and time per phase (µs, as torch's tables), GPU busy/idle."""

    __slots__ = ("step", "start_us", "duration_us", "data_us", "forward_us", "backward_us", "optimizer_us",
                 "other_us", "gpu_busy_us", "gpu_idle_us")
    step: int
    start_us: float
    duration_us: float
    data_us: float
    forward_us: float
    backward_us: float
    optimizer_us: float
    other_us: float
    gpu_busy_us: float | None       # None without GPU times
    gpu_idle_us: float | None

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        phases = " ".join(f"{p}={getattr(self, p + '_us'):.3f}us" for p in PHASES)
        return f"<StepStats step={self.step} duration={self.duration_us:.3f}us {phases}>"


_AVERAGED = ("duration_us", "data_us", "forward_us", "backward_us", "optimizer_us", "other_us", "gpu_busy_us",
             "gpu_idle_us")


class StepBreakdown(list):
    """step_breakdown()'s result: a StepStats per recorded step, in step order, with average() and table()."""

    def __init__(self, rows=(), *, has_gpu=False):
        super().__init__(rows)
        self.has_gpu = has_gpu

    def average(self) -> StepStats | None:
        """The mean step (step=-1), None when no step was recorded."""
        if not self:
            return None
        avg = StepStats(step=-1, start_us=0.0)
        for k in _AVERAGED:
            vals = [getattr(r, k) for r in self]
            setattr(avg, k, None if vals[0] is None else sum(vals) / len(vals))
        return avg

    def table(self, row_limit: int | None = 20) -> str:
        """One row per step (the first `row_limit`; 0 or None for all) and the average, times in torch's
        format and each phase's share of the step."""
        from .table import format_time
        if not self:
            return ("no steps recorded: steps are ProfilerStep#N ranges, made by profile(schedule=...) and "
                    "prof.step() once per iteration\n")
        cols = ["Step", "Total"] + [p.capitalize() for p in PHASES] + (["GPU busy", "GPU idle"] if self.has_gpu else [])
        w = 18
        rows = list(self) if not row_limit else list(self)[:row_limit]

        def cells(r, label):
            out = [label, format_time(r.duration_us)]
            for p in PHASES:
                v = getattr(r, p + "_us")
                share = v / r.duration_us * 100 if r.duration_us else 0.0
                out.append(f"{format_time(v)} {share:3.0f}%")
            if self.has_gpu:
                out += [format_time(r.gpu_busy_us), format_time(r.gpu_idle_us)]
            return out

        sep = "  ".join("-" * w for _ in cols)
        lines = [sep, "  ".join(f"{c:>{w}}" for c in cols), sep]
        lines += ["  ".join(f"{c:>{w}}" for c in cells(r, literal(f"ProfilerStep#{r.step}"))) for r in rows]
        if len(rows) < len(self):
            lines.append(f"... {len(self) - len(rows)} more steps")
        lines += [sep, "  ".join(f"{c:>{w}}" for c in cells(self.average(), f"avg of {len(self)}")), sep]
        return "\n".join(lines) + "\n"

    def __str__(self):
        return self.table()


def _own_phase(store: EventStore) -> np.ndarray:
    """Each event's own phase code from its tag (range kind or op phase)."""
    code = np.zeros(len(store.tags), np.int8)
    for k, tag in enumerate(store.tags):
        if tag == "forward" or tag == "r:module" or tag == COMPOSITE_TAG:
            code[k] = _FWD
        elif tag == "backward" or tag in AUTOGRAD_TAGS:
            code[k] = _BWD
        elif tag == "r:data":
            code[k] = _DATA
        elif tag == "r:optimizer":
            code[k] = _OPT
    return code[store.tag_id] if len(store) else np.zeros(0, np.int8)


def _phases_and_steps(store: EventStore, step_ids: np.ndarray):
    """(phase code, enclosing step event or -1) per event, propagated from the roots down."""
    own = _own_phase(store)
    phase = own.copy()
    step_of = np.full(len(store), -1, np.int64)
    step_of[step_ids] = step_ids
    for level in store.levels()[1:]:
        if not len(level):
            continue
        par = store.parent[level]
        pp = phase[par]
        dominant = (pp == _DATA) | (pp == _BWD) | (pp == _OPT)
        phase[level] = np.where(dominant | (own[level] == _OTHER), pp, own[level])
        inherited = step_of[par]
        step_of[level] = np.where(inherited >= 0, inherited, step_of[level])
    return phase, step_of


def _union_ns(starts: np.ndarray, ends: np.ndarray) -> int:
    """Total length of the union of [start, end) intervals."""
    if not len(starts):
        return 0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > reach[:-1]
    heads = np.flatnonzero(new)
    lo = s[heads]
    hi = np.maximum.reduceat(e, heads)
    return int((hi - lo).sum())


def step_breakdown(store: EventStore) -> StepBreakdown:
    names = store.names
    step_name = np.array([STEP_NAME.match(n) is not None for n in names], bool)
    is_step = (step_name[store.name_id] & (np.array([t == "r:step" for t in store.tags], bool)[store.tag_id])
               if len(store) else np.zeros(0, bool))
    step_ids = np.flatnonzero(is_step)
    has_gpu = bool(store.has_device_time)
    if not len(step_ids):
        return StepBreakdown([], has_gpu=has_gpu)
    phase, step_of = _phases_and_steps(store, step_ids)
    inside = step_of >= 0
    slot = np.searchsorted(step_ids, step_of[inside])
    per = np.zeros((len(step_ids), len(_PHASE_OF)), np.int64)
    np.add.at(per, (slot, phase[inside].astype(np.int64)), store.self_ns[inside])
    rows = []
    for k, i in enumerate(step_ids):
        t0, t1 = int(store.t0[i]), int(store.t1[i])
        kw = {f"{_PHASE_OF[c]}_us": int(per[k, c]) / 1e3 for c in _PHASE_OF}
        busy = idle = None
        if has_gpu:
            mine = np.flatnonzero((step_of == i) & (store.dev_start >= 0) & (store.self_dev_ns > 0))
            s = np.clip(store.dev_start[mine], t0, t1)
            e = np.clip(store.dev_start[mine] + store.self_dev_ns[mine], t0, t1)
            busy = _union_ns(s, e) / 1e3
            idle = (t1 - t0) / 1e3 - busy
        m = STEP_NAME.match(names[store.name_id[i]])
        assert m is not None        # is_step holds only events whose name matched
        rows.append(StepStats(step=int(m.group(1)),
                              start_us=(t0 - store.t_base) / 1e3, duration_us=(t1 - t0) / 1e3,
                              gpu_busy_us=busy, gpu_idle_us=idle, **kw))
    rows.sort(key=lambda r: (r.step, r.start_us))
    return StepBreakdown(rows, has_gpu=has_gpu)
