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
import re
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


async def typed(pilot, text: str) -> None:
    await pilot.press(*text)
    await settle(pilot)


async def confirm_case_and_draft(pilot) -> None:
    """Confirm the case consumer's open findings with the defaults (v, enter), then draft its note."""
    await keys("v", "enter", "c")(pilot)


async def the_flow(pilot) -> None:
    """The review flow on the queue: the case consumer's findings confirmed with the
    defaults, another consumer's finding dismissed with a reason, a third parked
    for information; the cursor back on the case consumer."""
    await keys("v", "enter", "j", "d", "w", "enter", "j", "i")(pilot)
    await typed(pilot, "ask for the deployment report")
    await keys("enter", "g")(pilot)


async def filtered_to_the_case(pilot) -> None:
    await keys("slash")(pilot)
    await typed(pilot, "name:northwind")
    await keys("enter")(pilot)


async def ready_note_and_export(pilot) -> None:
    """Confirmed, drafted, marked ready, back; the export dialog over it."""
    from textual.widgets import Input

    await keys("v", "enter", "c", "ctrl+r", "escape", "x")(pilot)
    pilot.app.screen.query_one("#out_dir", Input).value = "/srv/warden/letters"
    await settle(pilot)


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
    ("filtered", (80, 24), filtered_to_the_case, False),
    ("confirm", (120, 40), keys("v"), False),
    ("dismiss", (120, 40), keys("j", "d", "w"), False),
    ("detail-cursor", (120, 40), keys("tab", "pagedown", "j"), False),
    ("decided", (80, 24), the_flow, False),
    ("daily-chart", (120, 40), keys("t"), False),
    ("filter", (120, 40), keys("slash"), False),
    ("help", (120, 40), keys("question_mark"), False),
    ("note-editor", (120, 40), confirm_case_and_draft, False),
    ("note-editor-80x24", (80, 24), confirm_case_and_draft, False),
    ("export", (80, 24), ready_note_and_export, False),
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
        os.environ["NO_COLOR"] = "1"   # read by App.__init__
    app = WardenApp(db_path=db_path, config=config, reviewer="alice", clock=CLOCK, mouse=False)
    os.environ.pop("NO_COLOR", None)   # the next shots are in colour
    with cursors_that_do_not_blink():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await step(pilot)
            app.clear_notifications()
            await settle(pilot)
            path = Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))
    path.write_text(spaces_kept(path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


_TEXT = re.compile(r'<text (?P<head>class="[^"]*" )x="(?P<x>[\d.]+)" (?P<y>y="[\d.]+") '
                   r'textLength="(?P<length>[\d.]+)"(?P<tail>[^>]*)>(?P<body>[^<]*)</text>')
_SPACE = "&#160;"


def spaces_kept(svg: str) -> str:
    """Spaces that begin a ``<text>`` of the screenshot move to the end of the one
    before it on the same line (its width and the next one's x adjusted): some
    viewers drop leading spaces and would run a label into its value."""
    out: list[str] = []
    last: dict[str, int] = {}        # y -> index in out of the last <text> on that line
    position = 0
    pieces: list[object] = []
    for m in _TEXT.finditer(svg):
        pieces.append(svg[position:m.start()])
        pieces.append(m)
        position = m.end()
    pieces.append(svg[position:])
    texts: list[dict[str, str]] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        t = piece.groupdict()  # type: ignore[union-attr]
        body = t["body"]
        lead = 0
        while body.startswith(_SPACE * (lead + 1)):
            lead += 1
        chars = len(body.replace(_SPACE, " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
        previous = last.get(t["y"])
        if lead and previous is not None and chars > lead:
            cell = float(t["length"]) / chars
            before = texts[previous]
            before["body"] += _SPACE * lead
            before["length"] = f"{float(before['length']) + lead * cell:g}"
            t["body"] = body[len(_SPACE) * lead:]
            t["x"] = f"{float(t['x']) + lead * cell:g}"
            t["length"] = f"{float(t['length']) - lead * cell:g}"
        texts.append(t)
        last[t["y"]] = len(texts) - 1
        out.append(len(texts) - 1)  # type: ignore[arg-type]
    return "".join(piece if isinstance(piece, str) else
                   '<text {head}x="{x}" {y} textLength="{length}"{tail}>{body}</text>'.format(**texts[piece])
                   for piece in out)


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
