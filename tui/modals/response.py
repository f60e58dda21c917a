"""``A``: record a consumer's reply: the paths of its files, the day it came, a note."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Input, Label, Static

from tui.modals.base import FormModal
from tui.text import literal_content


@dataclass(frozen=True)
class ResponseChoice:
    """The files (absolute paths), the received day (empty: today) and the note."""

    paths: tuple[str, ...]
    received: str
    note: str


def split_paths(text: str, base: Path) -> list[str] | str:
    """The paths typed (space separated; quote a path with spaces; ``~`` expanded;
    relative to ``base``), or what is wrong with the text."""
    try:
        parts = shlex.split(text)
    except ValueError as exc:
        return f"cannot read the paths: {exc} (close the quote)"
    return [str((base / Path(part).expanduser()).resolve()) for part in parts]


class AddResponse(FormModal[ResponseChoice]):
    """Paths of the reply and its attachments, the day it was received, a note."""

    TITLE_TEXT = "Record a response"
    OK_LABEL = "Record"
    AUTO_FOCUS = "#paths"

    def __init__(self, *, scope: str, today: str, base: Path | None = None) -> None:
        super().__init__(scope=scope)
        self.today = today
        self.base = base or Path.cwd()

    def fields(self) -> ComposeResult:
        yield Label("Files (paths separated by spaces; quote a path with spaces)")
        # The folder is data (a name may hold brackets): shown literally, wrapped when long.
        yield Static(Content("relative to ") + literal_content(self.base), classes="modal-scope")
        yield Input(placeholder="reply.pdf attachments/deletion-log.csv", id="paths", compact=True)
        yield Label("Received (YYYY-MM-DD, UTC)")
        yield Input(value=self.today, id="received", compact=True)
        yield Label("Note (optional: what the reply says, in a line)")
        yield Input(id="note", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def result(self) -> ResponseChoice | str:
        paths = split_paths(self.query_one("#paths", Input).value, self.base)
        if isinstance(paths, str):
            return paths
        note = self.query_one("#note", Input).value.strip()
        if not paths and not note:
            return "give the path of the reply (or at least a note)"
        return ResponseChoice(tuple(paths), self.query_one("#received", Input).value.strip(), note)
