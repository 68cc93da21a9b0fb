"""Fuzzing the viewer: hypothesis-made hostile traces through the loader, `summary`, `diff` and the
TUI headless (every tab and key). Every outcome is either a result or a one-line TraceError / usage
error: 0 tracebacks, 0 characters a terminal would act on, 0 markup interpreted.

About 15 s by default; FUZZ_SCALE=N (tests/fuzz/_scale.py) multiplies every example count for a release run.
"""

import asyncio
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.viewer.hostile import HOSTILE, every_screen, unsafe
from viewer.__main__ import main
from viewer.app import ViewerApp
from viewer.loader import TraceError
from viewer.model import load_trace

from ._scale import SCALE



words = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                  st.text(st.characters(min_codepoint=0, max_codepoint=0x20ff), max_size=6))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), words)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(words, c, max_size=3),
                      max_leaves=8)
numbers = st.one_of(st.integers(-5, 200), st.floats(-1e308, 1e308), st.sampled_from([0, 0, 1, 1e18, -1]),
                    st.sampled_from(["12.5", " 3 ", "1e3", "nan", "x", "1700000000000000.024", "-0", ""]),
                    st.sampled_from([1700000000000000.024, 1.7e15]))
event = st.fixed_dictionaries(
    {"ph": st.sampled_from(["X", "X", "X", "B", "E", "i", "C", "M", "s", "f", "b", "e", "n", "S", "T", "F",
                            "?"])},
    optional={
        "name": st.one_of(words, st.sampled_from(["process_name", "thread_name", "[memory]"]), values),
        "cat": words, "ts": numbers, "dur": numbers, "pid": st.one_of(st.integers(0, 2), words, values),
        "tid": st.one_of(st.integers(0, 2), words), "id": st.one_of(st.integers(0, 3), words),
        "bp": st.just("e"), "s": st.sampled_from(["g", "p", "t"]),
        "bind_id": st.one_of(st.integers(0, 2), words, values), "flow_in": st.one_of(st.booleans(), values),
        "flow_out": st.one_of(st.booleans(), values),
        "args": st.one_of(st.dictionaries(st.one_of(words, st.sampled_from(
            ["name", "Total Allocated", "Device Type", "Input Dims"])), values, max_size=4), values),
    },
).flatmap(lambda e: st.dictionaries(words, values, max_size=2).map(lambda extra: {**extra, **e}))
traces = st.lists(event, max_size=30)


def encode(events, form: str, cut: int) -> bytes:
    doc = {"traceEvents": events, "traceName": HOSTILE[0]} if form != "array" else events
    data = json.dumps(doc, default=str, allow_nan=True).encode()
    if form == "latin1":  # one invalid UTF-8 byte somewhere
        data = data.replace(b"e", b"\xe9", 1)
    data = data[: len(data) - cut] if cut else data
    return gzip.compress(data) if form == "gzip" else data


def check_cli(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    assert rc in (0, 1), (rc, out.err)
    assert not unsafe(out.out) and not unsafe(out.err), (unsafe(out.out), unsafe(out.err))
    if rc == 1:
        assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err


@settings(max_examples=80 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(traces, traces, st.sampled_from(["object", "array", "gzip", "latin1"]), st.integers(0, 40))
def test_loader_summary_and_diff_on_hostile_traces(tmp_path, capsys, a, b, form, cut):
    pa, pb = tmp_path / "a.json", tmp_path / "b.json.gz"
    pa.write_bytes(encode(a, form, cut))
    pb.write_bytes(encode(b, "gzip", 0))
    try:
        load_trace(str(pa))
    except TraceError as exc:
        assert "\n" not in str(exc)
    check_cli(capsys, "summary", str(pa))
    check_cli(capsys, "summary", "--by-shape", "--json", str(pa))
    check_cli(capsys, "diff", "--text", str(pa), str(pb))


@settings(max_examples=40 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_load_or_fail_in_one_line(tmp_path, capsys, data, zipped):
    p = tmp_path / "bytes.json"
    p.write_bytes(gzip.compress(data)[: len(data) + 10] if zipped else data)
    check_cli(capsys, "summary", str(p))


KEYS = ["w", "s", "a", "d", "f", "0", "full_stop", "comma", "left", "right", "up", "down",
        "left_square_bracket", "right_square_bracket", "escape", "pagedown", "pageup",
        "o", "c", "m", "e", "t", "x", "1", "3", "9", "g", "enter", "n", "N"]


@pytest.mark.timeout(120 * SCALE)
@settings(max_examples=2 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(traces, st.lists(st.sampled_from(KEYS), max_size=20), st.sampled_from(HOSTILE))
def test_tui_every_tab_and_key_on_hostile_traces(tmp_path, events, keys, word):
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_bytes(encode(events, "object", 0))
    pb.write_bytes(encode(events[::-1], "array", 0))

    async def drive():
        app = ViewerApp(str(pa), diff_path=str(pb))
        async with app.run_test(size=(100, 32)) as pilot:
            sc = await every_screen(app, pilot, searches=[word, "/(", ""], max_select=8)
            await pilot.press("t", *keys)
            await sc.snap(f"after keys {keys}")
        return app

    app = asyncio.run(drive())
    assert app.return_code in (None, 0)


def _nested(draw_slices):
    """Slices (start ns, dur ns) that nest: each inside the previous one or after it."""
    out, stack = [], []
    for start_gap, dur, inside in draw_slices:
        while stack and not inside:
            stack.pop()
            inside = True
        lo, hi = (stack[-1][0], stack[-1][0] + stack[-1][1]) if stack else (out[-1][0] + out[-1][1] if out else 0,
                                                                           None)
        start = lo + start_gap
        if hi is not None:
            if start >= hi:
                continue
            dur = min(dur, hi - start)
        out.append((start, dur))
        stack.append((start, dur))
    return out


@settings(max_examples=30 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 5000), st.booleans()), max_size=12),
       st.sampled_from([0, 1700000000000000000, 5459582292303000]))
def test_times_are_exact_ns_at_any_offset_as_numbers_or_strings(tmp_path, slices, offset_ns):
    """The same nested slices summarise the same at 0 and at an epoch-scale offset, with ts/dur written as
    JSON numbers with 3 decimals or as numeric strings (exact ns from the decimal text, no float64 loss)."""
    rows = _nested(slices)

    def us(ns: int) -> str:
        return f"{ns // 1000}.{ns % 1000:03d}"

    def doc(base: int, quote: str) -> str:
        evs = [f'{{"ph":"X","name":"n{k}","pid":1,"tid":1,"ts":{quote}{us(base + s)}{quote},'
               f'"dur":{quote}{us(d)}{quote}}}' for k, (s, d) in enumerate(rows)]
        return "[" + ",".join(evs) + "]"

    results = []
    for base, quote in ((0, ""), (offset_ns, ""), (offset_ns, '"')):
        path = tmp_path / "t.json"
        path.write_text(doc(base, quote))
        tr = load_trace(str(path))
        results.append(sorted((tr.name_of(i), int(tr.dur[i]), int(tr.self_ns[i]), int(tr.depth[i]),
                               int(tr.ts[i]) - base) for i in range(len(tr))))
    assert results[0] == results[1] == results[2]
