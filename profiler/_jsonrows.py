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
"""
from __future__ import annotations

import numpy as np

_CHUNK = 1 << 17    # rows formatted at a time: bounds the temporary matrix to ~20 MB
_MAX_PAD = 24       # table entries whose lengths differ by at most this are padded, keeping row order


def _digits(v: np.ndarray) -> np.ndarray:
    """Decimal digits of int64 values, right-aligned with leading spaces, '-' before negative ones."""
    n = len(v)
    neg = v < 0
    a = np.abs(v).astype(np.uint64)
    top = int(a.max()) if n else 0
    nd_max = len(str(top))
    width = nd_max + (1 if neg.any() else 0)
    out = np.empty((n, width), np.uint8)
    x = a.copy()
    for k in range(width - 1, -1, -1):
        out[:, k] = x % 10
        x //= 10
    out += 48
    nd = np.ones(n, np.int64)
    p = 10
    for _ in range(nd_max - 1):
        nd += a >= p
        p *= 10
    lead = width - nd                       # positions before the first significant digit
    out[np.arange(width)[None, :] < lead[:, None]] = 32
    if neg.any():
        rows = np.flatnonzero(neg)
        out[rows, lead[rows] - 1] = 45
    return out


def _us(ns: np.ndarray) -> np.ndarray:
    """ns as µs with exactly 3 decimals: integer part (with sign), '.', three digits."""
    ns = np.asarray(ns, np.int64)
    a = np.abs(ns)
    ip = a // 1000
    frac = a - ip * 1000
    ipd = _digits(np.where(ns < 0, -ip, ip))
    neg0 = (ns < 0) & (ip == 0)              # -0.5 µs: the sign goes before the 0
    if neg0.any():
        if not (ns < 0)[ip != 0].any():     # no other negatives: _digits left no room for a sign
            ipd = np.concatenate([np.full((len(ns), 1), 32, np.uint8), ipd], axis=1)
        ipd[np.flatnonzero(neg0), ipd.shape[1] - 2] = 45
    fd = np.empty((len(ns), 4), np.uint8)
    fd[:, 0] = 46
    fd[:, 1] = frac // 100 + 48
    fd[:, 2] = frac // 10 % 10 + 48
    fd[:, 3] = frac % 10 + 48
    return np.concatenate([ipd, fd], axis=1)


def _lit(b: bytes, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(b, np.uint8), (n, len(b)))


def _table(entries: list[bytes], ids: np.ndarray) -> np.ndarray:
    """entries[ids], padded with spaces to the longest entry these rows use."""
    used = np.unique(ids)
    width = max((len(entries[k]) for k in used.tolist()), default=0)
    tab = np.full((max(len(entries), 1), width), 32, np.uint8)
    for k in used.tolist():
        e = entries[k]
        tab[k, :len(e)] = np.frombuffer(e, np.uint8)
    return tab[ids]


def _format(parts: list, sel: np.ndarray) -> np.ndarray:
    """The rows as one C-contiguous uint8 array, each row starting with a comma."""
    n = len(sel)
    pieces: list = [b","]
    for p in parts:
        if isinstance(p, bytes):
            pieces.append(p)
        elif p[0] == "int":
            pieces.append(_digits(np.asarray(p[1], np.int64)[sel]))
        elif p[0] == "us":
            pieces.append(_us(np.asarray(p[1], np.int64)[sel]))
        else:
            pieces.append(_table(p[1], np.asarray(p[2])[sel]))
    widths = [len(x) if isinstance(x, bytes) else x.shape[1] for x in pieces]
    template = np.zeros(sum(widths), np.uint8)
    at = 0
    for x, w in zip(pieces, widths):
        if isinstance(x, bytes):
            template[at:at + w] = np.frombuffer(x, np.uint8)
        at += w
    out = np.empty((n, len(template)), np.uint8)
    out[:] = template                      # every literal at once, then the variable columns
    at = 0
    for x, w in zip(pieces, widths):
        if not isinstance(x, bytes):
            out[:, at:at + w] = x
        at += w
    return out.reshape(-1)


def format_rows(parts: list, n: int) -> list[np.ndarray]:
    """n rows, each a comma followed by the concatenation of `parts`, as a list of byte buffers (uint8
    arrays) to write or join as they are: put them after at least one other element of the array."""
    if n == 0:
        return []
    groups = [np.arange(n)]
    tables = [p for p in parts if isinstance(p, tuple) and p[0] == "table"]
    spread = 0
    for _, entries, ids in tables:
        used = np.array([len(e) for e in entries], np.int64)[np.unique(np.asarray(ids))]
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
    return [_format(parts, g[s:s + _CHUNK]) for g in groups for s in range(0, len(g), _CHUNK)]
