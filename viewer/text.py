"""Making untrusted trace strings safe to print, and durations readable.

Trace names and args come from anyone's files: an ANSI escape or a control character in them must
never reach the terminal, and Rich/Textual markup in them must show as the characters it is. So every
string goes through `literal` and is then shown as a `rich.text.Text` (never parsed as markup).
"""

from __future__ import annotations

import json

from rich.text import Text

from safeio import literal


def safe_text(value: object, style: str = "") -> Text:
    return Text(literal(value), style=style, no_wrap=True)


# What the details pane shows of one value at most: a 50 MB argument took the TUI to 1.5 GB.
CLIP = 2000


def clipped(value: object, limit: int = CLIP) -> str:
    """The value as literal text, at most `limit` characters of it, saying how much was left out.

    A string is cut before escaping; any other value is serialised only as far as the limit (JSON's
    iterencode stops early), so a huge value is never written out whole to be cut afterwards."""
    if isinstance(value, str):
        if len(value) <= limit:
            return literal(value)
        return f"{literal(value[:limit])}… ({len(value):,} characters in all)"
    out, size = [], 0
    try:
        for piece in json.JSONEncoder(default=repr, check_circular=False).iterencode(value):
            out.append(piece)
            size += len(piece)
            if size > limit:
                return f"{literal(''.join(out)[:limit])}… (cut at {limit:,} characters)"
    except (ValueError, RecursionError, OverflowError):
        return literal(repr(value)[:limit])
    return literal("".join(out))


def fmt_ns(ns: float) -> str:
    """A duration in the largest unit that keeps it >= 1, three significant digits."""
    ns = float(ns)
    a = abs(ns)
    if a < 1e3:
        return f"{ns:.0f} ns"
    if a < 1e6:
        return f"{ns / 1e3:.3g} µs" if a < 1e5 else f"{ns / 1e3:.0f} µs"
    if a < 1e9:
        return f"{ns / 1e6:.3g} ms" if a < 1e8 else f"{ns / 1e6:.0f} ms"
    return f"{ns / 1e9:.3g} s" if a < 1e11 else f"{ns / 1e9:.0f} s"


def fmt_bytes(b: float) -> str:
    b = float(b)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(b) < 1024 or unit == "TiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB"
