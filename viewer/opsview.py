"""The Ops tab: only aggregates are rendered (as memray's TUI does), never one row per event.

Sorting and filtering rebuild the table from the NumPy aggregates in `summary.py`; highlighting a row
tells the app, which marks that op's events in the timeline. The columns that matter most come first
(Name, Calls, Total, Self, then Device when the trace has kernels, %), and the name column takes
what the terminal's width leaves, so an 80-column terminal still shows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.cells import cell_len, set_cell_size
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
from .summary import COLUMNS, OpsTable, fmt_pct, ops_table
from .text import fmt_ns

HEADERS = {"name": "Name", "cat": "Category", "count": "Calls", "total": "Total", "self": "Self",
           "avg": "Avg", "min": "Min", "max": "Max", "pct": "% busy", "device": "Device"}
# Shown in this order; Device only when the trace has device time.
SHOWN = ("name", "count", "total", "self", "device", "pct", "avg", "min", "max", "cat")
MAX_ROWS = 5000
# Cells each column takes (its widest text, plus the table's padding of 2); names get at least NAME_MIN.
_WIDTH = {"count": 8, "total": 10, "self": 10, "device": 10, "pct": 8, "avg": 10, "min": 10, "max": 10, "cat": 18}
NAME_MIN = 24


class OpsFilter(LiteralInput):
    """The filter box; Esc hands the keys back to the table (and with them t, o, c, ...)."""

    BINDINGS = [Binding("escape", "leave", "Back to the table")]

    def action_leave(self) -> None:
        parent = self.parent
        if isinstance(parent, OpsView):
            parent.query_one(DataTable).focus()


class OpsView(Vertical):
    BINDINGS = [
        *(Binding(str((i + 1) % 10), f"sort('{c}')", f"Sort by {c}", show=False) for i, c in enumerate(COLUMNS)),
        Binding("g", "toggle_shapes", "Group by input shapes"),
        Binding("E", "app.export('ops')", "Export the table (CSV or JSON)"),
        Binding("f", "filter", "Filter ops (Esc: back)"),
    ]

    DEFAULT_CSS = """
    OpsView Input { height: 3; }
    OpsView #ops-status { height: auto; color: $text-muted; }
    """

    class Highlighted(Message):
        def __init__(self, mask: np.ndarray, jump: bool) -> None:
            super().__init__()
            self.mask, self.jump = mask, jump

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.by_shape = False
        self.table: OpsTable = ops_table(trace)
        self.sort_col, self.descending = "total", True
        self.shown: list[int] = []
        self._name_width = 0

    @property
    def columns(self) -> list[str]:
        """The columns that fit the width, in order of importance; Name, Calls, Total, Self always."""
        width = (self.size.width or self.app.size.width) - 2  # the vertical scrollbar
        out, used = ["name"], NAME_MIN + 2
        for c in SHOWN[1:]:
            if c == "device" and not self.table.has_device:
                continue
            if c in ("count", "total", "self") or used + _WIDTH[c] <= width:
                out.append(c)
                used += _WIDTH[c]
        return out

    def compose(self) -> ComposeResult:
        yield OpsFilter(placeholder="filter ops by name or category (Esc: back to the table)", id="ops-filter")
        yield Static("", id="ops-status")
        yield DataTable(id="ops-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self._setup_columns()
        self.refill()

    def name_width(self) -> int:
        """What the other columns leave for names (at least NAME_MIN cells, at most 80)."""
        width = (self.size.width or self.app.size.width) - 2
        others = sum(_WIDTH[c] for c in self.columns[1:])
        return max(NAME_MIN, min(80, width - others - 2))

    def _setup_columns(self) -> None:
        dt = self.query_one(DataTable)
        dt.clear(columns=True)
        for c in self.columns:
            dt.add_column(HEADERS[c], key=c)
        self._name_width = self.name_width()

    def on_resize(self) -> None:
        if self.name_width() != self._name_width or len(self.columns) != len(self.query_one(DataTable).columns):
            self._setup_columns()
            self.refill()

    def _cell(self, i: int, c: str) -> Text:
        t = self.table
        if c == "name":
            name = literal(t.name[i][:200]) + (f" {literal(t.shapes[i][:200])}" if t.shapes[i] else "")
            w = self._name_width or 40
            return Text(set_cell_size(name, w - 1) + "…" if cell_len(name) > w else name)
        if c == "cat":
            cat = literal(t.cat[i][:40])
            return Text(set_cell_size(cat, 15) + "…" if cell_len(cat) > 16 else cat)
        if c == "count":
            return Text(str(int(t.count[i])), justify="right")
        if c == "pct":
            return Text(fmt_pct(t.pct[i]), justify="right")
        return Text(fmt_ns(t.avg_of(i) if c == "avg" else getattr(t, c)[i]), justify="right")  # (avg: a row's own)

    def refill(self) -> None:
        dt = self.query_one(DataTable)
        needle = self.query_one(Input).value
        self.shown = self.table.rows(self.sort_col, self.descending, None, needle)
        dt.clear()
        cols = self.columns
        for i in self.shown[:MAX_ROWS]:
            dt.add_row(*(self._cell(i, c) for c in cols), key=str(i))
        t = self.table
        arrow = "↓" if self.descending else "↑"
        more = f" (first {MAX_ROWS} shown)" if len(self.shown) > MAX_ROWS else ""
        shapes = ", grouped by input shapes" if self.by_shape else ""
        dev = " Device: kernel time of the op and what it encloses." if t.has_device else ""
        self.query_one("#ops-status", Static).update(
            Text(f"{len(self.shown)} of {len(t)} ops{more} · sorted by {self.sort_col} {arrow}{shapes} · "
                 f"% busy: of the CPU threads' or GPU streams' busy time.{dev} Keys: 1-9, 0 sort · g shapes · "
                 f"f filter · E export · Enter timeline")
        )

    def action_filter(self) -> None:
        self.query_one(OpsFilter).focus()

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

    def export_rows(self) -> list[dict[str, str | int | float | None]]:
        """The rows as shown (filter and sort), every column, for export."""
        return self.table.as_dicts(self.shown)

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
            self.post_message(self.Highlighted(self.table.event_mask(self.trace, i), False))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        i = self._row(event.row_key)
        self.post_message(self.Highlighted(self.table.event_mask(self.trace, i), True))
