"""Turn a file on disk into a list of event records, whatever state the file is in.

Kept apart from `model.py` so that everything about bytes, compression and broken JSON lives in one
place and the model only ever sees records (`events.Event`). Every failure becomes a `TraceError`
with a one-line message (the CLI and the app print it, never a traceback) or a warning string
attached to whatever could still be read.

Two paths: a well-formed file is decoded by msgspec straight into records (fast, compact); anything
msgspec refuses (NaN/Infinity, truncation, entries that are not objects, invalid UTF-8, ...) goes
through orjson, the stdlib and catapult's truncation repair as before, and the parsed objects are
converted into the same records.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
import orjson

from .events import Event, FileSource, decode_events, to_records

Progress = Callable[[float, str], None]

# How many candidate cut points the truncation repair tries before giving up: each try is a full
# parse, so this bounds the cost on a file that is broken in the middle rather than at the end.
_MAX_REPAIR_TRIES = 40


class TraceError(Exception):
    """A trace that cannot be opened at all; the message is one line meant for the user."""


@dataclass
class RawTrace:
    """Records in file order; `source[i]` is the original event i (every field, for the details pane)."""

    events: list[Event]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    source: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = self.events


def raw_trace(objs: list[Any], meta: dict[str, Any], warnings: list[str]) -> RawTrace:
    """From parsed JSON values (the slow path, and in-memory events): records plus the originals."""
    return RawTrace(to_records(objs), meta, warnings, objs)


def _noop(_f: float, _what: str) -> None:
    pass


def read_bytes(path: str, progress: Progress = _noop) -> bytes:
    """Read (and gunzip) a file in chunks so that the progress bar moves while a 1 GB file loads."""
    if not os.path.exists(path):
        raise TraceError(f"{path}: no such file")
    if os.path.isdir(path):
        raise TraceError(f"{path}: is a directory, not a trace file")
    try:
        size = os.path.getsize(path) or 1
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                return _read_gzip(f, size, progress)
            chunks, done = [], 0
            while chunk := f.read(1 << 24):
                chunks.append(chunk)
                done += len(chunk)
                progress(0.3 * done / size, "reading")
            return b"".join(chunks)
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_gzip(f: Any, size: int, progress: Progress) -> bytes:
    """Decompress incrementally so that a stream cut short still yields everything before the cut."""
    out: list[bytes] = []
    d = zlib.decompressobj(wbits=31)
    try:
        while chunk := f.read(1 << 22):
            while chunk:
                out.append(d.decompress(chunk))
                chunk = d.unused_data  # a second gzip member follows
                if chunk:
                    d = zlib.decompressobj(wbits=31)
            progress(0.3 * min(1.0, f.tell() / size), "decompressing")
        out.append(d.flush())
    except zlib.error as exc:
        if not any(out):
            raise TraceError(f"{getattr(f, 'name', 'file')}: not a readable gzip file ({exc})") from None
        raise _PartialGzip(b"".join(out), str(exc)) from None
    if not d.eof:
        raise _PartialGzip(b"".join(out), "compressed data ends before the end-of-stream marker")
    return b"".join(out)


class _PartialGzip(Exception):
    def __init__(self, data: bytes, why: str):
        super().__init__(why)
        self.data = data
        self.why = why


def _where(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno} column {exc.colno} (byte {exc.pos})"


def _parse(data: bytes) -> Any:
    """orjson first (fast); the stdlib as a fallback because it accepts NaN/Infinity and 1e400."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise first from None


def _repair_truncated(data: bytes) -> tuple[Any, int] | None:
    """Catapult's repair for a trace cut off mid-write: drop the partial last event, close the array.

    Returns the parsed document and the number of bytes dropped, or None when no cut point works.
    """
    text = data.rstrip()
    stripped = text.lstrip()
    if stripped.startswith(b"["):
        closers = [b"]"]
    elif stripped.startswith(b"{"):
        closers = [b"]}", b"}"]
    else:
        return None
    end = len(text)
    for _ in range(_MAX_REPAIR_TRIES):
        cut = text.rfind(b"}", 0, end)
        if cut < 0:
            break
        head = text[: cut + 1]
        for closer in closers:
            try:
                return orjson.loads(head + closer), len(data) - len(head)
            except orjson.JSONDecodeError:
                continue
        end = cut
    # "[" alone, or "[{" with nothing complete: an empty trace rather than an error.
    if stripped.startswith(b"[") and b"}" not in text:
        return [], len(data)
    return None


def parse_document(data: bytes, warnings: list[str]) -> Any:
    if not data.strip():
        raise TraceError("the file is empty")
    try:
        return _parse(data)
    except orjson.JSONDecodeError as exc:
        repaired = _repair_truncated(data)
        if repaired is None:
            raise TraceError(f"invalid JSON at {_where(exc)}: {exc.msg}") from None
        doc, dropped = repaired
        warnings.append(
            f"invalid JSON at {_where(exc)} ({exc.msg}); read the trace as truncated, "
            f"dropping the last {dropped} bytes"
        )
        return doc


def split_document(doc: Any, warnings: list[str]) -> RawTrace:
    """Accept both the object form (`traceEvents` plus metadata) and the bare array form."""
    if isinstance(doc, list):
        return raw_trace(doc, {}, warnings)
    if isinstance(doc, dict):
        if "traceEvents" not in doc:
            raise TraceError("not a Chrome trace: a JSON object without a 'traceEvents' array")
        events = doc["traceEvents"]
        meta = {k: v for k, v in doc.items() if k != "traceEvents"}
        if not isinstance(events, list):
            warnings.append(f"'traceEvents' is a {type(events).__name__}, not an array; no events read")
            events = []
        return raw_trace(events, meta, warnings)
    raise TraceError(f"not a Chrome trace: the JSON document is a {type(doc).__name__}")


def load_raw(path: str, progress: Progress = _noop) -> RawTrace:
    warnings: list[str] = []
    try:
        data = read_bytes(path, progress)
    except _PartialGzip as part:
        warnings.append(f"gzip stream ends early ({part.why}); showing what was decompressed")
        data = part.data
    progress(0.3, "parsing JSON")
    fast = decode_fast(data, warnings)
    if fast is not None:
        progress(0.55, "parsed")
        return fast
    try:
        doc = parse_document(data, warnings)
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None
    del data
    progress(0.55, "parsed")
    try:
        return split_document(doc, warnings)
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None


_LEADING_SPACE = re.compile(rb"[ \t\n\r]*")
_UTF8_CHUNK = 1 << 24


def _valid_utf8(data: bytes) -> bool:
    """orjson rejects a file with invalid UTF-8 anywhere; msgspec only looks inside the strings it
    decodes (not in args, kept raw), so check first. Chunked: no copy of the whole file as text."""
    if data.isascii():
        return True
    dec = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for at in range(0, len(data), _UTF8_CHUNK):
            dec.decode(view[at : at + _UTF8_CHUNK])
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def decode_fast(data: bytes, warnings: list[str]) -> RawTrace | None:
    """msgspec straight into records; None for anything it refuses (the slow path then decides)."""
    start = _LEADING_SPACE.match(data).end()
    first = data[start : start + 1]
    if first not in (b"[", b"{") or not _valid_utf8(data):
        return None
    try:
        if first == b"[":
            events = decode_events(data)
            return RawTrace(events, {}, warnings, FileSource(data, len(events)))
        top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
        if "traceEvents" not in top:
            return None
        buf = top.pop("traceEvents")
        events = decode_events(buf)
        meta = {}
        for k, v in top.items():
            meta[k] = msgspec.json.decode(v)
        return RawTrace(events, meta, warnings, FileSource(buf, len(events)))
    except (msgspec.MsgspecError, RecursionError, ValueError, OverflowError, UnicodeDecodeError):
        return None
