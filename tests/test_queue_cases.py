"""The queue's case terms and its due-date sort: known answers on a database of
cases in every state, each term read from an index (query plans), and the
filter text refused with a clear message when it is wrong."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from store.db import connect
from store.errors import FilterError
from store.queue import QueueQuery, QueueReader
from store.queue_filter import QueueFilter, case_conditions, consumer_conditions, parse_filter
from tests.cases_data import cases_in_every_state
from tests.notes_case import CASE_ID, HOSTILE_ID, seed

TODAY = date(2023, 6, 1)


@pytest.fixture(scope="module")
def cases_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cases_in_every_state(tmp_path_factory.mktemp("queue_cases"))


def _ids(path: Path, text: str, sort: str = "overage") -> list[str]:
    reader = QueueReader(lambda: connect(path))
    query = QueueQuery(parse_filter(text, today=TODAY), sort)
    rows = reader.page(query, 0, 100)
    assert reader.count(query) == len(rows)
    reader.close()
    return [r.consumer_id for r in rows]


def test_the_due_sort_puts_the_soonest_due_first(cases_db: Path) -> None:
    ids = _ids(cases_db, "", "due")
    assert ids[:3] == [CASE_ID, "bulk-00000", "bulk-00001"]   # due 23 May, 10 June, 15 June
    assert len(ids) == 9                                        # then everyone else, worst overage first
    assert ids[3:5] == ["bulk-00006", "bulk-00005"]


@pytest.mark.parametrize(("text", "expected"), [
    ("case:letter-sent", ["bulk-00001", CASE_ID]),
    ("case:response", ["bulk-00006", "bulk-00000"]),
    ("case:escalated", ["bulk-00002"]),
    ("case:resolved", ["bulk-00003"]),
    ("case:open", ["bulk-00005", "bulk-00004", HOSTILE_ID]),
    ("case:letter-sent,escalated", ["bulk-00002", "bulk-00001", CASE_ID]),
    ("due:overdue", [CASE_ID]),
    ("due:any", ["bulk-00001", "bulk-00000", CASE_ID]),
    ("due:9d", ["bulk-00000"]),          # 1 June to 10 June: on the limit
    ("due:8d", []),                      # one short of it
    ("due:14d", ["bulk-00001", "bulk-00000"]),
    ("due:today", []),
    ("by:cy", ["bulk-00003", "bulk-00002"]),
    ("by:bo case:response", ["bulk-00006", "bulk-00000"]),
    ("week:2023-W22", ["bulk-00006", "bulk-00003", "bulk-00002"]),   # 29 May to 4 June
    ("week:2023-W21", ["bulk-00001", "bulk-00000"]),                 # 22 to 28 May
    ("month:2022-03 category:rate", [CASE_ID]),
    ("month:2022-03", [CASE_ID, HOSTILE_ID]),
    # With issue 12's shortcuts (a count from the finding keys or the name index
    # alone), a case term must still hold: Northwind's candidate is in a case under way.
    ("status:candidate case:open", []),
    ("case:open status:confirmed", ["bulk-00005", "bulk-00004", HOSTILE_ID]),
    ("north case:letter-sent", [CASE_ID]),
    ("north case:open", []),
    ("bulk due:any", ["bulk-00001", "bulk-00000"]),
    # month: and the finding terms are one finding: Northwind's March finding is a candidate.
    ("month:2022-03 status:confirmed", [HOSTILE_ID]),
    ("month:2022-03 status:candidate", [CASE_ID]),
])
def test_case_terms_find_what_they_say(cases_db: Path, text: str, expected: list[str]) -> None:
    ids = _ids(cases_db, text)
    worst = {r[0]: r[1] for r in sqlite3.connect(cases_db).execute("SELECT id, worst_ratio FROM consumer")}
    assert sorted(ids) == sorted(expected)
    assert ids == sorted(ids, key=lambda i: (-worst[i], i))


@pytest.mark.parametrize(("text", "message"), [
    ("case:lost", "unknown case state 'lost'"),
    ("due:soon", "due:soon is not a due filter; write due:overdue, due:today, due:7d or due:any"),
    ("month:2022-13", "month:2022-13 is not a month"),
    ("week:2023-W54", "week:2023-W54 is not an ISO week"),
    ("week:2023-W01 week:2023-W02", "week: takes one week"),
])
def test_bad_case_terms_are_refused(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text, today=TODAY)


def test_case_terms_count_in_is_empty() -> None:
    assert QueueFilter().is_empty
    for text in ("case:open", "due:any", "month:2022-01", "by:ana", "week:2023-W01"):
        assert not parse_filter(text, today=TODAY).is_empty, text


def _plan(conn: sqlite3.Connection, sql: str, params: list[object]) -> str:
    return " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize(("text", "index"), [("case:letter-sent", "consumer_by_case"),
                                            ("due:overdue", "consumer_by_due")])
def test_a_case_term_is_read_from_its_index(cases_db: Path, text: str, index: str) -> None:
    conn = connect(cases_db)
    conds, params = consumer_conditions(parse_filter(text, today=TODAY))
    plan = _plan(conn, f"SELECT count(*) FROM consumer WHERE {' AND '.join(conds)}", params)
    assert index in plan and "SCAN consumer" not in plan.replace(f"SCAN consumer USING COVERING INDEX {index}", "")


def test_the_due_sort_reads_its_index_without_sorting(cases_db: Path) -> None:
    conn = connect(cases_db)
    plan = _plan(conn, "SELECT id FROM consumer ORDER BY due_order, worst_ratio DESC, id LIMIT 64", [])
    assert "consumer_by_due" in plan and "TEMP B-TREE" not in plan


def test_the_week_and_reviewer_set_reads_the_log_by_index(cases_db: Path) -> None:
    conn = connect(cases_db)
    conds, params = case_conditions((), None, ("bo",), None)
    plan = _plan(conn, f"SELECT count(*) FROM consumer WHERE {conds[0]}", params)
    assert "decision_by_reviewer" in plan
    conds, params = case_conditions((), None, (), ("2023-05-29", "2023-06-05"))
    assert "decision_by_time" in _plan(conn, f"SELECT count(*) FROM consumer WHERE {conds[0]}", params)
