"""Trace files from other projects (tests/viewer/corpus/, see its README: catapult's trace viewer test
data, vendored with its licence): each summarises through the CLI without error, with the slice counts
the file holds, and as the reference aggregation written from the spec (test_producers.reference)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.viewer.test_producers import reference, viewer_summary
from viewer.__main__ import main
from viewer.model import load_trace

CORPUS = Path(__file__).parent / "corpus"
# slices per file (complete, B/E and async spans; instants and counters are not slices), read off each file
SLICES = {"trivial_trace.json": 2, "nanoseconds.json": 8, "instance_counters.json": 2, "instant_events.json": 0,
          "flow_simple.json": 5, "async_begin_end.json": 10, "nestable_async.json": 8, "tall_trace.json": 18,
          "simple_trace.json": 12}
FILES = sorted(CORPUS.glob("*/*.json"))


def test_the_corpus_is_what_the_readme_names() -> None:
    assert sorted(p.name for p in FILES) == sorted(SLICES)
    readme = (CORPUS / "README.md").read_text()
    assert all(name in readme for name in SLICES)
    assert (CORPUS / "catapult" / "LICENSE").read_text().startswith("Copyright 2015 The Chromium Authors")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_file_summarises_as_the_reference(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["ops"] if isinstance(rows, dict) else rows
    assert sum(r["count"] for r in rows) == SLICES[path.name]
    assert viewer_summary(load_trace(str(path))) == reference(path)


def test_corpus_nanoseconds_and_counters_read_right() -> None:
    ns = {r: c for r, c in viewer_summary(load_trace(str(CORPUS / "catapult" / "nanoseconds.json"))).items()}
    assert ns["us1"][1] == 1100 and ns["ns1"][1] == 11      # µs with decimals: exact ns
    tr = load_trace(str(CORPUS / "catapult" / "instance_counters.json"))
    assert tr.counters and all(len(ts) == len(v) > 0 for c in tr.counters for ts, v in c.series.values())
