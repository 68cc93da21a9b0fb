import numpy as np
import pytest

from viewer.model import from_events, load_trace
from viewer.search import SearchError, search


def brute(trace, pred):
    out = [i for i in range(len(trace)) if pred(trace.name_of(i)) or pred(trace.cat_of(i))
           or pred(" ".join(f"{k}: {v}" for k, v in trace.args_of(i).items()))]
    return sorted(out, key=lambda i: (trace.ts[i], i))


def test_substring_is_case_insensitive_and_covers_args(cuda_path):
    tr = load_trace(cuda_path)
    got = search(tr, "CUDALAUNCH").tolist()
    assert got == brute(tr, lambda s: "cudalaunch" in s.lower())
    corr = search(tr, "correlation").tolist()  # only an args key
    assert len(corr) > 20 and all("correlation" in tr.args_of(i) for i in corr)


def test_regex(cpu_path):
    tr = load_trace(cpu_path)
    got = search(tr, "/^aten::(mm|addmm)$/").tolist()
    names = {tr.name_of(i) for i in got}
    assert names == {"aten::mm", "aten::addmm"}
    assert len(got) == sum(tr.name_of(i) in names for i in range(len(tr)))
    with pytest.raises(SearchError):
        search(tr, "/(/")


def test_one_hit_per_event_and_odd_args():
    tr = from_events([
        {"ph": "X", "name": "a", "ts": 0, "dur": 1, "pid": 1, "tid": 1, "args": {"k": "xx xx xx"}},
        {"ph": "X", "name": "b", "ts": 2, "dur": 1, "pid": 1, "tid": 1, "args": {"1": [1, {"x": None}]}},
        {"ph": "X", "name": "c", "ts": 3, "dur": 1, "pid": 1, "tid": 1, "args": "not a dict xx"},
        {"ph": "X", "name": "d", "ts": 4, "dur": 1, "pid": 1, "tid": 1},
    ])
    assert search(tr, "xx").tolist() == [0, 2]
    assert search(tr, '"x"').tolist() == [1]
    assert search(tr, "").tolist() == []
    assert np.array_equal(search(tr, "zzz"), [])
