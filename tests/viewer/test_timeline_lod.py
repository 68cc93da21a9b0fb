"""Property tests of the level-of-detail bucketing: whatever the events and the view, every cell
shows an event of that row that really overlaps the cell, and an empty cell really has none."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.model import from_events
from viewer.timeline import Timeline

spans = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 400), st.integers(1, 3)), min_size=1, max_size=60
)


@settings(max_examples=120, deadline=None)
@given(spans, st.integers(-500, 2500), st.integers(1, 3000), st.integers(1, 90))
def test_cells_show_overlapping_events_of_their_row(evs, t0, span, width):
    trace = from_events([{"ph": "X", "name": f"e{i}", "ts": ts, "dur": dur, "pid": 1, "tid": tid}
                         for i, (ts, dur, tid) in enumerate(evs)])
    tl = Timeline(trace)
    tl.t0, tl.t1 = t0 * 1000.0, (t0 + span) * 1000.0
    end = trace.ts + trace.dur
    bucket = (tl.t1 - tl.t0) / width
    for lane_i, depth in tl.rows:
        owner = tl.owners(lane_i, depth, width)
        assert owner.shape == (width,)
        row = np.flatnonzero((trace.lane == lane_i) & (trace.depth == depth))
        for c in range(width):
            a, b = tl.t0 + c * bucket, tl.t0 + (c + 1) * bucket
            overlapping = row[(trace.ts[row] < b) & (end[row] > a) | (trace.ts[row] >= a) & (trace.ts[row] < b)]
            ev = int(owner[c])
            if ev < 0:
                assert len(overlapping) == 0, (c, overlapping)
            else:
                assert ev in set(row.tolist())
                assert ev in set(overlapping.tolist()), (c, ev)
                # ... and it is the one covering most of the cell's time (the dominant event).
                cover = np.minimum(end[overlapping], b) - np.maximum(trace.ts[overlapping], a)
                mine = min(end[ev], b) - max(trace.ts[ev], a)
                assert mine >= cover.max() - 1e-6 * bucket, (c, ev, mine, cover.max())
