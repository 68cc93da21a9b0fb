"""Making untrusted trace strings safe to print, and durations readable.

Trace names and args come from anyone's files: an ANSI escape or a control character in them must
never reach the terminal, and Rich/Textual markup in them must show as the characters it is. So every
string goes through `literal` and is then shown as a `rich.text.Text` (never parsed as markup).
"""

from __future__ import annotations

from rich.text import Text

from safeio import literal


def safe_text(value: object, style: str = "") -> Text:
    return Text(literal(value), style=style, no_wrap=True)


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
