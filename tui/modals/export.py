"""``x``: export the consumer's note: formats, folder, overwrite or not."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.widgets.selection_list import Selection

from store.export import FORMATS
from tui.text import literal_content
from tui.widgets.marks import MarkedCheckbox, MarkedSelectionList

FORMAT_LABELS = {
    "md": "Markdown (.md)",
    "html": "HTML, printable (.html)",
    "eml": "E-mail draft, never sent (.eml)",
    "json": "JSON case bundle (.json)",
    "csv": "CSV of findings (.csv)",
}


@dataclass(frozen=True)
class ExportChoice:
    formats: tuple[str, ...]
    out_dir: str
    force: bool


class ExportNotes(ModalScreen[ExportChoice]):
    """Choose formats and a folder; the screen runs the export in a worker."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, *, scope: str, out_dir: str) -> None:
        super().__init__()
        self.scope = scope
        self.out_dir = out_dir

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static("Export note", classes="modal-title")
            yield Static(literal_content(self.scope), classes="modal-scope")
            with Vertical(classes="modal-body"):
                yield Label("Formats (space toggles)")
                yield MarkedSelectionList[str](
                    *(Selection(FORMAT_LABELS[f], f, True) for f in FORMATS), id="formats", compact=True,
                )
                yield Label("Folder")
                yield Input(value=self.out_dir, id="out_dir", compact=True)
                yield MarkedCheckbox("Replace existing files", id="force", compact=True)
            yield Static("", id="problem", classes="modal-problem")
            with Horizontal(classes="modal-buttons"):
                yield Button("Export", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def submit(self) -> None:
        formats = tuple(self.query_one("#formats", MarkedSelectionList).selected)
        out_dir = self.query_one("#out_dir", Input).value.strip()
        problem = "choose at least one format" if not formats else "" if out_dir else "name a folder"
        if problem:
            self.query_one("#problem", Static).update(problem)
            return
        self.dismiss(ExportChoice(formats, out_dir, self.query_one("#force", MarkedCheckbox).value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
