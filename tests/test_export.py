"""Exports: golden files per format, parsing back, hostile names, overwrite refusal, the log.

Golden files live in tests/golden/; regenerate them on purpose with
``WARDEN_UPDATE_GOLDEN=1 python -m pytest tests/test_export.py`` and read the diff.
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import store
from notes_case import CASE_ID, CLOCK, HOSTILE_ID, HOSTILE_NAME, seed
from store.config import NotesConfig
from store.errors import ExportError, StoreError
from store.domain import EXPORT_FORMATS
from store.export import CSV_COLUMNS, export_notes, neutralise_cell, safe_slug
from store.notes import draft_note, note_for, set_note_status
from store.decision_log import verify_chain

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("WARDEN_UPDATE_GOLDEN") == "1"
CONFIG = NotesConfig(sender="Platform Compliance <compliance@platform.example>", organisation="Example Platform")


@pytest.fixture()
def conn(tmp_path: Path):
    connection = seed(tmp_path / "warden.db")
    for cid in (CASE_ID, HOSTILE_ID):
        draft_note(connection, cid, reviewer="ana", clock=CLOCK, config=CONFIG)
    yield connection
    connection.close()


def _export(conn, out: Path, fmt: str, **kwargs):
    kwargs.setdefault("consumer_id", CASE_ID)
    return export_notes(conn, fmt=fmt, out_dir=out, reviewer="ana", clock=CLOCK, config=CONFIG, **kwargs)


def _check_golden(path: Path, name: str) -> None:
    golden = GOLDEN / name
    data = path.read_bytes()
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(data)
    assert golden.exists(), f"no golden file {golden}; run with WARDEN_UPDATE_GOLDEN=1"
    assert data == golden.read_bytes(), f"{path.name} differs from {golden}"


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_matches_golden_file(conn, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A release bump must not rewrite every golden file: pin the version the exports carry.
    monkeypatch.setattr(store, "__version__", "0.0.0+golden")
    result = _export(conn, tmp_path / "out", fmt)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    expected = ["findings.csv"] if fmt == "csv" else [f"note-1-northwind-analytics.{fmt}"]
    assert names == sorted(expected + [f"manifest-{fmt}.json"])
    for name in expected:
        _check_golden(tmp_path / "out" / name, f"case.{fmt}")
    _check_golden(tmp_path / "out" / f"manifest-{fmt}.json", f"manifest-{fmt}.json")
    assert result.files[-1].name == f"manifest-{fmt}.json"


def test_manifest_hashes_match_the_files_and_the_database(conn, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _export(conn, out, "html")
    manifest = json.loads((out / "manifest-html.json").read_text())
    assert manifest["tool"]["name"] == "warden" and manifest["tool"]["version"]
    assert manifest["made_at"] == "2023-05-02T09:30:00Z" and manifest["made_by"] == "ana"
    for entry in manifest["files"]:
        data = (out / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    row = conn.execute("SELECT manifest_sha256, format, reviewer FROM export WHERE id = ?",
                       (result.export_id,)).fetchone()
    assert tuple(row) == (hashlib.sha256((out / "manifest-html.json").read_bytes()).hexdigest(), "html", "ana")
    stored = {r[0]: r[1] for r in conn.execute("SELECT path, sha256 FROM export_file WHERE export_id = ?",
                                               (result.export_id,))}
    assert stored == {f.name: f.sha256 for f in result.files}


def test_files_are_private_and_no_temporary_file_is_left(conn, tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    _export(conn, out, "md")
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not path.name.startswith(".warden-")


def test_export_marks_note_exported_and_findings_audit_requested_in_the_log(conn, tmp_path: Path) -> None:
    note = note_for(conn, CASE_ID)
    set_note_status(conn, note.id, "ready", reviewer="ana", clock=CLOCK)
    result = _export(conn, tmp_path / "out", "json", consumer_id=None, status="ready")
    assert result.notes_exported == (note.id,) and result.findings_requested == (1, 2, 4)
    assert note_for(conn, CASE_ID).status == "exported"
    statuses = dict(conn.execute("SELECT id, status FROM finding WHERE consumer_id = ?", (CASE_ID,)).fetchall())
    assert statuses == {1: "audit_requested", 2: "audit_requested", 3: "candidate",
                        4: "audit_requested"}
    logged = conn.execute("SELECT subject, subject_id, old_value, new_value FROM decision WHERE new_value IN "
                          "('exported', 'audit_requested') ORDER BY id").fetchall()
    assert [tuple(r) for r in logged] == [("note", note.id, "ready", "exported"), ("finding", 1, "confirmed", "audit_requested"),
                                          ("finding", 2, "confirmed", "audit_requested"),
                                          ("finding", 4, "confirmed", "audit_requested")]
    assert verify_chain(conn).ok
    # A CSV of findings is not the letter: it changes nothing.
    before = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
    _export(conn, tmp_path / "csv", "csv")
    assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == before


def test_eml_parses_back_as_a_draft_with_parts_and_bundle(conn, tmp_path: Path) -> None:
    _export(conn, tmp_path / "out", "eml")
    raw = (tmp_path / "out" / "note-1-northwind-analytics.eml").read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")      # RFC 5322 line endings
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "Platform Compliance <compliance@platform.example>"
    assert msg["To"].addresses[0].addr_spec == "legal@northwind.example"
    assert msg["Subject"] == "Audit request: Northwind Analytics Ltd, use of the API of Example Platform in 2022"
    assert msg["Date"].datetime.isoformat() == "2023-05-02T09:30:00+00:00"
    assert re.fullmatch(r"<warden\.note-1\.v\d+\.[0-9a-f]{16}@platform\.example>", msg["Message-ID"])
    assert msg["X-Unsent"] == "1" and msg["X-Mailer"].startswith("warden ")
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/json"]
    text = msg.get_body(("plain",)).get_content()
    assert "more than 790 million times" in " ".join(text.split()) and "\\<" not in text
    assert "<h2>Observed activity</h2>" in msg.get_body(("html",)).get_content()
    attachment = next(msg.iter_attachments())
    assert attachment.get_filename() == "note-1-northwind-analytics.json"
    bundle = json.loads(attachment.get_content())
    assert bundle["consumer"]["id"] == CASE_ID and bundle["note"]["id"] == 1


def test_eml_plain_part_is_plain_text_wrapped_with_aligned_columns(conn, tmp_path: Path) -> None:
    # The defect: the text/plain part was the raw Markdown (**, |---| rows, backslash escapes).
    _export(conn, tmp_path / "out", "eml")
    msg = email.message_from_bytes((tmp_path / "out" / "note-1-northwind-analytics.eml").read_bytes(),
                                   policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    for marker in ("**", "|", "\\", "##", "`", "---|"):
        assert marker not in text, marker
    lines = text.splitlines()
    # Every line within 72 columns, but a line holding a word that cannot be broken (a SHA-256).
    assert [line for line in lines if len(line) > 72 and max(len(w) for w in line.split()) < 40] == []
    assert "Date: 2 May 2023" in lines and "Response due: 23 May 2023" in lines
    # The per-application table as aligned columns: every figure ends in the same column.
    rows = [line for line in lines if line.startswith("Northwind App ") and "," in line]
    assert len(rows) == 8
    assert len({len(row) for row in rows}) == 1                              # records end in one column
    assert len({row.rindex(row.split()[-2]) + len(row.split()[-2]) for row in rows}) == 1   # calls too
    # Paragraphs re-wrapped: the headline is whole words within 72 columns, in order.
    flat = " ".join(text.split())
    assert ("In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days), the applications of "
            "Northwind Analytics Ltd accessed the API more than 790 million times") in flat
    assert "Legal Department <legal@northwind.example>" in text          # unescaped, as a reader types it
    # The HTML alternative and the bundle are still there.
    assert "<h2>Observed activity</h2>" in msg.get_body(("html",)).get_content()
    assert next(msg.iter_attachments()).get_filename() == "note-1-northwind-analytics.json"


def test_json_bundle_holds_the_case_and_its_provenance(conn, tmp_path: Path) -> None:
    _export(conn, tmp_path / "out", "json")
    bundle = json.loads((tmp_path / "out" / "note-1-northwind-analytics.json").read_text())
    assert bundle["format"] == "warden-case-bundle" and bundle["tool"]["version"]
    assert bundle["made_at"] == "2023-05-02T09:30:00Z"
    assert bundle["consumer"]["legal_name"] == "Northwind Analytics Ltd"
    assert bundle["consumer"]["tier"]["clauses"]["volume_cap"] == "§3.1 (Volume caps)"
    assert len(bundle["apps"]) == 8 and [f["id"] for f in bundle["findings"]] == [1, 2, 4]
    # The confirmations of the cited findings (status, and the severity and category kept), then the draft.
    assert [(d["subject"], d["subject_id"], d["field"]) for d in bundle["decisions"]] == [
        ("finding", fid, field) for fid in (1, 2, 4) for field in ("status", "severity", "category")] + [
        ("note", 1, "status"), ("note", 1, "body_sha256")]
    assert bundle["decisions"][-1]["new_value"] == hashlib.sha256(bundle["note"]["body"].encode()).hexdigest()
    note_body = bundle["note"]["body"]
    assert hashlib.sha256(note_body.encode()).hexdigest() == bundle["note"]["body_sha256"]
    total = next(f for f in bundle["evidence"]["figures"] if f["source"] is None and f["metric"] == "calls")
    assert total["value"] == 790_123_456 and total["pages"] == [1, 2] and total["runs"] == [1]
    assert bundle["evidence"]["changed_since_draft"] is False
    pages = bundle["provenance"]["pages"]
    assert [p["body_sha256"] for p in pages] == [hashlib.sha256(f"page {i}".encode()).hexdigest() for i in range(1, 5)]


def test_json_bundle_of_a_note_without_drafted_evidence_states_empty_provenance(conn, tmp_path: Path) -> None:
    # The column's default ('{}'; '' read the same): a note row not written by a draft.
    for evidence in ("{}", ""):
        conn.execute("UPDATE note SET evidence = ? WHERE id = 1", (evidence,))
        out = tmp_path / f"out{len(evidence)}"
        _export(conn, out, "json")
        bundle = json.loads((out / "note-1-northwind-analytics.json").read_text())
        assert bundle["evidence"] == {} and bundle["provenance"] == {"runs": [], "pages": []}


def test_json_bundle_flags_figures_revised_since_the_draft(conn, tmp_path: Path) -> None:
    conn.execute("UPDATE usage SET value = value + 1 WHERE app_id = 'app-1' AND day = '2022-03-01' AND metric = 'calls'")
    result = _export(conn, tmp_path / "out", "json")
    bundle = json.loads((tmp_path / "out" / "note-1-northwind-analytics.json").read_text())
    assert bundle["evidence"]["changed_since_draft"] is True
    # Which figures, then and now: the app's calls and the total, for 2022.
    assert [(c["source"], c["app_id"], c["metric"], c["now"] - c["drafted"]) for c in
            bundle["evidence"]["figure_changes"]] == [(None, None, "calls", 1), ("demo", "app-1", "calls", 1)]
    total = next(c for c in bundle["evidence"]["figure_changes"] if c["source"] is None)
    assert (total["drafted"], total["now"]) == (790_123_456, 790_123_457)
    assert ("note #1: figure changed since it was drafted: All applications, calls, 2022-01-01..2022-12-31: "
            "790,123,456 then, 790,123,457 now; re-draft before sending") in result.warnings
    # The CSV is the findings, not a letter: no letter's figure to re-draft.
    listed = _export(conn, tmp_path / "csv", "csv")
    assert not any("figure changed" in w for w in listed.warnings)


def test_csv_reads_back_with_the_case_system_columns(conn, tmp_path: Path) -> None:
    _export(conn, tmp_path / "out", "csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "findings.csv").read_text(), newline="")))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert [r["Severity"] for r in rows] == ["High", "Medium", "Critical"]
    assert all(r["Title"].startswith("Northwind Analytics Ltd [northwind-analytics]: ") for r in rows)
    assert rows[0]["Active"] == "True" and rows[0]["Verified"] == "True" and rows[0]["Date"] == "2023-01-02"
    assert "§3.1 (Volume caps)" in rows[0]["References"] and "790,123,456 API calls" in rows[0]["Description"]


# Only a confirmed finding (or one further along) can be exported: a note citing a
# candidate, parked or dismissed one is refused (re-draft first).
@pytest.mark.parametrize(("status", "active", "verified"), [
    ("confirmed", "True", "True"), ("audit_requested", "True", "True"), ("resolved", "False", "True")])
def test_csv_active_and_verified_follow_the_finding_status(conn, tmp_path: Path, status: str, active: str,
                                                           verified: str) -> None:
    conn.execute("UPDATE finding SET status = ? WHERE id = 1", (status,))
    _export(conn, tmp_path / "out", "csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "findings.csv").read_text(), newline="")))
    row = next(r for r in rows if r["References"].split("; ")[0] == "warden finding #1")
    assert (row["Active"], row["Verified"]) == (active, verified)
    assert f"Status: {status}." in row["Description"]


def test_csv_lists_each_cited_finding_once_and_a_consumer_without_a_tier_cites_no_clause(conn) -> None:
    from dataclasses import replace

    from store.export.formats import findings_csv

    conn.execute("UPDATE consumer SET tier_id = NULL WHERE id = ?", (CASE_ID,))
    first = note_for(conn, CASE_ID)
    assert first is not None and first.finding_ids == (1, 2, 4)
    # A second note citing one finding the first cites (listed once, under the first) and one it does not.
    second = replace(first, id=99, finding_ids=(1, 3))
    rows = list(csv.DictReader(io.StringIO(findings_csv(conn, [first, second]).decode(), newline="")))
    assert [row["References"] for row in rows] == [
        "warden finding #1; note #1", "warden finding #2; note #1", "warden finding #4; note #1",
        "warden finding #3; note #99"]


# Active: still open (not resolved or dismissed); Verified: a reviewer confirmed it.
@pytest.mark.parametrize(("status", "active", "verified"), [
    ("candidate", "True", "False"), ("confirmed", "True", "True"), ("audit_requested", "True", "True"),
    ("resolved", "False", "True"), ("dismissed", "False", "False")])
def test_csv_active_and_verified_of_every_finding_status(conn, status: str, active: str, verified: str) -> None:
    from store.export.formats import findings_csv

    conn.execute("UPDATE finding SET status = ? WHERE id = 1", (status,))
    note = note_for(conn, CASE_ID)
    assert note is not None
    rows = list(csv.DictReader(io.StringIO(findings_csv(conn, [note]).decode(), newline="")))
    assert [(r["References"].split("; ")[0], r["Active"], r["Verified"]) for r in rows][0] == (
        "warden finding #1", active, verified)


def test_rendered_files_use_the_reviewers_html_template_end_markdown_with_a_newline_keep_every_warning(
        conn, tmp_path: Path) -> None:
    from dataclasses import replace

    from store.export.formats import render

    (tmp_path / "note.html.j2").write_text("<p>custom {{ note_id }}</p>\n")
    config = NotesConfig(sender=CONFIG.sender, organisation=CONFIG.organisation, template_dir=tmp_path)
    note, hostile = note_for(conn, CASE_ID), note_for(conn, HOSTILE_ID)
    assert note is not None and hostile is not None

    def one(fmt: str, notes: list) -> tuple[list, list[str]]:
        return render(conn, notes, fmt, made_at=CLOCK(), reviewer="ana", config=config, log_head=None)

    (files, _) = one("md", [replace(note, body="Dear Northwind,\n\nno newline at the end")])
    assert files[0][1] == b"Dear Northwind,\n\nno newline at the end\n"
    (files, _) = one("md", [replace(note, body="ends with one\n")])
    assert files[0][1] == b"ends with one\n"
    (files, _) = one("html", [note])
    assert files[0][1] == f"<p>custom {note.id}</p>\n".encode()
    (files, warnings) = one("eml", [hostile, note])
    mail = email.message_from_bytes(files[1][1], policy=email.policy.default)
    assert mail.get_body(("html",)).get_content().strip() == f"<p>custom {note.id}</p>"
    # The first note's warning is kept when the second has none.
    assert warnings == [f"note #{hostile.id}: the notice contact is not exactly one e-mail address; To: left empty"]


def test_csv_of_a_note_whose_consumer_is_gone_says_so(conn) -> None:
    from dataclasses import replace

    from store.export.formats import findings_csv

    note = note_for(conn, CASE_ID)
    assert note is not None
    with pytest.raises(StoreError) as refused:
        findings_csv(conn, [replace(note, consumer_id="nobody")])
    assert str(refused.value) == "no consumer 'nobody' in the database"


def test_csv_states_a_findings_period_as_the_days_its_own_metrics_figures_cover(conn) -> None:
    from store.export.formats import findings_csv

    # API calls from 2 January on; records retrieved still on every day of 2022.
    conn.execute("DELETE FROM usage WHERE metric = 'calls' AND day = '2022-01-01' AND (source, app_id) IN "
                 "(SELECT source, app_id FROM app WHERE consumer_id = ?)", (CASE_ID,))
    note = note_for(conn, CASE_ID)
    assert note is not None
    rows = list(csv.DictReader(io.StringIO(findings_csv(conn, [note]).decode(), newline="")))
    assert rows[0]["Description"].splitlines()[0] == (
        "Volume cap exceeded: 790,123,456 API calls from 2 January 2022, the first day we hold figures for, "
        "to 31 December 2022, against a limit of 100,000,000 per year (7.90 times the limit).")


# A spreadsheet runs a cell that starts with = + - @, and some strip a leading tab
# or CR first (OWASP, "CSV Injection"): each is quoted with a leading '.
@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "' =1+1"), ("\r=1+1", "' =1+1"), ("\t", "' "),
    ("a=1", "a=1"), ("1-2", "1-2"), ("x@y", "x@y"), ("a\tb", "a b"), ("", ""), (None, ""),
    ("\x1b[31m=1", "\ufffd[31m=1"),
])
def test_a_csv_cell_a_spreadsheet_would_run_is_quoted(value: object, cell: str) -> None:
    assert neutralise_cell(value) == cell


def test_a_csv_cell_keeps_its_line_breaks_only_where_asked_and_is_still_quoted() -> None:
    assert neutralise_cell("\r=1\nx", newlines=True) == "'=1\nx"
    assert neutralise_cell("-1\r\nx", newlines=True) == "'-1\nx"
    assert neutralise_cell("a\nb", newlines=True) == "a\nb"
    assert neutralise_cell("a\nb") == "a b"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_legal_name_a_spreadsheet_would_run_is_quoted_in_the_findings_csv(conn, tmp_path: Path,
                                                                          start: str) -> None:
    conn.execute("UPDATE consumer SET legal_name = ? WHERE id = ?", (start + "cmd|' /C calc'!A0", CASE_ID))
    _export(conn, tmp_path / "out", "csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "findings.csv").read_text(), newline="")))[1:]
    assert rows and all(row[0].startswith("'") and "cmd|' /C calc'!A0 [northwind-analytics]" in row[0]
                        for row in rows)


# --- hostile names, in every format ---------------------------------------------------------


def _assert_inert_html(html: str) -> None:
    for tag in ("<script", "<img", "<a ", "<b>", "<strong>bold", "<em>x</em>", "<code>z</code>"):
        assert tag not in html, tag


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_hostile_consumer_is_inert_in_every_format(conn, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = _export(conn, out, fmt, consumer_id=HOSTILE_ID)
    for f in result.files:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", f.name) and ".." not in f.name
        data = (out / f.name).read_bytes()
        assert b"\x1b" not in data and "\u202e".encode() not in data, f.name
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in result.files)
    body = (out / result.files[0].name).read_bytes()
    if fmt == "md":
        _assert_inert_html(MarkdownIt("commonmark", {"html": False}).enable("table").render(body.decode()))
    elif fmt == "html":
        html = body.decode()
        _assert_inert_html(html)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    elif fmt == "eml":
        msg = email.message_from_bytes(body, policy=email.policy.default)
        assert msg["To"] is None                         # "a@b.example, =evil@c.example" is not one address
        assert "\n" not in msg["Subject"] and "<script>" in msg["Subject"]
        _assert_inert_html(msg.get_body(("html",)).get_content())
        assert any("not exactly one e-mail address" in w for w in result.warnings)
    elif fmt == "json":
        bundle = json.loads(body)
        assert bundle["consumer"]["legal_name"] == HOSTILE_NAME      # data kept exactly, as JSON
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert rows[1][0].startswith("'=HYPERLINK(")


def test_safe_slug_never_yields_a_path() -> None:
    for text in ("../../etc/passwd", "a/b\\c", "..", ".hidden", "x\x00y", "con", "é", "", "a" * 300):
        slug = safe_slug(text)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug) and ".." not in slug and len(slug) <= 69
    assert safe_slug("northwind-analytics") == "northwind-analytics"
    assert safe_slug("a/b") != safe_slug("a:b")          # lossy slugs carry a hash of the id


# --- overwrite refusal --------------------------------------------------------------------


def test_second_export_refuses_to_overwrite_and_writes_nothing(conn, tmp_path: Path) -> None:
    out = tmp_path / "out"
    note = note_for(conn, CASE_ID)
    set_note_status(conn, note.id, "ready", reviewer="ana", clock=CLOCK)
    _export(conn, out, "csv", consumer_id=None, status="ready")
    (out / "findings.csv").write_text("reviewer's own edits\n")
    with pytest.raises(ExportError) as caught:
        _export(conn, out, "csv", consumer_id=None, status="ready")
    assert "findings.csv" in str(caught.value) and "manifest-csv.json" in str(caught.value)
    assert "--force" in str(caught.value)
    assert (out / "findings.csv").read_text() == "reviewer's own edits\n"
    assert sorted(p.name for p in out.iterdir()) == ["findings.csv", "manifest-csv.json"]
    _export(conn, out, "csv", consumer_id=None, status="ready", force=True)
    assert (out / "findings.csv").read_text().startswith("Title,Description")
    assert sorted(p.name for p in out.iterdir()) == ["findings.csv", "manifest-csv.json"]


def test_one_existing_file_blocks_the_whole_export(conn, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest-md.json").write_text("{}")
    with pytest.raises(ExportError, match="manifest-md.json"):
        _export(conn, out, "md")
    assert sorted(p.name for p in out.iterdir()) == ["manifest-md.json"]
    assert note_for(conn, CASE_ID).status == "draft"              # nothing recorded either


def test_nothing_to_export_is_an_error(conn, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no note"):
        _export(conn, tmp_path / "out", "md", consumer_id=None, status="ready")
    assert not (tmp_path / "out").exists()


def test_exports_are_byte_identical_for_the_same_data_and_clock(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        connection = seed(tmp_path / f"{name}.db")
        draft_note(connection, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
        for fmt in ("eml", "json"):
            _export(connection, tmp_path / name, fmt)
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / name).iterdir()})
    assert outputs[0] == outputs[1]


def test_exporting_a_note_without_confirmed_findings_warns(conn, tmp_path: Path) -> None:
    conn.execute("UPDATE finding SET status = 'candidate' WHERE consumer_id = ?", (CASE_ID,))
    draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    result = _export(conn, tmp_path / "out", "md")
    assert "note #1 (northwind-analytics) cites no confirmed finding" in result.warnings
    lines = result.summary_lines()
    assert lines[0] == f"warden: exported 1 note(s) as md: 1 file(s) and manifest-md.json in {tmp_path / 'out'}"
    assert lines[-1] == "warden: warning: note #1 (northwind-analytics) cites no confirmed finding"


def test_what_an_export_prints_names_every_file_its_hash_the_log_head_and_what_it_marked(conn, tmp_path: Path) -> None:
    # What warden prints after an export (the command line; the TUI shows its first
    # line), word for word, each figure read from the files and the database.
    out = tmp_path / "out"
    head_id, head = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()

    def listed(*names: str) -> list[str]:
        return [f"  {name}  sha256 {hashlib.sha256((out / name).read_bytes()).hexdigest()}  "
                f"{(out / name).stat().st_size:,} bytes" for name in names]

    md = _export(conn, out, "md", consumer_id=None, status="draft")
    letters = ["note-1-northwind-analytics.md", "note-2-etc-pass-wd-x-y-e8ece14f.md"]
    assert (out / letters[0]).stat().st_size > 999      # a size that takes a thousands separator
    requested = [row[0] for row in conn.execute("SELECT id FROM finding WHERE status = 'audit_requested' ORDER BY id")]
    assert len(requested) >= 2 and [row[0] for row in conn.execute(
        "SELECT id FROM note WHERE status = 'exported' ORDER BY id")] == [1, 2]
    assert md.summary_lines() == [
        f"warden: exported 2 note(s) as md: 2 file(s) and manifest-md.json in {out}",
        *listed(*letters, "manifest-md.json"),
        f"warden: decision log head {head} ({head_id} entries): check it with warden verify --head",
        "warden: marked exported: note(s) #1, #2",
        "warden: marked audit_requested: finding(s) " + ", ".join(f"#{i}" for i in requested),
    ]
    # The same notes' findings as CSV: nothing more to mark.
    head_id, head = conn.execute("SELECT id, hash FROM decision ORDER BY id DESC LIMIT 1").fetchone()
    csv_export = _export(conn, out, "csv", note_ids=md.note_ids)
    assert csv_export.summary_lines() == [
        f"warden: exported the findings of 2 note(s) as csv: 1 file(s) and manifest-csv.json in {out}",
        *listed("findings.csv", "manifest-csv.json"),
        f"warden: decision log head {head} ({head_id} entries): check it with warden verify --head",
    ]


@pytest.mark.parametrize(("dismissed", "refusal", "cited_after_redraft"), [
    ((2,), "note #1 cites finding #2, which is now dismissed", (1, 4)),
    ((2, 4), "note #1 cites finding #2, which is now dismissed; note #1 cites finding #4, which is now dismissed",
     (1,)),
], ids=["one-dismissed", "two-dismissed"])
def test_a_note_citing_a_finding_dismissed_since_is_not_exported(
        conn, tmp_path: Path, dismissed: tuple[int, ...], refusal: str, cited_after_redraft: tuple[int, ...]) -> None:
    from store.review import dismiss
    for finding_id in dismissed:                # of the three findings note #1 cites: 1, 2 and 4
        dismiss(conn, finding_id, reviewer="bo", reason_code="false_positive", clock=CLOCK)
    with pytest.raises(ExportError) as refused:
        _export(conn, tmp_path / "out", "md")
    assert str(refused.value) == refusal + ". Re-draft the note(s) before exporting; nothing written"
    assert refused.value.title == "Note out of date"
    assert not (tmp_path / "out").exists()
    draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert _export(conn, tmp_path / "out", "md").findings_requested == cited_after_redraft


def test_export_takes_a_database_path_too(conn, tmp_path: Path) -> None:
    result = export_notes(tmp_path / "warden.db", fmt="md", out_dir=tmp_path / "out", consumer_id=CASE_ID,
                          reviewer="ana", clock=CLOCK, config=CONFIG)
    assert result.notes_exported == (1,) and note_for(conn, CASE_ID).status == "exported"


@pytest.mark.parametrize(("contact", "expected"), [
    ("legal@northwind.example", "Northwind Analytics Ltd <legal@northwind.example>"),
    ("Legal Dept <legal@northwind.example>", "Legal Dept <legal@northwind.example>"),
    ("a@b.example, c@d.example", None),
    ("alice@example.org)<bob@example.org>", None),
    ("call our office", None),
])
def test_eml_recipient_is_exactly_one_address_or_none(conn, tmp_path: Path, contact: str, expected: str | None) -> None:
    conn.execute("UPDATE consumer SET notice_contact = ? WHERE id = ?", (contact, CASE_ID))
    _export(conn, tmp_path / "out", "eml")
    msg = email.message_from_bytes((tmp_path / "out" / "note-1-northwind-analytics.eml").read_bytes(),
                                   policy=email.policy.default)
    assert (str(msg["To"]) if msg["To"] is not None else None) == expected
