"""A consumer's case as ``warden case show`` prints it: its cases with their
items, responses (each file with its SHA-256) and outcome, its letters and
follow-ups, its findings, and every entry of the decision log about it, oldest
first."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from store.cases import decisions_about
from store.casework.items import CaseItem, case_items
from store.casework.state import FOLLOWUP_TEMPLATES, LETTER_TEMPLATE, CaseFile, cases_of, latest_case
from store.deadlines import due_long
from store.decision_log import Decision
from store.domain import CASE_OUTCOMES, CASE_STATES, FOLLOWUP_KINDS, ITEM_STATES
from store.errors import DecisionRefused
from store.text import printable

NOTE_KINDS: dict[str, str] = {LETTER_TEMPLATE: "audit request",
                              **{t: FOLLOWUP_KINDS[k].lower() for k, t in FOLLOWUP_TEMPLATES.items()}}


@dataclass(frozen=True)
class ResponseFile:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Response:
    id: int
    received_on: str
    note: str | None
    reviewer: str
    recorded_at: str
    files: list[ResponseFile]


@dataclass(frozen=True)
class CaseView:
    """One case with what hangs off it."""

    case: CaseFile
    items: list[CaseItem]
    responses: list[Response]


@dataclass(frozen=True)
class Letter:
    """A note sent or to be sent: the audit request or a follow-up."""

    note_id: int
    kind: str
    status: str
    subject: str
    drafted_at: str
    stated_due: str | None
    exported_at: str | None


@dataclass(frozen=True)
class Timeline:
    """Everything ``warden case show`` prints of one consumer."""

    consumer_id: str
    legal_name: str
    notice_contact: str | None
    case_state: str | None
    case_due: str | None
    cases: list[CaseView]
    letters: list[Letter]
    findings: list[dict[str, Any]]
    log: list[Decision] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self, today: date) -> list[str]:
        """The timeline as text, every value from data made printable."""
        state = CASE_STATES.get(self.case_state or "", "no case")
        due = f", {due_long(self.case_due, today)} ({self.case_due})" if self.case_due else ""
        out = [f"{printable(self.legal_name)} ({printable(self.consumer_id)}): {state}{due}",
               f"notice contact: {printable(self.notice_contact or 'none on record')}"]
        for view in self.cases:
            c = view.case
            out.append("")
            head = f"case #{c.id}: {c.state_label}, opened {c.opened_at}"
            if c.reopens:
                head += f", reopens case #{c.reopens}"
            out.append(head)
            if c.letter_note_id:
                out.append(f"  letter: note #{c.letter_note_id} sent {c.letter_sent_at}, response due {c.due_date}")
            if c.outcome:
                out.append(f"  outcome: {CASE_OUTCOMES.get(c.outcome, c.outcome)}")
            if c.escalated_to:
                out.append(f"  escalated to: {printable(c.escalated_to)}")
            if view.items:
                out.append("  items:")
                for i in view.items:
                    comment = f"  {printable(i.comment)}" if i.comment else ""
                    out.append(f"    {i.number}. {i.item:<14} {ITEM_STATES.get(i.state, i.state):<16}{comment}")
            for r in view.responses:
                note = f": {printable(r.note)}" if r.note else ""
                out.append(f"  response #{r.id} received {r.received_on} (recorded by {printable(r.reviewer)}){note}")
                for f in r.files:
                    out.append(f"    {printable(f.name)}  {f.bytes:,} bytes  sha256 {f.sha256}")
        if self.letters:
            out += ["", "letters:"]
            for n in self.letters:
                sent = f", exported {n.exported_at}" if n.exported_at else ""
                due = f", states due {n.stated_due}" if n.stated_due else ""
                out.append(f"  note #{n.note_id} {n.kind} ({n.status}{sent}{due}): {printable(n.subject)}")
        if self.findings:
            out += ["", "findings:"]
            for f in self.findings:
                out.append(f"  #{f['id']} {f['category']} {f['period']} {f['severity']} {f['status']}")
        if self.log:
            out += ["", "log:"]
            out += [f"  #{d.id} {printable(d.as_line())}" for d in self.log]
        return [line.rstrip() for line in out]


def timeline(conn: sqlite3.Connection, consumer_id: str) -> Timeline:
    """The consumer's timeline (DecisionRefused if there is no such consumer)."""
    row = conn.execute("SELECT id, legal_name, notice_contact, case_state, case_due FROM consumer WHERE id = ?",
                       (consumer_id,)).fetchone()
    if row is None:
        raise DecisionRefused(f"there is no consumer {consumer_id!r}")
    views = [CaseView(c, case_items(conn, c.id), responses_of(conn, c.id)) for c in cases_of(conn, consumer_id)]
    letters = [Letter(r[0], NOTE_KINDS.get(r[1], r[1]), r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(
        "SELECT n.id, n.template, n.status, n.subject, n.created_at, n.due_date,"
        " (SELECT min(d.at) FROM decision d WHERE d.subject = 'note' AND d.subject_id = n.id AND d.field = 'status'"
        "  AND d.new_value = 'exported') FROM note n WHERE n.consumer_id = ? ORDER BY n.id", (consumer_id,))]
    findings = [dict(zip(("id", "category", "period", "severity", "status"), r)) for r in conn.execute(
        "SELECT id, category, period, severity, status FROM finding WHERE consumer_id = ? ORDER BY period_start, id",
        (consumer_id,))]
    return Timeline(row[0], row[1], row[2], row[3], row[4], views, letters, findings,
                    decisions_about(conn, consumer_id, newest_first=False))


def responses_of(conn: sqlite3.Connection, case_id: int) -> list[Response]:
    """The case's responses, oldest first, each with its files."""
    out = []
    for rid, received, note, reviewer, recorded in conn.execute(
            "SELECT id, received_on, note, reviewer, recorded_at FROM response WHERE case_id = ? ORDER BY id",
            (case_id,)).fetchall():
        files = [ResponseFile(*f) for f in conn.execute(
            "SELECT name, sha256, bytes FROM response_file WHERE response_id = ? ORDER BY rowid", (rid,))]
        out.append(Response(rid, received, note, reviewer, recorded, files))
    return out


def case_view(conn: sqlite3.Connection, consumer_id: str) -> CaseView | None:
    """The consumer's latest case with its items and responses (the detail pane's
    checklist), or None when it has had no case."""
    case = latest_case(conn, consumer_id)
    if case is None:
        return None
    return CaseView(case, case_items(conn, case.id), responses_of(conn, case.id))
