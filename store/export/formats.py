"""What an export writes, rendered in memory: a note as Markdown, standalone
HTML, an ``.eml`` draft (plain text with an HTML alternative and the JSON bundle
attached) and a JSON case bundle; the findings of notes as CSV; file names from
ids (:func:`safe_slug`), never from names. Writing them is :mod:`store.export.act`'s.
"""

from __future__ import annotations

import csv
import email.errors
import email.policy
import email.utils
import hashlib
import io
import json
import re
import sqlite3
from dataclasses import asdict
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterable

from markupsafe import Markup  # jinja2's own dependency

import store
from store.clock import iso
from store.config import NotesConfig
from store.errors import StoreError
from store.cases import Case, read_case, read_findings
from store.notes import Note
from store.notes.evidence import coverage_of, figure_changes
from store.notes.plaintext import PARSER, parse, plain_text
from store.notes.templates import render_template
from store.notes.wording import Period, finding_sentence
from store.text import clean_text
from store.verify import sha256_text

HTML_TEMPLATE = "note.html.j2"
BUNDLE_FORMAT = "warden-case-bundle"
BUNDLE_VERSION = 1
CSV_COLUMNS = ("Title", "Description", "Date", "Severity", "Active", "Verified", "References", "Consumer")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- names -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_slug(text: str, *, max_length: int = 60) -> str:
    """A file-name fragment derived from an id: ``[A-Za-z0-9._-]`` only, no leading
    dot, no ``..``; when anything had to change, an 8-hex hash of the original is
    appended so two different ids never share a name."""
    slug = _UNSAFE.sub("-", text)
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-_")[:max_length].strip(".-_")
    if slug != text or not slug:
        slug = f"{slug or 'id'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return slug


def note_stem(note: Note) -> str:
    """``note-12-northwind-analytics``: the file name (without extension) of a note's exports."""
    return f"note-{note.id}-{safe_slug(note.consumer_id)}"


def manifest_name(fmt: str) -> str:
    """One manifest per format, so several formats can be exported into one folder."""
    return f"manifest-{fmt}.json"


# --- rendering -------------------------------------------------------------------



def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(value: Any) -> bytes:
    # ASCII-only: exact data, yet a bidi override or escape in a name cannot act on a terminal showing the file.
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def note_html(note: Note, *, made_at: datetime, made_by: str, template_dir: Path | None = None,
              tokens: list[Any] | None = None) -> str:
    """The note as a standalone, printable HTML page (raw HTML in the Markdown is
    not passed through); ``tokens``: the body already parsed (:func:`parse`)."""
    tokens = tokens if tokens is not None else parse(clean_text(note.body, newlines=True))
    content = PARSER.renderer.render(tokens, PARSER.options, {})
    return render_template(HTML_TEMPLATE, {
        "content": Markup(content), "subject": clean_text(note.subject), "note_id": note.id,
        "note_version": note.version, "consumer_id": clean_text(note.consumer_id), "made_by": clean_text(made_by),
        "made_at": iso(made_at), "tool_version": store.__version__,
        "body_sha256": sha256_text(note.body),
    }, template_dir=template_dir)


def case_bundle(conn: sqlite3.Connection, note: Note, *, made_at: datetime, made_by: str,
                log_head: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON case bundle of a note.

    Holds the consumer (with tier, limits, clauses), apps, the cited findings, every
    decision on them and on the note (with the hash chain fields), the note, the
    evidence it was drafted from, the provenance (sync runs and pages with their
    SHA-256), the figures whose value changed since the draft (which, then, now),
    the decision log's head when it was made (``warden verify --head`` checks that
    the log still holds it), the tool version and when and by whom it was made.
    """
    case = _case(conn, note.consumer_id)
    findings = [asdict(f) for f in read_findings(conn, note.finding_ids)]
    decisions = _decisions(conn, note)
    drafted = json.loads(conn.execute("SELECT evidence FROM note WHERE id = ?", (note.id,)).fetchone()[0] or "{}")
    evidence: dict[str, Any] = {k: v for k, v in drafted.items() if k not in ("runs", "pages")}
    if drafted.get("period"):
        changes = figure_changes(conn, note.consumer_id, drafted)
        evidence["changed_since_draft"] = bool(changes)
        if changes:
            evidence["figure_changes"] = [change.as_json() for change in changes]
    return {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
        "tool": {"name": "warden", "version": store.__version__},
        "made_at": iso(made_at), "made_by": made_by,
        "decision_log": log_head,
        "consumer": case.record(), "apps": case.app_records(), "findings": findings, "decisions": decisions,
        "note": {
            "id": note.id, "consumer_id": note.consumer_id, "status": note.status, "subject": note.subject,
            "template": note.template, "due_date": note.due_date, "created_at": note.created_at,
            "updated_at": note.updated_at, "version": note.version, "finding_ids": list(note.finding_ids),
            "body": note.body, "body_sha256": sha256_text(note.body),
        },
        "evidence": evidence,
        "provenance": {"runs": drafted.get("runs", []), "pages": drafted.get("pages", [])},
    }


def _case(conn: sqlite3.Connection, consumer_id: str) -> Case:
    case = read_case(conn, consumer_id)
    if case is None:
        raise StoreError(f"no consumer {consumer_id!r} in the database")
    return case


def _decisions(conn: sqlite3.Connection, note: Note) -> list[dict[str, Any]]:
    ids = list(note.finding_ids)
    marks = ",".join("?" * len(ids)) or "NULL"
    cur = conn.execute(
        f"SELECT * FROM decision WHERE (subject = 'note' AND subject_id = ?) "
        f"OR (subject = 'finding' AND subject_id IN ({marks})) ORDER BY id", (note.id, *ids))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _recipient(legal_name: str, contact: str | None) -> Address | None:
    """The notice contact as one mail address, or None when it is not exactly one."""
    # Exactly one "@": older email.utils parsers can be steered to another address
    # by crafted input (CVE-2023-27043); a notice contact never needs two.
    if not contact or contact.count("@") != 1:
        return None
    parsed = email.utils.getaddresses([clean_text(contact)])
    if len(parsed) != 1 or not parsed[0][1] or "@" not in parsed[0][1]:
        return None
    display, addr = parsed[0]
    try:
        return Address(display_name=clean_text(display or legal_name), addr_spec=addr)
    except (ValueError, IndexError, email.errors.HeaderParseError):
        return None


def _message_domain(sender: str) -> str:
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain).strip(".-")
    return domain or "warden.invalid"


def note_eml(note: Note, legal_name: str, contact: str | None, *, html: str, bundle: bytes, made_at: datetime,
             config: NotesConfig, tokens: list[Any]) -> tuple[bytes, list[str]]:
    """The note as an RFC 5322 draft (``X-Unsent: 1``): plain text, HTML alternative, JSON bundle attached;
    ``tokens``: the body parsed once for both parts (:func:`parse` of its :func:`clean_text`)."""
    warnings: list[str] = []
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.sender
    to = _recipient(legal_name, contact)
    if to is not None:
        msg["To"] = to
    else:
        warnings.append(f"note #{note.id}: the notice contact is not exactly one e-mail address; To: left empty")
    msg["Subject"] = clean_text(note.subject)
    msg["Date"] = email.utils.format_datetime(made_at)
    body_hash = sha256_text(note.body)
    msg["Message-ID"] = f"<warden.note-{note.id}.v{note.version}.{body_hash[:16]}@{_message_domain(config.sender)}>"
    msg["X-Unsent"] = "1"    # Outlook, Thunderbird and Apple Mail open the file as a draft to edit and send
    msg["X-Warden-Note"] = f"{note.id}; version {note.version}; sha256 {body_hash}"
    msg["X-Mailer"] = f"warden {store.__version__}"
    text = plain_text(tokens)
    msg.set_content(text, subtype="plain", charset="utf-8",
                    cte="quoted-printable")   # real plain text: wrapped at 72, aligned columns, no markers
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    msg.add_attachment(bundle, maintype="application", subtype="json", filename=f"{note_stem(note)}.json")
    # Boundaries are random by default; derive them from the content so output is reproducible.
    for index, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_warden_{body_hash[:24]}_{index}")
    return msg.as_bytes(policy=email.policy.SMTP), warnings


def neutralise_cell(value: object, *, newlines: bool = False) -> str:
    """A CSV cell a spreadsheet will not run: control characters made visible, and
    a value starting with ``= + - @``, a tab or a CR prefixed with ``'`` (OWASP's
    CSV injection advice)."""
    raw = "" if value is None else str(value)
    text = clean_text(raw, newlines=newlines)
    # Judged on the value as given: cleaning turns a leading tab or CR into a space
    # (or drops the CR), which would hide the very start the list is there to catch.
    if raw.startswith(_FORMULA_START):
        text = "'" + text
    return text


def findings_csv(conn: sqlite3.Connection, notes: Iterable[Note]) -> bytes:
    """The findings the notes cite, one row each, in the columns case systems import
    (periods stated as the days their figures cover, as in the letter)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    seen: set[int] = set()
    for note in notes:
        case = _case(conn, note.consumer_id)
        clauses = case.tier.clauses if case.tier is not None else {}
        coverage = coverage_of(conn, note.consumer_id)
        for f in read_findings(conn, note.finding_ids):
            if f.id in seen:
                continue
            seen.add(f.id)
            span = Period(date.fromisoformat(f.period_start), date.fromisoformat(f.period_end))
            covered = coverage.of(span, f.metric) if f.metric else coverage.of(span)
            description = [f"{f.category_label}: {finding_sentence(f, covered)}."]
            if f.evidence:
                description.append(f"Evidence: {f.evidence}")
            description.append(f"Status: {f.status}. Cited by audit-request note #{note.id} ({note.status}).")
            references = [f"warden finding #{f.id}", f"note #{note.id}"]
            if clauses.get(f.category):
                references.append(clauses[f.category])
            writer.writerow([
                neutralise_cell(f"{case.legal_name} [{case.id}]: {f.category_label}, {f.period}"),
                neutralise_cell("\n".join(description), newlines=True),
                neutralise_cell(f.detected_at[:10]),
                neutralise_cell(f.severity.capitalize()),
                "False" if f.status in ("resolved", "dismissed") else "True",
                "True" if f.status in ("confirmed", "audit_requested", "resolved") else "False",
                neutralise_cell("; ".join(references)),
                neutralise_cell(case.id),
            ])
    return out.getvalue().encode("utf-8")




def render(conn: sqlite3.Connection, notes: list[Note], fmt: str, *, made_at: datetime, reviewer: str,
           config: NotesConfig, log_head: dict[str, Any] | None) -> tuple[list[tuple[str, bytes, int | None]],
                                                                          list[str]]:
    """The files of one format: ``(name, bytes, note id)``, and warnings."""
    if fmt == "csv":
        return [("findings.csv", findings_csv(conn, notes), None)], []
    files: list[tuple[str, bytes, int | None]] = []
    warnings: list[str] = []
    for note in notes:
        stem = note_stem(note)
        if fmt == "md":
            # The reviewer's text as typed, minus control characters (a pasted escape
            # sequence would act on the terminal of whoever views the file).
            body = clean_text(note.body, newlines=True)
            body = body if body.endswith("\n") else body + "\n"
            files.append((f"{stem}.md", body.encode("utf-8"), note.id))
        elif fmt == "html":
            html = note_html(note, made_at=made_at, made_by=reviewer, template_dir=config.template_dir)
            files.append((f"{stem}.html", html.encode("utf-8"), note.id))
        elif fmt == "json":
            bundle = case_bundle(conn, note, made_at=made_at, made_by=reviewer, log_head=log_head)
            files.append((f"{stem}.json", json_bytes(bundle), note.id))
        elif fmt == "eml":
            bundle = case_bundle(conn, note, made_at=made_at, made_by=reviewer, log_head=log_head)
            tokens = parse(clean_text(note.body, newlines=True))     # once, for both parts
            html = note_html(note, made_at=made_at, made_by=reviewer, template_dir=config.template_dir,
                             tokens=tokens)
            row = conn.execute("SELECT legal_name, notice_contact FROM consumer WHERE id = ?",
                               (note.consumer_id,)).fetchone()
            data, mail_warnings = note_eml(note, row[0], row[1], html=html, bundle=json_bytes(bundle),
                                           made_at=made_at, config=config, tokens=tokens)
            warnings += mail_warnings
            files.append((f"{stem}.eml", data, note.id))
    return files, warnings
