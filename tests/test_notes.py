"""Drafting audit-request notes: figures, sections, escaping, templates, statuses, autosave."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notes_case import CASE_ID, CLOCK, HOSTILE_ID, seed
from store import notes
from store.config import NotesConfig
from store.db import connect, transaction
from store.errors import ConflictError, DecisionRefused, TemplateError
from store.cases import Finding
from store.notes import context, draft_note, note_for, save_body, set_note_status
from store.notes.markdown import md_escape
from store.notes.templates import BUILTIN_TEMPLATES
from store.notes.wording import finding_sentence, more_than
from store.decision_log import verify_chain

ROOT = Path(__file__).resolve().parent.parent
CONFIG = NotesConfig()


@pytest.fixture()
def conn(tmp_path: Path):
    connection = seed(tmp_path / "warden.db")
    yield connection
    connection.close()


# --- more_than ---------------------------------------------------------------------

_WORDS = {"million": 10**6, "billion": 10**9, "trillion": 10**12}


def _value(text: str) -> int:
    """Read back what more_than() wrote: "790 million" -> 790000000."""
    number, _, word = text.partition(" ")
    return int(Decimal(number.replace(",", "")) * _WORDS.get(word, 1))


@pytest.mark.parametrize(("n", "expected"), [
    (790_123_456, "790 million"),
    (780_000_001, "780 million"),
    (780_000_000, "770 million"),          # exactly 780 million: "more than 780 million" would be false
    (26_412_000_000, "26 billion"),
    (26_000_000_000, "25 billion"),
    (1_000_000_000, "990 million"),
    (1_234_567_890, "1.2 billion"),
    (1_200_000_000, "1.1 billion"),
    (10_000_000, "9.9 million"),
    (12_345, "12,000"),
    (1_000, "990"),
    (100, "99"),
    (2, "1"),
    (1, "0"),
    (5_000_000_000_000, "4.9 trillion"),
])
def test_more_than_rounds_down_strictly(n: int, expected: str) -> None:
    assert more_than(n) == expected


@pytest.mark.parametrize("bad", [0, -5])
def test_more_than_refuses_nothing_to_state(bad: int) -> None:
    with pytest.raises(ValueError):
        more_than(bad)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=1, max_value=10**16))
def test_more_than_is_true_and_as_high_as_two_digits_allow(n: int) -> None:
    stated = _value(more_than(n))
    assert stated < n
    # The next two-significant-digit figure above the stated one would not be true.
    step = 10 ** max(len(str(stated)) - 2, 0)
    assert stated + step >= n


# --- escaping ----------------------------------------------------------------------


@pytest.mark.parametrize("hostile", [
    "[click](javascript:alert(1))", "<script>alert(1)</script>", "**bold** _it_ `code`", "a | b | c",
    "# heading", "- item", "1. item", "> quote", "![img](http://x/y.png)", "&lt;b&gt;", "===",
])
def test_md_escape_renders_literally(hostile: str) -> None:
    from markdown_it import MarkdownIt
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(md_escape(hostile))
    assert html.startswith("<p>") and html.count("<") == 2        # one paragraph, no other element
    import html as html_module
    assert html_module.unescape(html[3:-5]) == hostile


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1 .)#*_-+=>![](){}<>|`~\\&;:/@\"'x")), min_size=1, max_size=30))
def test_md_escape_is_literal_for_any_punctuation(text: str) -> None:
    import html as html_module

    from markdown_it import MarkdownIt
    value = text.strip()
    if not value:
        return
    rendered = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).render(md_escape(value))
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered
    assert html_module.unescape(rendered[3:-5]) == value


def test_md_escape_makes_control_characters_visible() -> None:
    escaped = md_escape("a\x1b[31mred\x07\u202eevil\nnext")
    assert "\x1b" not in escaped and "\x07" not in escaped and "\u202e" not in escaped
    assert "\n" not in escaped and "\ufffd" in escaped


# --- drafting ----------------------------------------------------------------------


def test_case_note_states_rounded_figures_period_and_evidence(conn) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    body = note.body
    assert note.cites_confirmed and note.warning is None
    assert note.finding_ids == (1, 2, 4)                       # confirmed ones; the candidate #3 is not cited
    assert ("accessed the API more than 790 million times and retrieved more than 26 billion records"
            in " ".join(body.split()))
    assert "In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days)" in body
    assert "**Date:** 2 May 2023" in body and "**Response due:** 23 May 2023" in body
    assert "Legal Department \\<legal@northwind.example\\>" in body
    for i in range(1, 9):
        assert f"| Northwind App {i} | demo / app-{i} |" in body
    assert body.count("| none declared |") == 6
    assert "§3.1 (Volume caps)" in body and "§5.2 (Government end users)" in body
    assert ("The yearly limit of 100,000,000 API calls was exceeded in 2022: 790,123,456 API calls, 7.90 times the "
            "limit (Schedule A).") in body
    assert "| 2022 | 790,123,456 | 100,000,000 per year | 7.90 | #1 volume cap exceeded (high) |" in body
    # The missing use case spans Oct 2021..2022 but the figures start in 2022: the letter says so.
    assert ("6 of the 8 applications that used the API from 1 January 2022, the first day we hold figures for, "
            "to 31 December 2022, declared no use case") in " ".join(body.split())
    for words in ("purpose", "stored, where", "deletions", "government end user", "work around", "signed"):
        assert words in body
    assert "Reservation of rights" in body
    # Every response page's SHA-256 and both runs are in the appendix.
    for page in range(1, 5):
        assert hashlib.sha256(f"page {page}".encode()).hexdigest() in body
    # 8 applications x 365 days of figures.
    assert "| 2022 | All applications: API calls | 790,123,456 | 2,920 | 1 | 1–2 |" in body
    assert "| 2022 | All applications: records retrieved | 26,412,000,000 | 2,920 | 2 | 3–4 |" in body


def test_drafting_is_deterministic(tmp_path: Path) -> None:
    first = draft_note(seed(tmp_path / "a.db"), CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    second = draft_note(seed(tmp_path / "b.db"), CASE_ID, reviewer="bo", clock=CLOCK, config=CONFIG)
    assert first.body.encode() == second.body.encode()


def test_draft_without_confirmed_findings_warns_in_the_note(conn) -> None:
    with transaction(conn):
        conn.execute("UPDATE finding SET status = 'candidate' WHERE consumer_id = ?", (CASE_ID,))
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert not note.cites_confirmed and note.finding_ids == ()
    assert "no confirmed finding" in (note.warning or "")
    assert note.body.splitlines()[2].startswith("> **WARNING: this draft cites no confirmed finding.**")
    # Without findings the period is the calendar year of the latest usage.
    assert "In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days)" in note.body


def test_hostile_names_cannot_inject_markdown(conn) -> None:
    from markdown_it import MarkdownIt
    note = draft_note(conn, HOSTILE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(note.body)
    assert "<script" not in html and "<img" not in html and "<a " not in html
    assert "<strong>bold</strong>" not in html and "<em>x</em>" not in html and "<code>z</code>" not in html
    assert "\x1b" not in note.body and "\u202e" not in note.body
    # The hostile "|" in the app name did not add a table column.
    row = next(line for line in note.body.splitlines() if "onerror" in line and "evil\\-app" not in line
               and "evil-app" in line)
    assert row.replace("\\|", "").count("|") == 4
    # No records figure is stored for it: the table says so instead of showing 0.
    assert "| 59 | no data |" in note.body and "retrieved more than" not in note.body


def test_redraft_replaces_open_note_and_exported_note_starts_a_new_one(conn) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    save_body(conn, note.id, "edited", expected_version=note.version, clock=CLOCK)
    set_note_status(conn, note.id, "ready", reviewer="ana", clock=CLOCK)
    again = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert again.id == note.id and again.status == "draft" and again.body == note.body
    set_note_status(conn, note.id, "exported", reviewer="ana", clock=CLOCK)
    fresh = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert fresh.id != note.id and note_for(conn, CASE_ID) == fresh


def test_a_redraft_from_a_stale_version_keeps_the_other_reviewers_edit(conn) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    entries = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
    edited = save_body(conn, note.id, "bo's careful edit", expected_version=note.version, clock=CLOCK)
    # Ana re-drafts from the version she opened, before Bo's edit: refused, Bo's text stays.
    with pytest.raises(ConflictError) as caught:
        draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG, expected_version=note.version)
    assert str(caught.value) == f"note #{note.id} changed (version {edited}, expected {note.version}); reload it"
    assert caught.value.current["body"] == "bo's careful edit"
    assert note_for(conn, CASE_ID).body == "bo's careful edit"
    assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == entries
    # From the version she now sees, it goes through.
    again = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG, expected_version=edited)
    assert again.id == note.id and again.body == note.body and again.version == edited + 1


def test_status_changes_are_logged_and_chain_verifies(conn) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    set_note_status(conn, note.id, "ready", reviewer="bo", clock=CLOCK, reason="checked")
    set_note_status(conn, note.id, "draft", reviewer="bo", clock=CLOCK)
    rows = conn.execute("SELECT reviewer, field, old_value, new_value, reason FROM decision "
                        "WHERE subject = 'note' AND subject_id = ? ORDER BY id", (note.id,)).fetchall()
    body = hashlib.sha256(note.body.encode()).hexdigest()
    # Each status change, with the SHA-256 of the text in the same action.
    assert [tuple(r)[:4] for r in rows] == [
        ("ana", "status", None, "draft"), ("ana", "body_sha256", None, body),
        ("bo", "status", "draft", "ready"), ("bo", "body_sha256", body, body),
        ("bo", "status", "ready", "draft"), ("bo", "body_sha256", body, body)]
    assert rows[2][4] == "checked"
    assert verify_chain(conn).ok
    set_note_status(conn, note.id, "exported", reviewer="bo", clock=CLOCK)
    with pytest.raises(DecisionRefused):
        set_note_status(conn, note.id, "draft", reviewer="bo", clock=CLOCK)


def test_save_body_conflicts_on_a_stale_version(conn) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    version = save_body(conn, note.id, "mine", expected_version=note.version)
    assert version == note.version + 1
    with pytest.raises(ConflictError) as caught:
        save_body(conn, note.id, "theirs", expected_version=note.version)
    assert caught.value.current["body"] == "mine" and caught.value.current["version"] == version
    set_note_status(conn, note.id, "exported", reviewer="ana", clock=CLOCK)
    with pytest.raises(ConflictError, match="exported"):
        save_body(conn, note.id, "too late")


@pytest.mark.parametrize(("category", "period", "figures", "actual", "limit", "expected"), [
    ("rate_limit", ("2022-03-01", "2022-03-31"),
     {"limit": {"period": "day"}, "worst_day": {"day": "2022-03-04", "total": 5000000},
      "days_over": [{"day": "2022-03-04"}, {"day": "2022-03-09"}]}, 5_000_000, 4_000_000,
     "as many as 5,000,000 API calls on one UTC day (4 March 2022), against a limit of 4,000,000 per day "
     "(1.25 times the limit); the daily limit was exceeded on 2 day(s) in March 2022"),
    ("circumvention", ("2022-01-01", "2022-12-31"), {"limit": {"period": "year"}, "apps_with_usage": 8},
     5_000_000, 4_000_000, "5,000,000 API calls in 2022, spread over 8 applications each under the limit of "
     "4,000,000 per year that binds the agreement as a whole (1.25 times the limit)"),
    ("endpoint_outside", ("2022-05-01", "2022-05-31"), {"endpoints": [{"endpoint": "/2/compliance/*"}]},
     1234, None, "1,234 API calls in May 2022 to endpoints outside the agreement (/2/compliance/*)"),
])
def test_finding_sentences_say_what_the_rule_measured(category, period, figures, actual, limit, expected) -> None:
    finding = Finding(id=1, consumer_id="c", category=category, period="p", period_start=period[0],
                      period_end=period[1], severity="high", status="confirmed", rule_id=category, metric="calls",
                      actual=actual, limit_value=limit, ratio=actual / limit if limit else None, figures=figures,
                      evidence=None, detected_at="t", updated_at="t", version=1)
    assert finding_sentence(finding) == expected


# --- templates ---------------------------------------------------------------------


def test_template_override_and_partial_override(conn, tmp_path: Path) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "evidence_appendix.md.j2").write_text("APPENDIX {{ evidence.page_count }} {{ consumer.id }}\n")
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=NotesConfig(template_dir=overrides))
    assert note.body.endswith("APPENDIX 4 northwind-analytics\n") and "## Background" in note.body
    (overrides / "audit_request.md.j2").write_text("Dear {{ consumer.legal_name }}, {{ totals.calls | more_than }}.\n")
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=NotesConfig(template_dir=overrides))
    assert note.body == "Dear Northwind Analytics Ltd, 790 million.\n"


@pytest.mark.parametrize(("source", "line", "words"), [
    ("# ok\n\n{% if consumer.id %}\nunclosed\n", 4, "end of template"),
    ("# ok\n{{ consumer.no_such_field }}\n", 2, "no_such_field"),
    ("# ok\n\n\n{{ totals.calls | more_than(1, 2) }}\n", 4, "TypeError"),
])
def test_template_error_names_file_and_line_and_keeps_the_draft(conn, tmp_path: Path, source: str, line: int,
                                                                words: str) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    save_body(conn, note.id, "my careful edit", clock=CLOCK)
    overrides = tmp_path / "templates"
    overrides.mkdir()
    broken = overrides / "audit_request.md.j2"
    broken.write_text(source)
    with pytest.raises(TemplateError) as caught:
        draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=NotesConfig(template_dir=overrides))
    assert f"{broken}:{line}" in str(caught.value) and words in str(caught.value)
    kept = note_for(conn, CASE_ID)
    assert kept is not None and kept.body == "my careful edit" and kept.version == note.version + 1


def test_builtin_templates_are_packaged() -> None:
    # pyproject's package-data ships templates/*.j2: the built-ins must match that pattern.
    names = sorted(p.name for p in BUILTIN_TEMPLATES.iterdir())
    assert {"audit_request.md.j2", "evidence_appendix.md.j2", "note.html.j2"} <= set(names)
    assert all(name.endswith(".j2") or name == "README.md" for name in names)


def test_long_page_lists_become_a_digest(conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "APPENDIX_PAGE_LIMIT", 2)
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert "| Page | Run |" not in note.body and "4 response pages" in note.body
    pages = notes.note_evidence(conn, note.id)["pages"]
    digest = hashlib.sha256("".join(f"{p['id']} {p['body_sha256']}\n" for p in pages).encode()).hexdigest()
    assert f"Page-list digest: `{digest}`" in note.body


# --- autosave ----------------------------------------------------------------------


def test_autosave_survives_a_killed_process(conn, tmp_path: Path) -> None:
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    script = textwrap.dedent(f"""
        import os, signal
        from store.db import connect
        from store.notes import save_body
        conn = connect({str(tmp_path / 'warden.db')!r})
        save_body(conn, {note.id}, "typed just before the terminal died", expected_version={note.version})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    fresh = connect(tmp_path / "warden.db")
    assert note_for(fresh, CASE_ID).body == "typed just before the terminal died"


def test_figures_revised_upstream_are_stated_in_the_appendix(conn) -> None:
    with transaction(conn):
        conn.execute("UPDATE usage SET value = value - 5 WHERE app_id = 'app-2' AND day = '2022-04-01' AND metric = 'calls'")
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    assert "**Revised figures:** 1 daily figure(s) of this period were revised" in note.body
    assert "| **Total** | **790,123,451** |" in note.body


def test_findings_over_two_years_headline_the_newest_and_state_the_earlier(conn) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO usage VALUES ('demo', 'app-1', '2021-11-05', 'calls', 123456789, 1, 1)")
        conn.execute(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status, "
            "rule_id, metric, actual, limit_value, ratio, figures, detected_at, updated_at) VALUES "
            "(?, 'volume_cap', '2021-11', '2021-11-01', '2021-11-30', 'high', 'confirmed', 'volume_cap', 'calls', "
            "123456789, 20000000, 6.17, '{\"limit\": {\"period\": \"month\"}}', '2023-01-02T03:00:00Z', "
            "'2023-01-02T03:00:00Z')", (CASE_ID,))
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    flat = " ".join(note.body.split())
    assert note.subject.endswith("in November 2021–December 2022")
    assert "In 2022 (2022-01-01 to 2022-12-31, UTC days; figures for each of its 365 days), the applications of " \
           "Northwind Analytics Ltd accessed the API more than 790 million times" in flat
    # The earlier segment is the rest of the span in 2021 (November to December), stated as the one
    # day it holds figures for: never the whole months.
    assert "On 5 November 2021, the only day of November–December 2021 we hold figures for (2021-11-05 to " \
           "2021-11-05, UTC days; figures for it), they accessed the API more than 120 million times." in flat
    assert ("| November–December 2021 (figures for 5 November only) | All applications: API calls | 123,456,789 "
            "| 1 | 1 | 1 |") in note.body
    assert "2021-11-01" not in note.body and "2021-12-31" not in note.body


def test_a_consumer_with_no_tier_apps_usage_or_findings_still_gets_a_sound_draft(conn) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('bare', 'Bare Ltd')")
    note = draft_note(conn, "bare", reviewer="ana", clock=CLOCK, config=CONFIG)
    flat = " ".join(note.body.split())
    assert not note.cites_confirmed
    assert "its agreement with the Platform, agreement version not on record" in flat
    assert "No application is registered to Bare Ltd" in flat
    assert "We have no recorded usage for the applications of Bare Ltd in 2022" in flat
    assert "No confirmed finding is cited." in flat and "No usage figure is stored for this period." in flat
    assert "**Notice contact:** none on record" in note.body


def test_a_ready_note_is_frozen_until_taken_back_to_draft_in_the_log(conn) -> None:
    # The defect: a note's text could change after "ready", with no log entry, and be exported.
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    ready, warnings = notes.mark_ready(conn, note.id, reviewer="ana", clock=CLOCK)
    assert warnings == []
    with pytest.raises(ConflictError, match="ready, so its text is frozen"):
        save_body(conn, note.id, "a different letter", expected_version=ready.version, clock=CLOCK)
    assert note_for(conn, CASE_ID).body == note.body
    back = notes.reopen_for_editing(conn, note.id, reviewer="bo", clock=CLOCK)
    assert back.status == "draft"
    save_body(conn, note.id, "a different letter", expected_version=back.version, clock=CLOCK)
    logged = conn.execute("SELECT reviewer, field, new_value, reason FROM decision WHERE subject = 'note'"
                          " ORDER BY id").fetchall()
    assert [tuple(r)[:3] for r in logged][-2:] == [("bo", "status", "draft"),
                                                   ("bo", "body_sha256", hashlib.sha256(note.body.encode()).hexdigest())]
    assert logged[-1][3] == "back to draft to edit it"


def test_marking_ready_is_refused_while_a_cited_finding_is_withdrawn(conn) -> None:
    from store.review import dismiss

    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=CONFIG)
    dismiss(conn, 2, reviewer="bo", reason_code="false_positive", clock=CLOCK)
    with pytest.raises(DecisionRefused, match="cites finding #2, which is now dismissed"):
        notes.mark_ready(conn, note.id, reviewer="ana", clock=CLOCK)
    assert note_for(conn, CASE_ID).status == "draft"
