"""Follow-ups: a reminder, an overdue notice and a final notice drafted from the
case (the letter's date and reference, the due date, the items still open),
warning when they do not fit, re-drafted as themselves, exported like the
letter, the export recorded on the case."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from store.casework.followups import draft_followup, redraft
from store.casework.items import REQUEST_ITEMS, ItemChange, mark_items
from store.casework.state import latest_case
from store.config import NotesConfig
from store.errors import DecisionRefused
from store.export import export_notes
from tests.cases_data import at, case_columns, log, sent_case
from tests.notes_case import CASE_ID, seed
from tui.cli import main

NOTES = NotesConfig(organisation="Example Platform")


def test_an_overdue_notice_cites_the_letter_the_due_date_and_the_open_items(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    mark_items(conn, 1, [ItemChange("purpose", "answered"), ItemChange("storage", "partly_answered")],
               comment="reply of 20 May", reviewer="bo", clock=at("2023-05-21"))
    done = draft_followup(conn, CASE_ID, "overdue", reviewer="bo", clock=at("2023-05-25"), config=NOTES)
    assert done.warnings == ()
    note = done.note
    assert (note.id, note.template, note.status, note.due_date, note.finding_ids) == \
        (2, "followup_overdue.md.j2", "draft", "2023-05-23", (1, 2, 4))
    assert note.subject == "Overdue notice: Northwind Analytics Ltd, our letter of 2 May 2023"
    body = note.body
    assert "**Date:** 25 May 2023" in body
    assert ('**Our reference:** note #1, our letter of 2 May 2023 ("Audit request: Northwind Analytics Ltd, use of '
            'the API of the Platform in 2022")') in body
    assert "**Respond by:** without delay (it was due 23 May 2023)" in body
    assert "Your response was due on\n**23 May 2023** and is now 2 days overdue." in body
    outstanding = [line for line in body.splitlines() if line[:2] in ("2.", "3.", "4.", "5.", "6.", "1.")]
    assert outstanding == [
        "2. what data retrieved from the API is stored, where (systems, providers, countries) and for how long "
        "(your answer so far is partial);",
        "3. the deletions made of such data, with dates and the method used;",
        "4. every party to whom such data, or anything derived from it, was made available, including any "
        "government entity or government end user, and the notice given to Example Platform for each;",
        "5. any means used to work around the rate limits or volume caps of the agreement (for example, "
        "spreading traffic across several applications or keys);",
        "6. a deployment report, signed by an authorised officer of Northwind Analytics Ltd, certifying the "
        "answers above.",
    ]
    # Drafted as the letter is: its status and the SHA-256 of its text, one action.
    reason = "drafted: overdue notice of case #1, letter note #1"
    assert log(conn, "note")[-2:] == [(2, "status", None, "draft", reason),
                                      (2, "body_sha256", None, hashlib.sha256(body.encode()).hexdigest(), reason)]


@pytest.mark.parametrize(("kind", "day", "warning"), [
    ("reminder", "2023-05-20", None),
    ("reminder", "2023-05-23", None),                       # on the due date: still a reminder
    ("reminder", "2023-05-24", "the reply was due 2023-05-23, 1 day(s) ago: an overdue notice fits better than a "
                               "reminder"),
    ("overdue", "2023-05-23", "the reply is not overdue yet: it is due 2023-05-23"),
    ("overdue", "2023-05-24", None),                        # one day past: overdue
    ("final", "2023-05-22", "the reply is not overdue yet (due 2023-05-23): a final notice is early"),
    ("final", "2023-06-01", None),
])
def test_a_follow_up_that_does_not_fit_the_date_warns(tmp_path: Path, kind: str, day: str,
                                                      warning: str | None) -> None:
    conn = sent_case(tmp_path)
    done = draft_followup(conn, CASE_ID, kind, reviewer="bo", clock=at(day), config=NOTES)
    assert [w for w in done.warnings if "every item" not in w] == ([warning] if warning else [])
    assert done.note.status == "draft"


def test_a_follow_up_when_every_item_is_answered_warns(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    mark_items(conn, 1, [ItemChange(i.id, "answered") for i in REQUEST_ITEMS[:5]]
               + [ItemChange("signed_report", "refused")], comment="all in", reviewer="bo", clock=at("2023-05-21"))
    done = draft_followup(conn, CASE_ID, "reminder", reviewer="bo", clock=at("2023-05-22"), config=NOTES)
    assert done.warnings == ("every item of case #1 is answered or refused: a reminder asks for nothing; close the "
                             "case instead?",)
    assert "Our records show an answer to every item of our request" in done.note.body


def test_no_follow_up_without_a_letter_or_of_an_unknown_kind(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    with pytest.raises(DecisionRefused, match="no audit request has been sent to northwind-analytics"):
        draft_followup(conn, CASE_ID, "reminder", reviewer="bo", clock=at("2023-05-22"), config=NOTES)
    with pytest.raises(DecisionRefused, match="unknown follow-up 'nudge'"):
        draft_followup(conn, CASE_ID, "nudge", reviewer="bo", clock=at("2023-05-22"), config=NOTES)


def test_drafting_again_redrafts_the_open_follow_up_of_that_kind_only(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    first = draft_followup(conn, CASE_ID, "overdue", reviewer="bo", clock=at("2023-05-25"), config=NOTES).note
    again = draft_followup(conn, CASE_ID, "overdue", reviewer="bo", clock=at("2023-05-26"), config=NOTES).note
    final = draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=NOTES).note
    assert (first.id, again.id, final.id) == (2, 2, 3)
    assert "now 3 days overdue" in again.body
    # The editor's re-draft keeps each note what it is.
    assert redraft(conn, again, reviewer="bo", clock=at("2023-05-27"), config=NOTES).template == \
        "followup_overdue.md.j2"
    assert redraft(conn, final, reviewer="bo", clock=at("2023-05-27"), config=NOTES).id == 3
    assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 3


def test_exporting_follow_ups_is_recorded_on_the_case_and_a_final_notice_moves_the_due_date(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    draft_followup(conn, CASE_ID, "overdue", reviewer="bo", clock=at("2023-05-25"), config=NOTES)
    exported = export_notes(conn, fmt="md", out_dir=tmp_path / "overdue", consumer_id=CASE_ID, reviewer="bo",
                            clock=at("2023-05-25"), config=NOTES)
    assert exported.note_ids == (2,) and exported.findings_requested == ()
    assert (tmp_path / "overdue" / "note-2-northwind-analytics.md").read_text().startswith("# Overdue notice")
    assert log(conn, "case")[-1] == (1, "followup", None, "overdue: note #2", "note #2 exported as md (export #2)")
    assert latest_case(conn, CASE_ID).due_date == "2023-05-23"
    # A final notice drafted on Friday 26 May gives 7 days: 2 June; exported the same day, the case is due then.
    draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=NOTES)
    export_notes(conn, fmt="md", out_dir=tmp_path / "final", consumer_id=CASE_ID, reviewer="bo",
                 clock=at("2023-05-26"), config=NOTES)
    assert latest_case(conn, CASE_ID).due_date == "2023-06-02"
    assert log(conn, "case")[-2:] == [
        (1, "followup", None, "final: note #3", "note #3 exported as md (export #3)"),
        (1, "due_date", "2023-05-23", "2023-06-02",
         "note #3 exported as md (export #3): the final notice's last deadline")]
    assert case_columns(conn) == ("letter_sent", "2023-06-02")
    assert latest_case(conn, CASE_ID).letter_note_id == 1          # the letter is still the letter


def test_a_final_notice_in_business_days(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    notes = NotesConfig(business_days=True, final_notice_days=5)
    done = draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=notes)
    # Friday 26 May + 5 business days: Friday 2 June.
    assert done.note.due_date == "2023-06-02"
    assert "complete response by **2 June 2023**\n(5 business days from the date of this notice)" in done.note.body


def test_the_command_drafts_a_follow_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sent_case(tmp_path).close()
    db = str(tmp_path / "w.db")
    assert main(["followup", "draft", CASE_ID, "--kind", "overdue", "--db", db, "--reviewer", "bo"]) == 0
    err = capsys.readouterr().err
    assert "warden: drafted note #2 (overdue) of northwind-analytics: Overdue notice: Northwind Analytics Ltd" in err
    seed(tmp_path / "none.db").close()
    assert main(["followup", "draft", CASE_ID, "--kind", "reminder", "--db", str(tmp_path / "none.db")]) == 1
    assert "no audit request has been sent" in capsys.readouterr().err


def test_a_follow_up_exported_after_its_case_ended_is_recorded_on_no_case(tmp_path: Path) -> None:
    from store.casework.state import close_case

    conn = sent_case(tmp_path)
    draft_followup(conn, CASE_ID, "overdue", reviewer="bo", clock=at("2023-05-25"), config=NOTES)
    close_case(conn, CASE_ID, outcome="within_limits", reason="back under the cap", reviewer="bo",
               clock=at("2023-05-26"))
    result = export_notes(conn, fmt="md", out_dir=tmp_path / "late", consumer_id=CASE_ID, reviewer="bo",
                          clock=at("2023-05-26"), config=NOTES)
    assert result.note_ids == (2,)
    assert result.warnings == ("note #2 (overdue notice) was exported but northwind-analytics has no case under "
                               "way; no case recorded it",)
    assert [e for e in log(conn, "case") if e[1] == "followup"] == []


def test_a_final_notice_exported_days_after_it_was_drafted_warns_of_the_date_it_states(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    # Drafted on Friday 26 May: "by 2 June" (7 days); exported on Monday 29 May, the case is due 5 June.
    draft_followup(conn, CASE_ID, "final", reviewer="bo", clock=at("2023-05-26"), config=NOTES)
    result = export_notes(conn, fmt="md", out_dir=tmp_path / "final", consumer_id=CASE_ID, reviewer="bo",
                          clock=at("2023-05-29"), config=NOTES)
    assert result.warnings == ("note #2 states a response date of 2023-06-02; exported today its case is due "
                               "2023-06-05 (export date + the deadline): re-draft it so the letter states the date "
                               "the case tracks",)
    assert latest_case(conn, CASE_ID).due_date == "2023-06-05"
