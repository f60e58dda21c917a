"""The demo endpoint and its config, synced end to end into a real database: what
`warden demo --headless` promises (the case consumer's 2022 totals and its
volume-cap finding) holds to the exact figures the generator computes."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.db import connect
from store.demo import CASE_ID, DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.config import X_DAYS, X_SOURCE, demo_config
from store.demo.data import X_APPS
from store.sync.engine import sync_all

DEMO_CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))


def test_a_demo_sync_stores_the_generated_figures_and_flags_the_case(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, DEMO_TOKEN)
    db_path = tmp_path / "demo.db"
    with DemoEndpoint(consumers=24, seed=11, require_token=DEMO_TOKEN) as endpoint:
        # The demo's world: X counts its days back from 2023-01-01.
        results = sync_all(db_path, demo_config(endpoint, db_path=db_path), clock=DEMO_CLOCK)
        data = endpoint.data
    assert [(r.source, r.status) for r in results] == [("demo-feed", "ok"), ("demo-x", "ok")]

    conn = connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == data.usage_rows() + len(X_APPS) * X_DAYS
        stored = dict(conn.execute(
            "SELECT u.metric, sum(u.value) FROM usage u JOIN app a ON a.source = u.source AND a.app_id = u.app_id "
            "WHERE a.consumer_id = ? AND u.day BETWEEN '2022-01-01' AND '2022-12-31' GROUP BY u.metric",
            (CASE_ID,)).fetchall())
        assert stored == data.totals(CASE_ID, date(2022, 1, 1), date(2022, 12, 31))
        assert stored["calls"] > 780_000_000 and stored["records"] > 26_000_000_000
        categories = {row[0] for row in conn.execute(
            "SELECT category FROM finding WHERE consumer_id = ? AND status = 'candidate'", (CASE_ID,))}
        assert {"volume_cap", "missing_use_case"} <= categories
        owner = conn.execute("SELECT consumer_id FROM app WHERE source = ? AND app_id = '29183745'",
                             (X_SOURCE,)).fetchone()[0]
        assert owner == "kestrel-media"
        x_total = conn.execute("SELECT sum(value) FROM usage WHERE source = ? AND app_id = '29183745'",
                               (X_SOURCE,)).fetchone()[0]
        assert x_total == data.x_totals("29183745", X_DAYS)
    finally:
        conn.close()
