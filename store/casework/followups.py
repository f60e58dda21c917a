"""Follow-ups to an audit request: a reminder before its due date, an overdue
notice, a final notice. Each is a note like the letter (drafted here, then
edited, frozen and exported by :mod:`store.notes` and :mod:`store.export`, every
status change in the log), rendered from ``followup_<kind>.md.j2``: it cites the
letter's date and reference, the due date and the items still open (from the
case's checklist), and a final notice gives a last deadline
(``final_notice_days`` from today, counted as the letter's). Exporting it is
recorded on the case (:func:`store.casework.state.note_exported`); a final
notice's export moves the case's due date to that deadline.

Drafting warns (it does not refuse) when the kind does not fit the case: a
reminder after the due date, an overdue notice before it, a follow-up when no
item is left open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date

from store.casework.items import ITEMS_BY_ID, case_items
from store.casework.state import FOLLOWUP_TEMPLATES, case_under_way
from store.clock import Clock, day
from store.config import NotesConfig
from store.deadlines import days_left
from store.domain import FOLLOWUP_KINDS, ITEM_STATES, PENDING_ITEM_STATES
from store.errors import DecisionRefused
from store.notes import Note, draft_note, get_note, write_draft
from store.notes.templates import render_template
from store.notes.wording import human_date
from store.text import clean_text


@dataclass(frozen=True)
class FollowupDrafted:
    """The follow-up drafted and what the reviewer must know before sending it."""

    note: Note
    kind: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


def letter_reference(note_id: int) -> str:
    """How a follow-up refers to the letter: ``note #12`` (the export's files are named after it)."""
    return f"note #{note_id}"


def draft_followup(conn: sqlite3.Connection, consumer_id: str, kind: str, *, reviewer: str, clock: Clock,
                   config: NotesConfig, expected_version: int | None = None) -> FollowupDrafted:
    """Draft (or re-draft) the consumer's follow-up of ``kind`` for its case under
    way (DecisionRefused without a letter sent, or after the case ended)."""
    if kind not in FOLLOWUP_KINDS:
        raise DecisionRefused(f"unknown follow-up {kind!r}; valid: {', '.join(FOLLOWUP_KINDS)}")
    case = case_under_way(conn, consumer_id, what=f"a {FOLLOWUP_KINDS[kind].lower()}")
    assert case.letter_note_id is not None and case.due_date is not None and case.letter_sent_at is not None
    today = date.fromisoformat(day(clock()))
    letter = get_note(conn, case.letter_note_id)
    consumer = conn.execute("SELECT id, legal_name, notice_contact FROM consumer WHERE id = ?",
                            (consumer_id,)).fetchone()
    items = case_items(conn, case.id)
    pending = [i for i in items if i.state in PENDING_ITEM_STATES]
    left = days_left(date.fromisoformat(case.due_date), today)
    final = config.deadline.due_from(today, config.final_notice_days)
    sent = date.fromisoformat(case.letter_sent_at[:10])
    label = FOLLOWUP_KINDS[kind]
    context = {
        "kind": kind, "kind_label": label, "today": human_date(today), "today_iso": today.isoformat(),
        "organisation": config.organisation, "sender": config.sender,
        "subject": clean_text(f"{label}: {consumer[1]}, our letter of {human_date(sent)}"),
        "consumer": {"id": consumer[0], "legal_name": consumer[1], "notice_contact": consumer[2]},
        "letter": {"note_id": letter.id, "reference": letter_reference(letter.id), "subject": letter.subject,
                   "date": human_date(sent), "date_iso": sent.isoformat()},
        "due": human_date(case.due_date), "due_iso": case.due_date,
        "days_left": max(0, left), "days_overdue": max(0, -left),
        "final_deadline": human_date(final), "final_deadline_iso": final.isoformat(),
        "final_words": config.deadline.words(config.final_notice_days),
        "respond_by": {"final": human_date(final),
                       "overdue": f"without delay (it was due {human_date(case.due_date)})"}.get(
                           kind, human_date(case.due_date)),
        "open_items": [{"id": i.item, "number": i.number, "title": i.title, "state": i.state,
                        "state_label": ITEM_STATES[i.state],
                        "text": ITEMS_BY_ID[i.item].sentence(organisation=config.organisation,
                                                             legal_name=consumer[1])}
                       for i in pending if i.item in ITEMS_BY_ID],
        "items_total": len(items),
    }
    body = render_template(FOLLOWUP_TEMPLATES[kind], context, template_dir=config.template_dir)
    warnings = []
    if not pending:
        warnings.append(f"every item of case #{case.id} is answered or refused: a {label.lower()} asks for "
                        "nothing; close the case instead?")
    if kind == "reminder" and left < 0:
        warnings.append(f"the reply was due {case.due_date}, {-left} day(s) ago: an overdue notice fits better "
                        "than a reminder")
    if kind == "overdue" and left >= 0:
        warnings.append(f"the reply is not overdue yet: it is due {case.due_date}")
    if kind == "final" and left >= 0:
        warnings.append(f"the reply is not overdue yet (due {case.due_date}): a final notice is early")
    note = write_draft(conn, consumer_id, FOLLOWUP_TEMPLATES[kind], subject=context["subject"], body=body,
                       due_date=final.isoformat() if kind == "final" else case.due_date,
                       evidence={"followup": kind, "case_id": case.id, "letter_note_id": letter.id},
                       finding_ids=list(letter.finding_ids),
                       reason=f"drafted: {label.lower()} of case #{case.id}, letter {letter_reference(letter.id)}",
                       reviewer=reviewer, clock=clock, expected_version=expected_version)
    return FollowupDrafted(note, kind, tuple(warnings))


def redraft(conn: sqlite3.Connection, note: Note, *, reviewer: str, clock: Clock, config: NotesConfig,
            expected_version: int | None = None) -> Note:
    """Re-draft ``note`` from its own template: a follow-up as that follow-up,
    the audit request as the audit request (the note editor's re-draft)."""
    kind = next((k for k, template in FOLLOWUP_TEMPLATES.items() if template == note.template), None)
    if kind is None:
        return draft_note(conn, note.consumer_id, reviewer=reviewer, clock=clock, config=config,
                          expected_version=expected_version)
    return draft_followup(conn, note.consumer_id, kind, reviewer=reviewer, clock=clock, config=config,
                          expected_version=expected_version).note
