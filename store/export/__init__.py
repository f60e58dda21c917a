"""Exports: notes as Markdown, standalone HTML, ``.eml`` drafts and JSON case
bundles; their findings as CSV; each export with a manifest of SHA-256 hashes
and the decision log's head.

:mod:`.formats` renders the files; :mod:`.act` carries an export out as one act
(re-checked and recorded in one transaction, files staged and moved in whole,
finished or undone after a crash); :mod:`.files` handles the files on disk.
"""

from store.export.act import ExportedFile, ExportResult, export_notes, recover_exports
from store.export.formats import (
    CSV_COLUMNS,
    case_bundle,
    findings_csv,
    manifest_name,
    neutralise_cell,
    note_eml,
    note_html,
    note_stem,
    safe_slug,
)

__all__ = [
    "CSV_COLUMNS", "ExportResult", "ExportedFile", "case_bundle", "export_notes", "findings_csv", "manifest_name",
    "neutralise_cell", "note_eml", "note_html", "note_stem", "recover_exports", "safe_slug",
]
