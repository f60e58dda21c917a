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

from store.errors import ExportError, WardenError
from store.export import export_notes
from tui.modals.export import ExportChoice
from tui.session import Session


@dataclass
class Exported:
    lines: list[str] = field(default_factory=list)                       # one summary per format written
    failed: list[tuple[str, WardenError]] = field(default_factory=list)  # (format, why)
    warnings: list[str] = field(default_factory=list)                    # every format's, once each
    written: list[str] = field(default_factory=list)                     # the formats written
    files: int = 0                                                       # files written, manifests aside
    out_dir: str = ""

    def summary(self) -> str:
        """One line for the notification: ``md, html: 2 files and their manifests in DIR``
        (at 80x24 a line per format covered half the screen)."""
        return (f"{', '.join(self.written)}: {self.files} file{'s' if self.files != 1 else ''} and "
                f"{'their manifests' if len(self.written) > 1 else 'its manifest'} in {self.out_dir}")

    def refusal(self) -> ExportError:
        """Every format that failed, in one error: ``Export refused: md, html: <why>``
        (formats failing for the same reason share a line)."""
        why: dict[str, list[str]] = {}
        for fmt, error in self.failed:
            why.setdefault(str(error), []).append(fmt)
        if len(why) == 1:
            ((reason, formats),) = why.items()
            return ExportError(reason, title=f"Export refused: {', '.join(formats)}")
        return ExportError("\n".join(f"{', '.join(formats)}: {reason}" for reason, formats in why.items()),
                           title=f"Export refused: {', '.join(fmt for fmt, _error in self.failed)}")


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
        done.written.append(fmt)
        done.files += len(result.files) - 1
        done.out_dir = str(result.out_dir)
        done.warnings += [w for w in result.warnings if w not in done.warnings]
    return done
