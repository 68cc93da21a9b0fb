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
from .text import clipped, fmt_ns

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


class Details(VerticalScroll):
    DEFAULT_CSS = """
    Details { height: 12; border-top: solid $primary; }
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
