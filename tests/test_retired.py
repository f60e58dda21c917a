"""Retired consumers: an app seen before any roster claimed it became its own
consumer; once the roster gives the app to its owner, that consumer is retired:
its candidates are no longer detected, it leaves the queue (``state:retired``
still shows it), and no note can be drafted for it.

The defect: it stayed in the queue as open with "no apps", and its letter said
both "No application is registered" and "1 of the 1 applications ... declared no
use case"."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.config import NotesConfig
from store.consumers import apply_config
from store.db import connect
from store.demo import DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.config import X_SOURCE, demo_config
from store.errors import DecisionRefused
from store.notes import draft_note
from store.queue import QueueQuery, QueueReader
from store.queue_filter import parse_filter
from store.rules import run_rules

CLOCK = fixed_clock(datetime(2023, 5, 2, 9, 0, tzinfo=timezone.utc))
AUTO = "demo-x:40811932"          # the demo's X app that no roster claims
OWNER = "harbor-civic-labs"


@pytest.fixture
def claimed(demo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo database after the roster gives the unclaimed X app to its owner."""
    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    with DemoEndpoint(consumers=12) as endpoint:
        config = demo_config(endpoint, db_path=demo_copy)
    consumers = [dataclasses.replace(c, apps=[*c.apps, (X_SOURCE, "40811932")]) if c.id == OWNER else c
                 for c in config.consumers]
    conn = connect(demo_copy)
    assert conn.execute("SELECT review_state, open_findings FROM consumer WHERE id = ?", (AUTO,)).fetchone()[:] == (
        "open", 1)
    apply_config(conn, dataclasses.replace(config, consumers=consumers), clock=CLOCK)
    run_rules(conn, clock=CLOCK)
    conn.close()
    return demo_copy


def test_the_auto_consumer_is_retired_when_the_roster_claims_its_app(claimed: Path) -> None:
    conn = connect(claimed)
    owner, retired_at, state = conn.execute(
        "SELECT (SELECT consumer_id FROM app WHERE source = 'demo-x' AND app_id = '40811932'), retired_at,"
        " review_state FROM consumer WHERE id = ?", (AUTO,)).fetchone()
    assert (owner, retired_at, state) == (OWNER, "2023-05-02T09:00:00Z", "retired")
    # Its candidate is no longer detected (nothing of its own is left to detect).
    figures, severity = conn.execute("SELECT json_extract(figures, '$.no_longer_detected.since'), severity"
                                     " FROM finding WHERE consumer_id = ?", (AUTO,)).fetchone()
    assert figures is not None and severity == "info"
    conn.close()


def test_a_retired_consumer_leaves_the_queue_and_state_retired_shows_it(claimed: Path) -> None:
    reader = QueueReader(lambda: connect(claimed))
    everyone = QueueQuery()
    ids = [row.consumer_id for row in reader.page(everyone, 0, 100)]
    assert AUTO not in ids and OWNER in ids
    assert reader.count(everyone) == len(ids) == 15          # 16 consumers, one retired
    assert reader.position_of(everyone, AUTO) is None
    retired = QueueQuery(filter=parse_filter("state:retired"))
    assert [row.consumer_id for row in reader.page(retired, 0, 10)] == [AUTO]
    assert reader.count(retired) == 1
    for text in ("status:candidate", "state:open", "category:volume", "name:demo", "over:0", "id:de"):
        query = QueueQuery(filter=parse_filter(text))
        assert AUTO not in [row.consumer_id for row in reader.page(query, 0, 100)], text
        assert reader.count(query) == len(reader.page(query, 0, 100)), text
    for sort in ("overage", "status", "name"):
        for reverse in (False, True):
            assert AUTO not in [row.consumer_id for row in reader.page(QueueQuery(sort=sort, reverse=reverse), 0,
                                                                         100)], sort
    assert reader.next_unreviewed(everyone, -1) is not None
    reader.close()


def test_no_note_can_be_drafted_for_a_retired_consumer(claimed: Path) -> None:
    conn = connect(claimed)
    with pytest.raises(DecisionRefused, match="retired"):
        draft_note(conn, AUTO, reviewer="ana", clock=CLOCK, config=NotesConfig())
    assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 0
    conn.close()


def test_an_auto_consumer_nobody_looked_at_is_removed_not_retired(demo_copy: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    conn = connect(demo_copy)
    conn.execute("DELETE FROM finding WHERE consumer_id = ?", (AUTO,))
    with DemoEndpoint(consumers=12) as endpoint:
        config = demo_config(endpoint, db_path=demo_copy)
    consumers = [dataclasses.replace(c, apps=[*c.apps, (X_SOURCE, "40811932")]) if c.id == OWNER else c
                 for c in config.consumers]
    apply_config(conn, dataclasses.replace(config, consumers=consumers), clock=CLOCK)
    assert conn.execute("SELECT count(*) FROM consumer WHERE id = ?", (AUTO,)).fetchone()[0] == 0
    conn.close()
