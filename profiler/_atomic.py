"""Atomic file output: write a temporary file beside the target, then rename it over the target, so a
failed or interrupted export never leaves a partial file (and never clobbers a good one).

A .gz file given as chunks is compressed and written by a second thread while the next chunk is being
produced: formatting a large trace (NumPy) and zlib (about 50 MB/s) both release the GIL, so they
overlap instead of adding up. Plain writes stay on the caller's thread: they only copy into the page
cache, and on a busy two-core machine handing chunks to a thread measured slower, not faster. A chunk
may share its memory with the one produced two steps later (profiler._jsonrows alternates two
buffers): the writer finishes chunk k before chunk k+2 is asked for.
"""
from __future__ import annotations

import os
import tempfile
import threading
import zlib


def _gzip():
    return zlib.compressobj(6, zlib.DEFLATED, 31)       # wbits 31: a gzip stream, as gzip.compress writes


class _Writer(threading.Thread):
    """Writes (and gzips) the chunks handed to it, one at a time, on its own thread."""

    def __init__(self, f, z):
        super().__init__(name="tensorlib-profiler-writer", daemon=True)
        self.f, self.z = f, z
        self.chunk = None
        self.error: BaseException | None = None
        self.ready = threading.Semaphore(0)     # a chunk (or None: the end) was handed over
        self.idle = threading.Semaphore(1)      # the last chunk handed over is written

    def put(self, chunk):
        """Hand over `chunk` once the previous one is written; raises what writing raised."""
        self.idle.acquire()
        err = self.error
        self.chunk = chunk
        self.ready.release()            # always: after an error the writer skips chunks until the end
        if err is not None and chunk is not None:
            raise err

    def finish(self):
        """Wait for the last chunk; raises what writing raised."""
        self.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self):
        f, z = self.f, self.z
        while True:
            self.ready.acquire()
            c = self.chunk
            self.chunk = None
            if c is None:
                if z is not None and self.error is None:
                    try:
                        f.write(z.flush())
                    except BaseException as e:      # noqa: BLE001 - handed to the producer
                        self.error = e
                self.idle.release()
                return
            if self.error is None:
                try:
                    f.write(z.compress(c) if z is not None else c)
                except BaseException as e:          # noqa: BLE001 - handed to the producer
                    self.error = e
            self.idle.release()


def _write_all(f, data, gz: bool):
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = (data,)
    if not gz:
        for c in data:
            f.write(c)
        return
    if isinstance(data, tuple):
        z = _gzip()
        for c in data:
            f.write(z.compress(c))
        f.write(z.flush())
        return
    w = _Writer(f, _gzip())
    w.start()
    try:
        for c in data:
            w.put(c)
    except BaseException:
        try:
            w.finish()      # the writer stops before the file is removed; the producer's error is the one to see
        except BaseException:   # noqa: BLE001, S110
            pass
        raise
    w.finish()


def write_bytes(path, data, *, what: str = "file") -> str:
    """Write `data` (bytes, or an iterable of bytes-like chunks, each written as soon as it is produced)
    to `path` atomically; gzip it when the name ends in .gz. Returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OSError(e.errno, f"cannot write the {what} to {path!r}: {e.strerror}; "
                               f"choose a path in an existing directory you can write to") from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data, path.endswith(".gz"))
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
