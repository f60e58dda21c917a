"""A small, deterministic review database for the TUI tests and screenshots.

Written through ``store.db`` (migrations, WAL) and plain inserts, then the queue
summary is refreshed the way the rules do it. The case consumer is at the top of
the queue; one consumer has a hostile name (markup and a terminal escape).

Beside it, what drives the app in the Pilot tests, the snapshots and
screenshots/regenerate.py: ``settle()`` (wait for workers and the screen, raise
when they do not come), ``cursors_that_do_not_blink()`` and
``notifications_recorded()`` / ``shown_notifications()`` (tests/conftest.py turns
both on for every test).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from weakref import WeakKeyDictionary

from textual.app import App
from textual.notifications import Notification
from textual.widgets import Input, TextArea

from store.clock import fixed_clock, iso
from store.db import connect, transaction
from store.queue_summary import refresh_all

NOW = datetime(2023, 1, 2, 9, 30, tzinfo=timezone.utc)
CLOCK = fixed_clock(NOW)
HOSTILE_NAME = "[bold red]x[/] \x1b[31mRED\x1b[0m \x1b]52;c;aGk=\x07Corp"

TIER_LIMITS = [
    ("calls", "day", 1_000_000),
    ("calls", "month", 20_000_000),
    ("calls", "year", 200_000_000),
    ("records", "month", 500_000_000),
    ("records", "year", 5_000_000_000),
]

# (id, legal name, apps, calls per day per app, records per day per app, use case)
CONSUMERS = [
    ("northwind-analytics", "Northwind Analytics Ltd", 3, 712_000, 23_900_000, None),
    ("contoso-borderline", "Contoso Borderline GmbH", 1, 560_000, 1_000_000, "market research"),
    ("hostile-co", HOSTILE_NAME, 1, 700_000, 100_000, "[link=https://evil.invalid]click[/link]"),
    ("fabrikam", "Fabrikam Data Inc", 2, 10_000, 20_000, "weather dashboards"),
    ("tailspin", "Tailspin Toys", 1, 640_000, 100_000, "ads"),
]
FILLER = 40


def _finding(conn, fid: int, consumer: str, category: str, period: str, start: str, end: str,
             metric: str | None, actual: int | None, limit: int | None, status: str = "candidate",
             severity: str = "high") -> None:
    ratio = actual / limit if actual and limit else None
    conn.execute(
        "INSERT INTO finding (id, consumer_id, category, period, period_start, period_end, severity, status,"
        " rule_id, metric, actual, limit_value, ratio, figures, dedupe_key, detected_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (fid, consumer, category, period, start, end, severity, status, category, metric, actual, limit,
         ratio, json.dumps({"apps": {}}), f"{category}|{consumer}|{period}|{metric}", iso(NOW), iso(NOW)),
    )
    if status != "candidate":
        # A decided finding has its decision in the log, as store.review writes it (warden verify replays it).
        from store.decision_log import record_decision

        record_decision(conn, subject="finding", subject_id=fid, field="status", old="candidate", new=status,
                        reason="seeded decision", reviewer="seed", clock=lambda: NOW)


def seed_review_db(path: Path, *, filler: int = FILLER) -> Path:
    """Create the database at ``path``; returns it."""
    conn = connect(path)
    with transaction(conn):
        conn.execute("INSERT INTO source (name, kind, url) VALUES ('feed', 'warden-feed', 'http://127.0.0.1/feed/v1')")
        conn.execute("INSERT INTO tier (id, name, agreement_version) VALUES ('standard', 'Standard', 'v3')")
        conn.executemany("INSERT INTO tier_limit VALUES ('standard', ?, ?, ?)", TIER_LIMITS)
        conn.execute(
            "INSERT INTO sync_run (id, source, started_at, finished_at, status, pages, rows_taken)"
            " VALUES (1, 'feed', '2023-01-01T06:00:00Z', '2023-01-01T06:02:00Z', 'ok', 10, 1000)"
        )
        days = [date(2022, 1, 1) + timedelta(days=n) for n in range(365)]
        for cid, name, apps, calls, records, use in CONSUMERS:
            conn.execute(
                "INSERT INTO consumer (id, legal_name, notice_contact, tier_id, agreement_version,"
                " declared_use_case) VALUES (?,?,?,?,?,?)",
                (cid, name, f"legal@{cid}.example", "standard", "v3", use),
            )
            for n in range(apps):
                app_id = f"{cid}-app{n + 1}"
                conn.execute(
                    "INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) VALUES (?,?,?,?,?)",
                    ("feed", app_id, cid, f"App {n + 1}", use if n == 0 else None),
                )
                rows = []
                for i, d in enumerate(days):
                    wave = 1 + ((i * 7 + n * 3) % 11) / 20
                    rows.append(("feed", app_id, d.isoformat(), "calls", int(calls * wave)))
                    rows.append(("feed", app_id, d.isoformat(), "records", int(records * wave)))
                conn.executemany("INSERT INTO usage VALUES (?,?,?,?,?,1,1)", rows)
        for n in range(filler):
            conn.execute(
                "INSERT INTO consumer (id, legal_name, tier_id) VALUES (?,?, 'standard')",
                (f"consumer-{n:03d}", f"Consumer {n:03d} Ltd"),
            )
        _finding(conn, 1, "northwind-analytics", "volume_cap", "2022", "2022-01-01", "2022-12-31",
                 "calls", 780_412_345, 200_000_000, severity="critical")
        _finding(conn, 2, "northwind-analytics", "volume_cap", "2022", "2022-01-01", "2022-12-31",
                 "records", 26_170_000_000, 5_000_000_000, severity="critical")
        _finding(conn, 3, "northwind-analytics", "missing_use_case", "2022", "2022-01-01", "2022-12-31",
                 None, None, None, severity="medium")
        _finding(conn, 4, "contoso-borderline", "volume_cap", "2022-03", "2022-03-01", "2022-03-31",
                 "calls", 20_400_000, 20_000_000, severity="low")
        _finding(conn, 5, "hostile-co", "volume_cap", "2022-05", "2022-05-01", "2022-05-31",
                 "calls", 30_000_000, 20_000_000)
        _finding(conn, 6, "tailspin", "volume_cap", "2022-07", "2022-07-01", "2022-07-31",
                 "calls", 21_000_000, 20_000_000, status="dismissed", severity="low")
        refresh_all(conn)
    conn.close()
    return path


SETTLE_ROUNDS = 200
WORKER_SECONDS = 60.0


async def settle(pilot, *, rounds: int = SETTLE_ROUNDS, worker_seconds: float = WORKER_SECONDS) -> None:
    """Wait until workers are done and the messages they posted are handled.

    Polls rather than sleeping a fixed time: three quiet rounds in a row (a handler
    may start another worker, e.g. the detail after a page arrives). Used by the
    Pilot tests, the snapshot tests and screenshots/regenerate.py. Raises
    ``TimeoutError`` naming what it was still waiting for when ``rounds`` rounds
    pass without three quiet ones, or the workers of one round are not done within
    ``worker_seconds``: a test never goes on against a screen that is not there yet."""
    app = pilot.app
    quiet = 0
    waiting: list[str] = []

    def running() -> list[str]:
        return [f"worker {w.name or w.description!r} ({w.state.name.lower()})"
                for w in app.workers if not w.is_finished]

    for _ in range(rounds):
        await pilot.pause()
        waiting = running()
        # asyncio.wait, not wait_for: a timeout must not cancel the workers (cancelling
        # Worker.wait() cancels the worker's task), only stop waiting for them.
        waiter = asyncio.ensure_future(app.workers.wait_for_complete())
        done, _ = await asyncio.wait({waiter}, timeout=worker_seconds)
        if not done:
            waiter.add_done_callback(lambda task: task.cancelled() or task.exception())
            raise TimeoutError(f"settle(): workers not done after {worker_seconds:g} s: "
                               f"{'; '.join(running())}")
        waiter.result()
        await pilot.pause()
        screen = next((s for s in app.screen_stack if hasattr(s, "settled")), None)
        if screen is not None and not screen.settled:
            waiting.append(f"{type(screen).__name__}.settled (rows and detail of the current generation)")
        quiet = 0 if waiting else quiet + 1
        if quiet >= 3:
            return
    raise TimeoutError(f"settle(): still waiting after {rounds} rounds for: "
                       f"{'; '.join(waiting) or 'a third quiet round in a row'}")


@contextmanager
def cursors_that_do_not_blink() -> Iterator[None]:
    """Every ``Input`` and ``TextArea`` made inside the block is born with
    ``cursor_blink`` off (``DOMNode.set_reactive``: no watcher runs, nothing else changes).

    Turning blinking off once a widget is up is too late: the blink timer has
    already run, and TextArea caches its rendered lines by whether the cursor was in
    the "on" half of the blink, so under load a snapshot could catch the cursor
    hidden. Born without blinking, the timer starts paused and a focused cursor is
    drawn steadily. The tests' autouse fixture and screenshots/regenerate.py use this.
    """
    originals = {cls: cls.__init__ for cls in (Input, TextArea)}

    def born_still(cls: type[Input] | type[TextArea]) -> Any:
        original = originals[cls]

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.set_reactive(cls.cursor_blink, False)

        return __init__

    try:
        for cls in originals:
            cls.__init__ = born_still(cls)  # type: ignore[method-assign]
        yield
    finally:
        for cls, original in originals.items():
            cls.__init__ = original  # type: ignore[method-assign]


_SHOWN: WeakKeyDictionary[App[Any], list[Notification]] = WeakKeyDictionary()
_SHOWN_LOCK = threading.Lock()


@contextmanager
def notifications_recorded() -> Iterator[None]:
    """Record every notification an app is asked to show, through the public
    ``App.notify`` (widgets' and screens' ``notify`` end there too); read them with
    :func:`shown_notifications`. Unlike the toasts on screen, the record does not
    expire, so a slow run cannot lose one before the test looks."""
    original = App.notify
    signature = inspect.signature(original)

    def notify(self: App[Any], message: str, **options: Any) -> None:
        asked = signature.bind(self, message, **options)
        asked.apply_defaults()   # App.notify's defaults (markup=True), not Notification's
        given = dict(asked.arguments)
        timeout = self.NOTIFICATION_TIMEOUT if given["timeout"] is None else given["timeout"]
        notification = Notification(message, given["title"], given["severity"], timeout, markup=given["markup"])
        with _SHOWN_LOCK:
            _SHOWN.setdefault(self, []).append(notification)
        original(self, message, **options)

    App.notify = notify  # type: ignore[method-assign]
    try:
        yield
    finally:
        App.notify = original  # type: ignore[method-assign]


def shown_notifications(app: App[Any]) -> list[Notification]:
    """What ``app`` was asked to notify so far, oldest first (title, message, severity, markup)."""
    with _SHOWN_LOCK:
        return list(_SHOWN.get(app, []))
