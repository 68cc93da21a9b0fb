"""The three rules of DESIGN.md, one function each, shared by tensorlib, profiler and viewer.

- `literal`: anything that came from a file or a user reaches a terminal only through it.
- `atomic_open` / `write_bytes`: every file the project writes goes through them.
- `open_input` / `read_bounded` / `gunzip_bounded` / `gunzip_stream`: every file the project reads has a
  budget tied to its size on disk, and a non-regular file (FIFO, device) is refused unless the caller
  asks for it.

This package is a leaf: it imports only the standard library, so every layer may use it and the
one-way flow (viewer imports neither tensorlib nor profiler; profiler -> tensorlib) is unchanged.
"""
from .read import InputError, TruncatedStream, gunzip_bounded, gunzip_stream, open_input, read_bounded
from .text import literal
from .write import atomic_open, write_bytes

__all__ = ["literal", "atomic_open", "write_bytes", "InputError", "TruncatedStream", "open_input",
           "read_bounded", "gunzip_bounded", "gunzip_stream"]
