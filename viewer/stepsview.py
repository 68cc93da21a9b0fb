"""The Steps tab: one row per `ProfilerStep#N` and the average step, the numbers of
`python -m viewer summary --steps` (viewer/steps.py). Enter shows the step on the timeline."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from safeio import literal

from .model import Trace
from .steps import NO_STEPS, StepBreakdown, cells, columns, row_label, step_breakdown


class StepsView(Vertical, can_focus=True):
    DEFAULT_CSS = """
    StepsView DataTable { height: 1fr; }
    StepsView #steps-status { height: auto; color: $text-muted; }
    """

    class Chosen(Message):
        def __init__(self, event: int) -> None:
            super().__init__()
            self.event = event

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.breakdown: StepBreakdown = step_breakdown(trace)

    def compose(self) -> ComposeResult:
        bd = self.breakdown
        if not bd.rows:
            yield Static(Text(NO_STEPS), id="steps-status")
            return
        gpu = "; GPU busy: some kernel, memcpy or memset running during the step" if bd.has_gpu else ""
        yield Static(Text(f"{len(bd)} steps, the average first. Each phase with its share of the step{gpu}. "
                          f"Enter shows the step on the timeline."), id="steps-status")
        yield DataTable(id="steps-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        bd = self.breakdown
        if not bd.rows:
            return
        dt = self.query_one(DataTable)
        for c in columns(bd.has_gpu):
            dt.add_column(c, key=c)
        avg = bd.average()
        assert avg is not None  # there are rows
        dt.add_row(*self._cells(cells(avg, bd.has_gpu, row_label(avg, len(bd))), "bold"), key="avg")
        for k, r in enumerate(bd.rows[:5000]):
            dt.add_row(*self._cells(cells(r, bd.has_gpu, literal(row_label(r, len(bd)))), ""), key=str(k))

    @staticmethod
    def _cells(values: list[str], style: str) -> list[Text]:
        return [Text(v, style=style, justify="left" if j == 0 else "right") for j, v in enumerate(values)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None and key != "avg":
            self.post_message(self.Chosen(self.breakdown.rows[int(key)].event))
