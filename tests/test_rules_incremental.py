"""Incremental rules: a run over the consumers whose data changed gives the same
findings as a run over every consumer (``warden rules --all``), over random
sequences of syncs of the demo endpoint (new days, revisions and withdrawals
upstream, names and use cases changing), configuration changes (limits, the
roster moving an app, a declared use case, a consumer's tier) and reviewer
decisions (a dismissal, an undo, a case taken from the letter to its
resolution). Two databases live through the same sequence: one runs the rules
incrementally, the other runs them over everything each time; their findings,
queue summaries and cases (a recurrence reopens one) must agree."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from store.clock import fixed_clock
from store.casework.state import close_case
from store.config import Config, NotesConfig
from store.consumers import apply_config
from store.db import connect
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.config import FEED_SOURCE, demo_config
from store.demo.data import DemoData
from store.export import export_notes
from store.notes import draft_note
from store.review import bulk_decide, dismiss, undo_last
from store.roster import ConsumerConfig
from store.rules import run_rules
from store.sync.engine import sync_source

CONSUMERS = 24
FIRST_END = date(2022, 3, 10)
DAYS = 50            # the demo serves the DAYS days up to its end
STEPS = 14


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, "incremental")


@dataclass
class Upstream:
    """What the demo endpoint serves: its last day and the corrections so far."""

    end: date = FIRST_END
    revised: list[tuple[str, date, str, int]] = field(default_factory=list)
    withdrawn: list[tuple[str, date]] = field(default_factory=list)
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)

    def data(self) -> DemoData:
        data = DemoData(CONSUMERS, end=self.end, days=DAYS, names_override=self.overrides)
        for app_id, day, metric, value in self.revised:
            data.revise(app_id, day, metric, value)
        for app_id, day in self.withdrawn:
            data.withdraw(app_id, day)
        return data


def clock_for(upstream: Upstream) -> Any:
    return fixed_clock(datetime.combine(upstream.end + timedelta(days=1), time(6), tzinfo=timezone.utc))


def sync(db: Path, endpoint: DemoEndpoint, config: Config, upstream: Upstream, *, everything: bool) -> None:
    """What sync_all does (one deterministic fetch thread), the rules incremental or over everything."""
    clock = clock_for(upstream)
    result = sync_source(db, config.sources[FEED_SOURCE], clock=clock)
    assert result.status == "ok", result
    conn = connect(db)
    try:
        apply_config(conn, config)
        run_rules(conn, clock=clock, everything=everything)
    finally:
        conn.close()


FINDING = ("dedupe_key, consumer_id, category, period, period_start, period_end, severity, status, rule_id, "
           "metric, actual, limit_value, ratio, figures, detected_at, updated_at, version")


def state(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        return {
            "findings": conn.execute(f"SELECT {FINDING} FROM finding ORDER BY dedupe_key").fetchall(),
            "queue": conn.execute("SELECT id, worst_ratio, open_findings, review_state, case_state, case_due"
                                  " FROM consumer ORDER BY id").fetchall(),
            "cases": conn.execute("SELECT id, consumer_id, state, letter_sent_at, due_date, reopens, outcome,"
                                  " version FROM case_file ORDER BY id").fetchall(),
        }
    finally:
        conn.close()


def app_ids(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT app_id, consumer_id FROM app WHERE source = ? ORDER BY app_id",
                            (FEED_SOURCE,)).fetchall()
    finally:
        conn.close()


def apps_of(db: Path, *, with_candidates: bool) -> list[str]:
    """Apps of consumers with (or without) a candidate finding."""
    conn = sqlite3.connect(db)
    try:
        return [a for (a,) in conn.execute(
            f"SELECT app_id FROM app WHERE source = ? AND consumer_id {'' if with_candidates else 'NOT'} IN "
            "(SELECT consumer_id FROM finding WHERE status = 'candidate') ORDER BY app_id", (FEED_SOURCE,))]
    finally:
        conn.close()


def step(rnd: random.Random, upstream: Upstream, config: Config, dbs: list[Path]) -> str:
    """Change one thing, upstream, in the configuration or by a reviewer; say what."""
    apps = app_ids(dbs[0])
    app_id, owner = rnd.choice(apps)
    # Most changes go where they show: to an app whose consumer has findings.
    if rnd.random() < 0.7:
        app_id = rnd.choice(apps_of(dbs[0], with_candidates=True) or [app_id])
        owner = dict(apps)[app_id]
    recent = upstream.end - timedelta(days=rnd.randrange(5))      # inside the sync's look-back window
    kind = rnd.choice(["new day", "new day", "spike", "revise", "withdraw", "limits", "move app", "use case",
                       "tier", "rename", "decide", "resolve", "look-back", "nothing"])
    if kind == "new day":
        upstream.end += timedelta(days=1)
    elif kind == "spike":   # a new day with a huge figure, for a consumer that had nothing to decide
        upstream.end += timedelta(days=1)
        quiet = apps_of(dbs[0], with_candidates=False) or [app_id]
        upstream.revised.append((rnd.choice(quiet), upstream.end, "calls", 90_000_000))
    elif kind == "look-back":   # 0: only the new days are fetched (new rows, no overlap with what is stored)
        source = config.sources[FEED_SOURCE]
        config.sources[FEED_SOURCE] = replace(source, lookback_days=7 if source.lookback_days == 0 else 0)
    elif kind == "revise":
        metric = rnd.choice(["calls", "records"])
        upstream.revised.append((app_id, recent, metric, rnd.choice([0, 7, 5_000_000, 90_000_000])))
    elif kind == "withdraw":
        upstream.withdrawn.append((app_id, recent))
    elif kind == "limits":
        tier = config.tiers[rnd.choice(sorted(config.tiers))]
        factor = rnd.choice([0.2, 0.5, 2.0])
        tier.limits = [(m, p, max(1, int(v * factor))) for m, p, v in tier.limits]
    elif kind == "move app":
        to = rnd.choice([cid for _, cid in apps if cid != owner] or [owner])
        config.consumers = [c for c in config.consumers if c.id != to] + [
            ConsumerConfig(id=to, legal_name=f"Roster {to}", tier=rnd.choice(sorted(config.tiers)),
                           declared_use_case="Research", apps=[(FEED_SOURCE, app_id)])]
    elif kind == "use case":
        index = int(app_id.split("-")[1])
        upstream.overrides[index] = {**upstream.overrides.get(index, {}),
                                     "declared_use_case": rnd.choice([None, "Monitoring"])}
    elif kind == "tier":
        config.consumers = [replace(c, tier=rnd.choice(sorted(config.tiers))) for c in config.consumers]
    elif kind == "rename":
        index = int(app_id.split("-")[1])
        upstream.overrides[index] = {**upstream.overrides.get(index, {}), "app_name": f"Renamed {rnd.random():.3f}"}
    elif kind == "decide":
        decide(dbs, rnd, clock_for(upstream))
    elif kind == "resolve":
        resolve(dbs, clock_for(upstream))
    return kind


def decide(dbs: list[Path], rnd: random.Random, clock: Any) -> None:
    """The same decision in both databases: dismiss a candidate, or undo the last one."""
    conns = [connect(db) for db in dbs]
    try:
        keys = [k for (k,) in conns[0].execute(
            "SELECT dedupe_key FROM finding WHERE status = 'candidate' ORDER BY dedupe_key")]
        undo = rnd.random() < 0.4
        key = rnd.choice(keys) if keys else None
        for conn in conns:
            if undo:
                undo_last(conn, reviewer="rita", clock=clock)
            elif key is not None:
                (fid,) = conn.execute("SELECT id FROM finding WHERE dedupe_key = ?", (key,)).fetchone()
                dismiss(conn, fid, reviewer="rita", reason_code="duplicate", clock=clock)
    finally:
        for conn in conns:
            conn.close()


def resolve(dbs: list[Path], clock: Any) -> None:
    """The same case in both databases: the first consumer with a candidate and
    no case under way has its findings confirmed, its letter exported and its
    case resolved (usage within limits); a later breach of the same limit reopens it."""
    conns = [connect(db) for db in dbs]
    try:
        row = conns[0].execute(
            "SELECT consumer_id FROM finding WHERE status = 'candidate' AND consumer_id IN"
            " (SELECT id FROM consumer WHERE retired_at IS NULL AND ifnull(case_state, 'open') = 'open')"
            " ORDER BY consumer_id LIMIT 1").fetchone()
        if row is None:
            return
        for n, conn in enumerate(conns):
            bulk_decide(conn, action="confirm", reviewer="lea", clock=clock, consumer_ids=[row[0]], reason="over")
            draft_note(conn, row[0], reviewer="lea", clock=clock, config=NotesConfig())
            export_notes(conn, fmt="md", out_dir=dbs[n].parent / f"letters-{n}-{clock().date()}-{row[0]}",
                         consumer_id=row[0], reviewer="lea", clock=clock, config=NotesConfig())
            close_case(conn, row[0], outcome="within_limits", reason="back under", reviewer="lea", clock=clock)
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rules_equal_a_full_pass_after_every_step(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    upstream = Upstream()
    incremental, full = tmp_path / "incremental.db", tmp_path / "full.db"
    with DemoEndpoint(consumers=CONSUMERS, end=upstream.end, days=DAYS) as endpoint:
        config = demo_config(endpoint)
        config.sources = {FEED_SOURCE: replace(config.sources[FEED_SOURCE], concurrency=1, start=None,
                                               options={"shards": 2})}
        config.consumers = []
        # The rules ran once on the empty database: from the first sync on, every
        # run looks only at what changed.
        conn = connect(incremental)
        run_rules(conn, clock=clock_for(upstream))
        conn.close()
        history = ["first sync"]
        for n in range(STEPS + 1):
            endpoint.data = upstream.data()
            sync(incremental, endpoint, config, upstream, everything=False)
            sync(full, endpoint, config, upstream, everything=True)
            assert state(incremental) == state(full), f"seed {seed}, after: {' / '.join(history)}"
            if n < STEPS:
                history.append(step(rnd, upstream, config, [incremental, full]))
    conn = connect(incremental)
    modes = [mode for (mode,) in conn.execute("SELECT mode FROM rules_run ORDER BY id")]
    evaluated = [n for (n,) in conn.execute("SELECT consumers FROM rules_run ORDER BY id")]
    conn.close()
    # The first run (empty database) is a full pass; the others look only at what
    # changed: everything on the first sync, then every (daily) consumer on a new
    # day, a few on most other steps.
    assert modes == ["full"] + ["changed"] * (STEPS + 1)
    assert evaluated[:2] == [0, CONSUMERS] and sum(evaluated[2:]) < STEPS * CONSUMERS
