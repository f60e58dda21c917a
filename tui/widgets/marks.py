"""Check marks that read without colour.

Textual's ``SelectionList`` and ``Checkbox`` draw the same ``X`` whether an item
is on or off and let colour tell them apart; under ``NO_COLOR`` they would look
identical. These show ``✓`` when on and a blank when off.
"""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList

ON = "✓"
OFF = " "

T = TypeVar("T")


class MarkedSelectionList(SelectionList[T]):
    """A SelectionList whose button shows ✓ / blank."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        index = round(self.scroll_offset.y) + y
        if len(segments) < 3 or index >= self.option_count:
            return strip
        value = self.get_option_at_index(index).value
        inner = segments[1]
        segments[1] = Segment(ON if value in self._selected else OFF, inner.style, inner.control)
        return Strip(segments, strip.cell_length)


class MarkedCheckbox(Checkbox):
    """A Checkbox whose button shows ✓ / blank."""

    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's name
        return ON if self.value else OFF
