"""Trace files from other projects (tests/viewer/corpus/, see its README: catapult's trace viewer test
data and Perfetto's JSON importer test traces, vendored with their licences): each summarises through the
CLI without error, with the slice counts the file holds, and as the reference aggregation written from the
spec (test_producers.reference); Perfetto's files also show the slices Perfetto's own expected outputs list."""
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
# Perfetto's: as its expected outputs count them, but for the deviations the README lists (marked)
PERFETTO_SLICES = {
    "args_ordered.json": 0,                 # two async b never ended: skipped (Perfetto: 2 unfinished)
    "connected_flow_data.json": 11, "counters_json_counters.json": 0,
    "decimal_timestamp_slices.json": 0,     # ph "XXX": unknown phase (Perfetto: 1)
    "display_time_unit_slices.json": 1, "flow_events_json_v1.json": 5, "flow_events_json_v2.json": 6,
    "invalid_string_ts_and_dur.json": 1,    # dur "invalid": an instant (Perfetto: dropped)
    "json_all_slice_types.json": 2, "json_async.json": 3, "json_counter_args.json": 0, "json_extreme_vals.json": 3,
    "json_flow.json": 2, "json_id2.json": 2, "json_id2_global_int_id.json": 1, "json_id2_global_string_id.json": 1,
    "json_id2_local_int_id.json": 1, "json_id2_local_string_id.json": 1, "json_incomplete.json": 1,
    "json_metadata.json": 4, "json_metadata_missing_or_invalid_ts.json": 0, "json_pid_tid_zero.json": 7,
    "json_sort_index_hints.json": 1, "json_sort_index_ordering.json": 4, "json_thread_state.json": 0,
    "json_thread_state_sched.json": 0, "json_trace_metadata.json": 1, "json_trailing_comma.json": 2,
    "overlapping_complete_event_import_log.json": 2, "overlapping_complete_event_recovered.json": 2,
    "same_ts_duration_slice_then_zero_duration_slice_unnesting.json": 2,
    "same_ts_two_duration_slice_unnesting.json": 2, "same_ts_two_zero_duration_slice_nesting.json": 2,
    "same_ts_zero_duration_slice_then_begin_end_slice_unnesting.json": 2,
    "same_ts_zero_duration_slice_then_duration_slice_unnesting.json": 2,
    "string_pid_tid.json": 0,               # ph "XXX": unknown phase (Perfetto: 1)
    "string_ts_and_dur.json": 2,
    "string_ts_trailing_chars.json": 1,     # dur "50a": an instant (Perfetto: dropped)
    "string_tts_and_tdur.json": 1, "trailing_empty_event.json": 1, "x_event_order.json": 2}
ALL_SLICES = {**SLICES, **PERFETTO_SLICES}
FILES = sorted(CORPUS.glob("*/*.json"))

# (name, ts ns, dur ns, depth) of slices in Perfetto's expected outputs (None: the test does not say)
PERFETTO_EXPECTED = {
    "x_event_order.json": [("Parent", 1000, 10000, 0), ("Child", 1000, 5000, 1)],
    "string_ts_and_dur.json": [("BeginEvent", 100000, 100500, None), ("CompleteEvent", 250000, 50500, None)],
    "display_time_unit_slices.json": [("add_graph", 1597071955492308000, 211463000, None)],
    "json_incomplete.json": [("typecheck", 4619295550000, None, None)],
    "json_trailing_comma.json": [("Bar", 4890000, 3764289708, None), ("Foo", 3473608458, 295555500, None)],
    "json_id2_global_int_id.json": [("write", 1850244461563845000, 167000, None)],
    "json_id2_local_int_id.json": [("write", 1750244461563845000, 167000, None)],
    "json_id2_global_string_id.json": [("AsyncId2GlobalString", 4000000, 100000, None)],
    "json_id2_local_string_id.json": [("AsyncId2LocalString", 4000000, 100000, None)],
    "string_tts_and_tdur.json": [("StringTtsTdur", 400000, 100000, None)],
    "same_ts_two_duration_slice_unnesting.json": [("Slice 1", None, None, 0), ("Slice 2", None, None, 0)],
    "same_ts_zero_duration_slice_then_duration_slice_unnesting.json": [("Slice 1", None, None, 1),
                                                                        ("Slice 2", None, None, 0)],
    "same_ts_duration_slice_then_zero_duration_slice_unnesting.json": [("Slice 1", None, None, 0),
                                                                        ("Slice 2", None, None, 0)],
    "json_metadata.json": [("ActivityOnThread31", 790000, 25000, None),
                           ("EventMissingCatAndArgs", 900000, 50000, None),
                           ("PidOnlyEvent", 960000, 10000, None), ("NoPidNoTidEvent", 970000, 10000, None)],
    "json_extreme_vals.json": [("CompleteNoTDUR", 1300000, 50000, None)],
    "overlapping_complete_event_recovered.json": [("outer", 100000, 100000, None), ("inner", 150000, 100000, None)],
    "json_pid_tid_zero.json": [("RoutineControl Reeq", 0, 4000, None), ("31 ", 0, 1000, None),
                               ("RoutineControl", 0, 1000, None), ("01 ", 1000, 1000, None),
                               ("startRoutine", 1000, 1000, None), ("02 03 ", 2000, 2000, None),
                               ("Routine Identifier", 2000, 2000, None)],
}
# where the viewer draws zero-duration slices as instants (README): (name, Perfetto's depth, ours)
PERFETTO_DEVIATIONS = {
    "same_ts_two_zero_duration_slice_nesting.json": [("Slice 1", 0, 0), ("Slice 2", 1, 0)],
    "same_ts_zero_duration_slice_then_begin_end_slice_unnesting.json": [("Slice 1", 0, 1), ("Slice 2", 0, 0)],
}


def test_the_corpus_is_what_the_readme_names() -> None:
    assert sorted(p.name for p in FILES) == sorted(ALL_SLICES)
    readme = (CORPUS / "README.md").read_text()
    assert all(name in readme for name in SLICES)
    assert (CORPUS / "catapult" / "LICENSE").read_text().startswith("Copyright 2015 The Chromium Authors")
    assert "Apache License" in (CORPUS / "perfetto" / "LICENSE").read_text()[:200]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_summarises_as_the_reference(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["ops"] if isinstance(rows, dict) else rows
    assert sum(r["count"] for r in rows) == ALL_SLICES[path.name]
    assert viewer_summary(load_trace(str(path))) == reference(path)


def _slices(name: str) -> dict[str, tuple[int, int, int]]:
    tr = load_trace(str(CORPUS / "perfetto" / name))
    return {tr.name_of(i): (int(tr.ts[i]), int(tr.dur[i]), int(tr.depth[i])) for i in range(len(tr))}


@pytest.mark.parametrize("name", sorted(PERFETTO_EXPECTED))
def test_perfetto_file_shows_perfettos_expected_slices(name: str) -> None:
    got = _slices(name)
    for slice_name, ts, dur, depth in PERFETTO_EXPECTED[name]:
        assert slice_name in got, (slice_name, sorted(got))
        want = tuple(g if w is None else w for g, w in zip(got[slice_name], (ts, dur, depth)))
        assert got[slice_name] == want, slice_name


@pytest.mark.parametrize("name", sorted(PERFETTO_DEVIATIONS))
def test_perfetto_depth_deviations_are_the_documented_ones(name: str) -> None:
    got = _slices(name)
    assert [(n, got[n][2]) for n, _, _ in PERFETTO_DEVIATIONS[name]] == [(n, ours) for n, _, ours in
                                                                       PERFETTO_DEVIATIONS[name]]


def test_perfettos_lenient_json_reads_with_a_warning() -> None:
    """Trailing commas and raw control characters in strings, as Perfetto reads them; a cut-off file as
    catapult repairs it. Each says what it forgave."""
    cases = {"args_ordered.json": "trailing commas ignored", "json_trailing_comma.json": "trailing commas ignored",
             "json_pid_tid_zero.json": "control characters inside strings read as such",
             "json_incomplete.json": "read the trace as truncated"}
    for name, said in cases.items():
        tr = load_trace(str(CORPUS / "perfetto" / name))
        assert any(said in w for w in tr.warnings), (name, tr.warnings)
        # every event read: args_ordered's two async b are there (and never ended), the others' slices shown
        assert (any("2 async b/e" in w for w in tr.warnings) if name == "args_ordered.json" else len(tr) > 0), name


def test_corpus_nanoseconds_and_counters_read_right() -> None:
    ns = {r: c for r, c in viewer_summary(load_trace(str(CORPUS / "catapult" / "nanoseconds.json"))).items()}
    assert ns["us1"][1] == 1100 and ns["ns1"][1] == 11      # µs with decimals: exact ns
    tr = load_trace(str(CORPUS / "catapult" / "instance_counters.json"))
    assert tr.counters and all(len(ts) == len(v) > 0 for c in tr.counters for ts, v in c.series.values())
