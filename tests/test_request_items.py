"""The items a letter asks for: one definition for the letter's request section
and the case's checklist; marking them, each change with its comment in the
log; two reviewers on one item."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from store.casework.items import REQUEST_ITEMS, ItemChange, case_items, mark_items
from store.config import NotesConfig
from store.db import connect
from store.errors import ConflictError, DecisionRefused
from store.notes import draft_note
from tests.cases_data import ITEM_IDS, at, case_columns, log, sent_case
from tests.notes_case import CASE_ID, CLOCK, seed

# The request as our counsel approved it, written out (not read from the code).
LETTER_ITEMS = [
    "the purpose for which it uses the API and the data retrieved through it;",
    "what data retrieved from the API is stored, where (systems, providers, countries) and for how long;",
    "the deletions made of such data, with dates and the method used;",
    "every party to whom such data, or anything derived from it, was made available, including any government "
    "entity or government end user, and the notice given to Example Platform for each;",
    "any means used to work around the rate limits or volume caps of the agreement (for example, spreading "
    "traffic across several applications or keys);",
    "a deployment report, signed by an authorised officer of Northwind Analytics Ltd, certifying the answers "
    "above.",
]


def test_the_letter_asks_for_the_items_the_checklist_tracks(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK, config=NotesConfig(organisation="Example Platform"))
    section = note.body.split("## Our request")[1].split("## Deadline")[0]
    assert "Within 21 days, please provide" in section
    numbered = re.findall(r"^(\d)\. (.*)$", section, flags=re.M)
    assert numbered == [(str(n), text) for n, text in enumerate(LETTER_ITEMS, start=1)]
    assert [item.id for item in REQUEST_ITEMS] == list(ITEM_IDS)


def test_business_days_are_named_in_the_letter(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    note = draft_note(conn, CASE_ID, reviewer="ana", clock=CLOCK,
                      config=NotesConfig(deadline_days=15, business_days=True))
    assert "Within 15 business days, please provide" in note.body
    # Tuesday 2 May 2023 + 15 business days.
    assert "**Response due:** 23 May 2023" in note.body
    assert "Please respond by **23 May 2023** (15 business days from the date of this letter)" in note.body
    assert note.due_date == "2023-05-23"


def test_exporting_the_letter_tracks_each_item_and_the_log_names_the_letter(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)   # note #1, the Northwind letter, exported
    assert log(conn, "item") == [
        (1, "state", None, "open", "asked for by note #1: purpose"),
        (2, "state", None, "open", "asked for by note #1: storage"),
        (3, "state", None, "open", "asked for by note #1: deletion"),
        (4, "state", None, "open", "asked for by note #1: recipients"),
        (5, "state", None, "open", "asked for by note #1: workarounds"),
        (6, "state", None, "open", "asked for by note #1: signed_report"),
    ]


def test_marking_items_logs_each_change_with_the_comment(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    written = mark_items(conn, 1, [ItemChange("purpose", "answered"), ItemChange("storage", "partly_answered"),
                                   ItemChange("deletion", "open")],
                         comment="reply of 20 May, pages 2-3", reviewer="bo", clock=at("2023-05-21"))
    assert [(d.subject_id, d.old_value, d.new_value, d.reason) for d in written] == [
        (1, "open", "answered", "reply of 20 May, pages 2-3"),
        (2, "open", "partly_answered", "reply of 20 May, pages 2-3"),
    ]
    assert len({d.action_id for d in written}) == 1
    assert [(i.item, i.state, i.comment, i.version) for i in case_items(conn, 1)][:3] == [
        ("purpose", "answered", "reply of 20 May, pages 2-3", 2),
        ("storage", "partly_answered", "reply of 20 May, pages 2-3", 2),
        ("deletion", "open", None, 1),
    ]
    assert log(conn, "item")[-2:] == [(1, "state", "open", "answered", "reply of 20 May, pages 2-3"),
                                      (2, "state", "open", "partly_answered", "reply of 20 May, pages 2-3")]


def test_a_case_stops_awaiting_when_no_item_is_open_or_partly_answered(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    from store.casework.responses import add_response

    reply = tmp_path / "reply.txt"
    reply.write_text("answers")
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-20"), max_bytes=1000)
    assert case_columns(conn) == ("response_received", "2023-05-23")
    mark_items(conn, 1, [ItemChange(i, "answered") for i in ITEM_IDS[:5]], comment="c", reviewer="bo",
               clock=at("2023-05-21"))
    mark_items(conn, 1, [ItemChange("signed_report", "partly_answered")], comment="unsigned", reviewer="bo",
               clock=at("2023-05-21"))
    assert case_columns(conn) == ("response_received", "2023-05-23")      # one partly answered: still awaited
    mark_items(conn, 1, [ItemChange("signed_report", "refused")], comment="they refuse", reviewer="bo",
               clock=at("2023-05-22"))
    assert case_columns(conn) == ("response_received", None)              # nothing left to wait for


@pytest.mark.parametrize(("change", "comment", "message"), [
    (ItemChange("purpose", "answered"), "  ", "needs a comment"),
    (ItemChange("purpose", "done"), "c", "unknown item state 'done'"),
    (ItemChange("budget", "answered"), "c", "asked for no item 'budget'"),
])
def test_bad_marks_are_refused_and_change_nothing(tmp_path: Path, change: ItemChange, comment: str,
                                                  message: str) -> None:
    conn = sent_case(tmp_path)
    entries = conn.execute("SELECT count(*) FROM decision").fetchone()[0]
    with pytest.raises(DecisionRefused, match=message):
        mark_items(conn, 1, [ItemChange("storage", "answered"), change], comment=comment, reviewer="bo",
                   clock=at("2023-05-21"))
    assert conn.execute("SELECT count(*) FROM decision").fetchone()[0] == entries
    assert {i.state for i in case_items(conn, 1)} == {"open"}


def test_the_second_reviewer_on_an_item_is_refused_with_its_new_state(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    seen = {i.item: i.version for i in case_items(conn, 1)}
    other = connect(tmp_path / "w.db")
    mark_items(other, 1, [ItemChange("purpose", "refused", seen["purpose"])], comment="they decline",
               reviewer="bo", clock=at("2023-05-21"))
    with pytest.raises(ConflictError) as caught:
        mark_items(conn, 1, [ItemChange("storage", "answered", seen["storage"]),
                             ItemChange("purpose", "answered", seen["purpose"])],
                   comment="page 2", reviewer="ana", clock=at("2023-05-21"))
    assert str(caught.value) == ("item purpose of case #1 changed since you looked: it is now refused by bo "
                                 "(they decline), version 2")
    assert caught.value.current["state"] == "refused"
    # Nothing of the refused change was written: storage is still open.
    assert [(i.item, i.state) for i in case_items(conn, 1)][:2] == [("purpose", "refused"), ("storage", "open")]
