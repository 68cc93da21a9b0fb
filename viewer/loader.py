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
import io
import json
import re
import sys
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import msgspec
import orjson

from safeio import InputError, TruncatedStream, gunzip_stream, open_input
from safeio.read import inflate_budget

from .convert import epoch_floats, floats_in_place
from .events import Event, EventSource, FileSource, to_records
from .stream import Columns, LazyEvents, Members, decode_columns

Progress = Callable[[float, str], None]

# How many candidate cut points the truncation repair tries before giving up: each try is a full
# parse, so this bounds the cost on a file that is broken in the middle rather than at the end.
_MAX_REPAIR_TRIES = 40


class TraceError(Exception):
    """A trace that cannot be opened at all; the message is one line meant for the user."""


@dataclass
class RawTrace:
    """Records in file order; `source[i]` is the original event i (every field, for the details pane)."""

    events: Sequence[Event]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    source: EventSource | None = None
    # The fast path's events as columns (then `events` decodes an X event's record only when asked).
    columns: Columns | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = self.events


def raw_trace(objs: list[Any], meta: dict[str, Any], warnings: list[str]) -> RawTrace:
    """From parsed JSON values (the slow path, and in-memory events): records plus the originals."""
    return RawTrace(to_records(objs), meta, warnings, objs)


def _noop(_f: float, _what: str) -> None:
    pass


_CHUNK = 1 << 24
_BLANK = b" \t\n\r"


# The most a stream (stdin, a FIFO, a device) may give when the caller sets no other limit.
STREAM_LIMIT = 1 << 30
STDIN = "-"


@dataclass(frozen=True)
class InputOptions:
    """What the user allowed beyond regular files: FIFOs and devices (`allow_special`), and how many
    bytes any stream (those, or stdin as `-`) may give before it is refused (`max_bytes`)."""

    allow_special: bool = False
    max_bytes: int = STREAM_LIMIT


def read_bytes(path: str, progress: Progress = _noop, options: InputOptions = InputOptions()) -> bytes | bytearray:
    """The trace's bytes (gunzipped), read in chunks so that the progress bar moves while a 1 GB file
    loads, within safeio's budget: a regular file only (a FIFO would block, /dev/zero never ends) unless
    `options` allow FIFOs and devices, at most its size when opened, gzip inflated to at most
    `inflate_budget(size)`. `-` is standard input. A stream (stdin, or a FIFO or device when allowed)
    is read to at most `options.max_bytes`, and refused beyond. Leading blanks are skipped without being
    kept, and a file whose first other byte cannot start a trace is refused before the rest is read (a
    2 GiB sparse file of zeros used to take 4.6 GB to be called invalid)."""
    if path == STDIN:
        try:
            return _read_stream(sys.stdin.buffer, "standard input", options.max_bytes, progress)
        except OSError as exc:
            raise TraceError(f"standard input: cannot read: {exc.strerror or exc}") from None
    try:
        f, size = open_input(path, what="trace file", allow_nonregular=options.allow_special)
    except InputError as exc:
        msg = str(exc)
        if "not a trace file" in msg:
            msg += " (or pass --allow-special-files, or `-` to read standard input)"
        raise TraceError(msg) from None
    with f:
        try:
            if size is None:
                return _read_stream(f, path, options.max_bytes, progress)
            head = f.read(1 << 20)
            if head[:2] == b"\x1f\x8b":
                return _read_gzip(f, head, size or 1, path, progress)
            return _read_plain(f, head, size, path, progress)
        except OSError as exc:
            raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_stream(f: Any, path: str, limit: int, progress: Progress) -> bytes | bytearray:
    """A stream of unknown length: at most `limit` bytes kept (one more read to tell that it is longer),
    then read as a file of that size would be."""
    data = bytearray()
    while len(data) <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
        progress(0.15 * min(1.0, len(data) / max(limit, 1)), "reading")
    if len(data) > limit:
        raise TraceError(f"{path}: gives more than {limit} bytes, the limit for a stream; pass a larger "
                         f"--max-input-bytes, or save it to a regular file first")
    size = len(data)
    bio = io.BytesIO(data)
    del data
    head = bio.read(1 << 20)
    if head[:2] == b"\x1f\x8b":
        return _read_gzip(bio, head, size or 1, path, progress)
    return _read_plain(bio, head, size, path, progress)


def _skip_blanks(head: bytes, more: Callable[[], bytes]) -> tuple[bytes, int]:
    """`head` from its first non-blank byte, reading on while it is all blank; and how many were skipped."""
    skipped = 0
    while True:
        body = head.lstrip(_BLANK)
        skipped += len(head) - len(body)
        if body or not head:
            return body, skipped
        head = more()


def _check_start(body: bytes, at: int, path: str) -> None:
    if body and body[:1] not in (b"[", b"{"):
        raise TraceError(f"{path}: not a Chrome trace: byte {at} is {body[:1]!r}, and a trace is a JSON "
                         f"array or object, starting with '[' or '{{'")


def _read_plain(f: io.BufferedIOBase, head: bytes, size: int, path: str, progress: Progress) -> bytearray:
    body, skipped = _skip_blanks(head, lambda: f.read(_CHUNK))
    _check_start(body, skipped, path)
    buf = bytearray(max(size - skipped, len(body)))
    buf[: len(body)] = body
    done, view = len(body), memoryview(buf)
    while done < len(buf):
        got = f.readinto(view[done : done + _CHUNK])
        if not got:
            break  # the file shrank while we read it
        done += got
        progress(0.3 * (done + skipped) / max(size, 1), "reading")
    view.release()
    del buf[done:]
    return buf


def _read_gzip(f: io.BufferedIOBase, head: bytes, size: int, path: str, progress: Progress) -> bytearray:
    """Inflate in bounded pieces so that a stream cut short still yields everything before the cut."""

    def chunks() -> Iterator[bytes]:
        yield head
        while chunk := f.read(1 << 22):
            progress(0.3 * min(1.0, f.tell() / size), "decompressing")
            yield chunk

    out = bytearray()
    blanks = 0
    try:
        for piece in gunzip_stream(chunks(), limit=inflate_budget(size), what="trace file", name=path):
            if not out:  # blanks before the document are dropped; its first byte is checked
                piece, skipped = _skip_blanks(piece, lambda: b"")
                _check_start(piece, blanks + skipped, path)
                blanks += skipped
            out += piece
    except TruncatedStream as exc:
        if not out:
            raise TraceError(str(exc)) from None
        raise _PartialGzip(out, exc.reason) from None
    except InputError as exc:
        raise TraceError(str(exc)) from None
    return out


class _PartialGzip(Exception):
    def __init__(self, data: bytearray, why: str):
        super().__init__(why)
        self.data = data
        self.why = why


def _where(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno} column {exc.colno} (byte {exc.pos})"


Loads = Callable[[Any], Any]


def _exact_loads(data: Any) -> Any:
    """The stdlib with every float as the exact Decimal of its text (epoch-scale timestamps)."""
    return json.loads(data, parse_float=Decimal)


def _parse(data: bytes | bytearray, loads: Loads = orjson.loads) -> Any:
    """orjson first (fast); the stdlib as a fallback because it accepts NaN/Infinity and 1e400."""
    try:
        return loads(data)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise first from None


def _content_end(data: bytes | bytearray) -> int:
    """Where the data ends once trailing blanks are dropped (found from the end, without a copy of it)."""
    end = len(data)
    while end:
        tail = bytes(data[max(0, end - 4096) : end]).rstrip(_BLANK)
        if tail:
            return end - 4096 + len(tail) if end > 4096 else len(tail)
        end = max(0, end - 4096)
    return 0


def _repair_truncated(data: bytes | bytearray, loads: Loads = orjson.loads) -> tuple[Any, int] | None:
    """Catapult's repair for a trace cut off mid-write: drop the partial last event, close the array.

    Returns the parsed document and the number of bytes dropped, or None when no cut point works.
    """
    end = _content_end(data)
    start = _leading_blanks(data)
    first = data[start : start + 1]
    if first == b"[":
        closers = [b"]"]
    elif first == b"{":
        closers = [b"]}", b"}"]
    else:
        return None
    for _ in range(_MAX_REPAIR_TRIES):
        cut = data.rfind(b"}", 0, end)
        if cut < 0:
            break
        for closer in closers:
            try:
                return loads(data[: cut + 1] + closer), len(data) - cut - 1
            except json.JSONDecodeError:  # orjson's is a subclass
                continue
        end = cut
    # "[" alone, or "[{" with nothing complete: an empty trace rather than an error.
    if first == b"[" and data.find(b"}") < 0:
        return [], len(data)
    return None


# a string (kept as it is) or a comma before a closing bracket or brace (dropped): one pass in C
_TRAILING_COMMA = re.compile(rb'"(?:[^"\\]|\\.)*"|,([ \t\n\r]*[\]}])')


# orjson's words for what _lenient forgives
_FORGIVEN = re.compile(r"trailing comma|control character")


def _drop_trailing_comma(m: re.Match[bytes]) -> bytes:
    closer = m.group(1)
    return m.group(0) if closer is None else closer


def _lenient(data: bytes | bytearray, loads: Loads) -> tuple[Any, list[str]] | None:
    """What Perfetto's JSON reader also accepts and strict JSON does not: commas before a closing bracket
    or brace, and raw control characters inside strings. The document and what was forgiven, or None."""
    text = _TRAILING_COMMA.sub(_drop_trailing_comma, bytes(data))
    forgiven = ["trailing commas ignored"] if len(text) != len(data) else []
    parse_float: Callable[[str], Any] = Decimal if loads is _exact_loads else float
    try:
        return json.loads(text, parse_float=parse_float), forgiven
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        pass
    try:
        doc = json.loads(text, parse_float=parse_float, strict=False)
        return doc, forgiven + ["control characters inside strings read as such"]
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None


def parse_document(data: bytes | bytearray, warnings: list[str], loads: Loads = orjson.loads) -> Any:
    if _leading_blanks(data) == len(data):
        raise TraceError("the file is empty")
    try:
        return _parse(data, loads)
    except json.JSONDecodeError as exc:
        # a truncated file goes straight to the repair: the stdlib's slower reading would fail on it too
        lenient = _lenient(data, loads) if loads is not orjson.loads or _FORGIVEN.search(exc.msg) else None
        if lenient is not None:
            doc, forgiven = lenient
            warnings.append(f"invalid JSON at {_where(exc)} ({exc.msg}); read as Perfetto does: {'; '.join(forgiven)}")
            return doc
        repaired = _repair_truncated(data, loads)
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


def load_raw(path: str, progress: Progress = _noop, options: InputOptions = InputOptions()) -> RawTrace:
    warnings: list[str] = []
    try:
        data = read_bytes(path, progress, options)
    except _PartialGzip as part:
        warnings.append(f"{part.why}; showing what was decompressed")
        data = part.data
    progress(0.3, "parsing JSON")
    data = _readable_utf8(data, warnings)
    fast = decode_fast(data, warnings)
    if fast is not None:
        progress(0.55, "parsed")
        return fast
    exact = False
    try:
        doc = parse_document(data, warnings)
        if epoch_floats(_ts_values(doc)):
            doc, exact = _exact_document(data, doc), True
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None
    del data
    progress(0.55, "parsed")
    try:
        raw = split_document(doc, warnings)
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None
    if exact:  # the records keep the exact decimals; the originals read as the fast path's do
        floats_in_place(raw.source)
        floats_in_place(raw.meta)
    return raw


def _exact_document(data: bytes | bytearray, doc: Any) -> Any:
    """The document parsed again with exact decimals, for epoch-scale float timestamps (see
    convert.EXACT_US); the float64 one where the stdlib refuses what orjson read (nesting too deep)."""
    try:
        return parse_document(data, [], _exact_loads)
    except (TraceError, ValueError, RecursionError):
        return doc


def _ts_values(doc: Any) -> list[Any]:
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    return [e.get("ts") for e in events if type(e) is dict] if isinstance(events, list) else []


_LEADING_SPACE = re.compile(rb"[ \t\n\r]*")
# An object whose first member is traceEvents (what the profiler writes), up to the value.
_EVENTS_FIRST = re.compile(rb'\{[ \t\n\r]*"traceEvents"[ \t\n\r]*:[ \t\n\r]*')


def _leading_blanks(data: bytes | bytearray) -> int:
    """How many blanks the data starts with (found without a stripped copy of it)."""
    m = _LEADING_SPACE.match(data)
    assert m is not None  # the pattern matches the empty string
    return m.end()
_UTF8_CHUNK = 1 << 24


def _first_bad_utf8(data: bytes | bytearray) -> int:
    """Where the first invalid UTF-8 byte is, or -1. Chunked: no copy of the whole file as text."""
    if data.isascii():
        return -1
    dec = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    at = 0
    try:
        for at in range(0, len(data), _UTF8_CHUNK):
            dec.decode(view[at : at + _UTF8_CHUNK])
        at = len(data)
        dec.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return at - len(dec.getstate()[0]) + exc.start
    return -1


def _readable_utf8(data: bytes | bytearray, warnings: list[str]) -> bytes | bytearray:
    """The data with each invalid UTF-8 sequence replaced by U+FFFD, and a warning saying where the
    first one was: one bad byte late in a file used to lose every event (or all after it) under a
    misleading "invalid JSON at byte 0". orjson rejects a file with invalid UTF-8 anywhere, and msgspec
    only looks inside the strings it decodes (not in args, kept raw), so this comes first."""
    bad = _first_bad_utf8(data)
    if bad < 0:
        return data
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    out = bytearray()
    view = memoryview(data)
    for at in range(0, len(data), _UTF8_CHUNK):
        out += dec.decode(view[at : at + _UTF8_CHUNK]).encode("utf-8")
    out += dec.decode(b"", final=True).encode("utf-8")
    view.release()
    warnings.append(f"invalid UTF-8 at byte {bad} (and maybe after); each bad byte is read as U+FFFD")
    return out


def decode_fast(data: bytes | bytearray, warnings: list[str]) -> RawTrace | None:
    """msgspec straight into records; None for anything it refuses (the slow path then decides).
    The data must be valid UTF-8 (see _readable_utf8)."""
    start = _leading_blanks(data)
    first = data[start : start + 1]
    if first not in (b"[", b"{"):
        return None
    try:
        meta = {}
        cols = None
        if first == b"[":
            buf: Any = data
        else:
            lead = _EVENTS_FIRST.match(data, start)
            if lead is not None:  # the usual layout: the array found while it is decoded
                members = Members()
                try:
                    cols = decode_columns(memoryview(data)[lead.end() :], members)
                except (msgspec.MsgspecError, ValueError):
                    pass  # (a second traceEvents, a stray byte...): read as any other object
                else:
                    buf, top = memoryview(data)[lead.end() : lead.end() + members.end], members.rest
            if cols is None:
                top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
                if "traceEvents" not in top:
                    return None
                buf = top.pop("traceEvents")
            for k, v in top.items():
                meta[k] = msgspec.json.decode(v)
        if cols is None:
            cols = decode_columns(buf)
        source = FileSource(buf, cols.count)
        return RawTrace(LazyEvents(cols, source), meta, warnings, source, cols)
    except (msgspec.MsgspecError, RecursionError, ValueError, OverflowError, UnicodeDecodeError):
        return None
