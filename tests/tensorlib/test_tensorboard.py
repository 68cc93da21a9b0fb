"""tensorlib.utils.tensorboard.SummaryWriter: tensorlib tensors logged as torch's are, read back from the
event file TensorBoard would read."""
from __future__ import annotations

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

import tensorlib as tl
from tensorlib import nn
from tensorlib.utils.tensorboard import SummaryWriter


def _events(logdir):
    import struct
    out = []
    for path in sorted(logdir.rglob("events.out.tfevents*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event()
            ev.ParseFromString(data[i + 12:i + 12 + n])
            out.append((path, ev))
            i += 12 + n + 4
    return [(path.parent.name, v) for path, ev in out for v in ev.summary.value]


def test_scalars_histograms_and_dicts_of_tensors(tmp_path):
    w = SummaryWriter(log_dir=str(tmp_path))
    loss = (tl.ones(3) * 0.25).sum()
    w.add_scalar("train/loss", loss, 1)
    w.add_scalars("lr", {"a": tl.tensor(0.5), "b": 0.25}, 1)
    w.add_histogram("w", nn.Linear(4, 4).weight, 1)
    w.close()
    events = _events(tmp_path)
    values = {v.tag: v for _, v in events}
    assert sorted((d, v.simple_value) for d, v in events if v.tag == "lr") == [("a", 0.5), ("b", 0.25)]
    assert values["train/loss"].simple_value == pytest.approx(0.75)
    assert values["w"].histo.num == 16
    assert np.isfinite(values["w"].histo.sum)


def test_add_graph_is_refused_plainly(tmp_path):
    w = SummaryWriter(log_dir=str(tmp_path))
    with pytest.raises(NotImplementedError, match="traces the model with torch's JIT"):
        w.add_graph(nn.Linear(2, 2), tl.zeros(1, 2))
    w.close()
