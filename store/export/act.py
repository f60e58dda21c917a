"""An export is one act: what leaves the building is what the database records.

1. Render every file in memory (a template error leaves nothing behind), with the
   decision log's head in the manifest and each case bundle.
2. Record the export as ``staging`` and write the files into a staging folder
   beside their names (:mod:`store.export.files`).
3. In one transaction: re-check that every note and every finding it cites is as
   it was when rendered (a finding dismissed meanwhile, a note re-drafted: nothing
   is written, and the message says what changed); record the files, mark the
   notes exported and their findings audit_requested, and the export ``pending``.
4. Move the files in, the set whole or not at all (``--force`` included); then
   record it ``completed``.

A crash leaves a staging export (nothing recorded: removed, ``abandoned``) or a
pending one (recorded, files staged): the next export finishes it, or, when its
files are gone, takes the notes and findings back in the log (``rolled_back``).
No temporary file outlives a run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import store
from store import folders
from store.casework.state import note_exported, take_back_letters
from store.clock import Clock, iso
from store.config import NotesConfig
from store.db import connect, transaction
from store.decision_log import last_change, log_head, read_decisions
from store.domain import EXPORT_FORMATS
from store.errors import ExportError, StoreError, WardenError
from store.export import files as disk
from store.export.formats import json_bytes, manifest_name, render, sha256_bytes
from store.notes import Note, get_note, mark_exported, notes_for, revert_export, stale_citations
from store.notes.evidence import figure_changes
from store.queue_summary import refresh_summary
from store.review import set_finding_status
from store.verify import sha256_text

Step = Callable[[str], None]


@dataclass(frozen=True)
class ExportedFile:
    """One file an export wrote."""

    name: str                 # file name inside the export folder
    sha256: str
    bytes: int
    note_id: int | None


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and changed."""

    export_id: int
    fmt: str
    out_dir: Path
    files: tuple[ExportedFile, ...]          # the manifest last
    note_ids: tuple[int, ...]
    notes_exported: tuple[int, ...]          # notes that became 'exported'
    findings_requested: tuple[int, ...]      # findings that became 'audit_requested'
    warnings: tuple[str, ...] = field(default_factory=tuple)
    log_head: dict[str, Any] | None = None   # the decision log's head the manifest carries

    @property
    def manifest(self) -> ExportedFile:
        """The manifest file (always written last)."""
        return self.files[-1]

    def summary_lines(self) -> list[str]:
        """One line per fact, for the command line and the TUI's notification."""
        what = f"the findings of {len(self.note_ids)} note(s)" if self.fmt == "csv" else f"{len(self.note_ids)} note(s)"
        lines = [f"warden: exported {what} as {self.fmt}: "
                 f"{len(self.files) - 1} file(s) and {self.manifest.name} in {self.out_dir}"]
        lines += [f"  {f.name}  sha256 {f.sha256}  {f.bytes:,} bytes" for f in self.files]
        if self.log_head:
            lines.append(f"warden: decision log head {self.log_head['head']} ({self.log_head['entries']:,} entries): "
                         "check it with warden verify --head")
        if self.notes_exported:
            lines.append(f"warden: marked exported: note(s) {', '.join(f'#{i}' for i in self.notes_exported)}")
        if self.findings_requested:
            lines.append("warden: marked audit_requested: finding(s) "
                         + ", ".join(f"#{i}" for i in self.findings_requested))
        lines += [f"warden: warning: {w}" for w in self.warnings]
        return lines


def export_notes(conn: sqlite3.Connection | str | os.PathLike[str], *, fmt: str, out_dir: Path | str,
                 consumer_id: str | None = None, status: str | None = None, force: bool = False, reviewer: str,
                 clock: Clock, config: NotesConfig | None = None, note_ids: Sequence[int] | None = None,
                 on_step: Step | None = None) -> ExportResult:
    """Export notes (md, html, eml, json) or their findings (csv) into ``out_dir``,
    as one act (see the module docstring).

    ``conn`` is an open connection or the database's path (opened and closed here,
    e.g. from a worker thread). Which notes: ``note_ids`` if given (so several
    formats of one export cover the same notes, although the first marks them
    exported); else :func:`store.notes.notes_for`. Writes one file per note
    (``note-<id>-<consumer slug>.<fmt>``) or ``findings.csv``, then
    ``manifest-<fmt>.json``. Raises ExportError, having written and recorded
    nothing, when nothing matches, a target exists and ``force`` is False, a cited
    finding is no longer confirmed, or anything changed between rendering and
    recording. ``on_step`` is called at each step ("staged", "recorded", "moved
    <name>", "cleaned", "completed"): tests interrupt an export there.
    """
    if not isinstance(conn, sqlite3.Connection):
        own = connect(conn)
        try:
            return export_notes(own, fmt=fmt, out_dir=out_dir, consumer_id=consumer_id, status=status, force=force,
                                reviewer=reviewer, clock=clock, config=config, note_ids=note_ids, on_step=on_step)
        finally:
            own.close()
    config = config or NotesConfig()
    step = on_step or (lambda name: None)
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    out = disk.resolve_out(out_dir)
    recovered = recover_exports(conn, reviewer=reviewer, clock=clock, out=out)
    notes = _select(conn, note_ids, consumer_id, status)
    stale = stale_citations(conn, [n for n in notes if n.status != "exported"])
    if stale:
        raise ExportError("; ".join(stale) + ". Re-draft the note(s) before exporting; nothing written",
                          title="Note out of date")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; nothing written")
    seen = _state(conn, notes)
    head = log_head(conn)
    made_at = clock()
    rendered, warnings = render(conn, notes, fmt, made_at=made_at, reviewer=reviewer, config=config, log_head=head)
    warnings = [f"note #{n.id} ({n.consumer_id}) cites no confirmed finding" for n in notes if not n.cites_confirmed] \
        + _figure_warnings(conn, notes, fmt) + warnings
    names = [name for name, _, _ in rendered] + [manifest_name(fmt)]
    _check_targets(out, names, force)

    created = folders.create(out)
    staging = disk.Staging(out)
    export_id: int | None = None
    recorded = moved = False
    try:
        export_id = _begin(conn, out, fmt, reviewer, made_at, staging.path)
        listed = [ExportedFile(name, sha256_bytes(data), len(data), note_id) for name, data, note_id in rendered]
        manifest = json_bytes({
            "tool": {"name": "warden", "version": store.__version__}, "export_id": export_id,
            "made_at": iso(made_at), "made_by": reviewer, "format": fmt, "decision_log": head,
            "selection": {"consumer_id": consumer_id, "status": status},
            "notes": [n.id for n in notes],
            "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes, "note_id": f.note_id} for f in listed],
        })
        listed.append(ExportedFile(manifest_name(fmt), sha256_bytes(manifest), len(manifest), None))
        for name, data, _ in [*rendered, (manifest_name(fmt), manifest, None)]:
            staging.write(name, data)
        staging.sync()
        step("staged")
        exported, requested = _record(conn, export_id, notes, seen, fmt, listed, head, reviewer=reviewer, clock=clock,
                                      config=config, warnings=warnings)
        recorded = True
        step("recorded")
        disk.move_in(staging.path, out, names, step)
        moved = True
        staging.remove()          # before "completed": a crash in between is finished from the files in place
        step("cleaned")
        _finish(conn, export_id, "completed", None, clock)
        step("completed")
    except BaseException as exc:
        staging.remove()
        if moved:
            # The files are in place and recorded: only "completed" is missing, which the
            # next export's recovery writes once it finds them as recorded.
            if isinstance(exc, Exception):
                raise ExportError(f"the export's files are in {out} and recorded, but its completion could not "
                                  f"be recorded ({exc}); the next warden export completes it") from None
            raise
        if export_id is not None:
            _fail(conn, export_id, recorded, exc, reviewer=reviewer, clock=clock)
        disk.remove_empty(created)
        if isinstance(exc, OSError):
            undone = "the export was taken back in the log" if recorded else "nothing was recorded"
            raise ExportError(f"cannot write the export to {out}: {exc.strerror or exc}"
                              f"{f' ({exc.filename})' if exc.filename else ''}; nothing was replaced and "
                              f"{undone}") from None
        raise
    staging.remove()
    return ExportResult(export_id=export_id, fmt=fmt, out_dir=out, files=tuple(listed),
                        note_ids=tuple(n.id for n in notes), notes_exported=tuple(exported),
                        findings_requested=tuple(requested), warnings=tuple(recovered + warnings), log_head=head)


def _select(conn: sqlite3.Connection, note_ids: Sequence[int] | None, consumer_id: str | None,
            status: str | None) -> list[Note]:
    try:
        notes = [get_note(conn, i) for i in note_ids] if note_ids is not None else \
            notes_for(conn, consumer_id=consumer_id, status=status)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    if not notes:
        which = " ".join(filter(None, [f"of consumer {consumer_id!r}" if consumer_id else "",
                                       f"in status {status!r}" if status else "ready or exported"]))
        raise ExportError(f"no note {which} to export; nothing written")
    return notes


def _figure_warnings(conn: sqlite3.Connection, notes: list[Note], fmt: str) -> list[str]:
    """For a letter: each figure whose value changed since its note was drafted."""
    if fmt == "csv":
        return []
    warnings = []
    for note in notes:
        drafted = json.loads(conn.execute("SELECT evidence FROM note WHERE id = ?", (note.id,)).fetchone()[0] or "{}")
        warnings += [f"note #{note.id}: {change.text}" for change in figure_changes(conn, note.consumer_id, drafted)]
    return warnings


def _check_targets(out: Path, names: list[str], force: bool) -> None:
    """Refuse before anything is written: a folder in the way, or (without force) any existing file."""
    folders = [name for name in names if (out / name).is_dir() and not (out / name).is_symlink()]
    if folders:
        raise ExportError(f"{len(folders)} name(s) of this export are folders in {out}: {', '.join(folders[:5])}; "
                          "nothing written (move them away)", title="Export refused")
    existing = [name for name in names if os.path.lexists(out / name)]
    if existing and not force:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise ExportError(f"would overwrite {len(existing)} file(s) in {out}: {shown}; "
                          f"nothing written (use --force to replace them)", title="Export refused")


def _state(conn: sqlite3.Connection, notes: list[Note]) -> dict[str, dict[int, tuple[Any, ...]]]:
    """What the export is rendered from: each note's version, status and text hash,
    each cited finding's version and status."""
    cited = sorted({fid for n in notes for fid in n.finding_ids})
    findings = {}
    for at in range(0, len(cited), 500):
        chunk = cited[at:at + 500]
        findings.update({r[0]: (r[1], r[2]) for r in conn.execute(
            f"SELECT id, version, status FROM finding WHERE id IN ({','.join('?' * len(chunk))})", chunk)})
    return {"notes": {n.id: (n.version, n.status, sha256_text(n.body)) for n in notes}, "findings": findings}


def _changes(conn: sqlite3.Connection, seen: dict[str, dict[int, tuple[Any, ...]]]) -> list[str]:
    """What changed since ``seen`` was read (inside the recording transaction)."""
    problems = []
    for note_id, (version, status, _body) in seen["notes"].items():
        row = conn.execute("SELECT version, status FROM note WHERE id = ?", (note_id,)).fetchone()
        if row is None or row[0] != version:
            now = "deleted" if row is None else f"{row[1]}, version {row[0]}"
            problems.append(f"note #{note_id} changed while the export was written (it was {status}, version "
                            f"{version}; it is now {now})")
    for fid, (version, status) in seen["findings"].items():
        row = conn.execute("SELECT version, status FROM finding WHERE id = ?", (fid,)).fetchone()
        if row is None or row[0] != version:
            who, _last = last_change(conn, "finding", fid)
            problems.append(f"finding #{fid} was {status} when the letter was written; it is now "
                            f"{row[1] if row else 'deleted'}{who}")
    return problems


def _begin(conn: sqlite3.Connection, out: Path, fmt: str, reviewer: str, made_at: datetime, staging: Path) -> int:
    with transaction(conn):
        return int(conn.execute(
            "INSERT INTO export (at, reviewer, format, out_dir, tool_version, status, staging) "
            "VALUES (?, ?, ?, ?, ?, 'staging', ?)",
            (iso(made_at), reviewer, fmt, str(out), store.__version__, str(staging))).lastrowid)


def _record(conn: sqlite3.Connection, export_id: int, notes: list[Note], seen: dict[str, dict[int, tuple[Any, ...]]],
            fmt: str, listed: list[ExportedFile], head: dict[str, Any] | None, *, reviewer: str,
            clock: Clock, config: NotesConfig, warnings: list[str]) -> tuple[list[int], list[int]]:
    """The recording transaction: re-check, then record files, notes, findings and
    what each note's export means for its consumer's case (a letter sent, a
    follow-up sent), all one action in the log; the cases' warnings go to ``warnings``."""
    exported: list[int] = []
    requested: list[int] = []
    try:
        with transaction(conn):
            problems = _changes(conn, seen)
            if problems:
                raise ExportError("; ".join(problems) + ". Nothing was written; look again and export anew",
                                  title="Changed during the export")
            conn.executemany(
                "INSERT INTO export_file (export_id, path, sha256, bytes, note_id) VALUES (?, ?, ?, ?, ?)",
                [(export_id, f.name, f.sha256, f.bytes, f.note_id) for f in listed])
            action: int | None = None
            if fmt != "csv":
                for note in notes:
                    marked = mark_exported(conn, note.id, reviewer=reviewer, clock=clock, action_id=action,
                                           reason=f"exported as {fmt} (export #{export_id})")
                    if marked is not None:
                        exported.append(note.id)
                        action, said = note_exported(conn, note.id, export_id, fmt, notes=config, reviewer=reviewer,
                                                     clock=clock, action_id=marked)
                        warnings += said
                    for fid in _confirmed(conn, note):
                        written = set_finding_status(conn, fid, "audit_requested", reviewer=reviewer, clock=clock,
                                                     reason=f"note #{note.id} exported as {fmt} (export #{export_id})",
                                                     action_id=action)
                        action = written[0].action_id if written else action
                        requested.append(fid)
                refresh_summary(conn, sorted({n.consumer_id for n in notes}))
            conn.execute("UPDATE export SET status = 'pending', manifest_sha256 = ?, log_head = ?, action_id = ?"
                         " WHERE id = ?", (listed[-1].sha256, head["head"] if head else None, action, export_id))
    except WardenError:
        raise
    except sqlite3.Error as exc:
        raise ExportError(f"the export could not be recorded: {exc}; nothing was written") from None
    return exported, requested


def _confirmed(conn: sqlite3.Connection, note: Note) -> list[int]:
    if not note.finding_ids:
        return []
    return [r[0] for r in conn.execute(
        f"SELECT id FROM finding WHERE status = 'confirmed' AND id IN ({','.join('?' * len(note.finding_ids))})"
        " ORDER BY id", note.finding_ids)]


def _finish(conn: sqlite3.Connection, export_id: int, status: str, why: str | None, clock: Clock) -> None:
    with transaction(conn):
        conn.execute("UPDATE export SET status = ?, staging = NULL, finished_at = ?, note = ? WHERE id = ?",
                     (status, iso(clock()), why, export_id))


def _fail(conn: sqlite3.Connection, export_id: int, recorded: bool, exc: BaseException, *, reviewer: str,
          clock: Clock) -> None:
    """An export that failed in this process: abandoned, or (already recorded,
    files put back by move_in) taken back in the log. A database that cannot be
    written now leaves it to the next export's recovery."""
    why = str(exc) or type(exc).__name__
    try:
        if recorded:
            _take_back(conn, export_id, f"export #{export_id} could not be written ({why}); taken back",
                       reviewer=reviewer, clock=clock)
        else:
            _finish(conn, export_id, "abandoned", why, clock)
    except (WardenError, sqlite3.Error):
        pass


def _take_back(conn: sqlite3.Connection, export_id: int, why: str, *, reviewer: str, clock: Clock) -> list[str]:
    """Revert what recording the export changed, as new log entries (the cases'
    letters and follow-ups included), and mark it rolled back; what a reviewer must
    check by hand. The queue's summary follows: set_finding_status refreshes its
    finding's consumer, take_back_letters the consumers of the cases it changed."""
    with transaction(conn):
        row = conn.execute("SELECT action_id FROM export WHERE id = ?", (export_id,)).fetchone()
        action: int | None = None
        for d in read_decisions(conn, "WHERE action_id = ? ORDER BY id", (row[0],)) if row and row[0] else []:
            if d.field != "status":
                continue
            if d.subject == "note":
                action = revert_export(conn, d.subject_id, d.old_value or "ready", reviewer=reviewer, clock=clock,
                                       reason=why, action_id=action)
            elif d.new_value == "audit_requested":
                written = set_finding_status(conn, d.subject_id, d.old_value or "confirmed", reviewer=reviewer,
                                             clock=clock, reason=why, action_id=action)
                action = written[0].action_id if written else action
        action, unsure = take_back_letters(conn, row[0], reason=why, reviewer=reviewer, clock=clock,
                                           action_id=action) if row and row[0] else (action, [])
        conn.execute("UPDATE export SET status = 'rolled_back', staging = NULL, finished_at = ?, note = ? "
                     "WHERE id = ?", (iso(clock()), "; ".join([why, *unsure]), export_id))
    return unsure


def recover_exports(conn: sqlite3.Connection, *, reviewer: str, clock: Clock, out: Path | None = None) -> list[str]:
    """Finish or undo exports a crash left unfinished (their process is gone), and
    remove what a killed export left in ``out``; say what was done."""
    said: list[str] = []
    keep: set[Path] = set()
    for export_id, status, staging_text, out_text in conn.execute(
            "SELECT id, status, staging, out_dir FROM export WHERE status IN ('staging', 'pending') ORDER BY id"
    ).fetchall():
        staging = Path(staging_text) if staging_text else None
        folder = Path(out_text)
        lock = disk.claim(staging) if staging is not None and staging.is_dir() else None
        if staging is not None and staging.is_dir() and lock is None:
            keep.add(staging)       # its process is still writing it
            continue
        try:
            said.append(_recover(conn, export_id, status, staging, folder, reviewer=reviewer, clock=clock))
        finally:
            if lock is not None:
                os.close(lock)
        if staging is not None and not disk.remove(staging):
            said.append(_not_removed(staging))
    if out is not None:
        for stray in disk.strays(out, keep):
            said.append(f"removed {stray.name} from {out}: left by an export that was interrupted"
                        if disk.remove(stray) else _not_removed(stray))
    return said


def _not_removed(path: Path) -> str:
    return (f"{path.name} in {path.parent}, left by an export that was interrupted, could not be removed: "
            "a file in it cannot be deleted; remove it by hand")


def _recover(conn: sqlite3.Connection, export_id: int, status: str, staging: Path | None, out: Path, *,
             reviewer: str, clock: Clock) -> str:
    if status == "staging":
        _finish(conn, export_id, "abandoned", "interrupted before it was recorded; nothing was written", clock)
        return f"export #{export_id} to {out} was interrupted before it was recorded: its staged files were removed"
    expected = dict(conn.execute("SELECT path, sha256 FROM export_file WHERE export_id = ?", (export_id,)).fetchall())
    if disk.finish(staging if staging is not None and staging.is_dir() else None, out, expected):
        _finish(conn, export_id, "completed", "completed by a later export after an interruption", clock)
        return f"export #{export_id} to {out} was interrupted after it was recorded: its files are now in place"
    disk.undo(staging, out, expected)
    unsure = _take_back(conn, export_id, f"export #{export_id} was interrupted and its files are gone; taken back",
                        reviewer=reviewer, clock=clock)
    return (f"export #{export_id} to {out} was interrupted and its files could not be recovered: its notes, "
            "findings and cases were taken back in the decision log" + "".join(f"; {u}" for u in unsure))
