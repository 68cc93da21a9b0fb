"""traceEvents decoded a few megabytes at a time straight into columns, without a record per event.

Why: a record per event (even a compact msgspec Struct) costs about 400 bytes for a 69-byte event, so a
file of a million tiny X events took 10x its size in memory. Here the array is cut into pieces of about
`CHUNK_BYTES` at element boundaries, each piece is decoded into records, and the records are turned into
columns at once and dropped: only the columns of the X events (ts, dur, which (name, cat, pid, tid)
combination) are kept, plus the records of the other events (B/E, instants, flows, metadata, counters,
async), which the model pairs and binds one by one, and of the X events that carry a `bind_id`.

A cut point is found by searching for `}` `,` `{` (with blanks) and confirmed by decoding the piece: a
cut inside a string leaves the string unterminated and a cut inside an event leaves a brace open, so a
piece that decodes as a list of objects ends at a real element boundary. Whatever does not decode
(NaN, a non-object entry, a truncated file) is left to the loader's slow path, as before.

The records of the X events are still there for whoever asks for one (`LazyEvents`): decoded again from
the event's own bytes in the file (`FileSource`), on demand.
"""

from __future__ import annotations

import re
from decimal import Decimal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import eq, ne
from typing import Any, overload

import msgspec
import numpy as np
from msgspec import UNSET
from numpy.typing import NDArray

from .convert import epoch_floats, hashable, ns_array, text
from .events import Event, FileSource, _Decoded, _events_decoder, _exact_events_decoder

CHUNK_BYTES = 1 << 20
# Candidate cut points tried per piece before the rest of the array is decoded in one go.
_MAX_CUT_TRIES = 8
_SEP = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
_BLANKS = b" \t\n\r"

# An event's (name, cat, pid, tid) as the file has them (made hashable where they are not).
Combo = tuple[Any, Any, Any, Any]

_item_decoder: msgspec.json.Decoder[_Decoded] = msgspec.json.Decoder(_Decoded)
_exact_item_decoder: msgspec.json.Decoder[_Decoded] = msgspec.json.Decoder(_Decoded, float_hook=Decimal)


def hashable_key(k: Combo) -> Combo:
    """A (name, cat, pid, tid) key usable in a dict: names and categories that are not hashable as
    their text, pids and tids through `hashable` (as the model's lanes read them)."""
    try:
        hash(k)
        return k
    except TypeError:
        n, c, p, t = k
        return (n if _is_hashable(n) else text(n), c if _is_hashable(c) else text(c), hashable(p), hashable(t))


def _is_hashable(v: Any) -> bool:
    try:
        hash(v)
        return True
    except TypeError:
        return False


def intern_keys(keys: list[Combo], table: dict[Combo, int]) -> NDArray[np.int64]:
    """Each key's id in `table` (new keys appended, in order of first appearance), at C speed."""
    try:
        local = dict.fromkeys(keys)
    except TypeError:
        keys = list(map(hashable_key, keys))
        local = dict.fromkeys(keys)
    for k in local:
        local[k] = table.setdefault(k, len(table))
    return np.fromiter(map(local.__getitem__, keys), dtype=np.int64, count=len(keys))


@dataclass
class Columns:
    """What the model needs of every event, in file order, with records only where it needs them."""

    count: int
    ts_ns: NDArray[np.int64]              # every event's ts in ns (valid where ts_ok)
    ts_ok: NDArray[np.bool_]
    x_src: NDArray[np.int64]              # file index of each X event
    x_dur: NDArray[np.int64]              # its dur in ns (valid where x_dur_ok)
    x_dur_ok: NDArray[np.bool_]
    x_combo: NDArray[np.int32]            # its (name, cat, pid, tid) as an index into x_combos
    x_combos: list[Combo]
    x_bind: list[int]                     # file indices of the X events with a bind_id (flow v2)
    others: list[int]                     # file indices of the events that are not X, in order
    kept: dict[int, Event] = field(default_factory=dict)  # their records (and the x_bind ones')
    exact: bool = False                   # floats were decoded as exact Decimals (epoch-scale ts)


class _Column:
    """An array filled a batch at a time, its capacity doubled when full: a few large blocks that go
    back to the system when replaced, rather than a piece per batch scattered among the short-lived
    objects of decoding (which kept tens of MB of freed heap resident)."""

    def __init__(self, dtype: Any, capacity: int) -> None:
        self.data = np.empty(max(capacity, 1024), dtype)
        self.n = 0

    def extend(self, values: NDArray[Any]) -> None:
        end = self.n + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : end] = values
        self.n = end

    def array(self) -> Any:
        """The filled part, shrunk in place (realloc: no second copy alive at once)."""
        data, self.data = self.data, np.empty(0, self.data.dtype)
        data.resize(self.n, refcheck=False)
        return data


class _Accumulator:
    """Builds `Columns` from batches of records in file order (the pieces of a file, or all at once).
    `capacity`: a guess at the number of events, for the first allocation. `keep`: whether to keep the
    records the model reads (not when the caller holds every record anyway)."""

    def __init__(self, exact: bool, capacity: int = 0, keep: bool = True) -> None:
        self.exact = exact
        self.keep = keep
        self.count = 0
        self.ts_ns = _Column(np.int64, capacity)
        self.ts_ok = _Column(np.bool_, capacity)
        self.x_src = _Column(np.int64, capacity)
        self.x_dur = _Column(np.int64, capacity)
        self.x_dur_ok = _Column(np.bool_, capacity)
        self.x_combo = _Column(np.int32, capacity)
        self.table: dict[Combo, int] = {}
        self.x_bind: list[int] = []
        self.others: list[int] = []
        self.kept: dict[int, Event] = {}

    def add(self, recs: Sequence[Event], ts_ns: NDArray[np.int64], ts_ok: NDArray[np.bool_]) -> None:
        """A batch of records whose tids are already filled from pids where missing."""
        base, m = self.count, len(recs)
        self.ts_ns.extend(ts_ns)
        self.ts_ok.extend(ts_ok)
        phs = [e.ph for e in recs]
        xk = list(compress(range(m), map(eq, phs, repeat("X"))))
        if len(xk) < m:
            for k in compress(range(m), map(ne, phs, repeat("X"))):
                self.others.append(base + k)
                if self.keep:
                    self.kept[base + k] = recs[k]
        del phs
        xs = list(map(recs.__getitem__, xk))
        self.x_src.extend(np.array(xk, dtype=np.int64) + base)
        d_ns, d_ok = ns_array([e.dur for e in xs])
        self.x_dur.extend(d_ns)
        self.x_dur_ok.extend(d_ok)
        self.x_combo.extend(intern_keys([(e.name, e.cat, e.pid, e.tid) for e in xs], self.table))
        for k, e in zip(xk, xs):
            if e.bind_id is not UNSET:
                self.x_bind.append(base + k)
                if self.keep:
                    self.kept[base + k] = e
        self.count += m

    def columns(self) -> Columns:
        return Columns(
            count=self.count, ts_ns=self.ts_ns.array(), ts_ok=self.ts_ok.array(), x_src=self.x_src.array(),
            x_dur=self.x_dur.array(), x_dur_ok=self.x_dur_ok.array(), x_combo=self.x_combo.array(),
            x_combos=list(self.table), x_bind=self.x_bind, others=self.others, kept=self.kept, exact=self.exact)


def fill_tid_from_pid(recs: Sequence[Event]) -> None:
    """An event without a tid is on the thread whose tid is its pid, as Perfetto reads it (so its B/E
    pair up and it shares a lane with the pid's main thread). The record changes, not the original."""
    for e in recs:
        if e.tid is None and e.pid is not None:  # (events.NOT_OBJECT has no pid: never changed)
            e.tid = e.pid


def columns_of_records(events: Sequence[Event], exact: bool = False) -> Columns:
    """The columns of records already in memory (the slow path's, and from_events'); `kept` stays
    empty, the caller reading the records from `events` itself."""
    acc = _Accumulator(exact, len(events), keep=False)
    ts_ns, ts_ok = ns_array([e.ts for e in events])
    acc.add(events, ts_ns, ts_ok)
    return acc.columns()


class _NeedExact(Exception):
    pass


def decode_columns(buf: Any) -> Columns:
    """traceEvents (the bytes of a JSON array) into columns, a piece at a time; raises msgspec errors
    (or ValueError) on anything the fast path does not take. Where some float ts is epoch-scale, the
    whole array is decoded again with exact decimals (see convert.EXACT_US), as one decode would."""
    try:
        return _decode_columns(buf, exact=False)
    except _NeedExact:
        return _decode_columns(buf, exact=True)


def _decode_columns(buf: Any, exact: bool) -> Columns:
    acc = _Accumulator(exact, memoryview(buf).nbytes // 64)
    decoder = _exact_events_decoder if exact else _events_decoder
    for recs in _pieces(memoryview(buf), decoder):
        ts = [e.ts for e in recs]
        if not exact and epoch_floats(ts):
            raise _NeedExact
        ts_ns, ts_ok = ns_array(ts)
        del ts
        fill_tid_from_pid(recs)
        acc.add(recs, ts_ns, ts_ok)
    return acc.columns()


def _pieces(mv: memoryview, decoder: msgspec.json.Decoder[list[_Decoded]]) -> Iterator[list[_Decoded]]:
    """The elements of the JSON array in `mv`, as lists of records of about CHUNK_BYTES of text each."""
    lo, hi = 0, len(mv)
    while lo < hi and mv[lo] in _BLANKS:
        lo += 1
    while hi > lo and mv[hi - 1] in _BLANKS:
        hi -= 1
    if hi - lo < 2 or mv[lo] != ord("[") or mv[hi - 1] != ord("]"):
        raise ValueError("not a JSON array")
    body = mv[lo + 1 : hi - 1]
    pos, end = 0, len(body)
    while pos < end:
        if end - pos <= CHUNK_BYTES + CHUNK_BYTES // 2:
            break
        at = pos + CHUNK_BYTES
        for _ in range(_MAX_CUT_TRIES):
            m = _SEP.search(body, at)
            if m is None:
                break
            cut = m.start() + 1
            try:
                recs = decoder.decode(b"[" + body[pos:cut] + b"]")
            except msgspec.DecodeError:  # a cut inside a string or an event: try the next one
                at = m.end()
                continue
            yield recs
            pos = m.end() - 1
            break
        else:
            break  # no cut confirmed: the rest in one go
        if m is None:
            break
    yield decoder.decode(b"[" + body[pos:] + b"]")


class LazyEvents(Sequence[Event]):
    """Every event's record, in file order, for a trace decoded into `Columns`: the kept ones as they
    are, the others (X events) decoded again from their bytes in the file when asked for."""

    def __init__(self, cols: Columns, source: FileSource):
        self.kept = cols.kept
        self.source = source
        self.exact = cols.exact
        self._n = cols.count

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Event: ...
    @overload
    def __getitem__(self, i: slice) -> list[Event]: ...
    def __getitem__(self, i: int | slice) -> Event | list[Event]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        rec = self.kept.get(i)
        if rec is not None:
            return rec
        if not 0 <= i < self._n:
            raise IndexError(i)
        rec = (_exact_item_decoder if self.exact else _item_decoder).decode(self.source.raw_item(i))
        fill_tid_from_pid((rec,))
        return rec

    def all(self) -> list[Event]:
        """Every record at once (a whole-trace scan), decoded again a piece at a time."""
        decoder = _exact_events_decoder if self.exact else _events_decoder
        out: list[Event] = []
        for recs in _pieces(memoryview(self.source.buf), decoder):
            fill_tid_from_pid(recs)
            out.extend(recs)
        for i, rec in self.kept.items():
            out[i] = rec
        return out
