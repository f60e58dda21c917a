"""What a sync says when it ends: the rules line counts findings that are no
longer detected, and a partial source is called partial, with why."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from store.clock import fixed_clock
from store.config import Config, SourceConfig
from store.db import connect
from store.demo import DemoEndpoint
from store.sync.engine import sync_all
from store.sync.events import RulesApplied, SourceFinished

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))


def test_the_rules_line_counts_findings_no_longer_detected(tmp_path: Path) -> None:
    """Defect 10: consumer 3 is just over its monthly call cap in December; the
    source then revises its December calls to zero. The next sync's rules line
    says how many findings are no longer detected, instead of counting them
    nowhere ("0 updated, 2 unchanged")."""
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=8, env_faults=False) as endpoint:
        config = Config(sources={"feed": SourceConfig("feed", "warden-feed", endpoint.feed_url,
                                                      start=date(2022, 12, 1), lookback_days=31,
                                                      options={"shards": 1})})
        sync_all(db, config, clock=CLOCK)
        consumer = endpoint.data.consumer(3)
        conn = connect(db)
        before = conn.execute("SELECT count(*) FROM finding WHERE consumer_id = ? AND category = 'volume_cap' "
                              "AND period = '2022-12' AND figures NOT LIKE '%no_longer_detected%'",
                              (consumer.id,)).fetchone()[0]
        conn.close()
        assert before >= 1
        for app in consumer.apps:
            for offset in range(31):
                endpoint.revise(app.id, date(2022, 12, 1) + timedelta(days=offset), "calls", 0)
        events: list[Any] = []
        sync_all(db, config, clock=CLOCK, on_event=events.append)
    rules = [e for e in events if isinstance(e, RulesApplied)][0]
    assert rules.no_longer_detected == before, rules
    line = rules.as_line()
    assert f"{before:,} no longer detected" in line, line
    assert rules.as_json()["no_longer_detected"] == before


def test_a_rules_line_with_nothing_gone_says_so_too() -> None:
    line = RulesApplied(consumers=12, created=3, updated=1, unchanged=5, no_longer_detected=0).as_line()
    assert line == ("rules: 12 consumers checked (those whose data changed), 3 findings created, 1 updated, "
                    "0 with newer provenance, 5 unchanged, 0 no longer detected")
    line = RulesApplied(consumers=40, created=0, updated=0, unchanged=9, provenance=2, mode="full").as_line()
    assert line == ("rules: 40 consumers checked (every consumer), 0 findings created, 0 updated, "
                    "2 with newer provenance, 9 unchanged, 0 no longer detected")


def test_a_partial_source_is_called_partial_with_why() -> None:
    partial = SourceFinished("feed", "partial", 120, 3, "source 'feed', http://x/usage, at $.rows[0][3]: "
                                                        "count -5 is negative", rejected=1)
    assert partial.headline == "Sync partial"
    assert partial.why.startswith("a page was refused; everything else is stored: ")
    assert "count -5 is negative" in partial.why
    several = SourceFinished("feed", "partial", 0, 3, "source 'feed', at $: bad (and 2 more rejected pages)",
                             rejected=3)
    assert several.why.startswith("3 pages were refused; everything else is stored: ")
    failed = SourceFinished("x", "failed", 0, 1, "source 'x' stopped: not authorised (HTTP 401)")
    assert failed.headline == "Sync failed" and failed.why == "source 'x' stopped: not authorised (HTTP 401)"
    nothing = SourceFinished("feed", "partial", 0, 2, "the source reported no figures for 2022-12-01..2022-12-31, "
                                                      "where 40 are stored; nothing was withdrawn")
    assert nothing.headline == "Sync partial" and nothing.why.startswith("the source reported no figures")
    assert SourceFinished("feed", "cancelled", 0, 0, "cancelled").headline == "Sync cancelled"


def test_the_engine_counts_the_refused_pages(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=4, env_faults=False) as endpoint:
        endpoint.faults.add("negative@/feed/v1/usage,times=0")
        endpoint.faults.add("non_json@/feed/v1/endpoints,times=0")
        config = Config(sources={"feed": SourceConfig("feed", "warden-feed", endpoint.feed_url,
                                                      start=date(2022, 12, 20), options={"shards": 1})})
        events: list[Any] = []
        sync_all(tmp_path / "w.db", config, clock=CLOCK, on_event=events.append)
    finished = [e for e in events if isinstance(e, SourceFinished)][0]
    assert (finished.status, finished.rejected) == ("partial", 2)
    assert finished.why.startswith("2 pages were refused; everything else is stored: source 'feed'")


def test_a_page_line_shows_its_first_notes_and_counts_the_rest() -> None:
    from store.sync.events import PageStored

    notes = tuple(f"'a' 2022-12-0{n} 'calls': no figure (missing, not stored) at $.data[{n}]" for n in range(1, 6))
    line = PageStored("feed", "usage/0", 10, 2, 30, notes).as_line()
    assert all(note in line for note in notes[:3]) and notes[3] not in line
    assert line.endswith("and 2 more (the page's log: sync_page.notes)")
    exactly = PageStored("feed", "usage/0", 10, 2, 30, notes[:3]).as_line()
    assert "more" not in exactly and notes[2] in exactly
