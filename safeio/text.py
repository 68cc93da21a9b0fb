"""Literal text: a string from a file or a user, made safe to print on a terminal.

Escaped (written out as \\xNN, \\uNNNN or \\UNNNNNNNN, so the reader still sees what was there):
- C0 and C1 control characters and DEL (ANSI/OSC escapes, clear-screen, bell, C1 CSI);
- line and paragraph separators;
- bidirectional controls: embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks
  RLM, LRM, ALM (U+200E, U+200F, U+061C), which reorder what follows them on screen;
- zero-width and invisible formatting characters (U+200B-200D, U+2060-2064, U+FEFF, U+180E), which
  make two different names look the same;
- tag characters (U+E0000-E007F), invisible and used to smuggle text;
- lone surrogates (U+D800-DFFF), which cannot be encoded and crash a UTF-8 terminal writer.

Markup is not this function's business: show the result as plain text (rich.text.Text), never parse it.
"""
from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ud800-\udfff\U000e0000-\U000e007f]")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group(0))
    if o < 0x100:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def literal(value: object) -> str:
    """The value as text with every unsafe character written out as an escape (\\x1b, \\u202e, ...)."""
    s = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, s)
