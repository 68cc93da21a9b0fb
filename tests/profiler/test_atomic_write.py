"""profiler._atomic.write_bytes: the file appears whole or not at all, and errors reach the caller; a
.gz file's chunks are compressed and written on a second thread while the next is produced."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from profiler import _atomic
from profiler._jsonrows import format_rows


def _leftovers(d):
    return [p for p in os.listdir(d) if p.endswith(".tmp")]


@pytest.mark.parametrize("name", ["out.json", "out.json.gz"])
def test_chunks_written_in_order(tmp_path, name):
    chunks = [bytes([65 + i % 26]) * (1000 + i) for i in range(50)]
    path = tmp_path / name
    _atomic.write_bytes(path, iter(chunks))
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    assert data == b"".join(chunks)
    assert _leftovers(tmp_path) == []


def test_reused_buffers_are_written_before_reuse(tmp_path, monkeypatch):
    """format_rows alternates two buffers; a writer still busy with chunk k must not see chunk k+2's bytes."""
    monkeypatch.setattr("profiler._jsonrows._CHUNK", 7)
    n = 1000
    parts = [b'{"i":', ("int", np.arange(n)), b"}"]
    path = tmp_path / "rows.json.gz"
    _atomic.write_bytes(path, (c for part in ([b"[0"], format_rows(parts, n), [b"]"]) for c in part))
    import json
    assert json.loads(gzip.decompress(path.read_bytes()))[1:] == [{"i": i} for i in range(n)]


@pytest.mark.parametrize("name", ["t.json", "t.json.gz"])
def test_producer_error_leaves_no_file_and_keeps_the_old_one(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"good")

    def chunks():
        yield b"x" * 100_000
        yield b"y" * 100_000
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic.write_bytes(path, chunks())
    assert path.read_bytes() == b"good"
    assert _leftovers(tmp_path) == []


def test_writer_error_reaches_the_caller(tmp_path, monkeypatch):
    """A write that fails on the writer thread (a full disk) is raised in the caller as a clear OSError."""
    def full(f, z, chunk):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic, "_write_gz", full)
    path = tmp_path / "t.json.gz"
    produced = []

    def chunks():
        for i in range(100):
            produced.append(i)
            yield b"z" * 1000

    with pytest.raises(OSError, match="cannot write the Chrome trace to .*No space left on device"):
        _atomic.write_bytes(path, chunks(), what="Chrome trace")
    assert not path.exists() and _leftovers(tmp_path) == []
    assert len(produced) < 100          # the producer stops at the writer's error


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_exports_are_readable_by_others_as_torchs(tmp_path, umask_022):
    """Traces, stacks, memory timelines and tensorboard_trace_handler's files are 0644 under umask 022,
    as torch's (a TensorBoard or a colleague running as another user can read them); the atomic write's
    temporary file must not leave its 0600 behind."""
    import tensorlib as tl
    from profiler import profile, schedule, tensorboard_trace_handler
    with profile(profile_memory=True) as prof:
        (tl.ones(4) + 1).sum()
    outs = [tmp_path / "t.json", tmp_path / "t.json.gz", tmp_path / "stacks.txt", tmp_path / "mem.json"]
    prof.export_chrome_trace(str(outs[0]))
    prof.export_chrome_trace(str(outs[1]))
    prof.export_stacks(str(outs[2]))
    prof.export_memory_timeline(str(outs[3]))
    tb = tmp_path / "tb"
    with profile(schedule=schedule(wait=0, warmup=0, active=1, repeat=1),
                 on_trace_ready=tensorboard_trace_handler(str(tb))) as p:
        tl.ones(2) * 2
        p.step()
    outs += list(tb.iterdir())
    assert len(outs) == 5
    assert {oct(os.stat(o).st_mode & 0o777) for o in outs} == {"0o644"}
