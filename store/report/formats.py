"""The lead's overview written for people who do not open a terminal:
Markdown (charts as text), a standalone HTML page (charts as inline SVG, each
with the table of its numbers) and JSON. Every value from data is escaped for
the format: a consumer named ``<script>`` or ``| a |`` stays text."""

from __future__ import annotations

import html
import json
from datetime import date
from typing import Callable

from store.deadlines import due_long
from store.domain import CASE_STATES
from store.notes.markdown import md_escape
from store.report import LeadOverview
from store.text import clean_text, month_short, ratio_text

BAR_WIDTH = 40
# Fills of the categories in the SVG chart (the table beside it carries the numbers).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


def render_report(overview: LeadOverview, fmt: str, *, organisation: str) -> str:
    """The overview as ``md``, ``html`` or ``json`` text."""
    writers: dict[str, Callable[[LeadOverview, str], str]] = {"md": markdown, "html": page, "json": as_json}
    return writers[fmt](overview, organisation)


def as_json(overview: LeadOverview, organisation: str) -> str:
    return json.dumps({"format": "warden-overview", "format_version": 1, "organisation": organisation,
                       **overview.as_json()}, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def bar(value: int, most: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of eighths: ``value`` of ``most`` over ``width`` cells."""
    if most <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value * width * 8 / most))
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def _month(m: str) -> str:
    return f"{month_short(m)} {m[:4]}"


# --- Markdown ------------------------------------------------------------------------


def markdown(o: LeadOverview, organisation: str) -> str:
    out = [f"# Compliance overview: {md_escape(organisation)}", "", f"As of {o.today} (UTC).", "", "## Cases", "",
           "| State | Consumers |", "|---|--:|"]
    out += [f"| {c.label} | {c.value:,} |" for c in o.cases]
    out += ["", f"Awaiting a reply: **{o.awaiting.value:,}**, of which overdue: **{o.overdue.value:,}**.", ""]
    if o.overdue_cases:
        out += ["| Consumer | Case | Due | Overdue | Items still open |", "|---|--:|---|---|--:|"]
        for d in o.overdue_cases:
            out.append(f"| {md_escape(d.legal_name)} ({md_escape(d.consumer_id)}) | #{d.case_id} | {d.due_date} | "
                       f"{due_long(d.due_date, _today(o))} | {d.items_pending} of {d.items} |")
        out.append("")
    out += ["## Findings per month", ""]
    if not o.months:
        out += ["No findings yet.", ""]
    else:
        most = max(c.value for c in o.month_totals) or 1
        out += ["Findings that stand (not dismissed), by the month their period starts:", "", "```"]
        out += [f"{_month(c.label)}  {bar(c.value, most):<{BAR_WIDTH + 1}} {c.value:,}" for c in o.month_totals]
        out += ["```", "", "| Category | " + " | ".join(_month(m) for m in o.months) + " | Total |",
                "|---|" + "--:|" * (len(o.months) + 1)]
        for cat in o.categories:
            out.append(f"| {md_escape(cat.label)} | " + " | ".join(f"{c.value:,}" for c in cat.counts)
                       + f" | {cat.total:,} |")
        out.append("")
    out += ["## Largest overage", ""]
    if o.top:
        out += ["| Consumer | Worst overage | Case |", "|---|--:|---|"]
        out += [f"| {md_escape(t.legal_name)} ({md_escape(t.consumer_id)}) | {ratio_text(t.worst_ratio)} | "
                f"{CASE_STATES.get(t.case_state or '', 'no case')} |" for t in o.top]
    else:
        out.append("No consumer is over a limit.")
    out += ["", "## Decisions per reviewer per week", ""]
    if o.reviewers:
        out += ["| Reviewer | " + " | ".join(o.weeks) + " | Total |", "|---|" + "--:|" * (len(o.weeks) + 1)]
        out += [f"| {md_escape(r.reviewer)} | " + " | ".join(f"{c.value:,}" for c in r.counts) + f" | {r.total:,} |"
                for r in o.reviewers]
    else:
        out.append(f"No decisions in the weeks {o.weeks[0]} to {o.weeks[-1]}.")
    return "\n".join(out) + "\n"


def _today(o: LeadOverview) -> date:
    return date.fromisoformat(o.today)


# --- HTML ----------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(clean_text(value), quote=True)


def page(o: LeadOverview, organisation: str) -> str:
    today = _today(o)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>Compliance overview: {_e(organisation)}, {o.today}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.2rem .5rem}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;color:#555}"
        "@media print{body{margin:0}}</style>", "</head>", "<body>",
        f"<h1>Compliance overview: {_e(organisation)}</h1>", f"<p>As of {_e(o.today)} (UTC).</p>",
        "<h2>Cases</h2>", "<table><tr><th>State</th><th>Consumers</th></tr>",
    ]
    parts += [f'<tr><td>{_e(c.label)}</td><td class="n">{c.value:,}</td></tr>' for c in o.cases]
    parts += ["</table>", f"<p>Awaiting a reply: <strong>{o.awaiting.value:,}</strong>, of which overdue: "
                          f"<strong>{o.overdue.value:,}</strong>.</p>"]
    if o.overdue_cases:
        parts.append("<table><caption>Overdue</caption><tr><th>Consumer</th><th>Case</th><th>Due</th>"
                     "<th>Overdue</th><th>Items still open</th></tr>")
        parts += [f'<tr><td>{_e(d.legal_name)} ({_e(d.consumer_id)})</td><td class="n">#{d.case_id}</td>'
                  f"<td>{_e(d.due_date)}</td><td>{_e(due_long(d.due_date, today))}</td>"
                  f'<td class="n">{d.items_pending} of {d.items}</td></tr>' for d in o.overdue_cases]
        parts.append("</table>")
    parts.append("<h2>Findings per month</h2>")
    if o.months:
        parts.append(month_chart(o))
        parts.append("<table><caption>Findings that stand (not dismissed), by the month their period starts"
                     "</caption><tr><th>Category</th>" + "".join(f"<th>{_e(_month(m))}</th>" for m in o.months)
                     + "<th>Total</th></tr>")
        for cat in o.categories:
            parts.append(f"<tr><td>{_e(cat.label)}</td>" + "".join(f'<td class="n">{c.value:,}</td>'
                                                                   for c in cat.counts)
                         + f'<td class="n">{cat.total:,}</td></tr>')
        parts.append("</table>")
    else:
        parts.append("<p>No findings yet.</p>")
    parts.append("<h2>Largest overage</h2>")
    if o.top:
        parts.append("<table><tr><th>Consumer</th><th>Worst overage</th><th>Case</th></tr>")
        parts += [f'<tr><td>{_e(t.legal_name)} ({_e(t.consumer_id)})</td><td class="n">{ratio_text(t.worst_ratio)}</td>'
                  f"<td>{_e(CASE_STATES.get(t.case_state or '', 'no case'))}</td></tr>" for t in o.top]
        parts.append("</table>")
    else:
        parts.append("<p>No consumer is over a limit.</p>")
    parts.append("<h2>Decisions per reviewer per week</h2>")
    if o.reviewers:
        parts.append(reviewer_chart(o))
        parts.append("<table><tr><th>Reviewer</th>" + "".join(f"<th>{_e(w)}</th>" for w in o.weeks)
                     + "<th>Total</th></tr>")
        parts += [f"<tr><td>{_e(r.reviewer)}</td>" + "".join(f'<td class="n">{c.value:,}</td>' for c in r.counts)
                  + f'<td class="n">{r.total:,}</td></tr>' for r in o.reviewers]
        parts.append("</table>")
    else:
        parts.append(f"<p>No decisions in the weeks {_e(o.weeks[0])} to {_e(o.weeks[-1])}.</p>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def month_chart(o: LeadOverview, *, height: int = 160, step: int = 44) -> str:
    """Findings per month as stacked columns, one fill per category, with a legend."""
    most = max((c.value for c in o.month_totals), default=0) or 1
    width = step * len(o.months) + 20
    legend_y = height + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
           f'height="{legend_y + 18 * len(o.categories) + 10}" aria-label="Findings per month by category">',
           f'<line x1="10" y1="{height}" x2="{width - 10}" y2="{height}" stroke="#888"/>']
    for i, month in enumerate(o.months):
        x, y = 14 + i * step, float(height)
        for k, cat in enumerate(o.categories):
            value = cat.counts[i].value
            if not value:
                continue
            h = value * (height - 10) / most
            y -= h
            svg.append(f'<rect x="{x}" y="{y:.1f}" width="{step - 10}" height="{h:.1f}" '
                       f'fill="{PALETTE[k % len(PALETTE)]}"><title>{_e(cat.label)}, {_e(_month(month))}: '
                       f"{value:,}</title></rect>")
        svg.append(f'<text x="{x + (step - 10) / 2}" y="{height + 14}" font-size="10" text-anchor="middle">'
                   f"{_e(_month(month)[:3])}</text>")
        svg.append(f'<text x="{x + (step - 10) / 2}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
                   f"{o.month_totals[i].value:,}</text>")
    for k, cat in enumerate(o.categories):
        y = legend_y + 18 * k
        svg.append(f'<rect x="14" y="{y - 10}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="32" y="{y}" font-size="12">{_e(cat.label)} ({cat.total:,})</text>')
    svg.append("</svg>")
    return "".join(svg)


def reviewer_chart(o: LeadOverview, *, bar_height: int = 16) -> str:
    """Decisions per reviewer, a bar per week, as horizontal bars."""
    most = max((c.value for r in o.reviewers for c in r.counts), default=0) or 1
    rows = len(o.reviewers) * (len(o.weeks) + 1)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="560" height="{rows * bar_height + 10}" '
           'aria-label="Decisions per reviewer per week">']
    y = 4
    for r in o.reviewers:
        svg.append(f'<text x="0" y="{y + 12}" font-size="12" font-weight="bold">{_e(r.reviewer)}</text>')
        y += bar_height
        for c in r.counts:
            w = c.value * 360 / most
            svg.append(f'<text x="10" y="{y + 11}" font-size="10">{_e(c.label)}</text>'
                       f'<rect x="90" y="{y + 2}" width="{w:.1f}" height="{bar_height - 4}" fill="#4e79a7">'
                       f"<title>{_e(r.reviewer)}, {_e(c.label)}: {c.value:,}</title></rect>"
                       f'<text x="{94 + w:.1f}" y="{y + 11}" font-size="10">{c.value:,}</text>')
            y += bar_height
    svg.append("</svg>")
    return "".join(svg)
