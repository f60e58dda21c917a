"""The export dialog's choice carried out (in a worker thread): each chosen format
through ``store.export``, one after another.

A format that fails with a ``WardenError`` (it would overwrite, the note is out
of date) does not stop the others, as with ``warden export``: the failures come
back beside the summary of what was written, for the App's boundary to show, and
so does every warning of every format (each shown on its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from store.errors import WardenError
from store.export import export_notes
from tui.modals.export import ExportChoice
from tui.session import Session


@dataclass
class Exported:
    lines: list[str] = field(default_factory=list)                       # one summary per format written
    failed: list[tuple[str, WardenError]] = field(default_factory=list)  # (format, why)
    warnings: list[str] = field(default_factory=list)                    # every format's, once each


def export_note(session: Session, consumer_id: str, choice: ExportChoice) -> Exported:
    """Export ``consumer_id``'s latest note in each format of ``choice``."""
    conn = session.connections.get()
    done = Exported()
    note_ids = None
    for fmt in choice.formats:
        try:
            result = export_notes(
                conn, fmt=fmt, out_dir=Path(choice.out_dir).expanduser(), consumer_id=consumer_id,
                force=choice.force, reviewer=session.reviewer, clock=session.clock, config=session.config.notes,
                note_ids=note_ids,
            )
        except WardenError as exc:
            done.failed.append((fmt, exc))
            continue
        # The first format marks the note exported: the others export the same note.
        note_ids = note_ids or result.note_ids
        done.lines.append(result.summary_lines()[0].removeprefix("warden: "))
        done.warnings += [w for w in result.warnings if w not in done.warnings]
    return done
