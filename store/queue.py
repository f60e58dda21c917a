"""The review queue: consumers in review order, read lazily, page by page.

The queue never loads all consumers: :func:`page` reads ``limit`` rows at an
offset, :func:`count` counts, :func:`position_of` finds a consumer's offset and
:func:`next_unreviewed` jumps to the next consumer with something to decide.
Everything is ordered by the summary columns on ``consumer`` (``worst_ratio``,
``review_state``, kept current by :mod:`store.queue_summary`) so each read is an
index range scan.

Reaching any offset is fast: pages are read by *keyset* (``WHERE key > last key``)
from the nearest offset already seen on this connection (an "anchor"); offsets in
the second half are read backwards from the end; only a long jump to an offset
never seen walks the index with ``OFFSET``.

Filter syntax (:func:`parse_filter`), terms separated by spaces, all must hold::

    status:candidate          a finding with this status (prefixes: cand, needs, conf ...)
    category:volume           a finding in this category (volume -> volume_cap, gov -> government_end_user)
    severity:high             a finding of this severity (info, low, medium, high, critical)
    over:10x   over:2.5       worst overage ratio at least this (x optional, or 150%)
    tier:gold                 this tier id
    state:open                queue state: open, decided or clear
    name:north  north         legal name contains (ASCII letters in any case); bare words too
    id:northwind              consumer id contains
    name:"north wind"         quotes keep spaces

A field's values separated by commas (``status:candidate,needs_info``) or the
field repeated are alternatives (OR); different fields must all hold (AND);
several name words must all appear. ``status``, ``category`` and ``severity``
apply to the same finding: ``status:candidate category:volume`` means a
candidate volume-cap finding.
"""

from __future__ import annotations

import bisect
import shlex
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from store.domain import CATEGORIES, FINDING_STATUSES, OPEN_STATUSES, SEVERITIES
from store.errors import FilterError

# ---------------------------------------------------------------------------
# Filters

FILTER_FIELDS: dict[str, str] = {
    "status": "finding status (" + ", ".join(FINDING_STATUSES) + ")",
    "category": "finding category (volume, rate, circumvention, missing, endpoint, gov, ...)",
    "severity": "finding severity (" + ", ".join(SEVERITIES) + ")",
    "over": "worst overage ratio at least N (over:10x, over:2.5, over:150%)",
    "tier": "tier id",
    "state": "queue state (open, decided, clear)",
    "name": "legal name contains",
    "id": "consumer id contains",
}
REVIEW_STATES: tuple[str, ...] = ("open", "decided", "clear")


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

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every consumer through."""
        return not (self.statuses or self.categories or self.severities or self.min_ratio is not None
                    or self.tiers or self.states or self.names or self.ids)

    def __str__(self) -> str:
        return self.text


def parse_filter(text: str) -> QueueFilter:
    """Parse the reviewer's filter text (syntax in the module docstring).

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
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise FilterError(f"cannot read filter {text!r}: {exc} (close the quote)") from exc
    values: dict[str, list[str]] = {name: [] for name in FILTER_FIELDS}
    for token in tokens:
        name, sep, value = token.partition(":")
        if not sep:
            name, value = "name", token
        name = name.strip().lower()
        if name not in FILTER_FIELDS:
            raise FilterError(
                f"unknown filter field {name!r} in {token!r}; valid fields: "
                + "; ".join(f"{k}: {v}" for k, v in FILTER_FIELDS.items())
            )
        if name in ("name", "id"):
            if value.strip():
                values[name].append(value.strip())
            continue
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise FilterError(f"filter term {token!r} has no value; {name}: {FILTER_FIELDS[name]}")
        values[name].extend(parts)

    statuses = tuple(dict.fromkeys(_pick(v, FINDING_STATUSES, "status") for v in values["status"]))
    categories = tuple(dict.fromkeys(_pick(v, tuple(CATEGORIES), "category") for v in values["category"]))
    severities = tuple(dict.fromkeys(_pick(v, SEVERITIES, "severity") for v in values["severity"]))
    states = tuple(dict.fromkeys(_pick(v, REVIEW_STATES, "state") for v in values["state"]))
    ratios = [_ratio(v) for v in values["over"]]
    return QueueFilter(
        text=text.strip(),
        statuses=statuses,
        categories=categories,
        severities=severities,
        # Alternatives of a threshold: the lowest one lets the most through.
        min_ratio=min(ratios) if ratios else None,
        tiers=tuple(dict.fromkeys(values["tier"])),
        states=states,
        names=tuple(values["name"]),
        ids=tuple(values["id"]),
    )


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


def _finding_where(flt: QueueFilter, alias: str = "f") -> tuple[list[str], list[Any]]:
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
    return conds, params


def _where(flt: QueueFilter, *, findings: bool = True) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``consumer`` and their parameters (``findings=False``: leave
    out the finding conditions, when the query is driven from the findings)."""
    conds: list[str] = []
    params: list[Any] = []
    fconds, fparams = _finding_where(flt)
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
    states = _states(flt)
    if states is not None and (flt.states or states == ("open",)):
        # Stated, or implied by open statuses: then the consumer_by_state range is
        # exactly the matches' region, in severity order, from either end.
        conds.append(f"review_state IN ({','.join('?' * len(states))})")
        params.extend(states)
    for name in flt.names:
        conds.append("legal_name LIKE ? ESCAPE '\\'")
        params.append(_like(name))
    for ident in flt.ids:
        conds.append("id LIKE ? ESCAPE '\\'")
        params.append(_like(ident))
    return conds, params


def _states(flt: QueueFilter, only_open: bool = False) -> tuple[str, ...] | None:
    """The queue states a match can be in (None: any), from ``state:`` and what the
    finding conditions imply (a candidate finding makes its consumer open)."""
    allowed = set(flt.states) if flt.states else set(REVIEW_STATES)
    if flt.statuses and set(flt.statuses) <= set(OPEN_STATUSES):
        allowed &= {"open"}
    elif flt.statuses or flt.categories or flt.severities:
        allowed &= {"open", "decided"}
    if only_open:
        allowed &= {"open"}
    if allowed == set(REVIEW_STATES):
        return None
    return tuple(s for s in REVIEW_STATES if s in allowed)


def _source(flt: QueueFilter, driven: bool) -> tuple[str, list[Any], list[str], list[Any]]:
    """(FROM clause, its params, WHERE conditions, their params) for reading ``consumer``.

    ``driven``: start from the consumers that have a matching finding (a few
    thousand) instead of walking the consumer index past a million that do not:
    cheaper for counts and for reading from the far end of the order, where
    matches are sparse. CROSS JOIN keeps that join order.
    """
    fconds, fparams = _finding_where(flt, alias="finding")
    if driven and fconds:
        conds, params = _where(flt, findings=False)
        source = (f"(SELECT DISTINCT consumer_id AS matched FROM finding WHERE {' AND '.join(fconds)}) m"
                  " CROSS JOIN consumer ON consumer.id = m.matched")
        return source, fparams, conds, params
    conds, params = _where(flt)
    return "consumer", [], conds, params


# ---------------------------------------------------------------------------
# Sorts

SORTS: dict[str, str] = {
    "severity": "worst overage first",
    "overage": "mildest overage first",
    "name": "legal name A-Z",
    "status": "open, then decided, then clear; worst first within each",
}


@dataclass(frozen=True)
class _Col:
    sql: str
    desc: bool
    # An enumerated column ordered by this value list instead of by value
    # (review_state: open < decided < clear); read one value at a time.
    enum: tuple[str, ...] | None = None


_ORDERS: dict[str, tuple[_Col, ...]] = {
    # Each matches an index: consumer_by_severity, consumer_by_name, consumer_by_state.
    "severity": (_Col("worst_ratio", True), _Col("id", False)),
    "overage": (_Col("worst_ratio", False), _Col("id", True)),
    "name": (_Col("legal_name", False), _Col("id", False)),
    "status": (_Col("review_state", False, REVIEW_STATES), _Col("worst_ratio", True), _Col("id", False)),
}


@dataclass(frozen=True)
class QueueQuery:
    """What the queue shows: a filter and a sort (``reverse`` flips the order)."""

    filter: QueueFilter = field(default_factory=QueueFilter)
    sort: str = "severity"
    reverse: bool = False

    def __post_init__(self) -> None:
        if self.sort not in _ORDERS:
            raise FilterError(f"unknown sort {self.sort!r}; valid: {', '.join(SORTS)}")

    def columns(self, backwards: bool = False) -> tuple[_Col, ...]:
        """The order columns, flipped by ``reverse`` and again by ``backwards`` (reading from the end)."""
        flip = self.reverse != backwards
        cols = _ORDERS[self.sort]
        if not flip:
            return cols
        return tuple(
            _Col(c.sql, not c.desc, tuple(reversed(c.enum)) if c.enum else None) for c in cols
        )


# ---------------------------------------------------------------------------
# Rows

VERDICTS: dict[str, str] = {
    # Glyph + word so the state reads without colour (NO_COLOR, 16 colours).
    "open": "● open",
    "violation": "▲ violation",
    "decided": "✓ decided",
    "clear": "· clear",
}


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue."""

    consumer_id: str
    legal_name: str
    tier_id: str | None
    worst_ratio: float
    open_findings: int
    review_state: str
    verdict: str          # glyph + word, e.g. "● open", "▲ violation"


_SELECT = (
    "SELECT id, legal_name, tier_id, worst_ratio, open_findings, review_state, "
    "EXISTS (SELECT 1 FROM finding f WHERE f.consumer_id = consumer.id "
    "AND f.status IN ('confirmed', 'audit_requested')) AS violation"
)
Key = tuple[Any, ...]


def _row(r: Sequence[Any]) -> QueueRow:
    state = r[5]
    verdict = VERDICTS["violation"] if state != "open" and r[6] else VERDICTS.get(state, state)
    return QueueRow(r[0], r[1], r[2], float(r[3]), int(r[4]), state, verdict)


def _key(cols: Sequence[_Col], r: Sequence[Any]) -> Key:
    by_name = {"id": r[0], "legal_name": r[1], "worst_ratio": r[3], "review_state": r[5]}
    return tuple(by_name[c.sql] for c in cols)


# ---------------------------------------------------------------------------
# Reading in order: a position in the order is "after key K" (or the start);
# the rows after K split into index ranges read one after another.


def _ranges(cols: Sequence[_Col], after: Key | None,
            allowed: tuple[str, ...] | None = None) -> Iterator[tuple[list[str], list[Any], Sequence[_Col]]]:
    """(conditions, params, order columns) of the index ranges following ``after``, in order.

    After key (k1, k2, k3) come: c1 = k1 AND c2 = k2 AND c3 past k3; then
    c1 = k1 AND c2 past k2; then c1 past k1. Each is one seek in the matching
    index, where a single ``OR`` of them would scan. An enumerated column is read
    one value at a time, skipping values the filter excludes (``allowed``).
    """
    if after is None:
        if cols and cols[0].enum is not None:
            for value in cols[0].enum:
                if allowed is not None and value not in allowed:
                    continue
                yield [f"{cols[0].sql} = ?"], [value], cols[1:]
        else:
            yield [], [], cols
        return
    lead_excluded = bool(cols and cols[0].enum is not None and allowed is not None and after[0] not in allowed)
    for j in range(len(cols) - 1, -1, -1):
        if j >= 1 and lead_excluded:
            continue   # ranges inside a segment the filter excludes are empty
        conds = [f"{c.sql} = ?" for c in cols[:j]]
        params = list(after[:j])
        col = cols[j]
        if col.enum is not None:
            for value in col.enum[col.enum.index(after[j]) + 1:]:
                if allowed is not None and value not in allowed:
                    continue
                yield conds + [f"{col.sql} = ?"], params + [value], cols[j + 1:]
        else:
            yield conds + [f"{col.sql} {'<' if col.desc else '>'} ?"], params + [after[j]], cols[j:]


def _order_by(cols: Sequence[_Col]) -> str:
    return ", ".join(f"{c.sql} {'DESC' if c.desc else 'ASC'}" for c in cols) or "id"


def _read(conn: sqlite3.Connection, query: QueueQuery, after: Key | None, skip: int, limit: int,
          backwards: bool = False, only_open: bool = False) -> list[Sequence[Any]]:
    """``limit`` raw rows after ``skip`` matching rows past ``after``, in (possibly
    reversed) order; ``only_open``: only consumers with something to decide."""
    cols = query.columns(backwards)
    flt = query.filter
    allowed = _states(flt, only_open)
    if only_open:
        # Open consumers are few: read them from consumer_by_state instead of
        # walking the order past every decided or clear consumer. That index is in
        # severity order; for the name order it needs a sort, so a short walk of
        # the order comes first (open consumers are spread through it).
        if query.sort == "name":
            near = _walk_for_open(conn, query, after, backwards)
            if near is not None:
                return near[:limit]
        source, sparams = "consumer INDEXED BY consumer_by_state", []
        fconds, fparams = _where(flt)
        fconds = fconds + ["review_state = 'open'"]
    else:
        # From the far end, sparse finding matches are cheaper to reach from the
        # findings, unless they are all open (consumer_by_state holds exactly those).
        driven = backwards and allowed != ("open",)
        source, sparams, fconds, fparams = _source(flt, driven=driven)
    out: list[Sequence[Any]] = []
    for conds, params, order in _ranges(cols, after, allowed):
        if len(out) >= limit:
            break
        where = " AND ".join(conds + fconds) or "1"
        sql = f"{_SELECT} FROM {source} WHERE {where} ORDER BY {_order_by(order)} LIMIT ? OFFSET ?"
        rows = conn.execute(sql, sparams + params + fparams + [limit - len(out), skip]).fetchall()
        if rows:
            skip = 0
            out.extend(rows)
        elif skip:
            (n,) = conn.execute(f"SELECT count(*) FROM {source} WHERE {where}", sparams + params + fparams).fetchone()
            skip = max(0, skip - n)
    return out


_WALK = 2_000       # rows walked in order before asking the state index
_BETWEEN = 20_000   # rows counted between two offsets before counting from the top


def _walk_for_open(conn: sqlite3.Connection, query: QueueQuery, after: Key | None,
                   backwards: bool) -> list[Sequence[Any]] | None:
    """The next open row within ``_WALK`` rows of ``after`` in order, ``[]`` if the
    order ends first, ``None`` if the walk found none (look further another way)."""
    cols = query.columns(backwards)
    conds, params = _where(query.filter)
    budget = _WALK
    for rconds, rparams, order in _ranges(cols, after, _states(query.filter)):
        where = " AND ".join(rconds + conds) or "1"
        rows = conn.execute(
            f"SELECT * FROM ({_SELECT} FROM consumer WHERE {where} ORDER BY {_order_by(order)} LIMIT ?)"
            f" WHERE review_state = 'open' ORDER BY {_order_by(order)} LIMIT 1", rparams + params + [budget]).fetchall()
        if rows:
            return rows
        (seen,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM consumer WHERE {where} LIMIT ?)",
                               rparams + params + [budget]).fetchone()
        budget -= seen
        if budget <= 0:
            return None
    return []


# ---------------------------------------------------------------------------
# Per-connection memory: anchors (offset -> key) and counts, valid while the
# database does not change (data_version: other connections' commits;
# total_changes: this connection's own).

_MAX_ANCHORS = 20_000
_MAX_QUERIES = 8    # filters / sorts remembered per connection
_NEAR = 5_000       # skipping this many rows with OFFSET is cheaper than counting


class _Anchors:
    """Offsets whose row key is known, searchable by nearest offset."""

    def __init__(self) -> None:
        self.keys: dict[int, Key] = {}
        self.offsets: list[int] = []      # sorted

    def add(self, offset: int, key: Key) -> None:
        if len(self.offsets) >= _MAX_ANCHORS:
            self.keys.clear()
            self.offsets.clear()
        if offset not in self.keys:
            bisect.insort(self.offsets, offset)
        self.keys[offset] = key

    def before(self, offset: int) -> tuple[int, Key | None]:
        """The nearest anchor strictly before ``offset``, or (-1, None)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i == 0:
            return -1, None
        at = self.offsets[i - 1]
        return at, self.keys[at]

    def at_or_after(self, offset: int, limit: int) -> tuple[int, Key | None]:
        """The nearest anchor at or after ``offset`` (below ``limit``), or (limit, None)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i == len(self.offsets) or self.offsets[i] >= limit:
            return limit, None
        at = self.offsets[i]
        return at, self.keys[at]


class _Memory:
    def __init__(self) -> None:
        self.version: tuple[int, int] | None = None
        self.counts: dict[QueueQuery, int] = {}
        self.anchors: OrderedDict[QueueQuery, _Anchors] = OrderedDict()

    def anchors_for(self, query: QueueQuery) -> _Anchors:
        found = self.anchors.get(query)
        if found is None:
            found = self.anchors[query] = _Anchors()
            while len(self.anchors) > _MAX_QUERIES:
                old, _ = self.anchors.popitem(last=False)
                self.counts.pop(old, None)
        else:
            self.anchors.move_to_end(query)
        return found


# sqlite3.Connection cannot be weakly referenced: keep the last few connections'
# memories, holding the connection so its id cannot be reused by another one.
_MAX_CONNECTIONS = 16
_memories: "OrderedDict[int, tuple[sqlite3.Connection, _Memory]]" = OrderedDict()


def _memory(conn: sqlite3.Connection) -> _Memory:
    entry = _memories.get(id(conn))
    if entry is None or entry[0] is not conn:
        entry = _memories[id(conn)] = (conn, _Memory())
        while len(_memories) > _MAX_CONNECTIONS:
            _memories.popitem(last=False)
    else:
        _memories.move_to_end(id(conn))
    mem = entry[1]
    version = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
    if mem.version != version:
        mem.version = version
        mem.counts.clear()
        mem.anchors.clear()
    return mem


def _remember(mem: _Memory, query: QueueQuery, offset: int, key: Key) -> None:
    mem.anchors_for(query).add(offset, key)


# ---------------------------------------------------------------------------
# Public API


def count(conn: sqlite3.Connection, query: QueueQuery) -> int:
    """How many consumers the query shows (remembered until the database changes)."""
    mem = _memory(conn)
    if query in mem.counts:
        return mem.counts[query]
    flt = query.filter
    if flt.is_empty:
        (n,) = conn.execute("SELECT count(*) FROM consumer").fetchone()
    elif not (flt.min_ratio is not None or flt.tiers or flt.states or flt.names or flt.ids):
        # Only finding conditions: count distinct consumers in the finding index.
        fconds, fparams = _finding_where(flt, alias="finding")
        (n,) = conn.execute(f"SELECT count(DISTINCT consumer_id) FROM finding WHERE {' AND '.join(fconds)}",
                            fparams).fetchone()
    else:
        source, sparams, conds, params = _source(flt, driven=True)
        where = " AND ".join(conds) or "1"
        (n,) = conn.execute(f"SELECT count(*) FROM {source} WHERE {where}", sparams + params).fetchone()
    mem.anchors_for(query)     # so the count is forgotten with the query's anchors
    mem.counts[query] = int(n)
    return int(n)


def page(conn: sqlite3.Connection, query: QueueQuery, offset: int, limit: int) -> list[QueueRow]:
    """Up to ``limit`` rows starting at ``offset`` (0-based) in the query's order."""
    if limit <= 0 or offset < 0:
        return []
    mem = _memory(conn)
    anchors = mem.anchors_for(query)
    cols = query.columns()
    if offset in anchors.keys:
        # The row at ``offset`` is known (every order ends with the id): read it, then on.
        key = anchors.keys[offset]
        first = [_raw_of(conn, key[-1])]
        rows = first + (_read(conn, query, key, 0, limit - 1) if limit > 1 else [])
        _remember(mem, query, offset + len(rows) - 1, _key(cols, rows[-1]))
        return [_row(r) for r in rows]
    # Nearest offset already seen before ``offset`` (an anchor is the key of the
    # row AT that offset, so reading resumes after it).
    start, after = anchors.before(offset)
    skip = offset - start - 1
    if skip > _NEAR:
        total = count(conn, query)
        if offset >= total:
            return []
        end = min(total, offset + limit)
        # Read from the end when that is nearer: the rows [offset, end) are the
        # first (end - offset) rows after skipping (total - end) from the back.
        back_start, back_after = anchors.at_or_after(end, total)
        back_skip = back_start - end
        if back_skip < skip:
            rows = _read(conn, query, back_after, back_skip, end - offset, backwards=True)
            rows.reverse()
            result = [_row(r) for r in rows]
            if rows:
                _remember(mem, query, offset, _key(cols, rows[0]))
                _remember(mem, query, offset + len(rows) - 1, _key(cols, rows[-1]))
            return result
    rows = _read(conn, query, after, skip, limit)
    if rows:
        _remember(mem, query, offset, _key(cols, rows[0]))
        _remember(mem, query, offset + len(rows) - 1, _key(cols, rows[-1]))
    return [_row(r) for r in rows]


def position_of(conn: sqlite3.Connection, query: QueueQuery, consumer_id: str) -> int | None:
    """The offset of ``consumer_id`` in the query's order, or ``None`` if the filter hides it."""
    conds, params = _where(query.filter)
    found = conn.execute(
        f"{_SELECT} FROM consumer WHERE {' AND '.join(['id = ?'] + conds)}", [consumer_id] + params
    ).fetchone()
    if found is None:
        return None
    # Rows before it = rows after it in the reversed order.
    back = query.columns(backwards=True)
    source, sparams, conds, params = _source(query.filter, driven=True)
    before = 0
    for rconds, rparams, _order in _ranges(back, _key(back, found), _states(query.filter)):
        where = " AND ".join(rconds + conds) or "1"
        (n,) = conn.execute(f"SELECT count(*) FROM {source} WHERE {where}", sparams + rparams + params).fetchone()
        before += n
    _remember(_memory(conn), query, before, _key(query.columns(), found))
    return before


def next_unreviewed(conn: sqlite3.Connection, query: QueueQuery, from_offset: int, direction: int = 1) -> int | None:
    """Offset of the nearest consumer after (``direction=1``) or before (``-1``)
    ``from_offset`` that has findings waiting for a decision; ``None`` if none.

    ``from_offset=-1`` searches from the start; an offset past the end searches
    backwards from the end.
    """
    backwards = direction < 0
    after: Key | None = None
    if from_offset >= 0:
        here = page(conn, query, from_offset, 1)
        if here:
            after = _key(query.columns(), _raw_of(conn, here[0].consumer_id))
        elif not backwards:
            return None
    elif backwards:
        return None
    rows = _read(conn, query, after, 0, 1, backwards=backwards, only_open=True)
    if not rows:
        return None
    if after is None:
        return position_of(conn, query, rows[0][0])
    # Count only the rows between here and there (the jump), not all before it.
    between = _count_between(conn, query, after, _key(query.columns(), rows[0]), backwards)
    if between is None:
        return position_of(conn, query, rows[0][0])
    return from_offset - between - 1 if backwards else from_offset + between + 1


def _before(cols: Sequence[_Col], key: Key) -> tuple[str, list[Any]]:
    """A condition true for rows strictly before ``key`` in the order of ``cols``
    (not index-friendly: callers bound the scan with ranges)."""
    terms: list[str] = []
    params: list[Any] = []
    for j, col in enumerate(cols):
        prefix = [f"{c.sql} = ?" for c in cols[:j]]
        if col.enum is not None:
            earlier = col.enum[:col.enum.index(key[j])]
            if not earlier:
                continue
            cond = f"{col.sql} IN ({','.join('?' * len(earlier))})"
            values: list[Any] = list(earlier)
        else:
            cond = f"{col.sql} {'>' if col.desc else '<'} ?"
            values = [key[j]]
        terms.append("(" + " AND ".join(prefix + [cond]) + ")")
        params.extend(list(key[:j]) + values)
    return ("(" + " OR ".join(terms) + ")" if terms else "0"), params


def _count_between(conn: sqlite3.Connection, query: QueueQuery, lo: Key, hi: Key,
                   backwards: bool) -> int | None:
    """Matching rows strictly between keys ``lo`` and ``hi`` (``lo`` first in the
    direction of travel); the scan covers only the rows between them and stops
    past ``_BETWEEN`` (``None``: a long jump, count another way)."""
    cap = _BETWEEN
    cols = query.columns(backwards)
    conds, params = _where(query.filter)
    before, bparams = _before(cols, hi)
    lead = cols[0]
    if lead.enum is not None:
        upto = lead.enum[:lead.enum.index(hi[0]) + 1]
        bound, bound_params = f"{lead.sql} IN ({','.join('?' * len(upto))})", list(upto)
    else:
        bound, bound_params = f"{lead.sql} {'>=' if lead.desc else '<='} ?", [hi[0]]
    total = 0
    for rconds, rparams, _order in _ranges(cols, lo, _states(query.filter)):
        where = " AND ".join(rconds + [bound, before] + conds)
        (n,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM consumer WHERE {where} LIMIT ?)",
                            rparams + bound_params + bparams + params + [cap - total + 1]).fetchone()
        total += n
        if total > cap:
            return None
    return total


def _raw_of(conn: sqlite3.Connection, consumer_id: str) -> Sequence[Any]:
    return conn.execute(f"{_SELECT} FROM consumer WHERE id = ?", (consumer_id,)).fetchone()
