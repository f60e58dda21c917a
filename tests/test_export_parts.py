"""What an export is made of, piece by piece, as known answers: file names from
ids (the hash suffixes computed once with ``printf '%s' ID | sha256sum``), the
JSON bytes, the e-mail's recipient, Message-ID domain and encodings, a reviewer's
own HTML template."""

from __future__ import annotations

import pytest

import email
import email.policy
from datetime import datetime, timezone
from pathlib import Path

from store.config import NotesConfig
from store.export.formats import (
    _message_domain, _recipient, json_bytes, manifest_name, note_eml, note_html, note_stem, safe_slug,
)
from store.notes import Note
from store.notes.plaintext import parse

NOTE = Note(id=12, consumer_id="northwind/analytics", template="audit_request", subject="Audit request", body="b",
            status="draft", due_date=None, created_at="t", updated_at="t", version=3, finding_ids=(1,))
MADE_AT = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "slug"), [
    ("northwind-analytics", "northwind-analytics"),
    ("v1.2_beta", "v1.2_beta"),
    ("a/b", "a-b-c14cddc0"),
    ("../../etc/passwd", "etc-passwd-3754d6cb"),
    ("x..y", "x.y-c0e705fa"),
    (".hidden", "hidden-16924190"),
    ("_x_", "x-f1f6bd62"),
    ("X-ray", "X-ray"),
    # Stripped before it is cut: the 60 characters kept are the id's own, not its leading '_'.
    ("_" + "a" * 60, "a" * 60 + "-78db9ba1"),
    ("", "id-e3b0c442"),
    ("..", "id-5ec1f7e7"),
    ("é", "id-4a99557e"),
    # 60 characters is the limit: exactly on it the id is kept, one past it is cut and hashed.
    ("a" * 60, "a" * 60),
    ("a" * 61, "a" * 60 + "-35d5fc17"),
    ("a" * 70, "a" * 60 + "-6bd5e503"),
    # Cut at 60 the id would end in '-': that is stripped too.
    ("a" * 59 + "-b", "a" * 59 + "-83bf0af8"),
])
def test_a_file_name_from_an_id(text: str, slug: str) -> None:
    assert safe_slug(text) == slug


def test_a_notes_file_names() -> None:
    assert note_stem(NOTE) == "note-12-northwind-analytics-d6f3455e"
    assert manifest_name("csv") == "manifest-csv.json"


def test_json_is_sorted_indented_ascii_and_ends_with_a_newline() -> None:
    assert json_bytes({"b": 1, "a": "é\u202e"}) == b'{\n  "a": "\\u00e9\\u202e",\n  "b": 1\n}\n'


@pytest.mark.parametrize(("sender", "domain"), [
    ("Warden <audits@compliance.example>", "compliance.example"),
    ("audits@compliance.example", "compliance.example"),
    ("audits@-comp_li!ance.example.", "compliance.example"),
    ("Audits <audits@Xerox.EXAMPLE>", "Xerox.EXAMPLE"),
    ('"a@b"@compliance.example', "compliance.example"),    # a quoted local part may hold an '@'
    ("", "warden.invalid"),
])
def test_the_message_id_domain_is_the_senders_or_a_reserved_one(sender: str, domain: str) -> None:
    assert _message_domain(sender) == domain


@pytest.mark.parametrize(("contact", "expected"), [
    ("legal@northwind.example", "Northwind Analytics Ltd <legal@northwind.example>"),
    ("Legal Dept <legal@northwind.example>", "Legal Dept <legal@northwind.example>"),
    ("<legal@northwind.example>", "Northwind Analytics Ltd <legal@northwind.example>"),
    (None, None),
    ("", None),
    ("legal.northwind.example", None),
    ("a@b.example, c@d.example", None),
    ("Legal <legal@northwind.example>, Office", None),
    # One '@', yet no address: it sits in a comment or a quoted name.
    ("legal (at@home) office", None),
    ('"legal@northwind" <legal>', None),
])
def test_the_recipient_is_exactly_one_address(contact: str | None, expected: str | None) -> None:
    to = _recipient("Northwind Analytics Ltd", contact)
    assert (None if to is None else str(to)) == expected


def test_both_parts_of_an_eml_stay_quoted_printable_whatever_the_language() -> None:
    # Left to choose, the e-mail package writes mostly non-ASCII text as base64,
    # which nobody can read or compare in the file; the draft keeps it legible.
    greek = "Ελληνικά: ο καταναλωτής υπερέβη το ετήσιο όριο κλήσεων του API κατά 25%. " * 4
    note = Note(**{**NOTE.__dict__, "body": greek})
    data, warnings = note_eml(note, "Northwind", "legal@northwind.example", html=f"<p>{greek}</p>", bundle=b"{}",
                              made_at=MADE_AT, config=NotesConfig(sender="Audits <audits@platform.example>"),
                              tokens=parse(greek))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert (plain["Content-Transfer-Encoding"], html["Content-Transfer-Encoding"]) == ("quoted-printable",) * 2
    assert plain["Content-Type"] == 'text/plain; charset="utf-8"'
    assert plain.get_content().strip().startswith("Ελληνικά: ο καταναλωτής") and warnings == []


def test_a_reviewers_html_template_is_the_one_used(tmp_path: Path) -> None:
    (tmp_path / "note.html.j2").write_text("<h1>{{ subject }}</h1><p>note {{ note_id }} v{{ note_version }}</p>\n")
    html = note_html(NOTE, made_at=MADE_AT, made_by="ana", template_dir=tmp_path)
    assert html == "<h1>Audit request</h1><p>note 12 v3</p>\n"
