"""Atomic file output: write a temporary file beside the target, then rename it over the target, so a
failed or interrupted export never leaves a partial file (and never clobbers a good one)."""
from __future__ import annotations

import gzip
import os
import tempfile


def write_bytes(path, data: bytes, *, what: str = "file") -> str:
    """Write `data` to `path` atomically; gzip it when the name ends in .gz. Returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OSError(e.errno, f"cannot write the {what} to {path!r}: {e.strerror}; "
                               f"choose a path in an existing directory you can write to") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
