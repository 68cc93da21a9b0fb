"""Counter samples (`ph: C`, e.g. torch's memory tracks) at epoch-scale timestamps keep their exact
nanoseconds, as every other event does: float64 µs × 1000 cannot hold them beyond 2**53 ns."""
from __future__ import annotations

import json
from pathlib import Path

from viewer.model import load_trace


def test_epoch_scale_counter_samples_keep_their_nanoseconds(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000
    stamps = ["000.001", "000.002", "050.201", "099.999"]      # 1 ns apart at first: float64 merges them
    events = [{"ph": "X", "name": "op", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": f"{base}.000", "dur": 100.0}]
    events += [{"ph": "C", "name": "Memory", "pid": 1, "ts": f"{base // 1000}{s}", "args": {"Allocated": 1024 * k}}
               for k, s in enumerate(stamps, 1)]
    text = json.dumps({"traceEvents": events})
    for k in range(len(stamps)):               # numbers in the file, not strings: the exact-decimal path
        text = text.replace(f'"{base // 1000}{stamps[k]}"', f"{base // 1000}{stamps[k]}")
    text = text.replace(f'"{base}.000"', f"{base}.000")
    path = tmp_path / "epoch_counters.json"
    path.write_text(text)
    tr = load_trace(str(path))
    (track,) = tr.counters
    ts, vals = track.series["Allocated"]
    assert ts.dtype.kind == "i"
    assert (ts - base * 1000).tolist() == [1, 2, 50_201, 99_999]
    assert vals.tolist() == [1024.0, 2048.0, 3072.0, 4096.0]
