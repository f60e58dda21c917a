"""``warden verify``: the decision log replayed against the database.

Four checks, every problem named:

1. The chain (:func:`store.decision_log.verify_chain`): every entry's hash and
   its link to the one before, naming the entry that was edited, removed,
   renumbered or swapped.
2. The state: replaying the log gives, for every finding, the status (and, once
   a reviewer decided it, the severity and category) it must have, and for every
   note its status and, once ready, the SHA-256 of its text. A finding or note
   whose row says otherwise was changed behind the log's back: named with the
   field, the value in the table and the value the log gives. (A candidate's
   severity is the rules' to change; a draft's text the reviewer's: those are
   not logged until a decision or a status change.)
3. The cases (:func:`case_problems`): a case's state, due date, letter,
   outcome and escalation, and each requested item's state and comment, are what
   the log's last entry of each says; every response and each of its files has
   its entries (the day received; each file's SHA-256, name and size), and the
   log names no response or file the tables lost; every file recorded is in the evidence
   store (``evidence_root``), whole: one edited, removed or truncated is named
   with its path.
4. The head (``head``): a hash noted earlier (printed by a previous verify,
   carried by every export's manifest and case bundle) must be the log's head or
   an entry of it, or entries were cut from the end.

Reads only: call it on a connection opened with ``connect(path, readonly=True)``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from store.casework.evidence import check_file
from store.casework.responses import file_reason
from store.decision_log import verify_chain

# Entries of this field on a note give the SHA-256 of its text at a status change.
BODY_FIELD = "body_sha256"


@dataclass(frozen=True)
class Problem:
    """One thing that does not match: in the chain, a finding, a note, a case
    (its items, responses and stored files) or the head."""

    kind: str                         # chain | finding | note | case | item | response | evidence | head
    message: str
    entry: int | None = None          # the log entry concerned
    subject_id: int | None = None     # the finding, note, case, item or response
    field: str | None = None
    table: str | None = None          # the value in the table
    logged: str | None = None         # the value the log gives

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_log` found."""

    checked: int                      # entries whose hash and link were checked
    head: str | None                  # the hash of the last entry checked
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def sha256_text(text: str) -> str:
    """The SHA-256 (hex) of a note's text as logged and exported (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_log(conn: sqlite3.Connection, *, head: str | None = None,
               evidence_root: Path | None = None) -> VerifyReport:
    """Check the chain, replay the log against findings, notes and cases, check
    every stored reply file in ``evidence_root`` (None: the files are not
    checked), and (with ``head``) check that the log still holds that head. See
    the module docstring."""
    chain = verify_chain(conn)
    problems: list[Problem] = []
    if not chain.ok:
        problems.append(Problem("chain", f"entry {chain.first_bad_id}: {chain.why}", entry=chain.first_bad_id))
    problems += _replay_findings(conn)
    problems += _replay_notes(conn)
    problems += case_problems(conn, evidence_root)
    if head is not None:
        problems += _check_head(conn, head, chain.head)
    return VerifyReport(chain.checked, chain.head, tuple(problems))


class Logged(NamedTuple):
    """The last entry of the log about one field of one subject."""

    value: str | None                 # its new value
    entry: int
    action: int | None                # its action (record_decision always gives one)
    reason: str | None


def _last_entries(conn: sqlite3.Connection, subject: str) -> dict[tuple[int, str], Logged]:
    """(subject id, field) -> the last entry about it."""
    last: dict[tuple[int, str], Logged] = {}
    for subject_id, name, value, entry, action, reason in conn.execute(
            "SELECT subject_id, field, new_value, id, action_id, reason FROM decision WHERE subject = ? ORDER BY id",
            (subject,)):
        last[(subject_id, name)] = Logged(value, entry, action, reason)
    return last


def _replay_findings(conn: sqlite3.Connection) -> list[Problem]:
    last = _last_entries(conn, "finding")
    problems: list[Problem] = []
    seen: set[int] = set()
    for fid, status, severity, category in conn.execute(
            "SELECT id, status, severity, category FROM finding ORDER BY id"):
        seen.add(fid)
        logged_status = last.get((fid, "status"))
        expected = logged_status[0] if logged_status else "candidate"
        if status != expected:
            how = f"entry {logged_status[1]}" if logged_status else "no decision recorded: a finding starts as candidate"
            problems.append(Problem(
                "finding", f"finding #{fid} status: the table says {status}, the log says {expected} ({how})",
                entry=logged_status[1] if logged_status else None, subject_id=fid, field="status",
                table=status, logged=expected))
        if status == "candidate":
            continue   # the rules may re-grade a candidate; a decision logs what it decided
        for name, value in (("severity", severity), ("category", category)):
            entry = last.get((fid, name))
            if entry is not None and entry[0] != value:
                problems.append(Problem(
                    "finding", f"finding #{fid} {name}: the table says {value}, the log says {entry[0]} "
                               f"(entry {entry[1]})",
                    entry=entry[1], subject_id=fid, field=name, table=value, logged=entry[0]))
    for fid in sorted({fid for fid, _name in last} - seen):
        problems.append(Problem("finding", f"finding #{fid} is in the log but not in the database (deleted)",
                                subject_id=fid))
    return problems


def _replay_notes(conn: sqlite3.Connection) -> list[Problem]:
    last = _last_entries(conn, "note")
    bodies: dict[tuple[int, int], str | None] = {}
    for subject_id, value, action in conn.execute(
            "SELECT subject_id, new_value, action_id FROM decision WHERE subject = 'note' AND field = ? ORDER BY id",
            (BODY_FIELD,)):
        bodies[(subject_id, action)] = value
    problems: list[Problem] = []
    seen: set[int] = set()
    for nid, status, body in conn.execute("SELECT id, status, body FROM note ORDER BY id"):
        seen.add(nid)
        logged = last.get((nid, "status"))
        if logged is None:
            problems.append(Problem("note", f"note #{nid} has no entry in the log (every note's drafting is "
                                            "logged)", subject_id=nid, field="status", table=status))
            continue
        if status != logged.value:
            problems.append(Problem("note", f"note #{nid} status: the table says {status}, the log says "
                                            f"{logged.value} (entry {logged.entry})",
                                    entry=logged.entry, subject_id=nid, field="status", table=status,
                                    logged=logged.value))
        if status not in ("ready", "exported"):
            continue   # a draft's text is the reviewer's to edit
        # The text's hash logged with the last status change (notes older than this check have none).
        hashed = bodies.get((nid, logged.action))
        actual = sha256_text(body)
        if hashed is not None and hashed != actual:
            problems.append(Problem("note", f"note #{nid} text: its SHA-256 in the table is {actual}, the log "
                                            f"says {hashed} (logged when it became {logged.value}, entry "
                                            f"{logged.entry}): the text was edited since",
                                    entry=logged.entry, subject_id=nid, field=BODY_FIELD, table=actual,
                                    logged=hashed))
    for nid in sorted({nid for nid, _name in last} - seen):
        problems.append(Problem("note", f"note #{nid} is in the log but not in the database (deleted)",
                                subject_id=nid))
    return problems


# --- cases, their items, responses and stored files --------------------------------

# Log fields of a case and the column each stands for.
CASE_FIELDS: dict[str, str] = {"state": "state", "due_date": "due_date", "outcome": "outcome",
                               "escalated_to": "escalated_to", "letter": "letter_note_id", "reopens": "reopens"}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _present(last: dict[tuple[int, str], Logged], subject_id: int) -> bool:
    """Whether the log says the case or item exists (its last state is not nothing)."""
    state = last.get((subject_id, "state"))
    return state is None or state.value is not None


def case_problems(conn: sqlite3.Connection, evidence_root: Path | None) -> list[Problem]:
    """Every mismatch between the log and the cases, their items, responses and
    stored files (``evidence_root``: the store to check the files in; None skips
    the files)."""
    problems = _cases(conn) + _items(conn) + _responses(conn)
    if evidence_root is not None:
        problems += _files(conn, evidence_root)
    return problems


def _cases(conn: sqlite3.Connection) -> list[Problem]:
    last = _last_entries(conn, "case")
    problems: list[Problem] = []
    seen: set[int] = set()
    columns = list(CASE_FIELDS.values())
    for row in conn.execute(f"SELECT id, {', '.join(columns)} FROM case_file ORDER BY id").fetchall():
        case_id, values = row[0], dict(zip(columns, row[1:]))
        seen.add(case_id)
        for name, column in CASE_FIELDS.items():
            logged = last.get((case_id, name))
            table = _text(values[column])
            if logged is None and (name == "state" or table is not None):
                problems.append(Problem("case", f"case #{case_id} {name}: the table says {table}, and the log "
                                                "has no entry for it", subject_id=case_id, field=name,
                                        table=table))
            elif logged is not None and logged.value != table:
                problems.append(Problem("case", f"case #{case_id} {name}: the table says {table}, the log "
                                                f"says {logged.value} (entry {logged.entry})", entry=logged.entry,
                                        subject_id=case_id, field=name, table=table, logged=logged.value))
    # A case whose last state is nothing was taken back with its export: it is gone, as the log says.
    for case_id in sorted({cid for cid, _name in last if _present(last, cid)} - seen):
        problems.append(Problem("case", f"case #{case_id} is in the log but not in the database (deleted)",
                                subject_id=case_id))
    return problems


def _items(conn: sqlite3.Connection) -> list[Problem]:
    last = _last_entries(conn, "item")
    problems: list[Problem] = []
    seen: set[int] = set()
    for item_id, case_id, item, state, comment in conn.execute(
            "SELECT id, case_id, item, state, comment FROM case_item ORDER BY id").fetchall():
        seen.add(item_id)
        logged = last.get((item_id, "state"))
        what = f"item {item} of case #{case_id}"
        if logged is None:
            problems.append(Problem("item", f"{what} is {state} and the log has no entry for it",
                                    subject_id=item_id, field="state", table=state))
            continue
        if logged.value != state:
            problems.append(Problem("item", f"{what} state: the table says {state}, the log says {logged.value} "
                                            f"(entry {logged.entry}): changed without a log entry",
                                    entry=logged.entry, subject_id=item_id, field="state", table=state,
                                    logged=logged.value))
        elif comment is not None and comment != logged.reason:
            problems.append(Problem("item", f"{what} comment: the table says {comment!r}, the log says "
                                            f"{logged.reason!r} (entry {logged.entry})", entry=logged.entry,
                                    subject_id=item_id, field="comment", table=comment, logged=logged.reason))
    for item_id in sorted({iid for iid, _name in last if _present(last, iid)} - seen):
        problems.append(Problem("item", f"item #{item_id} is in the log but not in the database (deleted)",
                                subject_id=item_id))
    return problems


def _responses(conn: sqlite3.Connection) -> list[Problem]:
    received = {sid: (logged.value, logged.entry) for (sid, name), logged in _last_entries(conn, "response").items()
                if name == "received"}
    logged_files: dict[tuple[int, str], tuple[int, str | None]] = {}
    for sid, value, entry, reason in conn.execute(
            "SELECT subject_id, new_value, id, reason FROM decision WHERE subject = 'response' AND field = 'file'"):
        logged_files[(sid, value)] = (entry, reason)
    problems: list[Problem] = []
    days: dict[int, str] = {}
    for response_id, day in conn.execute("SELECT id, received_on FROM response ORDER BY id").fetchall():
        days[response_id] = day
        logged = received.get(response_id)
        if logged is None or logged[0] != day:
            problems.append(Problem(
                "response", f"response #{response_id} received: the table says {day}, the log says "
                            f"{logged[0] if logged else 'nothing'}", entry=logged[1] if logged else None,
                subject_id=response_id, field="received", table=day, logged=logged[0] if logged else None))
    for response_id in sorted(set(received) - set(days)):
        problems.append(Problem("response", f"response #{response_id} is in the log but not in the database "
                                            "(deleted)", entry=received[response_id][1], subject_id=response_id,
                                field="received", logged=received[response_id][0]))
    rows = conn.execute("SELECT response_id, sha256, name, bytes FROM response_file ORDER BY response_id, rowid"
                        ).fetchall()
    for response_id, sha256, name, size in rows:
        logged = logged_files.get((response_id, sha256))
        expected = file_reason(name, size, days.get(response_id, "?"))
        if logged is None:
            problems.append(Problem("response", f"response #{response_id} file {sha256}: in the table, not in "
                                                "the log", subject_id=response_id, field="file", table=sha256))
        elif logged[1] != expected:
            problems.append(Problem("response", f"response #{response_id} file {sha256}: the table says "
                                                f"{expected!r}, the log says {logged[1]!r} (entry {logged[0]})",
                                    entry=logged[0], subject_id=response_id, field="file", table=expected,
                                    logged=logged[1]))
    for response_id, sha256 in sorted(set(logged_files) - {(r[0], r[1]) for r in rows}):
        problems.append(Problem("response", f"response #{response_id} file {sha256}: in the log, not in the "
                                            "database (deleted)", entry=logged_files[(response_id, sha256)][0],
                                subject_id=response_id, field="file", logged=sha256))
    return problems


def _files(conn: sqlite3.Connection, root: Path) -> list[Problem]:
    problems = []
    for sha256, size in conn.execute("SELECT sha256, bytes FROM evidence_file ORDER BY sha256").fetchall():
        why = check_file(root, sha256, size)
        if why is not None:
            problems.append(Problem("evidence", f"evidence file {sha256}: {why}", field="file", logged=sha256))
    return problems


def _check_head(conn: sqlite3.Connection, head: str, current: str | None) -> list[Problem]:
    if head == current:
        return []
    row = conn.execute("SELECT id FROM decision WHERE hash = ?", (head,)).fetchone()
    if row is not None:
        return []     # an ancestor of the current head: the log grew since, nothing was cut
    return [Problem("head", f"head {head} is not in the log (its head is now {current or 'empty'}): entries were "
                            "removed from its end, or the head is from another database", field="head",
                    table=current, logged=head)]
