"""safeio: the literal-text, safe-write and bounded-read rules, each checked where it could fail."""
from __future__ import annotations

import gzip
import os
import stat
import threading

import pytest

from safeio import InputError, atomic_open, gunzip_bounded, literal, read_bounded, write_bytes
from safeio.read import inflate_budget, open_input

HOSTILE = ["\x1b]2;PWNED\x1b\\", "\x1b[2J", "\x1b]52;c;aGk=\x07", "\x9b31m", "\u200f\u200e\u061c",
           "a\u200bb\u2060c\ufeff", "\U000e0041\U000e007f", "\ud800", "\u202eevil\u202c", "x\u2028y"]


@pytest.mark.parametrize("s", HOSTILE)
def test_literal_leaves_no_unsafe_character(s):
    out = literal(s)
    assert all(c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF for c in out), out
    out.encode("utf-8")                                  # a lone surrogate would raise here


def test_literal_keeps_ordinary_text():
    assert literal("aten::linear é 中 [bold]x[/]") == "aten::linear é 中 [bold]x[/]"
    assert literal("\x1b") == "\\x1b" and literal("\u200f") == "\\u200f" and literal(3) == "3"


def test_new_file_gets_the_umask_mode_and_old_file_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "t.json"
        write_bytes(p, b"1")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.chmod(p, 0o640)
        write_bytes(p, b"2")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_bytes() == b"2"
    finally:
        os.umask(old)


def test_symlink_is_written_through(tmp_path):
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_bytes(link, [b"n", b"ew"])
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_character_device_is_written_through_not_replaced():
    before = os.stat("/dev/null")
    write_bytes("/dev/null", b"x" * 100)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_full_device_is_a_clear_oserror():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError, match="cannot write the trace to '/dev/full'"):
        write_bytes("/dev/full", b"x" * 100000, what="trace")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_fifo_without_reader_is_refused_and_with_reader_written(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="needs a reader"):
        write_bytes(fifo, b"x")
    got = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    for _ in range(200):                 # wait until the reader has the pipe open
        try:
            write_bytes(fifo, b"through")
            break
        except OSError:
            threading.Event().wait(0.01)
    t.join(5)
    assert got == [b"through"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_directory_and_failure_keep_the_old_file(tmp_path):
    with pytest.raises(OSError, match="it is a directory"):
        write_bytes(tmp_path, b"x")
    p = tmp_path / "keep.json"
    p.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write(b"half")
            raise RuntimeError("producer failed")
    assert p.read_bytes() == b"precious"
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_readers_refuse_fifos_and_devices_unless_asked(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="named pipe"):
        open_input(fifo, what="trace")
    with pytest.raises(InputError, match="character device"):
        read_bounded("/dev/zero")
    with pytest.raises(InputError, match="longer than the 10-byte limit"):
        read_bounded("/dev/zero", allow_nonregular=True, max_bytes=10)
    with pytest.raises(InputError, match="no such file"):
        read_bounded(tmp_path / "missing")
    with pytest.raises(InputError, match="a directory"):
        read_bounded(tmp_path)


def test_gzip_bomb_is_refused_within_budget():
    bomb = gzip.compress(b"\0" * (200 << 20))           # ~200 KB on disk
    assert len(bomb) < (1 << 20)
    with pytest.raises(InputError, match="inflates to more than"):
        gunzip_bounded(bomb, limit=inflate_budget(len(bomb)) // 2)
    assert gunzip_bounded(gzip.compress(b"abc"), limit=10) == b"abc"


def test_gzip_members_follow_one_another_and_a_cut_stream_is_an_error():
    from safeio import TruncatedStream, gunzip_stream

    two = gzip.compress(b"abc") + gzip.compress(b"def")
    assert gunzip_bounded(two, limit=10) == b"abcdef"          # the second member used to be dropped
    cut = gzip.compress(bytes(range(256)) * 64)[:-12]
    with pytest.raises(TruncatedStream, match="ends before the end of its gzip stream"):
        gunzip_bounded(cut, limit=1 << 20)
    pieces = []
    with pytest.raises(TruncatedStream):
        for piece in gunzip_stream([cut[i:i + 100] for i in range(0, len(cut), 100)], limit=1 << 20):
            pieces.append(piece)
    assert b"".join(pieces) == (bytes(range(256)) * 64)[: len(b"".join(pieces))] and pieces
    with pytest.raises(InputError, match="inflates to more than 1000 bytes"):
        list(gunzip_stream([gzip.compress(b" " * 5000)], limit=1000))
