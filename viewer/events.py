"""One record type for trace events, and the way back to an event's original JSON.

Why a msgspec Struct rather than a dict per event: a 1M-event trace decoded as dicts takes 1.3 GB
and 1.3 s before any column is built; decoded straight into these records (no GC header, `args`
left as unparsed bytes) it takes about 0.5 GB and 0.5 s. Every field is typed `Any`, so odd
producers (string timestamps, list pids) decode the same as they would as dicts, and the model
decides what is usable.

Missing and explicit null are the same for most fields (`None` for both), as `dict.get` made them.
The exceptions keep their old meaning: a missing `dur` reads as 0 (explicit null is an error the
model reports), a missing `id` falls back to `id2` and keeps a counter's name without an id suffix
(`UNSET`), and the fields nobody reads are `UNSET` when absent.

The details pane shows every field of an event, including non-standard ones the record drops: it
asks the trace's `source` for the original event, which on the fast path is cut out of the file's
bytes on demand (see `FileSource`); otherwise it is the list of parsed objects itself.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Protocol, cast

import msgspec
import numpy as np
from msgspec import UNSET, Raw

Unset = type(UNSET)


class Drawn(msgspec.Struct, gc=False):
    """The fields that building columns reads of the X, B/E and flow events (stream.py), decoded alone: a
    record of 11 fields is made in about three quarters of the time of a full one (the rest skipped, not
    kept). A piece of the file that holds any other event is decoded again whole, as `Event`."""

    ph: Any = None
    name: Any = None
    cat: Any = None
    pid: Any = None
    tid: Any = None
    ts: Any = None
    dur: Any = 0.0
    id: Any = UNSET
    id2: Any = None
    bp: Any = None
    bind_id: Any = UNSET


class Event(Drawn, gc=False):
    """The Chrome Trace Event Format fields of one event (the viewer reads a few; the rest ride along):
    Drawn's, and these."""

    tts: Any = UNSET
    tdur: Any = UNSET
    s: Any = None
    scope: Any = UNSET
    cname: Any = UNSET
    sf: Any = UNSET
    stack: Any = UNSET
    esf: Any = UNSET
    estack: Any = UNSET
    flow_in: Any = UNSET
    flow_out: Any = UNSET
    args: Any = None


class _Decoded(Event, gc=False):
    """What the fast path decodes into: the same record with `args` kept as the file's bytes."""

    # None when the event has no args: a default, never decoded (null in the file is Raw(b"null")).
    # Typed Raw, not Raw | None, because msgspec decodes by this annotation.
    args: Raw = None  # type: ignore[assignment]


FIELDS = frozenset(Event.__struct_fields__)

# Stands in for an entry of traceEvents that is not an object, so records stay aligned with the file.
NOT_OBJECT_PH = object()
NOT_OBJECT = Event(ph=NOT_OBJECT_PH)

_events_decoder: msgspec.json.Decoder[list[_Decoded]] = msgspec.json.Decoder(list[_Decoded])
# For traces with epoch-scale float timestamps: every untyped float decoded as the exact Decimal of its text.
_exact_events_decoder: msgspec.json.Decoder[list[_Decoded]] = msgspec.json.Decoder(
    list[_Decoded], float_hook=Decimal)
_raw_list_decoder: msgspec.json.Decoder[list[Raw]] = msgspec.json.Decoder(list[Raw])
_drawn_decoder: msgspec.json.Decoder[list[Drawn]] = msgspec.json.Decoder(list[Drawn])
_exact_drawn_decoder: msgspec.json.Decoder[list[Drawn]] = msgspec.json.Decoder(list[Drawn], float_hook=Decimal)


def event_id(e: Event) -> Any:
    """`id`, or `id2` when there is no `id` (as `e.get("id", e.get("id2"))` read a dict)."""
    return e.id2 if e.id is UNSET else e.id


def decode_value(buf: Any) -> Any:
    """A JSON value from bytes; msgspec first, the stdlib for what it refuses (1e400 becomes inf)."""
    try:
        return msgspec.json.decode(buf)
    except (msgspec.MsgspecError, RecursionError, ValueError, OverflowError):
        pass
    try:
        return json.loads(bytes(buf).decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None


def args_value(e: Event) -> Any:
    a = e.args
    return decode_value(a) if type(a) is Raw else a


def args_dict(e: Event) -> dict[Any, Any]:
    """The event's args as a dict ({} when missing or not an object); decodes raw bytes on demand."""
    a = e.args
    if type(a) is dict:
        return a
    if type(a) is Raw:
        a = decode_value(a)
        return a if type(a) is dict else {}
    return a if isinstance(a, dict) else {}


def to_records(objs: list[Any]) -> list[Event]:
    """Parsed JSON values (or any Python objects) as records, one per entry, in the same order."""
    if set(map(type, objs)) <= {dict}:
        try:
            return msgspec.convert(objs, list[Event])
        except (msgspec.MsgspecError, TypeError, ValueError):
            pass
    return [_record(o) for o in objs]


def _record(o: Any) -> Event:
    if type(o) is not dict:
        return NOT_OBJECT
    try:
        return msgspec.convert(o, Event)
    except (msgspec.MsgspecError, TypeError, ValueError):
        return Event(**{k: v for k, v in o.items() if type(k) is str and k in FIELDS})


def decode_events(buf: Any) -> list[Event]:
    """traceEvents (a JSON array) straight into records; raises msgspec errors on anything odd."""
    # A list of the subclass, used as a list of Event like the slow path's (nothing needs _Decoded).
    return cast(list[Event], _events_decoder.decode(buf))


def decode_events_exact(buf: Any) -> list[Event]:
    """As decode_events, with every float decoded as the exact Decimal of its text: for a trace whose
    float timestamps are too large for float64 to hold their nanoseconds (see convert.EXACT_US), so
    that a child ending 24 ns after its parent at 1.7e15 µs is still seen to end after it. A second
    decode, done only for such traces."""
    return cast(list[Event], _exact_events_decoder.decode(buf))


def _address(buf: Any) -> int:
    return int(np.frombuffer(buf, dtype=np.uint8).__array_interface__["data"][0])


class EventSource(Protocol):
    """Where a trace's original events come from: the parsed list itself, or a `FileSource`."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> Any: ...


class FileSource:
    """The original text of event i of a JSON array held in memory, found without keeping 1M objects.

    On first use the array is split once (msgspec, about 0.2 s per million events) and only the
    byte offset of every `STRIDE`-th element is kept; fetching an event then re-splits the short
    stretch of bytes between two kept offsets.
    """

    STRIDE = 512

    def __init__(self, buf: Any, count: int):
        self.buf = buf
        self.count = count
        self._offsets: list[int] | None = None
        self._all: list[Raw] | None = None

    def __len__(self) -> int:
        return self.count

    def _index(self) -> None:
        items = _raw_list_decoder.decode(self.buf)
        if len(items) != self.count:  # cannot happen for bytes that decoded as events; be safe anyway
            self._all = items
            return
        if not items:
            self._offsets = [0]
            return
        base, size = _address(self.buf), memoryview(self.buf).nbytes
        offsets = [_address(items[k]) - base for k in range(0, len(items), self.STRIDE)]
        last = items[-1]
        end = _address(last) - base + memoryview(last).nbytes
        if not all(0 <= o < size for o in offsets) or not 0 < end <= size:
            self._all = items  # not views into buf after all: keep them rather than guess
            return
        self._offsets = offsets + [end]

    def __getitem__(self, i: int) -> Any:
        return decode_value(self.raw_item(i))

    def release(self) -> None:
        """Let go of the file's text, for a caller that reads no event again (`summary`'s ops table: the
        text is as large as the file); reading one afterwards is an error."""
        self.buf = None
        self._offsets = self._all = None

    def raw_item(self, i: int) -> Raw:
        """The text of event i, as it is in the file."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        if self.buf is None:
            raise RuntimeError("the trace's text was released (FileSource.release): its events cannot be read")
        if self._offsets is None and self._all is None:
            self._index()
        if self._all is not None:
            return self._all[i]
        offsets = self._offsets
        assert offsets is not None  # _index() sets either _all or _offsets
        k, j = divmod(i, self.STRIDE)
        a, b = offsets[k], offsets[k + 1]
        chunk = bytes(memoryview(self.buf)[a:b]).rstrip()
        if chunk.endswith(b","):
            chunk = chunk[:-1]
        return _raw_list_decoder.decode(b"[" + chunk + b"]")[j]
