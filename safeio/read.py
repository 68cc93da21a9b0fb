"""Bounded reads: every file the project reads has a budget tied to its size on disk.

- `open_input` refuses what is not a regular file (a FIFO would block, /dev/zero never ends) unless the
  caller asks for it, and names the problem in one line.
- `read_bounded` reads at most the size the file had when opened (or `max_bytes`), never more.
- `gunzip_bounded` inflates at most `inflate_budget(size on disk)` bytes: a gzip bomb is an error, not a
  MemoryError. Real traces compress 5-30x; deflate's ceiling is about 1032x.
- `gunzip_stream` is the same for a stream read in chunks, yielding bounded pieces as they inflate (a
  caller can show progress, or stop early), every gzip member in turn; a stream that breaks off raises
  `TruncatedStream` after the pieces that inflated before the break, so a caller may keep them.
"""
from __future__ import annotations

import io
import os
import stat
import zipfile
import zlib
from typing import Iterable, Iterator, Literal, TypeAlias, overload

# What the callers pass as a file name: a str or a pathlib.Path (anything os.fspath turns into a str).
StrPath: TypeAlias = str | os.PathLike[str]

MAX_RATIO = 100                  # inflated bytes per compressed byte accepted by default
MIN_INFLATE_BUDGET = 64 << 20    # small files may always inflate to this much


class InputError(ValueError):
    """An input the project cannot read; the message is one line naming the file and what to do."""


class TruncatedStream(InputError):
    """A compressed stream that is cut short or corrupt after its start; the pieces `gunzip_stream`
    yielded before it are good. `reason` is the message without the file's name."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name!r}: {reason}")
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@overload
def open_input(path: StrPath, *, what: str = ...,
               allow_nonregular: Literal[False] = ...) -> tuple[io.BufferedReader, int]: ...
@overload
def open_input(path: StrPath, *, what: str = ...,
               allow_nonregular: bool) -> tuple[io.BufferedReader, int | None]: ...
def open_input(path: StrPath, *, what: str = "file",
               allow_nonregular: bool = False) -> tuple[io.BufferedReader, int | None]:
    """Open `path` for reading; returns the file and its size (None for a non-regular file)."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{p!r}: no such file") from None
    except OSError as e:
        raise InputError(f"{p!r}: cannot read the {what}: {e.strerror or e}") from None
    regular = stat.S_ISREG(st.st_mode)
    if stat.S_ISDIR(st.st_mode) or (not regular and not allow_nonregular):
        raise InputError(f"{p!r}: is {_kind(st.st_mode)}, not a {what}; save it to a regular file first")
    try:
        return open(p, "rb"), (st.st_size if regular else None)
    except OSError as e:
        raise InputError(f"{p!r}: cannot read the {what}: {e.strerror or e}") from None


def read_bounded(path: StrPath, *, what: str = "file", max_bytes: int | None = None,
                 allow_nonregular: bool = False) -> bytes:
    """The whole file, at most its size when opened; more than `max_bytes` (required for a non-regular
    file) is an InputError."""
    f, size = open_input(path, what=what, allow_nonregular=allow_nonregular)
    with f:
        if max_bytes is None:
            if size is None:
                raise InputError(f"{os.fspath(path)!r}: a {what} read from a stream needs a byte limit")
            limit = size
        else:
            limit = max_bytes if size is None else min(size, max_bytes)
        if size is not None and max_bytes is not None and size > max_bytes:
            raise InputError(f"{os.fspath(path)!r}: the {what} is {size} bytes, over the {max_bytes}-byte limit")
        data = f.read(limit + 1)
    if len(data) > limit:
        if size is not None:
            return data[:limit]        # the file grew while we read it: keep what it was when opened
        raise InputError(f"{os.fspath(path)!r}: the {what} is longer than the {limit}-byte limit")
    return data


def inflate_budget(size_on_disk: int) -> int:
    """How many bytes a compressed input of this size may inflate to."""
    return max(MIN_INFLATE_BUDGET, MAX_RATIO * int(size_on_disk))


def gunzip_bounded(data: bytes, *, limit: int, what: str = "file", name: str = "input") -> bytes:
    """Inflate a gzip (or zlib) stream, every member of it, to at most `limit` bytes; a stream cut short
    is a TruncatedStream, never a silently shorter result."""
    return b"".join(gunzip_stream((data,), limit=limit, what=what, name=name))


# The most a single inflate step produces: pieces stay small whatever one compressed chunk expands to.
_PIECE = 16 << 20


def gunzip_stream(chunks: Iterable[bytes], *, limit: int, what: str = "file",
                  name: str = "input") -> Iterator[bytes]:
    """Inflate gzip (or zlib) data arriving in chunks, yielding pieces of at most 16 MiB and at most
    `limit` bytes in all (InputError beyond). Members follow one another as in `gzip -c a b`."""
    d = zlib.decompressobj(wbits=47)         # 47: gzip or zlib header, detected
    total = consumed = 0
    for chunk in chunks:
        consumed += len(chunk)
        while chunk:
            try:
                out = d.decompress(chunk, min(limit - total + 1, _PIECE))
            except zlib.error as e:
                raise TruncatedStream(name, f"the {what} is not a readable gzip stream after "
                                            f"{total} inflated bytes ({e})") from None
            total += len(out)
            if total > limit:
                raise InputError(f"{name!r}: the {what} inflates to more than {limit} bytes "
                                 f"({limit // max(1, consumed)}x its compressed size); decompress it "
                                 f"yourself if it is genuine")
            if out:
                yield out
            if d.eof:                          # another member may follow
                chunk = d.unused_data
                if chunk:
                    d = zlib.decompressobj(wbits=47)
            else:
                chunk = d.unconsumed_tail
    if not d.eof:
        raise TruncatedStream(name, f"the {what} ends before the end of its gzip stream "
                                    f"(after {total} inflated bytes)")


def check_zip_entries(infos: Iterable[zipfile.ZipInfo], size_on_disk: int, *, name: str = "input",
                      what: str = "archive") -> int:
    """Refuse a zip archive before any entry is read when its entries declare more than
    `inflate_budget(size on disk)` bytes in total, or one entry claims more compressed bytes than the
    whole file holds, or an uncompressed entry declares another size than it stores. zipfile never
    inflates an entry past its declared `file_size`, so this check bounds everything that reading the
    entries can produce. `infos`: zipfile.ZipInfo objects (anything
    with filename, file_size, compress_size, compress_type). Returns the declared total."""
    limit = inflate_budget(size_on_disk)
    total = 0
    for info in infos:
        if info.compress_size > size_on_disk:
            raise InputError(f"{name!r}: entry {info.filename!r} of the {what} claims {info.compress_size} "
                             f"compressed bytes, more than the whole file ({size_on_disk} bytes); the file is "
                             "truncated or damaged")
        if info.compress_type == 0 and info.file_size != info.compress_size:   # 0: ZIP_STORED
            raise InputError(f"{name!r}: entry {info.filename!r} of the {what} is stored uncompressed but "
                             f"declares {info.file_size} bytes in {info.compress_size}; the file is damaged")
        total += info.file_size
        if total > limit:
            raise InputError(f"{name!r}: the entries of the {what} inflate to more than {limit} bytes "
                             f"(the limit for {size_on_disk} bytes on disk: {MAX_RATIO}x, at least "
                             f"{MIN_INFLATE_BUDGET}); refusing a compression bomb, extract it yourself if "
                             "it is genuine")
    return total
