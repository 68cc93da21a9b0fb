"""Search over names, categories and args: case-insensitive substring, or a regex as /pattern/.

Names and categories are matched once per distinct string, then spread to events with NumPy. Args
are put once (lower-cased, one line per event) into a blob cached on the trace, so a search is a
C-speed scan of that blob plus a searchsorted from hit offsets back to events. Args still held as the
file's JSON text are used as they are; only those containing backslash-u escapes are decoded and written
again (orjson), so that non-ASCII text matches as typed.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import msgspec
import numpy as np
import orjson
from msgspec import Raw

from .events import decode_value
from .model import Trace


class SearchError(ValueError):
    pass


def compile_query(query: str) -> tuple[Callable[[str], object], re.Pattern[bytes] | bytes]:
    """Returns (match function on str, compiled bytes regex or lower-cased bytes needle)."""
    q = query.strip()
    if len(q) >= 2 and q.startswith("/") and q.endswith("/"):
        try:
            rx = re.compile(q[1:-1], re.IGNORECASE)
            brx = re.compile(q[1:-1].encode("utf-8"), re.IGNORECASE)
        except re.error as exc:
            raise SearchError(f"bad regex: {exc}") from None
        return rx.search, brx
    low = q.lower()
    return (lambda s: low in s.lower()), low.encode("utf-8")


def _dump(args: Any) -> bytes:
    if not args:
        return b""
    try:
        return orjson.dumps(args, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return repr(args).encode("utf-8", "replace").replace(b"\n", b" ")


def _empty(piece: Raw | bytes) -> bool:
    """Whether compact args text is a value `not` calls empty (left out of the blob, as _dump leaves it): {}, [],
    "" or a scalar that decodes falsy (false, null, 0 in any spelling: 0.00, -0e5)."""
    if memoryview(piece)[0] in _OPENERS:
        return len(piece) == 2
    return not decode_value(piece)


_OPENERS = frozenset(b'{["')
_raw_list: msgspec.json.Decoder[list[Raw]] = msgspec.json.Decoder(list[Raw])


def _compact(raws: list[Raw]) -> list[Raw] | list[bytes]:
    """The file's JSON texts of args without whitespace, in one msgspec call for all of them."""
    if not raws:
        return []
    try:
        return _raw_list.decode(msgspec.json.format(b"[" + b",".join(raws) + b"]", indent=-1))
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return [_dump(decode_value(r)) for r in raws]


def _offsets(pieces: list[Raw | bytes]) -> np.ndarray:
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces)) + 1
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(pieces) else np.zeros(0, np.int64)


def args_blob(trace: Trace) -> tuple[bytes, np.ndarray]:
    cached: tuple[bytes, np.ndarray] | None = getattr(trace, "_args_blob", None)
    if cached is not None:
        return cached
    args = [e.args for e in trace.records()]
    raw_at = [k for k, a in enumerate(args) if type(a) is Raw]
    pieces: list[Raw | bytes] = [b"" if type(a) is Raw else _dump(a) for a in args]
    raws = [args[k] for k in raw_at]
    del args
    for k, piece in zip(raw_at, _compact(raws)):
        pieces[k] = b"" if _empty(piece) else piece
    offsets = _offsets(pieces)
    blob = b"\n".join(pieces)
    if b"\\u" in blob:  # escapes: decode and write again so that the text matches as typed
        for k in set(_blob_hits(blob, offsets, b"\\u")):
            if type(pieces[k]) is not bytes:
                pieces[k] = _dump(decode_value(pieces[k]))
        offsets = _offsets(pieces)
        blob = b"\n".join(pieces)
    blob = blob.lower()
    # Cached on the trace it describes (and freed with it); Trace itself knows nothing of searching.
    trace._args_blob = (blob, offsets)  # type: ignore[attr-defined]
    return blob, offsets


def _blob_hits(blob: bytes, offsets: np.ndarray, pattern: re.Pattern[bytes] | bytes) -> list[int]:
    hits: list[int] = []
    if not len(offsets):
        return hits
    if isinstance(pattern, bytes):
        if not pattern:
            return hits
        pos = blob.find(pattern)
        while pos >= 0:
            k = int(np.searchsorted(offsets, pos, "right")) - 1
            hits.append(k)
            nxt = int(offsets[k + 1]) if k + 1 < len(offsets) else len(blob)
            pos = blob.find(pattern, nxt)
        return hits
    for m in pattern.finditer(blob):
        hits.append(int(np.searchsorted(offsets, m.start(), "right")) - 1)
    return hits


def search(trace: Trace, query: str, include_args: bool = True) -> np.ndarray:
    """Indices of matching events, in time order."""
    if not query.strip():
        return np.zeros(0, dtype=np.int64)
    match, pattern = compile_query(query)
    name_hit = np.array([bool(match(n)) for n in trace.names], dtype=bool)
    cat_hit = np.array([bool(match(c)) for c in trace.cats], dtype=bool)
    mask = np.zeros(len(trace), dtype=bool)
    if len(trace):
        mask = name_hit[trace.name_id] | cat_hit[trace.cat_id]
        if include_args:
            blob, offsets = args_blob(trace)
            mask[_blob_hits(blob, offsets, pattern)] = True
    idx = np.flatnonzero(mask)
    return idx[np.argsort(trace.ts[idx], kind="stable")]
