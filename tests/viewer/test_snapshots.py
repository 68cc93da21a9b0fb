"""SVG snapshots of each view at a fixed size on a small, hand-made trace (no clocks, no paths)."""

from viewer.app import ViewerApp
from viewer.model import load_trace

from .conftest import CPU, SMALL

SIZE = (110, 34)


def app(diff: bool = False) -> ViewerApp:
    # Loaded up front so the snapshot never depends on worker timing.
    tr = load_trace(str(SMALL))
    return ViewerApp(trace=tr, diff_trace=load_trace(str(CPU)) if diff else None)


async def ready(pilot) -> None:
    for _ in range(100):
        await pilot.pause()
        if pilot.app.query("#status"):
            break
    await pilot.pause()


def test_timeline(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=ready)


def test_timeline_selection_details_and_flows(snap_compare):
    async def run(pilot):
        await ready(pilot)
        await pilot.press("full_stop", "full_stop", "full_stop", "down", "down")
    assert snap_compare(app(), terminal_size=SIZE, run_before=run)


def test_timeline_zoomed(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["_", "_", "w", "w", "w", "d"], run_before=ready)


def test_ops_table(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["o", "_"], run_before=ready)


def test_call_tree(snap_compare):
    async def run(pilot):
        await ready(pilot)
        await pilot.press("c")
        tree = pilot.app.query_one("#calltree-view")
        for lane in tree.root.children:
            for node in lane.children:
                node.expand()
        await pilot.pause()
    assert snap_compare(app(), terminal_size=SIZE, run_before=run)


def test_memory(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["m", "_"], run_before=ready)


def test_help(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["question_mark", "_"], run_before=ready)


def test_search(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["slash", *"addmm", "enter", "_"], run_before=ready)


def test_diff(snap_compare):
    assert snap_compare(app(diff=True), terminal_size=SIZE, press=["x", "_"], run_before=ready)
