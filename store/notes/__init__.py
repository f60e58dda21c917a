"""Audit-request notes: drafted from a Jinja2 template, edited by the reviewer.

A note cites the consumer's confirmed findings and states what was observed
("accessed the API more than 780 million times ... in 2022"), which provisions
that breaks, what the consumer must report and by when, and an evidence appendix
that ties every figure to the sync runs and the SHA-256 of the responses it was
summed from.

Templates: the built-in ``store/templates/audit_request.md.j2`` (and the partials
it includes) can be overridden by a file of the same name in
``NotesConfig.template_dir``. Every ``{{ value }}`` is Markdown-escaped on output
(a hostile legal name cannot inject links, markup or tables); a template that
means to emit Markdown from a value says so with ``|raw``. Undefined variables
are errors (``StrictUndefined``). The template variables are listed in the
docstring of :func:`store.notes.context.note_context`.

This package: the note's lifecycle here (draft, edit, ready, exported, each
status change in the decision log); :mod:`.wording` (figures and periods in
words), :mod:`.markdown` (escaping), :mod:`.evidence` (figures with their
provenance), :mod:`.context` (the template variables), :mod:`.templates` (the
Jinja2 environment).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from store.cases import of_consumer_in_status
from store.clock import Clock, day, iso, system_clock
from store.config import NotesConfig
from store.db import transaction
from store.decision_log import record_decision
from store.domain import NOTE_STATUSES
from store.errors import ConflictError, DecisionRefused, StoreError
from store.notes.context import note_context
from store.notes.evidence import figure_changes
from store.notes.templates import render_template
from store.verify import BODY_FIELD, sha256_text

TEMPLATE = "audit_request.md.j2"

# Which note status may follow which. 'exported' is final: a follow-up is a new note.
NOTE_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"ready", "exported"}),
    "ready": frozenset({"draft", "exported"}),
    "exported": frozenset(),
}

# --- the note --------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One audit-request note (a row of ``note`` and the findings it cites)."""

    id: int
    consumer_id: str
    template: str
    subject: str
    body: str
    status: str
    due_date: str | None
    created_at: str
    updated_at: str
    version: int
    finding_ids: tuple[int, ...]

    @property
    def cites_confirmed(self) -> bool:
        """False when the note was drafted with no confirmed finding to cite."""
        return bool(self.finding_ids)

    @property
    def warning(self) -> str | None:
        """What a reviewer must know before sending, or None."""
        if not self.finding_ids:
            return "This note cites no confirmed finding: confirm the violations first, then re-draft."
        return None


_NOTE_COLUMNS = "id, consumer_id, template, subject, body, status, due_date, created_at, updated_at, version"


def _note_from_row(conn: sqlite3.Connection, row: sqlite3.Row | tuple) -> Note:
    ids = tuple(r[0] for r in conn.execute(
        "SELECT finding_id FROM note_finding WHERE note_id = ? ORDER BY finding_id", (row[0],)))
    return Note(*tuple(row), finding_ids=ids)  # type: ignore[misc]


def get_note(conn: sqlite3.Connection, note_id: int) -> Note:
    """The note with this id (StoreError if there is none)."""
    row = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    return _note_from_row(conn, row)


def note_for(conn: sqlite3.Connection, consumer_id: str, *, template: str | None = None) -> Note | None:
    """The consumer's latest note (any status; of ``template`` if given: the audit
    request, a follow-up), or None if none was drafted."""
    row = conn.execute(
        f"SELECT {_NOTE_COLUMNS} FROM note WHERE consumer_id = ? AND ifnull(?, template) = template"
        " ORDER BY id DESC LIMIT 1", (consumer_id, template),
    ).fetchone()
    return None if row is None else _note_from_row(conn, row)


def notes_for(conn: sqlite3.Connection, *, consumer_id: str | None = None,
              status: str | None = None) -> list[Note]:
    """Notes to export, oldest first.

    With ``consumer_id`` and no ``status``: that consumer's latest note. With a
    ``status``: every note in it (of that consumer, if given). With neither: every
    note that is ready or exported (drafts are only exported when asked for).
    """
    if status is not None and status not in NOTE_STATUSES:
        raise StoreError(f"unknown note status {status!r} (one of {', '.join(NOTE_STATUSES)})")
    if consumer_id is not None and status is None:
        note = note_for(conn, consumer_id)
        return [] if note is None else [note]
    clauses, params = of_consumer_in_status(consumer_id, status)
    if status is None:
        clauses.append("status IN ('ready', 'exported')")
    rows = conn.execute(
        f"SELECT {_NOTE_COLUMNS} FROM note WHERE {' AND '.join(clauses)} ORDER BY id", params
    ).fetchall()
    return [_note_from_row(conn, row) for row in rows]


# --- drafting and editing --------------------------------------------------------


def draft_note(conn: sqlite3.Connection, consumer_id: str, *, reviewer: str, clock: Clock,
               config: NotesConfig, template_dir: Path | str | None = None,
               expected_version: int | None = None) -> Note:
    """Draft (or re-draft) the consumer's audit-request note from the template.

    Cites every confirmed finding of the consumer. With none confirmed the note is
    still drafted, says so prominently at the top, and ``Note.cites_confirmed`` is
    False. If the consumer has an open note (draft or ready), it is re-drafted in
    place: its body is replaced (the reviewer's edits are lost; callers ask first
    via :func:`note_for`), a ready note goes back to draft. An exported note is never
    touched: a new note is created. Rendering happens before any write, so a
    TemplateError leaves the existing note as it was. Same data and clock give a
    byte-identical body.
    """
    now = clock()
    today = date.fromisoformat(day(now))
    finding_ids = [r[0] for r in conn.execute(
        "SELECT id FROM finding WHERE consumer_id = ? AND status = 'confirmed' ORDER BY id", (consumer_id,))]
    context, evidence = note_context(conn, consumer_id, finding_ids, today=today, config=config)
    body = render_template(TEMPLATE, context, template_dir=template_dir or config.template_dir)
    cited = ", ".join(f"#{i}" for i in finding_ids) or "no confirmed finding"
    return write_draft(conn, consumer_id, TEMPLATE, subject=context["subject"], body=body,
                       due_date=context["deadline_iso"], evidence=evidence, finding_ids=finding_ids,
                       reason=f"drafted, citing {cited}", reviewer=reviewer, clock=clock,
                       expected_version=expected_version)


def write_draft(conn: sqlite3.Connection, consumer_id: str, template: str, *, subject: str, body: str,
                due_date: str | None, evidence: dict[str, Any], finding_ids: list[int], reason: str,
                reviewer: str, clock: Clock, expected_version: int | None = None) -> Note:
    """Store a rendered note of ``template`` as the consumer's draft: its open note
    of the same template (draft or ready) re-drafted in place (back to draft), else
    a new note; logged ("drafted" or "re-drafted", then ``reason``). The one write
    of a drafted note: audit requests (:func:`draft_note`) and follow-ups
    (:mod:`store.casework.followups`)."""
    stamp = iso(clock())
    evidence_json = json.dumps(evidence, sort_keys=True, separators=(",", ":"))
    with transaction(conn):
        retired = conn.execute("SELECT retired_at FROM consumer WHERE id = ?", (consumer_id,)).fetchone()
        if retired is not None and retired[0] is not None:
            raise DecisionRefused(f"{consumer_id} is retired (since {retired[0]}): the roster gave its app to "
                                  "another consumer; draft the note for that consumer instead")
        current = conn.execute(
            "SELECT id, status, version FROM note WHERE consumer_id = ? AND template = ? "
            "AND status IN ('draft', 'ready') ORDER BY id DESC LIMIT 1", (consumer_id, template)).fetchone()
        if current is not None and expected_version is not None and current[2] != expected_version:
            raise _conflict(conn, current[0], f"note #{current[0]} changed (version {current[2]}, "
                                              f"expected {expected_version}); reload it")
        if current is None:
            note_id = conn.execute(
                "INSERT INTO note (consumer_id, template, subject, body, status, due_date, evidence, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
                (consumer_id, template, subject, body, due_date, evidence_json, stamp, stamp)).lastrowid
            _log_status(conn, note_id, None, "draft", None, body, reason=reason, reviewer=reviewer, clock=clock)
        else:
            note_id, old_status = current[0], current[1]
            old_body = conn.execute("SELECT body FROM note WHERE id = ?", (note_id,)).fetchone()[0]
            conn.execute(
                "UPDATE note SET subject = ?, body = ?, status = 'draft', due_date = ?, "
                "evidence = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                (subject, body, due_date, evidence_json, stamp, note_id))
            conn.execute("DELETE FROM note_finding WHERE note_id = ?", (note_id,))
            _log_status(conn, note_id, old_status, "draft", old_body, body, reason=f"re-{reason}",
                        reviewer=reviewer, clock=clock)
        conn.executemany("INSERT INTO note_finding (note_id, finding_id) VALUES (?, ?)",
                         ((note_id, fid) for fid in finding_ids))
    return get_note(conn, note_id)


def _conflict(conn: sqlite3.Connection, note_id: int, message: str, *, title: str | None = None) -> ConflictError:
    """A ConflictError carrying the note as it is now (``.current``)."""
    row = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM note WHERE id = ?", (note_id,)).fetchone()
    current: dict[str, object] = {} if row is None else {k: row[k] for k in row.keys()}
    return ConflictError(message, current=current, title=title)


def save_body(conn: sqlite3.Connection, note_id: int, body: str, *, expected_version: int | None = None,
              clock: Clock = system_clock) -> int:
    """Save the reviewer's edit of a note's body; return the note's new version.

    The autosave target: one short write transaction, committed before return, so
    a killed editor loses nothing that was saved. With ``expected_version``, a note
    changed meanwhile (another reviewer, a re-draft) raises ConflictError whose
    ``.current`` holds the note's columns as they are now. Only a draft can be
    edited: a ready note is frozen (:func:`reopen_for_editing` takes it back to
    draft, in the log, first); an exported one is final.
    """
    with transaction(conn, point="note-save"):
        row = conn.execute("SELECT status, version FROM note WHERE id = ?", (note_id,)).fetchone()
        if row is None:
            raise StoreError(f"no note #{note_id}")
        status, version = row
        if status == "exported":
            raise _conflict(conn, note_id, f"note #{note_id} was exported; draft a new note to change it")
        if status == "ready":
            raise _conflict(conn, note_id, f"note #{note_id} is ready, so its text is frozen; take it back to "
                                           "draft (logged) to edit it", title="Note is ready")
        if expected_version is not None and version != expected_version:
            raise _conflict(conn, note_id, f"note #{note_id} changed (version {version}, "
                                           f"expected {expected_version}); reload it")
        conn.execute("UPDATE note SET body = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                     (body, iso(clock()), note_id))
    return version + 1


def set_note_status(conn: sqlite3.Connection, note_id: int, status: str, *, reviewer: str, clock: Clock,
                    reason: str | None = None, expected_version: int | None = None) -> Note:
    """Move a note draft <-> ready (or to exported), logged in the decision log
    with the SHA-256 of its text."""
    if status not in NOTE_STATUSES:
        raise StoreError(f"unknown note status {status!r} (one of {', '.join(NOTE_STATUSES)})")
    with transaction(conn):
        _set_status(conn, note_id, status, reviewer=reviewer, clock=clock, reason=reason,
                    expected_version=expected_version)
    return get_note(conn, note_id)


def mark_ready(conn: sqlite3.Connection, note_id: int, *, reviewer: str, clock: Clock,
               expected_version: int | None = None) -> tuple[Note, list[str]]:
    """Mark a draft ready to export: its text frozen, its SHA-256 in the log.

    Refused (DecisionRefused) while it cites a finding that is no longer
    confirmed: the letter would assert what a reviewer has since withdrawn.
    Returns the note and warnings a reviewer must read (no confirmed finding
    cited; figures that changed since it was drafted, which, old and new)."""
    with transaction(conn):
        note = get_note(conn, note_id)
        stale = stale_citations(conn, [note])
        if stale:
            raise DecisionRefused("; ".join(stale) + "; re-draft it first, nothing changed")
        _set_status(conn, note_id, "ready", reviewer=reviewer, clock=clock, reason="ready to export",
                    expected_version=expected_version)
        note = get_note(conn, note_id)
        warnings = [note.warning] if note.warning else []
        warnings += [f"note #{note.id}: {change}" for change in figure_changes(conn, note.consumer_id,
                                                                               note_evidence(conn, note.id))]
    return note, warnings


def reopen_for_editing(conn: sqlite3.Connection, note_id: int, *, reviewer: str, clock: Clock,
                       expected_version: int | None = None) -> Note:
    """Take a ready note back to draft so it can be edited (logged: its frozen
    text stops being the one to send). A draft is returned as it is."""
    with transaction(conn):
        _set_status(conn, note_id, "draft", reviewer=reviewer, clock=clock, reason="back to draft to edit it",
                    expected_version=expected_version)
    return get_note(conn, note_id)


def stale_citations(conn: sqlite3.Connection, notes: list[Note]) -> list[str]:
    """Notes citing a finding a reviewer has since dismissed or reopened: a letter must not."""
    problems = []
    for note in notes:
        if not note.finding_ids:
            continue
        marks = ",".join("?" * len(note.finding_ids))
        for fid, status in conn.execute(
                f"SELECT id, status FROM finding WHERE id IN ({marks}) "
                "AND status NOT IN ('confirmed', 'audit_requested', 'resolved') ORDER BY id", note.finding_ids):
            problems.append(f"note #{note.id} cites finding #{fid}, which is now {status}")
    return problems


def mark_exported(conn: sqlite3.Connection, note_id: int, *, reviewer: str, clock: Clock, reason: str,
                  action_id: int | None = None) -> int | None:
    """Mark the note exported, logged in the decision log, inside the caller's
    transaction (an export records its files in the same one); the log entry's
    action id, or None if the note was already exported."""
    return _set_status(conn, note_id, "exported", reviewer=reviewer, clock=clock, reason=reason,
                       action_id=action_id)


def revert_export(conn: sqlite3.Connection, note_id: int, status: str, *, reviewer: str, clock: Clock,
                  reason: str, action_id: int | None = None) -> int:
    """Take back a note's "exported" whose export never completed (its files could
    not be written or were lost), to the ``status`` it had: the one way back from
    exported, logged like any change. Inside the caller's transaction; returns the
    log entry's action id."""
    row = conn.execute("SELECT status, body FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None or row[0] != "exported":
        raise DecisionRefused(f"note #{note_id} is not exported; nothing to take back")
    conn.execute("UPDATE note SET status = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                 (status, iso(clock()), note_id))
    return _log_status(conn, note_id, "exported", status, row[1], row[1], reason=reason, reviewer=reviewer,
                       clock=clock, action_id=action_id)


def _set_status(conn: sqlite3.Connection, note_id: int, status: str, *, reviewer: str, clock: Clock,
                reason: str | None, expected_version: int | None = None, action_id: int | None = None) -> int | None:
    """The status change itself: its action id, or None if the note already had
    that status; the caller holds the transaction."""
    row = conn.execute("SELECT status, version, body FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    old, version, body = row
    if expected_version is not None and version != expected_version:
        raise _conflict(conn, note_id, f"note #{note_id} changed (version {version}, "
                                       f"expected {expected_version}); reload it")
    if old == status:
        return None
    if status not in NOTE_TRANSITIONS[old]:
        raise DecisionRefused(f"note #{note_id} is {old}; it cannot become {status}")
    conn.execute("UPDATE note SET status = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                 (status, iso(clock()), note_id))
    return _log_status(conn, note_id, old, status, body, body, reason=reason, reviewer=reviewer, clock=clock,
                       action_id=action_id)


def _log_status(conn: sqlite3.Connection, note_id: int, old: str | None, new: str, old_body: str | None,
                body: str, *, reason: str | None, reviewer: str, clock: Clock, action_id: int | None = None) -> int:
    """A note's status change in the log, with the SHA-256 of its text in the same
    action (``store.verify`` checks a ready or exported note's text against it);
    returns the action id."""
    entry = record_decision(conn, subject="note", subject_id=note_id, field="status", old=old, new=new,
                            reason=reason, reviewer=reviewer, clock=clock, action_id=action_id)
    record_decision(conn, subject="note", subject_id=note_id, field=BODY_FIELD,
                    old=sha256_text(old_body) if old_body is not None else None, new=sha256_text(body),
                    reason=reason, reviewer=reviewer, clock=clock, action_id=entry.action_id)
    return entry.action_id if entry.action_id is not None else entry.id


def note_evidence(conn: sqlite3.Connection, note_id: int) -> dict[str, Any]:
    """The evidence snapshot a note was drafted from (see :func:`collect_evidence`)."""
    row = conn.execute("SELECT evidence FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    return json.loads(row[0] or "{}")
