"""The review queue: filter syntax, sorts, lazy paging, positions, next unreviewed."""

from __future__ import annotations

import functools
import random
import sqlite3
from pathlib import Path

import pytest

from store import queue
from store.db import connect, transaction
from store.errors import ConfigError, FilterError
from store.queue import QueueQuery, QueueReader
from store.queue_filter import consumer_conditions, name_match, parse_filter
from store.queue_summary import refresh_all, refresh_summary

STATUSES = ["candidate", "confirmed", "dismissed", "needs_info", "resolved"]
CATEGORIES = ["volume_cap", "rate_limit", "missing_use_case", "government_end_user"]
NAMES = ["North Wind", "South Pole", "East & West", "100% Data", "under_score", "[bold red]x[/]",
         "\x1b[31mRED\x1b[0m", "O'Hara; DROP TABLE consumer; --", "Ünïcode Ltd"]


@pytest.fixture
def reader(conn: sqlite3.Connection) -> QueueReader:
    """Reads the queue of ``conn``, remembering anchors and counts between reads."""
    return QueueReader(lambda: conn)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    """A database of 400 consumers with random findings; the summary refreshed."""
    c = connect(tmp_path / "q.db")
    rnd = random.Random(3)
    with transaction(c):
        c.execute("INSERT INTO tier (id, name) VALUES ('gold', 'Gold'), ('basic', 'Basic')")
        for i in range(400):
            c.execute("INSERT INTO consumer (id, legal_name, tier_id) VALUES (?, ?, ?)",
                      (f"c{i:03d}", f"{rnd.choice(NAMES)} {rnd.randint(0, 9)}", rnd.choice(["gold", "basic", None])))
            for _ in range(rnd.choice([0, 0, 0, 1, 2])):
                c.execute(
                    "INSERT INTO finding (consumer_id, category, period, period_start, period_end, status,"
                    " rule_id, ratio, severity, detected_at, updated_at)"
                    " VALUES (?, ?, '2022', '2022-01-01', '2022-12-31', ?, 'r', ?, ?, 't', 't')",
                    (f"c{i:03d}", rnd.choice(CATEGORIES), rnd.choice(STATUSES),
                     rnd.choice([None, 1.5, 2.0, 10.0, 12.5, round(rnd.uniform(1, 30), 2)]),
                     rnd.choice(["low", "medium", "high", "critical"])))
        refresh_all(c)
        # A reply due from a third of them (ties included), for the due-date sort.
        for i in range(0, 400, 3):
            c.execute("UPDATE consumer SET case_due = ? WHERE id = ?",
                      (f"2023-0{rnd.randint(1, 3)}-{rnd.randint(10, 12)}", f"c{i:03d}"))
    return c


def reference(conn: sqlite3.Connection, query: QueueQuery) -> list[str]:
    """The queue computed the slow, obvious way in Python."""
    rows = conn.execute("SELECT id, legal_name, tier_id, worst_ratio, review_state, case_due FROM consumer").fetchall()
    findings = conn.execute("SELECT consumer_id, status, category, severity FROM finding").fetchall()
    f = query.filter

    def keep(r: sqlite3.Row) -> bool:
        if f.statuses or f.categories or f.severities:
            if not any(fc == r[0] and (not f.statuses or fs in f.statuses)
                       and (not f.categories or cat in f.categories)
                       and (not f.severities or sev in f.severities) for fc, fs, cat, sev in findings):
                return False
        if f.min_ratio is not None and r[3] < f.min_ratio:
            return False
        if f.tiers and (r[2] or "").lower() not in [t.lower() for t in f.tiers]:
            return False
        if f.states and r[4] not in f.states:
            return False
        if not all(_contains(r[1], n) for n in f.names):
            return False
        return all(_contains(r[0], i) for i in f.ids)

    rank = {"open": 0, "info": 1, "decided": 2, "clear": 3}
    keys = {
        "overage": lambda r: (-r[3], r[0]),
        "name": lambda r: (r[1], r[0]),
        "status": lambda r: (rank[r[4]], -r[3], r[0]),
        "due": lambda r: (r[5] or "9999-12-31", -r[3], r[0]),
    }
    out = sorted((r for r in rows if keep(r)), key=keys[query.sort])
    if query.reverse:
        out.reverse()
    return [r[0] for r in out]


def _ascii_lower(text: str) -> str:
    """SQLite's LIKE folds case for ASCII letters only."""
    return text.translate({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


_TRIGRAMS = sqlite3.connect(":memory:")
_TRIGRAMS.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'trigram')")


@functools.lru_cache(maxsize=None)
def _contains(text: str, term: str) -> bool:
    """Name search as documented: a term of three characters or more as SQLite's
    FTS5 trigram tokenizer finds it (a substring, any case), a shorter one as
    LIKE does (ASCII letters in any case)."""
    if len(term) < 3:
        return _ascii_lower(term) in _ascii_lower(text)
    _TRIGRAMS.execute("DELETE FROM t")
    _TRIGRAMS.execute("INSERT INTO t VALUES (?)", (text,))
    phrase = '"' + term.replace('"', '""') + '"'
    return _TRIGRAMS.execute("SELECT count(*) FROM t WHERE t MATCH ?", (phrase,)).fetchone()[0] == 1


class _desc(str):
    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


def ids(rows: list[queue.QueueRow]) -> list[str]:
    return [r.consumer_id for r in rows]


# --- filter syntax ---------------------------------------------------------


def test_filter_fields_and_prefixes() -> None:
    f = parse_filter('status:cand category:volume over:10x name:north tier:Gold state:open "wind ltd" id:c01')
    assert f.statuses == ("candidate",)
    assert f.categories == ("volume_cap",)
    assert f.min_ratio == 10.0
    assert f.tiers == ("Gold",)
    assert f.states == ("open",)
    assert f.names == ("north", "wind ltd")
    assert f.ids == ("c01",)
    assert parse_filter("over:10").min_ratio == 10.0
    assert parse_filter("over:150%").min_ratio == 1.5
    assert parse_filter("category:gov").categories == ("government_end_user",)
    assert parse_filter("severity:crit,High").severities == ("critical", "high")
    assert parse_filter("status:needs-info").statuses == ("needs_info",)
    assert parse_filter("status:candidate,needs status:confirmed").statuses == ("candidate", "needs_info", "confirmed")
    assert parse_filter('name:"north wind"').names == ("north wind",)
    assert parse_filter("  ").is_empty


@pytest.mark.parametrize("text, needle", [
    ("colour:red", "valid fields: status"),
    ("status:maybe", "valid: candidate, confirmed"),
    ("category:zzz", "valid: volume_cap"),
    ("over:lots", "over:10x"),
    ("over:-1", "zero or more"),
    ('name:"north', "close the quote"),
    ("status:", "has no value"),
    ("status:c", "ambiguous"),
])
def test_bad_filters_say_what_is_valid(text: str, needle: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert needle in str(info.value)
    assert info.value.title == "Bad filter"
    assert isinstance(info.value, ConfigError)


def test_unknown_sort_is_refused() -> None:
    with pytest.raises(FilterError, match="valid: overage, status, name"):
        QueueQuery(sort="colour")


def test_the_overage_sort_is_largest_first_and_reverse_is_mildest_first(tmp_path: Path) -> None:
    c = connect(tmp_path / "ratios.db")
    with transaction(c):
        for cid, ratio in [("mild", 1.1), ("huge", 52.8), ("clear", 0.0), ("mid", 3.7)]:
            c.execute("INSERT INTO consumer (id, legal_name, worst_ratio) VALUES (?, ?, ?)", (cid, cid, ratio))
    reader = QueueReader(lambda: c)
    assert ids(reader.page(QueueQuery(sort="overage"), 0, 10)) == ["huge", "mid", "mild", "clear"]
    assert ids(reader.page(QueueQuery(sort="overage", reverse=True), 0, 10)) == ["clear", "mild", "mid", "huge"]
    assert ids(reader.page(QueueQuery(), 0, 10)) == ["huge", "mid", "mild", "clear"]   # the default
    assert ids(reader.page(QueueQuery(sort="name", reverse=True), 0, 10)) == ["mild", "mid", "huge", "clear"]


# --- order and paging -------------------------------------------------------


@pytest.mark.parametrize("sort", list(queue.SORTS))
@pytest.mark.parametrize("reverse", [False, True])
def test_paging_walks_the_whole_order(conn: sqlite3.Connection, reader: QueueReader, sort: str, reverse: bool) -> None:
    q = QueueQuery(sort=sort, reverse=reverse)
    expected = reference(conn, q)
    assert reader.count(q) == len(expected) == 400
    for step in (1, 7, 50, 400):
        got: list[str] = []
        for offset in range(0, 410, step):
            got += ids(reader.page(q, offset, step))
        assert got == expected, step


@pytest.mark.parametrize("sort", list(queue.SORTS))
def test_jumps_to_any_offset(conn: sqlite3.Connection, reader: QueueReader, sort: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small "near" distance makes far jumps read from the end or walk from an anchor.
    monkeypatch.setattr(queue, "_NEAR", 5)
    q = QueueQuery(sort=sort)
    expected = reference(conn, q)
    rnd = random.Random(5)
    offsets = [399, 0, 398, 200, 201, 17, 390, 60, 395] + [rnd.randrange(400) for _ in range(30)]
    for offset in offsets:
        assert ids(reader.page(q, offset, 6)) == expected[offset:offset + 6], offset
    # Again: now the first row of each is a remembered offset, and so is each last row.
    for offset in offsets + [o + 5 for o in offsets]:
        assert ids(reader.page(q, offset, 6)) == expected[offset:offset + 6], offset
        assert ids(reader.page(q, offset, 1)) == expected[offset:offset + 1], offset
    assert reader.page(q, 400, 10) == []
    assert reader.page(q, 5000, 10) == []


FILTERS = [
    "status:candidate", "status:confirmed", "category:volume", "status:candidate category:volume",
    "status:dismissed category:rate", "over:10x", "over:2 state:decided", "state:open", "state:clear",
    "tier:gold", "tier:GOLD status:needs", "north", "name:north 3", "id:c01", "name:%", "name:_",
    "status:candidate,needs_info over:1.5", "severity:crit", "severity:high status:confirmed",
    "severity:low,medium category:gov", "state:info", "state:info,decided", "status:needs_info",
    "status:needs_info state:open", "status:candidate state:info",
]


@pytest.mark.parametrize("text", FILTERS)
@pytest.mark.parametrize("sort", ["overage", "status"])
def test_filters_match_the_reference(conn: sqlite3.Connection, reader: QueueReader, text: str, sort: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "_NEAR", 3)
    q = QueueQuery(parse_filter(text), sort=sort)
    expected = reference(conn, q)
    assert reader.count(q) == len(expected)
    got: list[str] = []
    for offset in range(0, len(expected) + 5, 9):
        got += ids(reader.page(q, offset, 9))
    assert got == expected
    # Reading the tail first (from the end) gives the same rows.
    if len(expected) > 10:
        fresh = connect(conn.execute("PRAGMA database_list").fetchone()[2])
        tail = ids(QueueReader(lambda: fresh).page(q, len(expected) - 4, 4))
        assert tail == expected[-4:]
        fresh.close()


def test_status_and_category_apply_to_the_same_finding(conn: sqlite3.Connection, reader: QueueReader) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('mixed', 'Mixed')")
        conn.execute("INSERT INTO finding (consumer_id, category, period, period_start, period_end, status,"
                     " detected_at, updated_at) VALUES ('mixed', 'volume_cap', 'p', 'a', 'b', 'dismissed', 't', 't'),"
                     " ('mixed', 'rate_limit', 'p', 'a', 'b', 'candidate', 't', 't')")
        refresh_summary(conn, ["mixed"])
    shown = ids(reader.page(QueueQuery(parse_filter("status:candidate category:volume id:mixed")), 0, 10))
    assert shown == []
    shown = ids(reader.page(QueueQuery(parse_filter("status:candidate category:rate id:mixed")), 0, 10))
    assert shown == ["mixed"]


def test_position_of(conn: sqlite3.Connection, reader: QueueReader) -> None:
    for sort in queue.SORTS:
        for reverse in (False, True):
            for text in ("", "status:dismissed", "tier:basic"):
                q = QueueQuery(parse_filter(text), sort=sort, reverse=reverse)
                expected = reference(conn, q)
                for cid in expected[::23] + [expected[-1]]:
                    assert reader.position_of(q, cid) == expected.index(cid)
    q = QueueQuery(parse_filter("state:open"))
    hidden = reference(conn, QueueQuery(parse_filter("state:clear")))[0]
    assert reader.position_of(q, hidden) is None
    assert reader.position_of(q, "no-such-consumer") is None


@pytest.mark.parametrize("sort", list(queue.SORTS))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("text", ["", "tier:gold", "status:confirmed,candidate"])
@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("wanted", ["open", "info"])
def test_next_unreviewed_both_ways(conn: sqlite3.Connection, reader: QueueReader, sort: str, reverse: bool, text: str,
                                   short: bool, wanted: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if short:   # tiny walks and counts: every fallback path runs
        monkeypatch.setattr(queue, "_WALK", 2)
        monkeypatch.setattr(queue, "_BETWEEN", 3)
    q = QueueQuery(parse_filter(text), sort=sort, reverse=reverse)
    order = reference(conn, q)
    state = dict(conn.execute("SELECT id, review_state FROM consumer").fetchall())
    open_at = [i for i, cid in enumerate(order) if state[cid] == wanted]
    assert len(open_at) > 5
    last = len(order) - 1
    for here in (-1, 0, open_at[0], open_at[2] + 1, last // 2, open_at[-1], last):
        after = [i for i in open_at if i > here]
        assert reader.next_unreviewed(q, here, 1, wanted) == (after[0] if after else None), here
        before = [i for i in open_at if i < here]
        assert reader.next_unreviewed(q, here, -1, wanted) == (before[-1] if before else None), here
    # Past the end, backwards finds the last one.
    assert reader.next_unreviewed(q, 10_000, -1, wanted) == open_at[-1]


def test_rows_carry_a_verdict_in_words(conn: sqlite3.Connection, reader: QueueReader) -> None:
    rows = reader.page(QueueQuery(), 0, 400)
    assert {r.verdict for r in rows} == {"open", "info", "violation", "decided", "clear"}
    for r in rows:
        violation = conn.execute("SELECT count(*) FROM finding WHERE consumer_id = ? AND status = 'confirmed'",
                                 (r.consumer_id,)).fetchone()[0]
        statuses = {s for (s,) in conn.execute("SELECT status FROM finding WHERE consumer_id = ?", (r.consumer_id,))}
        if "candidate" in statuses:
            assert r.verdict == "open"
        elif "needs_info" in statuses:
            # Waiting for an answer: nothing to decide until it comes, and it says so.
            assert r.verdict == r.review_state == "info"
        elif violation:
            assert r.verdict == "violation"
        else:
            assert r.verdict == r.review_state


def test_hostile_names_are_data(conn: sqlite3.Connection, reader: QueueReader) -> None:
    rows = reader.page(QueueQuery(parse_filter('name:"DROP TABLE"'), sort="name"), 0, 100)
    assert rows and all(r.legal_name.startswith("O'Hara; DROP TABLE consumer; --") for r in rows)
    rows = reader.page(QueueQuery(parse_filter("name:[bold")), 0, 100)
    assert rows and all(r.legal_name.startswith("[bold red]x[/]") for r in rows)
    rows = reader.page(QueueQuery(parse_filter("name:\x1b[31m")), 0, 100)
    assert rows and all(r.legal_name.startswith("\x1b[31mRED\x1b[0m") for r in rows)
    # LIKE wildcards in a filter match themselves only.
    assert {r.legal_name[:9] for r in reader.page(QueueQuery(parse_filter("name:%")), 0, 400)} == {"100% Data"}
    assert reader.count(QueueQuery()) == 400


def test_changes_by_another_connection_show_up(conn: sqlite3.Connection, reader: QueueReader) -> None:
    q = QueueQuery()
    before = reader.count(q)
    first = reader.page(q, 0, 5)
    other = connect(conn.execute("PRAGMA database_list").fetchone()[2])
    with transaction(other):
        other.execute("INSERT INTO consumer (id, legal_name, worst_ratio, review_state, open_findings)"
                      " VALUES ('newcomer', 'Newcomer', 999, 'open', 1)")
    other.close()
    assert reader.count(q) == before + 1
    assert ids(reader.page(q, 0, 5)) == ["newcomer"] + ids(first)[:4]


def test_a_decision_on_the_same_connection_shows_up(conn: sqlite3.Connection, reader: QueueReader) -> None:
    from datetime import datetime, timezone

    from store.clock import fixed_clock
    from store.review import dismiss

    q = QueueQuery(parse_filter("state:open"))
    before = reader.count(q)
    top = reader.page(q, 0, 3)
    reader.page(q, before - 1, 1)      # remembered offsets deep in the list
    fids = [r[0] for r in conn.execute("SELECT id FROM finding WHERE consumer_id = ? AND status IN"
                                       " ('candidate', 'needs_info')", (top[0].consumer_id,))]
    for fid in fids:
        dismiss(conn, fid, reviewer="alice", reason_code="duplicate",
                clock=fixed_clock(datetime(2023, 1, 2, tzinfo=timezone.utc)))
    assert reader.count(q) == before - 1
    assert ids(reader.page(q, 0, 2)) == ids(top)[1:3]
    assert ids(reader.page(q, before - 2, 5)) == reference(conn, q)[-1:]
    # The finding terms follow the decision too (their keys are rewritten with the summary).
    for text in ("status:dismissed", "status:dismissed category:" + conn.execute(
            "SELECT category FROM finding WHERE id = ?", (fids[0],)).fetchone()[0], "status:candidate"):
        dismissed = QueueQuery(parse_filter(text))
        assert reader.count(dismissed) == len(reference(conn, dismissed))
        assert ids(reader.page(dismissed, 0, 500)) == reference(conn, dismissed)
    assert top[0].consumer_id in reference(conn, QueueQuery(parse_filter("status:dismissed")))


def test_a_closed_reader_reads_nothing_and_closes_its_connection(tmp_path: Path, conn: sqlite3.Connection) -> None:
    opened: list[sqlite3.Connection] = []

    def open_db() -> sqlite3.Connection:
        opened.append(connect(conn.execute("PRAGMA database_list").fetchone()[2]))
        return opened[-1]

    reader = QueueReader(open_db)
    assert opened == [] and not reader.opened       # nothing opened until the first read
    q = QueueQuery()
    assert reader.count(q) == 400 and len(reader.page(q, 0, 3)) == 3 and len(opened) == 1
    assert isinstance(reader.data_version(), int) and reader.opened and not reader.closed
    reader.close()
    assert reader.closed and not reader.opened
    assert (reader.count(q), reader.page(q, 0, 3), reader.position_of(q, "c001"),
            reader.next_unreviewed(q, 0), reader.data_version()) == (0, [], None, None, None)
    with pytest.raises(sqlite3.ProgrammingError):
        opened[0].execute("SELECT 1")
    assert len(opened) == 1


def test_close_waits_for_a_read_in_progress(conn: sqlite3.Connection) -> None:
    # Closing a connection under a running statement crashes the process: a
    # screen closing its reader must wait for a worker's read to end.
    import threading

    entered, release = threading.Event(), threading.Event()

    def slow_open() -> sqlite3.Connection:
        entered.set()
        release.wait(10)
        return conn

    reader = QueueReader(slow_open)
    counts: list[int] = []
    read = threading.Thread(target=lambda: counts.append(reader.count(QueueQuery())))
    read.start()
    assert entered.wait(10)
    closer = threading.Thread(target=reader.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive() and not reader.closed     # still waiting for the read
    release.set()
    read.join(10)
    closer.join(10)
    assert counts == [400] and reader.closed


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FILTER_WORDS = st.sampled_from(["status:", "category:", "severity:", "over:", "tier:", "state:", "name:", "id:", "colour:",
                                 '"', "'", ",", "x", "10x", "%", "_", "\\", "cand", "gov", " ", ":", "\x1b["])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=40), st.lists(_FILTER_WORDS, max_size=8).map("".join),
                     st.sampled_from(["ünï", "ÜNÏ", "name:Ünïcode", "NORTH", "o'hara", "%data"])))
def test_any_filter_text_parses_or_says_why(conn: sqlite3.Connection, reader: QueueReader, text: str) -> None:
    try:
        flt = parse_filter(text)
    except FilterError as exc:
        assert str(exc)
        return
    q = QueueQuery(flt)
    n = reader.count(q)
    assert ids(reader.page(q, 0, 500)) == reference(conn, q)
    assert n == len(reference(conn, q))


@pytest.mark.parametrize("text", ["\x00", "name:north\x00wind", "id:\x00"])
def test_a_nul_in_a_filter_is_refused_not_read_as_match_everything(conn: sqlite3.Connection, text: str) -> None:
    # SQLite's LIKE stops reading a pattern at NUL: '%\x00%' would match every consumer.
    with pytest.raises(FilterError, match="NUL"):
        parse_filter(text)


@pytest.mark.parametrize("term, indexed", [("nor", True), ("no", False), ("c01", True), ("c0", False)])
def test_terms_of_three_characters_use_the_name_index_shorter_ones_cannot(
        conn: sqlite3.Connection, term: str, indexed: bool) -> None:
    field = "id" if term.startswith("c0") else "name"
    flt = parse_filter(f"{field}:{term}")
    conds, params = consumer_conditions(flt)
    plan = " ".join(str(tuple(r)) for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT id FROM consumer WHERE {' AND '.join(conds)}", params))
    assert ("consumer_fts" in plan) is indexed
    assert (name_match(flt) is not None) is indexed


def test_the_name_index_follows_new_renamed_and_removed_consumers(conn: sqlite3.Connection,
                                                                   reader: QueueReader) -> None:
    q = QueueQuery(parse_filter("name:zanzibar"))
    assert reader.count(q) == 0
    with transaction(conn):
        conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('z1', 'Zanzibar Data'), ('z2', 'Other')")
    assert reader.count(q) == 1
    with transaction(conn):
        conn.execute("UPDATE consumer SET legal_name = 'ZANZIBAR Two' WHERE id = 'z2'")
        conn.execute("UPDATE consumer SET legal_name = 'Elsewhere' WHERE id = 'z1'")
    assert ids(reader.page(q, 0, 10)) == ["z2"]
    with transaction(conn):
        conn.execute("DELETE FROM consumer WHERE id = 'z2'")
    assert reader.count(q) == 0 and reader.page(q, 0, 10) == []


@pytest.mark.parametrize("few", [1, 10_000])
def test_name_and_finding_terms_read_the_same_rows_from_their_index_or_walking_the_order(
        conn: sqlite3.Connection, few: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "_FEW", few)   # 1: always walk the order; 10,000: always read the index
    monkeypatch.setattr(queue, "_SOME_NAMES", few)
    for text in ("name:north", "name:nor status:cand", "id:c01 tier:gold", "name:data over:2", "status:conf",
                 "category:volume,gov severity:high", "status:cand,needs category:rate over:2"):
        for sort in queue.SORTS:
            q = QueueQuery(parse_filter(text), sort=sort)
            expected = reference(conn, q)
            reader = QueueReader(lambda: conn)
            assert reader.count(q) == len(expected)
            assert ids(reader.page(q, 0, 500)) == expected
            assert ids(reader.page(q, max(0, len(expected) - 3), 3)) == expected[-3:]


# --- ] and [: open consumers first, wrapping; then those waiting for information ----


@pytest.fixture
def small(tmp_path: Path) -> sqlite3.Connection:
    """Six consumers in overage order a..f: a open, b waiting for information, c
    decided, d open, e waiting, f clear (states from their findings)."""
    c = connect(tmp_path / "six.db")
    with transaction(c):
        for cid, ratio, statuses in [("a", 9.0, ["candidate", "needs_info"]), ("b", 8.0, ["needs_info"]),
                                     ("c", 7.0, ["confirmed"]), ("d", 6.0, ["candidate"]),
                                     ("e", 5.0, ["needs_info", "dismissed"]), ("f", 0.0, [])]:
            c.execute("INSERT INTO consumer (id, legal_name) VALUES (?, ?)", (cid, cid.upper()))
            for status in statuses:
                c.execute("INSERT INTO finding (consumer_id, category, period, period_start, period_end, status,"
                          " ratio, detected_at, updated_at) VALUES (?, 'volume_cap', '2022', '2022-01-01',"
                          " '2022-12-31', ?, ?, 't', 't')", (cid, status, ratio))
        refresh_all(c)
    return c


def test_a_consumer_with_only_findings_waiting_for_information_is_in_the_info_state(small: sqlite3.Connection) -> None:
    states = dict(small.execute("SELECT id, review_state FROM consumer"))
    assert states == {"a": "open", "b": "info", "c": "decided", "d": "open", "e": "info", "f": "clear"}
    reader = QueueReader(lambda: small)
    assert [r.verdict for r in reader.page(QueueQuery(), 0, 6)] == ["open", "info", "violation", "open", "info",
                                                                    "clear"]
    assert ids(reader.page(QueueQuery(parse_filter("state:info")), 0, 6)) == ["b", "e"]
    assert ids(reader.page(QueueQuery(parse_filter("status:needs_info")), 0, 6)) == ["a", "b", "e"]
    assert ids(reader.page(QueueQuery(sort="status"), 0, 6)) == ["a", "d", "b", "e", "c", "f"]


def test_next_to_decide_skips_the_waiting_and_wraps(small: sqlite3.Connection) -> None:
    reader = QueueReader(lambda: small)
    q = QueueQuery()
    assert reader.next_to_decide(q, 0, 1) == queue.Jump(3, wrapped=False, state="open")
    assert reader.next_to_decide(q, 3, 1) == queue.Jump(0, wrapped=True, state="open")
    assert reader.next_to_decide(q, 5, 1) == queue.Jump(0, wrapped=True, state="open")
    assert reader.next_to_decide(q, 1, -1) == queue.Jump(0, wrapped=False, state="open")
    assert reader.next_to_decide(q, 0, -1) == queue.Jump(3, wrapped=True, state="open")
    # The cursor on the only open consumer: the waiting ones come next.
    with transaction(small):
        small.execute("UPDATE finding SET status = 'confirmed' WHERE consumer_id = 'd'")
        refresh_summary(small, ["d"])
    assert reader.next_to_decide(q, 0, 1) == queue.Jump(1, wrapped=False, state="info")
    with transaction(small):
        small.execute("UPDATE finding SET status = 'confirmed' WHERE consumer_id = 'a' AND status = 'candidate'")
        refresh_summary(small, ["a"])
    # Nothing left to decide: the ones waiting for information, in turn.
    assert reader.next_to_decide(q, 0, 1) == queue.Jump(1, wrapped=False, state="info")
    assert reader.next_to_decide(q, 1, 1) == queue.Jump(4, wrapped=False, state="info")
    assert reader.next_to_decide(q, 4, 1) == queue.Jump(0, wrapped=True, state="info")
    assert reader.next_to_decide(q, 0, -1) == queue.Jump(4, wrapped=True, state="info")
    with transaction(small):
        small.execute("UPDATE finding SET status = 'confirmed' WHERE status = 'needs_info'")
        refresh_summary(small, ["a", "b", "e"])
    assert reader.next_to_decide(q, 2, 1) == queue.Jump(None)
    # The only one left is the one under the cursor: nowhere else to go.
    with transaction(small):
        small.execute("UPDATE finding SET status = 'candidate' WHERE consumer_id = 'c'")
        refresh_summary(small, ["c"])
    assert reader.next_to_decide(q, 2, 1) == queue.Jump(None)
    assert reader.next_to_decide(q, 0, 1) == queue.Jump(2, wrapped=False, state="open")


@pytest.mark.parametrize("text, position", [
    ("over:abc", 5),                    # the value that is not a ratio
    ("state:open over:abc", 16),
    ("north colour:red", 6),            # the unknown field
    ("status:maybe tier:gold", 7),
    ("state:open status:", 18),         # a term without its value: where it goes
    ('name:"north', 5),                 # the quote left open
    ("north   status:c", 15),           # an ambiguous value, after a run of spaces
    # The case terms (issue 13) point at their value too, not at the end:
    ("status:candidate due:soon", 21),
    ("case:letter-sent month:2022-13", 23),
    ("week:2026-W99 tier:pro", 5),
    ("state:open case:zzz", 16),
])
def test_a_bad_filter_says_where_it_goes_wrong(text: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert info.value.position == position


def test_a_database_from_before_the_info_state_is_migrated(tmp_path: Path) -> None:
    from store.schema import MIGRATION_1

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(MIGRATION_1)
    old.execute("PRAGMA user_version = 1")
    old.executescript(
        "INSERT INTO consumer (id, legal_name, review_state, open_findings) VALUES"
        " ('parked', 'P', 'open', 1), ('both', 'B', 'open', 2), ('done', 'D', 'decided', 0);"
        "INSERT INTO finding (consumer_id, category, period, period_start, period_end, status, detected_at,"
        " updated_at) VALUES ('parked', 'volume_cap', 'p', 'a', 'b', 'needs_info', 't', 't'),"
        " ('both', 'volume_cap', 'p', 'a', 'b', 'needs_info', 't', 't'),"
        " ('both', 'rate_limit', 'p', 'a', 'b', 'candidate', 't', 't'),"
        " ('done', 'rate_limit', 'p', 'a', 'b', 'confirmed', 't', 't');")
    old.commit()
    old.close()
    c = connect(path)
    assert dict(c.execute("SELECT id, review_state FROM consumer")) == {"parked": "info", "both": "open",
                                                                       "done": "decided"}
