"""The ops table: per (category, name) aggregates of every span, computed with NumPy group-bys.

Shared by the TUI's Ops tab, `python -m viewer summary` and the diff, so all three agree on what
"total" and "self" mean: total is the sum of durations, self subtracts time spent in nested children
(computed from nesting in model.py), % is a row's total as a share of the busy time of its kind of
lane (CPU threads or GPU streams, envelopes left out: see device.py), so a CPU op never reads as a
share of GPU time. Device is the time of the kernels an op launched, itself or through what it
encloses (torch's "CUDA total"); self device, those it launched itself.

`ProfilerStep#N` rows are one `ProfilerStep*` row, as torch's tables have them.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union, overload

import msgspec
import numpy as np

from safeio import literal

from .convert import unique_inverse
from .events import decode_value
from .device import ENVELOPE_CATS, busy_ns, cat_mask, device_time, gpu_lanes
from .model import KIND_SPAN, Trace
from .names import Names
from .steps import STEPS_STAR, step_name_ids
from .text import fmt_ns

COLUMNS = ("name", "cat", "count", "total", "self", "avg", "min", "max", "pct", "device")
NUMERIC = ("count", "total", "self", "avg", "min", "max", "pct", "device")


class Texts(Sequence[str]):
    """texts[ids[i]] per row i (`other` where ids[i] is -1), read when asked for: a million rows hold no
    list of a million references per text column, only the ids the table has anyway."""

    _CHUNK = 1 << 16

    def __init__(self, texts: Sequence[str], ids: np.ndarray, other: str = ""):
        self.texts, self.ids, self.other = texts, ids, other

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return self._texts(self.ids[i])
        k = int(self.ids[i])
        return self.other if k < 0 else self.texts[k]

    def __iter__(self) -> Iterator[str]:
        table = None if isinstance(self.texts, Names) else _table(self.texts)
        for lo in range(0, len(self.ids), self._CHUNK):
            yield from self._texts(self.ids[lo : lo + self._CHUNK], table)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Texts, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Texts({list(self)!r})"

    def _texts(self, ids: np.ndarray, table: np.ndarray | None = None) -> list[str]:
        if not len(self.texts):  # (every id is -1)
            return [self.other] * len(ids)
        if isinstance(self.texts, Names):  # only the names asked for made str
            picked = list(map(self.texts.__getitem__, np.maximum(ids, 0).tolist()))
        else:
            picked = (_table(self.texts) if table is None else table)[np.maximum(ids, 0)].tolist()
        out = picked
        for k in np.flatnonzero(ids < 0).tolist():
            out[k] = self.other
        return out


@dataclass
class OpsTable:
    name: Texts
    cat: Texts
    shapes: Texts
    count: np.ndarray
    total: np.ndarray
    self: np.ndarray
    min: np.ndarray
    max: np.ndarray
    pct: np.ndarray
    name_id: np.ndarray  # -1 for the merged ProfilerStep* row (int32, as the trace's)
    cat_id: np.ndarray
    device: np.ndarray
    self_device: np.ndarray
    step_ids: np.ndarray  # the name ids merged into ProfilerStep*

    def __len__(self) -> int:
        return len(self.count)

    @property
    def avg(self) -> np.ndarray:
        """Every row's average (a column made when sorted by; a row's own: `avg_of`)."""
        avg: np.ndarray = self.total / np.maximum(self.count, 1)
        return avg

    def avg_of(self, i: int) -> float:
        return float(self.total[i] / max(self.count[i], 1))

    def order(self, column: str = "total", descending: bool = True, limit: int | None = None) -> np.ndarray:
        """Rows by `column`, ties by name (lowercase); with `limit`, the first `limit` only (found
        without sorting every name: the names are compared only among rows tied on the column)."""
        if column not in COLUMNS:
            raise ValueError(f"unknown column {column!r}; choose from {', '.join(COLUMNS)}")
        n = len(self)
        if column in ("name", "cat"):
            keys = getattr(self, column)

            def key(i: int) -> tuple[str, str]:
                return (keys[i].lower(), self.shapes[i])

            if limit and limit < n:
                pick = heapq.nlargest if descending else heapq.nsmallest  # = sorted(...)[:limit]
                return np.array(pick(limit, range(n), key=key), dtype=np.int64)
            return np.array(sorted(range(n), key=key, reverse=descending), dtype=np.int64)
        values = getattr(self, column)
        v = -values if descending else values
        del values
        if limit and limit < n:  # the rows up to the limit-th value and every row tied with it, sorted
            kth = np.partition(v, limit - 1)[limit - 1]  # NaN last either way, as in a sort
            if kth == kth:
                o = np.flatnonzero(v <= kth)
                o = o[np.argsort(v[o], kind="stable")]
            else:
                o = np.argsort(v, kind="stable")
        else:
            o = np.argsort(v, kind="stable")  # NaN last either way
        sv = v[o]
        del v
        tie = sv[1:] == sv[:-1]
        if sv.dtype.kind == "f":
            tie |= np.isnan(sv[1:]) & np.isnan(sv[:-1])
        if tie.any():  # rows of equal value by name: names ranked among the tied rows only
            member = np.zeros(len(o), bool)
            at = np.flatnonzero(tie)
            member[at] = True
            member[at + 1] = True
            sub = o[member].tolist()
            lower = [self.name[i].lower() for i in sub]
            rank = np.empty(len(sub), np.int64)
            rank[sorted(range(len(sub)), key=lower.__getitem__)] = np.arange(len(sub))
            name_rank = np.zeros(len(o), np.int64)
            name_rank[member] = rank
            o = o[np.lexsort((name_rank, sv))]
        return o[:limit] if limit else o

    def rows(self, column: str = "total", descending: bool = True, limit: int | None = None,
             contains: str = "") -> list[int]:
        needle = contains.lower()
        if not needle:
            out: list[int] = self.order(column, descending, limit).tolist()
            return out
        order = self.order(column, descending)
        out = [i for i in order.tolist() if needle in self.name[i].lower() or needle in self.cat[i].lower()]
        return out[:limit] if limit else out

    def as_dicts(self, rows: list[int]) -> list[dict[str, str | int | float | None]]:
        out = []
        for i in rows:
            d: dict[str, str | int | float | None] = {"name": self.name[i], "cat": self.cat[i]}
            if self.shapes[i]:
                d["input_dims"] = self.shapes[i]
            d.update(count=int(self.count[i]), total_ns=int(self.total[i]), self_ns=int(self.self[i]),
                     avg_ns=self.avg_of(i), min_ns=int(self.min[i]), max_ns=int(self.max[i]),
                     pct=round(float(self.pct[i]), 4) if np.isfinite(self.pct[i]) else None,
                     device_ns=int(self.device[i]), self_device_ns=int(self.self_device[i]))
            out.append(d)
        return out

    def event_mask(self, trace: Trace, i: int) -> np.ndarray:
        """Which events row i aggregates (every step for ProfilerStep*)."""
        ids = self.step_ids if self.name_id[i] < 0 else np.array([self.name_id[i]])
        mask: np.ndarray = np.isin(trace.name_id, ids) & (trace.cat_id == self.cat_id[i]) & (trace.kind == KIND_SPAN)
        return mask

    @property
    def has_device(self) -> bool:
        return bool(len(self) and self.device.any())


def ops_table(trace: Trace, by_shape: bool = False, mask: np.ndarray | None = None) -> OpsTable:
    sel = trace.kind == KIND_SPAN
    if mask is not None:
        sel &= mask
    # Every event a span (the usual): the columns themselves, not copies, and no index of every event.
    idx = None if sel.all() else np.flatnonzero(sel)
    del sel

    def of(column: np.ndarray) -> np.ndarray:
        return column if idx is None else column[idx]

    n = len(trace) if idx is None else len(idx)
    n_names = len(trace.names) + 1  # + ProfilerStep*
    step_ids = step_name_ids(trace)
    key = of(trace.cat_id).astype(np.int64)
    key *= n_names
    nid = of(trace.name_id)
    key += np.where(np.isin(nid, step_ids), len(trace.names), nid) if len(step_ids) else nid
    del nid
    shape_ids = np.zeros(0, dtype=np.int64)
    shape_table: list[str] = [""]
    if by_shape:
        shape_ids, shape_table = _shape_ids(trace, np.arange(n) if idx is None else idx)
        key = key * len(shape_table) + shape_ids
    space = max(len(trace.cats), 1) * n_names * len(shape_table)
    inv: np.ndarray  # each event's row
    if space <= max(4 * len(key), 1 << 20):  # few distinct keys (the usual): counted, not sorted
        count = np.bincount(key, minlength=space)
        uniq = np.flatnonzero(count)
        count = count[uniq]
        lookup = np.zeros(space, np.int32)  # (row numbers are below n: half of intp's bytes per event)
        lookup[uniq] = np.arange(len(uniq), dtype=np.int32)
        inv = lookup[key]
        del lookup
    else:
        uniq, inv = unique_inverse(key)
        count = np.bincount(inv, minlength=len(uniq))
    del key
    n_rows = len(uniq)
    del uniq
    # Each row's first event first: its every-event temporary (an arange) gone before the other row columns.
    one_each = n_rows == n  # every event its own row (as many distinct names as events): the rows are the events
    if one_each:
        first_at = np.empty(n, np.int64)
        first_at[inv] = np.arange(n)
        count = np.broadcast_to(np.int64(1), (n,))
    else:
        first_at = np.full(n_rows, n, np.int64)
        np.minimum.at(first_at, inv, np.arange(n))
    dur, self_ns = of(trace.dur), of(trace.self_ns)
    total = _row_sums(dur, inv, first_at)
    selft = _row_sums(self_ns, inv, first_at)
    if one_each:  # a row's min and max are its one event's dur: its total (one column, three names)
        mn = mx = total
    else:
        mn = np.full(n_rows, np.iinfo(np.int64).max, np.int64)
        mx = np.full(n_rows, np.iinfo(np.int64).min, np.int64)
        np.minimum.at(mn, inv, dur)
        np.maximum.at(mx, inv, dur)
    first = first_at if idx is None else idx[first_at]
    merged = np.isin(trace.name_id[first], step_ids)
    dev_total, dev_self = device_time(trace)
    if dev_total.any():
        dev = _row_sums(of(dev_total), inv, first_at)
        dev_s = _row_sums(of(dev_self), inv, first_at)
    else:  # no launches (a CPU trace): no per-row temporaries
        dev = dev_s = np.zeros(n_rows, np.int64)
    # Every per-event temporary freed before the per-row ones (a million rows: tens of MB less at the peak).
    del dev_total, dev_self, inv, dur, self_ns
    if by_shape:
        shapes = Texts(shape_table, shape_ids[first_at])
    else:  # no shape per row: one id for every row, not a column of them
        shapes = Texts(shape_table, np.broadcast_to(np.intp(0), (n_rows,)))
    del first_at, shape_ids
    cpu_busy, gpu_busy = busy_ns(trace)
    on_gpu = gpu_lanes(trace)[trace.lane[first]] if n_rows else np.zeros(0, bool)
    busy = np.where(on_gpu, float(gpu_busy), float(cpu_busy))
    del on_gpu
    envelope = cat_mask(trace, ENVELOPE_CATS)[first] if n_rows else np.zeros(0, bool)
    no_pct = envelope | (busy <= 0)
    del envelope
    # 100 * total / max(busy, 1), in place: one per-row column at a time (a million rows: 40 MB less at the peak).
    np.maximum(busy, 1.0, out=busy)
    pct = total.astype(np.float64)
    pct *= 100.0
    pct /= busy
    pct[no_pct] = np.nan
    del busy, no_pct
    name_id = trace.name_id[first].astype(np.int32)
    name_id[merged] = -1
    cat_id = trace.cat_id[first].astype(np.int32)
    del first, merged
    return OpsTable(
        name=Texts(trace.names, name_id, STEPS_STAR), cat=Texts(trace.cats, cat_id),
        shapes=shapes, count=count, total=total, self=selft, min=mn, max=mx, pct=pct,
        name_id=name_id, cat_id=cat_id, device=dev, self_device=dev_s, step_ids=step_ids,
    )


def _row_sums(values: np.ndarray, inv: np.ndarray, first_at: np.ndarray) -> np.ndarray:
    """Each row's sum of `values` (one per event; `inv`: each event's row, `first_at`: each row's first
    event): with as many rows as events, each row's one event's value."""
    out: np.ndarray = (values[first_at] if len(first_at) == len(values)
                       else np.bincount(inv, weights=values, minlength=len(first_at)))
    return out.astype(np.int64, copy=False)


def _table(texts: Sequence[str]) -> np.ndarray:
    """texts as an object array, to pick many by id without a Python int per id."""
    table = np.empty(len(texts), dtype=object)
    table[:] = list(texts)
    return table


class _Dims(msgspec.Struct, gc=False):
    # None when absent; typed Raw, not Raw | None, because msgspec decodes by this annotation.
    dims: msgspec.Raw = msgspec.field(default=None, name="Input Dims")  # type: ignore[assignment]


# args can be any JSON value; all but objects have no Input Dims.
_DimsOrValue = Union[_Dims, None, bool, int, float, str, list[Any]]
_dims_decoder: msgspec.json.Decoder[list[_DimsOrValue]] = msgspec.json.Decoder(list[_DimsOrValue])


def _shape_ids(trace: Trace, idx: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per event of idx, an id of the text of its args' Input Dims ("" when none); and the texts.

    Args still held as the file's bytes are scanned for that one key in a single msgspec call, and
    each distinct Input Dims is written out once, not once per event.
    """
    records = trace.records()
    args = [records[i].args for i in idx.tolist()]
    del records
    # Per event: None (no Input Dims), the raw bytes of its Input Dims (bytes), or its text (str).
    dims: list[bytes | str | None] = [None if type(a) is msgspec.Raw else _dims_text(a) for a in args]
    raw_at = [k for k, a in enumerate(args) if type(a) is msgspec.Raw]
    if raw_at:
        try:
            found = _dims_decoder.decode(b"[" + b",".join([args[k] for k in raw_at]) + b"]")
            for k, d in zip(raw_at, found):
                if type(d) is _Dims and d.dims is not None:
                    dims[k] = bytes(d.dims)
        except (msgspec.MsgspecError, RecursionError, ValueError):
            for k in raw_at:
                dims[k] = _dims_text(decode_value(args[k]))
    lookup: dict[str, int] = {"": 0}
    id_of = {d: lookup.setdefault(_canonical(decode_value(d)) if isinstance(d, bytes) else (d or ""), len(lookup))
             for d in dict.fromkeys(dims)}
    ids = np.fromiter(map(id_of.__getitem__, dims), dtype=np.int64, count=len(dims))
    return ids, list(lookup)


def _canonical(dims: Any) -> str:
    return json.dumps(dims, separators=(",", ":"), default=str)


def _dims_text(args: Any) -> str | None:
    if not isinstance(args, dict) or "Input Dims" not in args:
        return None
    return _canonical(args["Input Dims"])


def fmt_pct(v: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else "-"


def format_table(table: OpsTable, rows: list[int], width_name: int = 48) -> str:
    return "\n".join(table_lines(table, rows, width_name))


def table_lines(table: OpsTable, rows: list[int], width_name: int = 48) -> Iterator[str]:
    """format_table's lines one at a time (a million rows need not be one string)."""
    dev = table.has_device
    head = (f"{'name':<{width_name}} {'cat':<16} {'count':>8} {'total':>10} {'self':>10} {'avg':>10} "
            f"{'min':>10} {'max':>10} {'%':>6}" + (f" {'device':>10} {'self dev':>10}" if dev else ""))
    yield head
    yield "-" * len(head)
    for i in rows:
        name = literal(table.name[i][: width_name + 1])
        if table.shapes[i]:
            name = f"{name} {literal(table.shapes[i][: width_name + 1])}"
        if len(name) > width_name:
            name = name[: width_name - 1] + "…"
        yield (
            f"{name:<{width_name}} {literal(table.cat[i][:16])[:16]:<16} {int(table.count[i]):>8} "
            f"{fmt_ns(table.total[i]):>10} {fmt_ns(table.self[i]):>10} {fmt_ns(table.avg_of(i)):>10} "
            f"{fmt_ns(table.min[i]):>10} {fmt_ns(table.max[i]):>10} {fmt_pct(table.pct[i]):>6}"
            + (f" {fmt_ns(table.device[i]):>10} {fmt_ns(table.self_device[i]):>10}" if dev else "")
        )
