"""The Ranks tab of a job (a directory of rank traces, or several files): per step, each rank's compute time
and the time it waited in collectives, the straggler (the rank that computed longest, which the others wait
for) highlighted; the numbers of `python -m viewer ranks` (viewer/job.py's `per_rank_steps`).

Built for 80 columns: step, rank, step time, compute, collective wait, a bar of the step split into compute
(█) and wait (░), and the straggler's mark. Enter on a row shows that rank's step on the timeline."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from safeio import literal

from .job import per_rank_steps, rank_of_pid
from .model import Trace

NOT_A_JOB = ("not a job: the Ranks tab compares the ranks of a distributed job; open a directory of rank traces "
             "(python -m viewer DIR) or several trace files")
NO_STEPS = ("no ProfilerStep#N ranges in the ranks' traces: profile with a schedule and call prof.step() each step "
            "to compare the ranks step by step")
COLUMNS = ("step", "rank", "step ms", "compute", "wait", "compute █ / wait ░", "")
BAR = 16
MAX_ROWS = 5000


def is_job(trace: Trace) -> bool:
    """Whether `trace` is several rank traces merged by viewer/job.py."""
    return isinstance(trace.meta.get("jobFiles"), list)


def bar(compute_ns: int, comm_ns: int, step_ns: int, width: int = BAR) -> str:
    """The step as `width` cells: compute (█), then collective wait (░), the rest blank."""
    if step_ns <= 0:
        return " " * width
    c = min(width, round(width * compute_ns / step_ns))
    w = min(width - c, round(width * comm_ns / step_ns))
    return "█" * c + "░" * w + " " * (width - c - w)


def ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


def row_cells(row: dict[str, Any]) -> list[str]:
    """One table row as text (the step name from the file passes through safeio.literal)."""
    return [literal(str(row["step"])), str(row["rank"]), ms(row["step_ns"]), ms(row["compute_ns"]), ms(row["comm_ns"]),
            bar(row["compute_ns"], row["comm_ns"], row["step_ns"]), "◀ slowest" if row["slowest"] else ""]


def step_event(trace: Trace, row: dict[str, Any]) -> int:
    """The index of row's ProfilerStep event on row's rank (-1 when absent)."""
    try:
        nid = trace.names.index(row["step"])
    except ValueError:
        return -1
    idx = np.flatnonzero(trace.name_id == nid)
    for i in idx.tolist():
        if rank_of_pid(trace.lanes[int(trace.lane[i])].pid) == row["rank"]:
            return int(i)
    return -1


class RanksView(Vertical, can_focus=True):
    DEFAULT_CSS = """
    RanksView DataTable { height: 1fr; }
    RanksView #ranks-status { height: auto; color: $text-muted; }
    """

    class Chosen(Message):
        def __init__(self, event: int) -> None:
            super().__init__()
            self.event = event

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.rows: list[dict[str, Any]] = per_rank_steps(trace) if is_job(trace) else []

    def compose(self) -> ComposeResult:
        if not is_job(self.trace):
            yield Static(Text(NOT_A_JOB), id="ranks-status")
            return
        if not self.rows:
            yield Static(Text(NO_STEPS), id="ranks-status")
            return
        ranks = sorted({r["rank"] for r in self.rows})
        steps = len({r["step"] for r in self.rows})
        slow = [r["rank"] for r in self.rows if r["slowest"]]
        often = max(set(slow), key=slow.count) if slow else None
        head = (f"{len(ranks)} ranks, {steps} steps; ms per step. compute: the rank's work; wait: time in "
                f"collectives. ◀ the straggler (computed longest; the others wait for it)")
        if often is not None:
            head += f"; rank {often} in {slow.count(often)} of {steps} steps"
        yield Static(Text(head + ". Enter: the step on the timeline."), id="ranks-status")
        yield DataTable(id="ranks-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        if not self.rows:
            return
        dt = self.query_one(DataTable)
        for c in COLUMNS:
            dt.add_column(c, key=c or "mark")
        for k, row in enumerate(self.rows[:MAX_ROWS]):
            style = "bold yellow" if row["slowest"] else ""
            dt.add_row(*[Text(v, style=style, justify="left" if j in (0, 5, 6) else "right")
                         for j, v in enumerate(row_cells(row))], key=str(k))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None:
            i = step_event(self.trace, self.rows[int(key)])
            if i >= 0:
                self.post_message(self.Chosen(i))
