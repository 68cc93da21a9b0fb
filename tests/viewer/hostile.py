"""A corpus of hostile text and a driver that shows every screen of the TUI on it, shared by
test_hostile_text.py and tests/fuzz/test_fuzz_viewer.py.

What "safe" means on a terminal: no character that `literal` would escape (C0/C1 controls, DEL, bidi
marks and overrides, zero-width and tag characters, lone surrogates) in anything drawn or printed,
and no markup interpreted (the text `[@click=app.quit]` shows as those characters; no span of the
screen carries a link or an action that the trace put there).
"""

from __future__ import annotations

import json

from safeio import literal
from textual.pilot import Pilot

from viewer.app import ViewerApp
from viewer.calltree import CallTreeView
from viewer.timeline import Timeline

MARKUP = "[@click=app.quit]x[/]"
HOSTILE = [
    MARKUP, "[bold red]r[/bold red]", "[link=https://e.example]l[/link]", "[/]",
    "\x1b]2;PWNED\x1b\\", "\x1b[2J\x1b[H", "\x1b]52;c;cHduZWQ=\x07", "\x9b31m", "\x9d0;t\x9c", "\x07\x08\x00\x7f\x85",
    "a\u200fb\u200ec\u061cd", "\u202eevil\u202c", "\u2066iso\u2069", "zero\u200bwidth\u200d\ufeff",
    "tag\U000e0041\U000e007f", "lone\ud800", "line\u2028sep\u2029", "\U0001f600 wide 漢字",
]


def unsafe(text: str) -> list[str]:
    """Every character of the text that must not reach a terminal (newlines separate lines)."""
    return sorted({c for c in text if c != "\n" and literal(c) != c})


def hostile_events(words: list[str] = HOSTILE) -> list[dict]:
    """Every place a trace can put a string the viewer shows, filled with the given words."""
    ev: list[dict] = []
    for k, h in enumerate(words):
        t = k * 100
        ev += [
            {"ph": "M", "name": "process_name", "pid": h, "tid": 0, "args": {"name": h}},
            {"ph": "M", "name": "process_name", "pid": h, "tid": 0, "args": {"name": h + "2"}},  # duplicate
            {"ph": "M", "name": "thread_name", "pid": h, "tid": h, "args": {"name": h}},
            {"ph": "X", "name": h, "cat": h, "pid": h, "tid": h, "ts": t, "dur": 50, h: h,
             "args": {h: h, "Input Dims": [[k, 2]], "nested": {h: [h]}, "Call stack": f"{h};{h}(1): {h}"}},
            {"ph": "X", "name": h + "child", "cat": h, "pid": h, "tid": h, "ts": t + 1, "dur": 10,
             "args": {"External id": k}},
            {"ph": "B", "name": h, "cat": h, "pid": h, "tid": h, "ts": t + 20},
            {"ph": "E", "pid": h, "tid": h, "ts": t + 30, "args": {h: h}},
            {"ph": "i", "name": h, "cat": h, "pid": h, "tid": h, "ts": t + 40, "s": "t"},
            {"ph": "i", "name": "[memory]", "pid": h, "tid": h, "ts": t + 41,
             "args": {"Total Allocated": 1000 + k, "Total Reserved": 2000, "Bytes": 10 + k, "Device Type": [k, h],
                      "Device Id": h}},
            {"ph": "C", "name": h, "pid": h, "ts": t, "args": {h: 1e308}},
            {"ph": "C", "name": h, "pid": h, "ts": t + 5, "args": {h: -1e308}},
            {"ph": "s", "name": h, "cat": h, "id": k, "pid": h, "tid": h, "ts": t + 2},
            {"ph": "f", "name": h, "cat": h, "id": k, "pid": 0, "tid": h, "ts": t + 3, "bp": "e"},
            {"ph": "X", "name": h, "cat": h, "pid": 0, "tid": h, "ts": t + 3, "dur": 5},
            {"ph": "b", "name": h, "cat": h, "id": h, "pid": h, "ts": t},
            {"ph": "e", "name": h, "cat": h, "id": h, "pid": h, "ts": t + 9},
            {"ph": h, "name": h, "pid": h, "tid": h, "ts": t},  # an unknown phase, named in a warning
        ]
    return ev


def write_trace(path, events) -> str:
    """JSON with \\u escapes for everything outside ASCII (a lone surrogate has no other spelling)."""
    path.write_text(json.dumps({"traceEvents": events, "traceName": HOSTILE[0], HOSTILE[4]: HOSTILE[5]}))
    return str(path)


def screen_text(app: ViewerApp) -> tuple[str, list]:
    """What the screen shows now (every line of every layer), and every span's style."""
    strips = app.screen._compositor.render_strips()
    lines, styles = [], []
    for strip in strips:
        lines.append("".join(seg.text for seg in strip))
        styles.extend(seg.style for seg in strip if seg.style is not None)
    return "\n".join(lines), styles


class Screens:
    """Collects every screen shown and checks it as it goes."""

    def __init__(self, app: ViewerApp, pilot: Pilot):
        self.app, self.pilot = app, pilot
        self.seen: list[str] = []

    async def snap(self, where: str) -> None:
        await self.pilot.pause()
        text, styles = screen_text(self.app)
        bad = unsafe(text)
        assert not bad, f"{where}: unsafe characters on screen: {bad!r}"
        for st in styles:
            assert not st.link, f"{where}: a link on screen: {st.link!r}"
            click = (st.meta or {}).get("@click")
            assert not click or "quit" not in str(click), f"{where}: an action from the trace: {click!r}"
        assert self.app.is_running, f"{where}: the app stopped"
        self.seen.append(text)

    def shown(self, needle: str) -> bool:
        return any(needle in s for s in self.seen)


async def wait_loaded(app: ViewerApp, pilot: Pilot) -> None:
    await app.workers.wait_for_complete()
    for _ in range(100):
        await pilot.pause()
        if app.query("#status") or app.query("#error"):
            break
    await pilot.pause()


async def every_screen(app: ViewerApp, pilot: Pilot, searches: list[str], max_select: int = 200) -> Screens:
    """Every tab, every event selected (details pane), every key of the timeline, search, help."""
    sc = Screens(app, pilot)
    await wait_loaded(app, pilot)
    await sc.snap("first paint")
    if app.trace is None:
        return sc
    tl = app.query_one(Timeline)
    for i in range(min(len(app.trace), max_select)):
        tl.select(i)
        await sc.snap(f"event {i} selected")
    for key in ("w", "s", "a", "d", "f", "0", "up", "down", "full_stop", "comma", "right_square_bracket",
                "left_square_bracket", "pagedown", "pageup", "escape"):
        await pilot.press(key)
    await sc.snap("timeline keys")
    await pilot.press("o")
    await sc.snap("ops")
    for key in ("1", "2", "g"):
        await pilot.press(key)
        await sc.snap(f"ops sorted {key}")
    await pilot.press("c")
    tree = app.query_one(CallTreeView)
    for node in list(tree.root.children):
        for child in list(node.children):
            child.expand()
    await sc.snap("call tree expanded")
    # The Memory tab's plots, then its details (the op at each peak and its stack).
    await pilot.press("m")
    await sc.snap("tab m")
    for details in app.query("#memory-details"):
        details.scroll_visible(top=True, animate=False)
        await sc.snap("memory details")
    # i then b: the Flame tab in time, then in memory mode (b again: the next device).
    for key in ("p", "i", "b", "down", "enter", "b", "e", "x"):
        await pilot.press(key)
        await sc.snap(f"tab {key}")
    await pilot.press("X", "full_stop")  # the diff's A|B timelines: an event picked in A, then in B
    await sc.snap("A|B, A's event picked")
    await pilot.press("tab", "full_stop", "w", "0")
    await sc.snap("A|B, B's event picked")
    await pilot.press("t", "slash")
    box = app.query_one("#search")
    for q in searches:
        box.value = q
        await pilot.press("enter")
        await sc.snap(f"search {q!r}")
    await pilot.press("escape", "question_mark")
    await sc.snap("help")
    await pilot.press("escape")
    return sc
