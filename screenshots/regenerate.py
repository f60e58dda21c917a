"""Regenerate screenshots/*.svg from the demo data (run as a script).

    python screenshots/regenerate.py            # all of them, into screenshots/
    python screenshots/regenerate.py --out DIR

Starts the embedded demo endpoint (300 consumers, seed 7), syncs it into a
temporary database with a fixed clock, then drives the review screen headless
and saves one SVG per view. The same data and clock give the same pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.clock import fixed_clock  # noqa: E402
from store.demo import CASE_ID, DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint  # noqa: E402
from store.demo.config import demo_config  # noqa: E402
from store.sync.engine import sync_all  # noqa: E402
from tests.tui_data import cursors_that_do_not_blink, settle  # noqa: E402

CLOCK = fixed_clock(datetime(2023, 1, 2, 9, 30, tzinfo=timezone.utc))

Step = Callable[["object"], Awaitable[None]]



def keys(*names: str) -> Step:
    async def run(pilot) -> None:
        for name in names:
            await pilot.press(name)
            await settle(pilot)

    return run


async def confirm_case_and_draft(pilot) -> None:
    """Confirm the case consumer's open findings, then draft its note."""
    from textual.widgets import Input, Select

    await keys("v")(pilot)
    modal = pilot.app.screen
    modal.query_one("#severity", Select).value = "critical"
    modal.query_one("#reason", Input).value = "over 780 million calls against the 2022 cap"
    modal.query_one("#ok").press()
    await settle(pilot)
    await keys("c")(pilot)


async def fill_confirm(pilot) -> None:
    from textual.widgets import Input, Select

    await keys("v")(pilot)
    modal = pilot.app.screen
    modal.query_one("#severity", Select).value = "critical"
    modal.query_one("#reason", Input).value = "over 780 million calls against the 2022 cap"


async def letter_sent(pilot) -> None:
    """The case consumer's findings confirmed (each as detected), its letter
    exported (2 January 2023: due 23 January), a reply recorded and three items marked."""
    from store.casework.items import ItemChange, mark_items
    from store.casework.responses import add_response
    from store.export import export_notes
    from store.notes import draft_note
    from store.review import bulk_decide

    session = pilot.app.session
    conn = session.connections.get()
    bulk_decide(conn, action="confirm", reviewer="alice", clock=CLOCK, consumer_ids=[CASE_ID],
                reason="over 780 million calls against the 2022 cap")
    draft_note(conn, CASE_ID, reviewer="alice", clock=CLOCK, config=session.config.notes)
    folder = Path(tempfile.mkdtemp(prefix="warden-shots-"))
    export_notes(conn, fmt="md", out_dir=folder / "letter", consumer_id=CASE_ID, reviewer="alice", clock=CLOCK,
                 config=session.config.notes)
    reply = folder / "Northwind reply 2023-01-02.pdf"
    reply.write_bytes(b"%PDF-1.7 We will review these questions and respond appropriately.")
    add_response(conn, CASE_ID, [reply], reviewer="alice", clock=CLOCK, max_bytes=1 << 20,
                 note="holding reply: they will review the questions")
    mark_items(conn, 1, [ItemChange("purpose", "answered"), ItemChange("storage", "partly_answered"),
                         ItemChange("recipients", "refused")],
               comment="reply of 2 January, pages 1-2", reviewer="alice", clock=CLOCK)
    await keys("r")(pilot)


def after_letter(*names: str) -> Step:
    async def run(pilot) -> None:
        await letter_sent(pilot)
        await keys(*names)(pilot)

    return run


SHOTS: list[tuple[str, tuple[int, int], Step, bool]] = [
    # name, terminal size, what to do first, NO_COLOR
    ("review", (120, 40), keys(), False),
    ("review-80x24", (80, 24), keys(), False),
    ("review-no-color", (120, 40), keys(), True),
    ("daily-chart", (120, 40), keys("t"), False),
    ("confirm", (120, 40), fill_confirm, False),
    ("dismiss", (120, 40), keys("d"), False),
    ("filter", (120, 40), keys("slash"), False),
    ("help", (120, 40), keys("question_mark"), False),
    ("note-editor", (120, 40), confirm_case_and_draft, False),
    ("checklist", (120, 40), after_letter(), False),
    ("items", (120, 40), after_letter("a", "down", "down", "space"), False),
    ("overview", (120, 40), after_letter("L"), False),
    ("overview-80x24", (80, 24), after_letter("L"), False),
]


def sync_demo(db_path: Path) -> object:
    os.environ.setdefault(DEMO_TOKEN_ENV, DEMO_TOKEN)
    # X's usage counts back from the demo's today: the pictures' today, not the real one.
    endpoint = DemoEndpoint(consumers=300, seed=7, today=CLOCK().date()).start()
    config = demo_config(endpoint, db_path=db_path)
    try:
        sync_all(db_path, config, clock=CLOCK)
    finally:
        endpoint.stop()
    return config


async def shoot(db_path: Path, config: object, name: str, size: tuple[int, int], step: Step,
                no_color: bool, out: Path) -> Path:
    from tui.app import WardenApp

    if no_color:
        os.environ["NO_COLOR"] = "1"   # read (and removed) by App.__init__
    app = WardenApp(db_path=db_path, config=config, reviewer="alice", clock=CLOCK, mouse=False)
    with cursors_that_do_not_blink():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await step(pilot)
            app.clear_notifications()
            await settle(pilot)
            assert app.screen_stack[1].query_one("QueueView").current.consumer_id == CASE_ID
            path = Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Each shot gets a fresh copy of the synced database, so decisions made for
        # one picture (the note editor) do not show in the others.
        base = Path(tmp) / "demo.db"
        config = sync_demo(base)
        for name, size, step, no_color in SHOTS:
            db_path = Path(tmp) / f"{name}.db"
            source = sqlite3.connect(base)
            target = sqlite3.connect(db_path)
            source.backup(target)
            source.close()
            target.close()
            path = asyncio.run(shoot(db_path, config, name, size, step, no_color, args.out))
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
