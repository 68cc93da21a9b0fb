"""Where exports go (issue 21, item 3) and what they carry: through the public API, /dev/stdout and
/dev/null are written, not replaced; a symlinked target stays a link; an existing file keeps its mode;
names with control characters or lone surrogates export and load, and the table escapes them."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import tensorlib as tl
from profiler import profile, record_function

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = {
    "chrome": lambda p, path: p.export_chrome_trace(path),
    "chrome.gz": lambda p, path: p.export_chrome_trace(path),
    "stacks": lambda p, path: p.export_stacks(path),
    "memory": lambda p, path: p.export_memory_timeline(path),
}


def _profiled(name="step"):
    with profile(profile_memory=True) as p:
        with record_function(name):
            tl.ones(4) * 2
    return p


def _export(kind, p, path):
    EXPORTS[kind](p, os.fspath(path))


def _script(tmp_path, target):
    script = tmp_path / "export_to.py"
    script.write_text("import sys, tensorlib as tl\nfrom profiler import profile\n"
                      "with profile() as p:\n    tl.ones(2) + 1\n"
                      "print('before')\np.export_chrome_trace(sys.argv[1])\nprint('\\nafter')\n")
    return [sys.executable, str(script), target]


def test_export_chrome_trace_to_dev_stdout_redirected_to_a_file(tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        r = subprocess.run(_script(tmp_path, "/dev/stdout"), stdout=f, stderr=subprocess.PIPE,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    before, trace, after = out.read_text().split("\n", 2)
    assert before == "before" and after == "after\n"
    assert json.loads(trace)["traceName"] == "/dev/stdout"


def test_export_chrome_trace_to_dev_stdout_on_a_pipe(tmp_path):
    r = subprocess.run(_script(tmp_path, "/dev/stdout"), capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.split(b"\n")[1])["traceEvents"]


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_dev_null_stays_a_device(kind):
    p = _profiled()
    _export(kind, p, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_symlinked_target_stays_a_link_and_its_target_is_written(tmp_path, kind):
    real = tmp_path / "real" / ("t.json.gz" if kind == "chrome.gz" else "t.out")
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / ("link.json.gz" if kind == "chrome.gz" else "link.out")
    link.symlink_to(real)
    _export(kind, _profiled(), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() != b"old" and real.stat().st_size > 0
    assert sorted(os.listdir(real.parent)) == [real.name]          # no temporary left behind


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_existing_0644_file_stays_0644_under_a_strict_umask(tmp_path, kind):
    path = tmp_path / ("t.json.gz" if kind == "chrome.gz" else "t.out")
    path.write_bytes(b"old")
    path.chmod(0o644)
    old = os.umask(0o077)
    try:
        _export(kind, _profiled(), path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() != b"old"


def test_lone_surrogate_name_exports_and_loads_everywhere(tmp_path):
    p = _profiled("x\ud800y")
    path = tmp_path / "t.json"
    p.export_chrome_trace(str(path))
    names = {e.get("name") for e in json.loads(path.read_bytes())["traceEvents"]}
    assert "x\\ud800y" in names                                       # the text \ud800, visible and valid
    assert orjson.loads(path.read_bytes())["traceEvents"]
    from viewer.model import load_trace
    load_trace(str(path))
    p.export_stacks(str(tmp_path / "s.txt"))
    assert "x\\ud800y" in (tmp_path / "s.txt").read_text()
    assert "x\\ud800y" in p.key_averages().table()
    assert "x\ud800y" in {r.key for r in p.key_averages()}                  # stored names are unchanged


def test_surrogate_in_the_trace_name_and_the_dict_path(tmp_path):
    with profile(record_shapes=True) as p:           # events as dicts (the other export path)
        with record_function("\udcff"):
            tl.ones(2) + 1
    path = tmp_path / "t.json"
    p.export_chrome_trace(str(path))
    assert "\\udcff" in {e.get("name") for e in orjson.loads(path.read_bytes())["traceEvents"]}


def test_table_escapes_control_characters_but_the_trace_keeps_them(tmp_path):
    hostile = "\x1b]2;PWNED\x07\u202e\x9b31m"
    p = _profiled(hostile)
    table = p.key_averages().table()
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table and "\x9b" not in table
    assert "\\x1b]2;PWNED\\x07\\u202e\\x9b31m" in table
    assert hostile in {e.key for e in p.key_averages()}
    p.export_chrome_trace(str(tmp_path / "t.json"))
    assert hostile in {e.get("name") for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"]}
