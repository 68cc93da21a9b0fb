"""A text box that never holds a character a terminal would act on.

Textual's Input draws its value as it is, and a paste can bring anything (an ESC sequence copied
from a log, a bidi override): what goes in is made literal first, so the box shows, and searches
for, the same escaped spelling the rest of the viewer shows for such characters.
"""

from __future__ import annotations

from textual.widgets import Input

from safeio import literal


class LiteralInput(Input):
    def validate_value(self, value: str) -> str:
        return literal(value)
