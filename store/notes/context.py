"""The variables a note's template is filled with, and the evidence snapshot
stored with the note (see :func:`note_context` for the list)."""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any, Iterable

from store.cases import Finding, Tier, read_case, read_findings
from store.casework.items import request_context
from store.config import NotesConfig
from store.domain import METRIC_CALLS, METRIC_RECORDS
from store.errors import StoreError
from store.notes.evidence import (
    Coverage,
    calendar_segments,
    collect_evidence,
    coverage_of,
    covered_segments,
    observed_period,
)
from store.notes.provisions import build as build_provisions
from store.notes.wording import (
    Period,
    finding_columns,
    finding_sentence,
    human_date,
    id_ranges,
    metric_words,
    more_than,
    whole_months,
)
from store.text import clean_text

# Past this many distinct response pages the appendix gives a digest over the
# page list instead of listing every page; the JSON case bundle always lists all.
APPENDIX_PAGE_LIMIT = 60


def _finding_context(f: Finding, tier: Tier | None, coverage: Coverage) -> dict[str, Any]:
    clause = tier.clauses.get(f.category) if tier is not None else None
    span = Period(date.fromisoformat(f.period_start), date.fromisoformat(f.period_end))
    covered = coverage.of(span, f.metric) if f.metric else coverage.of(span)
    columns = finding_columns(f)
    if covered is not None and covered.partial:
        columns["period_label"] = covered.label
    return {
        **columns,
        "id": f.id, "category": f.category, "category_label": f.category_label,
        "severity": f.severity, "status": f.status, "period": f.period,
        "period_start": f.period_start, "period_end": f.period_end,
        "covered": _period_vars(covered) if covered is not None else None,
        "metric": f.metric, "actual": f.actual, "limit_value": f.limit_value, "ratio": f.ratio,
        "rule_id": f.rule_id, "evidence": f.evidence, "clause": clause, "figure": finding_sentence(f, covered),
    }


def note_context(conn: sqlite3.Connection, consumer_id: str, finding_ids: Iterable[int], *,
                 today: date, config: NotesConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template variables for a note, and the evidence snapshot stored with it.

    Every period is stated as the days that hold figures (a
    :class:`~store.notes.wording.Period` with its coverage): ``start`` and ``end``
    are the first and last UTC day with figures, ``label`` and ``phrase`` say so
    when that is less than the calendar period, ``extent`` gives the days
    ("2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days").

    Variables (every string is escaped on output unless piped through ``|raw``):
    ``today`` (human date), ``today_iso``, ``organisation``, ``sender``, ``subject``,
    ``consumer`` (id, legal_name, notice_contact, agreement_version,
    declared_use_case, government_end_users, tier: id, name, agreement_version,
    limits, clauses | None), ``apps`` (source, app_id, name, label,
    declared_use_case, calls, records: in ``period``), ``period`` (start, end,
    label, phrase, extent, days: the newest calendar year of the cited usage
    findings, as its figures cover it), ``span`` (the same for all of them),
    ``totals`` (calls, records, calls_more_than, records_more_than: None when
    zero), ``earlier`` (the other calendar years of the span, newest first: period
    fields + totals fields), ``findings`` (id, category, category_label, severity,
    period, period_start, period_end, covered: period fields | None, metric,
    actual, limit_value, ratio, evidence, clause | None, figure: a sentence
    fragment; for tables: period_label, measured, limit_text, ratio_text),
    ``provisions`` (one per category cited: category, category_label, clause |
    None, paragraphs: sentences computed from the schedule rows, finding_ids,
    findings_text, schedules: their letters), ``schedules`` (letter, kind:
    volume | rate | endpoint, metric, metric_words, title, rows: period,
    measured, limit, ratio, worst_day, days_over, endpoints, findings),
    ``no_confirmed`` (bool), ``deadline`` (human date), ``deadline_iso``,
    ``deadline_days``, ``deadline_words`` ("21 days", "15 business days"),
    ``request_items`` (id, number, title, text: :data:`store.casework.items.REQUEST_ITEMS`),
    ``evidence`` (figures with label/value/daily_figures/
    runs/pages as compact id lists, runs, pages, pages_digest, list_pages: bool,
    page_count, revised_figures). Filters: ``num``, ``more_than``, ``human_date``, ``raw``,
    ``md`` (escape explicitly), ``id_ranges``, ``upper_first``.
    """
    case = read_case(conn, consumer_id)
    if case is None:
        raise StoreError(f"no consumer {consumer_id!r} in the database")
    consumer = {**case.record(), "apps": case.app_records()}
    findings = read_findings(conn, finding_ids)
    coverage = coverage_of(conn, consumer_id)
    calendar = observed_period(conn, consumer_id, findings, today)
    metrics = {METRIC_CALLS, METRIC_RECORDS} | {f.metric for f in findings if f.metric}
    # The letter states only what the figures cover: each calendar year of the span
    # clipped to its first and last day with figures; a year without any is left out.
    segments = covered_segments(calendar, coverage, metrics)
    if segments:
        span = Period(calendar.start, calendar.end, min(s.from_day for s in segments),
                      max(s.to_day for s in segments), sum(s.days or 0 for s in segments))
    else:
        span, segments = calendar, calendar_segments(calendar)[:1]
    period = segments[0]
    evidence = collect_evidence(conn, consumer_id, segments, metrics)

    def totals_of(segment: Period) -> dict[str, Any]:
        key = {"start": segment.from_day.isoformat(), "end": segment.to_day.isoformat()}
        total = {f["metric"]: f["value"] for f in evidence["figures"] if f["source"] is None and f["period"] == key}
        # None (no figure stored) is not 0: "missing is not zero".
        calls, records = total.get(METRIC_CALLS), total.get(METRIC_RECORDS)
        return {**_period_vars(segment), "calls": calls, "records": records,
                "calls_more_than": more_than(calls) if calls else None,
                "records_more_than": more_than(records) if records else None}

    headline = {"start": period.from_day.isoformat(), "end": period.to_day.isoformat()}
    per_app = {(f["source"], f["app_id"], f["metric"]): f["value"] for f in evidence["figures"]
               if f["source"] is not None and f["period"] == headline}
    apps = []
    for app in consumer["apps"]:
        key = (app["source"], app["app_id"])
        apps.append({**app, "label": app["name"] or app["app_id"],
                     "calls": per_app.get((*key, METRIC_CALLS)), "records": per_app.get((*key, METRIC_RECORDS))})

    labels = {(a["source"], a["app_id"]): a["name"] or a["app_id"] for a in consumer["apps"]}
    segment_of = {(s.from_day.isoformat(), s.to_day.isoformat()): s for s in segments}
    evidence_rows = []
    for fig in evidence["figures"]:
        what = metric_words(fig["metric"])
        label = (f"{labels.get((fig['source'], fig['app_id']), fig['app_id'])} ({fig['source']}/{fig['app_id']}): {what}"
                 if fig["source"] is not None else f"All applications: {what}")
        segment = segment_of[(fig["period"]["start"], fig["period"]["end"])]
        evidence_rows.append({**fig, "label": label, "period_label": segment.label,
                              "runs_text": id_ranges(fig["runs"]), "pages_text": id_ranges(fig["pages"])})

    provisions, schedules = build_provisions(findings, case.tier, coverage)
    deadline = config.deadline.due_from(today)
    context = {
        "today": human_date(today), "today_iso": today.isoformat(),
        "organisation": config.organisation, "sender": config.sender,
        "subject": note_subject(case.legal_name, span, config),
        "consumer": consumer, "apps": apps,
        "period": _period_vars(period), "span": _period_vars(span),
        "totals": totals_of(period),
        "earlier": [totals_of(segment) for segment in segments[1:]],
        "findings": [_finding_context(f, case.tier, coverage) for f in findings],
        "provisions": provisions,
        "schedules": schedules,
        "no_confirmed": not findings,
        "deadline": human_date(deadline), "deadline_iso": deadline.isoformat(),
        "deadline_days": config.deadline_days, "deadline_words": config.deadline.words(),
        "request_items": request_context(organisation=config.organisation, legal_name=case.legal_name),
        "evidence": {"figures": evidence_rows, "runs": evidence["runs"], "pages": evidence["pages"],
                     "pages_digest": evidence["pages_digest"], "page_count": len(evidence["pages"]),
                     "revised_figures": evidence["revised_figures"],
                     "list_pages": len(evidence["pages"]) <= APPENDIX_PAGE_LIMIT},
    }
    return context, evidence


def _period_vars(period: Period) -> dict[str, Any]:
    return {"start": period.from_day.isoformat(), "end": period.to_day.isoformat(), "days": period.days,
            "label": period.label, "phrase": period.phrase, "extent": period.extent}


def note_subject(legal_name: str, period: Period, config: NotesConfig) -> str:
    """The note's subject line (plain text; also the .eml Subject): the whole months
    its figures cover."""
    months = whole_months(period.from_day, period.to_day)
    return clean_text(f"Audit request: {legal_name}, use of the API of {config.organisation} in {months.label}")
