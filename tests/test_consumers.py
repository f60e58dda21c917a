"""store.consumers: one upsert of tiers and consumers for the configuration and
for a feed's pages, with the configuration winning over the feed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.config import TierConfig
from store.consumers import own_apps, upsert_consumers, upsert_owned_apps, upsert_tiers
from store.db import connect, transaction
from store.sync.adapter import TierRecord


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "warden.db")


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(sql)]


def config_tier() -> TierConfig:
    return TierConfig("gold", "Gold (config)", "2023-04", ["/2/tweets/*"], [("calls", "day", 100)],
                      {"volume_cap": "§ 2.3"})


def feed_tier(name: str = "Gold (feed)") -> TierRecord:
    return TierRecord("gold", name, "2022-01", None, [("calls", "day", 5), ("records", "month", 9)],
                      {"rate_limit": "§ 9", "volume_cap": "§ 1"})


def tier_state(conn: sqlite3.Connection) -> list[list[tuple[object, ...]]]:
    return [rows(conn, "SELECT id, name, agreement_version, allowed_endpoints, origin FROM tier"),
            rows(conn, "SELECT metric, period, max_value FROM tier_limit ORDER BY metric"),
            rows(conn, "SELECT category, clause FROM tier_clause ORDER BY category")]


def test_a_feed_tier_is_written_with_its_limits_and_clauses_and_replaced_by_the_next(
        conn: sqlite3.Connection) -> None:
    with transaction(conn):
        assert upsert_tiers(conn, [feed_tier()], origin="feed") == 1
    assert tier_state(conn) == [[("gold", "Gold (feed)", "2022-01", None, "feed")],
                                [("calls", "day", 5), ("records", "month", 9)],
                                [("rate_limit", "§ 9"), ("volume_cap", "§ 1")]]
    with transaction(conn):
        upsert_tiers(conn, [TierRecord("gold", "Gold 2", None, None, [("calls", "month", 7)], {})], origin="feed")
    assert tier_state(conn) == [[("gold", "Gold 2", None, None, "feed")], [("calls", "month", 7)], []]


def test_the_configuration_tier_wins_over_the_feed_whichever_comes_first(conn: sqlite3.Connection) -> None:
    expected = [[("gold", "Gold (config)", "2023-04", '["/2/tweets/*"]', "config")],
                [("calls", "day", 100)], [("volume_cap", "§ 2.3")]]
    with transaction(conn):
        upsert_tiers(conn, [feed_tier()], origin="feed")
        assert upsert_tiers(conn, [config_tier()], origin="config") == 1
    assert tier_state(conn) == expected
    with transaction(conn):
        assert upsert_tiers(conn, [feed_tier("Gold again")], origin="feed") == 0
    assert tier_state(conn) == expected


CONFIG_ROW = ("acme", "Acme Ltd", "legal@acme.example", None, "2023-04", "Analytics", None)
FEED_ROW = ("acme", "ACME (feed)", "feed@acme.example", None, "2022-01", "Crawling", "City of X")


def consumer(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return rows(conn, "SELECT id, legal_name, notice_contact, tier_id, agreement_version, declared_use_case,"
                      " government_end_users, origin FROM consumer")


def test_the_roster_wins_over_a_feed_for_the_same_consumer(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        upsert_consumers(conn, [FEED_ROW], origin="feed")
    assert consumer(conn) == [(*FEED_ROW, "feed")]
    with transaction(conn):
        upsert_consumers(conn, [CONFIG_ROW], origin="config")
        upsert_consumers(conn, [FEED_ROW], origin="feed")
    assert consumer(conn) == [(*CONFIG_ROW, "config")]


def test_a_feed_naming_an_app_s_own_consumer_makes_it_the_feed_s(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO consumer (id, legal_name, origin) VALUES ('acme', 'k1', 'auto')")
        upsert_consumers(conn, [FEED_ROW], origin="feed")
    assert consumer(conn) == [(*FEED_ROW, "feed")]


def test_a_consumer_that_would_not_change_is_not_rewritten(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        upsert_consumers(conn, [FEED_ROW], origin="feed")
    before = conn.total_changes
    with transaction(conn):
        upsert_consumers(conn, [FEED_ROW], origin="feed")
    assert conn.total_changes == before
    with transaction(conn):
        upsert_consumers(conn, [(*FEED_ROW[:2], None, *FEED_ROW[3:])], origin="feed")
        assert conn.execute("SELECT changes()").fetchone()[0] == 1   # the consumer's row (its triggers aside)
    assert conn.total_changes > before
    assert consumer(conn)[0][2] is None


def test_a_tier_that_would_not_change_is_not_rewritten(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        upsert_tiers(conn, [feed_tier()], origin="feed")
    before = conn.total_changes
    with transaction(conn):
        assert upsert_tiers(conn, [feed_tier()], origin="feed") == 1
    assert conn.total_changes == before
    # One limit different: the limits are rewritten (the tier row and clauses are not).
    changed = feed_tier()
    changed.limits = [("calls", "day", 6), ("records", "month", 9)]
    with transaction(conn):
        upsert_tiers(conn, [changed], origin="feed")
    assert tier_state(conn)[1] == [("calls", "day", 6), ("records", "month", 9)]
    assert conn.total_changes > before


def test_an_app_that_would_not_change_is_not_rewritten(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        upsert_consumers(conn, [FEED_ROW, ("beta", "Beta", None, None, None, None, None)], origin="feed")
        upsert_owned_apps(conn, "s", [("a1", "acme", "App one", "Search")])
        own_apps(conn, "s", [("u1", "Unowned", None)])
    before = conn.total_changes
    with transaction(conn):
        upsert_owned_apps(conn, "s", [("a1", "acme", "App one", "Search")])
        own_apps(conn, "s", [("u1", None, None)])          # nothing new about it: kept as it is
    assert conn.total_changes == before
    with transaction(conn):
        upsert_owned_apps(conn, "s", [("a1", "beta", "App one", "Search")])   # moved to another owner
    assert rows(conn, "SELECT consumer_id FROM app WHERE app_id = 'a1'") == [("beta",)]
