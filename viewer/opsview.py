"""The Ops tab: only aggregates are rendered (as memray's TUI does), never one row per event.

Sorting and filtering rebuild the table from the NumPy aggregates in `summary.py`; highlighting a row
tells the app, which marks that op's events in the timeline.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowKey

from safeio import literal

from .inputs import LiteralInput
from .model import Trace
from .summary import COLUMNS, OpsTable, ops_table
from .text import fmt_ns

HEADERS = {"name": "Name", "cat": "Category", "count": "Count", "total": "Total", "self": "Self",
           "avg": "Avg", "min": "Min", "max": "Max", "pct": "% total"}
MAX_ROWS = 5000


class OpsView(Vertical):
    BINDINGS = [
        *(Binding(str(i + 1), f"sort('{c}')", f"Sort by {c}", show=False) for i, c in enumerate(COLUMNS)),
        Binding("g", "toggle_shapes", "Group by input shapes"),
    ]

    DEFAULT_CSS = """
    OpsView Input { height: 3; }
    OpsView #ops-status { height: 1; color: $text-muted; }
    """

    class Highlighted(Message):
        def __init__(self, cat_id: int, name_id: int, jump: bool) -> None:
            super().__init__()
            self.cat_id, self.name_id, self.jump = cat_id, name_id, jump

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.by_shape = False
        self.table: OpsTable = ops_table(trace)
        self.sort_col, self.descending = "total", True
        self.shown: list[int] = []

    def compose(self) -> ComposeResult:
        yield LiteralInput(placeholder="filter ops by name or category", id="ops-filter")
        yield Static("", id="ops-status")
        yield DataTable(id="ops-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        dt = self.query_one(DataTable)
        for c in COLUMNS:
            dt.add_column(HEADERS[c], key=c)
        self.refill()

    def refill(self) -> None:
        dt = self.query_one(DataTable)
        needle = self.query_one(Input).value
        self.shown = self.table.rows(self.sort_col, self.descending, None, needle)
        dt.clear()
        t = self.table
        for i in self.shown[:MAX_ROWS]:
            name = literal(t.name[i][:80]) + (f" {literal(t.shapes[i][:80])}" if t.shapes[i] else "")
            dt.add_row(
                Text(name[:80]), Text(literal(t.cat[i][:20])[:20]), Text(str(int(t.count[i])), justify="right"),
                Text(fmt_ns(t.total[i]), justify="right"), Text(fmt_ns(t.self[i]), justify="right"),
                Text(fmt_ns(t.avg[i]), justify="right"), Text(fmt_ns(t.min[i]), justify="right"),
                Text(fmt_ns(t.max[i]), justify="right"), Text(f"{t.pct[i]:.2f}", justify="right"),
                key=str(i),
            )
        arrow = "↓" if self.descending else "↑"
        more = f" (first {MAX_ROWS} shown)" if len(self.shown) > MAX_ROWS else ""
        shapes = ", grouped by input shapes" if self.by_shape else ""
        self.query_one("#ops-status", Static).update(
            Text(f"{len(self.shown)} of {len(t)} ops{more}; sorted by {self.sort_col} {arrow}{shapes}. "
                 f"Keys 1-9 or click a header to sort, g to group by shapes, Enter to show in timeline.")
        )

    def action_sort(self, column: str) -> None:
        if column == self.sort_col:
            self.descending = not self.descending
        else:
            self.sort_col, self.descending = column, column not in ("name", "cat")
        self.refill()

    def action_toggle_shapes(self) -> None:
        self.by_shape = not self.by_shape
        self.table = ops_table(self.trace, by_shape=self.by_shape)
        self.refill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.action_sort(str(event.column_key.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refill()

    def _row(self, key: RowKey) -> int:
        assert key.value is not None  # refill() gives every row a key: str(i)
        return int(key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            i = self._row(event.row_key)
            self.post_message(self.Highlighted(int(self.table.cat_id[i]), int(self.table.name_id[i]), False))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        i = self._row(event.row_key)
        self.post_message(self.Highlighted(int(self.table.cat_id[i]), int(self.table.name_id[i]), True))
