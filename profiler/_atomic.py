"""Atomic file output: write a temporary file beside the target, then rename it over the target, so a
failed or interrupted export never leaves a partial file (and never clobbers a good one)."""
from __future__ import annotations

import os
import tempfile
import zlib


def _gzipped(chunks):
    z = zlib.compressobj(6, zlib.DEFLATED, 31)          # wbits 31: a gzip stream, as gzip.compress writes
    for c in chunks:
        yield z.compress(c)
    yield z.flush()


def write_bytes(path, data, *, what: str = "file") -> str:
    """Write `data` (bytes, or an iterable of bytes-like chunks, each written as soon as it is produced)
    to `path` atomically; gzip it when the name ends in .gz. Returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    if path.endswith(".gz"):
        chunks = _gzipped(chunks)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OSError(e.errno, f"cannot write the {what} to {path!r}: {e.strerror}; "
                               f"choose a path in an existing directory you can write to") from e
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, f"cannot write the {what} to {path!r}: {e.strerror}") from e
        raise
    return path
