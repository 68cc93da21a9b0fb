"""Fuzz: ``python -m profiler run`` (in process) with hostile script names, output names, script
arguments and record_function names, a script that may raise with a hostile message (issue 21). Every
run: no traceback of ours, no control/bidi/invisible character on stdout or stderr, and the trace is
written (no lost file) and loads as JSON with the names the script gave, lone surrogates as \\udXXX."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from safeio import literal

from profiler._cli import main

from ._scale import SCALE

NASTY = ["\x1b]2;PWNED\x07", "\x1b[2J", "\x1b]52;c;aGk=\x07", "\u202e", "\u200f", "\u200b", "\x9b31m",
         "\U000e0041", "[@click=app.quit]", "\ud800", "\udcff", '"', "\\", "\n", "\r", "\t", "%s", "{0}", "-o"]
text = st.lists(st.sampled_from(NASTY) | st.text(st.characters(blacklist_categories=()), max_size=3),
                max_size=4).map("".join)
SCRIPT = """
import sys
import tensorlib as tl
from profiler import record_function
for name in NAMES:
    with record_function(name):
        tl.ones(2) + 1
if RAISE:
    raise ValueError(NAMES[0] if NAMES else "")
"""


def _file_name(prefix: str, s: str, suffix: str) -> str:
    """`s` made into a legal file name (no '/', no NUL, encodable by the file system, short enough)."""
    name = prefix + s.replace("/", "_").replace("\0", "_") + suffix
    try:
        ok = len(os.fsencode(name)) < 200
    except UnicodeEncodeError:                      # a surrogate the file system cannot carry
        ok = False
    return name if ok else prefix + suffix


def _safe(out: str) -> bool:
    return all(literal(line) == line for line in out.split("\n"))


def _expected(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=text, output=text, names=st.lists(text, max_size=3), args=st.lists(text, max_size=3),
       raises=st.booleans(), gz=st.booleans())
def test_hostile_names_and_arguments(script, output, names, args, raises, gz):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, _file_name("s", script, ".py"))
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(f"NAMES = {names!r}\nRAISE = {raises!r}\n" + SCRIPT)
        out_path = os.path.join(tmp, _file_name("o", output, ".json.gz" if gz else ".json"))
        with open(out_path, "wb") as f:
            f.write(b"old")
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = main(["run", "-o", out_path, path, *args, "--"])
        assert rc == (1 if raises else 0), stderr.getvalue()
        assert _safe(stdout.getvalue()) and _safe(stderr.getvalue())
        if raises:
            assert "ValueError" in stderr.getvalue() and 'in <module>' in stderr.getvalue()
        else:
            assert "Traceback" not in stderr.getvalue()
        data = open(out_path, "rb").read()
        if raises and not names:        # failed before any op ran: no table, nothing written
            assert data == b"old" and "before any tensorlib op ran" in stderr.getvalue()
            return
        doc = json.loads(gzip.decompress(data) if gz else data)
        ranges = [e["name"] for e in sorted(doc["traceEvents"], key=lambda e: e.get("ts", 0))
                  if e.get("cat") == "user_annotation"]
        assert ranges == [_expected(n) for n in names]
