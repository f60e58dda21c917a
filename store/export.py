"""Exports: notes as Markdown, standalone HTML, .eml drafts and JSON case bundles;
their findings as CSV; each export with a manifest of SHA-256 hashes.

Every export is all-or-nothing on the way in: everything is rendered in memory,
then the target names are checked (an existing file is never replaced without
``force=True``, and then only atomically), then each file is written to a
temporary file in the same folder and renamed over its name. File names come
from ids through :func:`safe_slug`, never from names. Exporting a note (md, html,
eml, json) marks it exported and its cited findings audit_requested, each change
in the decision log; the CSV of findings changes nothing.
"""

from __future__ import annotations

import csv
import email.errors
import email.policy
import email.utils
import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterable, Sequence

from markdown_it import MarkdownIt
from markupsafe import Markup  # jinja2's own dependency

import store
from store.clock import Clock, iso
from store.config import NotesConfig
from store.db import connect, transaction
from store.domain import EXPORT_FORMATS
from store.errors import ExportError, StoreError, WardenError
from store.casework.state import note_exported
from store.cases import Case, read_case, read_findings
from store.notes import Note, get_note, mark_exported, notes_for
from store.notes.evidence import collect_evidence
from store.notes.markdown import plain_text
from store.notes.templates import render_template
from store.notes.wording import Period, finding_sentence
from store.queue_summary import refresh_summary
from store.review import set_finding_status
from store.text import clean_text

HTML_TEMPLATE = "note.html.j2"
BUNDLE_FORMAT = "warden-case-bundle"
BUNDLE_VERSION = 1
CSV_COLUMNS = ("Title", "Description", "Date", "Severity", "Active", "Verified", "References", "Consumer")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportedFile:
    """One file an export wrote."""

    name: str                 # file name inside the export folder
    sha256: str
    bytes: int
    note_id: int | None


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and changed."""

    export_id: int
    fmt: str
    out_dir: Path
    files: tuple[ExportedFile, ...]          # the manifest last
    note_ids: tuple[int, ...]
    notes_exported: tuple[int, ...]          # notes that became 'exported'
    findings_requested: tuple[int, ...]      # findings that became 'audit_requested'
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def manifest(self) -> ExportedFile:
        """The manifest file (always written last)."""
        return self.files[-1]

    def summary_lines(self) -> list[str]:
        """One line per fact, for the command line and the TUI's notification."""
        what = f"the findings of {len(self.note_ids)} note(s)" if self.fmt == "csv" else f"{len(self.note_ids)} note(s)"
        lines = [f"warden: exported {what} as {self.fmt}: "
                 f"{len(self.files) - 1} file(s) and {self.manifest.name} in {self.out_dir}"]
        lines += [f"  {f.name}  sha256 {f.sha256}  {f.bytes:,} bytes" for f in self.files]
        if self.notes_exported:
            lines.append(f"warden: marked exported: note(s) {', '.join(f'#{i}' for i in self.notes_exported)}")
        if self.findings_requested:
            lines.append("warden: marked audit_requested: finding(s) "
                         + ", ".join(f"#{i}" for i in self.findings_requested))
        lines += [f"warden: warning: {w}" for w in self.warnings]
        return lines


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

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    # ASCII-only: exact data, yet a bidi override or escape in a name cannot act on a terminal showing the file.
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def note_html(note: Note, *, made_at: datetime, made_by: str, template_dir: Path | None = None) -> str:
    """The note as a standalone, printable HTML page (raw HTML in the Markdown is not passed through)."""
    content = _MARKDOWN.render(clean_text(note.body, newlines=True))
    return render_template(HTML_TEMPLATE, {
        "content": Markup(content), "subject": clean_text(note.subject), "note_id": note.id,
        "note_version": note.version, "consumer_id": clean_text(note.consumer_id), "made_by": clean_text(made_by),
        "made_at": iso(made_at), "tool_version": store.__version__,
        "body_sha256": _sha256(note.body.encode("utf-8")),
    }, template_dir=template_dir)


def case_bundle(conn: sqlite3.Connection, note: Note, *, made_at: datetime, made_by: str) -> tuple[dict[str, Any], list[str]]:
    """The JSON case bundle of a note, and warnings (figures revised since the draft).

    Holds the consumer (with tier, limits, clauses), apps, the cited findings, every
    decision on them and on the note (with the hash chain fields), the note, the
    evidence it was drafted from, the provenance (sync runs and pages with their
    SHA-256), the tool version and when and by whom it was made.
    """
    case = _case(conn, note.consumer_id)
    findings = [asdict(f) for f in read_findings(conn, note.finding_ids)]
    decisions = _decisions(conn, note)
    drafted = json.loads(conn.execute("SELECT evidence FROM note WHERE id = ?", (note.id,)).fetchone()[0] or "{}")
    warnings: list[str] = []
    evidence: dict[str, Any] = {k: v for k, v in drafted.items() if k not in ("runs", "pages")}
    if drafted.get("period"):
        periods = [Period(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
                   for p in drafted.get("periods") or [drafted["period"]]]
        now = collect_evidence(conn, note.consumer_id, periods, drafted.get("metrics") or ())
        evidence["changed_since_draft"] = now["figures"] != drafted.get("figures")
        if evidence["changed_since_draft"]:
            evidence["figures_now"] = now["figures"]
            warnings.append(f"note #{note.id}: usage figures changed since it was drafted; re-draft before sending")
    bundle = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
        "tool": {"name": "warden", "version": store.__version__},
        "made_at": iso(made_at), "made_by": made_by,
        "consumer": case.record(), "apps": case.app_records(), "findings": findings, "decisions": decisions,
        "note": {
            "id": note.id, "consumer_id": note.consumer_id, "status": note.status, "subject": note.subject,
            "template": note.template, "due_date": note.due_date, "created_at": note.created_at,
            "updated_at": note.updated_at, "version": note.version, "finding_ids": list(note.finding_ids),
            "body": note.body, "body_sha256": _sha256(note.body.encode("utf-8")),
        },
        "evidence": evidence,
        "provenance": {"runs": drafted.get("runs", []), "pages": drafted.get("pages", [])},
    }
    return bundle, warnings


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
             config: NotesConfig) -> tuple[bytes, list[str]]:
    """The note as an RFC 5322 draft (``X-Unsent: 1``): plain text, HTML alternative, JSON bundle attached."""
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
    body_hash = _sha256(note.body.encode("utf-8"))
    msg["Message-ID"] = f"<warden.note-{note.id}.v{note.version}.{body_hash[:16]}@{_message_domain(config.sender)}>"
    msg["X-Unsent"] = "1"    # Outlook, Thunderbird and Apple Mail open the file as a draft to edit and send
    msg["X-Warden-Note"] = f"{note.id}; version {note.version}; sha256 {body_hash}"
    msg["X-Mailer"] = f"warden {store.__version__}"
    msg.set_content(plain_text(clean_text(note.body, newlines=True)), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    msg.add_attachment(bundle, maintype="application", subtype="json", filename=f"{note_stem(note)}.json")
    # Boundaries are random by default; derive them from the content so output is reproducible.
    for index, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_warden_{body_hash[:24]}_{index}")
    return msg.as_bytes(policy=email.policy.SMTP), warnings


def neutralise_cell(value: object, *, newlines: bool = False) -> str:
    """A CSV cell a spreadsheet will not run: control characters made visible, and
    a leading ``= + - @`` tab or CR prefixed with ``'`` (OWASP's CSV injection advice)."""
    text = clean_text(value, newlines=newlines) if value is not None else ""
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def findings_csv(conn: sqlite3.Connection, notes: Iterable[Note]) -> bytes:
    """The findings the notes cite, one row each, in the columns case systems import."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    seen: set[int] = set()
    for note in notes:
        case = _case(conn, note.consumer_id)
        clauses = case.tier.clauses if case.tier is not None else {}
        for f in read_findings(conn, note.finding_ids):
            if f.id in seen:
                continue
            seen.add(f.id)
            description = [f"{f.category_label}: {finding_sentence(f)}."]
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


# --- writing ---------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` (mode 0600), then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".warden-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _render(conn: sqlite3.Connection, notes: list[Note], fmt: str, *, made_at: datetime, reviewer: str,
            config: NotesConfig) -> tuple[list[tuple[str, bytes, int | None]], list[str]]:
    files: list[tuple[str, bytes, int | None]] = []
    warnings: list[str] = []
    if fmt == "csv":
        return [("findings.csv", findings_csv(conn, notes), None)], warnings
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
            bundle, more = case_bundle(conn, note, made_at=made_at, made_by=reviewer)
            warnings += more
            files.append((f"{stem}.json", _json_bytes(bundle), note.id))
        elif fmt == "eml":
            bundle, more = case_bundle(conn, note, made_at=made_at, made_by=reviewer)
            html = note_html(note, made_at=made_at, made_by=reviewer, template_dir=config.template_dir)
            row = conn.execute("SELECT legal_name, notice_contact FROM consumer WHERE id = ?",
                               (note.consumer_id,)).fetchone()
            data, mail_warnings = note_eml(note, row[0], row[1], html=html, bundle=_json_bytes(bundle),
                                           made_at=made_at, config=config)
            warnings += more + mail_warnings
            files.append((f"{stem}.eml", data, note.id))
    return files, warnings


def export_notes(conn: sqlite3.Connection | str | os.PathLike[str], *, fmt: str, out_dir: Path | str,
                 consumer_id: str | None = None, status: str | None = None, force: bool = False, reviewer: str,
                 clock: Clock, config: NotesConfig | None = None,
                 note_ids: Sequence[int] | None = None) -> ExportResult:
    """Export notes (md, html, eml, json) or their findings (csv) into ``out_dir``.

    ``conn`` is an open connection or the database's path (opened and closed here,
    e.g. from a worker thread).

    Which notes: ``note_ids`` if given (so several formats of one export cover the
    same notes, although the first marks them exported); else see
    :func:`store.notes.notes_for` (a consumer's latest note; every note in
    ``status``; or every ready/exported note). Writes one file per note
    (``note-<id>-<consumer slug>.<fmt>``) or ``findings.csv``, then
    ``manifest-<fmt>.json`` with the SHA-256 and size of each file, the tool
    version, the time and the reviewer. Raises ExportError, writing nothing, when
    nothing matches or a target exists and ``force`` is False. Records the export
    and its files, and (note formats) marks the notes exported and their confirmed
    findings audit_requested in the decision log.
    """
    if not isinstance(conn, sqlite3.Connection):
        own = connect(conn)
        try:
            return export_notes(own, fmt=fmt, out_dir=out_dir, consumer_id=consumer_id, status=status, force=force,
                                reviewer=reviewer, clock=clock, config=config, note_ids=note_ids)
        finally:
            own.close()
    config = config or NotesConfig()
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    out = Path(out_dir)
    try:
        if note_ids is not None:
            notes = [get_note(conn, note_id) for note_id in note_ids]
        else:
            notes = notes_for(conn, consumer_id=consumer_id, status=status)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    if not notes:
        which = " ".join(filter(None, [f"of consumer {consumer_id!r}" if consumer_id else "",
                                       f"in status {status!r}" if status else "ready or exported"]))
        raise ExportError(f"no note {which} to export; nothing written")
    stale = _stale_citations(conn, notes)
    if stale:
        raise ExportError("; ".join(stale) + ". Re-draft the note(s) before exporting; nothing written",
                          title="Note out of date")
    made_at = clock()
    files, warnings = _render(conn, notes, fmt, made_at=made_at, reviewer=reviewer, config=config)
    warnings = [f"note #{n.id} ({n.consumer_id}) cites no confirmed finding" for n in notes
                if not n.cites_confirmed] + warnings
    listed = [ExportedFile(name, _sha256(data), len(data), note_id) for name, data, note_id in files]
    manifest = _json_bytes({
        "tool": {"name": "warden", "version": store.__version__},
        "made_at": iso(made_at), "made_by": reviewer, "format": fmt,
        "selection": {"consumer_id": consumer_id, "status": status},
        "notes": [n.id for n in notes],
        "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes, "note_id": f.note_id} for f in listed],
    })
    files.append((manifest_name(fmt), manifest, None))
    listed.append(ExportedFile(manifest_name(fmt), _sha256(manifest), len(manifest), None))

    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; nothing written")
    existing = [name for name, _, _ in files if os.path.lexists(out / name)]
    if existing and not force:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise ExportError(f"would overwrite {len(existing)} file(s) in {out}: {shown}; "
                          f"nothing written (use --force to replace them)", title="Export refused")
    try:
        # Every folder the export creates is private (mkdir -p would leave parents 0755).
        for folder in reversed([p for p in (out, *out.parents) if not p.exists()]):
            folder.mkdir(mode=0o700, exist_ok=True)
        for name, data, _ in files:
            _write_atomically(out / name, data)
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out}: {exc.strerror or exc}") from None

    exported, requested = _record_export(conn, notes, fmt, out, listed, made_at=made_at, reviewer=reviewer,
                                         clock=clock, config=config, warnings=warnings)
    return ExportResult(
        export_id=exported[0], fmt=fmt, out_dir=out, files=tuple(listed), note_ids=tuple(n.id for n in notes),
        notes_exported=tuple(exported[1]), findings_requested=tuple(requested), warnings=tuple(warnings))


def _stale_citations(conn: sqlite3.Connection, notes: list[Note]) -> list[str]:
    """Notes citing a finding a reviewer has since dismissed or reopened: a letter must not."""
    problems = []
    for note in notes:
        if not note.finding_ids:
            continue
        marks = ",".join("?" * len(note.finding_ids))
        for fid, status in conn.execute(
                f"SELECT id, status FROM finding WHERE id IN ({marks}) "
                "AND status NOT IN ('confirmed', 'audit_requested', 'resolved') ORDER BY id", note.finding_ids):
            problems.append(f"note #{note.id} cites finding #{fid}, which is now {status}")
    return problems


def _record_export(conn: sqlite3.Connection, notes: list[Note], fmt: str, out: Path, listed: list[ExportedFile], *,
                   made_at: datetime, reviewer: str, clock: Clock, config: NotesConfig,
                   warnings: list[str]) -> tuple[tuple[int, list[int]], list[int]]:
    exported: list[int] = []
    requested: list[int] = []
    try:
        with transaction(conn):
            export_id = conn.execute(
                "INSERT INTO export (at, reviewer, format, out_dir, tool_version, manifest_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (iso(made_at), reviewer, fmt, str(out.resolve()), store.__version__, listed[-1].sha256)).lastrowid
            conn.executemany(
                "INSERT INTO export_file (export_id, path, sha256, bytes, note_id) VALUES (?, ?, ?, ?, ?)",
                [(export_id, f.name, f.sha256, f.bytes, f.note_id) for f in listed])
            if fmt != "csv":
                for note in notes:
                    # Re-read under the write lock: another reviewer may have exported it meanwhile.
                    if mark_exported(conn, note.id, reviewer=reviewer, clock=clock,
                                     reason=f"exported as {fmt} (export #{export_id})"):
                        exported.append(note.id)
                        # The letter is sent: its consumer's case takes it (store.casework.state).
                        _, said = note_exported(conn, note.id, export_id, fmt, notes=config, reviewer=reviewer,
                                                clock=clock)
                        warnings += said
                    requested += _request_audit(conn, note, fmt, export_id, reviewer=reviewer, clock=clock)
                refresh_summary(conn, sorted({n.consumer_id for n in notes}))
    except WardenError:
        raise
    except sqlite3.Error as exc:
        raise ExportError(f"the files were written to {out} but the export could not be recorded: {exc}") from None
    return (export_id, exported), requested


def _request_audit(conn: sqlite3.Connection, note: Note, fmt: str, export_id: int, *, reviewer: str,
                   clock: Clock) -> list[int]:
    """Move the note's confirmed findings to audit_requested (the caller holds the transaction)."""
    changed = []
    confirmed = [r[0] for r in conn.execute(
        f"SELECT id FROM finding WHERE status = 'confirmed' AND id IN ({','.join('?' * len(note.finding_ids)) or 'NULL'})"
        " ORDER BY id", note.finding_ids)]
    for fid in confirmed:
        set_finding_status(conn, fid, "audit_requested", reviewer=reviewer, clock=clock,
                           reason=f"note #{note.id} exported as {fmt} (export #{export_id})")
        changed.append(fid)
    return changed
