"""The note editor's preview: the Markdown drawn by Rich, shown line by line.

Textual's ``Markdown`` widget mounts a widget per block, and a Rich renderable
in a ``Static`` is drawn again for every measure and repaint: for a letter of a
few hundred lines with its tables, either took about a second. Here the letter
is drawn into lines by :func:`draw_markdown` (the editor does that in a thread,
ahead of ``ctrl+o``, at the width the preview will have) and a repaint is a list
lookup (``tests/benchmarks/bench_note_preview.py``). Links are shown with their
address, never as terminal hyperlinks.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.markdown import Markdown
from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.text import glue_spaces

Lines = list[list[Segment]]


def draw_markdown(source: str, width: int, *, color_system: str | None) -> Lines:
    """``source`` drawn as Markdown, ``width`` cells wide (runs in any thread: its own console)."""
    console = Console(width=width, color_system=color_system, force_terminal=True, file=io.StringIO(),  # type: ignore[arg-type]
                      legacy_windows=False)
    return console.render_lines(Markdown(source, hyperlinks=False), console.options.update_width(width), pad=False)


class NotePreview(ScrollView, can_focus=False):
    """The lines of a drawn note; ``source`` and ``drawn_width`` say which text and width they are."""

    DEFAULT_CSS = """
    NotePreview { overflow-x: hidden; overflow-y: auto; scrollbar-gutter: stable; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source: str | None = None   # None: nothing drawn yet
        self.drawn_width = 0
        self._lines: list[Strip] = []

    @property
    def lines(self) -> list[str]:
        """What the preview shows, line by line (for tests)."""
        return ["".join(segment.text for segment in strip).rstrip() for strip in self._lines]

    @property
    def width_wanted(self) -> int:
        """The width to draw for: the preview's own, once laid out."""
        return self.scrollable_content_region.width

    def is_current(self, source: str) -> bool:
        """Whether ``source`` is what is shown, drawn for the preview's width."""
        return source == self.source and self.drawn_width == self.width_wanted

    def set_lines(self, source: str, width: int, lines: Lines) -> None:
        """Show ``lines``: ``source`` drawn ``width`` cells wide."""
        self.source, self.drawn_width = source, width
        base = self.rich_style
        self._lines = [Strip(glue_spaces(line)).crop_extend(0, width, base).apply_style(base) for line in lines]
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        line = self._lines[index]
        return line if line.cell_length == width else line.crop_extend(0, width, self.rich_style)
