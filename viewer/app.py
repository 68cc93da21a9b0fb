"""The Textual app: loads in a worker (progress arrives as messages), then shows the views as tabs.

Layout and key handling only; every computation lives in the model-side modules (summary, calltree,
memory, search, diff) so that it is tested without a terminal.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, ProgressBar, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from safeio import literal

from .calltree import CallTreeView
from .details import Details
from .flame import FlameView
from .inputs import LiteralInput
from .diff import diff_tables, fmt_count, heading
from .difftimeline import AlignedTimeline, DiffTimelines
from .loader import TraceError
from .memory_tab import MemoryView
from .model import Trace, load_trace
from .opsview import OpsView
from .ranksview import RanksView, is_job
from .search import SearchError, search
from .selection import format_of, range_summary, write_rows
from .steps import step_events
from .stepsview import StepsView
from .summary import ops_table
from .text import fmt_ns
from .timeline import Timeline


class SearchInput(LiteralInput):
    BINDINGS = [
        Binding("enter", "next_match", "Next match"),
        Binding("shift+enter", "prev_match", "Previous match"),
        Binding("escape", "close", "Close search"),
    ]

    def _viewer(self) -> ViewerApp:
        app = self.app
        assert isinstance(app, ViewerApp)  # the search box is part of ViewerApp's layout only
        return app

    def action_next_match(self) -> None:
        self._viewer().run_search(self.value, +1)

    def action_prev_match(self) -> None:
        self._viewer().run_search(self.value, -1)

    async def action_close(self) -> None:
        await self._viewer().close_search()


class ExportInput(LiteralInput):
    """The file name to export to; Enter writes, Esc gives up (and hands focus back)."""

    BINDINGS = [
        Binding("enter", "write", "Write the file"),
        Binding("escape", "close", "Close without writing"),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.what = "ops"

    def _viewer(self) -> ViewerApp:
        app = self.app
        assert isinstance(app, ViewerApp)  # the export box is part of ViewerApp's layout only
        return app

    async def action_write(self) -> None:
        await self._viewer().finish_export(self.value)

    async def action_close(self) -> None:
        await self._viewer().close_export()


MOUSE_HELP = [
    ("wheel", "zoom around the pointer (over the events)"),
    ("shift+wheel / wheel on names", "scroll lanes up and down"),
    ("drag", "pan"),
    ("shift+drag", "mark a time range: the details pane sums what is in it"),
    ("click", "select the event under the pointer (on the steps row: the step)"),
]

LEGEND = [
    ("name…", "an event; a name cut short ends in …"),
    ("▌", "an event too narrow for its name"),
    ("◆", "an instant event"),
    ("white", "the selected event"),
    ("yellow", "a search match, or the op highlighted in the Ops tab"),
    ("green", "what the selected event launched or flows from (kernels, backward)"),
    ("▎#N", "the steps row: ProfilerStep#N, shaded step by step"),
    ("░ ┃", "the marked time range (v, shift+drag) and its edges on the ruler"),
    ("▁▂▃▄▅▆▇█", "a counter series (memory), scaled between its minimum and maximum"),
    ("1.00ms/cell", "the time one column stands for; ruler ticks from the trace's start"),
    ("░ ▼", "Memory tab: memory alive when profiling began; the peak (its op and stack below the plots)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; height: 80%; border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        t = Text()
        t.append("Legend (timeline)\n", style="bold underline")
        for k, what in LEGEND:
            t.append(f"  {k:<14}", style="bold cyan")
            t.append(f"{what}\n")
        for title, bindings in (("Anywhere", ViewerApp.BINDINGS), ("Timeline", Timeline.BINDINGS),
                                ("Ops table", OpsView.BINDINGS), ("Flame graph", FlameView.BINDINGS),
                                ("Search bar", SearchInput.BINDINGS),
                                ("Export box", ExportInput.BINDINGS)):
            t.append(f"{title}\n", style="bold underline")
            for b in bindings:
                if not isinstance(b, Binding):  # a (key, action[, description]) tuple
                    b = Binding(*b)
                keys = ", ".join(_key_name(k) for k in b.key.split(","))
                t.append(f"  {keys:<28}", style="bold cyan")
                t.append(f"{b.description}\n")
        t.append("Mouse (timeline)\n", style="bold underline")
        for k, what in MOUSE_HELP:
            t.append(f"  {k:<28}", style="bold cyan")
            t.append(f"{what}\n")
        with VerticalScroll():
            yield Static(t, id="help-text")


_KEY_NAMES = {"comma": ",", "full_stop": ".", "left_square_bracket": "[", "right_square_bracket": "]",
              "question_mark": "?", "slash": "/", "escape": "Esc", "enter": "Enter"}


def _key_name(k: str) -> str:
    return _KEY_NAMES.get(k, k)


class Loaded(Message):
    def __init__(self, trace: Trace | None, diff: Trace | None, error: str | None) -> None:
        super().__init__()
        self.trace, self.diff, self.error = trace, diff, error


class FlowsReady(Message):
    pass


class SearchDone(Message):
    def __init__(self, query: str, matches: np.ndarray | None, step: int, error: str | None) -> None:
        super().__init__()
        self.query, self.matches, self.step, self.error = query, matches, step, error


# Above this many events a search runs in a worker thread (the first one serialises all args).
BACKGROUND_SEARCH_EVENTS = 200_000


class Progress(Message):
    def __init__(self, fraction: float, what: str) -> None:
        super().__init__()
        self.fraction, self.what = fraction, what


class ViewerApp(App[None]):
    TITLE = "tensorlib viewer"
    CSS = """
    #loading { align: center middle; height: 1fr; }
    #loading Static { width: auto; }
    #tabs { height: 1fr; }
    #status { height: auto; max-height: 2; background: $boost; }
    #search, #export { dock: bottom; display: none; }
    #search.open, #export.open { display: block; }
    #details { height: 1fr; min-height: 4; }
    #error { padding: 1 2; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "open_search", "Search"),
        Binding("n", "match(1)", "Next match", show=False),
        Binding("N", "match(-1)", "Previous match", show=False),
        Binding("t", "tab('timeline')", "Timeline"),
        Binding("o", "tab('ops')", "Ops"),
        Binding("c", "tab('calltree')", "Call tree"),
        Binding("m", "tab('memory')", "Memory"),
        Binding("p", "tab('steps')", "Steps"),
        Binding("i", "tab('flame')", "Flame (icicle)"),
        Binding("r", "tab('ranks')", "Ranks (a job's ranks per step)", show=False),
        Binding("x", "tab('diff')", "Diff", show=False),
        Binding("X", "tab('sidebyside')", "Diff: A above B on one time axis", show=False),
        Binding("e", "tab('warnings')", "Warnings", show=False),
        Binding("E", "export('range')", "Export the marked range (timeline)", show=False),
    ]

    def __init__(self, path: str | None = None, diff_path: str | None = None, *,
                 trace: Trace | None = None, diff_trace: Trace | None = None, job: list[str] | None = None) -> None:
        super().__init__()
        self.path, self.diff_path = path, diff_path
        self.job = job  # several rank traces of one job, opened side by side (viewer/job.py)
        self.trace: Trace | None = trace
        self.diff_trace: Trace | None = diff_trace
        self.matches = np.zeros(0, dtype=np.int64)
        self._query = ""
        self.error: str | None = None
        self.first_paint_at: float | None = None
        self.first_paint_cpu: float | None = None
        self._first_paint = threading.Event()
        self.started_at = time.perf_counter()
        self._n_steps: int | None = None  # the shown trace's ProfilerStep#N count, once known
        self._diff_pick: tuple[str, str] | None = None  # the Diff table's op under the cursor

    # ---- loading ----
    def compose(self) -> ComposeResult:
        with Vertical(id="loading"):
            # A Text, not a str: Static parses a str as markup, and "[@click=app.quit]" is a file name too.
            what = f"{len(self.job)} rank traces" if self.job else os.path.basename(self.path or "")
            yield Static(Text(f"Loading {literal(what)} …"), id="loading-label")
            yield ProgressBar(total=1.0, show_eta=False, show_percentage=True, id="progress")
        yield Footer()

    def on_mount(self) -> None:
        if self.trace is not None:
            self.post_message(Loaded(self.trace, self.diff_trace, None))
        else:
            self.run_worker(self._load, thread=True, exclusive=True)

    def _load(self) -> None:
        last = [0.0]

        def progress(f: float, what: str) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.25 or f >= 1.0:  # each update costs the UI thread a redraw
                last[0] = now
                self.post_message(Progress(f, what))

        try:
            # Flows are bound after the first paint: the timeline does not need them to draw.
            trace = load_trace(self.job or self.path or "", progress, defer_flows=True)
            diff = load_trace(self.diff_path, progress) if self.diff_path else None
        except TraceError as exc:
            self.post_message(Loaded(None, None, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
            self.post_message(Loaded(None, None, f"cannot read the trace: {type(exc).__name__}: {exc}"))
            return
        self.post_message(Loaded(trace, diff, None))
        # Flows are bound once the first paint is on screen, not alongside it: both want the GIL.
        worker = get_current_worker()
        while not self._first_paint.wait(0.05):
            if worker.is_cancelled:
                return
        try:
            if trace.bind_pending_flows():
                self.post_message(FlowsReady())
        except Exception as exc:  # noqa: BLE001
            trace.warnings.append(f"flows could not be bound: {type(exc).__name__}: {exc}")
            self.post_message(FlowsReady())

    def on_progress(self, message: Progress) -> None:
        try:
            self.query_one("#progress", ProgressBar).update(progress=message.fraction)
            self.query_one("#loading-label", Static).update(Text(f"Loading … {literal(message.what)}"))
        except Exception:  # noqa: BLE001 - the loading view may already be gone
            pass

    async def on_loaded(self, message: Loaded) -> None:
        await self.query_one("#loading").remove()
        if message.error:
            self.error = message.error
            await self.mount(Static(Text("error: " + literal(message.error), style="bold red"), id="error"),
                             before=self.query_one(Footer))
            return
        self.trace, self.diff_trace = message.trace, message.diff
        await self.mount_views()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self.first_paint_at = time.perf_counter()
        self.first_paint_cpu = time.process_time()  # for benchmarks/viewer_load.py
        self._first_paint.set()

    async def mount_views(self) -> None:
        tr = self.trace
        assert tr is not None
        tabs = TabbedContent(id="tabs")
        await self.mount(tabs, before=self.query_one(Footer))
        # Only the timeline is built before the first paint; the other views are built (and their
        # aggregates computed) the first time their tab is opened.
        panes = [
            TabPane("Timeline", Vertical(Timeline(tr, id="timeline"), Details(tr, id="details")), id="timeline"),
            TabPane("Ops", id="ops"),
            TabPane("Call tree", id="calltree"),
            TabPane("Memory", id="memory"),
            TabPane("Steps", id="steps"),
            TabPane("Flame", id="flame"),
        ]
        if is_job(tr):  # a job's rank traces: each rank's compute and collective wait per step
            panes.append(TabPane("Ranks", id="ranks"))
        if self.diff_trace is not None:
            panes.append(TabPane("Diff", id="diff"))
            panes.append(TabPane("A|B", id="sidebyside"))
        warn = self._warnings()
        if warn:
            panes.append(TabPane(f"Warnings ({len(warn)})", VerticalScroll(
                Static(self._warnings_text(warn), id="warnings-text"), id="warnings-scroll"), id="warnings"))
        await tabs.add_pane(panes[0])
        for p in panes[1:]:
            await tabs.add_pane(p)
        await self.mount(SearchInput(placeholder="search names, categories, args (/regex/); Enter next, "
                                     "Shift+Enter previous, Esc close", id="search"), before=self.query_one(Footer))
        await self.mount(ExportInput(placeholder="file name ending in .csv or .json; Enter writes, Esc closes",
                                     id="export"), before=self.query_one(Footer))
        await self.mount(Static(self._status_text(), id="status"), before=self.query_one(Footer))
        if self.diff_trace is not None:  # `python -m viewer diff A B` asked for the comparison first
            # Straight there: focusing the timeline first raced with the diff table's focus on a busy
            # machine (the tab of the focused widget wins), and the app opened on the timeline.
            await self.action_tab("diff")
        else:
            tabs.active = "timeline"
            self.query_one(Timeline).focus()

    @property
    def shown(self) -> Trace:
        """The trace on screen. The views, the search box and the status line exist only once it has
        loaded, so what they call may rely on it."""
        if self.trace is None:
            raise RuntimeError("no trace is loaded yet")
        return self.trace

    def _warnings(self) -> list[str]:
        tr = self.shown
        return tr.warnings + ([f"B: {w}" for w in self.diff_trace.warnings] if self.diff_trace else [])

    @staticmethod
    def _warnings_text(warn: list[str]) -> Text:
        return Text("\n".join(f"• {literal(w)}" for w in warn))

    async def on_flows_ready(self, _message: FlowsReady) -> None:
        if self.trace is None or not self.query("#tabs"):
            return
        tl = self.query_one(Timeline)
        if tl.selected >= 0:
            tl.select(tl.selected, reveal=False)
        self.set_status()
        warn = self._warnings()
        tabs = self.query_one("#tabs", TabbedContent)
        if self.query("#warnings-text"):
            self.query_one("#warnings-text", Static).update(self._warnings_text(warn))
            tabs.get_tab("warnings").label = f"Warnings ({len(warn)})"
        elif warn:
            await tabs.add_pane(TabPane(f"Warnings ({len(warn)})", VerticalScroll(
                Static(self._warnings_text(warn), id="warnings-text"), id="warnings-scroll"), id="warnings"))

    def _status_text(self, extra: str = "") -> Text:
        tr = self.trace
        if tr is None:
            return Text("")
        name = os.path.basename(tr.path) if tr.path else "trace"
        msg = (f" {literal(name)} · {len(tr):,} events · {len(tr.lanes)} lanes · {len(tr.flow_src)} flows · "
               f"span {fmt_ns(tr.home[1] - tr.home[0])}")
        if self._n_steps is None:
            self._n_steps = len(step_events(tr))
        n_steps = self._n_steps
        if n_steps:
            msg += f" · {n_steps} step{'s' if n_steps > 1 else ''} (p)"
        if tr.warnings:
            msg += f" · {len(tr.warnings)} warnings (e)"
        if extra:  # what just happened comes first: a narrow terminal cuts the end of the line
            msg = " " + extra + " ·" + msg
        else:
            msg += " · ◆ instant ▌ narrow, yellow match, green launched · ? keys and legend"
        return Text(msg)

    def set_status(self, extra: str = "") -> None:
        for w in self.query("#status").results(Static):
            w.update(self._status_text(extra))

    # ---- cross-view wiring ----
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        for d in self.query(Details):
            d.show(message.index)

    def on_timeline_range_changed(self, message: Timeline.RangeChanged) -> None:
        for d in self.query(Details):
            if message.t0 is None or message.t1 is None:
                d.show(self.query_one(Timeline).selected)
            else:
                d.show_range(range_summary(self.shown, message.t0, message.t1))
        if message.t0 is not None and message.t1 is not None:
            self.set_status(f"range {fmt_ns(message.t1 - message.t0)} marked: sums in the details pane; "
                            f"E exports it, V clears")

    async def on_ranks_view_chosen(self, message: RanksView.Chosen) -> None:
        await self.on_steps_view_chosen(StepsView.Chosen(message.event))

    async def on_steps_view_chosen(self, message: StepsView.Chosen) -> None:
        await self.action_tab("timeline")
        tl = self.query_one(Timeline)
        tl.select(message.event)
        tl.action_fit()
        tl.focus()

    async def on_diff_view_picked(self, message: DiffView.Picked) -> None:
        """A Diff table row: its op is the one highlighted in the side-by-side timelines; Enter goes there."""
        self._diff_pick = message.key
        if message.jump:
            await self.action_tab("sidebyside")
        for view in self.query(DiffTimelines).results(DiffTimelines):
            if message.jump:
                view.show_op(message.key)
            else:
                view.highlight(message.key)

    async def on_ops_view_highlighted(self, message: OpsView.Highlighted) -> None:
        tr = self.shown
        tl = self.query_one(Timeline)
        mask = message.mask
        tl.match_mask = mask
        tl.redraw()
        if message.jump:
            idx = np.flatnonzero(mask)
            if len(idx):
                longest = int(idx[np.argmax(tr.dur[idx])])
                await self.action_tab("timeline")
                tl.select(longest)
                tl.action_fit()
                tl.focus()

    # ---- actions ----
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _build_view(self, tab: str) -> Widget | None:
        tr = self.shown
        if tab == "ops":
            return OpsView(tr, id="ops-view")
        if tab == "calltree":
            return CallTreeView(tr, id="calltree-view")
        if tab == "memory":
            return MemoryView(tr, id="memory-view")
        if tab == "steps":
            return StepsView(tr, id="steps-view")
        if tab == "flame":
            return FlameView(tr, id="flame-view")
        if tab == "ranks":
            return RanksView(tr, id="ranks-view")
        if tab == "diff" and self.diff_trace is not None:
            return DiffView(tr, self.diff_trace, id="diff-view")
        if tab == "sidebyside" and self.diff_trace is not None:
            dv = self.query(DiffView)
            rows, steps = ((dv.first().rows, dv.first().steps) if dv else
                           (None, (len(step_events(tr)), len(step_events(self.diff_trace)))))
            if rows is None:
                rows = diff_tables(ops_table(tr), ops_table(self.diff_trace), *steps)
            view = DiffTimelines(tr, self.diff_trace, rows, steps, id="sidebyside-view")
            if self._diff_pick is not None:
                view.highlight(self._diff_pick)
            return view
        return None

    async def ensure_view(self, pane: Widget) -> None:
        if pane.children:
            return
        view = self._build_view(pane.id or "")
        if view is not None:
            await pane.mount(view)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        await self.ensure_view(event.pane)

    async def action_tab(self, tab: str) -> None:
        tabs = self.query("#tabs")
        if not tabs:
            return
        tc = tabs.first(TabbedContent)
        panes = tc.query(f"TabPane#{tab}")
        if not panes:
            why = {"diff": "no diff: compare two traces with `python -m viewer diff A.json B.json`",
                   "ranks": "no ranks: open a job's rank traces (python -m viewer DIR, or several files)",
                   "sidebyside": "no diff: compare two traces with `python -m viewer diff A.json B.json`",
                   "warnings": "no warnings: the trace was read without a problem"}
            self.set_status(why.get(tab, f"no {tab} tab"))
            return
        pane = panes.first()
        await self.ensure_view(pane)
        # Focus something inside the new pane first: focus left on a hidden widget would switch back.
        targets: dict[str, str | type[Widget]] = {"timeline": Timeline, "ops": "#ops-table", "calltree": CallTreeView,
                                                  "memory": MemoryView, "steps": StepsView, "flame": FlameView,
                   "diff": "#diff-table", "warnings": "#warnings-scroll", "ranks": RanksView,
                   "sidebyside": AlignedTimeline}
        found = pane.query(targets[tab])
        if tab == "steps" and pane.query("#steps-table"):
            found = pane.query("#steps-table")
        if tab == "ranks" and pane.query("#ranks-table"):
            found = pane.query("#ranks-table")
        if found:
            found.first().focus()
        tc.active = tab

    def action_export(self, what: str) -> None:
        """Open the file-name box: `ops` (the Ops table as shown) or `range` (the marked range)."""
        if self.trace is None:
            return
        if what == "range" and self.query_one(Timeline).time_range is None:
            self.set_status("no range marked: press v at both ends (or shift+drag) on the timeline first")
            return
        box = self.query_one("#export", ExportInput)
        box.what = what
        base = os.path.splitext(os.path.basename(self.shown.path or "trace"))[0] or "trace"
        box.value = f"{base}.{what}.csv"
        box.add_class("open")
        box.focus()

    async def close_export(self) -> None:
        box = self.query_one("#export", ExportInput)
        box.remove_class("open")
        await self.action_tab("ops" if box.what == "ops" else "timeline")

    async def finish_export(self, path: str) -> None:
        """Write the export; the file name as typed (literal) and the row count on the status line."""
        box = self.query_one("#export", ExportInput)
        tr = self.shown
        try:
            format_of(path)
            if box.what == "ops":
                rows = self.query_one(OpsView).export_rows()
                n = write_rows(path, rows)
            else:
                r = self.query_one(Timeline).time_range
                assert r is not None  # action_export checked it
                summary = range_summary(tr, *r)
                meta: dict[str, object] = {
                    "trace": tr.path, "t0_ns": summary.t0, "t1_ns": summary.t1,
                    "cpu_busy_ns": summary.cpu_busy, "kernels": summary.kernels,
                    "kernel_ns": summary.kernel_ns, "gpu_busy_ns": summary.gpu_busy}
                n = write_rows(path, summary.rows, meta)
        except (OSError, ValueError) as exc:
            self.set_status(f"not written: {literal(str(exc))}")
            return
        await self.close_export()
        self.set_status(f"wrote {n} rows to {literal(path)}")

    def action_open_search(self) -> None:
        if self.trace is None:
            return
        box = self.query_one("#search", SearchInput)
        box.add_class("open")
        box.focus()

    async def close_search(self) -> None:
        box = self.query_one("#search", SearchInput)
        box.remove_class("open")
        await self.action_tab("timeline")

    def run_search(self, query: str, step: int) -> None:
        """Small traces search at once; big ones in a worker so the UI keeps answering."""
        if self.trace is None:
            return
        if query == self._query:
            self.goto_match(step)
            return
        trace = self.trace
        if len(trace) >= BACKGROUND_SEARCH_EVENTS:
            self.set_status(f"searching {len(trace):,} events for {literal(query)!r} …")
            self.run_worker(lambda: self._search_worker(trace, query, step), thread=True, exclusive=True,
                            group="search")
            return
        try:
            matches = search(trace, query)
        except SearchError as exc:
            self.set_status(literal(str(exc)))
            return
        self._apply_search(query, matches, step)

    def _search_worker(self, trace: Trace, query: str, step: int) -> None:
        try:
            matches = search(trace, query)
        except SearchError as exc:
            self.post_message(SearchDone(query, None, step, str(exc)))
            return
        self.post_message(SearchDone(query, matches, step, None))

    def on_search_done(self, message: SearchDone) -> None:
        if message.error is not None:
            self.set_status(literal(message.error))
            return
        assert message.matches is not None  # a search without an error has its matches
        self._apply_search(message.query, message.matches, message.step)

    def _apply_search(self, query: str, matches: np.ndarray, step: int) -> None:
        tl = self.query_one(Timeline)
        self.matches = matches
        self._query = query
        mask = np.zeros(len(self.shown), dtype=np.bool_)
        mask[matches] = True
        tl.match_mask = mask if len(matches) else None
        self.goto_match(step)

    def goto_match(self, step: int) -> None:
        tl = self.query_one(Timeline)
        if not len(self.matches):
            self.set_status(f"no match for {literal(self._query)!r}" if self._query else "")
            tl.redraw()
            return
        tr = self.shown
        if tl.selected >= 0:
            t = tr.ts[tl.selected]
            here = np.flatnonzero(self.matches == tl.selected)
            if len(here):
                k = (int(here[0]) + step) % len(self.matches)
            elif step > 0:
                k = int(np.searchsorted(tr.ts[self.matches], t, "right")) % len(self.matches)
            else:
                k = (int(np.searchsorted(tr.ts[self.matches], t, "left")) - 1) % len(self.matches)
        else:
            k = 0 if step > 0 else len(self.matches) - 1
        if not self.query_one("#search").has_focus:
            self.query_one("#tabs", TabbedContent).active = "timeline"
            self.query_one(Timeline).focus()
        tl.select(int(self.matches[k]))
        self.set_status(f"match {k + 1} of {len(self.matches)} for {literal(self._query)!r}")

    def action_match(self, step: int) -> None:
        if self.trace is not None and len(self.matches):
            self.goto_match(step)


class DiffView(Vertical):
    """Op-by-op comparison of the two traces; sorted by the largest change of total time. The row under
    the cursor is the op highlighted in the A|B tab (X); Enter shows it there."""

    class Picked(Message):
        def __init__(self, key: tuple[str, str], jump: bool) -> None:
            super().__init__()
            self.key, self.jump = key, jump

    DEFAULT_CSS = "DiffView DataTable { height: 1fr; } DiffView Static { height: auto; }"

    def __init__(self, a: Trace, b: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.steps = (len(step_events(a)), len(step_events(b)))
        self.rows = diff_tables(ops_table(a), ops_table(b), *self.steps)
        self.names = (os.path.basename(a.path), os.path.basename(b.path))

    def compose(self) -> ComposeResult:
        new = sum(r.status == "new" for r in self.rows)
        gone = sum(r.status == "vanished" for r in self.rows)
        note = heading(*self.steps)
        yield Static(Text(f"A = {literal(self.names[0])}, B = {literal(self.names[1])}: {len(self.rows)} ops, "
                          f"{new} new in B, {gone} vanished from A; ratio = B / A; "
                          f"Enter or X: A above B on one time axis"
                          + (f"\n{note}" if note else "")))
        yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)

    def _pick(self, key: Any, jump: bool) -> None:
        if key is not None and key.value is not None:
            r = self.rows[int(key.value)]
            self.post_message(self.Picked((r.name, r.cat), jump))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._pick(event.row_key, False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._pick(event.row_key, True)

    def on_mount(self) -> None:
        dt = self.query_one(DataTable)
        for c in ("Name", "Category", "Count A", "Count B", "Total A", "Total B", "Δ total", "Ratio",
                  "Self A", "Self B", "Δ self", "Status"):
            dt.add_column(c, key=c)
        for i, r in enumerate(self.rows[:5000]):
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            style = "green" if r.delta_total < 0 else ("red" if r.delta_total > 0 else "")
            dt.add_row(Text(literal(r.name[:70])[:70]), Text(literal(r.cat[:16])[:16]), fmt_count(r.count_a),
                       fmt_count(r.count_b),
                       fmt_ns(r.total_a), fmt_ns(r.total_b), Text(_signed(r.delta_total), style=style), ratio,
                       fmt_ns(r.self_a), fmt_ns(r.self_b), Text(_signed(r.delta_self)), r.status, key=str(i))


def _signed(ns: float) -> str:
    return ("+" if ns > 0 else "") + fmt_ns(ns) if ns else "0"
