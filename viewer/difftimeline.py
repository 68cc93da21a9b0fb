"""The diff's side-by-side timelines: trace A above trace B on one time axis.

Each trace's times are read from its alignment point, the start of its first `ProfilerStep#N` (or the
trace's start when it has no steps), so step 1 of one run sits over step 1 of the other even when the
runs started at different clock times. Both rulers count from that point and both show their step
markers. Zooming and panning either timeline moves the other by the same amount of time; rows scroll
on their own (the traces have different lanes). The op picked (an event clicked or reached with the
keys in either timeline, or a row of the Diff table) is highlighted in both, and the line under the
timelines gives its numbers in A and in B.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from safeio import literal

from .diff import DiffRow, fmt_count, per_step
from .model import KIND_SPAN, Trace
from .steps import STEPS_STAR, step_events, step_name_ids
from .text import fmt_ns
from .timeline import Timeline


def alignment(trace: Trace) -> tuple[float, str]:
    """(time, what it is): the first ProfilerStep#N's start, else the trace's start."""
    steps = step_events(trace)
    if len(steps):
        return float(trace.ts[steps[0]]), trace.name_of(int(steps[0]))
    return float(trace.home[0]), "the trace's start"


def op_mask(trace: Trace, name: str, cat: str) -> np.ndarray:
    """The spans of one op (name, category) of the diff; every step for ProfilerStep*."""
    if name == STEPS_STAR:
        ids = step_name_ids(trace)
    else:
        ids = np.array([k for k, n in enumerate(trace.names) if n == name], dtype=np.int64)
    cats = np.array([k for k, c in enumerate(trace.cats) if c == cat], dtype=np.int64)
    mask: np.ndarray = np.isin(trace.name_id, ids) & np.isin(trace.cat_id, cats) & (trace.kind == KIND_SPAN)
    return mask


def op_key(trace: Trace, ev: int) -> tuple[str, str]:
    """The diff's row key of an event: (name, category), a step as ProfilerStep*."""
    name = trace.name_of(ev)
    if len(step_events(trace)) and int(trace.name_id[ev]) in set(step_name_ids(trace).tolist()):
        name = STEPS_STAR
    return name, trace.cats[int(trace.cat_id[ev])]


class AlignedTimeline(Timeline):
    """A Timeline whose ruler counts from its alignment point and whose view follows its partner's."""

    BINDINGS = [Binding("tab", "other", "The other trace's timeline")]

    def __init__(self, trace: Trace, align: float, **kw: Any) -> None:
        super().__init__(trace, **kw)
        self.align = self.origin = align
        self.partner: AlignedTimeline | None = None
        self.home_rel = (float(trace.home[0]) - align, float(trace.home[1]) - align)
        self.view: DiffTimelines | None = None

    def _changed(self) -> None:
        super()._changed()
        p = self.partner
        if p is None:
            return
        t0, t1 = self.t0 - self.align + p.align, self.t1 - self.align + p.align
        if (p.t0, p.t1) != (t0, t1):
            p.t0, p.t1 = t0, t1
            Timeline._changed(p)

    def action_reset(self) -> None:
        lo, hi = self.home_rel
        if self.partner is not None:
            lo, hi = min(lo, self.partner.home_rel[0]), max(hi, self.partner.home_rel[1])
        self.t0, self.t1 = lo + self.align, hi + self.align
        self._pad_home()
        self._changed()

    def reveal(self, ev: int) -> None:
        if self.size.height:  # not laid out yet (picked from the Diff table): rows stay at the top
            super().reveal(ev)
            return
        top = self.top
        super().reveal(ev)
        self.top = top

    def action_other(self) -> None:
        if self.partner is not None:
            self.partner.focus()

    def select(self, ev: int, reveal: bool = True) -> None:
        super().select(ev, reveal)
        if self.view is not None:
            self.view.picked_event(self, ev)

    def set_range(self, t0: float | None, t1: float | None = None) -> None:
        """Ranges are summed on the Timeline tab (one trace); here `v` and shift+drag do nothing."""
        if self.view is not None:
            self.view.say("a range is marked on the Timeline tab (t), one trace at a time")


class DiffTimelines(Vertical):
    """A above B, aligned; see the module docstring."""

    DEFAULT_CSS = """
    DiffTimelines AlignedTimeline { height: auto; max-height: 45%; min-height: 3; }
    DiffTimelines Static { height: 1; }
    DiffTimelines #sbs-info { height: auto; max-height: 2; background: $boost; }
    """

    def __init__(self, a: Trace, b: Trace, rows: list[DiffRow], steps: tuple[int, int], **kw: Any) -> None:
        super().__init__(**kw)
        self.traces = (a, b)
        (ta, wa), (tb, wb) = alignment(a), alignment(b)
        self.what = (wa, wb)
        self.tl_a = AlignedTimeline(a, ta, id="sbs-a")
        self.tl_b = AlignedTimeline(b, tb, id="sbs-b")
        self.tl_a.partner, self.tl_b.partner = self.tl_b, self.tl_a
        self.tl_a.view = self.tl_b.view = self
        self.tl_a.action_reset()
        self.rows = {(r.name, r.cat): r for r in rows}
        self.steps = steps
        self.picked: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        for label, tr, what, tl in (("A", self.traces[0], self.what[0], self.tl_a),
                                    ("B", self.traces[1], self.what[1], self.tl_b)):
            name = os.path.basename(tr.path) if tr.path else "trace"
            yield Static(Text(f" {label} = {literal(name)} · 0 at {literal(what)}", style="bold"),
                         id=f"sbs-{label}-label")
            yield tl
        yield Static(self._info(), id="sbs-info")

    def on_mount(self) -> None:
        self.tl_a.focus()

    def _info(self, extra: str = "") -> Text:
        if extra:
            return Text(" " + extra)
        if self.picked is None:
            return Text(" w/s zoom, a/d pan (both move) · Tab the other trace · click or , . picks an op: "
                        "highlighted in both")
        name, cat = self.picked
        r = self.rows.get(self.picked)
        msg = f" {literal(name)} ({literal(cat)})"
        if r is None:
            return Text(msg)
        unit = " per step" if per_step(*self.steps) else ""
        msg += (f" · A {fmt_count(r.count_a)}× {fmt_ns(r.total_a)} · B {fmt_count(r.count_b)}× "
                f"{fmt_ns(r.total_b)}{unit}")
        if r.ratio is not None:
            msg += f" · B/A {r.ratio:.2f}x"
        elif r.status:
            msg += f" · {r.status}"
        return Text(msg)

    def say(self, extra: str = "") -> None:
        self.query_one("#sbs-info", Static).update(self._info(extra))

    def highlight(self, key: tuple[str, str] | None) -> None:
        """Highlight one op (name, category) in both timelines (None: nothing)."""
        self.picked = key
        for tl in (self.tl_a, self.tl_b):
            tl.match_mask = None if key is None else op_mask(tl.trace, *key)
            tl.redraw()
        if self.is_mounted:
            self.say()

    def picked_event(self, tl: AlignedTimeline, ev: int) -> None:
        self.highlight(op_key(tl.trace, ev) if ev >= 0 else None)

    def show_op(self, key: tuple[str, str]) -> None:
        """From the Diff table: highlight the op and select its first event from the alignment on (A's,
        else B's), which brings both timelines to it."""
        self.highlight(key)
        for tl in (self.tl_a, self.tl_b):
            idx = np.flatnonzero(op_mask(tl.trace, *key))
            if len(idx):
                after = idx[tl.trace.ts[idx] >= tl.align]
                ev = int(after[0] if len(after) else idx[0])
                Timeline.select(tl, ev)
                tl.action_fit()
                tl.focus()
                return

    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        message.stop()  # the app's details pane shows the Timeline tab's trace, not these

    def on_timeline_range_changed(self, message: Timeline.RangeChanged) -> None:
        message.stop()
