"""Rules against real SQLite files seeded with usage rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.config import Config, SourceConfig, TierConfig
from store.consumers import apply_config
from store.roster import ConsumerConfig
from store.db import connect
from store.rules import run_rules, severity_for
from store.rules_pending import mark_apps

CLOCK = fixed_clock(datetime(2023, 1, 2, 9, 0, tzinfo=timezone.utc))
LATER = fixed_clock(datetime(2023, 1, 3, 9, 0, tzinfo=timezone.utc))


def _config() -> Config:
    config = Config()
    config.sources["feed"] = SourceConfig(name="feed", adapter="warden-feed", url="http://127.0.0.1:1/feed/v1")
    config.tiers["basic"] = TierConfig(
        id="basic", name="Basic",
        limits=[("calls", "month", 1_000), ("calls", "day", 100), ("records", "year", 10_000)],
        allowed_endpoints=["/2/tweets/*", "/2/users/by"],
    )
    config.tiers["open"] = TierConfig(id="open", name="Unlimited")
    config.consumers = [
        ConsumerConfig(id="acme", legal_name="Acme Ltd", tier="basic", declared_use_case="Search",
                       apps=[("feed", "a1"), ("feed", "a2")]),
        ConsumerConfig(id="solo", legal_name="Solo plc", tier="basic", declared_use_case="Archive",
                       apps=[("feed", "s1")]),
        ConsumerConfig(id="free", legal_name="Free Inc", tier="open", apps=[("feed", "f1"), ("feed", "f2")]),
    ]
    return config


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = connect(tmp_path / "warden.db")
    apply_config(connection, _config())
    connection.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (1, 'feed', 't', 'ok')")
    connection.execute("INSERT INTO sync_run (id, source, started_at, status) VALUES (2, 'feed', 't', 'ok')")
    for page in (10, 11, 12):
        connection.execute("INSERT INTO sync_page (id, run_id, chain, url, fetched_at) VALUES (?, 1, 'usage/0', 'u', 't')",
                           (page,))
    return connection


def put(conn: sqlite3.Connection, app: str, day: str, metric: str, value: int, *, run: int = 1, page: int = 10) -> None:
    """A figure stored as the sync writer stores it: the app marked for the rules."""
    conn.execute(
        "INSERT INTO usage (source, app_id, day, metric, value, run_id, page_id) VALUES ('feed', ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET value = excluded.value, run_id = excluded.run_id, page_id = excluded.page_id",
        (app, day, metric, value, run, page))
    mark_apps(conn, "figures", "feed", [app])


def findings(conn: sqlite3.Connection, **where: str) -> list[sqlite3.Row]:
    sql = "SELECT * FROM finding"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
    return conn.execute(sql + " ORDER BY dedupe_key", tuple(where.values())).fetchall()


def test_severity_follows_the_ratio() -> None:
    assert [severity_for(r) for r in (1.01, 1.5, 3, 9.99, 10, 250)] == [
        "low", "medium", "high", "high", "critical", "critical"]


def test_monthly_volume_cap_over_all_apps_with_per_app_breakdown_and_provenance(conn: sqlite3.Connection) -> None:
    # 20 days x (30 + 35) = 1300 calls in January against 1,000 per month; no day over 100.
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 30, page=10)
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 35, run=2, page=11)
    put(conn, "a1", "2022-02-01", "calls", 50)  # February stays under

    result = run_rules(conn, clock=CLOCK)

    [volume] = findings(conn, category="volume_cap")
    assert (volume["consumer_id"], volume["period"], volume["period_start"], volume["period_end"]) == (
        "acme", "2022-01", "2022-01-01", "2022-01-31")
    assert (volume["metric"], volume["actual"], volume["limit_value"], volume["ratio"]) == ("calls", 1300, 1000, 1.3)
    assert volume["severity"] == "low" and volume["status"] == "candidate" and volume["rule_id"] == "volume_cap"
    figures = json.loads(volume["figures"])
    assert figures["limit"] == {"metric": "calls", "period": "month", "max": 1000}
    assert [(a["app_id"], a["total"], a["days"]) for a in figures["apps"]] == [("a2", 700, 20), ("a1", 600, 20)]
    assert figures["runs"] == [1, 2] and figures["pages"] == [10, 11]
    assert result.created == len(findings(conn))
    assert not findings(conn, category="rate_limit")


# --- every limit exactly on it and one past it (the limits of _config(), written out) ---


def test_a_monthly_total_exactly_at_the_cap_is_no_violation_and_one_more_is(conn: sqlite3.Connection) -> None:
    for d in range(1, 21):                       # 20 days x (25 + 25) = 1,000 calls: exactly the monthly cap
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 25)
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 25)
    run_rules(conn, clock=CLOCK)
    assert findings(conn, category="volume_cap") == [] and findings(conn, category="circumvention") == []
    put(conn, "a2", "2022-01-20", "calls", 26)   # 1,001
    run_rules(conn, clock=LATER)
    [volume] = findings(conn, category="volume_cap")
    assert (volume["period"], volume["actual"], volume["limit_value"]) == ("2022-01", 1001, 1000)
    [circ] = findings(conn, category="circumvention")       # each app at 500 or 501: both under
    assert circ["actual"] == 1001


def test_a_yearly_total_exactly_at_the_cap_is_no_violation_and_one_more_is(conn: sqlite3.Connection) -> None:
    put(conn, "s1", "2022-03-01", "records", 6_000)
    put(conn, "s1", "2022-09-01", "records", 4_000)          # 10,000 records in 2022: exactly the yearly cap
    run_rules(conn, clock=CLOCK)
    assert findings(conn, category="volume_cap") == []
    put(conn, "s1", "2022-09-01", "records", 4_001)
    run_rules(conn, clock=LATER)
    [year] = findings(conn, category="volume_cap")
    assert (year["period"], year["actual"], year["limit_value"]) == ("2022", 10_001, 10_000)


def test_a_day_exactly_at_the_daily_limit_is_no_violation_and_one_more_is(conn: sqlite3.Connection) -> None:
    put(conn, "s1", "2022-03-02", "calls", 100)
    put(conn, "a1", "2022-03-02", "calls", 60)
    put(conn, "a2", "2022-03-02", "calls", 40)               # acme: 100 over its two apps
    run_rules(conn, clock=CLOCK)
    assert findings(conn, category="rate_limit") == [] and findings(conn, category="circumvention") == []
    put(conn, "s1", "2022-03-02", "calls", 101)
    put(conn, "a2", "2022-03-02", "calls", 41)
    run_rules(conn, clock=LATER)
    assert [(f["consumer_id"], f["actual"]) for f in findings(conn, category="rate_limit")] == [
        ("acme", 101), ("solo", 101)]


def test_circumvention_counts_an_app_exactly_at_the_cap_as_under_and_one_more_as_over(
        conn: sqlite3.Connection) -> None:
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 50)     # a1: 1,000 in January, exactly the cap
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 15)     # a2: 300; together 1,300
    put(conn, "a1", "2022-05-05", "calls", 100)              # a day: a1 exactly at the daily limit
    put(conn, "a2", "2022-05-05", "calls", 30)
    run_rules(conn, clock=CLOCK)
    assert sorted((f["period"], f["actual"]) for f in findings(conn, category="circumvention")) == [
        ("2022-01", 1300), ("2022-05", 130)]
    # One more for a1 on each: it alone is over, so the consumer is over through it, not around it.
    put(conn, "a1", "2022-01-20", "calls", 51)
    put(conn, "a1", "2022-05-05", "calls", 101)
    put(conn, "a2", "2022-05-05", "calls", 29)
    run_rules(conn, clock=LATER)
    assert [f["status"] for f in findings(conn, category="circumvention")] == ["candidate", "candidate"]
    assert all("no_longer_detected" in json.loads(f["figures"]) for f in findings(conn, category="circumvention"))
    assert sorted((f["period"], f["actual"]) for f in findings(conn, category="volume_cap")) == [("2022-01", 1301)]
    assert sorted((f["period"], f["actual"]) for f in findings(conn, category="rate_limit")) == [("2022-05", 130)]


def test_severity_changes_exactly_at_each_threshold() -> None:
    assert [severity_for(r) for r in (1.0, 1.4999, 1.5, 2.9999, 3.0, 9.9999, 10.0)] == [
        "low", "low", "medium", "medium", "high", "high", "critical"]


def test_circumvention_when_every_app_stays_under_but_the_consumer_goes_over(conn: sqlite3.Connection) -> None:
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 30)
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 35)
    run_rules(conn, clock=CLOCK)
    [circ] = findings(conn, category="circumvention")
    assert circ["consumer_id"] == "acme" and circ["period"] == "2022-01" and circ["actual"] == 1300
    assert circ["severity"] == "medium"  # at least medium, though 1.3x alone would be low
    figures = json.loads(circ["figures"])
    assert figures["largest_app_total"] == 700 and figures["apps_with_usage"] == 2


def test_no_circumvention_when_one_app_alone_is_over_or_there_is_one_app(conn: sqlite3.Connection) -> None:
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 60)   # a1 alone: 1,200 > 1,000
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 10)
        put(conn, "s1", f"2022-01-{d:02d}", "calls", 80)   # solo: 1,600, one app
    run_rules(conn, clock=CLOCK)
    assert {f["consumer_id"] for f in findings(conn, category="volume_cap")} == {"acme", "solo"}
    assert findings(conn, category="circumvention") == []


def test_yearly_cap_critical_at_ten_times(conn: sqlite3.Connection) -> None:
    put(conn, "s1", "2022-03-01", "records", 60_000)
    put(conn, "s1", "2022-09-01", "records", 50_000)
    put(conn, "s1", "2021-12-31", "records", 5)  # another year, under
    run_rules(conn, clock=CLOCK)
    [year] = findings(conn, category="volume_cap")
    assert (year["period"], year["period_start"], year["period_end"]) == ("2022", "2022-01-01", "2022-12-31")
    assert (year["actual"], year["limit_value"], year["ratio"], year["severity"]) == (110_000, 10_000, 11.0, "critical")
    assert year["dedupe_key"] == "volume_cap|solo|2022|records_per_year"


def test_rate_limit_one_finding_per_month_listing_days_over(conn: sqlite3.Connection) -> None:
    put(conn, "s1", "2022-03-02", "calls", 150)
    put(conn, "s1", "2022-03-03", "calls", 90)
    put(conn, "s1", "2022-03-09", "calls", 300)
    put(conn, "s1", "2022-04-01", "calls", 101)
    run_rules(conn, clock=CLOCK)
    march, april = findings(conn, category="rate_limit")
    assert (march["period"], march["actual"], march["limit_value"], march["ratio"], march["severity"]) == (
        "2022-03", 300, 100, 3.0, "high")
    figures = json.loads(march["figures"])
    assert figures["worst_day"] == {"day": "2022-03-09", "total": 300}
    assert [d["day"] for d in figures["days_over"]] == ["2022-03-02", "2022-03-09"]
    assert figures["apps"][0]["app_id"] == "s1" and figures["apps"][0]["worst_day"] == 300
    assert (april["period"], april["severity"]) == ("2022-04", "low")


def test_the_worst_day_is_the_highest_total_not_the_latest_day_and_the_earliest_of_a_tie(
        conn: sqlite3.Connection) -> None:
    put(conn, "s1", "2022-03-05", "calls", 300)
    put(conn, "s1", "2022-03-20", "calls", 150)     # later, smaller
    put(conn, "s1", "2022-04-02", "calls", 200)
    put(conn, "s1", "2022-04-09", "calls", 200)     # a tie: the earlier day is named
    run_rules(conn, clock=CLOCK)
    march, april = findings(conn, category="rate_limit")
    assert json.loads(march["figures"])["worst_day"] == {"day": "2022-03-05", "total": 300}
    assert (march["actual"], march["ratio"]) == (300, 3.0)
    assert json.loads(april["figures"])["worst_day"] == {"day": "2022-04-02", "total": 200}


def test_daily_findings_figures_known_answer(conn: sqlite3.Connection) -> None:
    """The evidence a letter cites for a daily limit, worked out by hand: every day
    over with its ratio, each app's part (its figure on the worst day, its total
    over the days over), the runs and pages; the days split across apps again as
    circumvention."""
    conn.execute("UPDATE tier_limit SET max_value = 30 WHERE tier_id = 'basic' AND period = 'day'")
    conn.execute("UPDATE app SET name = 'Acme search' WHERE app_id = 'a1'")
    put(conn, "a1", "2022-05-05", "calls", 16)
    put(conn, "a2", "2022-05-05", "calls", 17)               # 33: over, split across two apps
    put(conn, "a1", "2022-05-09", "calls", 12, page=11)
    put(conn, "a2", "2022-05-09", "calls", 19, page=11)      # 31: over, split
    put(conn, "a1", "2022-05-20", "calls", 40, run=2, page=12)   # 40: over, one app over alone
    run_rules(conn, clock=CLOCK)
    [rate] = findings(conn, category="rate_limit")
    assert (rate["period"], rate["period_start"], rate["period_end"], rate["metric"], rate["actual"],
            rate["limit_value"], rate["ratio"], rate["severity"]) == (
        "2022-05", "2022-05-01", "2022-05-31", "calls", 40, 30, 1.333333, "low")
    assert json.loads(rate["figures"]) == {
        "limit": {"metric": "calls", "period": "day", "max": 30},
        "worst_day": {"day": "2022-05-20", "total": 40},
        "days_over": [{"day": "2022-05-05", "total": 33, "ratio": 1.1},
                      {"day": "2022-05-09", "total": 31, "ratio": 1.033333},
                      {"day": "2022-05-20", "total": 40, "ratio": 1.333333}],
        "apps": [{"source": "feed", "app_id": "a1", "name": "Acme search", "worst_day": 40, "days_over_total": 68},
                 {"source": "feed", "app_id": "a2", "name": None, "worst_day": 0, "days_over_total": 36}],
        "runs": [1, 2],
        "pages": [10, 11, 12],
    }
    [circ] = findings(conn, category="circumvention")
    assert (circ["period"], circ["metric"], circ["actual"], circ["limit_value"], circ["ratio"], circ["severity"]) == (
        "2022-05", "calls", 33, 30, 1.1, "medium")
    assert json.loads(circ["figures"]) == {
        "limit": {"metric": "calls", "period": "day", "max": 30},
        "worst_day": {"day": "2022-05-05", "total": 33},
        "days_over": [{"day": "2022-05-05", "total": 33, "ratio": 1.1},
                      {"day": "2022-05-09", "total": 31, "ratio": 1.033333}],
        "apps": [{"source": "feed", "app_id": "a2", "name": None, "worst_day": 17, "days_over_total": 36},
                 {"source": "feed", "app_id": "a1", "name": "Acme search", "worst_day": 16, "days_over_total": 28}],
        "runs": [1],
        "pages": [10, 11],
        "apps_with_usage": 2,
        "largest_app_worst_day": 17,
    }


def test_a_period_findings_ratio_is_kept_to_six_places(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE tier_limit SET max_value = 3 WHERE tier_id = 'basic' AND metric = 'calls' "
                 "AND period = 'month'")
    put(conn, "s1", "2022-03-01", "calls", 4)
    run_rules(conn, clock=CLOCK)
    [cap] = findings(conn, category="volume_cap")
    assert (cap["period"], cap["actual"], cap["limit_value"], cap["ratio"]) == ("2022-03", 4, 3, 1.333333)


def test_daily_split_across_apps_is_circumvention_too(conn: sqlite3.Connection) -> None:
    put(conn, "a1", "2022-05-05", "calls", 60)
    put(conn, "a2", "2022-05-05", "calls", 70)
    run_rules(conn, clock=CLOCK)
    [circ] = findings(conn, category="circumvention")
    assert circ["dedupe_key"] == "circumvention|acme|2022-05|calls_per_day"
    assert circ["actual"] == 130
    figures = json.loads(circ["figures"])
    assert figures["apps_with_usage"] == 2 and figures["largest_app_worst_day"] == 70
    [rate] = findings(conn, category="rate_limit")
    assert rate["actual"] == 130


def test_missing_use_case_lists_the_apps_and_respects_the_consumer_declaration(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE app SET declared_use_case = 'Research' WHERE app_id = 'f2'")
    conn.execute("INSERT INTO app (source, app_id, consumer_id) VALUES ('feed', 'f3', 'free')")  # no usage
    for app in ("f1", "f2", "a1"):
        put(conn, app, "2022-06-01", "calls", 1)
    put(conn, "f1", "2022-06-20", "calls", 1)
    run_rules(conn, clock=CLOCK)
    [missing] = findings(conn, category="missing_use_case")
    assert missing["consumer_id"] == "free"  # acme declared a use case for all its apps
    assert (missing["actual"], missing["severity"], missing["ratio"]) == (1, "medium", None)
    assert (missing["period_start"], missing["period_end"]) == ("2022-06-01", "2022-06-20")
    figures = json.loads(missing["figures"])
    assert [(a["app_id"], a["declared_use_case"]) for a in figures["apps"]] == [("f1", None), ("f2", "Research")]
    assert figures["apps_without_use_case"] == 1


def test_endpoint_outside_the_tier_per_month(conn: sqlite3.Connection) -> None:
    rows = [("a1", "2022-07-01", "/2/tweets/search/all", 5), ("a1", "2022-07-02", "/2/users/by", 3),
            ("a2", "2022-07-03", "/2/compliance/jobs", 7), ("a1", "2022-07-04", "/2/compliance/jobs", 2),
            ("f1", "2022-07-01", "/anything", 9)]  # tier 'open' allows everything
    conn.executemany("INSERT INTO endpoint_usage VALUES ('feed', ?, ?, ?, ?, 1, 12)", rows)
    run_rules(conn, clock=CLOCK)
    [outside] = findings(conn, category="endpoint_outside")
    assert (outside["consumer_id"], outside["period"], outside["actual"]) == ("acme", "2022-07", 9)
    figures = json.loads(outside["figures"])
    assert [(e["endpoint"], e["calls"]) for e in figures["endpoints"]] == [("/2/compliance/jobs", 9)]
    assert figures["pages"] == [12]


def test_an_allowed_list_that_is_not_a_list_allows_nothing_and_the_finding_lists_none(
        conn: sqlite3.Connection) -> None:
    # warden writes a tier's allowed endpoints as a JSON list; another tool wrote an object here.
    # It is not read as patterns: every endpoint is outside, and the evidence says nothing was allowed.
    conn.execute("""UPDATE tier SET allowed_endpoints = '{"*": true}' WHERE id = 'open'""")
    conn.execute("INSERT INTO endpoint_usage VALUES ('feed', 'f1', '2022-07-01', '/anything', 9, 1, 12)")
    run_rules(conn, clock=CLOCK)
    [outside] = findings(conn, category="endpoint_outside")
    assert (outside["consumer_id"], outside["period"], outside["actual"]) == ("free", "2022-07", 9)
    assert json.loads(outside["figures"])["allowed_endpoints"] == []


def _seed_overage(conn: sqlite3.Connection) -> None:
    for d in range(1, 21):
        put(conn, "a1", f"2022-01-{d:02d}", "calls", 30)
        put(conn, "a2", f"2022-01-{d:02d}", "calls", 35)
    put(conn, "s1", "2022-03-09", "calls", 300)


def test_running_again_changes_nothing(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    first = run_rules(conn, clock=CLOCK)
    before = [tuple(r) for r in findings(conn)]
    second = run_rules(conn, clock=LATER)
    assert first.created > 0 and first.mode == "full"     # the rules never ran here
    # Nothing changed since: nobody is evaluated.
    assert (second.mode, second.consumers, second.created, second.updated) == ("changed", 0, 0, 0)
    full = run_rules(conn, clock=LATER, everything=True)
    assert (full.mode, full.consumers, full.created, full.updated, full.provenance, full.no_longer_detected) == (
        "full", 3, 0, 0, 0, 0)
    assert full.unchanged == first.created
    assert [tuple(r) for r in findings(conn)] == before


def test_chunking_does_not_change_the_result(conn: sqlite3.Connection, tmp_path: Path) -> None:
    _seed_overage(conn)
    run_rules(conn, clock=CLOCK, chunk_size=1)
    chunked = [(r["dedupe_key"], r["actual"], r["figures"]) for r in findings(conn)]
    conn.execute("DELETE FROM finding")
    run_rules(conn, clock=CLOCK, everything=True)
    assert [(r["dedupe_key"], r["actual"], r["figures"]) for r in findings(conn)] == chunked


def test_a_finding_a_reviewer_decided_is_never_changed(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    run_rules(conn, clock=CLOCK)
    conn.execute("UPDATE finding SET status = 'confirmed' WHERE category = 'volume_cap'")
    conn.execute("UPDATE finding SET status = 'dismissed' WHERE category = 'rate_limit'")
    decided = [tuple(r) for r in findings(conn) if r["status"] != "candidate"]
    put(conn, "a1", "2022-01-25", "calls", 90)   # the January total changes
    conn.execute("DELETE FROM usage WHERE app_id = 's1'")  # and the rate overage disappears
    run_rules(conn, clock=LATER)
    assert [tuple(r) for r in findings(conn) if r["status"] != "candidate"] == decided


def test_a_candidate_follows_revised_usage(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    run_rules(conn, clock=CLOCK)
    [before] = findings(conn, category="volume_cap")
    put(conn, "a1", "2022-01-25", "calls", 90, run=2, page=11)
    result = run_rules(conn, clock=LATER)
    [after] = findings(conn, category="volume_cap")
    assert result.updated >= 1 and after["id"] == before["id"]
    assert (after["actual"], after["version"], after["updated_at"]) == (1390, before["version"] + 1, "2023-01-03T09:00:00Z")
    assert after["detected_at"] == before["detected_at"]
    assert json.loads(after["figures"])["runs"] == [1, 2]


def test_a_candidate_no_longer_detected_is_kept_and_marked(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    run_rules(conn, clock=CLOCK)
    conn.execute("UPDATE usage SET value = 10 WHERE app_id = 's1'")  # revised upstream
    result = run_rules(conn, clock=LATER)
    [rate] = findings(conn, category="rate_limit")
    assert rate["status"] == "candidate" and rate["severity"] == "info"
    assert json.loads(rate["figures"])["no_longer_detected"] == {"since": "2023-01-03T09:00:00Z"}
    assert result.no_longer_detected == 1
    again = run_rules(conn, clock=LATER)
    assert again.no_longer_detected == 0 and again.updated == 0
    conn.execute("UPDATE usage SET value = 300 WHERE app_id = 's1'")  # and back
    run_rules(conn, clock=LATER)
    [rate] = findings(conn, category="rate_limit")
    assert rate["severity"] == "high" and "no_longer_detected" not in json.loads(rate["figures"])


def test_queue_summary_is_refreshed(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    run_rules(conn, clock=CLOCK)
    rows = {r["id"]: r for r in conn.execute("SELECT id, worst_ratio, open_findings, review_state FROM consumer")}
    assert rows["solo"]["worst_ratio"] == 3.0 and rows["solo"]["review_state"] == "open"
    # Volume cap and circumvention for January: twins over the same figures, one matter to decide.
    assert rows["acme"]["open_findings"] == 1
    assert conn.execute("SELECT count(*) FROM finding WHERE consumer_id = 'acme'").fetchone()[0] == 2
    assert rows["free"]["review_state"] == "clear"


def test_only_the_named_consumers(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    result = run_rules(conn, clock=CLOCK, consumer_ids=["solo"])
    assert result.consumers == 1
    assert {f["consumer_id"] for f in findings(conn)} == {"solo"}


def test_missing_use_case_figures_known_answer(conn: sqlite3.Connection) -> None:
    # acme declares its use case per app (not as a consumer) and comes first: no finding, and the
    # consumers after it are still looked at. free's app f0 has no usage (listed first: skipped, not
    # the end of the list); f1 declares only spaces, which is none.
    conn.execute("UPDATE consumer SET declared_use_case = NULL WHERE id = 'acme'")
    conn.execute("UPDATE app SET declared_use_case = 'Search' WHERE app_id IN ('a1', 'a2')")
    conn.execute("INSERT INTO app (source, app_id, consumer_id) VALUES ('feed', 'f0', 'free')")
    conn.execute("UPDATE app SET name = 'Free feed', declared_use_case = '   ' WHERE app_id = 'f1'")
    conn.execute("UPDATE app SET declared_use_case = 'Research' WHERE app_id = 'f2'")
    for app in ("a1", "a2", "f1", "f2"):
        put(conn, app, "2022-06-01", "calls", 1)
    put(conn, "f1", "2022-06-20", "calls", 1)
    run_rules(conn, clock=CLOCK)
    [missing] = findings(conn, category="missing_use_case")
    assert (missing["consumer_id"], missing["period"], missing["actual"]) == ("free", "2022-06-01..2022-06-20", 1)
    assert json.loads(missing["figures"]) == {
        "apps": [{"source": "feed", "app_id": "f1", "name": "Free feed", "declared_use_case": None,
                  "first_day": "2022-06-01", "last_day": "2022-06-20"},
                 {"source": "feed", "app_id": "f2", "name": None, "declared_use_case": "Research",
                  "first_day": "2022-06-01", "last_day": "2022-06-01"}],
        "apps_with_usage": 2,
        "apps_without_use_case": 1,
    }


def test_auto_consumers_have_no_limits_but_missing_use_case(conn: sqlite3.Connection) -> None:
    put(conn, "stray", "2022-01-01", "calls", 10_000_000)
    apply_config(conn, _config())
    run_rules(conn, clock=CLOCK)
    [missing] = findings(conn, consumer_id="feed:stray")
    assert missing["category"] == "missing_use_case"


def test_the_callers_connection_is_left_as_it_was(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    conn.execute("CREATE TEMP TABLE mine (x)")
    mmap = conn.execute("PRAGMA mmap_size").fetchone()[0]
    run_rules(conn, clock=CLOCK)
    assert [r[0] for r in conn.execute("SELECT name FROM temp.sqlite_master WHERE type = 'table'")] == ["mine"]
    assert conn.execute("PRAGMA mmap_size").fetchone()[0] == mmap and not conn.in_transaction


def test_endpoint_outside_figures_name_every_endpoint_app_run_and_page(conn: sqlite3.Connection) -> None:
    """Known answer for the evidence a letter cites: each endpoint outside the tier,
    most calls first (a tie by name), with the apps that called it and the days."""
    rows = [("a1", "2024-02-03", "/2/compliance/jobs", 4, 1, 10), ("a2", "2024-02-28", "/2/compliance/jobs", 3, 2, 11),
            ("a2", "2024-02-10", "/2/spaces", 9, 1, 12), ("a1", "2024-02-11", "/2/lists", 2, 2, 11),
            ("a2", "2024-02-12", "/2/lists", 5, 2, 11),
            ("a1", "2024-02-12", "/2/tweets/search/all", 50, 1, 10)]   # allowed by "/2/tweets/*"
    conn.executemany("INSERT INTO endpoint_usage VALUES ('feed', ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("UPDATE app SET name = 'Acme search' WHERE app_id = 'a1'")
    result = run_rules(conn, clock=CLOCK)
    [outside] = findings(conn, category="endpoint_outside")
    assert (outside["consumer_id"], outside["period"], outside["period_start"], outside["period_end"]) == (
        "acme", "2024-02", "2024-02-01", "2024-02-29")
    assert (outside["metric"], outside["actual"], outside["limit_value"], outside["ratio"], outside["severity"]) == (
        "calls", 23, None, None, "medium")
    assert json.loads(outside["figures"]) == {
        "allowed_endpoints": ["/2/tweets/*", "/2/users/by"],
        "endpoints": [
            {"endpoint": "/2/spaces", "calls": 9, "apps": [
                {"source": "feed", "app_id": "a2", "name": None, "calls": 9,
                 "first_day": "2024-02-10", "last_day": "2024-02-10"}]},
            {"endpoint": "/2/compliance/jobs", "calls": 7, "apps": [
                {"source": "feed", "app_id": "a1", "name": "Acme search", "calls": 4,
                 "first_day": "2024-02-03", "last_day": "2024-02-03"},
                {"source": "feed", "app_id": "a2", "name": None, "calls": 3,
                 "first_day": "2024-02-28", "last_day": "2024-02-28"}]},
            {"endpoint": "/2/lists", "calls": 7, "apps": [
                {"source": "feed", "app_id": "a1", "name": "Acme search", "calls": 2,
                 "first_day": "2024-02-11", "last_day": "2024-02-11"},
                {"source": "feed", "app_id": "a2", "name": None, "calls": 5,
                 "first_day": "2024-02-12", "last_day": "2024-02-12"}]},
        ],
        "runs": [1, 2],
        "pages": [10, 11, 12],
    }
    assert (result.mode, result.consumers, result.created) == ("full", 3, 1)


def test_circumvention_takes_the_overage_severity_when_it_is_above_medium(conn: sqlite3.Connection) -> None:
    """Four apps each exactly at the monthly cap of 1,000: 4x the cap is high, and
    ten apps at it, 10x, is critical; the floor of medium only lifts lower ones."""
    for app in ("a3", "a4"):
        conn.execute("INSERT INTO app (source, app_id, consumer_id) VALUES ('feed', ?, 'acme')", (app,))
    for app in ("a1", "a2", "a3", "a4"):
        put(conn, app, "2022-01-10", "calls", 1_000)
    run_rules(conn, clock=CLOCK)
    [circ] = findings(conn, category="circumvention")
    assert (circ["actual"], circ["ratio"], circ["severity"]) == (4_000, 4.0, "high")
    for n in range(5, 11):
        conn.execute("INSERT INTO app (source, app_id, consumer_id) VALUES ('feed', ?, 'acme')", (f"a{n}",))
        put(conn, f"a{n}", "2022-01-10", "calls", 1_000)
    run_rules(conn, clock=LATER)
    [circ] = findings(conn, category="circumvention")
    assert (circ["actual"], circ["ratio"], circ["severity"]) == (10_000, 10.0, "critical")


def test_named_consumers_in_chunks_are_each_evaluated_once(conn: sqlite3.Connection) -> None:
    _seed_overage(conn)
    result = run_rules(conn, clock=CLOCK, consumer_ids=["solo", "acme", "free", "solo"], chunk_size=2)
    assert (result.mode, result.consumers) == ("named", 3)
    assert {f["consumer_id"] for f in findings(conn)} == {"acme", "solo"}
    one = run_rules(conn, clock=LATER, consumer_ids=["free", "acme", "solo"], chunk_size=1)
    assert (one.mode, one.consumers, one.created) == ("named", 3, 0)


def test_yearly_cap_figures_sum_and_span_each_app_over_its_months_january_to_december(
        conn: sqlite3.Connection) -> None:
    """Known answer for a yearly finding: each app's months of the year are summed
    (total, days) and spanned (its earliest first day, its latest last day), with
    its name; a day on 1 January and one on 31 December are both in the year, the
    days just outside it (and their runs and pages) are not."""
    conn.execute("UPDATE app SET name = 'Acme search' WHERE app_id = 'a1'")
    put(conn, "a1", "2021-12-31", "records", 5_000, run=2, page=12)   # 2021: under the cap
    put(conn, "a1", "2022-01-01", "records", 3_000, run=1, page=10)
    put(conn, "a1", "2022-01-15", "records", 1_000, run=1, page=10)
    put(conn, "a2", "2022-06-10", "records", 2_500, run=1, page=11)
    put(conn, "a2", "2022-12-01", "records", 1_500, run=1, page=11)
    put(conn, "a1", "2022-12-31", "records", 2_001, run=1, page=10)
    put(conn, "a2", "2023-01-01", "records", 5_000, run=2, page=12)   # 2023: under the cap
    # 2022: a1 3,000 + 1,000 + 2,001 = 6,001 on 3 days (January and December);
    #       a2 2,500 + 1,500 = 4,000 on 2 days (June and December); together 10,001 > 10,000.
    run_rules(conn, clock=CLOCK)

    [volume] = findings(conn, category="volume_cap")
    assert (volume["consumer_id"], volume["period"], volume["period_start"], volume["period_end"]) == (
        "acme", "2022", "2022-01-01", "2022-12-31")
    assert (volume["metric"], volume["actual"], volume["limit_value"], volume["ratio"], volume["severity"]) == (
        "records", 10_001, 10_000, 1.0001, "low")
    expected = {
        "limit": {"metric": "records", "period": "year", "max": 10_000},
        "total": 10_001,
        "apps": [
            {"source": "feed", "app_id": "a1", "name": "Acme search", "total": 6_001, "days": 3,
             "first_day": "2022-01-01", "last_day": "2022-12-31"},
            {"source": "feed", "app_id": "a2", "name": None, "total": 4_000, "days": 2,
             "first_day": "2022-06-10", "last_day": "2022-12-01"},
        ],
        "runs": [1],
        "pages": [10, 11],
    }
    assert json.loads(volume["figures"]) == expected
    # Each app stayed under 10,000: the split is circumvention too, over the same figures.
    [circ] = findings(conn, category="circumvention")
    assert (circ["period"], circ["actual"], circ["severity"]) == ("2022", 10_001, "medium")
    assert json.loads(circ["figures"]) == {**expected, "largest_app_total": 6_001, "apps_with_usage": 2}
    assert [f["category"] for f in findings(conn)] == ["circumvention", "volume_cap"]


def test_an_unreadable_allowed_list_does_not_stop_the_next_tiers_list_from_being_read(
        conn: sqlite3.Connection) -> None:
    # Another tool wrote something that is not JSON in the first tier's allowed endpoints.
    # That tier allows nothing; the tier stored after it keeps its own list.
    conn.execute("UPDATE tier SET allowed_endpoints = 'not json' WHERE id = 'basic'")
    conn.execute("""UPDATE tier SET allowed_endpoints = '["/2/users/*"]' WHERE id = 'open'""")
    assert [r[0] for r in conn.execute("SELECT id FROM tier ORDER BY rowid")] == ["basic", "open"]
    rows = [("a1", "2022-07-01", "/2/tweets/search/all", 5),        # basic would allow it, if it could be read
            ("f1", "2022-07-02", "/2/users/by", 4),                 # open allows it
            ("f1", "2022-07-03", "/2/spaces", 9)]                   # open does not
    conn.executemany("INSERT INTO endpoint_usage VALUES ('feed', ?, ?, ?, ?, 1, 12)", rows)
    run_rules(conn, clock=CLOCK)
    acme, free = findings(conn, category="endpoint_outside")
    assert (acme["consumer_id"], acme["period"], acme["actual"]) == ("acme", "2022-07", 5)
    assert json.loads(acme["figures"])["allowed_endpoints"] == []
    assert (free["consumer_id"], free["period"], free["actual"]) == ("free", "2022-07", 9)
    free_figures = json.loads(free["figures"])
    assert free_figures["allowed_endpoints"] == ["/2/users/*"]
    assert [(e["endpoint"], e["calls"]) for e in free_figures["endpoints"]] == [("/2/spaces", 9)]


def _commit_when(conn: sqlite3.Connection, other: sqlite3.Connection, starts: str, sql: str) -> list[str]:
    """When ``conn`` starts a statement beginning with ``starts``, ``other`` (another
    warden: a sync) commits ``sql``: a write landing between two of the rules' reads."""
    landed: list[str] = []

    def trace(statement: str) -> None:
        if statement.lstrip().startswith(starts) and not landed:
            other.execute(sql)
            landed.append(statement)

    conn.set_trace_callback(trace)
    return landed


@pytest.mark.parametrize("change", ["UPDATE usage SET value = 5 WHERE app_id = 'a2'", "DELETE FROM usage"])
def test_a_sync_committing_between_the_daily_reads_does_not_split_a_finding(
        conn: sqlite3.Connection, tmp_path: Path, change: str) -> None:
    # 60 + 70 on one day over a daily limit of 100, both apps under it. A sync
    # revises the day just after the rules found the day over and before they read
    # the apps behind it: the finding must be of one state of the data, the apps
    # adding up to the day's total, not a total of 130 over apps of 65 (or of none).
    put(conn, "a1", "2022-05-05", "calls", 60)
    put(conn, "a2", "2022-05-05", "calls", 70)
    other = connect(tmp_path / "warden.db")
    landed = _commit_when(conn, other, "SELECT a.consumer_id, u.metric, u.day, u.source", change)
    run_rules(conn, clock=CLOCK)
    conn.set_trace_callback(None)
    other.close()
    assert landed, "the other write never landed: the rules' reads changed, fix the test's hook"
    for finding in findings(conn, consumer_id="acme"):
        figures = json.loads(finding["figures"])
        assert finding["actual"] == 130
        assert figures["worst_day"] == {"day": "2022-05-05", "total": 130}
        assert sorted((app["app_id"], app["worst_day"]) for app in figures["apps"]) == [("a1", 60), ("a2", 70)]
        if finding["category"] == "circumvention":
            assert figures["largest_app_worst_day"] == 70 and figures["apps_with_usage"] == 2
    assert sorted(f["category"] for f in findings(conn, consumer_id="acme")) == ["circumvention", "rate_limit"]
