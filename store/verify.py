"""``warden verify``: the decision log replayed against the database.

Three checks, every problem named:

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
3. The head (``head``): a hash noted earlier (printed by a previous verify,
   carried by every export's manifest and case bundle) must be the log's head or
   an entry of it, or entries were cut from the end.

Reads only: call it on a connection opened with ``connect(path, readonly=True)``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from store.decision_log import verify_chain

# Entries of this field on a note give the SHA-256 of its text at a status change.
BODY_FIELD = "body_sha256"


@dataclass(frozen=True)
class Problem:
    """One thing that does not match: in the chain, a finding, a note or the head."""

    kind: str                         # chain | finding | note | head
    message: str
    entry: int | None = None          # the log entry concerned
    subject_id: int | None = None     # the finding or note
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


def verify_log(conn: sqlite3.Connection, *, head: str | None = None) -> VerifyReport:
    """Check the chain, replay the log against findings and notes, and (with
    ``head``) check that the log still holds that head. See the module docstring."""
    chain = verify_chain(conn)
    problems: list[Problem] = []
    if not chain.ok:
        problems.append(Problem("chain", f"entry {chain.first_bad_id}: {chain.why}", entry=chain.first_bad_id))
    problems += _replay_findings(conn)
    problems += _replay_notes(conn)
    if head is not None:
        problems += _check_head(conn, head, chain.head)
    return VerifyReport(chain.checked, chain.head, tuple(problems))


def _last_entries(conn: sqlite3.Connection, subject: str) -> dict[tuple[int, str], tuple[str | None, int, int]]:
    """(subject id, field) -> (new value, entry id, action id) of the last entry."""
    last: dict[tuple[int, str], tuple[str | None, int, int]] = {}
    for subject_id, name, value, entry, action in conn.execute(
            "SELECT subject_id, field, new_value, id, action_id FROM decision WHERE subject = ? ORDER BY id",
            (subject,)):
        last[(subject_id, name)] = (value, entry, action if action is not None else entry)
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
        if status != logged[0]:
            problems.append(Problem("note", f"note #{nid} status: the table says {status}, the log says "
                                            f"{logged[0]} (entry {logged[1]})",
                                    entry=logged[1], subject_id=nid, field="status", table=status,
                                    logged=logged[0]))
        if status not in ("ready", "exported"):
            continue   # a draft's text is the reviewer's to edit
        # The text's hash logged with the last status change (notes older than this check have none).
        hashed = bodies.get((nid, logged[2]))
        actual = sha256_text(body)
        if hashed is not None and hashed != actual:
            problems.append(Problem("note", f"note #{nid} text: its SHA-256 in the table is {actual}, the log "
                                            f"says {hashed} (logged when it became {logged[0]}, entry "
                                            f"{logged[1]}): the text was edited since",
                                    entry=logged[1], subject_id=nid, field=BODY_FIELD, table=actual,
                                    logged=hashed))
    for nid in sorted({nid for nid, _name in last} - seen):
        problems.append(Problem("note", f"note #{nid} is in the log but not in the database (deleted)",
                                subject_id=nid))
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
