"""Rule: nothing from a file or a user reaches the terminal except through `literal`, and no markup
from them is interpreted. Every screen of the TUI and every CLI output, on a corpus of hostile names
(markup, ESC/OSC/CSI/C1, bidi marks and overrides, zero-width and tag characters, lone surrogates)
in every field a trace can carry, and in the file's own name."""

import os
import subprocess
import sys

import pytest

from viewer import app as app_module
from viewer.app import ViewerApp

from .hostile import HOSTILE, MARKUP, Screens, every_screen, hostile_events, unsafe, wait_loaded, write_trace

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SIZE = (140, 45)
# A file name with markup (the directory ends in "[", so the path holds "[/]"), escapes, bidi and an
# invalid UTF-8 byte (\udcff on Linux).
EVIL_DIR = "[@click=app.quit]x["
EVIL_NAME = "]y[b]\x1b]2;t\x07\u202e\udcff[@click=app.quit]z.json"


@pytest.fixture
def hostile_path(tmp_path):
    d = tmp_path / EVIL_DIR
    d.mkdir()
    return write_trace(d / EVIL_NAME, hostile_events())


async def test_every_screen_of_the_tui_shows_hostile_text_literally(hostile_path, tmp_path):
    other = write_trace(tmp_path / "b.json", hostile_events(list(reversed(HOSTILE))))
    app = ViewerApp(hostile_path, diff_path=other)
    async with app.run_test(size=SIZE) as pilot:
        sc = await every_screen(app, pilot, searches=HOSTILE[:6] + ["/[unclosed"])
    assert app.trace is not None and app.diff_trace is not None
    assert sc.shown(MARKUP)  # the markup is on screen as the characters it is
    assert sc.shown("\\x1b]2;PWNED\\x1b\\\\") and sc.shown("\\u202eevil") and sc.shown("lone\\ud800")
    assert sc.shown("\\U000e0041")  # tag characters are spelled out
    assert sc.shown("peak")  # the memory tab drew (a list-valued Device Type used to raise TypeError)
    assert sc.shown("op at peak: ") and sc.shown("stack (Call stack, innermost first)")  # its details
    assert sc.shown("[memory device type [")  # the Flame tab in memory mode


async def test_file_name_on_the_loading_and_error_screens(tmp_path, monkeypatch):
    d = tmp_path / EVIL_DIR
    d.mkdir()
    bad = d / EVIL_NAME
    bad.write_text("{ not json")
    app = ViewerApp(str(bad))
    async with app.run_test(size=SIZE) as pilot:
        sc = await every_screen(app, pilot, searches=[])
    assert app.error and sc.shown("invalid JSON") and sc.shown("\\x1b]2;t\\x07\\u202e")

    # The loading screen: held open until it has been looked at.
    import threading
    gate = threading.Event()
    real = app_module.load_trace
    monkeypatch.setattr(app_module, "load_trace", lambda *a, **k: (gate.wait(10), real(*a, **k))[1])
    good = write_trace(d / EVIL_NAME, hostile_events(HOSTILE[:2]))
    app = ViewerApp(good)
    async with app.run_test(size=SIZE) as pilot:
        sc = Screens(app, pilot)
        await sc.snap("loading")
        assert sc.shown("Loading ]y[b]\\x1b]2;t\\x07\\u202e\\udcff[@click=app.quit]z.json")
        gate.set()
        await wait_loaded(app, pilot)
        await sc.snap("loaded")


def cli(*args):
    """The CLI in a fresh process whose stdout is strict UTF-8, as a terminal's would be."""
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8:strict")
    return subprocess.run([sys.executable, "-m", "viewer", *args], capture_output=True, text=True,
                          encoding="utf-8", errors="surrogateescape", env=env, timeout=120)


def test_every_cli_output_shows_hostile_text_literally(hostile_path, tmp_path):
    other = write_trace(tmp_path / "b.json", hostile_events(HOSTILE[::2]))
    runs = [cli("summary", hostile_path), cli("summary", "--by-shape", "--filter", "[", hostile_path),
            cli("summary", "--json", hostile_path), cli("diff", "--text", hostile_path, other),
            cli("diff", "--json", other, hostile_path), cli("summary", "--sort", HOSTILE[4], hostile_path),
            cli("summary", hostile_path + "\x1b[2J-missing"), cli("summary", "--memory", hostile_path),
            cli("summary", "--memory", "--json", hostile_path)]
    for r in runs:
        assert "Traceback" not in r.stderr, r.stderr
        assert not unsafe(r.stdout) and not unsafe(r.stderr), (unsafe(r.stdout), unsafe(r.stderr))
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 0, 2, 1, 0, 0]
    assert MARKUP[:16] in runs[0].stdout and "lone\\ud800" in runs[0].stdout
    assert "duplicate process_name of pid \\x1b]2;PWNED" in runs[0].stderr  # pids were printed raw
    assert "invalid choice: '\\x1b]2;PWNED" in runs[5].stderr
    assert "op at peak: " in runs[7].stdout and "\\u202eevil" in runs[7].stdout
