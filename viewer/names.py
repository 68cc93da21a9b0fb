"""Many distinct names as one UTF-8 blob and offsets, a Python str made only for a name that is read.

Why: a trace of a million distinct names (1M unclosed B events, each its own name) held a str per name
(56 MB for 7-character names) and a dict of a million entries to intern them, with the pymalloc arenas
they were scattered over left resident after decoding; as bytes in one blob with NumPy offsets the same
names take about 8 + 16 bytes each. Names are interned by their hash (`NameInterner`), equal hashes
checked byte for byte, and read back as text only where they are shown (the rows of a table on screen,
the rows of `summary` up to its limit).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from .convert import text

# The most distinct names a NameInterner keeps a dict of.
DICT_LIMIT = 1 << 16
# UTF-8 with lone surrogates kept (a JSON "\ud800" decodes to one), so every str goes in and comes back.
_ERRORS = "surrogatepass"


class Names(Sequence[str]):
    """Name i is blob[starts[i]:ends[i]] decoded."""

    def __init__(self, blob: bytes | bytearray, starts: NDArray[np.integer[Any]], ends: NDArray[np.integer[Any]]):
        self.blob, self.starts, self.ends = blob, starts, ends

    @classmethod
    def of(cls, names: Sequence[str]) -> Names:
        parts = [n.encode("utf-8", _ERRORS) for n in names]
        ends = np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)))
        return cls(b"".join(parts), ends - np.fromiter(map(len, parts), np.int64, len(parts)), ends)

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return bytes(memoryview(self.blob)[int(self.starts[i]) : int(self.ends[i])]).decode("utf-8", _ERRORS)

    def __iter__(self) -> Iterator[str]:
        mv = memoryview(self.blob)
        for a, b in zip(self.starts.tolist(), self.ends.tolist()):
            yield bytes(mv[a:b]).decode("utf-8", _ERRORS)

    def __repr__(self) -> str:
        return f"Names({len(self)} names)"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Names, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def take(self, ids: NDArray[Any]) -> Names:
        """The names `ids` refer to, in that order (the blob shared, not copied)."""
        return Names(self.blob, self.starts[ids], self.ends[ids])

    def ids_starting_with(self, prefix: str) -> NDArray[np.int64]:
        """The ids of the names that start with `prefix`, found on the bytes (no str per name)."""
        p = prefix.encode("utf-8", _ERRORS)
        at = np.flatnonzero(self.ends - self.starts >= len(p))
        if not len(p) or not len(at):
            return at.astype(np.int64)
        data = np.frombuffer(self.blob, np.uint8)
        for k, byte in enumerate(p):
            at = at[data[self.starts[at] + k] == byte]
        return at.astype(np.int64)


class NameInterner:
    """Ids for names as they come, in order of first appearance, equal names one id: a dict of the names
    while they are few, then (past `limit` distinct names, DICT_LIMIT by default) a blob of names each
    batch adds only its new distinct ones to, with their hashes, interned by hash once at the end
    (`result`). The ids handed out in the blob mode are provisional: `result` maps them to the final ones.

    The dict keeps the names as they are (made hashable); the blob, as text (`convert.text`): the model
    reads every name as its text in the end, merging names of equal text then (5 and "5")."""

    def __init__(self, fix: Any, limit: int | None = None):
        self.fix = fix
        self.limit = DICT_LIMIT if limit is None else limit
        self.table: dict[Any, int] | None = {}
        self.blob = bytearray()
        self.ends: list[NDArray[np.int64]] = []
        self.hashes: list[NDArray[np.int64]] = []
        self.n = 0

    def ids(self, values: list[Any]) -> NDArray[np.int32]:
        table = self.table
        if table is not None:
            try:
                new = [v for v in dict.fromkeys(values) if v not in table]
            except TypeError:
                values = list(map(self.fix, values))
                new = [v for v in dict.fromkeys(values) if v not in table]
            if len(table) + len(new) <= self.limit:
                if new:
                    table.update(zip(new, count(len(table))))
                return np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values))
            self.table = None
            self._append(list(table))  # ids 0.. as they were
            del table
        texts = [v if type(v) is str else text(v) for v in values]
        local = dict(zip(dict.fromkeys(texts), count(self.n)))
        self._append(list(local))
        return np.fromiter(map(local.__getitem__, texts), dtype=np.int32, count=len(texts))

    def _append(self, values: list[Any]) -> None:
        texts = [v if type(v) is str else text(v) for v in values]
        parts = [t.encode("utf-8", _ERRORS) for t in texts]
        self.hashes.append(np.fromiter(map(hash, texts), np.int64, len(texts)))
        del texts
        self.ends.append(len(self.blob) + np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts))))
        self.blob += b"".join(parts)
        self.n += len(parts)

    def result(self) -> tuple[list[Any] | Names, NDArray[np.int32] | None]:
        """The distinct names, in order of first appearance, and the map from the ids handed out to their
        index there (None: the same)."""
        if self.table is not None:
            return list(self.table), None
        hashes = np.concatenate(self.hashes)
        self.hashes = []
        # Offsets as int32 where the blob allows (8 bytes less per name than int64).
        ends = np.concatenate(self.ends).astype(np.int32 if len(self.blob) < 1 << 31 else np.int64)
        self.ends = []
        starts = np.concatenate([np.zeros(1, ends.dtype), ends[:-1]])
        names = Names(bytes(self.blob), starts, ends)
        self.blob = bytearray()
        # Each entry's first entry of equal hash (a stable sort keeps the first seen first in a run).
        order = np.argsort(hashes, kind="stable")
        sh = hashes[order]
        del hashes
        head = np.ones(len(sh), bool)
        head[1:] = sh[1:] != sh[:-1]
        del sh
        rep = np.empty(len(order), np.int64)
        rep[order] = order[np.flatnonzero(head)][np.cumsum(head) - 1]
        del order, head
        dup = np.flatnonzero(rep != np.arange(len(rep)))
        mv = memoryview(names.blob)
        same = all(mv[a:b] == mv[c:d] for a, b, c, d in zip(
            starts[dup].tolist(), ends[dup].tolist(), starts[rep[dup]].tolist(), ends[rep[dup]].tolist()))
        if not same:  # two names of one hash (never seen in practice): interned by their bytes instead
            seen: dict[bytes, int] = {}
            rep = np.array([seen.setdefault(bytes(mv[a:b]), k) for k, (a, b) in
                            enumerate(zip(starts.tolist(), ends.tolist()))], np.int64)
        keep = rep == np.arange(len(rep))
        if keep.all():
            return names, None
        new_id = np.cumsum(keep) - 1
        return names.take(np.flatnonzero(keep)), new_id[rep].astype(np.int32)
