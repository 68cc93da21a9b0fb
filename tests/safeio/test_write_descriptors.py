"""safeio.atomic_open on names for this process's own descriptors (/dev/stdout, /dev/fd/N, /proc/self/fd/N):
the bytes go to the descriptor at its position, so a redirected stdout keeps what was printed around them."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from safeio import write_bytes

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = ("import sys; from safeio import write_bytes; print('before', flush=False); "
           "write_bytes(sys.argv[1], b'DATA\\n'); print('after')")


def _run(target, stdout):
    env = dict(os.environ, PYTHONPATH=_ROOT)
    return subprocess.run([sys.executable, "-c", _SCRIPT, target], stdout=stdout, stderr=subprocess.PIPE,
                          env=env, timeout=60)


@pytest.mark.parametrize("target", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_stdout_redirected_to_a_file_keeps_the_file_and_what_was_printed(tmp_path, target):
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        ino = os.fstat(f.fileno()).st_ino
        r = _run(target, f)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"before\nDATA\nafter\n"
    assert out.stat().st_ino == ino                     # the shell's file, not a new one renamed over it
    assert not [p for p in os.listdir(tmp_path) if p != "out.txt"]


def test_stdout_a_pipe(tmp_path):
    r = _run("/dev/stdout", subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"before\nDATA\nafter\n"


def test_a_symlink_to_dev_stdout(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("/dev/stdout")
    r = _run(str(link), subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"before\nDATA\nafter\n" and link.is_symlink()


def test_own_descriptor_of_a_regular_file_is_written_at_its_position(tmp_path):
    path = tmp_path / "f.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"head ")
        ino = os.fstat(fd).st_ino
        write_bytes(f"/dev/fd/{fd}", b"body")
        os.write(fd, b" tail")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"head body tail" and path.stat().st_ino == ino


def test_closed_descriptor_is_a_clear_oserror():
    fd = os.open(os.devnull, os.O_WRONLY)
    os.close(fd)
    with pytest.raises(OSError, match=r"cannot write the file to '/dev/fd/\d+'"):
        write_bytes(f"/dev/fd/{fd}", b"x")
