"""The review queue's filter: the text a reviewer types, parsed, and the SQL
conditions it stands for.

Filter syntax (:func:`parse_filter`), terms separated by spaces, all must hold::

    status:candidate          a finding with this status (prefixes: cand, needs, conf ...)
    category:volume           a finding in this category (volume -> volume_cap, gov -> government_end_user)
    severity:high             a finding of this severity (info, low, medium, high, critical)
    over:10x   over:2.5       worst overage ratio at least this (x optional, or 150%)
    tier:gold                 this tier id
    state:open                queue state: open (a candidate to decide), info (waiting for
                              information), decided, clear or retired (retired
                              consumers show only when asked for)
    name:north  north         legal name contains (ASCII letters in any case); bare words too
    id:northwind              consumer id contains
    name:"north wind"         quotes keep spaces
    case:letter-sent due:overdue month:2022-07 by:alice week:2026-W48
                              a case's state and due date, a finding's month, who decided
                              (store.queue_cases)

A field's values separated by commas (``status:candidate,needs_info``) or the
field repeated are alternatives (OR); different fields must all hold (AND);
several name words must all appear. ``status``, ``category`` and ``severity``
apply to the same finding: ``status:candidate category:volume`` means a
candidate volume-cap finding.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterator, Sequence

from store.domain import CATEGORIES, FINDING_STATUSES, OPEN_STATUSES, SEVERITIES
from store.errors import FilterError
from store.queue_cases import CASE_FILTER_FIELDS, case_conditions, case_terms, month_condition

FILTER_FIELDS: dict[str, str] = {
    "status": "finding status (" + ", ".join(FINDING_STATUSES) + ")",
    "category": "finding category (volume, rate, circumvention, missing, endpoint, gov, ...)",
    "severity": "finding severity (" + ", ".join(SEVERITIES) + ")",
    "over": "worst overage ratio at least N (over:10x, over:2.5, over:150%)",
    "tier": "tier id",
    "state": "queue state (open, info, decided, clear; retired: only when asked for)",
    "name": "legal name contains",
    "id": "consumer id contains",
    **CASE_FILTER_FIELDS,
}
# In the order the status sort shows them: something to decide, waiting for
# information, all decided, no findings, retired.
REVIEW_STATES: tuple[str, ...] = ("open", "info", "decided", "clear", "retired")
# What the queue shows unless ``state:`` asks for more: a retired consumer (an
# app's own consumer whose app the roster gave to its owner) has left the queue.
SHOWN_STATES: tuple[str, ...] = ("open", "info", "decided", "clear")


@dataclass(frozen=True)
class QueueFilter:
    """A parsed filter; empty tuples / ``None`` mean "no constraint"."""

    text: str = ""
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    min_ratio: float | None = None
    tiers: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    # Case terms (store.queue_cases): resolved when parsed (due: against the day).
    case_states: tuple[str, ...] = ()
    due_range: tuple[str, str] | None = None
    months: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    week: tuple[str, str] | None = None

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every consumer through."""
        return not (self.statuses or self.categories or self.severities or self.min_ratio is not None
                    or self.tiers or self.states or self.names or self.ids or self.case_states
                    or self.due_range is not None or self.months or self.reviewers or self.week is not None)

    @property
    def consumer_terms(self) -> bool:
        """True when a term is about the consumer itself (not only its findings)."""
        return bool(self.min_ratio is not None or self.tiers or self.states or self.names or self.ids
                    or self.case_states or self.due_range is not None or self.reviewers or self.week is not None)

    def __str__(self) -> str:
        return self.text


def parse_filter(text: str, today: date | None = None) -> QueueFilter:
    """Parse the reviewer's filter text (syntax in the module docstring);
    ``due:`` counts from ``today`` (default: today, UTC).

    Raises :class:`~store.errors.FilterError` (a ``ConfigError``) naming the bad
    term and listing the valid fields or values.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (undecodable bytes pasted in) cannot be bound to SQLite.
        raise FilterError(f"filter {text!r} holds characters that are not valid text") from None
    if "\x00" in text:
        # SQLite's LIKE reads a pattern only up to NUL: "name:\x00" would match everyone.
        raise FilterError(f"filter {text!r} holds a NUL character; remove it")
    values: dict[str, list[Any]] = {name: [] for name in FILTER_FIELDS}
    for start, token in _terms(text):
        name, sep, value = token.partition(":")
        if not sep:
            name, value = "name", token
        name = name.strip().lower()
        at = start + len(token) - len(value)   # where the value starts in the typed text
        if name not in FILTER_FIELDS:
            raise FilterError(
                f"unknown filter field {name!r} in {token!r}; valid fields: "
                + "; ".join(f"{k}: {v}" for k, v in FILTER_FIELDS.items()), position=start
            )
        if name in ("name", "id", "by"):
            if value.strip():
                values[name].append(value.strip())
            continue
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise FilterError(f"filter term {token!r} has no value; {name}: {FILTER_FIELDS[name]}",
                              position=at)
        try:
            values[name].extend(_value(name, part) for part in parts)
        except FilterError as exc:
            exc.position = at
            raise
    ratios = values["over"]
    return QueueFilter(
        text=text.strip(),
        statuses=tuple(dict.fromkeys(values["status"])),
        categories=tuple(dict.fromkeys(values["category"])),
        severities=tuple(dict.fromkeys(values["severity"])),
        # Alternatives of a threshold: the lowest one lets the most through.
        min_ratio=min(ratios) if ratios else None,
        tiers=tuple(dict.fromkeys(values["tier"])),
        states=tuple(dict.fromkeys(values["state"])),
        names=tuple(values["name"]),
        ids=tuple(values["id"]),
        **case_terms(values, today or datetime.now(timezone.utc).date(), _pick),
    )


def _terms(text: str) -> Iterator[tuple[int, str]]:
    """The filter's terms, shell-style (quotes keep spaces), each with the offset
    where it starts in ``text``."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    end = 0
    while True:
        start = end + (len(text[end:]) - len(text[end:].lstrip()))
        try:
            token = lexer.get_token()
        except ValueError as exc:
            quote = min((i for i in (text.find('"', start), text.find("'", start)) if i >= 0), default=start)
            raise FilterError(f"cannot read filter {text!r}: {exc} (close the quote)", position=quote) from exc
        if token is None:
            return
        end = lexer.instream.tell()
        yield start, token


def _value(name: str, value: str) -> Any:
    """What ``value`` of field ``name`` stands for (a status id, a ratio, ...);
    FilterError if the field does not take it."""
    valid = {"status": FINDING_STATUSES, "category": tuple(CATEGORIES), "severity": SEVERITIES,
             "state": REVIEW_STATES}.get(name)
    if valid is not None:
        return _pick(value, valid, name)
    if name == "over":
        return _ratio(value)
    return value


def _pick(value: str, valid: Sequence[str], what: str) -> str:
    """The one valid id ``value`` names: exact, or a unique prefix of the id or one of its words."""
    v = value.lower().replace("-", "_").replace(" ", "_")
    if v in valid:
        return v
    matches = [x for x in valid if x.startswith(v)] or [
        x for x in valid if any(word.startswith(v) for word in x.split("_"))
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FilterError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    raise FilterError(f"{what} {value!r} is ambiguous: {', '.join(matches)}")


def _ratio(value: str) -> float:
    v = value.lower().strip()
    scale = 1.0
    if v.endswith("%"):
        v, scale = v[:-1], 0.01
    elif v.endswith("x") or v.endswith("×"):
        v = v[:-1]
    try:
        number = float(v) * scale
    except ValueError:
        raise FilterError(f"over:{value} is not a ratio; write over:10x, over:2.5 or over:150%") from None
    if number != number or number < 0:
        raise FilterError(f"over:{value} must be a ratio of zero or more")
    return number


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, literally (% and _ are data)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def finding_conditions(flt: QueueFilter, alias: str = "f") -> tuple[list[str], list[Any]]:
    """Conditions on one finding (status and category apply to the same finding)."""
    conds: list[str] = []
    params: list[Any] = []
    if flt.statuses:
        conds.append(f"{alias}.status IN ({','.join('?' * len(flt.statuses))})")
        params.extend(flt.statuses)
    if flt.categories:
        conds.append(f"{alias}.category IN ({','.join('?' * len(flt.categories))})")
        params.extend(flt.categories)
    if flt.severities:
        conds.append(f"{alias}.severity IN ({','.join('?' * len(flt.severities))})")
        params.extend(flt.severities)
    month_conds, month_params = month_condition(flt.months, alias)
    return conds + month_conds, params + month_params


def consumer_conditions(flt: QueueFilter, *, findings: bool = True) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``consumer`` and their parameters (``findings=False``: leave
    out the finding conditions, when the query is driven from the findings)."""
    conds: list[str] = []
    params: list[Any] = []
    fconds, fparams = finding_conditions(flt)
    if findings and fconds:
        # INDEXED BY: probe this consumer's findings; the planner would otherwise
        # walk every finding of that status and category for each consumer.
        conds.append("EXISTS (SELECT 1 FROM finding f INDEXED BY finding_by_consumer"
                     f" WHERE f.consumer_id = consumer.id AND {' AND '.join(fconds)})")
        params.extend(fparams)
    if flt.min_ratio is not None:
        conds.append("worst_ratio >= ?")
        params.append(flt.min_ratio)
    if flt.tiers:
        conds.append(f"lower(tier_id) IN ({','.join('?' * len(flt.tiers))})")
        params.extend(t.lower() for t in flt.tiers)
    states = matching_states(flt)
    if states is not None and (flt.states or set(states) <= {"open", "info"}):
        # Stated, or implied by open statuses: then the consumer_by_state range is
        # exactly the matches' region, in severity order, from either end.
        conds.append(f"review_state IN ({','.join('?' * len(states))})")
        params.extend(states)
    elif states is not None and "retired" not in states:
        conds.append("review_state != 'retired'")
    for name in flt.names:
        conds.append("legal_name LIKE ? ESCAPE '\\'")
        params.append(_like(name))
    for ident in flt.ids:
        conds.append("id LIKE ? ESCAPE '\\'")
        params.append(_like(ident))
    case_conds, case_params = case_conditions(flt.case_states, flt.due_range, flt.reviewers, flt.week)
    return conds + case_conds, params + case_params


def matching_states(flt: QueueFilter, only: str | None = None) -> tuple[str, ...] | None:
    """The queue states a match can be in (None: any), from ``state:`` and what the
    finding conditions imply (a candidate finding makes its consumer open, one
    waiting for information makes it open or info); ``only``: that state alone."""
    allowed = set(flt.states) if flt.states else set(SHOWN_STATES)
    if flt.statuses and set(flt.statuses) <= {"candidate"}:
        allowed &= {"open"}
    elif flt.statuses and set(flt.statuses) <= set(OPEN_STATUSES):
        allowed &= {"open", "info"}
    elif flt.statuses or flt.categories or flt.severities or flt.months:
        allowed &= {"open", "info", "decided"}
    if only is not None:
        allowed &= {only}
    if allowed == set(REVIEW_STATES):
        return None
    return tuple(s for s in REVIEW_STATES if s in allowed)


def consumer_source(flt: QueueFilter, driven: bool) -> tuple[str, list[Any], list[str], list[Any]]:
    """(FROM clause, its params, WHERE conditions, their params) for reading ``consumer``.

    ``driven``: start from the consumers that have a matching finding (a few
    thousand) instead of walking the consumer index past a million that do not:
    cheaper for counts and for reading from the far end of the order, where
    matches are sparse. CROSS JOIN keeps that join order.
    """
    fconds, fparams = finding_conditions(flt, alias="finding")
    if driven and fconds:
        conds, params = consumer_conditions(flt, findings=False)
        source = (f"(SELECT DISTINCT consumer_id AS matched FROM finding WHERE {' AND '.join(fconds)}) m"
                  " CROSS JOIN consumer ON consumer.id = m.matched")
        return source, fparams, conds, params
    conds, params = consumer_conditions(flt)
    return "consumer", [], conds, params
