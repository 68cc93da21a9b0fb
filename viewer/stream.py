"""traceEvents decoded a few megabytes at a time straight into columns, without a record per event.

Why: a record per event (even a compact msgspec Struct) costs about 400 bytes for a 69-byte event, so a
file of a million tiny X events took 10x its size in memory. Here the array is cut into pieces of about
`CHUNK_BYTES` at element boundaries, each piece is decoded into records, and the records are turned into
columns at once and dropped: only the columns of the X events (ts, dur, name, (cat, pid, tid)) and of the
B/E events (ts, B or E, name, (cat, pid, tid)) are kept, which the model pairs and nests vectorised, and
of the flow points (`FlowPoints`), plus the records of the other events (instants, metadata, counters,
async), which it binds one by one, and of the X and B/E events that carry a `bind_id`. Names past a few
thousand distinct ones are kept as one blob of text (viewer/names.py), not a str each.

A cut point is found by searching for `}` `,` `{` (with blanks) and confirmed by decoding the piece: a
cut inside a string leaves the string unterminated and a cut inside an event leaves a brace open, so a
piece that decodes as a list of objects ends at a real element boundary. Whatever does not decode
(NaN, a non-object entry, a truncated file) is left to the loader's slow path, as before.

The records of the X and B/E events are still there for whoever asks for one (`LazyEvents`): decoded again from
the event's own bytes in the file (`FileSource`), on demand.
"""

from __future__ import annotations

import re
from decimal import Decimal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import count, filterfalse, repeat
from operator import eq
from typing import Any, cast, overload

import msgspec
import numpy as np
from msgspec import UNSET, Raw
from numpy.typing import NDArray

from .convert import EXACT_US, epoch_floats, hashable, ns_array, text
from .events import (Drawn, Event, FileSource, _address, _Decoded, _drawn_decoder, _events_decoder,
                     _exact_drawn_decoder, _exact_events_decoder)
from .names import NameInterner, Names

CHUNK_BYTES = 1 << 18  # the records of a piece stay in the CPU caches while they are read (4% less time than 1 MiB)
# Candidate cut points tried per piece before the rest of the array is decoded in one go.
_MAX_CUT_TRIES = 8
_SEP = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
_BLANKS = b" \t\n\r"

# An event's (cat, pid, tid) as the file has them (made hashable where they are not).
LaneKey = tuple[Any, Any, Any]

# Below EXACT_US in ns, with room for rounding.
_NEAR_EXACT_NS = int(EXACT_US * 1000) // 2
# The most (ph, name, cat, pid, tid) combinations the accumulator keeps a table of.
_MAX_COMBOS = 1 << 16
# What the accumulator tells apart by phase: X, B and E (drawn), flow points, and the rest (records kept).
_X, _B, _E, _OTHER, _FLOW = 0, 1, 2, 3, 4
_PHASE_CLASS = {"X": _X, "B": _B, "E": _E, "s": _FLOW, "t": _FLOW, "f": _FLOW}

_item_decoder: msgspec.json.Decoder[_Decoded] = msgspec.json.Decoder(_Decoded)
_exact_item_decoder: msgspec.json.Decoder[_Decoded] = msgspec.json.Decoder(_Decoded, float_hook=Decimal)


def _is_hashable(v: Any) -> bool:
    try:
        hash(v)
        return True
    except TypeError:
        return False


def _hashable_name(v: Any) -> Any:
    return v if _is_hashable(v) else text(v)


def _hashable_lane_key(k: LaneKey) -> LaneKey:
    c, p, t = k
    return (c if _is_hashable(c) else text(c), hashable(p), hashable(t))


def intern_values(values: list[Any], table: dict[Any, int], fix: Any = _hashable_name) -> NDArray[np.int32]:
    """Each value's id in `table` (new ones appended, in order of first appearance), at C speed; values
    that are not hashable are made so by `fix` first (names as their text; pids and tids as the model's
    lanes read them)."""
    try:
        new = list(filterfalse(table.__contains__, dict.fromkeys(values)))
    except TypeError:
        values = list(map(fix, values))
        new = list(filterfalse(table.__contains__, dict.fromkeys(values)))
    if new:
        table.update(zip(new, count(len(table))))
    return np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values))


def intern_lane_keys(keys: list[LaneKey], table: dict[LaneKey, int]) -> NDArray[np.int32]:
    """`intern_values` for (cat, pid, tid) keys."""
    return intern_values(keys, table, _hashable_lane_key)


@dataclass
class FlowPoints:
    """The flow events (s/t/f) as what binding them reads (flows.bind_flows), taken from their records
    while these are fresh from decoding (read later from a dict of records, a third of a Kineto trace,
    each field was a cache miss: 1 s for 333k points), no record kept.

    Per point: file index, ts in ns (valid where ts_ok), id (`id`, else `id2`), and its (cat, pid, tid,
    ph, bp) as an index into `combos` (the distinct ones; an unhashable one is an entry of its own)."""

    src: NDArray[np.int64]
    ts_ns: NDArray[np.int64]
    ts_ok: NDArray[np.bool_]
    ids: list[Any]
    combo: NDArray[np.int32]
    combos: list[tuple[Any, Any, Any, Any, Any]]


# (ph, name, cat, pid, tid) as an event has them
LaneCombo = tuple[Any, Any, Any, Any, Any]


def _same(c: Any) -> Any:
    return c


def _flow_combo(main: list[LaneCombo], key: tuple[int, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """A flow point's (cat, pid, tid, ph, bp), tid filled as fill_tid_from_pid does, from its (ph, name, cat,
    pid, tid) in `main` and its bp."""
    ph, _, cat, pid, tid = main[key[0]]
    return cat, pid, pid if tid is None and pid is not None else tid, ph, key[1]


class _FlowAccumulator:
    def __init__(self) -> None:
        self.src = _Column(np.int64, 0)
        self.ts_ns = _Column(np.int64, 0)
        self.ts_ok = _Column(np.bool_, 0)
        self.combo = _Column(np.int32, 0)
        self.ids: list[Any] = []
        self.table: dict[Any, int] = {}  # (cat, pid, tid, ph, bp) -> its index in combos
        self.by_main: dict[tuple[int, Any], int] = {}  # (index in `main`'s table, bp) -> the same
        self.combos: list[tuple[Any, Any, Any, Any, Any]] = []

    def add(self, src: NDArray[np.int64], recs: Sequence[Event | Drawn], ts_ns: NDArray[np.int64],
            ts_ok: NDArray[np.bool_], main: tuple[NDArray[np.intp], list[LaneCombo]] | None = None) -> None:
        """Flow records at file indices src. With `main`: each one's (ph, name, cat, pid, tid) as an index into
        the accumulator's table of them (`_Accumulator.combo_list`), which with its bp says all that binding
        reads of it (no tuple per point, no tid filled in the record); else their tids must be filled
        (fill_tid_from_pid)."""
        self.src.extend(src)
        self.ts_ns.extend(ts_ns)
        self.ts_ok.extend(ts_ok)
        self.ids.extend([e.id2 if e.id is UNSET else e.id for e in recs])  # event_id, inlined
        keys: list[Any]
        if main is None:
            keys, table, make = [(e.cat, e.pid, e.tid, e.ph, e.bp) for e in recs], self.table, _same
        else:
            keys, table = list(zip(main[0].tolist(), [e.bp for e in recs])), self.by_main
            make = partial(_flow_combo, main[1])
        try:  # one lookup per point; the few new combinations added, then looked up again
            at = np.fromiter(map(table.get, keys, repeat(-1)), dtype=np.int32, count=len(keys))
            miss = np.flatnonzero(at < 0).tolist()
            if miss:
                new = list(dict.fromkeys([keys[k] for k in miss]))
                table.update(zip(new, count(len(self.combos))))
                self.combos.extend(map(make, new))
                at[miss] = [table[keys[k]] for k in miss]
        except TypeError:  # a list or an object among them: each point on its own
            at = np.arange(len(self.combos), len(self.combos) + len(keys), dtype=np.int32)
            self.combos.extend(map(make, keys))
        self.combo.extend(at)

    def points(self) -> FlowPoints:
        return FlowPoints(src=self.src.array(), ts_ns=self.ts_ns.array(), ts_ok=self.ts_ok.array(),
                          ids=self.ids, combo=self.combo.array(), combos=self.combos)


@dataclass
class Columns:
    """What the model needs of every event, in file order, with records only where it needs them.

    An event's name and its (cat, pid, tid) are interned separately (`names`, `lane_keys`): a trace of
    a million distinct names then holds one string per name, not a tuple per (name, cat, pid, tid) too."""

    count: int
    ts_ns: NDArray[np.int64]              # every event's ts in ns (valid where ts_ok)
    ts_ok: NDArray[np.bool_]
    x_src: NDArray[np.int64]              # file index of each X event
    x_dur: NDArray[np.int64]              # its dur in ns (valid where x_dur_ok)
    x_dur_ok: NDArray[np.bool_]
    x_name: NDArray[np.int32]             # its name, as an index into names
    x_key: NDArray[np.int32]              # its (cat, pid, tid), as an index into lane_keys
    be_src: NDArray[np.int64]             # file index of each B or E event
    be_is_b: NDArray[np.bool_]            # B (else E)
    be_name: NDArray[np.int32]
    be_key: NDArray[np.int32]
    names: list[Any] | Names              # distinct names as the file has them (made hashable), or their texts
    lane_keys: list[LaneKey]              # distinct (cat, pid, tid)
    bind: list[int]                       # file indices of the X, B and E events with a bind_id (flow v2)
    flows: FlowPoints                     # the flow events (s/t/f), no record kept
    others: list[int]                     # file indices of the events that are neither X, B/E nor flows, in order
    other_phs: list[Any]                  # their ph
    kept: dict[int, Event] = field(default_factory=dict)  # their records (and the bind ones')
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
        self.x_name = _Column(np.int32, capacity)
        self.x_key = _Column(np.int32, capacity)
        self.be_src = _Column(np.int64, 0)
        self.be_is_b = _Column(np.bool_, 0)
        self.be_name = _Column(np.int32, 0)
        self.be_key = _Column(np.int32, 0)
        self.names = NameInterner(_hashable_name)
        self.lane_keys: dict[LaneKey, int] = {}
        # Every (ph, name, cat, pid, tid) seen, with its class, name id and lane key id (see _classify).
        self.combos: dict[Any, int] | None = {}
        self.combo_list: list[LaneCombo] = []  # its keys, by index
        self.combo_cls = np.zeros(0, np.int8)
        self.combo_name = np.zeros(0, np.int32)
        self.combo_key = np.zeros(0, np.int32)
        self.bind: list[int] = []
        self.flows = _FlowAccumulator()
        self.others: list[int] = []
        self.other_phs: list[Any] = []
        self.kept: dict[int, Event] = {}

    def add(self, recs: Sequence[Event] | Sequence[Drawn], ts_ns: NDArray[np.int64], ts_ok: NDArray[np.bool_],
            whole: Callable[[], Sequence[Event]] | None = None) -> bool:
        """A batch of records. A missing tid is read as the pid (see fill_tid_from_pid) in the lane keys and
        in the records kept; the others are not changed (LazyEvents fills those it decodes). `whole`: where
        `recs` are `Drawn` records, the same batch as full records, decoded when some are to be kept (the
        answer: whether it was called)."""
        base, m = self.count, len(recs)
        full: Sequence[Event] | None = None
        self.ts_ns.extend(ts_ns)
        self.ts_ok.extend(ts_ok)
        # One pass over the records (attribute reads specialised by the interpreter; attrgetter per field
        # was a pass per field, each a cache miss per record).
        combos = [(e.ph, e.name, e.cat, e.pid, e.tid) for e in recs]
        cls, name, key, at = self._classify(combos)
        del combos
        flow = np.flatnonzero(cls == _FLOW)
        if len(flow):
            rs = [recs[k] for k in flow.tolist()]
            if at is None:
                fill_tid_from_pid(rs)
            self.flows.add(flow + base, rs, ts_ns[flow], ts_ok[flow],
                           None if at is None else (at[flow], self.combo_list))
            del rs
        other = np.flatnonzero(cls == _OTHER)
        if len(other):
            at_o = other.tolist()
            self.others.extend([base + k for k in at_o])
            self.other_phs.extend([recs[k].ph for k in at_o])
            if self.keep:
                full = self._whole(recs, whole)
                rs = [full[k] for k in at_o]
                fill_tid_from_pid(rs)
                self.kept.update(zip([base + k for k in at_o], rs))
                del rs
        bids = [e.bind_id for e in recs]
        if bids.count(UNSET) != m:  # flow v2: listed, and the record kept
            for k in np.flatnonzero(cls < _OTHER).tolist():
                if bids[k] is not UNSET:
                    self.bind.append(base + k)
                    if self.keep:
                        full = full or self._whole(recs, whole)
                        fill_tid_from_pid((full[k],))
                        self.kept[base + k] = full[k]
        del bids
        x_at = np.flatnonzero(cls == _X)
        self.x_src.extend(x_at + base)
        self.x_name.extend(name[x_at])
        self.x_key.extend(key[x_at])
        d_ns, d_ok = ns_array([recs[k].dur for k in x_at.tolist()])
        self.x_dur.extend(d_ns)
        self.x_dur_ok.extend(d_ok)
        if len(x_at) + len(flow) + len(other) < m:
            be_at = np.flatnonzero((cls == _B) | (cls == _E))
            self.be_src.extend(be_at + base)
            self.be_is_b.extend(cls[be_at] == _B)
            self.be_name.extend(name[be_at])
            self.be_key.extend(key[be_at])
        self.count += m
        return full is not None and whole is not None

    @staticmethod
    def _whole(recs: Sequence[Event] | Sequence[Drawn], whole: Callable[[], Sequence[Event]] | None
               ) -> Sequence[Event]:
        if whole is None:
            return cast(Sequence[Event], recs)
        full = whole()
        if len(full) != len(recs):  # the same bytes decoded twice: cannot happen
            raise ValueError("a piece of the trace decoded differently twice")
        return full

    def _classify(self, combos: list[LaneCombo]) -> tuple[NDArray[np.int8], NDArray[np.int32], NDArray[np.int32],
                                                          NDArray[np.intp] | None]:
        """Per (ph, name, cat, pid, tid): X, B, E or other; and for the X, B and E events their name and
        (cat, pid, tid) ids, interned in the order they come. Through a table of the combinations seen so
        far while they are few (the usual trace: one dict lookup per event; each one's index in the table,
        `combo_list`, is the last answer), else per event (a million distinct names; a combination that
        cannot be hashed; the last answer None)."""
        m = len(combos)
        table = self.combos
        if table is not None:
            try:
                at = np.fromiter(map(table.get, combos, repeat(-1)), dtype=np.intp, count=m)
            except TypeError:
                at = None
            if at is not None:
                new = np.flatnonzero(at < 0)
                fresh = dict.fromkeys([combos[k] for k in new.tolist()]) if len(new) else {}
                if len(table) + len(fresh) <= _MAX_COMBOS:
                    if fresh:
                        self._add_combos(list(fresh))
                        at[new] = np.fromiter(map(table.__getitem__, [combos[k] for k in new.tolist()]),
                                              dtype=np.intp, count=len(new))
                    return self.combo_cls[at], self.combo_name[at], self.combo_key[at], at
                self.combos = None  # too many: per event from now on (the table would cost more than it saves)
                self.combo_list = []
        phs = [c[0] for c in combos]
        try:
            cls = np.fromiter(map(_PHASE_CLASS.get, phs, repeat(_OTHER)), dtype=np.int8, count=m)
        except TypeError:  # an unhashable ph (a list): compared one phase at a time
            cls = np.full(m, _OTHER, np.int8)
            for ph, c in _PHASE_CLASS.items():
                cls[np.fromiter(map(eq, phs, repeat(ph)), dtype=bool, count=m)] = c
        return (cls, *self._ids(combos, cls), None)

    def _add_combos(self, distinct: list[tuple[Any, Any, Any, Any, Any]]) -> None:
        assert self.combos is not None
        cls = np.array([_PHASE_CLASS.get(c[0], _OTHER) if type(c[0]) is str else _OTHER for c in distinct],
                       dtype=np.int8)
        name, key = self._ids(distinct, cls)
        self.combos.update(zip(distinct, count(len(self.combos))))
        self.combo_list.extend(distinct)
        self.combo_cls = np.concatenate([self.combo_cls, cls])
        self.combo_name = np.concatenate([self.combo_name, name])
        self.combo_key = np.concatenate([self.combo_key, key])

    def _ids(self, combos: list[tuple[Any, Any, Any, Any, Any]], cls: NDArray[np.int8]
             ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """The name and lane key ids of the combinations that are X, B or E (0 for the others)."""
        name, key = np.zeros(len(combos), np.int32), np.zeros(len(combos), np.int32)
        at = np.flatnonzero(cls < _OTHER)
        if len(at):
            drawn = combos if len(at) == len(combos) else [combos[k] for k in at.tolist()]
            name[at] = self.names.ids([c[1] for c in drawn])
            key[at] = intern_lane_keys([(c[2], c[3], c[3] if c[4] is None and c[3] is not None else c[4])
                                        for c in drawn], self.lane_keys)
        return name, key

    def columns(self) -> Columns:
        names, remap = self.names.result()
        x_name, be_name = self.x_name.array(), self.be_name.array()
        if remap is not None:
            x_name, be_name = remap[x_name], remap[be_name]
        return Columns(
            count=self.count, ts_ns=self.ts_ns.array(), ts_ok=self.ts_ok.array(), x_src=self.x_src.array(),
            x_dur=self.x_dur.array(), x_dur_ok=self.x_dur_ok.array(), x_name=x_name,
            x_key=self.x_key.array(), be_src=self.be_src.array(), be_is_b=self.be_is_b.array(),
            be_name=be_name, be_key=self.be_key.array(), names=names,
            lane_keys=list(self.lane_keys), bind=self.bind, flows=self.flows.points(), others=self.others,
            other_phs=self.other_phs,
            kept=self.kept, exact=self.exact)


def fill_tid_from_pid(recs: Sequence[Event | Drawn]) -> None:
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


@dataclass
class Members:
    """For `decode_columns` of a JSON object whose first member is the array (`{"traceEvents": [...], ...}`,
    given from the array's `[` on): where the array ends in that text, and the object's other members.
    The array is then found while it is decoded, not by a pass over the whole text first."""

    end: int = -1
    rest: dict[str, Raw] = field(default_factory=dict)


_members_decoder: msgspec.json.Decoder[dict[str, Raw]] = msgspec.json.Decoder(dict[str, Raw])
_LEAD = b'{"traceEvents":'


def decode_columns(buf: Any, members: Members | None = None) -> Columns:
    """traceEvents (the bytes of a JSON array, or of an object from its leading array on: see `Members`)
    into columns, a piece at a time; raises msgspec errors (or ValueError) on anything the fast path does
    not take. Where some float ts is epoch-scale, the whole array is decoded again with exact decimals (see
    convert.EXACT_US), as one decode would."""
    try:
        return _decode_columns(buf, False, members)
    except _NeedExact:
        return _decode_columns(buf, True, members)


def _decode_columns(buf: Any, exact: bool, members: Members | None) -> Columns:
    """Each piece decoded into `Drawn` records, and again into full ones where it holds events whose records
    are kept (metadata, instants, counters...); after such a piece the next is decoded whole at once (a
    trace of kept events throughout is decoded once, as before)."""
    acc = _Accumulator(exact, memoryview(buf).nbytes // 64)
    drawn = _exact_drawn_decoder if exact else _drawn_decoder
    full = _exact_events_decoder if exact else _events_decoder
    decoder: list[msgspec.json.Decoder[Any]] = [drawn]  # what decodes the next piece

    for recs, piece in _pieces(memoryview(buf), lambda b: decoder[0].decode(b), members):
        ts = [e.ts for e in recs]
        ts_ns, ts_ok = ns_array(ts)
        # An epoch-scale float reads as a large ns or as unusable: only then is every ts looked at again.
        if not exact and (not ts_ok.all() or (np.abs(ts_ns) >= _NEAR_EXACT_NS).any()) and epoch_floats(ts):
            raise _NeedExact
        del ts
        whole = None if decoder[0] is full else partial(full.decode, piece)
        decoder[0] = full if acc.add(recs, ts_ns, ts_ok, whole) else drawn
    return acc.columns()


def _pieces(mv: memoryview, decode: Callable[[Any], list[Any]], members: Members | None = None
            ) -> Iterator[tuple[list[Any], Any]]:
    """The elements of the JSON array in `mv`, as lists of records of about CHUNK_BYTES of text each, with
    that text (itself a JSON array). With `members`, `mv` is an object from its leading array on (a cut
    past the array's end never decodes: the array's `]` would close the piece early); the last piece is
    decoded with the object's other members, which go in `members`."""
    lo, hi = 0, len(mv)
    while lo < hi and mv[lo] in _BLANKS:
        lo += 1
    while hi > lo and mv[hi - 1] in _BLANKS:
        hi -= 1
    close = b"]" if members is None else b"}"
    if hi - lo < 2 or mv[lo] != ord("[") or mv[hi - 1] != close[0]:
        raise ValueError("not a JSON array" if members is None else "not an object led by an array")
    body = mv[lo + 1 : hi - 1] if members is None else mv[lo + 1 : hi]
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
            piece = b"[" + body[pos:cut] + b"]"
            try:
                recs = decode(piece)
            except msgspec.DecodeError:  # a cut inside a string or an event: try the next one
                at = m.end()
                continue
            yield recs, piece
            pos = m.end() - 1
            break
        else:
            break  # no cut confirmed: the rest in one go
        if m is None:
            break
    if members is None:
        piece = b"[" + body[pos:] + b"]"
        yield decode(piece), piece
        return
    doc = _LEAD + b"[" + body[pos:]
    rest = _members_decoder.decode(doc)
    last = rest.pop("traceEvents")
    if _address(last) != _address(doc) + len(_LEAD):  # a second traceEvents (the last counts): not this way
        raise ValueError("traceEvents twice")
    members.end, members.rest = lo + pos + memoryview(last).nbytes, rest
    yield decode(last), last


class LazyEvents(Sequence[Event]):
    """Every event's record, in file order, for a trace decoded into `Columns`: the kept ones as they
    are, the others (X, B/E and flow events) decoded again from their bytes in the file when asked for."""

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
        for recs, _ in _pieces(memoryview(self.source.buf), decoder.decode):
            fill_tid_from_pid(recs)
            out.extend(recs)
        for i, rec in self.kept.items():
            out[i] = rec
        return out
