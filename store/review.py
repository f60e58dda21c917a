"""Review decisions: what a reviewer does to findings, written to the decision log.

Confirm, dismiss, park (needs info), open by hand, decide many at once, undo
the last action; :func:`decide` takes one of the request types below (what a
dialog of the TUI, or a headless command, asks for) and says in words what it
did. Each change is an entry of :mod:`store.decision_log`, in the same short
``BEGIN IMMEDIATE`` transaction as the change. ``finding.version`` is bumped on
every change; an action given ``expected_version`` refuses with
:class:`~store.errors.ConflictError` (carrying the current state) when the
finding changed since the reviewer looked at it.

The queue summary (:mod:`store.queue_summary`) is refreshed in the same
transaction as every change.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Literal, Sequence

from store.cases import FINDING_COLUMNS, Finding, finding_from_row
from store.clock import Clock, day, iso
from store.db import writing
from store.decision_log import Decision, conflict_error, read_decisions, record_decision
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
from store.text import visible
from store.twins import with_twins

# ---------------------------------------------------------------------------
# Findings


def get_finding(conn: sqlite3.Connection, finding_id: int) -> Finding:
    """The finding with this id (raises DecisionRefused if there is none)."""
    row = conn.execute(f"SELECT {FINDING_COLUMNS} FROM finding WHERE id = ?", (finding_id,)).fetchone()
    if row is None:
        raise DecisionRefused(f"there is no finding #{finding_id}")
    return finding_from_row(row)


def _conflict(conn: sqlite3.Connection, f: Finding, what: str) -> ConflictError:
    """What the finding is now and who made it so."""
    return conflict_error(conn, "finding", f.id, f"finding #{f.id} {what}", f.status, {
        "finding_id": f.id, "status": f.status, "severity": f.severity, "category": f.category,
        "version": f.version}, f.updated_at)


def change_finding(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, clock: Clock,
                   reason: str | None, status: str | None = None, severity: str | None = None,
                   category: str | None = None, expected_version: int | None = None,
                   action_id: int | None = None) -> list[Decision]:
    """Change a finding's status / severity / category, one log entry per field.

    The one place findings change: the named actions below call it. Checks
    ``expected_version`` (ConflictError when the finding changed meanwhile) and
    the status transitions of :data:`store.domain.FINDING_TRANSITIONS`
    (DecisionRefused otherwise). Changing the severity or category needs a
    ``reason``. A confirmation also logs the severity and category it keeps (as
    detected: the rules set them, unlogged, while the finding was a candidate),
    so the log says what was confirmed and ``store.verify`` can replay it. Runs
    in the caller's transaction or its own.
    """
    if severity is not None and severity not in SEVERITIES:
        raise DecisionRefused(f"unknown severity {severity!r}; valid: {', '.join(SEVERITIES)}")
    if category is not None and category not in CATEGORIES:
        raise DecisionRefused(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
    with writing(conn, point="decision"):
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
        regraded = [name for name, _old, _new in changes if name != "status"]
        if regraded and not (reason or "").strip():
            raise DecisionRefused(f"changing the {' and '.join(regraded)} of finding #{f.id} needs a reason "
                                  f"(it was {', '.join(f'{n} {getattr(f, n)}' for n in regraded)} as detected)")
        if status == "confirmed" and any(name == "status" for name, _old, _new in changes):
            # What the confirmation keeps, as detected: logged so the log says what was confirmed.
            changed = {name for name, _old, _new in changes}
            changes += [(name, getattr(f, name), getattr(f, name)) for name in ("severity", "category")
                        if name not in changed]
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


def as_detected(f: Finding) -> str:
    """The reason logged for a confirmation given none: the rule and the figures it
    found (``as detected (rule volume_cap): 780,412,345 API calls in 2022, ...``),
    or the evidence of a finding opened by hand."""
    from store.notes.wording import finding_sentence

    if f.rule_id is None:
        return f"as opened by hand: {f.evidence or 'no evidence text'}"
    return f"as detected (rule {f.rule_id}): {finding_sentence(f)}"


def confirmation_reason(f: Finding, reason: str | None, severity: str | None, category: str | None) -> str:
    """What a confirmation of ``f`` logs as its reason: the reviewer's, else the
    rule and its figures (:func:`as_detected`). A severity or category changed
    from what was detected needs the reviewer's own."""
    typed = (reason or "").strip()
    if typed:
        return typed
    regraded = [name for name, value in (("severity", severity), ("category", category))
                if value is not None and value != getattr(f, name)]
    if regraded:
        raise DecisionRefused(f"changing the {' and '.join(regraded)} of finding #{f.id} needs a reason "
                              f"(it was {', '.join(f'{n} {getattr(f, n)}' for n in regraded)} as detected)")
    return as_detected(f)


def confirm_violation(conn: sqlite3.Connection, finding_id: int, *, reviewer: str, clock: Clock,
                      reason: str | None = None, severity: str | None = None, category: str | None = None,
                      expected_version: int | None = None) -> list[Decision]:
    """Confirm a finding as a violation, keeping its severity and category as
    detected unless the reviewer sets another (``severity``, ``category``, with a
    reason). Without a ``reason`` the finding's rule and figures are logged as it."""
    with writing(conn, point="decision"):
        why = confirmation_reason(get_finding(conn, finding_id), reason, severity, category)
        return change_finding(conn, finding_id, reviewer=reviewer, clock=clock, reason=why,
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
                       clock: Clock, reason: str | None = None, expected_version: int | None = None,
                       action_id: int | None = None) -> list[Decision]:
    """Any other allowed status change (audit_requested when a note is exported, resolved, reopened)."""
    return change_finding(conn, finding_id, reviewer=reviewer, clock=clock, reason=reason, status=status,
                          expected_version=expected_version, action_id=action_id)


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
    with writing(conn, point="decision"):
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
    findings (candidate / needs info); a finding's twin (:mod:`store.twins`) is
    decided with it. Any conflict rolls the whole batch back. ``dismiss`` takes
    ``reason_code`` (+ ``reason_text``); ``confirm`` keeps each finding's
    severity and category as detected unless ``severity`` / ``category`` say
    otherwise, and logs ``reason`` (without one, each finding's rule and figures:
    :func:`confirmation_reason`).
    """
    if action not in _BULK_STATUS:
        raise DecisionRefused(f"unknown bulk action {action!r}; valid: {', '.join(_BULK_STATUS)}")
    if action == "dismiss":
        reason = dismiss_reason(reason_code or "", reason_text)
    status = _BULK_STATUS[action]
    versions = expected_versions or {}
    decisions: list[Decision] = []
    with writing(conn, point="decision"):
        ids = with_twins(conn, list(finding_ids))
        consumers = list(dict.fromkeys(consumer_ids))
        for cid in consumers:
            ids.extend(r[0] for r in conn.execute(
                f"SELECT id FROM finding WHERE consumer_id = ? AND status IN ({','.join('?' * len(OPEN_STATUSES))})"
                " ORDER BY id", (cid, *OPEN_STATUSES)) if r[0] not in ids)
        action_id: int | None = None
        for fid in ids:
            why = reason
            if action == "confirm":
                why = confirmation_reason(get_finding(conn, fid), reason, severity, category)
            written = change_finding(conn, fid, reviewer=reviewer, clock=clock, reason=why, status=status,
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
    with writing(conn, point="decision"):
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
        entries = read_decisions(
            conn, "WHERE action_id = ? AND reviewer = ? AND subject = 'finding' AND undoes IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM decision u WHERE u.undoes = d.id) ORDER BY id", (row[0], reviewer))
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
# Requests: what a reviewer asks for, and what it did


@dataclass(frozen=True)
class ConfirmRequest:
    """Confirm findings as violations. No ``finding_ids``: every open finding of
    the consumers decided on."""

    finding_ids: tuple[int, ...]
    category: str | None      # None: keep each finding's category as detected
    severity: str | None      # None: keep each finding's severity as detected
    reason: str               # "": each finding's rule and figures (as_detected)


@dataclass(frozen=True)
class DismissRequest:
    """Dismiss findings with a reason code of :data:`store.domain.DISMISS_REASONS`."""

    finding_ids: tuple[int, ...]
    reason_code: str
    reason_text: str


@dataclass(frozen=True)
class NeedsInfoRequest:
    """Park findings until the information ``reason`` names arrives."""

    finding_ids: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class ManualRequest:
    """Open a finding by hand, with the reviewer's evidence."""

    category: str
    severity: str
    evidence: str


@dataclass(frozen=True)
class UndoRequest:
    """Undo the reviewer's last action."""


Request = ConfirmRequest | DismissRequest | NeedsInfoRequest | ManualRequest | UndoRequest


@dataclass(frozen=True)
class Outcome:
    """What :func:`decide` did: a one-line summary (names shown literally), and
    where a queue's cursor goes after it."""

    summary: str
    keep_place: bool = True          # a decision: the cursor stays at its index
    consumer_id: str | None = None   # go to this consumer (an undo, a finding opened by hand)
    title: str = "Decision recorded"
    finding_ids: tuple[int, ...] = ()   # the findings it changed (none: nothing to do)

    @property
    def changed(self) -> bool:
        """False when there was nothing to do (already decided, nothing to undo)."""
        return bool(self.finding_ids)


def decide(conn: sqlite3.Connection, request: Request, consumer_ids: Sequence[str], *,
           versions: dict[int, int], reviewer: str, clock: Clock) -> Outcome:
    """Carry out one reviewer request on ``consumer_ids`` (the consumer under the
    cursor, or a selection) and say what it did.

    Findings a request names are decided with the ``versions`` the reviewer saw,
    so a change made meanwhile in another session is a ConflictError, not an
    overwrite. A request without findings over several consumers takes their open
    findings. Raises what the actions raise (``DecisionRefused``, ``ConflictError``,
    ``StoreError``).
    """
    if isinstance(request, UndoRequest):
        undone = undo_last(conn, reviewer=reviewer, clock=clock)
        if undone is None:
            return Outcome("Nothing of yours to undo.", keep_place=False, title="Undo")
        return describe_undo(conn, undone)
    if isinstance(request, ManualRequest):
        finding = open_manual_finding(
            conn, consumer_ids[0], category=request.category, severity=request.severity,
            evidence=request.evidence, reviewer=reviewer, clock=clock,
        )
        # The consumer now has an open finding to decide: the cursor goes with it.
        return Outcome(f"Opened finding #{finding.id} ({CATEGORIES[finding.category]})",
                       keep_place=False, consumer_id=consumer_ids[0], finding_ids=(finding.id,))
    scope: dict[str, Any]
    if request.finding_ids:
        scope = {
            "finding_ids": request.finding_ids,
            "expected_versions": {fid: versions[fid] for fid in request.finding_ids if fid in versions},
        }
    else:
        scope = {"consumer_ids": consumer_ids}
    detail = ""
    if isinstance(request, ConfirmRequest):
        decisions = bulk_decide(conn, action="confirm", reviewer=reviewer, clock=clock, severity=request.severity,
                                reason=request.reason, category=request.category, **scope)
        verb = "Confirmed"
        kept = [name for name, value in (("severity", request.severity), ("category", request.category))
                if value is None]
        detail = "".join(f"; {name} set to {value}" for name, value in (
            ("severity", request.severity), ("category", request.category)) if value is not None)
        detail += f"; {' and '.join(kept)} as detected" if kept else ""
    elif isinstance(request, DismissRequest):
        decisions = bulk_decide(conn, action="dismiss", reviewer=reviewer, clock=clock,
                                reason_code=request.reason_code, reason_text=request.reason_text, **scope)
        verb = "Dismissed"
    else:
        decisions = bulk_decide(conn, action="needs_info", reviewer=reviewer, clock=clock, reason=request.reason,
                                **scope)
        verb = "Needs info:"
    findings = sorted({d.subject_id for d in decisions})
    if not findings:
        return Outcome("Nothing changed (already decided).")
    shown = ", ".join(f"#{fid}" for fid in findings[:6]) + (" …" if len(findings) > 6 else "")
    return Outcome(f"{verb} {len(findings)} finding{'s' if len(findings) != 1 else ''} {shown}{detail}",
                   finding_ids=tuple(findings))


def describe_undo(conn: sqlite3.Connection, undo: Decision) -> Outcome:
    """``Undone: 14 findings of Fenwick Signal LLC back to candidate``, the cursor
    going to that consumer. ``undo`` is the first entry :func:`undo_last` wrote;
    its action's entries say which findings and consumers the undo covered."""
    rows = conn.execute(
        "SELECT d.subject_id, d.field, d.new_value, u.old_value AS was, c.id AS consumer_id, c.legal_name"
        " FROM decision d JOIN finding f ON f.id = d.subject_id JOIN consumer c ON c.id = f.consumer_id"
        " LEFT JOIN decision u ON u.id = d.undoes"
        " WHERE d.action_id = ? AND d.subject = 'finding' ORDER BY d.id", (undo.action_id,),
    ).fetchall()
    findings = list(dict.fromkeys(r["subject_id"] for r in rows))
    consumers = dict((r["consumer_id"], r["legal_name"]) for r in rows)
    what = f"finding #{findings[0]}" if len(findings) == 1 else f"{len(findings):,} findings"
    who = visible(next(iter(consumers.values()))) if len(consumers) == 1 else f"{len(consumers):,} consumers"
    status = [r for r in rows if r["field"] == "status"]
    if status and all(r["was"] is None for r in status):
        # Undoing a finding opened by hand dismisses it (it had no earlier status).
        summary = f"Undone: opening {what} of {who} (now dismissed)"
    else:
        states = list(dict.fromkeys(visible(r["new_value"] or "none").replace("_", " ") for r in status))
        summary = f"Undone: {what} of {who}" + (f" back to {' / '.join(states)}" if states else "")
    return Outcome(summary, keep_place=False, consumer_id=next(iter(consumers)), title="Undo",
                   finding_ids=tuple(findings))
