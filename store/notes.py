"""Audit-request notes: drafted from a Jinja2 template, edited by the reviewer.

A note cites the consumer's confirmed findings and states what was observed
("accessed the API more than 780 million times ... in 2022"), which provisions
that breaks, what the consumer must report and by when, and an evidence appendix
that ties every figure to the sync runs and the SHA-256 of the responses it was
summed from.

Templates: the built-in ``store/templates/audit_request.md.j2`` (and the partials
it includes) can be overridden by a file of the same name in
``NotesConfig.template_dir``. Every ``{{ value }}`` is Markdown-escaped on output
(a hostile legal name cannot inject links, markup or tables); a template that
means to emit Markdown from a value says so with ``|raw``. Undefined variables
are errors (``StrictUndefined``). The template variables are listed in
``docs`` of :func:`note_context`.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
import sqlite3
import traceback
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jinja2

from store.clock import Clock, day, iso, system_clock
from store.config import NotesConfig
from store.db import transaction
from store.domain import CATEGORIES, METRIC_CALLS, METRIC_RECORDS, NOTE_STATUSES
from store.errors import ConflictError, DecisionRefused, StoreError, TemplateError, WardenError
from store.decision_log import record_decision
from store.text import clean_text

TEMPLATE = "audit_request.md.j2"
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"

# Past this many distinct response pages the appendix gives a digest over the
# page list instead of listing every page; the JSON case bundle always lists all.
APPENDIX_PAGE_LIMIT = 60

# Which note status may follow which. 'exported' is final: a follow-up is a new note.
NOTE_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"ready", "exported"}),
    "ready": frozenset({"draft", "exported"}),
    "exported": frozenset(),
}

# Findings about how much was used: they set the period of "observed activity".
USAGE_CATEGORIES = frozenset({"volume_cap", "rate_limit", "circumvention", "endpoint_outside", "redistribution"})

_MONTHS = ("", "January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")


# --- figures a letter can defend -------------------------------------------------

_UNITS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"))


def more_than(n: int) -> str:
    """The largest round figure strictly below ``n``, in words: "more than X" stays true.

    Round means two significant digits: 790,123,456 -> "790 million",
    26,412,000,000 -> "26 billion", exactly 780,000,000 -> "770 million",
    1,000,000,000 -> "990 million", 12,345 -> "12,000", 100 -> "99".
    ``n`` must be at least 1 (nothing is "more than" a figure for zero usage).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"more_than() needs an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"more_than({n}): there is no round figure below {n} worth stating")
    below = n - 1                      # the largest integer strictly less than n
    digits = len(str(below))
    step = 10 ** max(digits - 2, 0)
    rounded = below // step * step     # truncate to two significant digits
    for unit, word in _UNITS:
        if rounded >= unit:
            whole, rest = divmod(rounded, unit)
            if rest:
                # Two significant digits and whole < 10 here: exactly one decimal.
                return f"{whole:,}.{rest * 10 // unit} {word}"
            return f"{whole:,} {word}"
    return f"{rounded:,}"


def num(n: int | None) -> str:
    """An exact figure with thousands separators ("790,123,456")."""
    return "" if n is None else f"{n:,}"


def human_date(d: date | str) -> str:
    """``27 November 2026`` (English, locale-independent so output is deterministic)."""
    if isinstance(d, str):
        d = date.fromisoformat(d)
    return f"{d.day} {_MONTHS[d.month]} {d.year}"


# --- Markdown --------------------------------------------------------------------


class Markdown(str):
    """Text that is already Markdown: the note templates output it unescaped."""


_MD_ALWAYS = frozenset("\\`*_[]<>|~")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# What starts a block at the start of a line: a quote; a heading, list item or
# ordered item when followed by a space (or nothing); a rule or setext underline.
_MD_LINE_START = re.compile(r"^(\s*)(?:(>|#(?=#{0,5}(?:\s|$))|[+-](?=\s|$)|[-=](?=[\s=-]*$))|(\d{1,9})([.)])(?=\s|$))")


def md_escape(value: object) -> Markdown:
    """``value`` as Markdown text that renders literally, on one line.

    Backslash-escapes what could start emphasis, code, links, images, raw HTML,
    tables or strike-through anywhere, entity references, and what would start a
    heading, quote, list or rule at the start of a line.
    """
    text = clean_text(value)
    escaped = "".join("\\" + ch if ch in _MD_ALWAYS else ch for ch in text)
    escaped = _MD_ENTITY.sub(r"\\&", escaped)
    match = _MD_LINE_START.match(escaped)
    if match:
        lead, marker, digits, dot = match.groups()
        if marker:
            escaped = f"{lead}\\{marker}{escaped[match.end():]}"
        else:
            escaped = f"{lead}{digits}\\{dot}{escaped[match.end():]}"
    return Markdown(escaped)


_MD_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain_text(markdown: str) -> str:
    """The Markdown source as plain text: backslash escapes removed (CommonMark's meaning)."""
    return _MD_UNESCAPE.sub(r"\1", markdown)


# --- the note --------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One audit-request note (a row of ``note`` and the findings it cites)."""

    id: int
    consumer_id: str
    template: str
    subject: str
    body: str
    status: str
    due_date: str | None
    created_at: str
    updated_at: str
    version: int
    finding_ids: tuple[int, ...]

    @property
    def cites_confirmed(self) -> bool:
        """False when the note was drafted with no confirmed finding to cite."""
        return bool(self.finding_ids)

    @property
    def warning(self) -> str | None:
        """What a reviewer must know before sending, or None."""
        if not self.finding_ids:
            return "This note cites no confirmed finding: confirm the violations first, then re-draft."
        return None


_NOTE_COLUMNS = "id, consumer_id, template, subject, body, status, due_date, created_at, updated_at, version"


def _note_from_row(conn: sqlite3.Connection, row: sqlite3.Row | tuple) -> Note:
    ids = tuple(r[0] for r in conn.execute(
        "SELECT finding_id FROM note_finding WHERE note_id = ? ORDER BY finding_id", (row[0],)))
    return Note(*tuple(row), finding_ids=ids)  # type: ignore[misc]


def get_note(conn: sqlite3.Connection, note_id: int) -> Note:
    """The note with this id (StoreError if there is none)."""
    row = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    return _note_from_row(conn, row)


def note_for(conn: sqlite3.Connection, consumer_id: str) -> Note | None:
    """The consumer's latest note (any status), or None if none was drafted."""
    row = conn.execute(
        f"SELECT {_NOTE_COLUMNS} FROM note WHERE consumer_id = ? ORDER BY id DESC LIMIT 1",
        (consumer_id,),
    ).fetchone()
    return None if row is None else _note_from_row(conn, row)


def notes_for(conn: sqlite3.Connection, *, consumer_id: str | None = None,
              status: str | None = None) -> list[Note]:
    """Notes to export, oldest first.

    With ``consumer_id`` and no ``status``: that consumer's latest note. With a
    ``status``: every note in it (of that consumer, if given). With neither: every
    note that is ready or exported (drafts are only exported when asked for).
    """
    if status is not None and status not in NOTE_STATUSES:
        raise StoreError(f"unknown note status {status!r} (one of {', '.join(NOTE_STATUSES)})")
    if consumer_id is not None and status is None:
        note = note_for(conn, consumer_id)
        return [] if note is None else [note]
    clauses, params = [], []
    if consumer_id is not None:
        clauses.append("consumer_id = ?")
        params.append(consumer_id)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    else:
        clauses.append("status IN ('ready', 'exported')")
    rows = conn.execute(
        f"SELECT {_NOTE_COLUMNS} FROM note WHERE {' AND '.join(clauses)} ORDER BY id", params
    ).fetchall()
    return [_note_from_row(conn, row) for row in rows]


# --- the case a note is drafted from ---------------------------------------------


@dataclass(frozen=True)
class Period:
    """The span the observed activity covers: whole UTC months."""

    start: date
    end: date

    @property
    def label(self) -> str:
        """"2022", "March 2022", "January–March 2022", "November 2021–February 2022"."""
        s, e = self.start, self.end
        if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
            return str(s.year) if s.year == e.year else f"{s.year}–{e.year}"
        if (s.year, s.month) == (e.year, e.month):
            return f"{_MONTHS[s.month]} {s.year}"
        if s.year == e.year:
            return f"{_MONTHS[s.month]}–{_MONTHS[e.month]} {s.year}"
        return f"{_MONTHS[s.month]} {s.year}–{_MONTHS[e.month]} {e.year}"

    @property
    def phrase(self) -> str:
        """The period in a sentence: "in 2022", "from January to March 2022"."""
        s, e = self.start, self.end
        if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
            return f"in {s.year}" if s.year == e.year else f"from {s.year} to {e.year}"
        if (s.year, s.month) == (e.year, e.month):
            return f"in {_MONTHS[s.month]} {s.year}"
        if s.year == e.year:
            return f"from {_MONTHS[s.month]} to {_MONTHS[e.month]} {s.year}"
        return f"from {_MONTHS[s.month]} {s.year} to {_MONTHS[e.month]} {e.year}"


def span_phrase(start: str, end: str) -> str:
    """A finding's own period in a sentence: "in 2022", "on 4 March 2022", "from 1 to 9 March 2022"."""
    s, e = date.fromisoformat(start), date.fromisoformat(end)
    if s == e:
        return f"on {human_date(s)}"
    if _is_whole_months(s, e):
        return Period(s, e).phrase
    return f"from {human_date(s)} to {human_date(e)}"


def _is_whole_months(start: date, end: date) -> bool:
    """Whether ``start``..``end`` begins on a month's first day and ends on a month's last."""
    return start.day == 1 and end.day == calendar.monthrange(end.year, end.month)[1]


def _whole_months(start: date, end: date) -> Period:
    last = calendar.monthrange(end.year, end.month)[1]
    return Period(start.replace(day=1), end.replace(day=last))


def _rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, tuple(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def load_consumer(conn: sqlite3.Connection, consumer_id: str) -> dict[str, Any]:
    """The consumer row (without the queue summary), its tier with limits and clauses, and its apps."""
    consumer = _rows(conn, """
        SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,
               government_end_users, origin
        FROM consumer WHERE id = ?""", (consumer_id,))
    if not consumer:
        raise StoreError(f"no consumer {consumer_id!r} in the database")
    result = consumer[0]
    tier = None
    if result["tier_id"] is not None:
        tiers = _rows(conn, "SELECT id, name, agreement_version, allowed_endpoints FROM tier WHERE id = ?",
                      (result["tier_id"],))
        if tiers:
            tier = tiers[0]
            tier["allowed_endpoints"] = (None if tier["allowed_endpoints"] is None
                                         else json.loads(tier["allowed_endpoints"]))
            tier["limits"] = _rows(conn, """
                SELECT metric, period, max_value FROM tier_limit WHERE tier_id = ?
                ORDER BY metric, CASE period WHEN 'day' THEN 0 WHEN 'month' THEN 1 ELSE 2 END""",
                (tier["id"],))
            tier["clauses"] = {r["category"]: r["clause"] for r in _rows(
                conn, "SELECT category, clause FROM tier_clause WHERE tier_id = ? ORDER BY category",
                (tier["id"],))}
    result["tier"] = tier
    result["apps"] = _rows(conn, """
        SELECT source, app_id, name, declared_use_case FROM app WHERE consumer_id = ?
        ORDER BY source, app_id""", (consumer_id,))
    return result


def load_findings(conn: sqlite3.Connection, finding_ids: Iterable[int]) -> list[dict[str, Any]]:
    """These findings, in id order, with ``figures`` parsed."""
    ids = sorted(set(finding_ids))
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = _rows(conn, f"""
        SELECT id, consumer_id, category, period, period_start, period_end, severity, status,
               rule_id, metric, actual, limit_value, ratio, figures, evidence, detected_at,
               updated_at, version
        FROM finding WHERE id IN ({marks}) ORDER BY id""", ids)
    for row in rows:
        try:
            row["figures"] = json.loads(row["figures"] or "{}")
        except ValueError:
            row["figures"] = {"unparsed": row["figures"]}
    return rows


def observed_period(conn: sqlite3.Connection, consumer_id: str, findings: list[dict[str, Any]],
                    today: date) -> Period:
    """The whole months the cited usage findings cover (else all cited findings); without
    findings, the calendar year of the consumer's latest usage (or the year before ``today``).

    A missing use case spans every day an app was used, which is not the period
    of the overage the letter is about: it only sets the period on its own.
    """
    usage = [f for f in findings if f["category"] in USAGE_CATEGORIES] or findings
    if usage:
        start = min(date.fromisoformat(f["period_start"]) for f in usage)
        end = max(date.fromisoformat(f["period_end"]) for f in usage)
        return _whole_months(start, end)
    row = conn.execute("""
        SELECT MAX(u.day) FROM app a JOIN usage u ON u.source = a.source AND u.app_id = a.app_id
        WHERE a.consumer_id = ?""", (consumer_id,)).fetchone()
    year = date.fromisoformat(row[0]).year if row and row[0] else today.year - 1
    return Period(date(year, 1, 1), date(year, 12, 31))


def calendar_segments(span: Period) -> list[Period]:
    """``span`` cut at year boundaries, newest first: Oct 2021..Dec 2022 -> [2022, Oct–Dec 2021].

    The letter states its headline figures for one calendar year (the newest)
    and gives the earlier years' figures after it.
    """
    segments = []
    for year in range(span.end.year, span.start.year - 1, -1):
        segments.append(Period(max(span.start, date(year, 1, 1)), min(span.end, date(year, 12, 31))))
    return segments


def collect_evidence(conn: sqlite3.Connection, consumer_id: str, periods: Period | list[Period],
                     metrics: Iterable[str] = (METRIC_CALLS, METRIC_RECORDS)) -> dict[str, Any]:
    """Every figure the note states, with the runs and response pages it was summed from.

    Returns a JSON-able dict: ``figures`` (per period, per app and metric, then
    the period's totals: value, number of daily figures, run ids, page ids),
    ``period`` (the whole span) and ``periods``, ``runs``, ``pages`` (id,
    run, chain, URL, fetch time, HTTP status, body SHA-256, bytes) and
    ``pages_digest`` = SHA-256 of the lines ``"<page id> <body sha256>\\n"`` of
    every page, in page id order, so a long page list can be checked in one line,
    and ``revised_figures``: how many daily figures of the period the source
    revised or withdrew after first reporting them (``usage_change``).
    """
    segments = periods if isinstance(periods, list) else [periods]
    metric_list = sorted(set(metrics))
    marks = ",".join("?" * len(metric_list))
    figures: list[dict[str, Any]] = []
    run_ids: set[int] = set()
    page_ids: set[int] = set()
    for period in segments:
        rows = conn.execute(f"""
            SELECT a.source, a.app_id, u.metric, u.run_id, u.page_id, COUNT(*), SUM(u.value)
            FROM app a JOIN usage u ON u.source = a.source AND u.app_id = a.app_id
            WHERE a.consumer_id = ? AND u.day BETWEEN ? AND ? AND u.metric IN ({marks})
            GROUP BY a.source, a.app_id, u.metric, u.run_id, u.page_id""",
            (consumer_id, period.start.isoformat(), period.end.isoformat(), *metric_list)).fetchall()
        per: dict[tuple[str, str, str], dict[str, Any]] = {}
        totals: dict[str, dict[str, Any]] = {}
        for source, app_id, metric, run_id, page_id, count, value in rows:
            for key, bucket in (((source, app_id, metric), per), (metric, totals)):
                entry = bucket.setdefault(key, {"value": 0, "daily_figures": 0, "runs": set(), "pages": set()})  # type: ignore[index]
                entry["value"] += value
                entry["daily_figures"] += count
                entry["runs"].add(run_id)
                entry["pages"].add(page_id)
                run_ids.add(run_id)
                page_ids.add(page_id)
        span = {"start": period.start.isoformat(), "end": period.end.isoformat()}
        for (source, app_id, metric), entry in sorted(per.items()):
            figures.append({"period": span, "source": source, "app_id": app_id, "metric": metric, **_frozen(entry)})
        for metric, entry in sorted(totals.items()):
            figures.append({"period": span, "source": None, "app_id": None, "metric": metric, **_frozen(entry)})
    whole = Period(min(p.start for p in segments), max(p.end for p in segments))
    runs = _by_ids(conn, "SELECT id, source, started_at, finished_at, status FROM sync_run", sorted(run_ids))
    pages = _by_ids(conn, """SELECT id, run_id, chain, url, fetched_at, http_status, body_sha256, body_bytes
                             FROM sync_page""", sorted(page_ids))
    digest = hashlib.sha256("".join(f"{p['id']} {p['body_sha256']}\n" for p in pages).encode()).hexdigest()
    # Figures the source revised or withdrew after first reporting them: the letter says so.
    revised = conn.execute(f"""
        SELECT COUNT(*) FROM usage_change c JOIN app a ON a.source = c.source AND a.app_id = c.app_id
        WHERE a.consumer_id = ? AND c.day BETWEEN ? AND ? AND c.metric IN ({marks})""",
        (consumer_id, whole.start.isoformat(), whole.end.isoformat(), *metric_list)).fetchone()[0]
    return {
        "revised_figures": revised,
        "period": {"start": whole.start.isoformat(), "end": whole.end.isoformat()},
        "periods": [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in segments],
        "metrics": metric_list,
        "figures": figures,
        "runs": runs,
        "pages": pages,
        "pages_digest": digest,
    }


def _frozen(entry: dict[str, Any]) -> dict[str, Any]:
    return {"value": entry["value"], "daily_figures": entry["daily_figures"],
            "runs": sorted(entry["runs"]), "pages": sorted(entry["pages"])}


def _by_ids(conn: sqlite3.Connection, select: str, ids: list[int]) -> list[dict[str, Any]]:
    """Rows by id, in id order, in chunks that stay under SQLite's variable limit."""
    out: list[dict[str, Any]] = []
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        out.extend(_rows(conn, f"{select} WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk))
    return out


def id_ranges(ids: Iterable[int]) -> str:
    """``1, 2, 3, 7, 9, 10`` -> ``"1–3, 7, 9–10"``: a compact, exact list of ids."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}–{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


_METRIC_WORDS = {METRIC_CALLS: "API calls", METRIC_RECORDS: "records retrieved"}


def metric_words(metric: str | None) -> str:
    """"API calls", "records retrieved", or the metric id for others."""
    return _METRIC_WORDS.get(metric or "", metric or "")


def finding_sentence(f: dict[str, Any]) -> str:
    """What a finding found, as a plain-text sentence fragment for the letter.

    Reads the figures store.rules writes (limit period, worst day, days over,
    apps, endpoints) so the sentence says exactly what the numbers are: a yearly
    total, a worst day, a count of apps.
    """
    figs = f["figures"] if isinstance(f["figures"], dict) else {}
    limit = figs.get("limit") if isinstance(figs.get("limit"), dict) else {}
    per = f" per {limit['period']}" if limit.get("period") else ""
    span = span_phrase(f["period_start"], f["period_end"])
    what = metric_words(f["metric"])
    ratio = f" ({f['ratio']:.2f} times the limit)" if f["ratio"] else ""
    actual, cap, category = f["actual"], f["limit_value"], f["category"]
    if category == "rate_limit" and actual is not None and cap is not None:
        worst = (figs.get("worst_day") or {}).get("day")
        days = figs.get("days_over") or []
        text = f"as many as {num(actual)} {what} on one UTC day"
        text += f" ({human_date(worst)})" if worst else ""
        text += f", against a limit of {num(cap)} per day{ratio}"
        if days:
            return text + f"; the daily limit was exceeded on {len(days)} day(s) {span}"
        return text + f", {span}"
    if category == "circumvention" and actual is not None and cap is not None:
        apps = figs.get("apps_with_usage") or len(figs.get("apps") or []) or "several"
        if limit.get("period") == "day":
            return (f"as many as {num(actual)} {what} on one UTC day {span}, spread over {apps} applications "
                    f"each under the limit of {num(cap)} per day that binds the agreement as a whole{ratio}")
        return (f"{num(actual)} {what} {span}, spread over {apps} applications each under the limit of "
                f"{num(cap)}{per} that binds the agreement as a whole{ratio}")
    if category == "missing_use_case" and actual is not None:
        total = figs.get("apps_with_usage")
        of = f" of the {total}" if total else ""
        return f"{actual}{of} applications that used the API {span} declared no use case"
    if category == "endpoint_outside" and actual is not None:
        endpoints = [str(e.get("endpoint")) for e in figs.get("endpoints") or [] if isinstance(e, dict)]
        named = ", ".join(endpoints[:5]) + (f" and {len(endpoints) - 5} more" if len(endpoints) > 5 else "")
        return f"{num(actual)} API calls {span} to endpoints outside the agreement" + (f" ({named})" if named else "")
    if actual is not None and cap is not None:
        return f"{num(actual)} {what} {span}, against a limit of {num(cap)}{per}{ratio}"
    if actual is not None and f["metric"]:
        return f"{num(actual)} {what} {span}"
    return f"identified {span}"


def _finding_columns(f: dict[str, Any]) -> dict[str, str]:
    """Short cells for a table of many findings: period, what was measured, the limit, the ratio."""
    figs = f["figures"] if isinstance(f["figures"], dict) else {}
    limit = figs.get("limit") if isinstance(figs.get("limit"), dict) else {}
    s, e = date.fromisoformat(f["period_start"]), date.fromisoformat(f["period_end"])
    period_label = Period(s, e).label if _is_whole_months(s, e) else (human_date(s) if s == e else f"{human_date(s)} – {human_date(e)}")
    measured = ""
    if f["actual"] is not None:
        if f["category"] == "missing_use_case":
            total = figs.get("apps_with_usage")
            measured = f"{f['actual']}{f' of {total}' if total else ''} apps without a declared use case"
        elif f["category"] in ("rate_limit",) or limit.get("period") == "day":
            worst = (figs.get("worst_day") or {}).get("day")
            measured = f"{num(f['actual'])} {metric_words(f['metric'])} on the worst day" + (
                f" ({human_date(worst)})" if worst else "")
        else:
            measured = f"{num(f['actual'])} {metric_words(f['metric'])}".strip()
    cap = f"{num(f['limit_value'])}" + (f" per {limit['period']}" if limit.get("period") else "") \
        if f["limit_value"] is not None else ""
    return {"period_label": period_label, "measured": measured, "limit_text": cap,
            "ratio_text": f"{f['ratio']:.2f}×" if f["ratio"] else ""}


def _finding_context(f: dict[str, Any], tier: dict[str, Any] | None) -> dict[str, Any]:
    clause = (tier or {}).get("clauses", {}).get(f["category"])
    return {
        **_finding_columns(f),
        "id": f["id"], "category": f["category"], "category_label": CATEGORIES.get(f["category"], f["category"]),
        "severity": f["severity"], "status": f["status"], "period": f["period"],
        "period_start": f["period_start"], "period_end": f["period_end"],
        "metric": f["metric"], "actual": f["actual"], "limit_value": f["limit_value"], "ratio": f["ratio"],
        "rule_id": f["rule_id"], "evidence": f["evidence"], "clause": clause, "figure": finding_sentence(f),
    }


def _provisions(cited: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cited findings grouped by category (domain order), each group with its clause."""
    order = list(CATEGORIES)
    groups: dict[str, dict[str, Any]] = {}
    for f in sorted(cited, key=lambda f: (order.index(f["category"]) if f["category"] in order else len(order),
                                          f["category"], f["period_start"], f["id"])):
        group = groups.setdefault(f["category"], {
            "category": f["category"], "category_label": f["category_label"], "clause": f["clause"], "findings": []})
        group["findings"].append(f)
    return list(groups.values())


def note_context(conn: sqlite3.Connection, consumer_id: str, finding_ids: Iterable[int], *,
                 today: date, config: NotesConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template variables for a note, and the evidence snapshot stored with it.

    Variables (every string is escaped on output unless piped through ``|raw``):
    ``today`` (human date), ``today_iso``, ``organisation``, ``sender``, ``subject``,
    ``consumer`` (id, legal_name, notice_contact, agreement_version,
    declared_use_case, government_end_users, tier: id, name, agreement_version,
    limits, clauses | None), ``apps`` (source, app_id, name, label,
    declared_use_case, calls, records: in ``period``), ``period`` (start, end,
    label, phrase: the newest calendar year of the cited usage findings),
    ``span`` (the same for all of them), ``totals`` (calls, records,
    calls_more_than, records_more_than: None when zero), ``earlier`` (the other
    calendar years of the span, newest first: period fields + totals fields),
    ``findings`` (id, category,
    category_label, severity, period, period_start, period_end, metric, actual,
    limit_value, ratio, evidence, clause | None, figure: a sentence fragment;
    for tables: period_label, measured, limit_text, ratio_text),
    ``provisions`` (the findings grouped by category: category, category_label,
    clause | None, findings),
    ``no_confirmed`` (bool), ``deadline`` (human date), ``deadline_iso``,
    ``deadline_days``, ``evidence`` (figures with label/value/daily_figures/
    runs/pages as compact id lists, runs, pages, pages_digest, list_pages: bool,
    page_count, revised_figures). Filters: ``num``, ``more_than``, ``human_date``, ``raw``,
    ``md`` (escape explicitly), ``id_ranges``, ``upper_first``.
    """
    consumer = load_consumer(conn, consumer_id)
    findings = load_findings(conn, finding_ids)
    span = observed_period(conn, consumer_id, findings, today)
    segments = calendar_segments(span)
    period = segments[0]
    metrics = {METRIC_CALLS, METRIC_RECORDS} | {f["metric"] for f in findings if f["metric"]}
    evidence = collect_evidence(conn, consumer_id, segments, metrics)

    def totals_of(segment: Period) -> dict[str, Any]:
        key = {"start": segment.start.isoformat(), "end": segment.end.isoformat()}
        total = {f["metric"]: f["value"] for f in evidence["figures"] if f["source"] is None and f["period"] == key}
        # None (no figure stored) is not 0: "missing is not zero".
        calls, records = total.get(METRIC_CALLS), total.get(METRIC_RECORDS)
        return {**_period_vars(segment), "calls": calls, "records": records,
                "calls_more_than": more_than(calls) if calls else None,
                "records_more_than": more_than(records) if records else None}

    headline = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    per_app = {(f["source"], f["app_id"], f["metric"]): f["value"] for f in evidence["figures"]
               if f["source"] is not None and f["period"] == headline}
    apps = []
    for app in consumer["apps"]:
        key = (app["source"], app["app_id"])
        apps.append({**app, "label": app["name"] or app["app_id"],
                     "calls": per_app.get((*key, METRIC_CALLS)), "records": per_app.get((*key, METRIC_RECORDS))})

    labels = {(a["source"], a["app_id"]): a["name"] or a["app_id"] for a in consumer["apps"]}
    evidence_rows = []
    for fig in evidence["figures"]:
        what = metric_words(fig["metric"])
        label = (f"{labels.get((fig['source'], fig['app_id']), fig['app_id'])} ({fig['source']}/{fig['app_id']}): {what}"
                 if fig["source"] is not None else f"All applications: {what}")
        segment = Period(date.fromisoformat(fig["period"]["start"]), date.fromisoformat(fig["period"]["end"]))
        evidence_rows.append({**fig, "label": label, "period_label": segment.label,
                              "runs_text": id_ranges(fig["runs"]), "pages_text": id_ranges(fig["pages"])})

    tier = consumer["tier"]
    cited = [_finding_context(f, tier) for f in findings]
    deadline = today + timedelta(days=config.deadline_days)
    context = {
        "today": human_date(today), "today_iso": today.isoformat(),
        "organisation": config.organisation, "sender": config.sender,
        "subject": note_subject(consumer["legal_name"], span, config),
        "consumer": consumer, "apps": apps,
        "period": _period_vars(period), "span": _period_vars(span),
        "totals": totals_of(period),
        "earlier": [totals_of(segment) for segment in segments[1:]],
        "findings": cited,
        "provisions": _provisions(cited),
        "no_confirmed": not findings,
        "deadline": human_date(deadline), "deadline_iso": deadline.isoformat(),
        "deadline_days": config.deadline_days,
        "evidence": {"figures": evidence_rows, "runs": evidence["runs"], "pages": evidence["pages"],
                     "pages_digest": evidence["pages_digest"], "page_count": len(evidence["pages"]),
                     "revised_figures": evidence["revised_figures"],
                     "list_pages": len(evidence["pages"]) <= APPENDIX_PAGE_LIMIT},
    }
    return context, evidence


def _period_vars(period: Period) -> dict[str, str]:
    return {"start": period.start.isoformat(), "end": period.end.isoformat(),
            "label": period.label, "phrase": period.phrase}


def note_subject(legal_name: str, period: Period, config: NotesConfig) -> str:
    """The note's subject line (plain text; also the .eml Subject)."""
    return clean_text(f"Audit request: {legal_name}, use of the API of {config.organisation} in {period.label}")


# --- templates -------------------------------------------------------------------


def _finalize(value: Any) -> str:
    # Autoescape for Markdown: every {{ value }} renders literally unless marked raw.
    if isinstance(value, Markdown):
        return value
    if value is None:
        return ""
    return md_escape(value)


def _environment(template_dir: str | None, markdown: bool) -> jinja2.Environment:
    """The (cached) environment for the templates as they are now in ``template_dir``.

    The cache key includes the override files' names and modification times: a
    compiled built-in template must not hide an override that appeared since.
    """
    overrides: tuple[tuple[str, int], ...] = ()
    if template_dir:
        try:
            overrides = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(template_dir)))
        except OSError:
            overrides = ()
    return _compiled_environment(template_dir, markdown, overrides)


@lru_cache(maxsize=16)
def _compiled_environment(template_dir: str | None, markdown: bool,
                          overrides: tuple[tuple[str, int], ...]) -> jinja2.Environment:
    """Markdown templates escape every value for Markdown; HTML templates (``*.html.j2``) for HTML."""
    paths = ([template_dir] if template_dir else []) + [str(BUILTIN_TEMPLATES)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize if markdown else (lambda v: "" if v is None else v),
        autoescape=not markdown,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=num, more_than=more_than, human_date=human_date, id_ranges=id_ranges,
        upper_first=lambda v: str(v)[:1].upper() + str(v)[1:],
    )
    if markdown:
        env.filters.update(raw=lambda v: Markdown("" if v is None else v), md=md_escape)
    return env


def render_template(name: str, context: dict[str, Any], *, template_dir: Path | str | None = None) -> str:
    """Render template ``name`` (override in ``template_dir`` first, then built-in).

    Templates named ``*.html.j2`` are HTML-autoescaped; all others are Markdown,
    every value escaped by :func:`md_escape` unless piped through ``|raw``.
    Raises TemplateError naming the file and line for a syntax error, an undefined
    variable or any other failure while rendering.
    """
    env = _environment(str(template_dir) if template_dir else None, not name.endswith(".html.j2"))
    try:
        template = env.get_template(name)
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(env.loader.searchpath) if isinstance(env.loader, jinja2.FileSystemLoader) else "?"
        raise TemplateError(f"template {exc.name!r} not found (looked in {searched})") from None
    except WardenError:
        raise
    except Exception as exc:  # undefined variable, bad filter argument, ...: name the line
        where = _template_frame(exc) or name
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
        raise TemplateError(f"{where}: {type(exc).__name__}: {message}") from None


def _template_frame(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame of ``exc`` (Jinja maps its frames to template lines)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            found = f"{frame.filename}:{frame.lineno}"
    return found


# --- drafting and editing --------------------------------------------------------


def draft_note(conn: sqlite3.Connection, consumer_id: str, *, reviewer: str, clock: Clock,
               config: NotesConfig, template_dir: Path | str | None = None,
               expected_version: int | None = None) -> Note:
    """Draft (or re-draft) the consumer's audit-request note from the template.

    Cites every confirmed finding of the consumer. With none confirmed the note is
    still drafted, says so prominently at the top, and ``Note.cites_confirmed`` is
    False. If the consumer has an open note (draft or ready), it is re-drafted in
    place: its body is replaced (the reviewer's edits are lost; callers ask first
    via :func:`note_for`), a ready note goes back to draft. An exported note is never
    touched: a new note is created. Rendering happens before any write, so a
    TemplateError leaves the existing note as it was. Same data and clock give a
    byte-identical body.
    """
    now = clock()
    today = date.fromisoformat(day(now))
    finding_ids = [r[0] for r in conn.execute(
        "SELECT id FROM finding WHERE consumer_id = ? AND status = 'confirmed' ORDER BY id", (consumer_id,))]
    context, evidence = note_context(conn, consumer_id, finding_ids, today=today, config=config)
    body = render_template(TEMPLATE, context, template_dir=template_dir or config.template_dir)
    evidence_json = json.dumps(evidence, sort_keys=True, separators=(",", ":"))
    stamp = iso(now)
    cited = ", ".join(f"#{i}" for i in finding_ids) or "no confirmed finding"
    with transaction(conn):
        current = conn.execute(
            "SELECT id, status, version FROM note WHERE consumer_id = ? AND status IN ('draft', 'ready') "
            "ORDER BY id DESC LIMIT 1", (consumer_id,)).fetchone()
        if current is not None and expected_version is not None and current[2] != expected_version:
            raise _conflict(conn, current[0], f"note #{current[0]} changed (version {current[2]}, "
                                              f"expected {expected_version}); reload it")
        if current is None:
            note_id = conn.execute(
                "INSERT INTO note (consumer_id, template, subject, body, status, due_date, evidence, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
                (consumer_id, TEMPLATE, context["subject"], body, context["deadline_iso"], evidence_json,
                 stamp, stamp)).lastrowid
            record_decision(conn, subject="note", subject_id=note_id, field="status", old=None, new="draft",
                    reason=f"drafted, citing {cited}", reviewer=reviewer, clock=clock)
        else:
            note_id, old_status = current[0], current[1]
            conn.execute(
                "UPDATE note SET template = ?, subject = ?, body = ?, status = 'draft', due_date = ?, "
                "evidence = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                (TEMPLATE, context["subject"], body, context["deadline_iso"], evidence_json, stamp, note_id))
            conn.execute("DELETE FROM note_finding WHERE note_id = ?", (note_id,))
            record_decision(conn, subject="note", subject_id=note_id, field="status", old=old_status, new="draft",
                    reason=f"re-drafted, citing {cited}", reviewer=reviewer, clock=clock)
        conn.executemany("INSERT INTO note_finding (note_id, finding_id) VALUES (?, ?)",
                         ((note_id, fid) for fid in finding_ids))
    return get_note(conn, note_id)


def _conflict(conn: sqlite3.Connection, note_id: int, message: str) -> ConflictError:
    """A ConflictError carrying the note as it is now (``.current``)."""
    row = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM note WHERE id = ?", (note_id,)).fetchone()
    current: dict[str, object] = {} if row is None else {k: row[k] for k in row.keys()}
    return ConflictError(message, current=current)


def save_body(conn: sqlite3.Connection, note_id: int, body: str, *, expected_version: int | None = None,
              clock: Clock = system_clock) -> int:
    """Save the reviewer's edit of a note's body; return the note's new version.

    The autosave target: one short write transaction, committed before return, so
    a killed editor loses nothing that was saved. With ``expected_version``, a note
    changed meanwhile (another reviewer, a re-draft) raises ConflictError whose
    ``.current`` holds the note's columns as they are now. An exported note cannot be edited.
    """
    with transaction(conn):
        row = conn.execute("SELECT status, version FROM note WHERE id = ?", (note_id,)).fetchone()
        if row is None:
            raise StoreError(f"no note #{note_id}")
        status, version = row
        if status == "exported":
            raise _conflict(conn, note_id, f"note #{note_id} was exported; draft a new note to change it")
        if expected_version is not None and version != expected_version:
            raise _conflict(conn, note_id, f"note #{note_id} changed (version {version}, "
                                           f"expected {expected_version}); reload it")
        conn.execute("UPDATE note SET body = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                     (body, iso(clock()), note_id))
    return version + 1


def set_note_status(conn: sqlite3.Connection, note_id: int, status: str, *, reviewer: str, clock: Clock,
                    reason: str | None = None, expected_version: int | None = None) -> Note:
    """Move a note draft <-> ready (or to exported), logged in the decision log."""
    if status not in NOTE_STATUSES:
        raise StoreError(f"unknown note status {status!r} (one of {', '.join(NOTE_STATUSES)})")
    with transaction(conn):
        _set_status(conn, note_id, status, reviewer=reviewer, clock=clock, reason=reason,
                    expected_version=expected_version)
    return get_note(conn, note_id)


def _set_status(conn: sqlite3.Connection, note_id: int, status: str, *, reviewer: str, clock: Clock,
                reason: str | None, expected_version: int | None = None) -> bool:
    """The status change itself (False if the note already had it); the caller holds the transaction."""
    row = conn.execute("SELECT status, version FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    old, version = row
    if expected_version is not None and version != expected_version:
        raise _conflict(conn, note_id, f"note #{note_id} changed (version {version}, "
                                       f"expected {expected_version}); reload it")
    if old == status:
        return False
    if status not in NOTE_TRANSITIONS[old]:
        raise DecisionRefused(f"note #{note_id} is {old}; it cannot become {status}")
    conn.execute("UPDATE note SET status = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                 (status, iso(clock()), note_id))
    record_decision(conn, subject="note", subject_id=note_id, field="status", old=old, new=status,
                    reason=reason, reviewer=reviewer, clock=clock)
    return True


def note_evidence(conn: sqlite3.Connection, note_id: int) -> dict[str, Any]:
    """The evidence snapshot a note was drafted from (see :func:`collect_evidence`)."""
    row = conn.execute("SELECT evidence FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise StoreError(f"no note #{note_id}")
    return json.loads(row[0] or "{}")
