"""Many JSON objects of one shape, formatted by NumPy rather than one Python call per object.

A profile of the default options is millions of events that differ only in a few integers (start,
duration, ids) and in a prefix chosen from a small table (name, category, thread). Formatting them one
by one, even with a ``%`` template, costs about a microsecond each; here every column is turned into
ASCII digits for all rows at once and the rows are laid side by side in one ``uint8`` matrix, which
costs a few tens of nanoseconds per event.

Numbers are right-aligned in a fixed width with leading spaces (JSON allows whitespace between
tokens), so every row has the same length. Table entries are padded with spaces to the longest one
when their lengths differ little (rows keep their order); otherwise rows are grouped by the lengths of
their entries, in order within each group: the Trace Event Format does not require events to be
sorted, and every reader (Perfetto, chrome://tracing, this project's viewer) sorts them.

A row is described by parts, each one of:
  bytes                        a literal, the same in every row
  ("int", values)              int64 column, written as a JSON integer
  ("us", ns)                   int64 nanoseconds written as microseconds with 3 decimals (exact)
  ("table", entries, ids)      entries[ids[i]] (bytes), one of a few strings per row
Each row starts with a comma, so the rows go straight after a first element that is not one of them.

`format_rows` yields the rows in chunks laid out in two buffers used in turn (fresh memory costs a page
fault per 4 KiB, as much as the formatting itself): a chunk stays valid until the next-but-one is asked
for, so one can be written on another thread while the next is formatted (profiler._atomic does).
"""
from __future__ import annotations

import numpy as np

_CHUNK = 1 << 14    # rows formatted at a time: a few MB, so that each column's pass over them stays in cache
_MAX_PAD = 24       # table entries whose lengths differ by at most this are padded, keeping row order


_P10 = [10 ** k for k in range(20)]
_LIMB = 1_000_000_000      # 9 decimal digits: a limb fits in uint32


def _digits(v: np.ndarray) -> np.ndarray:
    """Decimal digits of int64 values as a (width, n) uint8 array, one row per position: right-aligned,
    leading spaces, '-' just before the first digit of a negative value. The digits are taken from
    9-digit uint32 limbs, whose division by 10 NumPy vectorises (int64's it does not)."""
    n = len(v)
    neg = v < 0
    a = np.abs(v)
    nd_max = len(str(int(a.max()))) if n else 1
    has_neg = bool(neg.any())
    width = nd_max + has_neg
    out = np.empty((width, n), np.uint8)
    if nd_max <= 9:
        limbs = [a.astype(np.uint32)]
    else:
        limbs = []
        x = a.astype(np.uint64)
        for _ in range(0, nd_max, 9):
            q = x // _LIMB
            limbs.append((x - q * _LIMB).astype(np.uint32))
            x = q
    ten = np.uint32(10)
    space = np.uint8(32)
    j = 0                                   # j-th digit from the right
    for x in limbs:
        for _ in range(min(9, nd_max - j)):
            q = x // ten
            d = (x - q * ten).astype(np.uint8)
            d += 48
            if j:
                np.copyto(d, space, where=a < _P10[j])
            out[width - 1 - j] = d
            x = q
            j += 1
    if has_neg:
        out[0] = 32
        rows = np.flatnonzero(neg)
        ar = a[rows]
        nd = np.ones(len(rows), np.int64)
        for k in range(1, nd_max):
            nd += ar >= _P10[k]
        out[width - 1 - nd, rows] = 45
    return out


def _us(ns: np.ndarray) -> list[np.ndarray]:
    """ns as µs with exactly 3 decimals: [(width, n) integer part (with sign), (4, n) '.' and three digits]."""
    ns = np.asarray(ns, np.int64)
    a = np.abs(ns).astype(np.uint64)
    ip = a // 1000
    frac = (a - ip * 1000).astype(np.uint16)
    ip = ip.astype(np.int64)
    negative = ns < 0
    has_neg = bool(negative.any())
    ipd = _digits(np.where(negative, -ip, ip) if has_neg else ip)
    if has_neg:
        neg0 = negative & (ip == 0)              # -0.5 µs: the sign goes before the 0
        if neg0.any():
            if not negative[ip != 0].any():     # no other negatives: _digits left no room for a sign
                ipd = np.concatenate([np.full((1, len(ns)), 32, np.uint8), ipd], axis=0)
            ipd[ipd.shape[0] - 2, np.flatnonzero(neg0)] = 45
    fd = np.empty((4, len(ns)), np.uint8)
    fd[0] = 46
    hundreds = frac // 100
    fd[1] = hundreds + 48
    rest = frac - hundreds * 100
    tens = rest // 10
    fd[2] = tens + 48
    fd[3] = rest - tens * 10 + 48
    return [ipd, fd]


def _used(ids: np.ndarray, n_entries: int) -> np.ndarray:
    """The distinct ids, by counting: ids index a small table (np.unique would sort, or import numpy.ma)."""
    return np.flatnonzero(np.bincount(ids, minlength=n_entries)) if len(ids) else np.zeros(0, np.int64)


def _table(entries: list[bytes], ids: np.ndarray) -> np.ndarray:
    """entries[ids] as an (n, width) array, padded with spaces to the longest entry these rows use."""
    used = _used(ids, len(entries))
    width = max((len(entries[k]) for k in used.tolist()), default=0)
    tab = np.full((max(len(entries), 1), width), 32, np.uint8)
    for k in used.tolist():
        e = entries[k]
        tab[k, :len(e)] = np.frombuffer(e, np.uint8)
    return tab[ids]


def _format(parts: list, sel: np.ndarray, buf: list) -> memoryview:
    """The rows of `sel`, each starting with a comma, laid out in buf[0] (replaced when too small). A
    column given in several parts (the same array object, same kind) is turned into digits once."""
    n = len(sel)
    pieces: list = [(b",", 1)]              # (literal bytes | (n, w) rows | (w, n) digit columns, width)
    done: dict = {}
    for p in parts:
        if isinstance(p, bytes):
            pieces.append((p, len(p)))
        elif p[0] == "table":
            x = _table(p[1], np.asarray(p[2])[sel])
            pieces.append((x, x.shape[1]))
        else:
            key = (p[0], id(p[1]))
            xs = done.get(key)
            if xs is None:
                col = np.asarray(p[1], np.int64)[sel]
                xs = done[key] = [_digits(col)] if p[0] == "int" else _us(col)
            pieces.extend((x.T, x.shape[0]) for x in xs)
    row = sum(w for _, w in pieces)
    if buf[0].size < n * row:
        buf[0] = np.empty(n * row, np.uint8)
    out = buf[0][:n * row].reshape(n, row)
    template = np.zeros(row, np.uint8)
    at = 0
    for x, w in pieces:
        if isinstance(x, bytes):
            template[at:at + w] = np.frombuffer(x, np.uint8)
        at += w
    out[:] = template                      # every literal at once, then the variable columns
    at = 0
    for x, w in pieces:
        if not isinstance(x, bytes):
            out[:, at:at + w] = x
        at += w
    return out.reshape(-1).data


def format_rows(parts: list, n: int):
    """n rows, each a comma followed by the concatenation of `parts`, as a generator of byte chunks in
    two alternating buffers: each chunk is valid until the next-but-one is asked for. Put them after at
    least one other element of the JSON array."""
    if n == 0:
        return
    groups = [np.arange(n)]
    tables = [p for p in parts if isinstance(p, tuple) and p[0] == "table"]
    spread = 0
    for _, entries, ids in tables:
        used = np.array([len(e) for e in entries], np.int64)[_used(np.asarray(ids), len(entries))]
        spread += int(used.max() - used.min()) if len(used) else 0
    if spread > _MAX_PAD:
        # one group per combination of table-entry lengths, so no row carries much padding
        key = np.zeros(n, np.int64)
        for _, entries, ids in tables:
            lens = np.array([len(e) for e in entries], np.int64)
            key = key * (int(lens.max(initial=0)) + 1) + lens[np.asarray(ids)]
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        groups = np.split(order, cuts)
    bufs = ([np.empty(0, np.uint8)], [np.empty(0, np.uint8)])
    k = 0
    for g in groups:
        for s in range(0, len(g), _CHUNK):
            yield _format(parts, g[s:s + _CHUNK], bufs[k & 1])
            k += 1
