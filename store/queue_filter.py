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
    name:north  north         legal name contains, in any case; bare words too
    id:northwind              consumer id contains, in any case
    name:"north wind"         quotes keep spaces
    case:letter-sent due:overdue month:2022-07 by:alice week:2026-W48
                              a case's state and due date, a finding's month, who decided
                              (store.queue_cases)

A field's values separated by commas (``status:candidate,needs_info``) or the
field repeated are alternatives (OR); different fields must all hold (AND);
several name words must all appear. ``status``, ``category`` and ``severity``
apply to the same finding: ``status:candidate category:volume`` means a
candidate volume-cap finding.

Name and id terms of three characters or more are looked up in the FTS5
trigram index ``consumer_fts`` (any substring, any case, without reading every
consumer). Shorter ones cannot use it: they match with ``LIKE`` (ASCII letters
in any case), which reads every consumer.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterator, Sequence

from store.domain import CATEGORIES, FINDING_STATUSES, OPEN_STATUSES, SEVERITIES
from store.errors import FilterError
from store.queue_cases import CASE_FILTER_FIELDS, case_conditions, case_terms, case_value, month_condition
from store.queue_summary import finding_keys

FILTER_FIELDS: dict[str, str] = {
    "status": "finding status (" + ", ".join(FINDING_STATUSES) + ")",
    "category": "finding category (volume, rate, circumvention, missing, endpoint, gov, ...)",
    "severity": "finding severity (" + ", ".join(SEVERITIES) + ")",
    "over": "worst overage ratio at least N (over:10x, over:2.5, over:150%)",
    "tier": "tier id",
    "state": "queue state (open, info, decided, clear; retired: only when asked for)",
    "name": "legal name contains (3 characters or more use the name index)",
    "id": "consumer id contains",
    **CASE_FILTER_FIELDS,
}
# In the order the status sort shows them: something to decide, waiting for
# information, all decided, no findings, retired.
REVIEW_STATES: tuple[str, ...] = ("open", "info", "decided", "clear", "retired")
# What the queue shows unless ``state:`` asks for more: a retired consumer (an
# app's own consumer whose app the roster gave to its owner) has left the queue.
SHOWN_STATES: tuple[str, ...] = ("open", "info", "decided", "clear")
# The condition that leaves them out of a query that does not ask for them.
NOT_RETIRED = "review_state != 'retired'"


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
        return not (self.statuses or self.categories or self.severities or self.months or self.consumer_terms)

    @property
    def case_terms(self) -> bool:
        """True when a case term about the consumer is set (case:, due:, by:, week:)."""
        return bool(self.case_states or self.due_range is not None or self.reviewers or self.week is not None)

    @property
    def consumer_terms(self) -> bool:
        """True when a term is about the consumer itself (not only its findings)."""
        return bool(self.min_ratio is not None or self.tiers or self.states or self.names or self.ids
                    or self.case_terms)

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
    day = today or datetime.now(timezone.utc).date()
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
            values[name].extend(_value(name, part, day) for part in parts)
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
        **case_terms(values),
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


def _value(name: str, value: str, today: date) -> Any:
    """What ``value`` of field ``name`` stands for (a status id, a ratio, a due
    range counted from ``today``, ...);
    FilterError if the field does not take it."""
    valid = {"status": FINDING_STATUSES, "category": tuple(CATEGORIES), "severity": SEVERITIES,
             "state": REVIEW_STATES}.get(name)
    if valid is not None:
        return _pick(value, valid, name)
    if name == "over":
        return _ratio(value)
    if name in CASE_FILTER_FIELDS:
        return case_value(name, value, today, _pick)
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


# The trigram index finds substrings of at least this many characters.
NAME_INDEX_MIN_CHARS = 3


def name_match(flt: QueueFilter) -> str | None:
    """The FTS5 query (on ``consumer_fts``) every consumer matching the filter's
    name and id terms matches, or None when no term is long enough for the index."""
    phrases = [f'legal_name : "{_phrase(n)}"' for n in flt.names if len(n) >= NAME_INDEX_MIN_CHARS]
    phrases += [f'id : "{_phrase(i)}"' for i in flt.ids if len(i) >= NAME_INDEX_MIN_CHARS]
    return " AND ".join(phrases) or None


def _phrase(text: str) -> str:
    return text.replace('"', '""')


_NAME_MATCHES = "SELECT rowid FROM consumer_fts WHERE consumer_fts MATCH ?"


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, literally (% and _ are data)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def finding_keys_of(flt: QueueFilter) -> list[str]:
    """The ``consumer_finding_key`` keys (:mod:`store.queue_summary`) a consumer
    with a finding matching the filter's status, category and severity terms has
    one of (all three apply to the same finding); [] when there are none."""
    if not (flt.statuses or flt.categories or flt.severities):
        return []
    return finding_keys(flt.statuses, flt.categories, flt.severities)


def finding_conditions(flt: QueueFilter, alias: str = "f") -> tuple[list[str], list[Any]]:
    """Conditions on one finding (status, category, severity and month apply to the same finding)."""
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


def _marks(values: list[str]) -> str:
    return ",".join("?" * len(values))


def consumer_conditions(flt: QueueFilter, *, findings: bool = True,
                        names: bool = True) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``consumer`` and their parameters (``findings=False`` /
    ``names=False``: leave out the finding conditions / the name index, when the
    query is driven from the findings / from the name index)."""
    conds: list[str] = []
    params: list[Any] = []
    match = name_match(flt)
    if names and match is not None:
        # A set to test rows against, not where to start (``+``): walking the
        # order's index finds a page of many matches sooner than sorting them all.
        conds.append(f"+consumer.rowid IN ({_NAME_MATCHES})")
        params.append(match)
    keys = finding_keys_of(flt)
    if findings and keys:
        conds.append(f"EXISTS (SELECT 1 FROM consumer_finding_key AS k WHERE k.key IN ({_marks(keys)})"
                     " AND k.consumer_id = consumer.id)")
        params.extend(keys)
    if flt.months:
        # month: has no finding key: probe this consumer's findings for one of
        # that month that also meets the other finding terms (the same finding).
        fconds, fparams = finding_conditions(flt)
        conds.append("EXISTS (SELECT 1 FROM finding f INDEXED BY finding_by_consumer"
                     f" WHERE f.consumer_id = consumer.id AND {' AND '.join(fconds)})")
        params.extend(fparams)
    if flt.min_ratio is not None:
        conds.append("worst_ratio >= ?")
        params.append(flt.min_ratio)
    if flt.tiers:
        # NOCASE, as consumer_by_tier is: `tier:GOLD` is gold, read from that index.
        conds.append(f"tier_id COLLATE NOCASE IN ({','.join('?' * len(flt.tiers))})")
        params.extend(flt.tiers)
    states = matching_states(flt)
    if states is not None and (flt.states or set(states) <= {"open", "info"}):
        # Stated, or implied by open statuses: then the consumer_by_state range is
        # exactly the matches' region, in severity order, from either end.
        conds.append(f"review_state IN ({','.join('?' * len(states))})")
        params.extend(states)
    elif states is not None and "retired" not in states:
        conds.append(NOT_RETIRED)
    for name in flt.names:
        if len(name) < NAME_INDEX_MIN_CHARS:
            conds.append("legal_name LIKE ? ESCAPE '\\'")
            params.append(_like(name))
    for ident in flt.ids:
        if len(ident) < NAME_INDEX_MIN_CHARS:
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


def consumer_source(flt: QueueFilter, driven: bool, *,
                    few_names: bool = False) -> tuple[str, list[Any], list[str], list[Any]]:
    """(FROM clause, its params, WHERE conditions, their params) for reading ``consumer``.

    ``few_names``: the name terms match few consumers: start from the name
    index and sort those. ``driven``: start from the consumers that have a
    matching finding (their keys) instead of walking the consumer index past a
    million that do not: cheaper for counts, for few matches, and for reading
    from the far end of the order, where matches are sparse. CROSS JOIN keeps
    that join order. Otherwise the consumer index is walked, the name index read
    once as a set, the finding keys probed per consumer.
    """
    match = name_match(flt)
    if few_names and match is not None:
        conds, params = consumer_conditions(flt, names=False)
        return (f"({_NAME_MATCHES}) AS n CROSS JOIN consumer ON consumer.rowid = n.rowid", [match],
                conds, params)
    keys = finding_keys_of(flt)
    if driven and keys:
        conds, params = consumer_conditions(flt, findings=False)
        source = (f"(SELECT DISTINCT consumer_id AS matched FROM consumer_finding_key WHERE key IN ({_marks(keys)}))"
                  " AS m CROSS JOIN consumer ON consumer.id = m.matched")
        return source, list(keys), conds, params
    conds, params = consumer_conditions(flt)
    return "consumer", [], conds, params


def only_finding_terms(flt: QueueFilter) -> bool:
    """True when the filter holds nothing but status, category and severity terms."""
    return bool(finding_keys_of(flt)) and not (flt.consumer_terms or flt.months)


def count_finding_matches(conn: Any, flt: QueueFilter) -> int:
    """How many consumers in the queue (retired ones are not) have a finding
    matching the filter's finding terms."""
    keys = finding_keys_of(flt)
    counted = "count(*)" if len(keys) == 1 else "count(DISTINCT consumer_id)"
    return int(conn.execute(f"SELECT {counted} FROM consumer_finding_key WHERE key IN ({_marks(keys)})"
                            f" AND consumer_id NOT IN ({_RETIRED})", keys).fetchone()[0])


def few_finding_matches(conn: Any, flt: QueueFilter, few: int) -> bool:
    """True when fewer than ``few`` consumers have a finding matching the filter's
    finding terms (then reading is driven from their keys)."""
    keys = finding_keys_of(flt)
    if not keys:
        return False
    (n,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM consumer_finding_key WHERE key IN ({_marks(keys)})"
                        " LIMIT ?)", (*keys, few)).fetchone()
    return int(n) < few


def only_indexed_names(flt: QueueFilter) -> str | None:
    """The FTS5 query standing for the whole filter when it holds nothing but
    name and id terms long enough for the index (a count is then the index's)."""
    if (flt.statuses or flt.categories or flt.severities or flt.months or flt.min_ratio is not None or flt.tiers
            or flt.states or flt.case_terms or any(len(t) < NAME_INDEX_MIN_CHARS for t in flt.names + flt.ids)):
        return None
    return name_match(flt)


_RETIRED = "SELECT id FROM consumer WHERE review_state = 'retired'"


def count_consumers(conn: Any, source: str, source_params: list[Any], conds: list[str], params: list[Any]) -> int:
    """How many rows of ``source`` (:func:`consumer_source`) meet ``conds``. Read
    straight from ``consumer``, the retired are counted apart (a range of
    consumer_by_state, usually empty) and taken off, instead of testing each
    match's state: a count over one range of an index (``tier:``, every consumer)
    then stays in that index."""
    if source != "consumer" or NOT_RETIRED not in conds:
        where = " AND ".join(conds) or "1"
        return int(conn.execute(f"SELECT count(*) FROM {source} WHERE {where}", source_params + params).fetchone()[0])
    where = " AND ".join(c for c in conds if c != NOT_RETIRED) or "1"
    return int(conn.execute(f"SELECT (SELECT count(*) FROM consumer WHERE {where}) - (SELECT count(*) FROM consumer"
                            f" INDEXED BY consumer_by_state WHERE review_state = 'retired' AND {where})",
                            params + params).fetchone()[0])


def count_name_matches(conn: Any, match: str) -> int:
    """How many consumers the FTS5 query ``match`` finds in the queue (retired
    ones are not in it: few, read from consumer_by_state)."""
    return int(conn.execute(
        f"SELECT (SELECT count(*) FROM ({_NAME_MATCHES})) - (SELECT count(*) FROM consumer"
        f" WHERE review_state = 'retired' AND rowid IN ({_NAME_MATCHES}))", (match, match)).fetchone()[0])


def name_matches_upto(conn: Any, flt: QueueFilter, most: int) -> int | None:
    """How many consumers the filter's name terms match in the name index,
    counted up to ``most`` (None: no term long enough for the index)."""
    match = name_match(flt)
    if match is None:
        return None
    (n,) = conn.execute(f"SELECT count(*) FROM ({_NAME_MATCHES} LIMIT ?)", (match, most)).fetchone()
    return int(n)
