"""``x``: export the consumer's note: formats, folder, overwrite or not."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label
from textual.widgets.selection_list import Selection

from store.domain import EXPORT_FORMATS
from tui.modals.base import FormModal
from tui.widgets.marks import MarkedCheckbox, PickList

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


class ExportNotes(FormModal[ExportChoice]):
    """Choose formats and a folder; the screen runs the export in a worker."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]
    inherit_bindings = False   # its own binding id, as before the form frame was shared
    TITLE_TEXT = "Export note"
    OK_LABEL = "Export"
    BODY = Vertical   # short enough for 80x24; the formats list takes the focus

    def __init__(self, *, scope: str, out_dir: str) -> None:
        super().__init__(scope=scope)
        self.out_dir = out_dir

    def fields(self) -> ComposeResult:
        yield Label("Formats (space toggles, a all, n none)")
        yield PickList[str](
            *(Selection(FORMAT_LABELS[f], f, True) for f in EXPORT_FORMATS), id="formats", compact=True,
        )
        yield Label("Folder")
        yield Input(value=self.out_dir, id="out_dir", compact=True)
        yield MarkedCheckbox("Replace existing files", id="force", compact=True)

    def result(self) -> ExportChoice | str:
        formats = tuple(self.query_one("#formats", PickList).selected)
        out_dir = self.query_one("#out_dir", Input).value.strip()
        if not formats:
            return "choose at least one format"
        if not out_dir:
            return "name a folder"
        return ExportChoice(formats, out_dir, self.query_one("#force", MarkedCheckbox).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()
