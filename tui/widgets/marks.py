"""Check marks that read without colour, and the lists a dialog picks from.

Textual's ``SelectionList`` and ``Checkbox`` draw the same ``X`` whether an item
is on or off and let colour tell them apart; under ``NO_COLOR`` they would look
identical. These show ``✓`` when on and a blank when off. :class:`PickList`
adds the keys of a quick pick (``a`` all, ``n`` none, ``enter`` sends the form);
:class:`ReasonPicker` chooses one of a few reasons by its letter; :class:`CursorList`
(the requested items, the kinds of follow-up) reverses its highlighted line while focused.
"""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, OptionList, SelectionList
from textual.widgets.option_list import Option

ON = "✓"
OFF = " "

T = TypeVar("T")


REVERSE = Style(reverse=True)


def focus_cursor(strip: Strip, widget: OptionList, y: int) -> Strip:
    """The highlighted line of a focused list, reversed: focus shows without colour
    (Textual's option styles keep a ``reverse`` of the CSS only as colour)."""
    if widget.has_focus and widget.highlighted == round(widget.scroll_offset.y) + y:
        return Strip([Segment(s.text, (s.style or Style()) + REVERSE, s.control) for s in strip], strip.cell_length)
    return strip


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
        return focus_cursor(Strip(segments, strip.cell_length), self, y)


class MarkedCheckbox(Checkbox):
    """A Checkbox whose button shows ✓ / blank."""

    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's name
        return ON if self.value else OFF


class PickList(MarkedSelectionList[T]):
    """A check list of a form: ``space`` toggles, ``a`` all, ``n`` none, ``enter``
    sends the form (its screen's ``action_submit_form``)."""

    BINDINGS = [
        Binding("a", "select_all", "All", id="pick.all"),
        Binding("n", "deselect_all", "None", id="pick.none"),
        Binding("enter", "screen.submit_form", "Send the form", id="pick.submit", show=False),
    ]

    def on_focus(self) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

    def action_select_all(self) -> None:
        self.select_all()

    def action_deselect_all(self) -> None:
        self.deselect_all()


class CursorList(OptionList):
    """An OptionList whose highlighted line is reversed while it has the focus
    (NO_COLOR shows where the keys go)."""

    def render_line(self, y: int) -> Strip:
        return focus_cursor(super().render_line(y), self, y)


class ReasonPicker(CursorList):
    """One of a few reasons, chosen by its letter (``[w] Within allowance``) or by
    ``space`` on the highlighted one; ``enter`` sends the form. Nothing is chosen
    until the reviewer chooses: a reason is never a default."""

    BINDINGS = [
        Binding("space", "choose", "Choose the highlighted reason", id="reason.choose", show=False),
        Binding("enter", "screen.submit_form", "Send the form", id="reason.submit", show=False),
    ]

    def __init__(self, reasons: dict[str, str], letters: dict[str, str], *, id: str | None = None) -> None:
        self.reasons = reasons
        self.letters = letters           # reason id -> its letter
        self.chosen: str | None = None
        super().__init__(*(Option(self._prompt(code), id=code) for code in reasons), id=id, compact=True)

    def _prompt(self, code: str) -> Content:
        mark = "●" if code == self.chosen else "○"
        # Content, not a string: "[d]" would be read as markup (dim).
        return Content(f"{mark} [{self.letters[code]}] {self.reasons[code]}")

    def choose(self, code: str) -> None:
        """Choose the reason ``code`` (and show it chosen)."""
        self.chosen = code
        for index, other in enumerate(self.reasons):
            self.replace_option_prompt_at_index(index, self._prompt(other))
        self.highlighted = list(self.reasons).index(code)

    def action_choose(self) -> None:
        if self.highlighted is not None:
            self.choose(list(self.reasons)[self.highlighted])

    def on_key(self, event: events.Key) -> None:
        code = next((c for c, letter in self.letters.items() if letter == event.character), None)
        if code is not None:
            event.stop()
            self.choose(code)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:   # a click
            self.choose(event.option.id)
