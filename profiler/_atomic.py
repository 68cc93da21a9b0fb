"""Profiler exports: chunks written through safeio.atomic_open (atomic, mode-keeping, devices and
symlinks written through), gzipped on the way when the name ends in .gz.

A .gz file given as chunks is compressed and written by a second thread while the next chunk is being
produced: formatting a large trace (NumPy) and zlib (about 50 MB/s) both release the GIL, so they
overlap instead of adding up. Plain writes stay on the caller's thread: they only copy into the page
cache, and on a busy two-core machine handing chunks to a thread measured slower, not faster. A chunk
may share its memory with the one produced two steps later (profiler._jsonrows alternates two
buffers): the writer finishes chunk k before chunk k+2 is asked for.
"""
from __future__ import annotations

import os
import zlib

from safeio import atomic_open


def _gzip():
    return zlib.compressobj(6, zlib.DEFLATED, 31)       # wbits 31: a gzip stream, as gzip.compress writes


def _write_gz(f, z, chunk):
    f.write(z.compress(chunk))


def _write_all(f, data, gz: bool):
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = (data,)
    if not gz:
        for c in data:
            f.write(c)
        return
    z = _gzip()
    if isinstance(data, tuple):
        for c in data:
            _write_gz(f, z, c)
    else:
        # one writer thread, one chunk in flight: chunk k is compressed and written while k+1 is produced,
        # and is done before k+1 is handed over (so before k+2, which may reuse k's buffer, is produced)
        from concurrent.futures import ThreadPoolExecutor     # here: a plain export need not import it (14 ms)

        with ThreadPoolExecutor(1, thread_name_prefix="tensorlib-profiler-writer") as writer:
            pending = None
            for c in data:          # a producer's error leaves the with-block after the write in flight
                if pending is not None:
                    pending.result()            # a write's error stops the producer here
                pending = writer.submit(_write_gz, f, z, c)
            if pending is not None:
                pending.result()
    f.write(z.flush())


def write_bytes(path, data, *, what: str = "file") -> str:
    """Write `data` (bytes, or an iterable of bytes-like chunks, each written as soon as it is produced)
    to `path` through safeio.atomic_open (atomic for regular files, written through for devices, FIFOs
    and symlink targets); gzip it when the name ends in .gz. Returns the path."""
    with atomic_open(path, what=what) as f:
        _write_all(f, data, os.fspath(path).endswith(".gz"))
    return os.fspath(path)
