"""A consumer's case after the letter: its state, due date and outcome.

A case is a row of ``case_file``, opened when the consumer's audit request is
exported (:func:`note_exported`; due date = export date + the configured
deadline, calendar or business days), or reopened by the rules when usage
breaks the same limits again after an earlier case ended
(:mod:`store.casework.recurrence`). From there::

    reopened -> letter_sent -> response_received -> resolved | escalated | closed
                                                    (escalated -> resolved | closed)

(:data:`store.domain.CASE_TRANSITIONS`). ``open`` is no row: the consumer has
findings that stand and no letter yet (:mod:`store.casework.summary`). Every change
is an entry of the decision log (subject ``case``, one per field: ``state``,
``due_date``, ``letter``, ``followup``, ``outcome``, ``escalated_to``) in the
same transaction as the change; ``case_file.version`` guards concurrent
reviewers as ``finding.version`` does.

Closing a case needs an outcome (:data:`store.domain.CASE_OUTCOMES`) and a
reason: a resolving outcome makes it ``resolved``, the others ``closed``; the
findings its letters asked about become ``resolved``. Escalating records to whom.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any

from store.casework.summary import refresh_case_summary
from store.clock import Clock, day, iso
from store.config import NotesConfig
from store.db import writing
from store.decision_log import conflict_error, read_decisions, record_decision
from store.domain import (
    CASE_OUTCOMES, CASE_STATES, CASE_TRANSITIONS, FINAL_CASE_STATES, FOLLOWUP_KINDS, RESOLVING_OUTCOMES,
)
from store.errors import ConflictError, DecisionRefused
from store.casework.items import add_items
from store.review import change_finding

# The templates a note is drafted from say what its export means for the case.
LETTER_TEMPLATE = "audit_request.md.j2"
FOLLOWUP_TEMPLATES: dict[str, str] = {kind: f"followup_{kind}.md.j2" for kind in FOLLOWUP_KINDS}


@dataclass(frozen=True)
class CaseFile:
    """One case of one consumer (a row of ``case_file``)."""

    id: int
    consumer_id: str
    state: str
    letter_note_id: int | None
    letter_sent_at: str | None
    due_date: str | None
    reopens: int | None
    outcome: str | None
    escalated_to: str | None
    opened_at: str
    updated_at: str
    version: int

    @property
    def state_label(self) -> str:
        return CASE_STATES.get(self.state, self.state)

    @property
    def final(self) -> bool:
        return self.state in FINAL_CASE_STATES


CASE_COLUMNS = ("id, consumer_id, state, letter_note_id, letter_sent_at, due_date, reopens, outcome, escalated_to,"
                " opened_at, updated_at, version")


def get_case(conn: sqlite3.Connection, case_id: int) -> CaseFile:
    """The case with this id (DecisionRefused if there is none)."""
    row = conn.execute(f"SELECT {CASE_COLUMNS} FROM case_file WHERE id = ?", (case_id,)).fetchone()
    if row is None:
        raise DecisionRefused(f"there is no case #{case_id}")
    return CaseFile(*row)


def latest_case(conn: sqlite3.Connection, consumer_id: str) -> CaseFile | None:
    """The consumer's latest case (any state), or None."""
    row = conn.execute(f"SELECT {CASE_COLUMNS} FROM case_file WHERE consumer_id = ? ORDER BY id DESC LIMIT 1",
                       (consumer_id,)).fetchone()
    return None if row is None else CaseFile(*row)


def cases_of(conn: sqlite3.Connection, consumer_id: str) -> list[CaseFile]:
    """Every case of the consumer, oldest first."""
    return [CaseFile(*row) for row in conn.execute(
        f"SELECT {CASE_COLUMNS} FROM case_file WHERE consumer_id = ? ORDER BY id", (consumer_id,))]


def case_under_way(conn: sqlite3.Connection, consumer_id: str, *, what: str) -> CaseFile:
    """The consumer's case once its letter is sent and before it ended, for ``what``
    (a reply, a follow-up, an outcome). DecisionRefused, saying why, otherwise."""
    if conn.execute("SELECT 1 FROM consumer WHERE id = ?", (consumer_id,)).fetchone() is None:
        raise DecisionRefused(f"there is no consumer {consumer_id!r}")
    case = latest_case(conn, consumer_id)
    if case is None or case.letter_sent_at is None:
        raise DecisionRefused(f"no audit request has been sent to {consumer_id} (no letter exported): "
                              f"there is no case for {what}")
    if case.final:
        raise DecisionRefused(f"case #{case.id} of {consumer_id} is {case.state_label} "
                              f"({CASE_OUTCOMES.get(case.outcome or '', case.outcome)}); there is no case under "
                              f"way for {what}")
    return case


# --- changes -------------------------------------------------------------------------


def _log(conn: sqlite3.Connection, case_id: int, field: str, old: Any, new: Any, *, reason: str | None,
         reviewer: str, clock: Clock, action_id: int | None) -> int:
    entry = record_decision(conn, subject="case", subject_id=case_id, field=field, old=old, new=new,
                            reason=reason, reviewer=reviewer, clock=clock, action_id=action_id)
    return entry.action_id if entry.action_id is not None else entry.id


def open_case(conn: sqlite3.Connection, consumer_id: str, state: str, *, reason: str, reviewer: str,
              clock: Clock, reopens: int | None = None, action_id: int | None = None) -> tuple[CaseFile, int]:
    """A new case in ``state`` (letter_sent or reopened), logged; inside the
    caller's transaction. Returns it and the log entry's action id."""
    if state not in CASE_TRANSITIONS[None]:
        raise DecisionRefused(f"a case cannot open as {state}")
    now = iso(clock())
    case_id = int(conn.execute(
        "INSERT INTO case_file (consumer_id, state, reopens, opened_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (consumer_id, state, reopens, now, now)).lastrowid)
    action_id = _log(conn, case_id, "state", None, state, reason=reason, reviewer=reviewer, clock=clock,
                     action_id=action_id)
    if reopens is not None:
        _log(conn, case_id, "reopens", None, reopens, reason=reason, reviewer=reviewer, clock=clock,
             action_id=action_id)
    return get_case(conn, case_id), action_id


def change_case(conn: sqlite3.Connection, case: CaseFile, *, reason: str, reviewer: str, clock: Clock,
                action_id: int | None = None, **fields: Any) -> tuple[CaseFile, int | None]:
    """Set fields of ``case`` (state, due_date, letter_note_id, letter_sent_at,
    outcome, escalated_to), one log entry per changed field but the export time;
    the state change must be allowed. Guarded by the version ``case`` was read
    with: ConflictError if it changed meanwhile. Inside the caller's transaction."""
    changes = {k: v for k, v in fields.items() if getattr(case, k) != v}
    if not changes:
        return case, action_id
    new_state = changes.get("state")
    if new_state is not None and new_state not in CASE_TRANSITIONS.get(case.state, frozenset()):
        raise DecisionRefused(f"case #{case.id} is {case.state_label}; it cannot become "
                              f"{CASE_STATES.get(new_state, new_state)}")
    sets = ", ".join(f"{name} = ?" for name in changes)
    updated = conn.execute(
        f"UPDATE case_file SET {sets}, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?",
        [*changes.values(), iso(clock()), case.id, case.version]).rowcount
    if updated != 1:
        raise case_conflict(conn, case.id, f"case #{case.id} changed since you looked (version {case.version})")
    logged = {"letter_note_id": "letter"}
    for name, value in changes.items():
        if name == "letter_sent_at":
            continue   # the letter's own entry and the export record say when
        action_id = _log(conn, case.id, logged.get(name, name), getattr(case, name), value, reason=reason,
                         reviewer=reviewer, clock=clock, action_id=action_id)
    refresh_case_summary(conn, [case.consumer_id])
    return get_case(conn, case.id), action_id


def case_conflict(conn: sqlite3.Connection, case_id: int, what: str) -> ConflictError:
    """A ConflictError carrying the case as it is now and who changed it last."""
    case = get_case(conn, case_id)
    return conflict_error(conn, "case", case.id, what, case.state_label,
                          {"case_id": case.id, "state": case.state, "version": case.version}, case.updated_at)


# --- an exported note ------------------------------------------------------------------


def note_exported(conn: sqlite3.Connection, note_id: int, export_id: int, fmt: str, *, notes: NotesConfig,
                  reviewer: str, clock: Clock, action_id: int | None = None) -> tuple[int | None, list[str]]:
    """What a note's export means for its consumer's case, inside the export's
    recording transaction: an audit request sends a letter (the case opens, or
    takes the new letter; due date = export date + the deadline; every request
    item tracked), a follow-up is recorded as sent (a final notice moves the due
    date to its last deadline). Returns the action id and warnings."""
    row = conn.execute("SELECT consumer_id, template, due_date FROM note WHERE id = ?", (note_id,)).fetchone()
    consumer_id, template, stated = row[0], row[1], row[2]
    today = date.fromisoformat(day(clock()))
    sent = f"note #{note_id} exported as {fmt} (export #{export_id})"
    if template == LETTER_TEMPLATE:
        due = notes.deadline.due_from(today).isoformat()
        case = latest_case(conn, consumer_id)
        if case is None or case.final:
            case, action_id = open_case(conn, consumer_id, "letter_sent", reason=sent, reviewer=reviewer,
                                        clock=clock, reopens=None, action_id=action_id)
            state = "letter_sent"
        else:
            state = case.state if case.state == "escalated" else "letter_sent"
        case, action_id = change_case(conn, case, reason=f"{sent}; response due {due} ({notes.deadline.words()})",
                                      reviewer=reviewer, clock=clock, action_id=action_id, state=state,
                                      letter_note_id=note_id, letter_sent_at=iso(clock()), due_date=due)
        action_id = add_items(conn, case.id, note_id, reviewer=reviewer, clock=clock, action_id=action_id)
        refresh_case_summary(conn, [consumer_id])
        return action_id, _stated_differs(note_id, stated, due)
    kind = next((k for k, t in FOLLOWUP_TEMPLATES.items() if t == template), None)
    if kind is None:
        return action_id, []
    case = latest_case(conn, consumer_id)
    if case is None or case.final or case.letter_sent_at is None:
        return action_id, [f"note #{note_id} ({FOLLOWUP_KINDS[kind].lower()}) was exported but {consumer_id} has "
                           "no case under way; no case recorded it"]
    action_id = _log(conn, case.id, "followup", None, f"{kind}: note #{note_id}", reason=sent, reviewer=reviewer,
                     clock=clock, action_id=action_id)
    if kind != "final":
        return action_id, []
    due = notes.deadline.due_from(today, notes.final_notice_days).isoformat()
    case, action_id = change_case(conn, case, reason=f"{sent}: the final notice's last deadline", reviewer=reviewer,
                                  clock=clock, action_id=action_id, due_date=due)
    return action_id, _stated_differs(note_id, stated, due)


# --- an export taken back -------------------------------------------------------------

# Case fields an export's recording may change, as the log names them -> their column.
_SENT_FIELDS: dict[str, str] = {"state": "state", "due_date": "due_date", "letter": "letter_note_id"}


def take_back_letters(conn: sqlite3.Connection, export_action: int, *, reason: str, reviewer: str, clock: Clock,
                      action_id: int | None = None) -> tuple[int | None, list[str]]:
    """Undo what an export's recording did to cases (:func:`note_exported`, in the
    log's action ``export_action``) when the export is taken back because its files
    never got out: a case it opened is removed with the items it tracked (the log
    says so: their state goes to nothing); a case that took a re-sent letter or a
    follow-up gets its state, letter and due date back. A case changed since (a
    reply, an item marked, an outcome) is left as it is and named. Inside the
    caller's transaction; returns the action id and what a reviewer must look at."""
    entries = read_decisions(conn, "WHERE action_id = ? AND subject IN ('case', 'item') ORDER BY id DESC",
                             (export_action,))
    items = [d for d in entries if d.subject == "item" and d.field == "state" and d.old_value is None]
    unsure: list[str] = []
    consumers: list[str] = []
    for case_id in sorted({d.subject_id for d in entries if d.subject == "case"}):
        row = conn.execute("SELECT consumer_id, version FROM case_file WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            continue
        ours = [d for d in entries if d.subject == "case" and d.subject_id == case_id]
        added = [d.subject_id for d in items
                 if conn.execute("SELECT 1 FROM case_item WHERE id = ? AND case_id = ?", (d.subject_id, case_id)
                                 ).fetchone()]
        if _changed_since(conn, case_id, max(d.id for d in entries)):
            unsure.append(f"case #{case_id} of {row[0]} changed after export; it is left as it is: check its "
                          "letter, due date and state")
            continue
        now = iso(clock())
        for item_id in added:
            conn.execute("DELETE FROM case_item WHERE id = ?", (item_id,))
            action_id = _logged(conn, "item", item_id, "state", "open", None, reason, reviewer, clock, action_id)
        if any(d.field == "state" and d.old_value is None for d in ours):
            # The letter that opened this case never left: there is no case.
            conn.execute("DELETE FROM case_item WHERE case_id = ?", (case_id,))
            conn.execute("DELETE FROM case_file WHERE id = ?", (case_id,))
            current = next(d.new_value for d in ours if d.field == "state")
            action_id = _logged(conn, "case", case_id, "state", current, None, reason, reviewer, clock, action_id)
        else:
            for d in ours:      # newest first: each field goes back to what it was before the export
                if d.field in _SENT_FIELDS:
                    value: Any = int(d.old_value) if d.field == "letter" and d.old_value else d.old_value
                    conn.execute(f"UPDATE case_file SET {_SENT_FIELDS[d.field]} = ?, updated_at = ?,"
                                 " version = version + 1 WHERE id = ?", (value, now, case_id))
                    action_id = _logged(conn, "case", case_id, d.field, d.new_value, d.old_value, reason, reviewer,
                                        clock, action_id)
                elif d.field == "followup":
                    action_id = _logged(conn, "case", case_id, "followup", d.new_value, None, reason, reviewer,
                                        clock, action_id)
            letter = conn.execute("SELECT letter_note_id FROM case_file WHERE id = ?", (case_id,)).fetchone()[0]
            conn.execute("UPDATE case_file SET letter_sent_at = ? WHERE id = ?", (_sent_at(conn, letter), case_id))
        consumers.append(row[0])
    refresh_case_summary(conn, consumers)
    return action_id, unsure


def _changed_since(conn: sqlite3.Connection, case_id: int, after: int) -> bool:
    """Whether the log holds an entry about the case, its items or its responses after entry ``after``."""
    return conn.execute(
        "SELECT 1 FROM decision WHERE id > ? AND ((subject = 'case' AND subject_id = ?)"
        " OR (subject = 'item' AND subject_id IN (SELECT id FROM case_item WHERE case_id = ?))"
        " OR (subject = 'response' AND subject_id IN (SELECT id FROM response WHERE case_id = ?))) LIMIT 1",
        (after, case_id, case_id, case_id)).fetchone() is not None


def _logged(conn: sqlite3.Connection, subject: str, subject_id: int, field: str, old: Any, new: Any, reason: str,
            reviewer: str, clock: Clock, action_id: int | None) -> int | None:
    return record_decision(conn, subject=subject, subject_id=subject_id, field=field, old=old, new=new,
                           reason=reason, reviewer=reviewer, clock=clock, action_id=action_id).action_id


def _sent_at(conn: sqlite3.Connection, note_id: int | None) -> str | None:
    """When the letter ``note_id`` was exported (the log's entry), or None."""
    if note_id is None:
        return None
    row = conn.execute("SELECT at FROM decision WHERE subject = 'note' AND subject_id = ? AND field = 'status'"
                       " AND new_value = 'exported' ORDER BY id DESC LIMIT 1", (note_id,)).fetchone()
    return None if row is None else row[0]


def _stated_differs(note_id: int, stated: str | None, due: str) -> list[str]:
    if stated is None or stated == due:
        return []
    return [f"note #{note_id} states a response date of {stated}; exported today its case is due {due} "
            "(export date + the deadline): re-draft it so the letter states the date the case tracks"]


# --- outcomes --------------------------------------------------------------------------


def close_case(conn: sqlite3.Connection, consumer_id: str, *, outcome: str, reason: str, reviewer: str,
               clock: Clock, expected_version: int | None = None) -> CaseFile:
    """End the consumer's case with an ``outcome`` and a reason: ``resolved`` for
    an outcome that brings it within its agreement, else ``closed``; the findings
    its letters asked about become resolved. All one action in the log."""
    if outcome not in CASE_OUTCOMES:
        raise DecisionRefused(f"unknown outcome {outcome!r}; valid: {', '.join(CASE_OUTCOMES)}")
    text = (reason or "").strip()
    if not text:
        raise DecisionRefused("closing a case needs a reason")
    with writing(conn):
        case = _expected(conn, case_under_way(conn, consumer_id, what="an outcome"), expected_version)
        if outcome == "data_deleted" and conn.execute(
                "SELECT 1 FROM response r JOIN response_file f ON f.response_id = r.id WHERE r.case_id = ?"
                " LIMIT 1", (case.id,)).fetchone() is None:
            raise DecisionRefused(f"'{CASE_OUTCOMES[outcome]}' needs the evidence of the deletion: add it to case "
                                  f"#{case.id} first (warden response add {consumer_id} FILE...)")
        state = "resolved" if outcome in RESOLVING_OUTCOMES else "closed"
        words = f"{CASE_OUTCOMES[outcome]}: {text}"
        case, action_id = change_case(conn, case, reason=words, reviewer=reviewer, clock=clock, state=state,
                                      outcome=outcome)
        for (fid,) in conn.execute("SELECT id FROM finding WHERE consumer_id = ? AND status = 'audit_requested'"
                                   " ORDER BY id", (consumer_id,)).fetchall():
            written = change_finding(conn, fid, reviewer=reviewer, clock=clock, status="resolved",
                                     reason=f"case #{case.id} {state}: {words}", action_id=action_id)
            action_id = written[0].action_id if written else action_id
        refresh_case_summary(conn, [consumer_id])
        return get_case(conn, case.id)


def escalate_case(conn: sqlite3.Connection, consumer_id: str, *, to: str, reason: str, reviewer: str,
                  clock: Clock, expected_version: int | None = None) -> CaseFile:
    """Escalate the consumer's case to someone (counsel, a manager), with a reason."""
    whom, text = (to or "").strip(), (reason or "").strip()
    if not whom:
        raise DecisionRefused("escalating a case needs to whom (--to)")
    if not text:
        raise DecisionRefused("escalating a case needs a reason")
    with writing(conn):
        case = _expected(conn, case_under_way(conn, consumer_id, what="an escalation"), expected_version)
        case, _ = change_case(conn, case, reason=text, reviewer=reviewer, clock=clock, state="escalated",
                              escalated_to=whom)
        return case


def _expected(conn: sqlite3.Connection, case: CaseFile, expected_version: int | None) -> CaseFile:
    if expected_version is not None and case.version != expected_version:
        raise case_conflict(conn, case.id, f"case #{case.id} changed since you looked (you saw version "
                                           f"{expected_version})")
    return case
