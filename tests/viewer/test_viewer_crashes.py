"""Inputs that used to crash a view, and values too big to show whole."""

import numpy as np

from viewer.details import MAX_PARENTS, describe
from viewer.memory_tab import MemoryView, memory_series
from viewer.model import from_events
from viewer.text import CLIP, clipped
from viewer.timeline import sparkline


def test_memory_series_with_odd_device_types_and_values():
    ev = [{"ph": "i", "name": "[memory]", "pid": 1, "tid": 1, "ts": t, "s": "t",
           "args": {"Total Allocated": v, "Device Type": dt, "Device Id": 0}}
          for t, v, dt in ((1, 10, [1, 2]), (2, 20, {"a": 1}), (3, 1e308, 1), (4, float("inf"), 1),
                           (5, "12", 1), (6, True, 1), (7, 30, 1))]
    series = memory_series(from_events(ev))  # a list-valued Device Type raised TypeError: unhashable
    titles = sorted(s.title for s in series)
    assert titles == ["CUDA:0 allocated", "device type [1, 2]:0 allocated",
                      "device type {'a': 1}:0 allocated"]
    cuda = next(s for s in series if s.title.startswith("CUDA"))
    assert cuda.values.tolist() == [1e308, 30.0]  # inf, a string and a bool are not amounts


def test_sparkline_and_memory_plot_of_extreme_values():
    ts = np.array([0, 10, 20], dtype=np.int64)
    vals = np.array([1e308, -1e308, 0.0])
    line = sparkline(ts, vals, 0, 30, 12)  # hi - lo overflowed to inf: IndexError at first paint
    assert len(line) == 12 and set(line) <= set(" ▁▂▃▄▅▆▇█")
    assert line[0] == "█" and line[-1] in "▄▅"
    tr = from_events([{"ph": "C", "name": "mem", "pid": 1, "ts": t, "args": {"v": v}}
                      for t, v in ((0, 1e308), (1, -1e308), (2, 5e-324))])
    assert len(MemoryView(tr).series) == 1  # drawn by test_hostile_text's memory tab


def test_details_clip_huge_values_keys_and_parent_chains():
    big = "x" * (5 << 20)
    tr = from_events([{"ph": "X", "name": "n", "ts": 0, "dur": 1, "pid": 1, "tid": 1, "k" * 10_000: big,
                       "args": {"blob": big, "list": list(range(200_000))}}])
    text = describe(tr, 0).plain
    assert len(text) < 4 * CLIP + 2000
    assert f"… ({5 << 20:,} characters in all)" in text and f"… (cut at {CLIP:,} characters)" in text
    deep = from_events([{"ph": "X", "name": "op", "ts": 0, "dur": 1, "pid": 1, "tid": 1}] * 5000)
    text = describe(deep, 4999).plain
    assert text.count("\n  op  (") == MAX_PARENTS and f"… and {4999 - MAX_PARENTS:,} more" in text


def test_clipped_is_literal_and_short():
    assert clipped("a\x1bb") == "a\\x1bb"
    assert clipped({"\x1b": ["\u202e"]}) == '{"\\u001b": ["\\u202e"]}'
    assert clipped("é" * 10, 4) == "éééé… (10 characters in all)"
