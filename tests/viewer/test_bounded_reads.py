"""The loader reads within safeio's budget: regular files only, gzip inflation capped, and a file
that cannot be a trace refused from its first byte, not after being read whole."""

import gzip
import json
import os
import tracemalloc

import pytest

import safeio.read
from viewer.__main__ import main
from viewer.loader import TraceError
from viewer.model import load_trace


@pytest.mark.timeout(20)
def test_fifo_and_devices_are_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    assert main(["summary", str(fifo)]) == 1
    assert "named pipe" in capsys.readouterr().err
    assert main(["summary", "/dev/zero"]) == 1  # would read until MemoryError
    assert "character device" in capsys.readouterr().err
    assert main([str(fifo)]) == 1  # the TUI refuses before the terminal switches
    assert "named pipe" in capsys.readouterr().err


def test_a_sparse_file_of_zeros_is_refused_from_its_first_byte(tmp_path):
    p = tmp_path / "sparse.json"
    with open(p, "wb") as f:
        f.truncate(256 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match=r"not a Chrome trace: byte 0 is b'\\x00'"):
            load_trace(str(p))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # read 1 MiB, not 256


def test_leading_blanks_are_skipped_without_being_kept(tmp_path):
    p = tmp_path / "blank.json"
    p.write_bytes(b" " * (3 << 20) + json.dumps([{"ph": "X", "name": "a", "ts": 0, "dur": 1}]).encode())
    assert load_trace(str(p)).names == ["a"]
    p.write_bytes(b"\n" * (3 << 20))
    with pytest.raises(TraceError, match="empty"):
        load_trace(str(p))
    p.write_bytes(b" " * (3 << 20) + b"hello")
    with pytest.raises(TraceError, match=f"byte {3 << 20} is b'h'"):
        load_trace(str(p))


def test_gzip_bomb_is_a_clear_error_within_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(safeio.read, "MIN_INFLATE_BUDGET", 1 << 20)
    for body in (b"[" + b" " * (8 << 20), b" " * (8 << 20)):  # kept, or skipped as leading blanks
        p = tmp_path / "bomb.json.gz"
        p.write_bytes(gzip.compress(body))
        with pytest.raises(TraceError, match="inflates to more than 1048576 bytes"):
            load_trace(str(p))
    p.write_bytes(gzip.compress(b"\0" * 100))
    with pytest.raises(TraceError, match="not a Chrome trace: byte 0"):
        load_trace(str(p))


def test_gzip_that_is_not_gzip_after_its_magic_is_one_line(tmp_path):
    p = tmp_path / "bad.json.gz"
    p.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(TraceError, match="not a readable gzip stream after 0 inflated bytes") as err:
        load_trace(str(p))
    assert "\n" not in str(err.value)
