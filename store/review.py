"""Review decisions: the append-only, hash-chained log and the actions that write it.

Every change to a finding (and every note status change, written by
:mod:`store.notes`) is one row of ``decision``: when, who, what, old -> new, why.
Each row carries ``prev_hash``, the hash of the row before it, and ``hash``,
SHA-256 over the canonical JSON of its own fields plus ``prev_hash``; the first
row's ``prev_hash`` is 64 zeros. :func:`verify_chain` recomputes the chain and
names the first entry that does not fit.

Several reviewers (several processes) share one database: every action is one
short ``BEGIN IMMEDIATE`` transaction, so the previous hash is read under the
write lock and two writers cannot fork the chain. ``finding.version`` is bumped
on every change; an action given ``expected_version`` refuses with
:class:`~store.errors.ConflictError` (carrying the current state) when the
finding changed since the reviewer looked at it.

The queue summary (:mod:`store.queue_summary`) is refreshed in the same
transaction as every change.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import contextmanager
from datetime import date
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Literal, Sequence

from store.clock import Clock, day, iso
from store.db import transaction
from store.domain import (
    CATEGORIES,
    DISMISS_REASONS,
    FINDING_TRANSITIONS,
    MANUAL_CATEGORIES,
    OPEN_STATUSES,
    SEVERITIES,
)
from store.errors import ConflictError, DecisionRefused
from store.queue_summary import refresh_summary

GENESIS_HASH = "0" * 64
# The fields a decision's hash covers, in the canonical JSON (keys sorted).
HASHED_FIELDS: tuple[str, ...] = (
    "at", "reviewer", "subject", "subject_id", "field", "old_value", "new_value",
    "reason", "undoes", "action_id", "prev_hash",
)


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log."""

    id: int
    at: str
    reviewer: str
    subject: str            # 'finding' | 'note'
    subject_id: int
    field: str              # status, severity, category, ...
    old_value: str | None
    new_value: str | None
    reason: str | None
    undoes: int | None
    action_id: int | None
    prev_hash: str
    hash: str

    def as_line(self) -> str:
        """``2026-11-27T20:14:29Z alice finding #12 status: candidate -> confirmed (reason)``."""
        reason = f" ({self.reason})" if self.reason else ""
        undo = f" [undoes #{self.undoes}]" if self.undoes else ""
        return (f"{self.at} {self.reviewer} {self.subject} #{self.subject_id} {self.field}: "
                f"{self.old_value or '-'} -> {self.new_value or '-'}{reason}{undo}")


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: ``ok`` or the first entry that does not fit and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    why: str | None = None
    # Hash of the last entry checked: entries removed from the END of the log leave
    # an intact chain, so compare this with a head noted earlier (a report, an export).
    head: str | None = None


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's hashed fields (incl. ``prev_hash``)."""
    canonical = json.dumps({k: entry.get(k) for k in HASHED_FIELDS}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def record_decision(conn: sqlite3.Connection, *, subject: str, subject_id: int, field: str,
                    old: Any, new: Any, reason: str | None, reviewer: str, clock: Clock,
                    undoes: int | None = None, action_id: int | None = None) -> Decision:
    """Append one entry to the decision log and return it.

    The caller holds the write transaction (``with transaction(conn):``) so the
    entry lands atomically with the change it records; without one, this opens
    its own. ``action_id`` groups entries of one action (default: a new action
    starting with this entry). Values are stored as text.
    """
    with _writing(conn):
        last = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()
        # Ids are assigned here (contiguous) so a removed entry shows as a gap.
        new_id = (last[0] + 1) if last else 1
        entry: dict[str, Any] = {
            "at": iso(clock()),
            "reviewer": reviewer,
            "subject": subject,
            "subject_id": int(subject_id),
            "field": field,
            "old_value": _text(old),
            "new_value": _text(new),
            "reason": reason,
            "undoes": undoes,
            "action_id": action_id if action_id is not None else new_id,
            "prev_hash": last[1] if last else GENESIS_HASH,
        }
        entry["hash"] = entry_hash(entry)
        conn.execute(
            "INSERT INTO decision (id, at, reviewer, subject, subject_id, field, old_value, new_value,"
            " reason, undoes, action_id, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (new_id, entry["at"], reviewer, subject, entry["subject_id"], field, entry["old_value"],
             entry["new_value"], reason, undoes, entry["action_id"], entry["prev_hash"], entry["hash"]),
        )
        return Decision(id=new_id, **entry)


@contextmanager
def _writing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Join the caller's transaction, or run in a short BEGIN IMMEDIATE of our own.

    In our own, a database that stays locked past the busy timeout or cannot be
    written (read-only file or disk) is a StoreError the reviewer can read
    (:func:`store.db.transaction` makes it one).
    """
    if conn.in_transaction:
        yield conn
        return
    with transaction(conn):
        yield conn


def _decision(row: sqlite3.Row | Sequence[Any]) -> Decision:
    return Decision(*row)


_DECISION_COLS = ("id, at, reviewer, subject, subject_id, field, old_value, new_value, reason, undoes,"
                  " action_id, prev_hash, hash")


# ---------------------------------------------------------------------------
# Verification


def verify_chain(conn: sqlite3.Connection) -> ChainReport:
    """Recompute every entry's hash and link; report the first entry that does not fit.

    Catches an edited entry (its fields no longer hash to its ``hash``), a
    rewritten hash (the next entry still carries the original), a removed entry
    (a gap in the ids, or a broken link) and a reordered one. Works even when
    someone dropped the append-only triggers to make the edit.
    """
    checked = 0
    prev_hash = GENESIS_HASH
    prev_id = 0
    rows = conn.execute(f"SELECT {_DECISION_COLS} FROM decision ORDER BY id")
    for row in rows:
        d = _decision(row)
        entry = {k: getattr(d, k) for k in HASHED_FIELDS}
        own_ok = entry_hash(entry) == d.hash
        if d.id != prev_id + 1:
            missing = f"#{prev_id + 1}" if d.id == prev_id + 2 else f"#{prev_id + 1}..#{d.id - 1}"
            return ChainReport(False, checked, d.id, f"entry {missing} before it is missing (removed from the log)",
                               head=prev_hash if checked else None)
        if d.prev_hash != prev_hash:
            if own_ok and prev_id:
                # This entry is intact; the one before no longer carries the hash it
                # was chained with: its stored hash was rewritten.
                return ChainReport(False, checked, prev_id,
                                   f"entry #{prev_id}'s stored hash was rewritten; entry #{d.id} "
                                   "still carries the original")
            return ChainReport(False, checked, d.id,
                               "its prev_hash does not match the entry before it (edited or reordered)")
        if not own_ok:
            return ChainReport(False, checked, d.id,
                               "its recorded fields no longer match its hash: the entry was edited "
                               f"after it was written (now: {d.as_line()})")
        checked += 1
        prev_hash, prev_id = d.hash, d.id
    return ChainReport(True, checked, head=prev_hash if checked else None)


# ---------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class Finding:
    """A finding as the review screen shows it."""

    id: int
    consumer_id: str
    category: str
    period: str
    period_start: str
    period_end: str
    severity: str
    status: str
    rule_id: str | None
    metric: str | None
    actual: int | None
    limit_value: int | None
    ratio: float | None
    figures: dict[str, Any]
    evidence: str | None
    detected_at: str
    updated_at: str
    version: int

    @property
    def category_label(self) -> str:
        """The category as the reviewer reads it ("Volume cap exceeded")."""
        return CATEGORIES.get(self.category, self.category)

    @property
    def manual(self) -> bool:
        """Opened by hand (no rule detected it)."""
        return self.rule_id is None


_FINDING_COLS = ("id, consumer_id, category, period, period_start, period_end, severity, status, rule_id,"
                 " metric, actual, limit_value, ratio, figures, evidence, detected_at, updated_at, version")


def _finding(row: Sequence[Any]) -> Finding:
    values = list(row)
    try:
        values[13] = json.loads(values[13] or "{}")
    except ValueError:
        values[13] = {"unreadable": values[13]}
    return Finding(*values)


def get_finding(conn: sqlite3.Connection, finding_id: int) -> Finding:
    """The finding with this id (raises DecisionRefused if there is none)."""
    row = conn.execute(f"SELECT {_FINDING_COLS} FROM finding WHERE id = ?", (finding_id,)).fetchone()
    if row is None:
        raise DecisionRefused(f"there is no finding #{finding_id}")
    return _finding(row)


def _current_state(conn: sqlite3.Connection, f: Finding) -> dict[str, object]:
    """What a finding is now and who made it so, for a ConflictError."""
    last = conn.execute(
        "SELECT reviewer, reason, at FROM decision WHERE subject = 'finding' AND subject_id = ?"
        " ORDER BY id DESC LIMIT 1", (f.id,)
    ).fetchone()
    return {
        "finding_id": f.id, "status": f.status, "severity": f.severity, "category": f.category,
        "version": f.version, "reviewer": last[0] if last else None,
        "reason": last[1] if last else None, "at": last[2] if last else f.updated_at,
    }


def _conflict(conn: sqlite3.Connection, f: Finding, what: str) -> ConflictError:
    state = _current_state(conn, f)
    who = f" by {state['reviewer']}" if state["reviewer"] else ""
    why = f" ({state['reason']})" if state["reason"] else ""
    return ConflictError(
        f"finding #{f.id} {what}: it is now {f.status}{who}{why}, version {f.version}", current=state
    )


def change_finding(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, clock: Clock,
                   reason: str | None, status: str | None = None, severity: str | None = None,
                   category: str | None = None, expected_version: int | None = None,
                   action_id: int | None = None) -> list[Decision]:
    """Change a finding's status / severity / category, one log entry per changed field.

    The one place findings change: the named actions below call it. Checks
    ``expected_version`` (ConflictError when the finding changed meanwhile) and
    the status transitions of :data:`store.domain.FINDING_TRANSITIONS`
    (DecisionRefused otherwise). Runs in the caller's transaction or its own.
    """
    if severity is not None and severity not in SEVERITIES:
        raise DecisionRefused(f"unknown severity {severity!r}; valid: {', '.join(SEVERITIES)}")
    if category is not None and category not in CATEGORIES:
        raise DecisionRefused(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
    with _writing(conn):
        f = get_finding(conn, finding_id)
        if expected_version is not None and f.version != expected_version:
            raise _conflict(conn, f, f"changed since you opened it (you saw version {expected_version})")
        if status is not None and status != f.status and status not in FINDING_TRANSITIONS.get(f.status, ()):
            if expected_version is None:
                # Without a version the reviewer still saw an older state, most likely.
                raise _conflict(conn, f, f"cannot become {status}")
            raise DecisionRefused(f"finding #{f.id} is {f.status}; it cannot become {status}")
        changes = [(name, old, new) for name, old, new in (
            ("status", f.status, status), ("severity", f.severity, severity), ("category", f.category, category),
        ) if new is not None and new != old]
        if not changes:
            return []
        decisions = _apply(conn, f, changes, reviewer=reviewer, clock=clock, reason=reason, action_id=action_id)
        refresh_summary(conn, [f.consumer_id])
        return decisions


def _apply(conn: sqlite3.Connection, f: Finding, changes: Sequence[tuple[str, Any, Any]], *, reviewer: str,
           clock: Clock, reason: str | None, action_id: int | None,
           undoes: Sequence[int | None] | None = None) -> list[Decision]:
    """Write the changes to the finding (version + 1) and one log entry per change."""
    sets = ", ".join(f"{name} = ?" for name, _old, _new in changes)
    updated = conn.execute(
        f"UPDATE finding SET {sets}, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?",
        [new for _n, _o, new in changes] + [iso(clock()), f.id, f.version],
    ).rowcount
    if updated != 1:   # cannot happen under BEGIN IMMEDIATE; guards a caller's deferred transaction
        raise _conflict(conn, get_finding(conn, f.id), "changed while being decided")
    decisions: list[Decision] = []
    for i, (name, old, new) in enumerate(changes):
        d = record_decision(conn, subject="finding", subject_id=f.id, field=name, old=old, new=new,
                            reason=reason, reviewer=reviewer, clock=clock,
                            undoes=undoes[i] if undoes else None, action_id=action_id)
        action_id = d.action_id
        decisions.append(d)
    return decisions


def confirm_violation(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, severity: str,
                      reason: str, clock: Clock, category: str | None = None,
                      expected_version: int | None = None) -> list[Decision]:
    """Confirm a finding as a violation with a severity (and optionally a corrected category)."""
    if not (reason or "").strip():
        raise DecisionRefused("a confirmation needs a reason")
    return change_finding(conn, finding_id, reviewer=reviewer, clock=clock, reason=reason.strip(),
                          status="confirmed", severity=severity, category=category,
                          expected_version=expected_version)


def dismiss_reason(reason_code: str, reason_text: str | None) -> str:
    """The logged reason of a dismissal: ``duplicate`` or ``other: <text>`` (text required for other)."""
    if reason_code not in DISMISS_REASONS:
        raise DecisionRefused(f"unknown dismissal reason {reason_code!r}; valid: {', '.join(DISMISS_REASONS)}")
    text = (reason_text or "").strip()
    if reason_code == "other" and not text:
        raise DecisionRefused("dismissing for an 'other' reason needs the reason written out")
    return f"{reason_code}: {text}" if text else reason_code


def dismiss(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, reason_code: str,
            reason_text: str | None = None, clock: Clock,
            expected_version: int | None = None) -> list[Decision]:
    """Dismiss a finding with a reason code from :data:`store.domain.DISMISS_REASONS`."""
    return change_finding(conn, finding_id, reviewer=reviewer, clock=clock,
                          reason=dismiss_reason(reason_code, reason_text), status="dismissed",
                          expected_version=expected_version)


def mark_needs_info(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, clock: Clock,
                    reason: str | None = None, expected_version: int | None = None) -> list[Decision]:
    """Park a finding until more information arrives (it stays in the open queue)."""
    return change_finding(conn, finding_id, reviewer=reviewer, clock=clock,
                          reason=(reason or "").strip() or None, status="needs_info",
                          expected_version=expected_version)


def set_finding_status(conn: sqlite3.Connection, finding_id: int, status: str, *, reviewer: str,
                       clock: Clock, reason: str | None = None,
                       expected_version: int | None = None) -> list[Decision]:
    """Any other allowed status change (audit_requested when a note is exported, resolved, reopened)."""
    return change_finding(conn, finding_id, reviewer=reviewer, clock=clock, reason=reason, status=status,
                          expected_version=expected_version)


def open_manual_finding(conn: sqlite3.Connection, consumer_id: str, *, category: str, severity: str,
                        evidence: str, reviewer: str, clock: Clock, period_start: str | None = None,
                        period_end: str | None = None) -> Finding:
    """Open a finding by hand for a category no rule detects, with the reviewer's evidence.

    The finding starts as ``candidate``; its creation is logged (status: none -> candidate).
    ``period_start``/``period_end`` are UTC days (default: today).
    """
    if category not in MANUAL_CATEGORIES:
        raise DecisionRefused(f"category {category!r} cannot be opened by hand; valid: {', '.join(MANUAL_CATEGORIES)}")
    if severity not in SEVERITIES:
        raise DecisionRefused(f"unknown severity {severity!r}; valid: {', '.join(SEVERITIES)}")
    if not (evidence or "").strip():
        raise DecisionRefused("a finding opened by hand needs evidence text")
    start = period_start or day(clock())
    end = period_end or start
    for value in (start, end):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise DecisionRefused(f"period day {value!r} is not a date like 2022-03-01") from None
    if end < start:
        raise DecisionRefused(f"the period ends ({end}) before it starts ({start})")
    with _writing(conn):
        if conn.execute("SELECT 1 FROM consumer WHERE id = ?", (consumer_id,)).fetchone() is None:
            raise DecisionRefused(f"there is no consumer {consumer_id!r}")
        now = iso(clock())
        cur = conn.execute(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status,"
            " evidence, detected_at, updated_at) VALUES (?,?,?,?,?,?, 'candidate', ?,?,?)",
            (consumer_id, category, start if start == end else f"{start}..{end}", start, end, severity,
             evidence.strip(), now, now),
        )
        finding_id = int(cur.lastrowid)
        record_decision(conn, subject="finding", subject_id=finding_id, field="status", old=None,
                        # The evidence goes into the log too, so the chain covers it.
                        new="candidate", reason=f"opened by hand: {CATEGORIES[category]}; evidence: {evidence.strip()}",
                        reviewer=reviewer, clock=clock)
        refresh_summary(conn, [consumer_id])
        return get_finding(conn, finding_id)


BulkAction = Literal["confirm", "dismiss", "needs_info"]
_BULK_STATUS: dict[str, str] = {"confirm": "confirmed", "dismiss": "dismissed", "needs_info": "needs_info"}


def bulk_decide(conn: sqlite3.Connection, *, action: BulkAction, reviewer: str, clock: Clock,
                finding_ids: Iterable[int] = (), consumer_ids: Iterable[str] = (),
                reason: str | None = None, reason_code: str | None = None, reason_text: str | None = None,
                severity: str | None = None, category: str | None = None,
                expected_versions: dict[int, int] | None = None) -> list[Decision]:
    """Decide many findings at once, in one transaction and as one undoable action.

    ``finding_ids`` are decided as named; ``consumer_ids`` stand for their open
    findings (candidate / needs info). Any conflict rolls the whole batch back.
    ``dismiss`` takes ``reason_code`` (+ ``reason_text``); ``confirm`` takes
    ``severity`` and ``reason``.
    """
    if action not in _BULK_STATUS:
        raise DecisionRefused(f"unknown bulk action {action!r}; valid: {', '.join(_BULK_STATUS)}")
    if action == "dismiss":
        reason = dismiss_reason(reason_code or "", reason_text)
    elif action == "confirm":
        if severity is None:
            raise DecisionRefused("a bulk confirmation needs a severity")
        if not (reason or "").strip():
            raise DecisionRefused("a confirmation needs a reason")
    status = _BULK_STATUS[action]
    versions = expected_versions or {}
    decisions: list[Decision] = []
    with _writing(conn):
        ids = list(dict.fromkeys(int(i) for i in finding_ids))
        consumers = list(dict.fromkeys(consumer_ids))
        for cid in consumers:
            ids.extend(r[0] for r in conn.execute(
                f"SELECT id FROM finding WHERE consumer_id = ? AND status IN ({','.join('?' * len(OPEN_STATUSES))})"
                " ORDER BY id", (cid, *OPEN_STATUSES)) if r[0] not in ids)
        action_id: int | None = None
        for fid in ids:
            written = change_finding(conn, fid, reviewer=reviewer, clock=clock, reason=reason, status=status,
                                     severity=severity if action == "confirm" else None,
                                     category=category if action == "confirm" else None,
                                     expected_version=versions.get(fid), action_id=action_id)
            if written:
                action_id = written[0].action_id
            decisions.extend(written)
    return decisions


def undo_last(conn: sqlite3.Connection, *, reviewer: str, clock: Clock) -> Decision | None:
    """Undo this reviewer's last action on findings that is not an undo and not undone yet.

    The undo is new log entries restoring the old values (``undoes`` = the entry
    undone); nothing is removed. Undoing again reaches the action before. A
    finding opened by hand is undone by dismissing it. If someone else changed the
    finding since, raises ConflictError and changes nothing. Returns the first
    entry written, or ``None`` when there is nothing to undo.
    """
    with _writing(conn):
        # Newest action first along decision_by_reviewer; stops at the first one
        # that still has an entry not undone (decision_by_undoes answers that).
        row = conn.execute(
            "SELECT d.action_id FROM decision d WHERE d.reviewer = ? AND d.subject = 'finding'"
            " AND d.undoes IS NULL AND NOT EXISTS (SELECT 1 FROM decision u WHERE u.undoes = d.id)"
            " ORDER BY d.action_id DESC LIMIT 1", (reviewer,)
        ).fetchone()
        if row is None:
            return None
        exported = conn.execute(
            "SELECT 1 FROM decision WHERE action_id = ? AND field = 'status' AND new_value = 'audit_requested'"
            " LIMIT 1", (row[0],)).fetchone()
        if exported:
            # The letter is written and its files hashed in the manifest: taking the
            # findings back to 'confirmed' would make the log deny what was sent.
            raise DecisionRefused("your last action exported a note (its findings are audit_requested); "
                                  "an export cannot be undone, nothing was changed")
        entries = [_decision(r) for r in conn.execute(
            f"SELECT {_DECISION_COLS} FROM decision d WHERE action_id = ? AND reviewer = ? AND subject = 'finding'"
            " AND undoes IS NULL AND NOT EXISTS (SELECT 1 FROM decision u WHERE u.undoes = d.id) ORDER BY id",
            (row[0], reviewer))]
        by_finding: dict[int, list[Decision]] = {}
        for d in entries:
            by_finding.setdefault(d.subject_id, []).append(d)
        written: list[Decision] = []
        action_id: int | None = None
        for fid, ds in by_finding.items():
            f = get_finding(conn, fid)
            changes: list[tuple[str, Any, Any]] = []
            for d in ds:
                now = getattr(f, d.field)
                if now != d.new_value:
                    raise _conflict(conn, f, f"changed after your decision ({d.field} {d.new_value} -> {now})")
                # A finding opened by hand has no earlier status: undoing its opening dismisses it.
                changes.append((d.field, now, d.old_value if d.old_value is not None else "dismissed"))
            out = _apply(conn, f, changes, reviewer=reviewer, clock=clock, reason=f"undo of #{ds[0].action_id}",
                         action_id=action_id, undoes=[d.id for d in ds])
            action_id = out[0].action_id
            written.extend(out)
            refresh_summary(conn, [f.consumer_id])
        return written[0] if written else None


# ---------------------------------------------------------------------------
# The detail pane


@dataclass(frozen=True)
class Limit:
    """One cap of a tier: at most ``max_value`` of ``metric`` per ``period``."""

    metric: str
    period: str          # day | month | year
    max_value: int


@dataclass(frozen=True)
class Tier:
    """A tier (agreement level) with its limits and the clause reference per category."""

    id: str
    name: str
    agreement_version: str | None
    allowed_endpoints: list[str] | None
    limits: list[Limit]
    clauses: dict[str, str]

    def limit(self, metric: str, period: str) -> int | None:
        """The cap on ``metric`` per ``period``, if the tier has one."""
        for lim in self.limits:
            if lim.metric == metric and lim.period == period:
                return lim.max_value
        return None


@dataclass(frozen=True)
class AppTotals:
    """One app of a consumer with its stored usage totals."""

    source: str
    app_id: str
    name: str | None
    declared_use_case: str | None
    calls: int | None        # None = no figures stored (missing is not zero)
    records: int | None
    first_day: str | None
    last_day: str | None


@dataclass(frozen=True)
class NotePreview:
    """The first lines of a consumer's latest note, for the detail pane."""

    id: int
    status: str
    subject: str
    due_date: str | None
    updated_at: str
    first_lines: list[str]


@dataclass(frozen=True)
class ConsumerDetail:
    """Everything the detail pane shows for one consumer."""

    id: str
    legal_name: str
    notice_contact: str | None
    tier_id: str | None
    agreement_version: str | None
    declared_use_case: str | None
    government_end_users: str | None
    origin: str
    worst_ratio: float
    open_findings: int
    review_state: str
    tier: Tier | None
    apps: list[AppTotals]
    findings: list[Finding]
    decisions: list[Decision]          # about its findings and notes, newest first
    note: NotePreview | None = None
    totals: dict[str, int] = field(default_factory=dict)   # metric -> sum over apps


def get_tier(conn: sqlite3.Connection, tier_id: str) -> Tier | None:
    """The tier with its limits and clauses, or None."""
    row = conn.execute("SELECT id, name, agreement_version, allowed_endpoints FROM tier WHERE id = ?",
                       (tier_id,)).fetchone()
    if row is None:
        return None
    limits = [Limit(*r) for r in conn.execute(
        "SELECT metric, period, max_value FROM tier_limit WHERE tier_id = ?"
        " ORDER BY metric, CASE period WHEN 'day' THEN 0 WHEN 'month' THEN 1 ELSE 2 END", (tier_id,))]
    clauses = dict(conn.execute("SELECT category, clause FROM tier_clause WHERE tier_id = ? ORDER BY category",
                                (tier_id,)).fetchall())
    try:
        endpoints = json.loads(row[3]) if row[3] else None
    except ValueError:
        endpoints = None
    return Tier(row[0], row[1], row[2], endpoints, limits, clauses)


def consumer_detail(conn: sqlite3.Connection, consumer_id: str, *, start: str | None = None,
                    end: str | None = None, note_lines: int = 6,
                    decision_limit: int = 200) -> ConsumerDetail | None:
    """The consumer, its tier and limits, apps with usage totals (over ``start``..``end``
    when given), findings, decision history and the latest note's first lines.
    ``None`` if there is no such consumer."""
    c = conn.execute(
        "SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,"
        " government_end_users, origin, worst_ratio, open_findings, review_state FROM consumer WHERE id = ?",
        (consumer_id,)).fetchone()
    if c is None:
        return None
    lo, hi = start or "0000-00-00", end or "9999-99-99"
    apps: list[AppTotals] = []
    totals: dict[str, int] = {}
    for a in conn.execute("SELECT source, app_id, name, declared_use_case FROM app WHERE consumer_id = ?"
                          " ORDER BY source, app_id", (consumer_id,)).fetchall():
        sums: dict[str, int] = {}
        first = last = None
        # One range scan of the usage primary key (source, app_id, day, metric) per app.
        for metric, total, d0, d1 in conn.execute(
                "SELECT metric, sum(value), min(day), max(day) FROM usage WHERE source = ? AND app_id = ?"
                " AND day BETWEEN ? AND ? GROUP BY metric", (a[0], a[1], lo, hi)):
            sums[metric] = int(total)
            totals[metric] = totals.get(metric, 0) + int(total)
            first = d0 if first is None or d0 < first else first
            last = d1 if last is None or d1 > last else last
        apps.append(AppTotals(a[0], a[1], a[2], a[3], sums.get("calls"), sums.get("records"), first, last))
    findings = [_finding(r) for r in conn.execute(
        f"SELECT {_FINDING_COLS} FROM finding WHERE consumer_id = ?"
        " ORDER BY CASE status WHEN 'candidate' THEN 0 WHEN 'needs_info' THEN 1 ELSE 2 END,"
        " COALESCE(ratio, 0) DESC, id", (consumer_id,))]
    decisions = [_decision(r) for r in conn.execute(
        f"SELECT {_DECISION_COLS} FROM decision WHERE (subject = 'finding' AND subject_id IN"
        " (SELECT id FROM finding WHERE consumer_id = ?)) OR (subject = 'note' AND subject_id IN"
        " (SELECT id FROM note WHERE consumer_id = ?)) ORDER BY id DESC LIMIT ?",
        (consumer_id, consumer_id, decision_limit))]
    n = conn.execute("SELECT id, status, subject, due_date, updated_at, body FROM note WHERE consumer_id = ?"
                     " ORDER BY updated_at DESC, id DESC LIMIT 1", (consumer_id,)).fetchone()
    note = None
    if n is not None:
        lines = [ln for ln in n[5].splitlines() if ln.strip()][:note_lines]
        note = NotePreview(n[0], n[1], n[2], n[3], n[4], lines)
    return ConsumerDetail(
        id=c[0], legal_name=c[1], notice_contact=c[2], tier_id=c[3], agreement_version=c[4],
        declared_use_case=c[5], government_end_users=c[6], origin=c[7], worst_ratio=float(c[8]),
        open_findings=int(c[9]), review_state=c[10], tier=get_tier(conn, c[3]) if c[3] else None,
        apps=apps, findings=findings, decisions=decisions, note=note, totals=totals,
    )


Grain = Literal["day", "month", "year"]
_GRAIN_LEN = {"day": 10, "month": 7, "year": 4}


@dataclass(frozen=True)
class UsageSeries:
    """A consumer's usage of one metric per period, with the tier's cap per period."""

    metric: str
    grain: str
    points: list[tuple[str, int]]    # (period, value); periods without figures are absent
    limit: int | None                # the tier's cap per ``grain``, if it has one


def usage_series(conn: sqlite3.Connection, consumer_id: str, metric: str, start: str, end: str,
                 grain: Grain = "day") -> UsageSeries:
    """Sum of ``metric`` over the consumer's apps per day / month / year in ``start``..``end``
    (UTC days, inclusive), and the limit that applies at that grain."""
    if grain not in _GRAIN_LEN:
        raise DecisionRefused(f"unknown grain {grain!r}; valid: day, month, year")
    width = _GRAIN_LEN[grain]
    sums: dict[str, int] = {}
    apps = conn.execute("SELECT source, app_id FROM app WHERE consumer_id = ?", (consumer_id,)).fetchall()
    for source, app_id in apps:
        # Per app, so each read is one range of the usage primary key.
        for period, value in conn.execute(
                f"SELECT substr(day, 1, {width}) AS p, sum(value) FROM usage WHERE source = ? AND app_id = ?"
                " AND day BETWEEN ? AND ? AND metric = ? GROUP BY p", (source, app_id, start, end, metric)):
            sums[period] = sums.get(period, 0) + int(value)
    limit_row = conn.execute(
        "SELECT l.max_value FROM consumer c JOIN tier_limit l ON l.tier_id = c.tier_id"
        " WHERE c.id = ? AND l.metric = ? AND l.period = ?", (consumer_id, metric, grain)).fetchone()
    return UsageSeries(metric, grain, sorted(sums.items()), int(limit_row[0]) if limit_row else None)
