"""The details pane: every field and arg of the selected event, its parents and its flows.

Built as a rich Text from `safe_text` pieces so nothing from the trace is ever parsed as markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from .model import Trace
from .selection import RangeSummary
from .text import clipped, fmt_ns

# Rows of a range summary listed at most.
MAX_RANGE_ROWS = 40

# Parents listed at most; the rest are counted.
MAX_PARENTS = 30


def describe(trace: Trace, ev: int) -> Text:
    if ev < 0:
        return Text("Nothing selected. Click an event, or press . / , to step through a lane.", style="dim")
    t = Text()

    def line(key: object, value: object, style: str = "", indent: str = "") -> None:
        # Keys come from the file as much as values do: both are literal, and both are clipped.
        t.append(f"{indent}{clipped(key, 200)}: ", style="bold")
        t.append(clipped(value), style=style)
        t.append("\n")

    lane = trace.lanes[int(trace.lane[ev])]
    line("name", trace.name_of(ev), "bold cyan")
    line("category", trace.cat_of(ev))
    line("lane", lane.title)
    origin = trace.home[0]
    line("start", f"+{fmt_ns(trace.ts[ev] - origin)}  (ts {int(trace.ts[ev])} ns)")
    line("duration", fmt_ns(trace.dur[ev]))
    line("self time", fmt_ns(trace.self_ns[ev]))
    raw = trace.raw[ev]
    if isinstance(raw, dict):
        for k, v in raw.items():
            if k not in ("name", "cat", "ts", "dur", "args", "pid", "tid"):
                line(k, v)
    args = trace.args_of(ev)
    if args:
        t.append("args\n", style="bold underline")
        for k, v in args.items():
            line(k, v, indent="  ")
    chain = trace.parents(ev)
    if chain:
        t.append("parents\n", style="bold underline")
        for p in chain[:MAX_PARENTS]:
            t.append(f"  {clipped(trace.name_of(p), 200)}  ({fmt_ns(trace.dur[p])})\n")
        if len(chain) > MAX_PARENTS:  # 20k unclosed B events made every selection render 20k lines
            t.append(f"  … and {len(chain) - MAX_PARENTS:,} more\n", style="dim")
    out, inn = trace.flows_out(ev), trace.flows_in(ev)
    launched = [x for x in trace.launched(ev) if x not in out]
    for title, items in (("flows out ( ] )", out), ("flows in ( [ )", inn), ("launched by children", launched)):
        if items:
            t.append(f"{title}\n", style="bold underline")
            for x in items[:50]:
                ln = trace.lanes[int(trace.lane[x])]
                t.append(f"  {clipped(trace.name_of(x), 200)}  on {clipped(ln.title, 200)}  ({fmt_ns(trace.dur[x])})\n")
    return t


def describe_range(r: RangeSummary, origin: int) -> Text:
    t = Text()
    t.append(f"range +{fmt_ns(r.t0 - origin)} to +{fmt_ns(r.t1 - origin)} ({fmt_ns(r.t1 - r.t0)})\n",
             style="bold cyan")
    t.append(f"CPU busy {fmt_ns(r.cpu_busy)}", style="bold")
    if r.kernels:
        t.append(f" · {r.kernels} kernels, {fmt_ns(r.kernel_ns)} · GPU busy {fmt_ns(r.gpu_busy)} "
                 f"({100 * r.gpu_busy / max(r.t1 - r.t0, 1):.0f}% of the range)", style="bold")
    t.append(f" · {len(r.rows)} ops (time and self time inside the range)\n")
    for row in r.rows[:MAX_RANGE_ROWS]:
        t.append(f"  {fmt_ns(float(row['time_in_range_ns'] or 0)):>9} {fmt_ns(float(row['self_in_range_ns'] or 0)):>9} "
                 f"×{row['count']:<5} ")
        t.append(clipped(row["name"], 200))
        t.append(f"  {clipped(row['cat'], 40)}\n", style="dim")
    if len(r.rows) > MAX_RANGE_ROWS:
        t.append(f"  … and {len(r.rows) - MAX_RANGE_ROWS} more (E exports them all)\n", style="dim")
    return t


class Details(VerticalScroll):
    # Its height is the app's (#details: what the timeline leaves).
    DEFAULT_CSS = """
    Details { border-top: solid $primary; }
    """

    def __init__(self, trace: Trace, **kw: Any) -> None:  # kw: Widget's (id, classes, ...)
        super().__init__(**kw)
        self.trace = trace
        self.body = Static(describe(trace, -1), markup=False)

    def compose(self) -> ComposeResult:
        yield self.body

    def show(self, ev: int) -> None:
        self.body.update(describe(self.trace, ev))
        self.scroll_home(animate=False)

    def show_range(self, summary: RangeSummary) -> None:
        self.body.update(describe_range(summary, self.trace.home[0]))
        self.scroll_home(animate=False)
