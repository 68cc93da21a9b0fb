"""Safe writes: every file the project writes goes through `atomic_open` (or `write_bytes` on top of it).

- A regular file (or a new name) is written to a temporary file beside it and renamed over it, so a
  failed or interrupted write never leaves a partial file and never destroys the old one. The new file
  keeps the old file's mode (and owner, where we may set it); a new file gets the umask's mode, as
  open() would give it, not mkstemp's 0600.
- A symbolic link is written through: its target is replaced and the link stays a link.
- A device or FIFO (/dev/null, a named pipe) is written through, never replaced by a regular file; a
  FIFO with no reader is refused at once instead of blocking.
- A name for one of this process's open descriptors (/dev/stdout, /dev/stderr, /dev/fd/N,
  /proc/self/fd/N) is written to that descriptor, at its current position: whether stdout is a
  terminal, a pipe or a file the shell redirected to, the bytes land where the process's other output
  goes (replacing or reopening the redirected file would lose what was printed before and after).
- A directory, a socket, or any other failure is one OSError whose message names what was being written,
  where, and why.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import stat
import sys
from contextlib import contextmanager
from typing import BinaryIO, Iterable, Iterator

from .read import StrPath


def _error(e: OSError, what: str, path: str, hint: str = "") -> OSError:
    err = OSError(e.errno, f"cannot write the {what} to {path!r}: {e.strerror or e}{hint}")
    err.filename = path
    return err


def _own_descriptor(path: str) -> int | None:
    """N when `path` names this process's descriptor N (through /dev/stdout, /dev/fd/N, /proc/self/fd/N
    or any symlink to those), else None."""
    own = re.compile(rf"/proc/{os.getpid()}(?:/task/\d+)?/fd/(\d+)")
    p = os.path.abspath(path)
    for _ in range(40):                                  # the kernel's limit on links followed
        p = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        m = own.fullmatch(p)
        if m:
            return int(m.group(1))
        try:
            p = os.path.join(os.path.dirname(p), os.readlink(p))
        except OSError:                                  # not a link (or not there): an ordinary name
            return None
    return None


@contextmanager
def _write_descriptor(fd: int, what: str, path: str) -> Iterator[BinaryIO]:
    for stream in (sys.stdout, sys.stderr):             # what was printed before comes first
        try:
            if stream is not None and stream.fileno() == fd:
                stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        dup = os.dup(fd)
    except OSError as e:
        raise _error(e, what, path) from e
    try:
        with os.fdopen(dup, "wb") as f:
            yield f
    except OSError as e:
        raise _error(e, what, path) from e


def _resolve(path: str) -> str:
    """The file a write to `path` must change: a symlink's final target (the link itself is kept)."""
    return os.path.realpath(path) if os.path.islink(path) else path


@contextmanager
def _write_through(target: str, st: os.stat_result, what: str, path: str) -> Iterator[BinaryIO]:
    if stat.S_ISSOCK(st.st_mode):
        raise _error(OSError(errno.EINVAL, "it is a socket"), what, path, "; give a file name")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        hint = "; a named pipe needs a reader before it can be written" if e.errno == errno.ENXIO else ""
        raise _error(e, what, path, hint) from e
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
    except OSError as e:
        raise _error(e, what, path) from e


def _temporary(target: str) -> tuple[int, str]:
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:   # mode 0o666 through the umask, as open(path, "w") would create it
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def _keep_mode(tmp: str, st: os.stat_result) -> None:
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass                                    # not ours to give away; the mode is still kept


@contextmanager
def atomic_open(path: StrPath, *, what: str = "file") -> Iterator[BinaryIO]:
    """A binary file to write `path` through (see the module's docstring for what happens to each kind
    of target). The target changes only when the with-block ends without an exception."""
    path = os.fspath(path)
    fd = _own_descriptor(path)
    if fd is not None:
        with _write_descriptor(fd, what, path) as f:
            yield f
        return
    target = _resolve(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _error(e, what, path) from e
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise _error(OSError(errno.EISDIR, "it is a directory"), what, path, "; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        with _write_through(target, st, what, path) as f:
            yield f
        return
    try:
        fd, tmp = _temporary(target)
    except OSError as e:
        raise _error(e, what, path, "; choose a path in an existing directory you can write to") from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        if st is not None:
            _keep_mode(tmp, st)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not str(e).startswith("cannot write"):
            raise _error(e, what, path) from e
        raise


def write_bytes(path: StrPath, data: bytes | Iterable[bytes], *, what: str = "file") -> str:
    """Write bytes, or an iterable of bytes-like chunks written as each is produced, through
    `atomic_open`. Returns the path."""
    with atomic_open(path, what=what) as f:
        if isinstance(data, (bytes, bytearray, memoryview)):
            f.write(data)
        else:
            for chunk in data:
                f.write(chunk)
    return os.fspath(path)
